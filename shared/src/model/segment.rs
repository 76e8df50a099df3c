//! An indexed input segment and its keyframes.

use crate::time::{Ticks, UnixMillis};
use serde::{Deserialize, Serialize};

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
    /// Keyframes of this rendition's published segments before this one: the media
    /// sequence number of this segment's first I-frame playlist entry. Final once published,
    /// as `sequence` is. Records published before this field existed count from 0.
    #[serde(default)]
    pub keyframes_before: u64,
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
        crate::store::keys::segments(channel, rendition)
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
            object_key: crate::store::keys::segment_object("ch", "ie", rendition, start),
            size: 1000,
            program_date_time: UnixMillis(0),
            received_at: UnixMillis(0),
            starts_with_keyframe: true,
            source_name: "seg_0.ts".into(),
            pts_offset: 0,
            discontinuity: false,
            discontinuity_sequence: 0,
            iframes: Vec::new(),
            keyframes_before: 0,
            published: false,
        }
    }

    /// `n` back-to-back 2 s records of `rendition`, published with sequences 0, 1, …, for
    /// tests of the timeline and the writers.
    #[cfg(test)]
    pub fn examples(rendition: &str, n: u64) -> Vec<SegmentRecord> {
        (0..n)
            .map(|i| SegmentRecord {
                sequence: i,
                published: true,
                ..SegmentRecord::example(rendition, i * 180_000)
            })
            .collect()
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
