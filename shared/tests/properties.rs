//! Property tests of the pure live rules: where ingest places a segment on its
//! rendition's timeline (`live::placement::place`), 33-bit PTS unwrapping
//! (`time::unwrap_pts`), which segments the publish step numbers
//! (`live::publish::publishable`), and how input segments group into output segments and a
//! live window (`manifest::hls`). Each rule is written out again here from its
//! documentation, not by calling the code under test.

use proptest::prelude::*;
use proptest::test_runner::Config;
use sluice::live::placement::{place, Placement};
use sluice::live::publish::{publishable, PublishedEdge};
use sluice::live::timeline;
use sluice::model::{IFrame, SegmentRecord};
use sluice::time::{unwrap_pts, Ticks, UnixMillis, PTS_WRAP};

fn config() -> Config {
    Config {
        cases: 256,
        // A failure prints its minimal input; no regression files in the source tree.
        failure_persistence: None,
        ..Config::default()
    }
}

fn record(start: u64, duration: u64) -> SegmentRecord {
    SegmentRecord {
        channel: "ch".into(),
        rendition: "r".into(),
        start: Ticks(start),
        duration: Ticks(duration),
        sequence: 0,
        ingest_endpoint: "ie".into(),
        object_key: format!("ch/ie/r/{start}.ts"),
        size: 1_000,
        program_date_time: UnixMillis(0),
        received_at: UnixMillis(0),
        starts_with_keyframe: true,
        source_name: String::new(),
        pts_offset: 0,
        discontinuity: false,
        discontinuity_sequence: 0,
        iframes: Vec::new(),
        keyframes_before: 0,
        published: true,
    }
}

/// Ingest's continuity tolerance: two seconds or one segment, whichever is longer.
fn tolerance(last: &SegmentRecord) -> u64 {
    last.duration.0.max(180_000)
}

/// The newest indexed segment of a rendition: 0.5 to 30 s long, its encoder time anywhere
/// on a timeline many wraps long or within a minute of a 33-bit wrap, with the offset an
/// earlier encoder restart may have left.
fn last_segment() -> impl Strategy<Value = SegmentRecord> {
    let encoder = prop_oneof![
        0u64..1 << 40,
        (1u64..16, -5_400_000i64..5_400_000).prop_map(|(wraps, near)| (wraps * PTS_WRAP).saturating_add_signed(near)),
    ];
    let offset = prop_oneof![Just(0i64), 0i64..1 << 36];
    // Shorter than 2 s half the time, where the 2 s floor of the tolerance applies.
    let duration = prop_oneof![45_000u64..180_000, 180_000u64..=2_700_000];
    (encoder, duration, offset).prop_map(|(encoder, duration, pts_offset)| SegmentRecord {
        pts_offset,
        ..record(encoder + pts_offset as u64, duration)
    })
}

/// A last segment and how far after its end (in encoder time) the next one starts: any
/// jump up to 100 s, or one tick around the tolerance either way, or around "far behind".
fn last_and_jump() -> impl Strategy<Value = (SegmentRecord, i64)> {
    last_segment().prop_flat_map(|last| {
        let tolerance = tolerance(&last) as i64;
        let far = tolerance + last.duration.0 as i64;
        let boundary = (-1i64..=1, 0..3).prop_map(move |(d, which)| match which {
            0 => tolerance + d,
            1 => -tolerance + d,
            _ => -far + d,
        });
        (Just(last), prop_oneof![2 => -9_000_000i64..9_000_000, 1 => boundary])
    })
}

/// A last segment and any PTS, or one within two segments of the last one's (33 bits).
fn last_and_pts() -> impl Strategy<Value = (SegmentRecord, u64)> {
    last_segment().prop_flat_map(|last| {
        let encoder = (last.start.0 as i64 - last.pts_offset) as u64;
        let near = 2 * last.duration.0;
        let close = (encoder.saturating_sub(near)..encoder + 2 * near).prop_map(|t| t % PTS_WRAP);
        (Just(last), prop_oneof![any::<u64>(), close])
    })
}

proptest! {
    #![proptest_config(config())]

    /// A segment the encoder timestamped `delta` after the end of the last one is placed
    /// exactly there, across 33-bit wraps; it is the next one only if it starts after the
    /// last one's start (the timeline never goes backwards), and a discontinuity exactly
    /// when it is further than the tolerance from where the last one ended.
    #[test]
    fn placement_follows_the_encoder((last, delta) in last_and_jump()) {
        let encoder_end = last.end().0 as i64 - last.pts_offset;
        prop_assume!(encoder_end + delta >= 0);
        let raw = (encoder_end + delta) as u64 % PTS_WRAP;
        let expected = last.end().0 as i64 + delta;
        match place(raw, Some(&last)) {
            Placement::Next { start, pts_offset, discontinuity } => {
                prop_assert_eq!(start.0 as i64, expected);
                prop_assert!(start > last.start, "a next segment starts after the last one");
                prop_assert_eq!(pts_offset, last.pts_offset);
                prop_assert_eq!(discontinuity, delta.unsigned_abs() > tolerance(&last));
            }
            Placement::Behind { start, far } => {
                prop_assert_eq!(start.0 as i64, expected);
                prop_assert!(start <= last.start, "only a segment at or before the edge is behind");
                prop_assert_eq!(far, -delta > (tolerance(&last) + last.duration.0) as i64);
            }
        }
    }

    /// Whatever the PTS, a next segment never starts at or before the last one's start,
    /// its position keeps the PTS's 33 bits, and the discontinuity rule holds.
    #[test]
    fn placement_never_goes_backwards((last, raw) in last_and_pts()) {
        match place(raw, Some(&last)) {
            Placement::Next { start, pts_offset, discontinuity } => {
                prop_assert!(start > last.start);
                prop_assert_eq!(pts_offset, last.pts_offset);
                let encoder = start.0 as i64 - last.pts_offset;
                prop_assert_eq!(encoder.rem_euclid(PTS_WRAP as i64) as u64, raw % PTS_WRAP);
                prop_assert_eq!(discontinuity, start.0.abs_diff(last.end().0) > tolerance(&last));
            }
            Placement::Behind { start, .. } => prop_assert!(start <= last.start),
        }
    }

    /// A rendition's first segment is taken where its PTS says, continuous.
    #[test]
    fn a_first_segment_is_placed_at_its_pts(raw in any::<u64>()) {
        let placed = place(raw, None);
        prop_assert_eq!(placed, Placement::Next { start: Ticks(raw % PTS_WRAP), pts_offset: 0, discontinuity: false });
    }

    /// Unwrapping keeps the 33 bits and picks the closest value to the reference: a time
    /// less than 2^32 ticks (13 h) from the reference comes back whole, across any wrap.
    #[test]
    fn unwrapping_follows_the_reference(reference in 0u64..1 << 45, delta in -(1i64 << 32) + 1..(1i64 << 32)) {
        let t = reference as i64 + delta;
        prop_assume!(t >= 0);
        prop_assert_eq!(unwrap_pts(t as u64 % PTS_WRAP, Some(Ticks(reference))), Ticks(t as u64));
    }

    #[test]
    fn unwrapping_picks_the_closest_candidate(raw in any::<u64>(), reference in 0u64..1 << 45) {
        let Ticks(t) = unwrap_pts(raw, Some(Ticks(reference)));
        prop_assert_eq!(t % PTS_WRAP, raw % PTS_WRAP);
        let distance = t.abs_diff(reference);
        prop_assert!((t + PTS_WRAP).abs_diff(reference) >= distance);
        if let Some(lower) = t.checked_sub(PTS_WRAP) {
            prop_assert!(lower.abs_diff(reference) >= distance);
        }
        prop_assert_eq!(unwrap_pts(raw, None), Ticks(raw % PTS_WRAP));
    }
}

/// How one pending segment relates to the one before it.
#[derive(Clone, Copy, Debug)]
enum Step {
    Continuous(i64),
    Hole(u64),
    /// Half the shorter segment away from the previous end, plus `.0` ticks, later if `.1`.
    AtTolerance(i64, bool),
    Restart,
}

/// Unpublished records after `edge`, in media-time order: continuous (within a few
/// frames), after a hole, or an encoder restart; arrived at various times.
fn pending() -> impl Strategy<Value = (Option<PublishedEdge>, Vec<SegmentRecord>, i64, usize)> {
    let step = prop_oneof![
        6 => (-6_000i64..6_000).prop_map(Step::Continuous),
        2 => (90_000u64..1_000_000).prop_map(Step::Hole),
        1 => (-1i64..=1, any::<bool>()).prop_map(|(d, later)| Step::AtTolerance(d, later)),
        1 => Just(Step::Restart),
    ];
    let edge = prop::option::of((0u64..1 << 36, 90_000u64..540_000, 0u64..10_000, 0u64..5));
    // When each arrived: any time, or a millisecond around its horizon before `now`.
    let arrival = prop_oneof![(0i64..20_000).prop_map(Ok), (-1i64..=1).prop_map(Err)];
    let records = prop::collection::vec((step, 90_000u64..540_000, arrival), 0..16);
    (edge, records, 0i64..20_000, 1usize..20).prop_map(|(edge, steps, now, limit)| {
        let edge = edge.map(|(start, duration, sequence, discontinuity_sequence)| PublishedEdge {
            start: Ticks(start),
            end: Ticks(start + duration),
            sequence,
            discontinuity_sequence,
            keyframes_through: sequence * 3,
        });
        let (mut start_before, mut end) = edge.map_or((0, 1_000_000), |e| (e.start.0, e.end.0));
        let mut out = Vec::new();
        for (step, duration, received) in steps {
            let start = match step {
                Step::Continuous(jitter) => end.saturating_add_signed(jitter),
                Step::Hole(gap) => end + gap,
                Step::AtTolerance(d, later) => {
                    let half = ((end - start_before).min(duration) / 2) as i64 + d;
                    end.saturating_add_signed(if later { half } else { -half })
                }
                Step::Restart => end,
            };
            // In media-time order and after the edge's start, as the publish step reads them.
            let floor = out
                .last()
                .map_or(edge.map_or(0, |e| e.start.0), |r: &SegmentRecord| r.start.0);
            let start = start.max(floor + 1);
            let horizon = (duration / 90).max(2_000) as i64;
            let received = received.unwrap_or_else(|d| now - horizon + d);
            out.push(SegmentRecord {
                received_at: UnixMillis(received),
                discontinuity: matches!(step, Step::Restart),
                published: false,
                ..record(start, duration)
            });
            (start_before, end) = (start, start + duration);
        }
        (edge, out, now, limit)
    })
}

/// The publish rule's continuity: the next segment starts within half a segment (the
/// shorter of the two) of where the previous one ended.
fn continues(start: u64, end: u64, record: &SegmentRecord) -> bool {
    let shorter = (end - start).min(record.duration.0);
    record.start.0.abs_diff(end) * 2 <= shorter
}

proptest! {
    #![proptest_config(config())]

    /// Publishing numbers a prefix of the pending records one by one after the edge, in
    /// media-time order; a record is a discontinuity exactly when it does not continue the
    /// one before it or its encoder restarted; one after a hole is published only once its
    /// horizon has passed, and publishing stops only at such a record (or the limit).
    #[test]
    fn publishing_numbers_a_gap_free_prefix((edge, pending, now, limit) in pending()) {
        let out = publishable(edge, &pending, UnixMillis(now), limit);
        prop_assert!(out.len() <= limit.min(pending.len()));
        let mut previous = edge.map(|e| (e.start.0, e.end.0, e.sequence, e.discontinuity_sequence));
        for (published, original) in out.iter().zip(&pending) {
            prop_assert_eq!(published.start, original.start);
            prop_assert!(published.published);
            let continuous = previous.is_none_or(|(start, end, ..)| continues(start, end, original));
            prop_assert_eq!(published.discontinuity, original.discontinuity || !continuous);
            // One past a hole waits for its horizon (a first segment does not).
            let settled = now - original.received_at.0 >= original.duration.as_millis().max(2_000);
            prop_assert!(continuous || settled, "published past a hole before its horizon");
            let (sequence, discontinuities) = previous.map_or((0, 0), |(_, _, s, d)| (s + 1, d));
            prop_assert_eq!(published.sequence, sequence, "numbers follow each other");
            prop_assert_eq!(published.discontinuity_sequence, discontinuities + u64::from(published.discontinuity));
            if let Some((start, ..)) = previous {
                prop_assert!(published.start.0 > start, "the timeline never goes backwards");
            }
            previous = Some((published.start.0, published.end().0, published.sequence, published.discontinuity_sequence));
        }
        if out.len() < limit.min(pending.len()) {
            let next = &pending[out.len()];
            let continuous = previous.is_none_or(|(start, end, ..)| continues(start, end, next));
            let settled = now - next.received_at.0 >= next.duration.as_millis().max(2_000);
            prop_assert!(!continuous && !settled, "stopped before a record that could be published");
        }
    }
}

/// Published input records of one rendition (oldest first): consecutive sequence numbers
/// from a random one, some missing, each starting where the one before it ended, with
/// keyframes inside their bytes.
fn inputs() -> impl Strategy<Value = Vec<SegmentRecord>> {
    let input = (
        any::<bool>(),
        170_000u64..190_000,
        200u64..5_000,
        prop::collection::vec((0u64..1_000, any::<bool>()), 0..3),
        0u8..8,
    );
    (0u64..40, 0u64..1 << 34, prop::collection::vec(input, 0..40)).prop_map(|(first, start, inputs)| {
        let (mut t, mut discontinuities, mut out) = (start, 0, Vec::new());
        for (i, (present, duration, size, keyframes, kind)) in inputs.into_iter().enumerate() {
            let discontinuity = kind == 0;
            discontinuities += u64::from(discontinuity);
            let iframes = keyframes
                .into_iter()
                .map(|(at, psi)| IFrame {
                    time: Ticks(t + at),
                    offset: at * size / 1_000,
                    size: (size - at * size / 1_000).min(size / 3 + 1),
                    psi_size: if psi { 376.min(size) } else { 0 },
                })
                .collect();
            if present {
                out.push(SegmentRecord {
                    sequence: first + i as u64,
                    size,
                    discontinuity,
                    discontinuity_sequence: discontinuities,
                    iframes,
                    ..record(t, duration)
                });
            }
            t += duration;
        }
        out
    })
}

proptest! {
    #![proptest_config(config())]

    /// Output segments are exactly the complete groups of `k` inputs, in strictly increasing
    /// order, each as long and as large as its inputs, consecutive ones back to back on the
    /// timeline; keyframe ranges stay inside their output segment.
    #[test]
    fn grouping_is_complete_increasing_and_gap_free(records in inputs(), k in 1u64..6) {
        let out = timeline::group_segments(&records, k);
        let by_sequence = |s: u64| records.iter().find(|r| r.sequence == s);
        let complete: Vec<u64> = records
            .iter()
            .map(|r| r.sequence / k)
            .filter(|g| (g * k..g * k + k).all(|s| by_sequence(s).is_some()))
            .fold(Vec::new(), |mut v, g| { if v.last() != Some(&g) { v.push(g) } v });
        prop_assert_eq!(out.iter().map(|s| s.sequence).collect::<Vec<_>>(), complete);
        for pair in out.windows(2) {
            prop_assert!(pair[0].sequence < pair[1].sequence);
            if pair[1].sequence == pair[0].sequence + 1 {
                prop_assert_eq!(pair[0].start.0 + pair[0].duration.0, pair[1].start.0, "no gap between neighbours");
            }
        }
        for s in &out {
            let members: Vec<&SegmentRecord> = (s.sequence * k..s.sequence * k + k).filter_map(by_sequence).collect();
            prop_assert_eq!(s.start, members[0].start);
            prop_assert_eq!(s.duration.0, members.iter().map(|r| r.duration.0).sum::<u64>());
            prop_assert_eq!(s.size, members.iter().map(|r| r.size).sum::<u64>());
            prop_assert_eq!(s.discontinuity, members.iter().any(|r| r.discontinuity));
            prop_assert_eq!(s.discontinuity_sequence, members[k as usize - 1].discontinuity_sequence);
            prop_assert_eq!(s.iframes.len(), members.iter().map(|r| r.iframes.len()).sum::<usize>());
            for f in &s.iframes {
                prop_assert!(f.size > 0 && f.offset + f.size <= s.size, "keyframe range outside its segment");
                if let Some((offset, length)) = f.psi {
                    prop_assert!(offset + length <= s.size && offset <= f.offset);
                }
            }
        }
    }

    /// The live window is the newest output segments that cover it, and no more.
    #[test]
    fn the_window_is_the_shortest_covering_suffix(records in inputs(), k in 1u64..4, seconds in 1u64..60) {
        let grouped = timeline::group_segments(&records, k);
        let window = timeline::live_window(&grouped, Ticks::from_secs(seconds));
        prop_assert!(grouped.ends_with(window));
        let total: u64 = window.iter().map(|s| s.duration.0).sum();
        let wanted = Ticks::from_secs(seconds).0;
        prop_assert!(total >= wanted || window.len() == grouped.len());
        if let Some(first) = window.first() {
            prop_assert!(total - first.duration.0 < wanted, "one segment more than the window needs");
        }
    }
}
