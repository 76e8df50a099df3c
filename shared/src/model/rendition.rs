//! What ingest has measured about a rendition, and when its stream has ended or gone stale.

use crate::time::{Ticks, UnixMillis};
use serde::{Deserialize, Serialize};

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
    /// Elementary-stream bit rates of the first audio track in the newest segments,
    /// bits/s, oldest first (the audio rendition of CMAF and DASH).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_audio_bandwidth: Vec<u64>,
    /// Channel layout of the first audio track.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_channels: Option<AudioChannels>,
    /// HDR transfer function of the video; None for SDR (or not signalled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_range: Option<VideoRange>,
    /// Caption channels the video carries (CEA-608/708 in SEI), with when a segment last
    /// carried each (see [`super::fold_captions`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub captions: std::collections::BTreeMap<super::CaptionChannel, UnixMillis>,
    /// What each ingest endpoint last did for this rendition.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub inputs: std::collections::BTreeMap<String, InputState>,
    /// When its first segment was indexed (0 in documents written before it existed):
    /// how long a multivariant playlist waits for the rest of a ladder is counted from it.
    #[serde(default, skip_serializing_if = "is_epoch")]
    pub first_segment: UnixMillis,
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

/// An audio track's channel layout, as its codec header codes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "codec")]
pub enum AudioChannels {
    /// AAC `channel_configuration` from ADTS (ISO/IEC 14496-3 Table 1.19; 1–7 are also
    /// the CICP ChannelConfiguration values of ISO/IEC 23091-3).
    Aac { configuration: u8 },
    /// AC-3/E-AC-3 `acmod` and `lfeon` (ETSI TS 102 366 §4.4.2.3 Table 4.3, §4.4.2.7).
    Dolby { acmod: u8, lfe: bool },
}

impl AudioChannels {
    /// Number of channels, LFE included (HLS `CHANNELS`: 5.1 is 6); None when the
    /// header does not say (AAC configuration 0 defers to a program config element).
    pub fn count(self) -> Option<u8> {
        match self {
            AudioChannels::Aac { configuration: 7 } => Some(8),
            AudioChannels::Aac { configuration } => (1..=6).contains(&configuration).then_some(configuration),
            AudioChannels::Dolby { acmod, lfe } => {
                Some([2, 1, 2, 3, 3, 4, 4, 5][usize::from(acmod & 7)] + u8::from(lfe))
            }
        }
    }
}

/// HDR video range (HLS `VIDEO-RANGE`), from the VUI transfer characteristics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum VideoRange {
    /// SMPTE ST 2084 (HDR10): transfer characteristics 16.
    Pq,
    /// ARIB STD-B67 hybrid log-gamma: transfer characteristics 18.
    Hlg,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_epoch(t: &UnixMillis) -> bool {
    t.0 == 0
}

impl Rendition {
    /// A rendition document as ingest would have written it for `codecs` at `bandwidth`
    /// bits/s, 2 s segments (for tests of what playback makes of a ladder).
    #[cfg(test)]
    pub fn example(id: &str, codecs: &[&str], bandwidth: u64) -> Rendition {
        serde_json::from_value(serde_json::json!({
            "id": id, "codecs": codecs, "peakBandwidth": bandwidth, "averageBandwidth": bandwidth,
            "maxSegmentDuration": 180_000, "updatedAt": 0,
        }))
        .expect("a valid rendition document")
    }

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

    /// Bit rate of the first audio track alone (CMAF and DASH audio), measured the same
    /// way; None in documents written before audio was measured.
    pub fn audio_bandwidth(&self) -> Option<u64> {
        crate::live::target::robust_peak(&self.recent_audio_bandwidth)
    }

    /// Bit rate of the video track alone: [`Rendition::bandwidth`] less the audio.
    pub fn video_bandwidth(&self) -> u64 {
        self.bandwidth().saturating_sub(self.audio_bandwidth().unwrap_or(0))
    }

    /// The caption channels to signal for this rendition, in order (CC1–CC4, then the
    /// CEA-708 services).
    pub fn caption_channels(&self) -> Vec<super::CaptionChannel> {
        self.captions.keys().copied().collect()
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
            recent_audio_bandwidth: vec![],
            audio_channels: None,
            video_range: None,
            captions: Default::default(),
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
            first_segment: UnixMillis(0),
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
    fn channel_counts_include_the_lfe() {
        // ISO/IEC 14496-3 Table 1.19: configuration 6 is 5.1 (six channels), 7 is 7.1.
        let aac = |configuration| AudioChannels::Aac { configuration }.count();
        assert_eq!(
            (aac(1), aac(2), aac(6), aac(7), aac(0)),
            (Some(1), Some(2), Some(6), Some(8), None)
        );
        // ETSI TS 102 366 Table 4.3: acmod 7 is 3/2 (L C R Ls Rs), 2 is 2/0, 1 is 1/0.
        let dolby = |acmod, lfe| AudioChannels::Dolby { acmod, lfe }.count();
        assert_eq!(
            (dolby(7, true), dolby(2, false), dolby(1, false), dolby(0, false)),
            (Some(6), Some(2), Some(1), Some(2))
        );
    }

    #[test]
    fn old_documents_read_without_the_measurements() {
        let doc = serde_json::json!({
            "id": "r", "codecs": ["avc1.64001f", "mp4a.40.2"], "peakBandwidth": 900_000,
            "averageBandwidth": 800_000, "maxSegmentDuration": 180_000, "updatedAt": 0,
        });
        let r: Rendition = serde_json::from_value(doc).unwrap();
        assert_eq!(
            (r.audio_bandwidth(), r.audio_channels, r.video_range),
            (None, None, None)
        );
        assert_eq!(r.video_bandwidth(), 900_000);
    }

    #[test]
    fn stale_after_the_configured_target_durations() {
        let r = rendition(&[("a", 10_000, None)]);
        assert!(!r.is_stale(UnixMillis(17_999), 4));
        assert!(r.is_stale(UnixMillis(18_001), 4));
        assert!(!r.is_stale(UnixMillis(1_000_000), 0), "0 turns the check off");
    }
}
