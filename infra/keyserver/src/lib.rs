//! The reference key server: a SPEKE v1 and v2 key provider, the AES-128 key URLs it
//! hands out, and a W3C ClearKey license endpoint, so encrypted endpoints work on a laptop
//! with no DRM vendor and players get keys from a license URL, not hard-wired ones.
//!
//! - `POST /speke/v1`: SPEKE v1 (CPIX 2.0) key requests.
//! - `POST /speke/v2`: SPEKE v2 (CPIX 2.3; `X-Speke-Version: 2.0` is echoed).
//! - `GET /keys/{content id}/{kid}`: the 16 key bytes, for `EXT-X-KEY` AES-128.
//! - `POST /clearkey/license[?contentId=…]`: `{"kids": [...]}` → `{"keys": [...]}`.
//!
//! Keys are deterministic: HMAC-SHA256 of the server's secret over the content id and the
//! KID, first 16 bytes. Every process with the same secret answers the same keys; anyone
//! who knows the secret knows every key, so this is for trying and testing DRM flows,
//! never for protecting content.
//!
//! AES-128 (`81376844-f976-481e-a84e-cc25d39b0b33`) gets a key URI and ClearKey the
//! license endpoint: both are usable keys. The common system id
//! (`1077efec-c0b2-4d02-ace3-3c1e52e2fb4b`) gets a `pssh` box, the one browsers' ClearKey
//! CDM reads; DASH-IF ClearKey (`e2719d58-a985-b3c9-781a-b030af78d30e`), which only
//! names ClearKey in an MPD, gets none. Both also get the key's URL (`URIExtXKey`), for
//! CMAF HLS players that read ClearKey keys from `KEYFORMAT="identity"` key tags. Widevine, PlayReady and FairPlay requests get a
//! key and a `pssh` box (FairPlay: an `skd://` URI) but no license service exists for
//! them here.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::{STANDARD as BASE64, URL_SAFE_NO_PAD as BASE64URL};
use base64::Engine;
use hmac::{Hmac, Mac};
use sluice::keys::cpix::{Document, Kid, SpekeVersion};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub const AES_128: &str = "81376844-f976-481e-a84e-cc25d39b0b33";
pub const CLEARKEY: &str = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b";
pub const CLEARKEY_DASH_IF: &str = "e2719d58-a985-b3c9-781a-b030af78d30e";
pub const FAIRPLAY: &str = "94ce86fb-07ff-4f43-adb8-93d2fa968ca2";

/// The secret keys derive from when none is configured. Public, so keys are too.
pub const DEFAULT_SECRET: &str = "sluice-reference-key-server-not-for-production";

#[derive(Clone)]
struct KeyServer {
    secret: Arc<Vec<u8>>,
    /// Base URL of this server, for the key URIs it hands out; `None`: `https://` and the
    /// request's `Host` (behind a Lambda function URL).
    base_url: Option<Arc<String>>,
    /// KIDs handed out → their content id, for license requests without `contentId`.
    issued: Arc<Mutex<HashMap<Kid, String>>>,
}

/// The key server's routes, handing out key URIs under `base_url` (`None`: under
/// `https://` and the host each SPEKE request was sent to).
pub fn routes(secret: &str, base_url: Option<&str>) -> Router {
    let server = KeyServer {
        secret: Arc::new(secret.as_bytes().to_vec()),
        base_url: base_url.map(|b| Arc::new(b.trim_end_matches('/').to_owned())),
        issued: Arc::default(),
    };
    Router::new()
        .route("/speke/v1", post(speke_v1))
        .route("/speke/v2", post(speke_v2))
        .route("/keys/{content}/{kid}", get(key_bytes).options(preflight))
        .route("/clearkey/license", post(license).options(preflight))
        .with_state(server)
}

impl KeyServer {
    fn key(&self, content_id: &str, kid: Kid) -> [u8; 16] {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(content_id.as_bytes());
        mac.update(&[0]);
        mac.update(&kid.0);
        let digest = mac.finalize().into_bytes();
        digest[..16].try_into().expect("32 bytes")
    }

    fn key_url(&self, base: &str, content_id: &str, kid: Kid) -> String {
        // RFC 3986 unreserved characters stay as they are.
        const PATH: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~');
        let content = percent_encoding::utf8_percent_encode(content_id, PATH);
        format!("{base}/keys/{content}/{kid}")
    }

    /// Where this server's key URIs point for a request with `headers`.
    fn base(&self, headers: &HeaderMap) -> String {
        match &self.base_url {
            Some(base) => base.to_string(),
            None => {
                let host = headers
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or("localhost");
                format!("https://{host}")
            }
        }
    }

    /// Fills in a request document: every key's value, every DRM system's data.
    fn answer(&self, mut doc: Document, base: &str) -> Document {
        for key in &mut doc.keys {
            key.secret = Some(self.key(&doc.content_id, key.kid));
            self.issued
                .lock()
                .expect("issued keys")
                .insert(key.kid, doc.content_id.clone());
        }
        let kids: Vec<Kid> = doc.keys.iter().map(|k| k.kid).collect();
        for drm in &mut doc.drm_systems {
            let kid = drm.kid.unwrap_or(kids[0]);
            let url = self.key_url(base, &doc.content_id, kid);
            let Some(system) = Kid::parse(&drm.system_id) else {
                continue;
            };
            match drm.system_id.to_ascii_lowercase().as_str() {
                AES_128 => {
                    drm.uri_ext_x_key = Some(BASE64.encode(&url));
                    drm.hls_media = Some(BASE64.encode(format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{url}\"")));
                    drm.hls_master = Some(BASE64.encode(format!("#EXT-X-SESSION-KEY:METHOD=AES-128,URI=\"{url}\"")));
                }
                FAIRPLAY => {
                    let skd = format!("skd://{}", kid.hex());
                    drm.uri_ext_x_key = Some(BASE64.encode(&skd));
                    drm.key_format = Some(BASE64.encode("com.apple.streamingkeydelivery"));
                    drm.key_format_versions = Some(BASE64.encode("1"));
                    let attrs = format!(
                        "METHOD=SAMPLE-AES,URI=\"{skd}\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\""
                    );
                    drm.hls_media = Some(BASE64.encode(format!("#EXT-X-KEY:{attrs}")));
                    drm.hls_master = Some(BASE64.encode(format!("#EXT-X-SESSION-KEY:{attrs}")));
                }
                // DASH-IF ClearKey signals ClearKey in an MPD; its `pssh` is the common
                // system's (browsers' ClearKey CDM reads only that one), so it has none.
                CLEARKEY_DASH_IF => drm.uri_ext_x_key = Some(BASE64.encode(&url)),
                _ => {
                    if drm.system_id.eq_ignore_ascii_case(CLEARKEY) {
                        // The key's URL too, for players that take ClearKey keys from an
                        // `EXT-X-KEY` with `KEYFORMAT="identity"` (Shaka Player).
                        drm.uri_ext_x_key = Some(BASE64.encode(&url));
                    }
                    let pssh = pssh_box(system, &[kid]);
                    let element = format!(
                        "<cenc:pssh xmlns:cenc=\"urn:mpeg:cenc:2013\">{}</cenc:pssh>",
                        BASE64.encode(&pssh)
                    );
                    drm.content_protection_data = Some(BASE64.encode(element));
                    drm.pssh = Some(BASE64.encode(&pssh));
                }
            }
        }
        doc
    }
}

/// A version 1 `pssh` box (ISO/IEC 23001-7 §8.1) naming `kids`, with no system data.
pub fn pssh_box(system: Kid, kids: &[Kid]) -> Vec<u8> {
    let size = 8 + 4 + 16 + 4 + 16 * kids.len() + 4;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(size as u32).to_be_bytes());
    out.extend_from_slice(b"pssh");
    out.extend_from_slice(&[1, 0, 0, 0]);
    out.extend_from_slice(&system.0);
    out.extend_from_slice(&(kids.len() as u32).to_be_bytes());
    for kid in kids {
        out.extend_from_slice(&kid.0);
    }
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}

fn refuse(message: String) -> Response {
    tracing::warn!(%message, "key request refused");
    (StatusCode::UNPROCESSABLE_ENTITY, message).into_response()
}

fn cpix_reply(doc: &Document, speke_version: Option<&str>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, "application/xml".parse().expect("static"));
    headers.insert(
        "speke-user-agent",
        concat!("sluice-reference-key-server/", env!("CARGO_PKG_VERSION"))
            .parse()
            .expect("static"),
    );
    if let Some(version) = speke_version {
        headers.insert("x-speke-version", version.parse().expect("checked"));
        headers.insert(
            "x-speke-user-agent",
            concat!("sluice-reference-key-server/", env!("CARGO_PKG_VERSION"))
                .parse()
                .expect("static"),
        );
    }
    (headers, doc.to_xml()).into_response()
}

fn parse(body: &[u8]) -> Result<Document, Box<Response>> {
    let text = std::str::from_utf8(body).map_err(|_| Box::new(refuse("the CPIX document is not UTF-8".into())))?;
    Document::parse(text).map_err(|e| Box::new(refuse(e.to_string())))
}

async fn speke_v1(State(server): State<KeyServer>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let doc = match parse(&body) {
        Ok(doc) => doc,
        Err(response) => return *response,
    };
    if doc.version != SpekeVersion::V1 {
        return refuse("this is a SPEKE v2 (CPIX 2.3) document; POST it to /speke/v2".into());
    }
    cpix_reply(&server.answer(doc, &server.base(&headers)), None)
}

async fn speke_v2(State(server): State<KeyServer>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let version = headers
        .get("x-speke-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !matches!(version, "2.0" | "2.1") {
        return refuse(format!(
            "Unsupported SPEKE version {version:?}: send X-Speke-Version: 2.0 or 2.1"
        ));
    }
    let version = version.to_owned();
    let doc = match parse(&body) {
        Ok(doc) => doc,
        Err(response) => return *response,
    };
    if doc.version != SpekeVersion::V2 {
        return refuse("Missing CPIX@contentId: this is a SPEKE v1 (CPIX 2.0) document; POST it to /speke/v1".into());
    }
    if let Some(key) = doc.keys.iter().find(|k| k.scheme.is_none()) {
        return refuse(format!("Missing ContentKey@commonEncryptionScheme for KID {}", key.kid));
    }
    cpix_reply(&server.answer(doc, &server.base(&headers)), Some(&version))
}

fn cors(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".parse().expect("static"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        "GET, POST, OPTIONS".parse().expect("static"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        "Content-Type".parse().expect("static"),
    );
    response
}

async fn preflight() -> Response {
    cors(StatusCode::NO_CONTENT.into_response())
}

async fn key_bytes(State(server): State<KeyServer>, Path((content, kid)): Path<(String, String)>) -> Response {
    let Some(kid) = Kid::parse(&kid) else {
        return cors((StatusCode::NOT_FOUND, format!("{kid:?} is not a key id (a UUID)")).into_response());
    };
    let key = server.key(&content, kid);
    cors(
        (
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            key.to_vec(),
        )
            .into_response(),
    )
}

#[derive(serde::Deserialize)]
struct LicenseRequest {
    kids: Vec<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LicenseQuery {
    content_id: Option<String>,
}

/// W3C Encrypted Media Extensions, ClearKey license request and response (§9.1.3, §9.1.4).
async fn license(
    State(server): State<KeyServer>,
    Query(query): Query<LicenseQuery>,
    body: axum::body::Bytes,
) -> Response {
    let request: LicenseRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return cors(
                (
                    StatusCode::BAD_REQUEST,
                    format!("a ClearKey license request is JSON {{\"kids\": [base64url key ids]}}: {e}"),
                )
                    .into_response(),
            )
        }
    };
    let mut keys = Vec::new();
    for encoded in &request.kids {
        let kid = BASE64URL
            .decode(encoded.trim_end_matches('='))
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(Kid);
        let Some(kid) = kid else {
            return cors(
                (
                    StatusCode::BAD_REQUEST,
                    format!("kid {encoded:?} is not 16 bytes in base64url"),
                )
                    .into_response(),
            );
        };
        let content = query
            .content_id
            .clone()
            .or_else(|| server.issued.lock().expect("issued keys").get(&kid).cloned());
        let Some(content) = content else {
            return cors(
                (
                    StatusCode::NOT_FOUND,
                    format!("key {kid} was not issued by this server; give the endpoint's resourceId as ?contentId="),
                )
                    .into_response(),
            );
        };
        keys.push(serde_json::json!({
            "kty": "oct",
            "kid": BASE64URL.encode(kid.0),
            "k": BASE64URL.encode(server.key(&content, kid)),
        }));
    }
    let body = serde_json::json!({
        "keys": keys,
        "type": request.kind.unwrap_or_else(|| "temporary".into()),
    });
    cors(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pssh_box_is_laid_out_as_cenc_says() {
        let system = Kid::parse("1077efec-c0b2-4d02-ace3-3c1e52e2fb4b").unwrap();
        let kid = Kid([9; 16]);
        let b = pssh_box(system, &[kid]);
        assert_eq!(b.len(), 52);
        assert_eq!(&b[..8], &[0, 0, 0, 52, b'p', b's', b's', b'h']);
        assert_eq!(b[8], 1, "version 1 carries KIDs");
        assert_eq!(&b[12..28], &system.0);
        assert_eq!(&b[28..32], &[0, 0, 0, 1]);
        assert_eq!(&b[32..48], &kid.0);
        assert_eq!(&b[48..], &[0, 0, 0, 0]);
    }

    #[test]
    fn keys_depend_on_secret_content_and_kid() {
        let a = KeyServer {
            secret: Arc::new(b"s".to_vec()),
            base_url: None,
            issued: Arc::default(),
        };
        let b = KeyServer {
            secret: Arc::new(b"t".to_vec()),
            ..a.clone()
        };
        let kid = Kid([1; 16]);
        assert_eq!(a.key("c", kid), a.key("c", kid));
        assert_ne!(a.key("c", kid), b.key("c", kid));
        assert_ne!(a.key("c", kid), a.key("d", kid));
        assert_ne!(a.key("c", kid), a.key("c", Kid([2; 16])));
        assert_eq!(
            a.key_url("http://x", "live 1", kid),
            "http://x/keys/live%201/01010101-0101-0101-0101-010101010101"
        );
    }
}
