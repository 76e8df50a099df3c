//! When an indexed segment is numbered and listed ("published").
//!
//! Uploads of one rendition overlap (a slow upload and the next one, MediaLive's several
//! connections, a retry, every upload its own Lambda), so segments reach the index out of
//! media-time order. Ingest indexes each one unpublished; publishing walks the unpublished
//! records after the published edge in media-time order and numbers each one that is
//! settled:
//!
//! - the first segment of a rendition, and a segment that continues the published edge
//!   (its start within half a segment of the edge's end), are published at once (a
//!   rendition's timeline starts where its first indexed segment is; an earlier one that
//!   arrives after it is refused with 409);
//! - a segment after a hole waits for the **publish horizon**: one segment duration since
//!   the segment arrived, at least [`MIN_HORIZON_MS`]. A missing segment that arrives within
//!   it is put in its place; after it, the hole is published as an `EXT-X-DISCONTINUITY`
//!   before the next segment, and the missing segment, if it still comes, is refused (409)
//!   rather than acknowledged and dropped.
//!
//! Sequence numbers therefore follow media time, increase by one per listed segment, and
//! never change once published; so do the keyframe counts that number I-frame playlist
//! entries (`keyframes_before`, one per keyframe).

use crate::model::SegmentRecord;
use crate::time::{Ticks, UnixMillis};

/// The newest published segment of a rendition, as the next one continues from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PublishedEdge {
    pub start: Ticks,
    pub end: Ticks,
    pub sequence: u64,
    pub discontinuity_sequence: u64,
    /// Keyframes published up to and including this segment (the next segment's
    /// `keyframes_before`).
    #[serde(default)]
    pub keyframes_through: u64,
}

impl PublishedEdge {
    /// The edge a published record leaves behind it.
    pub fn of(record: &SegmentRecord) -> PublishedEdge {
        PublishedEdge {
            start: record.start,
            end: record.end(),
            sequence: record.sequence,
            discontinuity_sequence: record.discontinuity_sequence,
            keyframes_through: record.keyframes_before + record.iframes.len() as u64,
        }
    }
}

/// Shortest time a segment after a hole (or a rendition's first) waits for earlier ones.
pub const MIN_HORIZON_MS: i64 = 2_000;

/// How long `record` waits for the segments before it, after it arrived.
pub fn horizon_ms(record: &SegmentRecord) -> i64 {
    record.duration.as_millis().max(MIN_HORIZON_MS)
}

/// Whether `record` continues `edge` without a hole: it starts within half a segment
/// (the shorter of the two) of the edge's end.
pub fn continues(edge: &PublishedEdge, record: &SegmentRecord) -> bool {
    let gap = i128::from(record.start.0) - i128::from(edge.end.0);
    let shorter = (edge.end.0.saturating_sub(edge.start.0)).min(record.duration.0);
    gap.abs() * 2 <= i128::from(shorter)
}

/// Whether `record` may be published past a hole before it (or as a first segment) at `now`.
pub fn settled(record: &SegmentRecord, now: UnixMillis) -> bool {
    now.0 - record.received_at.0 >= horizon_ms(record)
}

/// The records of `pending` (unpublished, in media-time order, all after `edge`) that can
/// be published at `now`, numbered and marked published, at most `limit`. Stops at the
/// first one that must still wait.
pub fn publishable(
    edge: Option<PublishedEdge>,
    pending: &[SegmentRecord],
    now: UnixMillis,
    limit: usize,
) -> Vec<SegmentRecord> {
    let mut edge = edge;
    let mut out = Vec::new();
    for record in pending.iter().take(limit) {
        let continuous = edge.as_ref().is_none_or(|e| continues(e, record));
        if !continuous && !settled(record, now) {
            break;
        }
        // `record.discontinuity` is ingest's word that the encoder's timestamps were reset
        // here (a restart placed after the edge); a hole is one too.
        let discontinuity = record.discontinuity || (edge.is_some() && !continuous);
        let published = SegmentRecord {
            sequence: edge.map_or(0, |e| e.sequence + 1),
            discontinuity,
            discontinuity_sequence: edge.map_or(0, |e| e.discontinuity_sequence) + u64::from(discontinuity),
            keyframes_before: edge.map_or(0, |e| e.keyframes_through),
            published: true,
            ..record.clone()
        };
        edge = Some(PublishedEdge::of(&published));
        out.push(published);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(start: u64, received: i64) -> SegmentRecord {
        SegmentRecord {
            channel: "ch".into(),
            rendition: "r".into(),
            start: Ticks(start),
            duration: Ticks(S),
            sequence: 0,
            ingest_endpoint: "ie".into(),
            object_key: String::new(),
            size: 1000,
            program_date_time: UnixMillis(0),
            received_at: UnixMillis(received),
            starts_with_keyframe: true,
            source_name: String::new(),
            pts_offset: 0,
            discontinuity: false,
            discontinuity_sequence: 0,
            iframes: Vec::new(),
            keyframes_before: 0,
            published: false,
        }
    }

    const S: u64 = 180_000; // 2 s

    #[test]
    fn a_first_segment_is_published_at_once() {
        let first = [pending(0, 10_000), pending(S, 10_000)];
        let out = publishable(None, &first, UnixMillis(10_000), 50);
        let numbered: Vec<_> = out.iter().map(|r| (r.sequence, r.discontinuity, r.published)).collect();
        assert_eq!(numbered, [(0, false, true), (1, false, true)]);
    }

    #[test]
    fn continuous_segments_publish_at_once_in_media_time_order() {
        let edge = PublishedEdge {
            start: Ticks(0),
            end: Ticks(S),
            sequence: 7,
            discontinuity_sequence: 1,
            keyframes_through: 0,
        };
        let run = [pending(S, 10_000), pending(2 * S + 900, 10_000), pending(4 * S, 10_000)];
        let out = publishable(Some(edge), &run, UnixMillis(10_000), 50);
        // The third follows a hole (3S missing): it waits.
        assert_eq!(out.iter().map(|r| r.sequence).collect::<Vec<_>>(), [8, 9]);
        assert!(out.iter().all(|r| !r.discontinuity && r.discontinuity_sequence == 1));
        // Once settled, the hole is published as a discontinuity.
        let out = publishable(Some(edge), &run, UnixMillis(12_000), 50);
        assert_eq!(out.iter().map(|r| r.sequence).collect::<Vec<_>>(), [8, 9, 10]);
        assert!(out[2].discontinuity);
        assert_eq!(out[2].discontinuity_sequence, 2);
        assert_eq!(publishable(Some(edge), &run, UnixMillis(12_000), 1).len(), 1);
    }

    #[test]
    fn keyframes_are_counted_on_from_the_edge_one_number_per_keyframe() {
        let keyframes = |n: u64, start: u64| {
            (0..n)
                .map(|i| crate::model::IFrame {
                    time: Ticks(start + i * 60_000),
                    offset: i * 1000,
                    size: 500,
                    psi_size: 0,
                })
                .collect::<Vec<_>>()
        };
        let edge = PublishedEdge {
            start: Ticks(0),
            end: Ticks(S),
            sequence: 3,
            discontinuity_sequence: 0,
            keyframes_through: 10,
        };
        // Segments with 3, 1 and 2 keyframes: each starts where the keyframes before it end.
        let run: Vec<_> = [(3, S), (1, 2 * S), (2, 3 * S)]
            .into_iter()
            .map(|(n, start)| SegmentRecord {
                iframes: keyframes(n, start),
                ..pending(start, 0)
            })
            .collect();
        let out = publishable(Some(edge), &run, UnixMillis(0), 50);
        assert_eq!(out.iter().map(|r| r.keyframes_before).collect::<Vec<_>>(), [10, 13, 14]);
        assert_eq!(PublishedEdge::of(&out[2]).keyframes_through, 16);
        // A rendition's first segment counts from 0.
        assert_eq!(publishable(None, &run, UnixMillis(10_000), 1)[0].keyframes_before, 0);
    }

    #[test]
    fn an_encoder_restart_is_a_discontinuity_even_when_continuous() {
        let edge = PublishedEdge {
            start: Ticks(0),
            end: Ticks(S),
            sequence: 0,
            discontinuity_sequence: 0,
            keyframes_through: 0,
        };
        let restarted = SegmentRecord {
            discontinuity: true,
            ..pending(S, 0)
        };
        let out = publishable(Some(edge), &[restarted], UnixMillis(0), 50);
        assert_eq!((out[0].sequence, out[0].discontinuity_sequence), (1, 1));
    }
}
