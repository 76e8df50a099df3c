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
    /// CDN authorization: requests must carry the secret's `X-MediaPackage-CDNIdentifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<CdnAuthorization>,
    /// IPv4 CIDR blocks allowed to play; empty = everyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub whitelist: Vec<String>,
    #[serde(default)]
    pub origination: Origination,
}

/// `authorization` of an origin endpoint (MediaPackage v1 wire names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CdnAuthorization {
    /// ARN (or name) of the Secrets Manager secret holding the CDN identifier.
    pub cdn_identifier_secret: String,
    /// The role MediaPackage would assume to read it; kept for compatibility (Sluice's
    /// playback function reads the secret with its own role).
    pub secrets_role_arn: String,
}

/// `origination`: whether the endpoint serves players at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Origination {
    #[default]
    Allow,
    Deny,
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
    /// Highest segment bit rate seen, bits/s (statistics; `BANDWIDTH` uses [`Rendition::bandwidth`]).
    pub peak_bandwidth: u64,
    /// Running average bit rate, bits/s.
    pub average_bandwidth: u64,
    /// Longest segment seen (statistics; output timing follows [`Rendition::target`]).
    pub max_segment_duration: Ticks,
    /// Input target duration in whole seconds, fixed by the first segment and never
    /// changed (see [`crate::live::target`]); 0 in documents written before it existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub target_seconds: u32,
    /// Bit rates of the newest segments, bits/s, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_bandwidth: Vec<u64>,
    /// Keyframe bit rates of the newest segments, bits/s, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_iframe_bandwidth: Vec<u64>,
    /// Bit rate the encoder declared in its multivariant playlist, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_bandwidth: Option<u64>,
    /// Position of this rendition in the encoder's multivariant playlist, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_order: Option<u32>,
    /// Peak bit rate of the keyframes alone (`BANDWIDTH` of the I-frame playlist).
    #[serde(default)]
    pub iframe_bandwidth: u64,
    /// What each ingest endpoint last did for this rendition.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub inputs: std::collections::BTreeMap<String, InputState>,
    pub updated_at: UnixMillis,
}

/// One ingest endpoint's activity on a rendition.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InputState {
    /// When it last delivered a segment.
    pub last_segment: UnixMillis,
    /// When it last sent a media playlist with `#EXT-X-ENDLIST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<UnixMillis>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Rendition {
    /// The input target duration: fixed by the first segment, so grouping, target
    /// durations, cache times and windows derived from it never change.
    pub fn target(&self) -> Ticks {
        match self.target_seconds {
            0 => Ticks::from_secs((self.max_segment_duration.as_secs_f64().round() as u64).max(1)),
            s => Ticks::from_secs(u64::from(s)),
        }
    }

    /// The input target in whole seconds.
    pub fn target_secs(&self) -> u32 {
        (self.target().0 / crate::time::TICKS_PER_SECOND) as u32
    }

    /// `BANDWIDTH` and the rate stream selection compares: the peak of the newest segments
    /// ignoring one outlier, or what the encoder declared if that is higher.
    pub fn bandwidth(&self) -> u64 {
        crate::live::target::robust_peak(&self.recent_bandwidth)
            .unwrap_or(self.peak_bandwidth)
            .max(self.declared_bandwidth.unwrap_or(0))
    }

    /// `BANDWIDTH` of the I-frame playlist, measured the same way over the keyframes.
    pub fn iframe_bandwidth(&self) -> u64 {
        crate::live::target::robust_peak(&self.recent_iframe_bandwidth).unwrap_or(self.iframe_bandwidth)
    }

    /// The stream has ended at `now`: every input that delivered recently (within three
    /// segments of the newest delivery) sent `#EXT-X-ENDLIST` after its last segment, at
    /// least two segment durations ago. One encoder of a redundant pair ending is not the
    /// end, and an encoder restarted at once (ffmpeg ends every run with `#EXT-X-ENDLIST`)
    /// is not either: a new segment within the grace time keeps the stream live.
    ///
    /// ffmpeg sends its last media playlist (with `#EXT-X-ENDLIST`) without waiting for the
    /// answer to its last segment, so that segment's upload can begin just after the
    /// playlist's: a segment that began less than [`ENDLIST_SLACK_MS`] after the end is the
    /// one the playlist listed, not a new run.
    pub fn is_ended(&self, now: UnixMillis) -> bool {
        let Some(newest) = self.inputs.values().map(|i| i.last_segment.0).max() else {
            return false;
        };
        let segment = self.target().as_millis();
        let recent = newest - 3 * segment;
        self.inputs.values().filter(|i| i.last_segment.0 >= recent).all(|i| {
            i.ended
                .is_some_and(|e| e.0 + ENDLIST_SLACK_MS >= i.last_segment.0 && now.0 - e.0 >= 2 * segment)
        })
    }

    /// No input has delivered for `target_durations` times the target duration at `now`.
    pub fn is_stale(&self, now: UnixMillis, target_durations: u32) -> bool {
        let limit = i64::from(target_durations) * self.target().as_millis();
        target_durations > 0 && now.0 - self.updated_at.0 > limit
    }
}

/// How long after an input's `#EXT-X-ENDLIST` a segment upload may begin and still belong
/// to the ended run (see [`Rendition::is_ended`]).
pub const ENDLIST_SLACK_MS: i64 = 1_000;

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
    /// Numbered and listed: `sequence` and the discontinuity fields are final. Ingest
    /// indexes a segment unpublished; the publish step (`crate::publish`) numbers it once
    /// its place on the timeline is settled. Records written before this field existed
    /// were numbered on insert, hence the default.
    #[serde(default = "published_by_default")]
    pub published: bool,
}

fn published_by_default() -> bool {
    true
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

    /// A 2 s record at `start` (90 kHz) for tests of the pure rules.
    #[cfg(test)]
    pub fn example(rendition: &str, start: u64) -> SegmentRecord {
        SegmentRecord {
            channel: "ch".into(),
            rendition: rendition.into(),
            start: Ticks(start),
            duration: Ticks(180_000),
            sequence: 0,
            ingest_endpoint: "ie".into(),
            object_key: format!("ch/ie/{rendition}/{start}.ts"),
            size: 1000,
            program_date_time: UnixMillis(0),
            received_at: UnixMillis(0),
            starts_with_keyframe: true,
            source_name: "seg_0.ts".into(),
            pts_offset: 0,
            discontinuity: false,
            discontinuity_sequence: 0,
            iframes: Vec::new(),
            published: false,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rendition(inputs: &[(&str, i64, Option<i64>)]) -> Rendition {
        Rendition {
            id: "r".into(),
            codecs: vec![],
            resolution: None,
            frame_rate: None,
            peak_bandwidth: 0,
            average_bandwidth: 0,
            max_segment_duration: Ticks(180_000),
            target_seconds: 2,
            recent_bandwidth: vec![],
            recent_iframe_bandwidth: vec![],
            declared_bandwidth: None,
            declared_order: None,
            iframe_bandwidth: 0,
            inputs: inputs
                .iter()
                .map(|(id, last, ended)| {
                    let state = InputState {
                        last_segment: UnixMillis(*last),
                        ended: ended.map(UnixMillis),
                    };
                    (id.to_string(), state)
                })
                .collect(),
            updated_at: UnixMillis(inputs.iter().map(|i| i.1).max().unwrap_or(0)),
        }
    }

    #[test]
    fn a_stream_ends_when_every_recent_input_has_ended() {
        let later = UnixMillis(60_000);
        assert!(!rendition(&[]).is_ended(later));
        assert!(rendition(&[("a", 10_000, Some(10_500))]).is_ended(later));
        // Within two segment durations (2 s each) of the end: a restart may follow.
        assert!(!rendition(&[("a", 10_000, Some(10_500))]).is_ended(UnixMillis(14_000)));
        assert!(rendition(&[("a", 10_000, Some(10_500))]).is_ended(UnixMillis(14_500)));
        // A new segment after the end: live again.
        assert!(!rendition(&[("a", 11_600, Some(10_500))]).is_ended(later));
        // The segment the ending playlist listed, whose upload began just after it: ended.
        assert!(rendition(&[("a", 10_900, Some(10_500))]).is_ended(later));
        // One of two live inputs ended: still live.
        assert!(!rendition(&[("a", 10_000, Some(10_500)), ("b", 10_000, None)]).is_ended(later));
        assert!(rendition(&[("a", 10_000, Some(10_500)), ("b", 10_100, Some(10_600))]).is_ended(later));
        // An input silent for more than three segments does not hold the end back.
        assert!(rendition(&[("a", 20_000, Some(20_500)), ("b", 10_000, None)]).is_ended(later));
    }

    #[test]
    fn stale_after_the_configured_target_durations() {
        let r = rendition(&[("a", 10_000, None)]);
        assert!(!r.is_stale(UnixMillis(17_999), 4));
        assert!(r.is_stale(UnixMillis(18_001), 4));
        assert!(!r.is_stale(UnixMillis(1_000_000), 0), "0 turns the check off");
    }
}
