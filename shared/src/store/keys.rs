//! Every key layout of the stores, in one place. Partitions and sort keys of the index,
//! and object keys of the object store; nothing else formats a key.
//!
//! Index (partition / sort key):
//! - [`CHANNELS`] / `{id}` → `Channel`; [`ENDPOINTS`] / `{id}` → `OriginEndpoint`;
//!   [`ARNS`] / `{arn}` → what the ARN names; [`HARVEST_JOBS`] / `{id}` → `HarvestJob`
//! - `stream#{channel}` / `rendition#{id}` → `Rendition`, `target#{id}` → `InputTarget`,
//!   `playlist#{path}` → `IngestPlaylist`, [`MASTER`] → `IngestMaster`, [`ANCHOR`] → `ClockAnchor`,
//!   `subtitles#{id}` → `SubtitleRendition`
//! - `cues#{channel}#{rendition}` / `{last cue start, 20 digits}/{path}` → the cues of one
//!   WebVTT upload (`SubtitleCues`)
//! - `fmp4init#{channel}` / `{ingest endpoint}/{path}` → an encoder's fMP4 init segment
//! - segment index: `{channel}#{rendition}` / start (90 kHz) → `SegmentRecord`
//!
//! Objects: `{channel}/{ingest endpoint}/{rendition}/{start}.ts` for indexed TS segments,
//! `{channel}/{ingest endpoint}/{path}` for everything else an encoder uploads;
//! `staged.uploads/{channel}/{ingest endpoint}/{path}` for uploads API Gateway's S3
//! integration wrote (staged ingest), before the staged-ingest function reads them. The
//! dot keeps the prefix apart from every channel's (channel ids have none).

pub const CHANNELS: &str = "channel";
pub const ENDPOINTS: &str = "endpoint";
pub const ARNS: &str = "arn";
pub const HARVEST_JOBS: &str = "harvest";
pub const MASTER: &str = "master";
pub const ANCHOR: &str = "anchor";
pub const RENDITION_PREFIX: &str = "rendition#";
pub const PLAYLIST_PREFIX: &str = "playlist#";
pub const SUBTITLES_PREFIX: &str = "subtitles#";

/// Partition of a channel's stream documents.
pub fn stream(channel: &str) -> String {
    format!("stream#{channel}")
}

/// A rendition's document in its channel's stream partition.
pub fn rendition(id: &str) -> String {
    format!("{RENDITION_PREFIX}{id}")
}

/// A rendition's input target duration, next to its document.
pub fn target(rendition: &str) -> String {
    format!("target#{rendition}")
}

/// Which rendition the encoder's media playlist at `path` carries.
pub fn playlist(path: &str) -> String {
    format!("{PLAYLIST_PREFIX}{path}")
}

/// A subtitle rendition's document in its channel's stream partition.
pub fn subtitles(id: &str) -> String {
    format!("{SUBTITLES_PREFIX}{id}")
}

/// Partition of a subtitle rendition's cues.
pub fn cues_partition(channel: &str, rendition: &str) -> String {
    format!("cues#{channel}#{rendition}")
}

/// Sort key of one WebVTT upload's cues: ordered by its last cue's start on the output
/// timeline; the path keeps two uploads apart and makes a re-send land on itself.
pub fn cues(last_start: u64, path: &str) -> String {
    format!("{}/{path}", cues_from(last_start))
}

/// The sort key before every upload whose last cue starts at or after `start`.
pub fn cues_from(start: u64) -> String {
    format!("{start:020}")
}

/// Partition of a channel's fMP4 init segments, apart from the stream documents that every
/// manifest request reads.
pub fn init_partition(channel: &str) -> String {
    format!("fmp4init#{channel}")
}

/// An init segment's sort key in [`init_partition`].
pub fn init(ingest_endpoint: &str, path: &str) -> String {
    format!("{ingest_endpoint}/{path}")
}

/// The prefix of one ingest endpoint's init segments in [`init_partition`].
pub fn init_prefix(ingest_endpoint: &str) -> String {
    format!("{ingest_endpoint}/")
}

/// Partition of a rendition's segment index.
pub fn segments(channel: &str, rendition: &str) -> String {
    format!("{channel}#{rendition}")
}

/// Object key of an indexed TS segment.
pub fn segment_object(channel: &str, ingest_endpoint: &str, rendition: &str, start: u64) -> String {
    format!("{channel}/{ingest_endpoint}/{rendition}/{start}.ts")
}

/// Object key of any other upload, under its ingest path.
pub fn upload_object(channel: &str, ingest_endpoint: &str, path: &str) -> String {
    format!("{channel}/{ingest_endpoint}/{path}")
}

/// Prefix of staged uploads; API Gateway's S3 integration writes under it (template.yaml).
pub const STAGED_PREFIX: &str = "staged.uploads/";

/// Object key of a staged upload.
pub fn staged_object(channel: &str, ingest_endpoint: &str, path: &str) -> String {
    format!("{STAGED_PREFIX}{channel}/{ingest_endpoint}/{path}")
}

/// Channel, ingest endpoint and path of a staged upload's key.
pub fn parse_staged_object(key: &str) -> Option<(&str, &str, &str)> {
    let rest = key.strip_prefix(STAGED_PREFIX)?;
    let (channel, rest) = rest.split_once('/')?;
    let (ingest_endpoint, path) = rest.split_once('/')?;
    let named = |s: &str| !s.is_empty();
    (named(channel) && named(ingest_endpoint) && named(path)).then_some((channel, ingest_endpoint, path))
}

/// Bytes of an upload's object key besides the path itself.
pub fn upload_object_len(channel: &str, ingest_endpoint: &str, path: &str) -> usize {
    channel.len() + ingest_endpoint.len() + path.len() + 2
}
