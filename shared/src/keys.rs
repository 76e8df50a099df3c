//! Content keys of encrypted packages: the key-provider port ([`KeyProvider`]), its SPEKE
//! adapter ([`speke::SpekeClient`]), CPIX documents ([`cpix`]) and the per-process key
//! cache ([`Keys`]).
//!
//! A key period is a pure function of media time and `keyRotationIntervalSeconds`
//! ([`period_of`]), and a period's KID of the endpoint's `resourceId` and the period
//! ([`kid_for`]), so every origin instance (every Lambda) asks for the same key for the
//! same segment, and asks the provider at most once per period while it is reachable.

pub mod cpix;
pub mod signing;
pub mod speke;

use crate::model::SpekeKeyProvider;
use crate::time::Ticks;
use cpix::Kid;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// DRM system ids (DASH-IF registry) Sluice signals in its own way.
pub mod system {
    /// W3C ClearKey's common `pssh` system id (what Chromium's ClearKey CDM reads).
    pub const CLEARKEY: &str = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b";
    /// DASH-IF's ClearKey scheme (what dash.js and Shaka look for in an MPD).
    pub const CLEARKEY_DASH_IF: &str = "e2719d58-a985-b3c9-781a-b030af78d30e";
    pub const WIDEVINE: &str = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed";
    pub const PLAYREADY: &str = "9a04f079-9840-4286-ab92-e65be0885f95";
    pub const FAIRPLAY: &str = "94ce86fb-07ff-4f43-adb8-93d2fa968ca2";
}

/// One key of an endpoint, for one key period.
#[derive(Clone, Debug, PartialEq)]
pub struct ContentKey {
    pub kid: Kid,
    pub key: [u8; 16],
    /// The period it was obtained for (the last key's when the provider failed).
    pub period: u64,
    /// The provider's `explicitIV`, if it gave one.
    pub explicit_iv: Option<[u8; 16]>,
    /// The URI players fetch the key from (SPEKE v1 `URIExtXKey`), for HLS AES-128.
    pub key_uri: Option<String>,
    /// `EXT-X-KEY`'s `KEYFORMAT` and `KEYFORMATVERSIONS`, when the provider gave them.
    pub key_format: Option<String>,
    pub key_format_versions: Option<String>,
    /// What the provider gave for each DRM system asked for, in the endpoint's order.
    pub systems: Vec<SystemData>,
}

/// A DRM system's signalling data for one key (CPIX `DRMSystem`).
#[derive(Clone, Debug, PartialEq)]
pub struct SystemData {
    pub system_id: Kid,
    /// The whole `pssh` box, checked to be one.
    pub pssh: Option<Vec<u8>>,
    /// `URIExtXKey` (e.g. FairPlay's `skd://` URI).
    pub key_uri: Option<String>,
    pub key_format: Option<String>,
    pub key_format_versions: Option<String>,
}

/// What is asked of a key provider: the key `kid` of `period`, for content encrypted
/// with `scheme` (`cenc` or `cbcs`: SPEKE v2 asks for keys by scheme; `None` for HLS TS).
#[derive(Clone, Debug)]
pub struct KeyRequest<'a> {
    pub provider: &'a SpekeKeyProvider,
    pub scheme: Option<&'static str>,
    pub kid: Kid,
    pub period: u64,
}

/// Why no key came from the provider.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the key provider at {url} did not answer within {millis} ms")]
    Timeout { url: String, millis: u64 },
    #[error("the key provider at {url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the key provider at {url} refused the key request with HTTP {status}: {body}")]
    Refused { url: String, status: u16, body: String },
    #[error("the key provider at {url} answered with an unusable document: {reason}")]
    Malformed { url: String, reason: String },
}

/// The port: where keys come from.
#[async_trait::async_trait]
pub trait KeyProvider: Send + Sync {
    async fn fetch(&self, request: &KeyRequest<'_>) -> Result<ContentKey, KeyError>;
}

/// The key period of a segment starting at `media_time`: one period per
/// `rotation_seconds` of media time, or period 0 throughout when rotation is off.
pub fn period_of(media_time: Ticks, rotation_seconds: u32) -> u64 {
    match u64::from(rotation_seconds) * crate::time::TICKS_PER_SECOND {
        0 => 0,
        length => media_time.0 / length,
    }
}

/// The KID of `period` for the content `resource_id` encrypted with `scheme` (`cenc`,
/// `cbcs`; `None` for HLS TS): stable, so every instance asks for the same key (SPEKE
/// leaves KIDs to the encryptor, one per content id and period). Endpoints that share a
/// resource id but not a scheme get different KIDs, so a provider that derives keys from
/// the KID never hands one key out for both AES-CTR and AES-CBC. A UUID version 8
/// (RFC 9562) from SHA-256.
pub fn kid_for(resource_id: &str, scheme: Option<&str>, period: u64) -> Kid {
    let mut hash = Sha256::new();
    hash.update(b"sluice content key id\0");
    hash.update(resource_id.as_bytes());
    hash.update(b"\0");
    if let Some(scheme) = scheme {
        hash.update(scheme.as_bytes());
        hash.update(b"\0");
    }
    hash.update(period.to_be_bytes());
    let digest = hash.finalize();
    let mut kid = [0u8; 16];
    kid.copy_from_slice(&digest[..16]);
    kid[6] = (kid[6] & 0x0f) | 0x80;
    kid[8] = (kid[8] & 0x3f) | 0x80;
    Kid(kid)
}

/// How long a failed period is not asked for again (its requests use the last key).
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Entries kept before the oldest periods are dropped.
const MAX_ENTRIES: usize = 4096;

/// How many of a content's newest periods survive a trim of the cache.
const KEEP_PERIODS: u64 = 1000;

type Period = (String, String, u64);
type Content = (String, String);

/// What a cached key is for: the provider's URL, and the content as it is asked for —
/// resource id, SPEKE version, scheme and DRM systems — so that endpoints asking for
/// different things never share a key (nor its DRM systems' data).
fn content_of(provider: &SpekeKeyProvider, scheme: Option<&str>) -> Content {
    let version = match provider.encryption_contract_configuration {
        Some(_) => "v2",
        None => "v1",
    };
    let mut systems: Vec<String> = provider.system_ids.iter().map(|s| s.to_ascii_lowercase()).collect();
    systems.sort();
    let asked = [
        provider.resource_id.as_str(),
        version,
        scheme.unwrap_or_default(),
        &systems.join(","),
    ];
    (provider.url.clone(), asked.join("\0"))
}

fn period_id(provider: &SpekeKeyProvider, scheme: Option<&str>, period: u64) -> Period {
    let (url, content) = content_of(provider, scheme);
    (url, content, period)
}

/// The key cache of one process: a key per (provider URL, content as asked, period),
/// fetched once; the last key obtained per (URL, content) for when the provider fails.
pub struct Keys {
    provider: Arc<dyn KeyProvider>,
    entries: Mutex<HashMap<Period, Arc<OnceCell<ContentKey>>>>,
    last: Mutex<HashMap<Content, ContentKey>>,
    /// Periods whose key this process could not obtain, and the last key it named for them.
    stand_ins: Mutex<HashMap<Period, ContentKey>>,
    failed: Mutex<HashMap<Period, Instant>>,
}

/// Why there is no key for a period that failed less than [`RETRY_AFTER`] ago.
fn not_asked_again(provider: &SpekeKeyProvider) -> KeyError {
    KeyError::Unreachable {
        url: provider.url.clone(),
        reason: "it failed less than a second ago".into(),
    }
}

/// A key for a segment or playlist, or why there is none.
pub type KeyResult = Result<ContentKey, KeyError>;

impl Keys {
    pub fn new(provider: Arc<dyn KeyProvider>) -> Keys {
        Keys {
            provider,
            entries: Mutex::default(),
            last: Mutex::default(),
            stand_ins: Mutex::default(),
            failed: Mutex::default(),
        }
    }

    /// The key of `period` for `provider`: cached, or fetched once. When the provider
    /// fails and this process obtained a key of an earlier period of the same content, that
    /// last key stands in (MediaPackage's rule) and is kept as this period's key, so the
    /// process keeps naming one key for the period; when there is none, the error.
    /// `on_error` is called for each failed request (the `KeyProviderError` log and metric).
    pub async fn key(
        &self,
        provider: &SpekeKeyProvider,
        scheme: Option<&'static str>,
        period: u64,
        on_error: impl Fn(&KeyError),
    ) -> KeyResult {
        let id = period_id(provider, scheme, period);
        if let Some(stand_in) = self.stand_ins.lock().expect("key cache").get(&id) {
            return Ok(stand_in.clone());
        }
        let e = match self.fetch(provider, scheme, period, &on_error).await {
            Ok(key) => return Ok(key),
            Err(e) => e,
        };
        let content = content_of(provider, scheme);
        let last = self.last.lock().expect("key cache").get(&content).cloned();
        match last.filter(|k| k.period < period) {
            Some(last) => {
                let mut stand_ins = self.stand_ins.lock().expect("key cache");
                if stand_ins.len() >= MAX_ENTRIES {
                    stand_ins.clear();
                }
                Ok(stand_ins.entry(id).or_insert(last).clone())
            }
            None => Err(e.unwrap_or_else(|| not_asked_again(provider))),
        }
    }

    /// Exactly the key of `period` (for a segment whose name says which key): from the
    /// cache, or fetched once; never a stand-in.
    pub async fn exact(
        &self,
        provider: &SpekeKeyProvider,
        scheme: Option<&'static str>,
        period: u64,
        on_error: impl Fn(&KeyError),
    ) -> KeyResult {
        self.fetch(provider, scheme, period, &on_error)
            .await
            .map_err(|e| e.unwrap_or_else(|| not_asked_again(provider)))
    }

    /// The period's own key, or why there is none (`None`: it failed less than a second
    /// ago and was not asked again).
    async fn fetch(
        &self,
        provider: &SpekeKeyProvider,
        scheme: Option<&'static str>,
        period: u64,
        on_error: &impl Fn(&KeyError),
    ) -> Result<ContentKey, Option<KeyError>> {
        let id = period_id(provider, scheme, period);
        let cell = {
            let mut entries = self.entries.lock().expect("key cache");
            if entries.len() >= MAX_ENTRIES {
                // Keep each content's newest periods.
                let mut newest: HashMap<Content, u64> = HashMap::new();
                for k in entries.keys() {
                    let n = newest.entry((k.0.clone(), k.1.clone())).or_default();
                    *n = (*n).max(k.2);
                }
                entries.retain(|k, _| newest[&(k.0.clone(), k.1.clone())].saturating_sub(k.2) < KEEP_PERIODS);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.entry(id.clone()).or_default().clone()
        };
        let fetched = cell
            .get_or_try_init(|| async {
                let recently_failed = self
                    .failed
                    .lock()
                    .expect("key cache")
                    .get(&id)
                    .is_some_and(|at| at.elapsed() < RETRY_AFTER);
                if recently_failed {
                    return Err(None);
                }
                let request = KeyRequest {
                    provider,
                    scheme,
                    kid: kid_for(&provider.resource_id, scheme, period),
                    period,
                };
                match self.provider.fetch(&request).await {
                    Ok(key) => Ok(key),
                    Err(e) => {
                        let mut failed = self.failed.lock().expect("key cache");
                        failed.retain(|_, at| at.elapsed() < RETRY_AFTER);
                        failed.insert(id.clone(), Instant::now());
                        Err(Some(e))
                    }
                }
            })
            .await
            .cloned();
        match &fetched {
            Ok(key) => {
                let content: Content = (id.0, id.1);
                let mut last = self.last.lock().expect("key cache");
                if last.get(&content).is_none_or(|k| k.period <= key.period) {
                    last.insert(content, key.clone());
                }
            }
            Err(Some(e)) => on_error(e),
            Err(None) => {}
        }
        fetched
    }
}

#[cfg(test)]
mod tests;
