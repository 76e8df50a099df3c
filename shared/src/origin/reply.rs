//! What playback answers: a [`Reply`] (a manifest or segment bytes, with the cache time
//! and the MediaPackage headers it carries) or a [`PlaybackError`]. `http::playback`
//! turns both into HTTP responses.

use crate::model::SegmentRecord;
use crate::store::StoreError;
use crate::time::{Ticks, UnixMillis};
use bytes::Bytes;

/// Segments are immutable once listed: cache them for the longest startover window.
pub const SEGMENT_MAX_AGE: u32 = 1_209_600;

pub(crate) const HLS_TYPE: &str = "application/vnd.apple.mpegurl";
pub(crate) const DASH_TYPE: &str = "application/dash+xml";

/// A successful playback answer.
#[derive(Debug)]
pub struct Reply {
    pub content_type: &'static str,
    pub body: ReplyBody,
    /// Manifests: seconds a cache may keep it. `None`: a segment, immutable, served with
    /// `Accept-Ranges` and [`SEGMENT_MAX_AGE`].
    pub max_age: Option<u64>,
    /// Media sequence number of the newest segment listed (MediaPackage's
    /// `X-MediaPackage-Manifest-Last-Sequence`).
    pub last_sequence: Option<u64>,
    /// When the newest segment listed was received (`X-MediaPackage-Manifest-Last-Updated`).
    pub last_updated: Option<UnixMillis>,
    /// Which ingest endpoints delivered a segment's inputs (`X-Sluice-Active-Input`).
    pub active_input: Option<String>,
}

#[derive(Debug)]
pub enum ReplyBody {
    Text(String),
    /// Streamed in order without joining them.
    Parts(Vec<Bytes>),
}

/// Why playback refused; each message says what is missing or wrong.
#[derive(Debug, thiserror::Error)]
pub enum PlaybackError {
    #[error("{0}")]
    NotFound(String),
    /// Access control refused the viewer.
    #[error("{0}")]
    Forbidden(String),
    /// A dependency (a stored object, a secret) is missing for now: retry.
    #[error("{0}")]
    Unavailable(String),
    /// Stored data that cannot be used.
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PlaybackError {
    pub fn not_found(message: impl Into<String>) -> PlaybackError {
        PlaybackError::NotFound(message.into())
    }
}

/// Adds when the newest segment listed was received.
pub(crate) fn with_last_updated(mut reply: Reply, at: Option<UnixMillis>) -> Reply {
    reply.last_updated = at;
    reply
}

/// Half an output segment duration, at least one second (spec §6.7).
pub(crate) fn playlist_max_age(input: Ticks, k: u64) -> u64 {
    ((input.as_secs_f64() * k as f64) / 2.0).floor().max(1.0) as u64
}

/// An HLS playlist, cached for `max_age` seconds.
pub(crate) fn playlist_response(body: String, max_age: u64, last_sequence: Option<u64>) -> Reply {
    Reply {
        content_type: HLS_TYPE,
        body: ReplyBody::Text(body),
        max_age: Some(max_age),
        last_sequence,
        last_updated: None,
        active_input: None,
    }
}

/// The ingest endpoints of `records`, in order, without repeats, comma-separated.
pub(crate) fn active_input<'a>(records: impl Iterator<Item = &'a SegmentRecord>) -> String {
    let mut ids: Vec<&str> = Vec::new();
    for record in records {
        if !ids.contains(&record.ingest_endpoint.as_str()) {
            ids.push(&record.ingest_endpoint);
        }
    }
    ids.join(",")
}

/// A segment made of `parts`, streamed in order.
pub(crate) fn chunked_segment(content_type: &'static str, parts: impl IntoIterator<Item = Bytes>) -> Reply {
    Reply {
        content_type,
        body: ReplyBody::Parts(parts.into_iter().collect()),
        max_age: None,
        last_sequence: None,
        last_updated: None,
        active_input: None,
    }
}

/// A segment of one part.
pub(crate) fn segment_response(content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    chunked_segment(content_type, [body.into()])
}
