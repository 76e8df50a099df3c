//! Common Encryption of CMAF and DASH endpoints at playback: which key encrypts a
//! segment (one per key period of `keyRotationIntervalSeconds`; CMAF HLS names the
//! period in its file names, as HLS TS does), the `Protection` of the tracks with it, and
//! its signalling: CMAF HLS `EXT-X-KEY`/`EXT-X-SESSION-KEY`, DASH `ContentProtection`.
//!
//! Key rotation gives every key period its own KID, so its own init segment
//! (`tenc` holds the default KID): a CMAF HLS media playlist writes a new `EXT-X-MAP`
//! and new key tags where the period changes. Per-sample-group KIDs (`seig` in each
//! fragment) would keep one init segment, but players then need key-rotation support
//! in their MSE path; a new init segment is what every player handles.

use super::protection::{exact_key, key_for, window_keys};
use super::reply::*;
use crate::app::PlaybackServices;
use crate::keys::system::{CLEARKEY, CLEARKEY_DASH_IF, FAIRPLAY, PLAYREADY};
use crate::keys::{period_of, ContentKey};
use crate::live::timeline::OutputSegment;
use crate::manifest::dash::ContentProtection;
use crate::media::cenc::{self, Protection, Scheme};
use crate::media::crypto;
use crate::model::{CmafEncryptionMethod, OriginEndpoint, Package, SpekeKeyProvider};
use crate::time::Ticks;
use base64::Engine;
use std::collections::HashMap;

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Common Encryption of a CMAF or DASH endpoint.
pub(crate) struct CommonEncryption<'a> {
    pub scheme: Scheme,
    pub provider: &'a SpekeKeyProvider,
    pub constant_iv: Option<&'a str>,
    /// `keyRotationIntervalSeconds`; 0: one key (period 0) for the whole stream.
    pub rotation: u32,
}

impl CommonEncryption<'_> {
    /// The key period of a segment starting at `start`.
    pub fn period_of(&self, start: Ticks) -> u64 {
        period_of(start, self.rotation)
    }

    /// How tracks are encrypted with `key`.
    pub fn protection(&self, key: &ContentKey) -> Protection {
        let constant_iv = self
            .constant_iv
            .and_then(crypto::parse_iv)
            .or(key.explicit_iv)
            .unwrap_or_else(|| cenc::derived_iv(&key.kid.0));
        Protection {
            scheme: self.scheme,
            kid: key.kid.0,
            key: key.key,
            constant_iv,
            pssh: key.systems.iter().filter_map(|s| s.pssh.clone()).collect(),
        }
    }
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
            rotation: e.key_rotation_interval_seconds,
        }),
        Package::Dash(dash) => dash.encryption.as_ref().map(|e| CommonEncryption {
            scheme: Scheme::Cenc,
            provider: &e.speke_key_provider,
            constant_iv: None,
            rotation: e.key_rotation_interval_seconds,
        }),
        Package::Hls(_) => None,
    }
}

/// The key of a segment or init segment. With rotation its name gives the key period
/// (`key_period`, at most `latest`: the segment's own period, or the newest for an init
/// segment) and exactly that key is used; without, the one key of period 0.
pub(crate) async fn segment_key(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    encryption: &CommonEncryption<'_>,
    key_period: Option<u64>,
    latest: u64,
) -> Result<ContentKey, PlaybackError> {
    let named = |what: String| {
        PlaybackError::not_found(format!(
            "endpoint {:?} {what}; take segment names from its playlists",
            endpoint.id
        ))
    };
    match (encryption.rotation, key_period) {
        (0, None) => key_for(app, endpoint, encryption.provider, 0).await,
        (0, Some(_)) => Err(named("rotates no keys: its segment names have no key period".into())),
        (_, None) => Err(named(
            "rotates keys: its segment names end in .k{key period}.mp4".into(),
        )),
        (_, Some(period)) if period > latest => Err(named(format!("has no key period {period} for this segment yet"))),
        (_, Some(period)) => exact_key(app, endpoint, encryption.provider, period).await,
    }
}

/// The key of each segment of a CMAF HLS media playlist's `window`: its own period's,
/// or the last key standing in for it.
pub(crate) async fn window_segment_keys(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    encryption: &CommonEncryption<'_>,
    window: &[OutputSegment],
) -> Result<Vec<ContentKey>, PlaybackError> {
    let by_period: HashMap<u64, ContentKey> =
        window_keys(app, endpoint, encryption.provider, encryption.rotation, window).await?;
    Ok(window
        .iter()
        .map(|s| by_period[&encryption.period_of(s.start)].clone())
        .collect())
}

/// `.k{period}` at the end of a CMAF file name's stem, taken off: the file name without
/// it and the period. Only `.k` and digits is a key period (a rendition id may hold `.k`).
pub(crate) fn split_key_period(file: &str) -> (String, Option<u64>) {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let split = file
        .strip_suffix(".mp4")
        .and_then(|stem| stem.rsplit_once(".k"))
        .filter(|(_, p)| digits(p))
        .and_then(|(rest, p)| Some((format!("{rest}.mp4"), Some(p.parse().ok()?))));
    split.unwrap_or_else(|| (file.to_owned(), None))
}

/// The `EXT-X-KEY` (and `EXT-X-SESSION-KEY`) tags of CMAF HLS: one per DRM system a
/// player finds in a playlist. ClearKey as hls.js reads it (`org.w3.clearkey`, the KID
/// in a data URI) and, for `cenc`, as Shaka Player does (`identity`, the key's URL), Widevine and others with their `pssh` box, PlayReady with its header,
/// FairPlay (`cbcs` only) with the provider's `skd://` URI.
pub(crate) fn cmaf_key_tags(scheme: Scheme, key: &ContentKey) -> Vec<m3u8_rs::Key> {
    let method = match scheme {
        Scheme::Cbcs => m3u8_rs::KeyMethod::SampleAES,
        Scheme::Cenc => m3u8_rs::KeyMethod::Other("SAMPLE-AES-CTR".into()),
    };
    let mut tags: Vec<m3u8_rs::Key> = Vec::new();
    for system in &key.systems {
        let id = system.system_id.to_string();
        let given = system.key_format.clone();
        // The provider's KEYFORMATVERSIONS where it gave one (HLSSignalingData, SPEKE v1
        // attributes), else version 1 of the format.
        let versions = system.key_format_versions.clone().unwrap_or_else(|| "1".into());
        let tag = |uri: String, format: String| m3u8_rs::Key {
            method: method.clone(),
            uri: Some(uri),
            iv: None,
            keyformat: Some(format),
            keyformatversions: Some(versions.clone()),
        };
        let next = match id.as_str() {
            CLEARKEY | CLEARKEY_DASH_IF => {
                let clearkey = tag(
                    format!("data:text/plain;base64,{}", base64(&key.kid.0)),
                    "org.w3.clearkey".into(),
                );
                if !tags.contains(&clearkey) {
                    tags.push(clearkey);
                }
                // The key's own URL, if the provider gave one: an `identity` key tag is how
                // Shaka Player takes a ClearKey key. Not with SAMPLE-AES: hls.js takes
                // `identity` SAMPLE-AES for its own TS decryption and then plays no EME.
                system
                    .key_uri
                    .clone()
                    .filter(|_| scheme == Scheme::Cenc)
                    .map(|uri| tag(uri, "identity".into()))
            }
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

/// The `ContentProtection` of an encrypted DASH presentation. The W3C common system id
/// names no DRM system but the `pssh` format of ClearKey (it stays in the init segment):
/// an MPD signals ClearKey as DASH-IF ClearKey (DASH-IF IOP §7.6.2.4), with no `pssh`;
/// dash.js would pass a common `pssh` from the MPD to the CDM as a key id list and fail.
pub(crate) fn dash_content_protection(scheme: Scheme, key: &ContentKey) -> ContentProtection {
    let mut systems: Vec<(String, Option<String>)> = Vec::new();
    for s in &key.systems {
        let next = match s.system_id.to_string().as_str() {
            CLEARKEY | CLEARKEY_DASH_IF => (CLEARKEY_DASH_IF.to_owned(), None),
            id => (id.to_owned(), s.pssh.as_deref().map(base64)),
        };
        if !systems.contains(&next) {
            systems.push(next);
        }
    }
    ContentProtection {
        scheme: match scheme {
            Scheme::Cenc => "cenc",
            Scheme::Cbcs => "cbcs",
        },
        default_kid: key.kid.to_string(),
        systems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_periods_come_off_file_names() {
        assert_eq!(
            split_key_period("p_video_a_9.k3.mp4"),
            ("p_video_a_9.mp4".into(), Some(3))
        );
        assert_eq!(
            split_key_period("p_video_a_init.k0.mp4"),
            ("p_video_a_init.mp4".into(), Some(0))
        );
        assert_eq!(
            split_key_period("p_video_a.k5_9.mp4"),
            ("p_video_a.k5_9.mp4".into(), None)
        );
        assert_eq!(
            split_key_period("p_video_a_9.k.mp4"),
            ("p_video_a_9.k.mp4".into(), None)
        );
    }
}
