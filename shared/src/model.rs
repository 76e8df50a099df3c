//! The records Sluice keeps: channels and origin endpoints (the MediaPackage classic
//! resources, in their stored form), and what ingest learns about the live stream
//! (renditions and segment records). Wire rendering lives in `api`.

mod package;

pub use package::*;

use crate::time::{Ticks, UnixMillis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A live channel: the unit an encoder pushes to. Has two ingest endpoints (A/B).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: String,
    /// Unique id behind the ARN (32 hex digits).
    pub guid: String,
    pub created_at: UnixMillis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub ingest_endpoints: Vec<IngestEndpoint>,
    /// CloudWatch log group for egress access logs, when enabled by ConfigureLogs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_log_group: Option<String>,
    /// CloudWatch log group for ingress access logs, when enabled by ConfigureLogs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_log_group: Option<String>,
}

impl Channel {
    /// The ingest endpoint with this id.
    pub fn ingest_endpoint(&self, id: &str) -> Option<&IngestEndpoint> {
        self.ingest_endpoints.iter().find(|e| e.id == id)
    }
}

/// One of a channel's two ingest endpoints, with its WebDAV credentials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestEndpoint {
    pub id: String,
    pub username: String,
    pub password: String,
}

impl IngestEndpoint {
    /// A new endpoint with generated id and credentials.
    pub fn generate(id: String) -> IngestEndpoint {
        IngestEndpoint {
            id,
            username: random_hex(),
            password: random_hex(),
        }
    }

    /// The same endpoint with new credentials: the old password stops working at once.
    pub fn rotated(&self) -> IngestEndpoint {
        IngestEndpoint::generate(self.id.clone())
    }
}

/// 32 random hex digits (128 bits): ids and generated credentials.
pub fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// An origin endpoint: one packaging configuration of a channel, with its playback URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OriginEndpoint {
    pub id: String,
    pub guid: String,
    pub channel_id: String,
    pub created_at: UnixMillis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub manifest_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hls_package: Option<HlsPackage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmaf_package: Option<CmafPackage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dash_package: Option<DashPackage>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// `hlsPackage`: HLS with MPEG-TS segments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HlsPackage {
    /// Target output segment duration; rounded to a whole multiple of the input duration.
    #[serde(default = "default_segment_duration")]
    pub segment_duration_seconds: u32,
    /// Length of the live media playlist window.
    #[serde(default = "default_playlist_window")]
    pub playlist_window_seconds: u32,
    /// Interval between `EXT-X-PROGRAM-DATE-TIME` tags; 0 = none.
    #[serde(default)]
    pub program_date_time_interval_seconds: u32,
    #[serde(default)]
    pub playlist_type: PlaylistType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_selection: Option<StreamSelection>,
    /// Adds an I-frame-only playlist per video rendition (`EXT-X-I-FRAME-STREAM-INF`).
    #[serde(default)]
    pub include_iframe_only_stream: bool,
}

fn default_segment_duration() -> u32 {
    6
}

fn default_playlist_window() -> u32 {
    60
}

impl Default for HlsPackage {
    fn default() -> Self {
        HlsPackage {
            segment_duration_seconds: default_segment_duration(),
            playlist_window_seconds: default_playlist_window(),
            program_date_time_interval_seconds: 0,
            playlist_type: PlaylistType::None,
            include_iframe_only_stream: false,
            stream_selection: None,
        }
    }
}

/// `playlistType`: whether `EXT-X-PLAYLIST-TYPE` is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PlaylistType {
    #[default]
    None,
    Event,
    Vod,
}

/// One rendition (variant stream) of a channel as ingest has measured it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rendition {
    /// Stable id derived from the encoder's file names (`360p`, `channel_1`); used in URLs.
    pub id: String,
    /// RFC 6381 codec strings, video first.
    pub codecs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<(u32, u32)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
    /// Highest segment bit rate seen, bits/s.
    pub peak_bandwidth: u64,
    /// Running average bit rate, bits/s.
    pub average_bandwidth: u64,
    /// Longest segment seen; drives `EXT-X-TARGETDURATION`.
    pub max_segment_duration: Ticks,
    /// Bit rate the encoder declared in its multivariant playlist, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_bandwidth: Option<u64>,
    /// Position of this rendition in the encoder's multivariant playlist, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_order: Option<u32>,
    /// Peak bit rate of the keyframes alone (`BANDWIDTH` of the I-frame playlist).
    #[serde(default)]
    pub iframe_bandwidth: u64,
    pub updated_at: UnixMillis,
}

/// An ingested segment, as indexed. Keyed by (channel, rendition, start).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentRecord {
    pub channel: String,
    pub rendition: String,
    /// Presentation time of the first frame, unwrapped 90 kHz ticks. The sort key.
    pub start: Ticks,
    pub duration: Ticks,
    /// Media sequence number in this rendition: stable, never reused.
    pub sequence: u64,
    pub ingest_endpoint: String,
    /// Where the bytes are in the object store.
    pub object_key: String,
    pub size: u64,
    /// Wall-clock time of the first frame (drives `EXT-X-PROGRAM-DATE-TIME`).
    pub program_date_time: UnixMillis,
    pub received_at: UnixMillis,
    pub starts_with_keyframe: bool,
    /// The encoder's file name, for logs and support.
    pub source_name: String,
    /// `start` minus the encoder's own (unwrapped) PTS: changes when the encoder restarts,
    /// so the timeline keeps going forward while the segment bytes stay untouched.
    #[serde(default)]
    pub pts_offset: i64,
    /// The encoder's timestamps jump at this segment (restart, splice): players need
    /// `EXT-X-DISCONTINUITY` before it.
    #[serde(default)]
    pub discontinuity: bool,
    /// Number of discontinuities in this rendition up to and including this segment.
    #[serde(default)]
    pub discontinuity_sequence: u64,
    /// Keyframes of the segment with their byte ranges, for I-frame playlists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub iframes: Vec<IFrame>,
}

/// A keyframe of an input segment: when it is shown and which bytes decode it alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IFrame {
    /// Presentation time on the rendition's timeline.
    pub time: Ticks,
    /// Byte range within the segment.
    pub offset: u64,
    pub size: u64,
    /// Length of the PAT/PMT packets the segment starts with (0 when it does not).
    #[serde(default)]
    pub psi_size: u64,
}

impl SegmentRecord {
    /// Index partition of a rendition: `{channel}#{rendition}`.
    pub fn partition_of(channel: &str, rendition: &str) -> String {
        format!("{channel}#{rendition}")
    }

    /// Where the next segment of the encoder's stream should start on the timeline.
    pub fn end(&self) -> Ticks {
        self.start + self.duration
    }

    /// This record's partition.
    pub fn partition(&self) -> String {
        Self::partition_of(&self.channel, &self.rendition)
    }

    /// Bit rate of this segment in bits/s.
    pub fn bitrate(&self) -> u64 {
        let secs = self.duration.as_secs_f64();
        if secs <= 0.0 {
            0
        } else {
            (self.size as f64 * 8.0 / secs).round() as u64
        }
    }
}
