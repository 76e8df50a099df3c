//! The output timeline every package shares (HLS TS, CMAF, DASH, and later harvest):
//! input segments grouped into output segments of `segmentDurationSeconds` (a whole
//! number of inputs, MediaPackage's rule), the live window, the target duration. Output
//! sequence numbers are the input sequence divided by the group size, so they are stable
//! and never go backwards as the window slides.

use crate::model::{Rendition, SegmentRecord};
use crate::time::{Ticks, UnixMillis};

/// One output segment: `inputs` consecutive input segments served as one.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSegment {
    /// Output media sequence number.
    pub sequence: u64,
    /// Start of the first input segment; also the segment's name in URLs.
    pub start: Ticks,
    pub duration: Ticks,
    pub program_date_time: UnixMillis,
    pub starts_with_keyframe: bool,
    pub size: u64,
    /// The encoder's timestamps jump inside this output segment's inputs (a restart):
    /// written as `EXT-X-DISCONTINUITY` before it.
    pub discontinuity: bool,
    /// Discontinuities of the rendition up to and including this segment.
    pub discontinuity_sequence: u64,
    /// Keyframes, with byte ranges within this output segment (inputs back to back).
    pub iframes: Vec<OutputIFrame>,
    /// Keyframes of the rendition before this segment: the media sequence number of its
    /// first I-frame playlist entry.
    pub keyframes_before: u64,
}

impl OutputSegment {
    /// The media sequence number of this segment's last I-frame playlist entry (none
    /// when it has no keyframes).
    pub fn last_iframe_sequence(&self) -> Option<u64> {
        (self.iframes.len() as u64)
            .checked_sub(1)
            .map(|n| self.keyframes_before + n)
    }
}

/// A keyframe of an output segment.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputIFrame {
    pub time: Ticks,
    /// Byte range within the output segment.
    pub offset: u64,
    pub size: u64,
    /// Byte range of the PAT/PMT its input segment starts with (none if it does not).
    pub psi: Option<(u64, u64)>,
    /// Its range starts with that PAT/PMT (the first keyframe of an input segment).
    pub self_contained: bool,
}

/// How many input segments make one output segment: the configured duration rounded
/// to the nearest whole multiple of the input duration (at least one).
pub fn group_size(segment_duration_seconds: u32, input: Ticks) -> u64 {
    let input_secs = input.as_secs_f64().round().max(1.0);
    ((f64::from(segment_duration_seconds) / input_secs).round() as u64).max(1)
}

/// Groups consecutive input records (oldest first) into complete output segments.
/// A group is complete when it holds all `k` input sequence numbers `g*k .. g*k+k`.
pub fn group_segments(records: &[SegmentRecord], k: u64) -> Vec<OutputSegment> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < records.len() {
        let group = records[i].sequence / k;
        let members: Vec<&SegmentRecord> = records[i..].iter().take_while(|r| r.sequence / k == group).collect();
        i += members.len();
        let complete = members.len() as u64 == k
            && members
                .iter()
                .enumerate()
                .all(|(j, r)| r.sequence == group * k + j as u64);
        if !complete {
            continue;
        }
        let first = members[0];
        out.push(OutputSegment {
            sequence: group,
            start: first.start,
            duration: Ticks(members.iter().map(|r| r.duration.0).sum()),
            program_date_time: first.program_date_time,
            starts_with_keyframe: first.starts_with_keyframe,
            size: members.iter().map(|r| r.size).sum(),
            discontinuity: members.iter().any(|r| r.discontinuity),
            discontinuity_sequence: members.iter().map(|r| r.discontinuity_sequence).max().unwrap_or(0),
            keyframes_before: first.keyframes_before,
            iframes: members
                .iter()
                .scan(0u64, |before, r| {
                    let base = *before;
                    *before += r.size;
                    Some(r.iframes.iter().map(move |f| OutputIFrame {
                        time: f.time,
                        offset: f.offset + base,
                        size: f.size,
                        psi: (f.psi_size > 0).then_some((base, f.psi_size)),
                        self_contained: f.offset == 0 && f.psi_size > 0,
                    }))
                })
                .flatten()
                .collect(),
        });
    }
    out
}

/// The newest segments whose durations add up to at least `window` (all when shorter).
pub fn live_window(segments: &[OutputSegment], window: Ticks) -> &[OutputSegment] {
    let mut total = 0u64;
    let mut first = segments.len();
    while first > 0 && total < window.0 {
        first -= 1;
        total += segments[first].duration.0;
    }
    &segments[first..]
}

/// `EXT-X-TARGETDURATION`: no EXTINF may round above it (RFC 8216 §4.3.3.1), and it never
/// changes (§6.2.1): fixed by the rendition's input target, which ingest holds every
/// segment to (see [`crate::live::target`]). Longer segments can only come from
/// documents written before the target was fixed; the value then still covers them.
pub fn target_duration(segments: &[OutputSegment], rendition: &Rendition, k: u64) -> u64 {
    let nominal = crate::live::target::output_target(rendition.target_secs(), k);
    segments
        .iter()
        .map(|s| s.duration.as_secs_f64().round() as u64)
        .fold(nominal.max(1), u64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_iframe_entry_is_numbered_from_the_keyframes_before() {
        let mut s = group_segments(&SegmentRecord::examples("360p", 3), 3).remove(0);
        assert_eq!(s.last_iframe_sequence(), None);
        s.keyframes_before = 40;
        s.iframes = vec![
            OutputIFrame {
                time: Ticks(0),
                offset: 0,
                size: 1,
                psi: None,
                self_contained: false
            };
            3
        ];
        assert_eq!(s.last_iframe_sequence(), Some(42));
    }

    #[test]
    fn groups_are_complete_runs_of_k_inputs() {
        let out = group_segments(&SegmentRecord::examples("360p", 7), 3);
        assert_eq!(
            out.iter().map(|s| (s.sequence, s.start.0)).collect::<Vec<_>>(),
            [(0, 0), (1, 540_000)]
        );
        assert_eq!(out[0].duration, Ticks(540_000));
        let mut gap = SegmentRecord::examples("360p", 6);
        gap.remove(4); // input 4 missing: group 1 is incomplete and left out
        assert_eq!(group_segments(&gap, 3).len(), 1);
        // A window that starts mid-group skips the partial first group.
        assert_eq!(
            group_segments(&SegmentRecord::examples("360p", 7)[1..], 3)
                .iter()
                .map(|s| s.sequence)
                .collect::<Vec<_>>(),
            [1]
        );
    }

    #[test]
    fn group_size_rounds_to_a_multiple_of_the_input() {
        assert_eq!(group_size(6, Ticks(180_000)), 3);
        assert_eq!(group_size(5, Ticks(180_000)), 3); // 2.5 rounds to 3
        assert_eq!(group_size(1, Ticks(180_000)), 1);
        assert_eq!(group_size(6, Ticks(183_600)), 3); // 2.04 s inputs
    }

    #[test]
    fn window_keeps_the_newest_segments_covering_it() {
        let out = group_segments(&SegmentRecord::examples("360p", 10), 1);
        let w = live_window(&out, Ticks::from_secs(6));
        assert_eq!(w.iter().map(|s| s.sequence).collect::<Vec<_>>(), [7, 8, 9]);
        assert_eq!(live_window(&out, Ticks::from_secs(100)).len(), 10);
    }
}
