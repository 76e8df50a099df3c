use super::*;

fn endpoint() -> IngestEndpoint {
    IngestEndpoint {
        id: "ie1".into(),
        username: "Mufasa".into(),
        password: "Circle Of Life".into(),
    }
}

#[test]
fn digest_response_matches_rfc_2617_example_computation() {
    // RFC 2617 §3.5 example values: HA1/HA2/response computed as the RFC specifies.
    let ha1 = md5_hex("Mufasa:testrealm@host.com:Circle Of Life");
    assert_eq!(ha1, "939e7578ed9e3c518a452acee763bce9");
    let ha2 = md5_hex("GET:/dir/index.html");
    assert_eq!(ha2, "39aff3a2bab6126f332b942af96d3366");
    let response = md5_hex(&format!(
        "{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:00000001:0a4f113b:auth:{ha2}"
    ));
    assert_eq!(response, "6629fae49393a05397450978507c4ef1");
}

const URI: &str = "/in/v2/ch/ie1/channel.m3u8";

fn local(path_and_query: &str) -> Target<'_> {
    Target {
        path_and_query,
        base_path: "",
    }
}

/// A Digest header as ffmpeg and curl send it: `uri` is the path PUT, `qop=auth`.
fn digest_for(e: &IngestEndpoint, nonce: &str, password: &str, method: &str, uri: &str, qop: bool) -> String {
    let ha1 = md5_hex(&format!("{}:{REALM}:{password}", e.username));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    if qop {
        let response = md5_hex(&format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
        format!(
            "Digest username=\"{}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", qop=auth, nc=00000001, cnonce=\"abc\", algorithm=MD5",
            e.username
        )
    } else {
        let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
        format!(
            "Digest username=\"{}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5",
            e.username
        )
    }
}

fn digest_header(e: &IngestEndpoint, nonce: &str, password: &str) -> String {
    digest_for(e, nonce, password, "PUT", URI, true)
}

#[test]
fn digest_accepts_right_password_and_fresh_nonce_only() {
    let e = endpoint();
    let nonce = make_nonce(&e, 1000);
    let t = local(URI);
    assert_eq!(
        check(Some(&digest_header(&e, &nonce, "Circle Of Life")), "PUT", &t, &e, 1010),
        AuthResult::Ok
    );
    assert_eq!(
        check(Some(&digest_header(&e, &nonce, "wrong")), "PUT", &t, &e, 1010),
        AuthResult::Denied
    );
    assert_eq!(
        check(Some(&digest_header(&e, &nonce, "Circle Of Life")), "PUT", &t, &e, 2000),
        AuthResult::Stale
    );
    let forged = "1000-00000000000000000000000000000000";
    assert_eq!(
        check(Some(&digest_header(&e, forged, "Circle Of Life")), "PUT", &t, &e, 1010),
        AuthResult::Denied
    );
    // The same header replayed for another method fails.
    assert_eq!(
        check(
            Some(&digest_header(&e, &nonce, "Circle Of Life")),
            "DELETE",
            &t,
            &e,
            1010
        ),
        AuthResult::Denied
    );
}

#[test]
fn a_fixed_nonce_is_accepted_only_where_it_is_configured_and_never_goes_stale() {
    let e = endpoint();
    let t = local(URI);
    let fixed = "6f1c2a0e-8d5b-4c3e-9a57-2b1d0f4e7c91";
    let header = digest_header(&e, fixed, "Circle Of Life");
    // The ingest function issues its own nonces: a fixed one is not among them.
    assert_eq!(check(Some(&header), "PUT", &t, &e, 1010), AuthResult::Denied);
    for now in [0, 1010, 10_000_000] {
        assert_eq!(
            check_with_fixed_nonce(Some(&header), "PUT", &t, &e, now, fixed),
            AuthResult::Ok
        );
    }
    // Credentials, method and target are still checked; another nonce is still an HMAC one.
    let wrong = digest_header(&e, fixed, "wrong");
    assert_eq!(
        check_with_fixed_nonce(Some(&wrong), "PUT", &t, &e, 1010, fixed),
        AuthResult::Denied
    );
    assert_eq!(
        check_with_fixed_nonce(Some(&header), "POST", &t, &e, 1010, fixed),
        AuthResult::Denied
    );
    let other = digest_header(&e, "another-nonce", "Circle Of Life");
    assert_eq!(
        check_with_fixed_nonce(Some(&other), "PUT", &t, &e, 1010, fixed),
        AuthResult::Denied
    );
    // An empty fixed nonce accepts nothing extra.
    let empty = digest_header(&e, "", "Circle Of Life");
    assert_eq!(
        check_with_fixed_nonce(Some(&empty), "PUT", &t, &e, 1010, ""),
        AuthResult::Denied
    );
    // The fixed challenge is the one a client computes that header from.
    let challenge = fixed_challenge(fixed);
    let params = parse_params(challenge.strip_prefix("Digest ").unwrap());
    assert!(params.contains(&("nonce".into(), fixed.into())) && params.contains(&("qop".into(), "auth".into())));
    assert!(params.contains(&("realm".into(), REALM.into())));
}

#[test]
fn digest_is_bound_to_the_request_target() {
    let e = endpoint();
    let nonce = make_nonce(&e, 1000);
    let header = digest_header(&e, &nonce, "Circle Of Life");
    // Replayed on another file of the same ingest endpoint, or with a query added.
    for other in [
        "/in/v2/ch/ie1/seg_00001.ts",
        "/in/v2/ch/ie1/channel.m3u8?x=1",
        "/in/v2/ch/ie1/",
    ] {
        assert_eq!(
            check(Some(&header), "PUT", &local(other), &e, 1010),
            AuthResult::Denied,
            "{other}"
        );
    }
    // A uri naming another file, correctly computed, does not authorise this one.
    let elsewhere = digest_for(&e, &nonce, "Circle Of Life", "PUT", "/in/v2/ch/ie1/other.ts", true);
    assert_eq!(
        check(Some(&elsewhere), "PUT", &local(URI), &e, 1010),
        AuthResult::Denied
    );
    // The query is part of the target.
    let with_query = digest_for(&e, &nonce, "Circle Of Life", "PUT", "/in/v2/ch/ie1/a.ts?t=1", true);
    assert_eq!(
        check(Some(&with_query), "PUT", &local("/in/v2/ch/ie1/a.ts?t=1"), &e, 1010),
        AuthResult::Ok
    );
    assert_eq!(
        check(Some(&with_query), "PUT", &local("/in/v2/ch/ie1/a.ts"), &e, 1010),
        AuthResult::Denied
    );
    // Escapes normalised on the way in still match.
    let escaped = digest_for(&e, &nonce, "Circle Of Life", "PUT", "/in/v2/ch/ie1/a%20b.ts", true);
    assert_eq!(
        check(Some(&escaped), "PUT", &local("/in/v2/ch/ie1/a%20b.ts"), &e, 1010),
        AuthResult::Ok
    );
    assert_eq!(
        check(Some(&escaped), "PUT", &local("/in/v2/ch/ie1/a b.ts"), &e, 1010),
        AuthResult::Ok
    );
    // An absolute-form uri counts by its path.
    let absolute = digest_for(
        &e,
        &nonce,
        "Circle Of Life",
        "PUT",
        "http://h:8080/in/v2/ch/ie1/channel.m3u8",
        true,
    );
    assert_eq!(check(Some(&absolute), "PUT", &local(URI), &e, 1010), AuthResult::Ok);
}

#[test]
fn digest_behind_api_gateway_names_the_stage_the_handler_does_not_see() {
    let e = endpoint();
    let nonce = make_nonce(&e, 1000);
    let uri: http::Uri = "https://abc.execute-api.us-east-1.amazonaws.com/in/v2/ch/ie1/channel.m3u8"
        .parse()
        .unwrap();
    let target = Target::new(&uri, "https://abc.execute-api.us-east-1.amazonaws.com/v1/");
    assert_eq!((target.path_and_query, target.base_path), (URI, "/v1"));
    let staged = digest_for(
        &e,
        &nonce,
        "Circle Of Life",
        "PUT",
        "/v1/in/v2/ch/ie1/channel.m3u8",
        true,
    );
    assert_eq!(check(Some(&staged), "PUT", &target, &e, 1010), AuthResult::Ok);
    let plain = digest_header(&e, &nonce, "Circle Of Life");
    assert_eq!(check(Some(&plain), "PUT", &target, &e, 1010), AuthResult::Ok);
    let other_stage = digest_for(
        &e,
        &nonce,
        "Circle Of Life",
        "PUT",
        "/v2/in/v2/ch/ie1/channel.m3u8",
        true,
    );
    assert_eq!(check(Some(&other_stage), "PUT", &target, &e, 1010), AuthResult::Denied);
    let local_uri: http::Uri = "/in/v2/ch/ie1/channel.m3u8".parse().unwrap();
    assert_eq!(Target::new(&local_uri, "http://127.0.0.1:8080").base_path, "");
}

#[test]
fn digest_requires_qop_auth_with_nc_and_cnonce() {
    let e = endpoint();
    let nonce = make_nonce(&e, 1000);
    let t = local(URI);
    // RFC 2069 style, correctly computed: refused.
    let no_qop = digest_for(&e, &nonce, "Circle Of Life", "PUT", URI, false);
    assert_eq!(check(Some(&no_qop), "PUT", &t, &e, 1010), AuthResult::Denied);
    let good = digest_header(&e, &nonce, "Circle Of Life");
    for (from, to) in [
        ("qop=auth", "qop=auth-int"),
        (", nc=00000001", ""),
        (", cnonce=\"abc\"", ""),
        ("nc=00000001", "nc=1"),
    ] {
        let bad = good.replace(from, to);
        assert_ne!(bad, good);
        assert_eq!(check(Some(&bad), "PUT", &t, &e, 1010), AuthResult::Denied, "{bad}");
    }
}

#[test]
fn basic_auth() {
    let e = endpoint();
    let t = local(URI);
    let good = base64::engine::general_purpose::STANDARD.encode("Mufasa:Circle Of Life");
    let bad = base64::engine::general_purpose::STANDARD.encode("Mufasa:circle of life");
    assert_eq!(check(Some(&format!("Basic {good}")), "PUT", &t, &e, 0), AuthResult::Ok);
    assert_eq!(
        check(Some(&format!("Basic {bad}")), "PUT", &t, &e, 0),
        AuthResult::Denied
    );
    assert_eq!(check(Some("Basic !!!"), "PUT", &t, &e, 0), AuthResult::Denied);
    assert_eq!(check(None, "PUT", &t, &e, 0), AuthResult::Denied);
}

#[test]
fn params_parse_quoted_and_bare_values() {
    let p = parse_params(r#"username="a\"b", qop=auth, nc=00000001 ,uri="/x,y""#);
    assert_eq!(p[0], ("username".into(), "a\"b".into()));
    assert_eq!(p[1], ("qop".into(), "auth".into()));
    assert_eq!(p[2], ("nc".into(), "00000001".into()));
    assert_eq!(p[3], ("uri".into(), "/x,y".into()));
}
