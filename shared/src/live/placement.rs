//! Where a segment goes on its rendition's timeline, from its first PTS and the newest
//! indexed segment: the next one, with or without a discontinuity, or behind the edge.

use crate::model::SegmentRecord;
use crate::time::{unwrap_pts, Ticks};

/// Where a segment goes on its rendition's timeline, given the newest indexed one.
#[derive(Debug, PartialEq)]
pub enum Placement {
    /// The next segment: `start` on the timeline, with the offset from encoder PTS and
    /// whether the encoder's timestamps jumped here.
    Next {
        start: Ticks,
        pts_offset: i64,
        discontinuity: bool,
    },
    /// At or before the live edge. Near it: a re-send, the other input's copy of a slot or
    /// a straggler. `far` behind (more than two segments): the encoder restarted, even when
    /// its new timestamps happen to equal an old slot's (ffmpeg always starts at 1.4 s).
    Behind { start: Ticks, far: bool },
}

/// Largest gap between where a segment was expected and where it starts that still
/// counts as continuous: two seconds or one segment, whichever is longer.
fn tolerance(last: &SegmentRecord) -> i128 {
    i128::from(last.duration.max(Ticks::from_secs(2)).0)
}

/// Places a segment whose first PTS (33-bit) is `raw_pts` after `last`.
pub fn place(raw_pts: u64, last: Option<&SegmentRecord>) -> Placement {
    let Some(last) = last else {
        return Placement::Next {
            start: unwrap_pts(raw_pts, None),
            pts_offset: 0,
            discontinuity: false,
        };
    };
    let encoder_ref = (i128::from(last.start.0) - i128::from(last.pts_offset)).max(0) as u64;
    let encoder_pts = unwrap_pts(raw_pts, Some(Ticks(encoder_ref)));
    let candidate = (i128::from(encoder_pts.0) + i128::from(last.pts_offset)).max(0) as u64;
    let jump = i128::from(candidate) - i128::from(last.end().0);
    if candidate <= last.start.0 {
        return Placement::Behind {
            start: Ticks(candidate),
            far: -jump > tolerance(last) + i128::from(last.duration.0),
        };
    }
    Placement::Next {
        start: Ticks(candidate),
        pts_offset: last.pts_offset,
        discontinuity: jump.abs() > tolerance(last),
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn indexed(start: u64, pts_offset: i64) -> SegmentRecord {
        SegmentRecord {
            pts_offset,
            ..SegmentRecord::example("r", start)
        }
    }

    #[test]
    fn placement_follows_the_encoder_timeline() {
        // First segment: taken as is.
        assert_eq!(
            place(126_000, None),
            Placement::Next {
                start: Ticks(126_000),
                pts_offset: 0,
                discontinuity: false
            }
        );
        // The next 2 s segment continues.
        let last = indexed(126_000, 0);
        assert_eq!(
            place(306_000, Some(&last)),
            Placement::Next {
                start: Ticks(306_000),
                pts_offset: 0,
                discontinuity: false
            }
        );
        // A re-send of the same slot is behind, not far.
        assert_eq!(
            place(126_000, Some(&last)),
            Placement::Behind {
                start: Ticks(126_000),
                far: false
            }
        );
        // A forward jump of a minute is a discontinuity on the same offset.
        assert_eq!(
            place(5_706_000, Some(&last)),
            Placement::Next {
                start: Ticks(5_706_000),
                pts_offset: 0,
                discontinuity: true
            }
        );
        // An encoder restart (PTS back to 1.4 s after 100 s): far behind.
        let late = indexed(9_126_000, 0);
        assert_eq!(
            place(126_000, Some(&late)),
            Placement::Behind {
                start: Ticks(126_000),
                far: true
            }
        );
        // After a restart the encoder's PTS are mapped through the new offset.
        let restarted = indexed(9_306_000, 9_180_000); // encoder PTS 126_000
        assert_eq!(
            place(306_000, Some(&restarted)),
            Placement::Next {
                start: Ticks(9_486_000),
                pts_offset: 9_180_000,
                discontinuity: false
            }
        );
        // The 33-bit wrap is not a discontinuity.
        let near_wrap = indexed(crate::time::PTS_WRAP - 90_000, 0);
        assert_eq!(
            place(90_000, Some(&near_wrap)),
            Placement::Next {
                start: Ticks(crate::time::PTS_WRAP + 90_000),
                pts_offset: 0,
                discontinuity: false
            }
        );
    }
}
