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
//!
//! Behind API Gateway's S3 integration (staged ingest) the challenge is a gateway
//! response, which can only carry a fixed header: there the deployment's one nonce is
//! also accepted ([`check_with_fixed_nonce`]). It never goes stale, so a response made
//! with it could be replayed for the same method and path; the transport is HTTPS.

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
    check_with_fixed_nonce(authorization, method, target, endpoint, now, "")
}

/// The `WWW-Authenticate` value of a fixed challenge naming `nonce`.
pub fn fixed_challenge(nonce: &str) -> String {
    format!("Digest realm=\"{REALM}\", qop=\"auth\", algorithm=MD5, nonce=\"{nonce}\"")
}

/// As [`check`], also accepting Digest responses made with `fixed_nonce` (unless empty),
/// the one nonce a deployment's fixed challenge names (API Gateway's gateway responses
/// cannot compute one).
pub fn check_with_fixed_nonce(
    authorization: Option<&str>,
    method: &str,
    target: &Target<'_>,
    endpoint: &IngestEndpoint,
    now: i64,
    fixed_nonce: &str,
) -> AuthResult {
    let fixed_nonce = Some(fixed_nonce).filter(|n| !n.is_empty());
    let Some(value) = authorization else {
        return AuthResult::Denied;
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return check_basic(rest.trim(), endpoint);
    }
    if scheme.eq_ignore_ascii_case("digest") {
        return check_digest(rest, method, target, endpoint, now, fixed_nonce);
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

fn check_digest(
    params: &str,
    method: &str,
    target: &Target<'_>,
    endpoint: &IngestEndpoint,
    now: i64,
    fixed_nonce: Option<&str>,
) -> AuthResult {
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
    if fixed_nonce.is_some_and(|fixed| equal(nonce, fixed)) {
        return AuthResult::Ok;
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
mod tests;
