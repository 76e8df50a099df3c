//! Ingest: an encoder's upload (an [`Upload`], already authenticated and read by the edge
//! in `http::ingest`) becomes stored bytes and, for TS segments, an index record; bytes
//! are stored durably before they are indexed.
//!
//! One file per upload kind: [`segment`] (TS: placement, index, publish; [`rendition`] the
//! document each segment updates), [`fmp4`] (init
//! and media segments, rewritten as TS), [`subtitles`] (WebVTT segments, indexed as cues),
//! [`playlist`] (the encoder's playlists); [`path`]
//! checks names, [`auth`] the credentials; [`staged`] ingests what API Gateway's S3
//! integration wrote (the large-segment path in AWS). The pure rules they apply (placement, naming,
//! statistics, publishing, target duration) are in [`crate::live`]. Nothing here names an
//! HTTP type: the flow answers [`Accepted`] or [`IngestError`].

pub mod auth;
mod fmp4;
mod path;
mod playlist;
mod rendition;
mod segment;
pub mod staged;
mod subtitles;

use crate::app::IngestServices;
use crate::media::fmp4 as mp4;
use crate::model::{Channel, IngestEndpoint};
use crate::store::{keys, StoreError};
use crate::time::UnixMillis;
use bytes::Bytes;
use path::{clean_path, extension, MAX_KEY_BYTES};

pub use crate::live::naming::rendition_id;
pub use crate::live::placement::{place, Placement};

/// One upload, authenticated and read.
pub struct Upload<'a> {
    pub channel: &'a Channel,
    pub endpoint: &'a IngestEndpoint,
    /// The path under the ingest endpoint, checked by [`check_path`].
    pub path: &'a str,
    pub body: Bytes,
    pub now: UnixMillis,
}

/// What became of an accepted upload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Stored (and indexed, for a segment).
    Stored,
    /// Already had: a re-sent segment, or the other ingest endpoint's copy of its slot.
    Unchanged,
}

/// Why an upload was refused; each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The upload itself is wrong (not TS, too long, a name the store cannot hold…).
    #[error("{0}")]
    Invalid(String),
    /// It conflicts with what is already published or still missing.
    #[error("{0}")]
    Conflict(String),
    /// What it needs has not arrived yet (an fMP4 segment's init segment): a conflict
    /// for the encoder now, and worth trying again later.
    #[error("{0}")]
    NotYet(String),
    /// Too many writers at once: the encoder should retry.
    #[error("{0}")]
    Busy(String),
    /// What is stored cannot be read back.
    #[error("{0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The ingest path of an upload, cleaned, if the stores can hold it.
pub fn check_path(channel: &Channel, endpoint: &IngestEndpoint, path: &str) -> Result<String, IngestError> {
    let path = clean_path(path)?;
    let key_bytes = keys::upload_object_len(&channel.id, &endpoint.id, &path);
    if key_bytes > MAX_KEY_BYTES {
        return Err(IngestError::Invalid(format!(
            "channel id, ingest endpoint id and ingest path make a {key_bytes}-byte object key, \
             more than the {MAX_KEY_BYTES} the store can hold; use shorter names"
        )));
    }
    Ok(path)
}

/// Stores (and for segments indexes) one upload, by kind.
pub async fn accept(app: &IngestServices, upload: Upload<'_>) -> Result<Accepted, IngestError> {
    let (channel, endpoint, path) = (upload.channel, upload.endpoint, upload.path);
    match extension(path) {
        "ts" => segment::ingest_segment(app, upload).await,
        "mp4" | "m4s" | "m4v" | "m4a" | "cmfv" | "cmfa" | "cmfi" if mp4::looks_like_mp4(&upload.body) => {
            fmp4::ingest_fmp4(app, upload).await
        }
        "m3u8" => playlist::ingest_playlist(app, upload).await,
        "vtt" | "webvtt" => subtitles::ingest_subtitles(app, upload).await,
        _ => {
            let key = keys::upload_object(&channel.id, &endpoint.id, path);
            app.stores
                .objects
                .put(&key, upload.body, "application/octet-stream")
                .await?;
            tracing::warn!(path = %path, "stored but not indexed: only TS segments, fMP4 init and media segments, WebVTT segments and .m3u8 playlists are packaged");
            Ok(Accepted::Stored)
        }
    }
}
