//! A rendition's target duration, which never changes once published (RFC 8216
//! §6.2.1 forbids it), and the robust bit rate its `BANDWIDTH` and stream selection use.
//!
//! - The **input target** is fixed by the rendition's first segment: its duration rounded
//!   up to whole seconds after [`TOLERANCE`] (2.000 s and 2.002 s give 2 s; 2.4 s gives 3 s),
//!   at most [`MAX_TARGET_SECONDS`]. Output grouping, `EXT-X-TARGETDURATION`, the playlist
//!   cache time and the live window all follow it, so none of them moves.
//! - Every later segment must be shorter than the target plus [`TOLERANCE`] (0.1 s, two
//!   frames at 24 fps): a longer one is refused with 400 before anything is stored, as
//!   growing the target would change published playlists and grouping.
//! - An output segment of `k` inputs is then shorter than `k × (target + tolerance)`, and
//!   [`output_target`] declares the longest that rounds to, so no `EXTINF` exceeds it (for
//!   up to five inputs per output segment that is just `k × target`).

use crate::time::{Ticks, TICKS_PER_SECOND as HZ};

/// How much longer than its target an input segment may be.
pub const TOLERANCE: Ticks = Ticks(9_000);

/// The longest input target a rendition may have (MediaPackage's longest output segment).
pub const MAX_TARGET_SECONDS: u32 = 30;

/// The input target, in whole seconds, that a rendition's first segment fixes.
pub fn target_of_first(duration: Ticks) -> Result<u32, String> {
    // Strictly above `duration - TOLERANCE`, so the first segment itself passes `check`.
    let seconds = duration.0.saturating_sub(TOLERANCE.0) / HZ + 1;
    if seconds > u64::from(MAX_TARGET_SECONDS) {
        return Err(format!(
            "the segment lasts {:.3} s; a rendition's segments may last at most {MAX_TARGET_SECONDS} s",
            duration.as_secs_f64()
        ));
    }
    Ok(seconds as u32)
}

/// Whether an input segment of `duration` fits a rendition whose target is `target_seconds`.
pub fn check(duration: Ticks, target_seconds: u32) -> Result<(), String> {
    let limit = Ticks::from_secs(u64::from(target_seconds)) + TOLERANCE;
    if duration < limit {
        return Ok(());
    }
    Err(format!(
        "the segment lasts {:.3} s; this rendition's target duration is {target_seconds} s, fixed by its \
         first segment, so its segments must be shorter than {:.1} s. Cut segments at the target (with \
         ffmpeg: -hls_time {target_seconds} and a keyframe at least every {target_seconds} s, -sc_threshold 0); \
         a different target needs a new channel",
        duration.as_secs_f64(),
        limit.as_secs_f64()
    ))
}

/// `EXT-X-TARGETDURATION` of output segments made of `k` inputs: the largest whole number
/// a duration below `k × (target + TOLERANCE)` rounds to.
pub fn output_target(target_seconds: u32, k: u64) -> u64 {
    let bound = k * (u64::from(target_seconds) * HZ + TOLERANCE.0);
    // round(x) <= n for every x < bound exactly when n >= ceil(bound - 0.5 s).
    (bound - HZ / 2).div_ceil(HZ).max(1)
}

/// How many recent segment bit rates a rendition keeps for [`robust_peak`].
pub const RECENT_SEGMENTS: usize = 32;

/// The peak of `rates` ignoring the single highest (an odd segment must not move a
/// rendition out of a stream selection or inflate `BANDWIDTH` for good); the only value
/// while there is one, `None` while there is none.
pub fn robust_peak(rates: &[u64]) -> Option<u64> {
    let mut sorted = rates.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.get(1).or(sorted.first()).copied()
}

/// `rates` with `rate` appended, keeping the newest [`RECENT_SEGMENTS`].
pub fn push_recent(rates: &[u64], rate: u64) -> Vec<u64> {
    let skip = (rates.len() + 1).saturating_sub(RECENT_SEGMENTS);
    rates.iter().copied().chain(std::iter::once(rate)).skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Ticks {
        Ticks((s * 90_000.0).round() as u64)
    }

    #[test]
    fn the_first_segment_fixes_a_whole_second_target_that_it_fits() {
        assert_eq!(target_of_first(secs(2.0)), Ok(2));
        assert_eq!(target_of_first(secs(2.002)), Ok(2), "29.97 fps, 60 frames");
        assert_eq!(target_of_first(secs(2.4)), Ok(3));
        assert_eq!(target_of_first(secs(0.5)), Ok(1));
        assert_eq!(target_of_first(secs(30.0)), Ok(30));
        assert!(target_of_first(secs(50.0)).unwrap_err().contains("at most 30 s"));
        for d in [0.04, 1.0, 1.999, 2.0, 2.05, 2.1, 2.4, 6.006, 10.0, 29.99] {
            let t = target_of_first(secs(d)).unwrap();
            assert!(check(secs(d), t).is_ok(), "{d} s must fit the target it fixes ({t} s)");
        }
    }

    #[test]
    fn longer_segments_than_target_and_tolerance_are_refused() {
        assert!(check(secs(2.0), 2).is_ok());
        assert!(check(secs(1.2), 2).is_ok(), "shorter is always fine");
        assert!(check(secs(2.08), 2).is_ok(), "two frames late at 25 fps");
        let e = check(secs(3.0), 2).unwrap_err();
        assert!(
            e.contains("3.000 s") && e.contains("target duration is 2 s") && e.contains("2.1 s"),
            "{e}"
        );
        assert!(check(secs(2.1), 2).is_err(), "the limit itself is out");
    }

    #[test]
    fn the_declared_output_target_covers_every_output_that_can_be_accepted() {
        assert_eq!(output_target(2, 1), 2);
        assert_eq!(output_target(2, 3), 6);
        assert_eq!(output_target(2, 5), 10);
        assert_eq!(output_target(1, 6), 7, "6 × 1.1 s = 6.6 s rounds to 7");
        assert_eq!(output_target(1, 30), 33);
        // Exhaustively: k inputs each just under the limit round to at most the target.
        for t in 1..=MAX_TARGET_SECONDS {
            for k in 1..=30u64 {
                let longest = k * (u64::from(t) * HZ + TOLERANCE.0 - 1);
                let rounded = Ticks(longest).as_secs_f64().round() as u64;
                assert!(
                    rounded <= output_target(t, k),
                    "t={t} k={k}: {rounded} > {}",
                    output_target(t, k)
                );
                assert!(output_target(t, k) >= k * u64::from(t));
            }
        }
    }

    #[test]
    fn one_outlier_does_not_move_the_peak() {
        assert_eq!(robust_peak(&[]), None);
        assert_eq!(robust_peak(&[500]), Some(500));
        assert_eq!(robust_peak(&[500, 12_500]), Some(500));
        assert_eq!(robust_peak(&[500, 520, 12_500, 480]), Some(520));
        assert_eq!(
            robust_peak(&[500, 12_500, 12_000]),
            Some(12_000),
            "two high ones are a real peak"
        );
    }

    #[test]
    fn recent_rates_keep_the_newest() {
        let mut rates = Vec::new();
        for r in 0..40 {
            rates = push_recent(&rates, r);
        }
        assert_eq!(rates.len(), RECENT_SEGMENTS);
        assert_eq!(rates.first(), Some(&8));
        assert_eq!(rates.last(), Some(&39));
    }
}
