//! WebDAV ingest authentication: HTTP Digest (RFC 7616, MD5, `qop=auth`) and Basic,
//! checked against an ingest endpoint's credentials before any body byte is read.
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

/// Checks `authorization` (the header value, if any) for `method` on `endpoint` at `now`.
pub fn check(authorization: Option<&str>, method: &str, endpoint: &IngestEndpoint, now: i64) -> AuthResult {
    let Some(value) = authorization else {
        return AuthResult::Denied;
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return check_basic(rest.trim(), endpoint);
    }
    if scheme.eq_ignore_ascii_case("digest") {
        return check_digest(rest, method, endpoint, now);
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

fn check_digest(params: &str, method: &str, endpoint: &IngestEndpoint, now: i64) -> AuthResult {
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
    let realm = get("realm").unwrap_or(REALM);
    let ha1 = md5_hex(&format!("{username}:{realm}:{}", endpoint.password));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    let expected = match get("qop") {
        Some(qop) => {
            let (nc, cnonce) = (get("nc").unwrap_or(""), get("cnonce").unwrap_or(""));
            md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}"))
        }
        None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
    };
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

    fn digest_header(e: &IngestEndpoint, nonce: &str, password: &str) -> String {
        let ha1 = md5_hex(&format!("{}:{REALM}:{password}", e.username));
        let ha2 = md5_hex("PUT:/in/v2/ch/ie1/channel.m3u8");
        let response = md5_hex(&format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
        format!(
            "Digest username=\"{}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"/in/v2/ch/ie1/channel.m3u8\", response=\"{response}\", qop=auth, nc=00000001, cnonce=\"abc\", algorithm=MD5",
            e.username
        )
    }

    #[test]
    fn digest_accepts_right_password_and_fresh_nonce_only() {
        let e = endpoint();
        let nonce = make_nonce(&e, 1000);
        assert_eq!(
            check(Some(&digest_header(&e, &nonce, "Circle Of Life")), "PUT", &e, 1010),
            AuthResult::Ok
        );
        assert_eq!(
            check(Some(&digest_header(&e, &nonce, "wrong")), "PUT", &e, 1010),
            AuthResult::Denied
        );
        assert_eq!(
            check(Some(&digest_header(&e, &nonce, "Circle Of Life")), "PUT", &e, 2000),
            AuthResult::Stale
        );
        let forged = "1000-00000000000000000000000000000000";
        assert_eq!(
            check(Some(&digest_header(&e, forged, "Circle Of Life")), "PUT", &e, 1010),
            AuthResult::Denied
        );
        // The same header replayed for another method fails.
        assert_eq!(
            check(Some(&digest_header(&e, &nonce, "Circle Of Life")), "DELETE", &e, 1010),
            AuthResult::Denied
        );
    }

    #[test]
    fn basic_auth() {
        let e = endpoint();
        let good = base64::engine::general_purpose::STANDARD.encode("Mufasa:Circle Of Life");
        let bad = base64::engine::general_purpose::STANDARD.encode("Mufasa:circle of life");
        assert_eq!(check(Some(&format!("Basic {good}")), "PUT", &e, 0), AuthResult::Ok);
        assert_eq!(check(Some(&format!("Basic {bad}")), "PUT", &e, 0), AuthResult::Denied);
        assert_eq!(check(Some("Basic !!!"), "PUT", &e, 0), AuthResult::Denied);
        assert_eq!(check(None, "PUT", &e, 0), AuthResult::Denied);
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
