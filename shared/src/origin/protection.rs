//! The encryption stage of playback: the content key of a segment's key period (from the
//! key cache, which asks the endpoint's SPEKE key provider), the `EXT-X-KEY` tags of a
//! media playlist, and the encrypted segment bytes; for CMAF and DASH, the Common
//! Encryption of the tracks and its signalling (`EXT-X-KEY`, `ContentProtection`).
//!
//! A key that was never obtained is a 404, never clear bytes; when the provider fails
//! after a key was obtained, the last key is used (MediaPackage's rule), and each failed
//! request is logged and counted as `KeyProviderError`.

use super::reply::*;
use crate::app::PlaybackServices;
use crate::keys::system::{CLEARKEY, CLEARKEY_DASH_IF, FAIRPLAY, PLAYREADY};
use crate::keys::{period_of, ContentKey, KeyError};
use crate::live::timeline::OutputSegment;
use crate::manifest::dash::ContentProtection;
use crate::manifest::hls::SegmentKeys;
use crate::media::cenc::{self, Protection, Scheme};
use crate::media::crypto;
use crate::model::{CmafEncryptionMethod, HlsEncryption, OriginEndpoint, Package, SpekeKeyProvider};
use crate::time::{Ticks, UnixMillis};
use bytes::Bytes;

/// Key requests a playlist makes at once (one per key period of its window not cached).
const MAX_CONCURRENT_KEY_REQUESTS: usize = 16;

/// Logs and counts a failed request for `endpoint`'s key of `period`.
fn report(endpoint: &OriginEndpoint, period: u64) -> impl Fn(&KeyError) + '_ {
    move |e: &KeyError| {
        tracing::error!(endpoint = %endpoint.id, period, error = %e, "KeyProviderError");
        crate::metrics::emit(|| crate::metrics::key_provider_error(UnixMillis::now().0, &endpoint.id));
    }
}

/// The key for `period` (its own, or the last key standing in for it).
async fn key_for(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    provider: &SpekeKeyProvider,
    period: u64,
) -> Result<ContentKey, PlaybackError> {
    // The reason is logged; viewers learn only that there is no key (it may name the
    // provider's URL or role).
    app.keys
        .key(provider, period, report(endpoint, period))
        .await
        .map_err(|_| {
            PlaybackError::not_found(format!(
                "endpoint {:?} is encrypted and no content key has been obtained from its key provider yet \
             (the origin logs KeyProviderError with the reason)",
                endpoint.id
            ))
        })
}

/// The `EXT-X-KEY` of an AES-128 segment encrypted with `key`: the provider's key URI,
/// and the IV when it is constant (otherwise players use the media sequence number).
fn ext_x_key(
    endpoint: &OriginEndpoint,
    encryption: &HlsEncryption,
    key: &ContentKey,
) -> Result<m3u8_rs::Key, PlaybackError> {
    let uri = key.key_uri.clone().ok_or_else(|| {
        tracing::error!(endpoint = %endpoint.id, "the key provider's response has no URIExtXKey");
        PlaybackError::Internal(format!(
            "the key provider of endpoint {:?} gave no key URI (URIExtXKey) for AES-128",
            endpoint.id
        ))
    })?;
    Ok(m3u8_rs::Key {
        method: m3u8_rs::KeyMethod::AES128,
        uri: Some(uri),
        iv: constant_iv(encryption, key).map(|iv| crypto::iv_hex(&iv)),
        keyformat: key.key_format.clone(),
        keyformatversions: key.key_format_versions.clone(),
    })
}

/// The configured constant IV, else the provider's explicit IV; `None`: the sequence number.
fn constant_iv(encryption: &HlsEncryption, key: &ContentKey) -> Option<[u8; 16]> {
    encryption
        .constant_initialization_vector
        .as_deref()
        .and_then(crypto::parse_iv)
        .or(key.explicit_iv)
}

/// The key tags of a media playlist's `window`, one per segment, and the key period of
/// each segment's key (its own period's, or the last key's standing in for it).
pub(crate) async fn hls_keys(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    encryption: &HlsEncryption,
    window: &[OutputSegment],
) -> Result<(SegmentKeys, Vec<u64>), PlaybackError> {
    let provider = &encryption.speke_key_provider;
    let rotation = encryption.key_rotation_interval_seconds;
    let mut periods: Vec<u64> = window.iter().map(|s| period_of(s.start, rotation)).collect();
    periods.dedup();
    let mut by_period = std::collections::HashMap::new();
    // A long window with a short rotation has many periods: at most this many requests
    // to the provider at once.
    for batch in periods.chunks(MAX_CONCURRENT_KEY_REQUESTS) {
        let keys = futures_util::future::join_all(batch.iter().map(|p| key_for(app, endpoint, provider, *p))).await;
        for (period, key) in batch.iter().zip(keys) {
            let key = key?;
            by_period.insert(*period, (ext_x_key(endpoint, encryption, &key)?, key.period));
        }
    }
    let of = |s: &OutputSegment| &by_period[&period_of(s.start, rotation)];
    let keys = SegmentKeys {
        keys: window.iter().map(|s| vec![of(s).0.clone()]).collect(),
        repeat: encryption.repeat_ext_x_key,
    };
    Ok((keys, window.iter().map(|s| of(s).1).collect()))
}

/// An output segment of `sequence`, starting at `start`, encrypted as one AES-128-CBC
/// stream with the key of `key_period` (named by the segment: its own period's, or an
/// earlier one whose key stood in when the playlist listed it).
pub(crate) async fn encrypt_ts_segment(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    encryption: &HlsEncryption,
    sequence: u64,
    start: Ticks,
    key_period: u64,
    parts: &[Bytes],
) -> Result<Bytes, PlaybackError> {
    let rotation = encryption.key_rotation_interval_seconds;
    if key_period > period_of(start, rotation) {
        return Err(PlaybackError::not_found(format!(
            "segment {} of endpoint {:?} is not encrypted with the key of the later period {key_period}",
            start.0, endpoint.id
        )));
    }
    let provider = &encryption.speke_key_provider;
    // Exactly that period's key: no stand-in, the playlist named this one.
    let key = app
        .keys
        .exact(provider, key_period, report(endpoint, key_period))
        .await
        .map_err(|_| {
            PlaybackError::Unavailable(format!(
                "the content key of endpoint {:?} for this segment cannot be obtained from its key provider now; retry",
                endpoint.id
            ))
        })?;
    let iv = constant_iv(encryption, &key).unwrap_or_else(|| crypto::sequence_iv(sequence));
    Ok(Bytes::from(crypto::aes128_cbc(&key.key, &iv, parts)))
}

/// Common Encryption of a CMAF or DASH endpoint: its scheme, provider and constant IV.
pub(crate) struct CommonEncryption<'a> {
    pub scheme: Scheme,
    pub provider: &'a SpekeKeyProvider,
    pub constant_iv: Option<&'a str>,
}

/// The Common Encryption of `endpoint`, if it is an encrypted CMAF or DASH endpoint.
pub(crate) fn common_encryption(endpoint: &OriginEndpoint) -> Option<CommonEncryption<'_>> {
    match &endpoint.package {
        Package::Cmaf(cmaf) => cmaf.encryption.as_ref().map(|e| CommonEncryption {
            scheme: match e.encryption_method {
                CmafEncryptionMethod::SampleAes => Scheme::Cbcs,
                CmafEncryptionMethod::AesCtr => Scheme::Cenc,
            },
            provider: &e.speke_key_provider,
            constant_iv: e.constant_initialization_vector.as_deref(),
        }),
        Package::Dash(dash) => dash.encryption.as_ref().map(|e| CommonEncryption {
            scheme: Scheme::Cenc,
            provider: &e.speke_key_provider,
            constant_iv: None,
        }),
        Package::Hls(_) => None,
    }
}

/// The key of a Common Encryption endpoint (one for the whole stream: key period 0) and
/// how its tracks are encrypted with it.
pub(crate) async fn common_protection(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    encryption: &CommonEncryption<'_>,
) -> Result<(Protection, ContentKey), PlaybackError> {
    let key = key_for(app, endpoint, encryption.provider, 0).await?;
    let constant_iv = encryption
        .constant_iv
        .and_then(crypto::parse_iv)
        .or(key.explicit_iv)
        .unwrap_or_else(|| cenc::derived_iv(&key.kid.0));
    let protection = Protection {
        scheme: encryption.scheme,
        kid: key.kid.0,
        key: key.key,
        constant_iv,
        pssh: key.systems.iter().filter_map(|s| s.pssh.clone()).collect(),
    };
    Ok((protection, key))
}

/// The `EXT-X-KEY` (and `EXT-X-SESSION-KEY`) tags of CMAF HLS: one per DRM system a
/// player finds in a playlist. ClearKey as hls.js reads it (`org.w3.clearkey`, the KID
/// in a data URI), Widevine and others with their `pssh` box, PlayReady with its header,
/// FairPlay (`cbcs` only) with the provider's `skd://` URI.
pub(crate) fn cmaf_key_tags(scheme: Scheme, key: &ContentKey) -> Vec<m3u8_rs::Key> {
    use base64::Engine;
    let base64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let method = match scheme {
        Scheme::Cbcs => m3u8_rs::KeyMethod::SampleAES,
        Scheme::Cenc => m3u8_rs::KeyMethod::Other("SAMPLE-AES-CTR".into()),
    };
    let tag = |uri: String, format: String| m3u8_rs::Key {
        method: method.clone(),
        uri: Some(uri),
        iv: None,
        keyformat: Some(format),
        keyformatversions: Some("1".into()),
    };
    let mut tags: Vec<m3u8_rs::Key> = Vec::new();
    for system in &key.systems {
        let id = system.system_id.to_string();
        let given = system.key_format.clone();
        let next = match id.as_str() {
            CLEARKEY | CLEARKEY_DASH_IF => Some(tag(
                format!("data:text/plain;base64,{}", base64(&key.kid.0)),
                "org.w3.clearkey".into(),
            )),
            FAIRPLAY => system
                .key_uri
                .clone()
                .filter(|_| scheme == Scheme::Cbcs)
                .map(|uri| tag(uri, given.unwrap_or_else(|| "com.apple.streamingkeydelivery".into()))),
            PLAYREADY => system.pssh.as_deref().and_then(pssh_data).map(|header| {
                tag(
                    format!("data:text/plain;charset=UTF-16;base64,{}", base64(header)),
                    given.unwrap_or_else(|| "com.microsoft.playready".into()),
                )
            }),
            _ => system.pssh.as_deref().map(|pssh| {
                tag(
                    format!("data:text/plain;base64,{}", base64(pssh)),
                    given.unwrap_or_else(|| format!("urn:uuid:{id}")),
                )
            }),
        };
        if let Some(next) = next.filter(|t| !tags.contains(t)) {
            tags.push(next);
        }
    }
    tags
}

/// The system data of a `pssh` box (after its KIDs in version 1).
fn pssh_data(pssh: &[u8]) -> Option<&[u8]> {
    let mut at = 28;
    if pssh.get(8) == Some(&1) {
        let count = u32::from_be_bytes(pssh.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4 + 16 * count;
    }
    let size = u32::from_be_bytes(pssh.get(at..at + 4)?.try_into().ok()?) as usize;
    pssh.get(at + 4..at + 4 + size)
}

/// The `ContentProtection` of an encrypted DASH presentation.
pub(crate) fn dash_content_protection(protection: &Protection, key: &ContentKey) -> ContentProtection {
    use base64::Engine;
    ContentProtection {
        scheme: match protection.scheme {
            Scheme::Cenc => "cenc",
            Scheme::Cbcs => "cbcs",
        },
        default_kid: key.kid.to_string(),
        systems: key
            .systems
            .iter()
            .map(|s| {
                let pssh = s
                    .pssh
                    .as_deref()
                    .map(|p| base64::engine::general_purpose::STANDARD.encode(p));
                (s.system_id.to_string(), pssh)
            })
            .collect(),
    }
}
