//! The encryption stage of playback: the content key of a segment's key period (from the
//! key cache, which asks the endpoint's SPEKE key provider), the `EXT-X-KEY` tags of a
//! media playlist, and the encrypted segment bytes (Common Encryption of CMAF and DASH
//! is in [`super::cenc`]).
//!
//! A key that was never obtained is a 404, never clear bytes; when the provider fails
//! after a key was obtained, the last key is used (MediaPackage's rule), and each failed
//! request is logged and counted as `KeyProviderError`.

use super::reply::*;
use crate::app::PlaybackServices;
use crate::keys::{period_of, ContentKey, KeyError};
use crate::live::timeline::OutputSegment;
use crate::manifest::hls::SegmentKeys;
use crate::media::{cenc, crypto, sample_aes};
use crate::model::{HlsEncryption, HlsEncryptionMethod, OriginEndpoint, SpekeKeyProvider};
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

/// The `commonEncryptionScheme` SPEKE v2 asks keys for: a CMAF or DASH endpoint's.
fn scheme_of(endpoint: &OriginEndpoint) -> Option<&'static str> {
    super::cenc::common_encryption(endpoint).map(|e| e.scheme.name())
}

/// The key for `period` (its own, or the last key standing in for it).
pub(super) async fn key_for(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    provider: &SpekeKeyProvider,
    period: u64,
) -> Result<ContentKey, PlaybackError> {
    // The reason is logged; viewers learn only that there is no key (it may name the
    // provider's URL or role).
    app.keys
        .key(provider, scheme_of(endpoint), period, report(endpoint, period))
        .await
        .map_err(|_| {
            PlaybackError::not_found(format!(
                "endpoint {:?} is encrypted and no content key has been obtained from its key provider yet \
             (the origin logs KeyProviderError with the reason)",
                endpoint.id
            ))
        })
}

/// The `EXT-X-KEY` of an AES-128 or SAMPLE-AES segment encrypted with `key`: the
/// provider's key URI (and key format, for FairPlay), and the IV unless it is the media
/// sequence number ([`explicit_iv`]).
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
        method: match encryption.encryption_method {
            HlsEncryptionMethod::Aes128 => m3u8_rs::KeyMethod::AES128,
            HlsEncryptionMethod::SampleAes => m3u8_rs::KeyMethod::SampleAES,
        },
        uri: Some(uri),
        iv: explicit_iv(encryption, key).map(|iv| crypto::iv_hex(&iv)),
        keyformat: key.key_format.clone(),
        keyformatversions: key.key_format_versions.clone(),
    })
}

/// The IV a segment encrypted with `key` names in its `EXT-X-KEY`: the configured
/// constant IV, else the provider's explicit IV; else, for SAMPLE-AES, one derived from
/// the KID (the same on every instance, one per key); `None`: the media sequence number
/// (AES-128). SAMPLE-AES always names its IV: hls.js takes a SAMPLE-AES IV only from the
/// tag, and FFmpeg decrypts the last access units of a segment once it has moved on to
/// the next one, which only a key period's single IV makes right.
fn explicit_iv(encryption: &HlsEncryption, key: &ContentKey) -> Option<[u8; 16]> {
    let configured = encryption
        .constant_initialization_vector
        .as_deref()
        .and_then(crypto::parse_iv)
        .or(key.explicit_iv);
    match encryption.encryption_method {
        HlsEncryptionMethod::Aes128 => configured,
        HlsEncryptionMethod::SampleAes => Some(configured.unwrap_or_else(|| cenc::derived_iv(&key.kid.0))),
    }
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
    let mut by_period = std::collections::HashMap::new();
    for (period, key) in window_keys(app, endpoint, provider, rotation, window).await? {
        by_period.insert(period, (ext_x_key(endpoint, encryption, &key)?, key.period));
    }
    let of = |s: &OutputSegment| &by_period[&period_of(s.start, rotation)];
    let keys = SegmentKeys {
        keys: window.iter().map(|s| vec![of(s).0.clone()]).collect(),
        repeat: encryption.repeat_ext_x_key,
        maps: None,
    };
    Ok((keys, window.iter().map(|s| of(s).1).collect()))
}

/// The key of each key period of `window` (its own, or the last key standing in for it).
pub(super) async fn window_keys(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    provider: &SpekeKeyProvider,
    rotation: u32,
    window: &[OutputSegment],
) -> Result<std::collections::HashMap<u64, ContentKey>, PlaybackError> {
    let mut periods: Vec<u64> = window.iter().map(|s| period_of(s.start, rotation)).collect();
    periods.dedup();
    let mut by_period = std::collections::HashMap::new();
    // A long window with a short rotation has many periods: at most this many requests
    // to the provider at once.
    for batch in periods.chunks(MAX_CONCURRENT_KEY_REQUESTS) {
        let keys = futures_util::future::join_all(batch.iter().map(|p| key_for(app, endpoint, provider, *p))).await;
        for (period, key) in batch.iter().zip(keys) {
            by_period.insert(*period, key?);
        }
    }
    Ok(by_period)
}

/// Exactly the key of `period` (no stand-in: a segment name chose it), or 503.
pub(super) async fn exact_key(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    provider: &SpekeKeyProvider,
    period: u64,
) -> Result<ContentKey, PlaybackError> {
    app.keys
        .exact(provider, scheme_of(endpoint), period, report(endpoint, period))
        .await
        .map_err(|_| {
            PlaybackError::Unavailable(format!(
                "the content key of endpoint {:?} for this segment cannot be obtained from its key provider now; retry",
                endpoint.id
            ))
        })
}

/// An output segment of `sequence`, starting at `start`, encrypted with the key of
/// `key_period` (named by the segment: its own period's, or an earlier one whose key
/// stood in when the playlist listed it): AES-128 as one CBC stream, SAMPLE-AES sample
/// by sample ([`crate::media::sample_aes`]).
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
    let key = exact_key(app, endpoint, &encryption.speke_key_provider, key_period).await?;
    let iv = explicit_iv(encryption, &key).unwrap_or_else(|| crypto::sequence_iv(sequence));
    match encryption.encryption_method {
        HlsEncryptionMethod::Aes128 => Ok(Bytes::from(crypto::aes128_cbc(&key.key, &iv, parts))),
        HlsEncryptionMethod::SampleAes => {
            // One stored part (the usual case) is encrypted from where it is.
            let joined;
            let segment: &[u8] = match parts {
                [one] => one,
                _ => {
                    joined = parts.concat();
                    &joined
                }
            };
            sample_aes::encrypt_ts(&key.key, &iv, segment)
                .map(Bytes::from)
                .map_err(|e| {
                    tracing::error!(endpoint = %endpoint.id, segment = start.0, error = %e, "SAMPLE-AES failed");
                    PlaybackError::Internal(format!(
                        "segment {} of endpoint {:?} cannot be encrypted with SAMPLE-AES: {e}",
                        start.0, endpoint.id
                    ))
                })
        }
    }
}
