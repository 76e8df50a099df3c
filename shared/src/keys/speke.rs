//! The SPEKE adapter of [`KeyProvider`]: a CPIX request POSTed to the endpoint's
//! `spekeKeyProvider.url`, the key read from the CPIX response. SPEKE v1 (CPIX 2.0) when
//! the endpoint has no `encryptionContractConfiguration`.

use super::cpix::Kid;
use super::cpix::{self, Document, DrmSystem, KeyPeriod, SpekeVersion, UsageRule};
use super::signing::Signer;
use super::{ContentKey, KeyError, KeyProvider, KeyRequest, KeyResult, SystemData};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

type Https = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;

/// HLS AES-128's system id (not an official one; SPEKE's convention).
pub const AES_128_SYSTEM_ID: &str = "81376844-f976-481e-a84e-cc25d39b0b33";

/// The longest CPIX response read.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Talks SPEKE over HTTP or HTTPS, each exchange bounded by `timeout`.
pub struct SpekeClient {
    client: Client<Https, Full<Bytes>>,
    timeout: Duration,
    signer: Signer,
}

impl SpekeClient {
    pub fn new(timeout: Duration, signer: Signer) -> SpekeClient {
        let tls = || {
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_native_roots(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
        };
        let builder = tls().unwrap_or_else(|e| {
            // Plain HTTP still works (the reference key server on a laptop); HTTPS fails
            // each request with the reason.
            tracing::warn!(error = %e, "no usable system root certificates: HTTPS key providers cannot be verified");
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
            )
        });
        let https = builder.https_or_http().enable_http1().build();
        SpekeClient {
            client: Client::builder(TokioExecutor::new()).build(https),
            timeout,
            signer,
        }
    }

    /// POSTs `body` to `url`, signed for `role_arn` when signing is on; the whole exchange
    /// (assuming the role included) is bounded by the timeout.
    async fn exchange(
        &self,
        url: &str,
        role_arn: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Result<(u16, Bytes), KeyError> {
        let unreachable = |reason: String| KeyError::Unreachable {
            url: url.to_owned(),
            reason,
        };
        let body = Bytes::from(body);
        let mut request = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, "application/xml")
            .header(http::header::USER_AGENT, concat!("sluice/", env!("CARGO_PKG_VERSION")));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request
            .body(Full::new(body.clone()))
            .map_err(|e| unreachable(format!("bad URL: {e}")))?;
        let exchange = async {
            self.signer.sign(&mut request, &body, role_arn).await?;
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| unreachable(error_chain(&e)))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| KeyError::Timeout {
                url: url.to_owned(),
                millis: self.timeout.as_millis() as u64,
            })?
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The SPEKE v1 request for one key of one period.
pub fn v1_request(request: &KeyRequest<'_>) -> Document {
    let period_id = format!("keyPeriod_{}", request.kid);
    Document {
        version: SpekeVersion::V1,
        content_id: request.provider.resource_id.clone(),
        keys: vec![cpix::ContentKey {
            kid: request.kid,
            scheme: None,
            explicit_iv: None,
            secret: None,
        }],
        drm_systems: request
            .provider
            .system_ids
            .iter()
            .map(|system_id| DrmSystem {
                kid: Some(request.kid),
                system_id: system_id.to_ascii_lowercase(),
                ..DrmSystem::default()
            })
            .collect(),
        periods: vec![KeyPeriod {
            id: period_id.clone(),
            index: request.period,
        }],
        usage_rules: vec![UsageRule {
            kid: Some(request.kid),
            period_ids: vec![period_id],
            ..UsageRule::default()
        }],
    }
}

/// The key a CPIX response gives for `request`.
pub fn key_from_response(request: &KeyRequest<'_>, body: &str) -> KeyResult {
    let malformed = |reason: String| KeyError::Malformed {
        url: request.provider.url.clone(),
        reason,
    };
    let doc = Document::parse(body).map_err(|e| malformed(e.to_string()))?;
    let key = doc
        .key(request.kid)
        .ok_or_else(|| malformed(format!("no ContentKey for the requested kid {}", request.kid)))?;
    let secret = key
        .secret
        .ok_or_else(|| malformed(format!("the ContentKey {} has no key value", request.kid)))?;
    let system_id = request
        .provider
        .system_ids
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    let drm = doc.drm_system(request.kid, system_id);
    // Playlist attribute values: no quote or line break may come through (it would end
    // the attribute or add a tag).
    let text = |what: &str, value: Option<&str>| -> Result<Option<String>, KeyError> {
        let Some(encoded) = value else { return Ok(None) };
        let decoded = cpix::base64_text(encoded).ok_or_else(|| malformed(format!("{what} is not base64 text")))?;
        if decoded.is_empty() || decoded.contains(['"', '\r', '\n']) {
            return Err(malformed(format!(
                "{what} {decoded:?} cannot go into a playlist attribute"
            )));
        }
        Ok(Some(decoded))
    };
    let key_uri = text("URIExtXKey", drm.and_then(|d| d.uri_ext_x_key.as_deref()))?;
    if key_uri.is_none() && system_id.eq_ignore_ascii_case(AES_128_SYSTEM_ID) {
        return Err(malformed(format!(
            "no URIExtXKey for the AES-128 system id {AES_128_SYSTEM_ID}: players would have no key URL"
        )));
    }
    let mut systems = Vec::new();
    for id in &request.provider.system_ids {
        let system = Kid::parse(id).ok_or_else(|| malformed(format!("system id {id:?} is not a UUID")))?;
        let drm = doc.drm_system(request.kid, id);
        let pssh = match drm.and_then(|d| d.pssh.as_deref()) {
            Some(encoded) => {
                Some(pssh_box(encoded, system).map_err(|reason| malformed(format!("PSSH of {id}: {reason}")))?)
            }
            None => None,
        };
        systems.push(SystemData {
            system_id: system,
            pssh,
            key_uri: text("URIExtXKey", drm.and_then(|d| d.uri_ext_x_key.as_deref()))?,
            key_format: text("KeyFormat", drm.and_then(|d| d.key_format.as_deref()))?,
            key_format_versions: text("KeyFormatVersions", drm.and_then(|d| d.key_format_versions.as_deref()))?,
        });
    }
    Ok(ContentKey {
        kid: request.kid,
        key: secret,
        period: request.period,
        explicit_iv: key.explicit_iv,
        key_uri,
        key_format: text("KeyFormat", drm.and_then(|d| d.key_format.as_deref()))?,
        key_format_versions: text("KeyFormatVersions", drm.and_then(|d| d.key_format_versions.as_deref()))?,
        systems,
    })
}

/// A CPIX `PSSH` value: base64 of one whole `pssh` box (ISO/IEC 23001-7 §8.1) of `system`.
fn pssh_box(encoded: &str, system: Kid) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let compact: String = encoded.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| format!("not base64: {e}"))?;
    let size = bytes
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize);
    if bytes.len() < 32 || size != Some(bytes.len()) || &bytes[4..8] != b"pssh" {
        return Err(format!("not one pssh box ({} bytes)", bytes.len()));
    }
    if bytes[12..28] != system.0 {
        return Err("the box names another system id".into());
    }
    Ok(bytes)
}

#[async_trait::async_trait]
impl KeyProvider for SpekeClient {
    async fn fetch(&self, request: &KeyRequest<'_>) -> KeyResult {
        let url = &request.provider.url;
        let document = v1_request(request).to_xml();
        let role = &request.provider.role_arn;
        let (status, body) = self.exchange(url, role, &[], document).await?;
        let text = String::from_utf8_lossy(&body);
        if !(200..300).contains(&status) {
            return Err(KeyError::Refused {
                url: url.clone(),
                status,
                body: text.chars().take(300).collect(),
            });
        }
        key_from_response(request, &text)
    }
}
