//! WebDAV ingest authentication: HTTP Digest (RFC 7616, MD5, `qop=auth`) and Basic,
//! checked against an ingest endpoint's credentials before any body byte is read.
//!
//! A Digest response is bound to one request: its `uri` must be the request target the
//! server received (path and query), or that target under the ingest base URL's path
//! (API Gateway strips its stage, `/v1`, before the handler sees the path), and `qop=auth`
//! is required (RFC 2069 responses without `qop`, `nc` and `cnonce` are refused).
//!
//! Nonces are stateless so that any Lambda instance can verify them:
//! `{issued_unix_seconds}-{hmac}` where the HMAC-SHA256 is keyed by the endpoint's
//! password. A rotated password therefore also invalidates outstanding nonces. A nonce
//! older than [`NONCE_LIFETIME_SECS`] is answered with `stale=true` so clients retry
//! without prompting. Replay within the lifetime is not tracked (no shared state).

use crate::model::IngestEndpoint;
use base64::Engine;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Realm sent in challenges.
pub const REALM: &str = "Sluice";
/// How long a nonce is accepted.
pub const NONCE_LIFETIME_SECS: i64 = 300;

/// Outcome of checking a request's `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthResult {
    Ok,
    /// Credentials missing or wrong; challenge again.
    Denied,
    /// Right credentials, expired nonce: challenge with `stale=true`.
    Stale,
}

fn nonce_mac(password: &str, issued: i64) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(password.as_bytes()).expect("HMAC takes any key length");
    mac.update(issued.to_string().as_bytes());
    let tag = mac.finalize().into_bytes();
    tag[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh nonce for `endpoint` at `now` (Unix seconds).
pub fn make_nonce(endpoint: &IngestEndpoint, now: i64) -> String {
    format!("{now}-{}", nonce_mac(&endpoint.password, now))
}

/// The `WWW-Authenticate` values for a 401: Digest first (clients pick the strongest), then Basic.
pub fn challenges(endpoint: &IngestEndpoint, now: i64, stale: bool) -> [String; 2] {
    let stale = if stale { ", stale=true" } else { "" };
    [
        format!(
            "Digest realm=\"{REALM}\", qop=\"auth\", algorithm=MD5, nonce=\"{}\", opaque=\"{}\"{stale}",
            make_nonce(endpoint, now),
            endpoint.id
        ),
        format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""),
    ]
}

fn md5_hex(input: &str) -> String {
    Md5::digest(input.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The request a Digest response must name.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    /// Path and query of the request as received (`/in/v2/ch/ie/channel.m3u8?x=1`).
    pub path_and_query: &'a str,
    /// Path of the public ingest base URL (`/v1` behind API Gateway, empty locally).
    pub base_path: &'a str,
}

impl<'a> Target<'a> {
    /// From the request URI and the configured ingest base URL.
    pub fn new(uri: &'a http::Uri, ingest_base_url: &'a str) -> Target<'a> {
        let after_scheme = ingest_base_url
            .split_once("://")
            .map_or(ingest_base_url, |(_, rest)| rest);
        let base_path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
        Target {
            path_and_query: uri.path_and_query().map_or("/", |p| p.as_str()),
            base_path: base_path.trim_end_matches('/'),
        }
    }

    /// Whether a Digest `uri` names this request: the same target, or the same target
    /// under the base path; compared as sent, then percent-decoded (a proxy may normalise
    /// escapes). An absolute URI counts by its path and query.
    fn is_named_by(&self, digest_uri: &str) -> bool {
        let digest_uri = match digest_uri.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => digest_uri,
        };
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let prefixed = format!("{}{}", self.base_path, self.path_and_query);
        [self.path_and_query, prefixed.as_str()]
            .iter()
            .any(|target| digest_uri == *target || decode(digest_uri) == decode(target))
    }
}

/// Checks `authorization` (the header value, if any) for `method` on `target` of
/// `endpoint` at `now`.
pub fn check(
    authorization: Option<&str>,
    method: &str,
    target: &Target<'_>,
    endpoint: &IngestEndpoint,
    now: i64,
) -> AuthResult {
    let Some(value) = authorization else {
        return AuthResult::Denied;
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return check_basic(rest.trim(), endpoint);
    }
    if scheme.eq_ignore_ascii_case("digest") {
        return check_digest(rest, method, target, endpoint, now);
    }
    AuthResult::Denied
}

fn check_basic(encoded: &str, endpoint: &IngestEndpoint) -> AuthResult {
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return AuthResult::Denied;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return AuthResult::Denied;
    };
    let Some((user, password)) = text.split_once(':') else {
        return AuthResult::Denied;
    };
    let ok = equal(user, &endpoint.username) & equal(password, &endpoint.password);
    if ok {
        AuthResult::Ok
    } else {
        AuthResult::Denied
    }
}

/// Parses `key=value, key="quoted value"` pairs of a Digest header.
pub fn parse_params(input: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = input.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_ascii_lowercase();
        rest = rest[eq + 1..].trim_start();
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            value = v;
            rest = &quoted[end.min(quoted.len())..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_owned();
            rest = &rest[end..];
        }
        out.push((key, value));
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

fn check_digest(params: &str, method: &str, target: &Target<'_>, endpoint: &IngestEndpoint, now: i64) -> AuthResult {
    let params = parse_params(params);
    let get = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let (Some(username), Some(nonce), Some(uri), Some(response)) =
        (get("username"), get("nonce"), get("uri"), get("response"))
    else {
        return AuthResult::Denied;
    };
    if get("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("md5")) {
        return AuthResult::Denied;
    }
    // The challenge offers only qop="auth"; a response without it (RFC 2069) has no
    // client nonce or count and is refused, as is one computed for another request.
    let (Some("auth"), Some(nc), Some(cnonce)) = (get("qop"), get("nc"), get("cnonce")) else {
        return AuthResult::Denied;
    };
    if cnonce.is_empty() || nc.len() != 8 || !nc.bytes().all(|b| b.is_ascii_hexdigit()) || !target.is_named_by(uri) {
        return AuthResult::Denied;
    }
    let realm = get("realm").unwrap_or(REALM);
    let ha1 = md5_hex(&format!("{username}:{realm}:{}", endpoint.password));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let expected = md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    let credentials_ok = equal(username, &endpoint.username) & equal(response, &expected) & (realm == REALM);
    if !credentials_ok {
        return AuthResult::Denied;
    }
    let Some((issued, mac)) = nonce.split_once('-') else {
        return AuthResult::Denied;
    };
    let Ok(issued) = issued.parse::<i64>() else {
        return AuthResult::Denied;
    };
    if !equal(mac, &nonce_mac(&endpoint.password, issued)) {
        return AuthResult::Denied;
    }
    if now - issued > NONCE_LIFETIME_SECS || issued - now > 60 {
        return AuthResult::Stale;
    }
    AuthResult::Ok
}

#[cfg(test)]
mod tests {
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
}
