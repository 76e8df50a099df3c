//! Typed access to the catalog documents over the [`Index`] port.
//!
//! Layout (partition key / sort key; the formats are in [`crate::store::keys`]):
//! - `channel` / `{id}` → [`Channel`]
//! - `endpoint` / `{id}` → [`OriginEndpoint`]
//! - `stream#{channel}` / `rendition#{id}` → [`Rendition`]
//! - `stream#{channel}` / `master` → [`IngestMaster`] (the encoder's multivariant playlist)
//! - `stream#{channel}` / `playlist#{path}` → [`IngestPlaylist`] (media playlist → rendition)
//! - `stream#{channel}` / `anchor` → [`ClockAnchor`] (media time ↔ wall clock)
//! - `stream#{channel}` / `target#{rendition}` → [`InputTarget`] (fixed by the first segment)

use crate::model::{Channel, OriginEndpoint, Rendition};
use crate::store::{Condition, Index, StoreError};
use crate::time::{Ticks, UnixMillis};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::keys;
pub use crate::store::keys::{CHANNELS, ENDPOINTS};

/// Partition of a channel's stream documents.
pub fn stream_partition(channel: &str) -> String {
    keys::stream(channel)
}

/// The encoder's multivariant playlist, reduced to what playback needs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IngestMaster {
    /// Media playlist paths (relative to the ingest folder) in the encoder's order,
    /// with the bandwidth the encoder declared.
    pub variants: Vec<(String, u64)>,
    /// Its audio renditions (`EXT-X-MEDIA:TYPE=AUDIO` with a URI), in its order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audio: Vec<IngestAudio>,
    /// Its subtitle renditions, in its order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subtitles: Vec<IngestSubtitles>,
}

/// An audio rendition the encoder's multivariant playlist names, as it describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestAudio {
    /// Media playlist path, relative to the ingest folder.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub name: String,
    #[serde(default)]
    pub default: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<String>,
}

/// A subtitle rendition the encoder's multivariant playlist names
/// (`EXT-X-MEDIA:TYPE=SUBTITLES` with a URI), as it describes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestSubtitles {
    /// Media playlist path, relative to the ingest folder.
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    pub name: String,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub forced: bool,
}

/// A subtitle rendition that has sent WebVTT segments (its cues are in
/// [`keys::cues_partition`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubtitleRendition {
    pub id: String,
}

/// The cues of one WebVTT upload, on the output timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubtitleCues {
    pub cues: Vec<crate::media::webvtt::TimedCue>,
    /// When the upload came: cues of an earlier run of the channel, whose times the new
    /// run's timeline can reach again, are told apart by it.
    pub received_at: UnixMillis,
}

/// Which rendition a media playlist path carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IngestPlaylist {
    pub rendition: String,
}

/// A rendition's input target duration, written once by whichever upload of its first
/// segment gets there first and never changed (see [`crate::live::target`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputTarget {
    pub seconds: u32,
}

/// Ties media time to wall-clock time for a channel, so every rendition gets the same
/// `EXT-X-PROGRAM-DATE-TIME` for the same media time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClockAnchor {
    pub media: Ticks,
    pub wall: UnixMillis,
}

impl ClockAnchor {
    /// Wall-clock time of media time `t`.
    pub fn wall_clock_of(&self, t: Ticks) -> UnixMillis {
        UnixMillis(self.wall.0 + t.millis_since(self.media))
    }
}

/// Everything stored about a channel's live stream, read in one query.
#[derive(Clone, Debug, Default)]
pub struct StreamDocs {
    pub renditions: Vec<Rendition>,
    pub master: Option<IngestMaster>,
    pub playlists: Vec<(String, IngestPlaylist)>,
    pub anchor: Option<ClockAnchor>,
    pub subtitles: Vec<SubtitleRendition>,
}

impl StreamDocs {
    /// How the encoder's multivariant playlist describes rendition `id` as audio, if it does.
    pub fn declared_audio(&self, id: &str) -> Option<&IngestAudio> {
        let master = self.master.as_ref()?;
        master
            .audio
            .iter()
            .find(|a| self.playlists.iter().any(|(p, pl)| p == &a.path && pl.rendition == id))
    }

    /// How the encoder's multivariant playlist describes subtitle rendition `id`, if it does.
    pub fn declared_subtitles(&self, id: &str) -> Option<&IngestSubtitles> {
        let master = self.master.as_ref()?;
        master
            .subtitles
            .iter()
            .find(|s| self.playlists.iter().any(|(p, pl)| p == &s.path && pl.rendition == id))
    }

    /// Renditions in output order: the encoder's multivariant order when known, then
    /// by descending bit rate.
    pub fn ordered_renditions(&self) -> Vec<&Rendition> {
        let position = |r: &Rendition| -> usize {
            let Some(master) = &self.master else { return usize::MAX };
            master
                .variants
                .iter()
                .position(|(path, _)| self.playlists.iter().any(|(p, pl)| p == path && pl.rendition == r.id))
                .unwrap_or(usize::MAX)
        };
        let mut out: Vec<&Rendition> = self.renditions.iter().collect();
        out.sort_by(|a, b| {
            position(a)
                .cmp(&position(b))
                .then(b.bandwidth().cmp(&a.bandwidth()))
                .then(a.id.cmp(&b.id))
        });
        out
    }
}

pub(crate) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Typed catalog over an index.
pub struct Catalog<'a>(pub &'a dyn Index);

impl Catalog<'_> {
    pub async fn get<T: DeserializeOwned>(&self, pk: &str, sk: &str) -> Result<Option<T>, StoreError> {
        self.0.get_doc(pk, sk).await?.map(|b| decode(sk, &b)).transpose()
    }

    pub async fn put<T: Serialize>(
        &self,
        pk: &str,
        sk: &str,
        value: &T,
        condition: Condition,
    ) -> Result<(), StoreError> {
        self.0.put_doc(pk, sk, encode(value)?, condition).await
    }

    /// Read-modify-write of one document under optimistic concurrency: `change` gets the
    /// current value (None when absent) and returns the new one, or None to leave it as it
    /// is; when another writer got there first, it runs again on what that writer wrote.
    /// Returns the value the document has afterwards.
    pub async fn update<T: Serialize + DeserializeOwned>(
        &self,
        pk: &str,
        sk: &str,
        mut change: impl FnMut(Option<&T>) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        for attempt in 0..24 {
            let (current, condition) = match self.0.get_doc_versioned(pk, sk).await? {
                Some((bytes, version)) => (Some(decode::<T>(sk, &bytes)?), Condition::IfVersion(version)),
                None => (None, Condition::IfAbsent),
            };
            let Some(new) = change(current.as_ref()) else {
                return Ok(current);
            };
            match self.0.put_doc(pk, sk, encode(&new)?, condition).await {
                Ok(()) => return Ok(Some(new)),
                Err(StoreError::ConditionFailed) => crate::publish::back_off(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Backend(format!(
            "document {pk}/{sk} is being written by too many writers at once; retry"
        )))
    }

    pub async fn channel(&self, id: &str) -> Result<Option<Channel>, StoreError> {
        self.get(CHANNELS, id).await
    }

    pub async fn endpoint(&self, id: &str) -> Result<Option<OriginEndpoint>, StoreError> {
        self.get(ENDPOINTS, id).await
    }

    /// A page of typed documents after `after`.
    pub async fn list<T: DeserializeOwned>(
        &self,
        pk: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<T>, StoreError> {
        self.0
            .list_docs(pk, after, limit)
            .await?
            .iter()
            .map(|(sk, b)| decode(sk, b))
            .collect()
    }

    /// All stream documents of a channel.
    pub async fn stream_docs(&self, channel: &str) -> Result<StreamDocs, StoreError> {
        let mut docs = StreamDocs::default();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .0
                .list_docs(&stream_partition(channel), after.as_deref(), 500)
                .await?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            for (sk, bytes) in &page {
                if sk.starts_with(keys::RENDITION_PREFIX) {
                    docs.renditions.push(decode(sk, bytes)?);
                } else if let Some(path) = sk.strip_prefix(keys::PLAYLIST_PREFIX) {
                    docs.playlists.push((path.to_owned(), decode(sk, bytes)?));
                } else if sk.starts_with(keys::SUBTITLES_PREFIX) {
                    docs.subtitles.push(decode(sk, bytes)?);
                } else if sk == keys::MASTER {
                    docs.master = Some(decode(sk, bytes)?);
                } else if sk == keys::ANCHOR {
                    docs.anchor = Some(decode(sk, bytes)?);
                }
            }
            if page.len() < 500 {
                break;
            }
        }
        Ok(docs)
    }
}
