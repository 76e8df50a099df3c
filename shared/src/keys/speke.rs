//! The SPEKE adapter of [`KeyProvider`]: a CPIX request POSTed to the endpoint's
//! `spekeKeyProvider.url`, the key read from the CPIX response. SPEKE v1 (CPIX 2.0) when
//! the endpoint has no `encryptionContractConfiguration`; SPEKE v2 (CPIX 2.3,
//! `X-Speke-Version: 2.0`) when it has one, whose presets are SHARED: one key per
//! period for every track.

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
    ) -> Result<(u16, Option<String>, Bytes), KeyError> {
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
            let version = response
                .headers()
                .get("x-speke-version")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok((status, version, body))
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

/// The SPEKE v2 request for one key of one period, for every track (the SHARED presets:
/// `intendedTrackType="ALL"` with empty video and audio filters), in `request.scheme`.
pub fn v2_request(request: &KeyRequest<'_>) -> Document {
    let mut doc = v1_request(request);
    doc.version = SpekeVersion::V2;
    doc.keys[0].scheme = Some(request.scheme.unwrap_or("cenc").to_owned());
    for rule in &mut doc.usage_rules {
        rule.intended_track_type = Some("ALL".into());
        rule.video_filter = Some(Vec::new());
        rule.audio_filter = Some(Vec::new());
    }
    doc
}

/// The `EXT-X-KEY` tag of a SPEKE v2 `HLSSignalingData playlist="media"` line, read by
/// m3u8-rs.
fn ext_x_key(line: &str) -> Option<m3u8_rs::Key> {
    if !line.starts_with("#EXT-X-KEY:") || line.contains(['\r', '\n']) {
        return None;
    }
    let playlist = ["#EXTM3U\n#EXT-X-TARGETDURATION:1\n", line, "\n#EXTINF:1,\nsegment.ts\n"].concat();
    let parsed = m3u8_rs::parse_media_playlist_res(playlist.as_bytes()).ok()?;
    parsed.segments.first()?.key.clone()
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
    // A SPEKE v2 answer is a CPIX 2.3 document (`contentId`); a v1 answer is taken as
    // before, whatever attributes it has.
    if request.provider.encryption_contract_configuration.is_some() && doc.version != SpekeVersion::V2 {
        return Err(malformed(
            "a SPEKE v2 (CPIX 2.3) request was answered with a CPIX 2.0 document (no CPIX@contentId)".into(),
        ));
    }
    // Playlist attribute values: no quote or line break may come through (it would end
    // the attribute or add a tag).
    let checked = |what: &str, value: Option<String>| -> Result<Option<String>, KeyError> {
        match value {
            Some(v) if v.is_empty() || v.contains(['"', '\r', '\n']) => {
                Err(malformed(format!("{what} {v:?} cannot go into a playlist attribute")))
            }
            value => Ok(value),
        }
    };
    let text = |what: &str, value: Option<&str>| -> Result<Option<String>, KeyError> {
        let Some(encoded) = value else { return Ok(None) };
        let decoded = cpix::base64_text(encoded).ok_or_else(|| malformed(format!("{what} is not base64 text")))?;
        checked(what, Some(decoded))
    };
    // (key URI, KEYFORMAT, KEYFORMATVERSIONS) of a DRM system: SPEKE v1 gives each
    // value, SPEKE v2 the whole `EXT-X-KEY` line.
    let signalling = |drm: Option<&DrmSystem>| -> Result<[Option<String>; 3], KeyError> {
        let Some(drm) = drm else { return Ok([None, None, None]) };
        if doc.version == SpekeVersion::V1 {
            return Ok([
                text("URIExtXKey", drm.uri_ext_x_key.as_deref())?,
                text("KeyFormat", drm.key_format.as_deref())?,
                text("KeyFormatVersions", drm.key_format_versions.as_deref())?,
            ]);
        }
        let Some(encoded) = drm.hls_media.as_deref() else {
            return Ok([None, None, None]);
        };
        let line = cpix::base64_text(encoded).ok_or_else(|| malformed("HLSSignalingData is not base64 text".into()))?;
        let line = line.trim_end_matches(['\r', '\n']);
        let key =
            ext_x_key(line).ok_or_else(|| malformed(format!("HLSSignalingData {line:?} is not one #EXT-X-KEY tag")))?;
        Ok([
            checked("HLSSignalingData URI", key.uri)?,
            checked("HLSSignalingData KEYFORMAT", key.keyformat)?,
            checked("HLSSignalingData KEYFORMATVERSIONS", key.keyformatversions)?,
        ])
    };
    let [key_uri, key_format, key_format_versions] = signalling(drm)?;
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
        let [key_uri, key_format, key_format_versions] = signalling(drm)?;
        if key_uri.is_none() && id.eq_ignore_ascii_case(super::system::FAIRPLAY) {
            return Err(malformed(format!(
                "no key URI for FairPlay {id} (SPEKE v1 URIExtXKey, v2 HLSSignalingData): HLS players would \
                 find no EXT-X-KEY for it"
            )));
        }
        systems.push(SystemData {
            system_id: system,
            pssh,
            key_uri,
            key_format,
            key_format_versions,
        });
    }
    Ok(ContentKey {
        kid: request.kid,
        key: secret,
        period: request.period,
        explicit_iv: key.explicit_iv,
        key_uri,
        key_format,
        key_format_versions,
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
        let v2 = request.provider.encryption_contract_configuration.is_some();
        let (document, headers): (_, &[(&str, &str)]) = match v2 {
            true => (v2_request(request).to_xml(), &[("x-speke-version", "2.0")]),
            false => (v1_request(request).to_xml(), &[]),
        };
        let role = &request.provider.role_arn;
        let (status, version, body) = self.exchange(url, role, headers, document).await?;
        let text = String::from_utf8_lossy(&body);
        if !(200..300).contains(&status) {
            return Err(KeyError::Refused {
                url: url.clone(),
                status,
                body: text.chars().take(300).collect(),
            });
        }
        if v2 && version.as_deref() != Some("2.0") {
            return Err(KeyError::Malformed {
                url: url.clone(),
                reason: format!("a SPEKE v2 answer must echo X-Speke-Version: 2.0; it had {version:?}"),
            });
        }
        key_from_response(request, &text)
    }
}

#[cfg(test)]
mod tests;
