//! Video frame rates from the stream's timing: the spacing of the access units' decoding
//! timestamps on the 90 kHz clock, or the SPS VUI timing (H.264 Annex E, H.265 Annex E)
//! when a segment has too few frames to measure.

use crate::time::{Ticks, TICKS_PER_SECOND};

/// A frame rate as an exact fraction: `30000/1001` for NTSC's "29.97", `60/1` for 60.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRate {
    /// Numerator: this many frames ...
    pub frames: u64,
    /// ... in this many seconds.
    pub seconds: u64,
}

/// The broadcast rates, as fractions. A measurement that fits one of them within a tick is
/// that rate exactly.
const NOMINAL: [(u64, u64); 13] = [
    (24_000, 1001),
    (24, 1),
    (25, 1),
    (30_000, 1001),
    (30, 1),
    (48_000, 1001),
    (48, 1),
    (50, 1),
    (60_000, 1001),
    (60, 1),
    (100, 1),
    (120_000, 1001),
    (120, 1),
];

impl FrameRate {
    /// The rate of a stream whose first and last decoding timestamps in a segment are
    /// `span` apart with `intervals` frame intervals between them. Timestamps are whole
    /// ticks, so an NTSC rate's frames alternate (59.94 fps: 1501 and 1502 ticks) and the
    /// span is exact only to a tick: the nominal rate that fits within one tick is the
    /// rate; otherwise the measured rate to 1/1000.
    pub fn from_timestamps(intervals: u64, span: Ticks) -> Option<FrameRate> {
        if intervals == 0 || span.0 == 0 {
            return None;
        }
        // |span − intervals × seconds/frames × 90 000| in ticks, scaled by `frames`.
        let deviation = |(frames, seconds): (u64, u64)| {
            let nominal = u128::from(intervals) * u128::from(seconds) * u128::from(TICKS_PER_SECOND);
            (u128::from(span.0) * u128::from(frames)).abs_diff(nominal) as f64 / frames as f64
        };
        let best = NOMINAL
            .into_iter()
            .map(|rate| (rate, deviation(rate)))
            .filter(|(_, ticks)| *ticks <= 1.0)
            .min_by(|a, b| a.1.total_cmp(&b.1));
        if let Some(((frames, seconds), _)) = best {
            return Some(FrameRate { frames, seconds });
        }
        let millis =
            (u128::from(intervals) * u128::from(TICKS_PER_SECOND) * 1000 + u128::from(span.0) / 2) / u128::from(span.0);
        Some(FrameRate::reduced(u64::try_from(millis).ok()?, 1000))
    }

    /// The rate the VUI timing gives: `time_scale` ticks per second, `ticks_per_frame` of
    /// them per frame (H.265: `num_units_in_tick`; H.264: twice that, a tick is a field).
    pub fn from_vui(time_scale: u32, ticks_per_frame: u64) -> Option<FrameRate> {
        (time_scale > 0 && ticks_per_frame > 0).then(|| FrameRate::reduced(u64::from(time_scale), ticks_per_frame))
    }

    fn reduced(frames: u64, seconds: u64) -> FrameRate {
        let (mut a, mut b) = (frames, seconds);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        FrameRate {
            frames: frames / a.max(1),
            seconds: seconds / a.max(1),
        }
    }

    /// Frames per second to three decimals, as HLS `FRAME-RATE` writes it (29.97, 59.94,
    /// 23.976, 60).
    pub fn per_second(self) -> f64 {
        (self.frames as f64 * 1000.0 / self.seconds as f64).round() / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(intervals: u64, span: u64) -> f64 {
        FrameRate::from_timestamps(intervals, Ticks(span)).unwrap().per_second()
    }

    #[test]
    fn broadcast_rates_from_frame_durations_on_the_90khz_clock() {
        // 90 000 / fps ticks per frame (SMPTE rates: 90 000 × 1001 / 30 000 = 3003).
        assert_eq!(rate(119, 119 * 1500), 60.0);
        assert_eq!(rate(59, 59 * 3000), 30.0);
        assert_eq!(rate(49, 49 * 3600), 25.0);
        assert_eq!(rate(99, 99 * 1800), 50.0);
        assert_eq!(rate(59, 59 * 3003), 29.97);
        // 1501.5 and 3753.75 ticks are not whole: the timestamps round each frame's time.
        let rounded = |intervals: u64, per_frame: f64| (intervals as f64 * per_frame).round() as u64;
        assert_eq!(rate(119, rounded(119, 1501.5)), 59.94);
        assert_eq!(rate(47, rounded(47, 3753.75)), 23.976);
        // One frame interval is enough: 1501 ticks is 59.94, 1500 is 60.
        assert_eq!(rate(1, 1501), 59.94);
        assert_eq!(rate(1, 1502), 59.94);
        assert_eq!(rate(1, 1500), 60.0);
        assert_eq!(rate(1, 3003), 29.97);
        assert_eq!(rate(1, 3000), 30.0);
    }

    #[test]
    fn exact_fractions_for_dash() {
        let ntsc = FrameRate::from_timestamps(59, Ticks(59 * 3003)).unwrap();
        assert_eq!((ntsc.frames, ntsc.seconds), (30_000, 1001));
        let sixty = FrameRate::from_timestamps(119, Ticks(119 * 1500)).unwrap();
        assert_eq!((sixty.frames, sixty.seconds), (60, 1));
    }

    #[test]
    fn other_rates_are_measured_to_a_thousandth() {
        // 7 fps: 12 857.14 ticks per frame.
        assert_eq!(rate(6, 77_143), 7.0);
        assert_eq!(rate(10, 10 * 4000), 22.5);
        assert_eq!(FrameRate::from_timestamps(0, Ticks(3000)), None);
        assert_eq!(FrameRate::from_timestamps(3, Ticks(0)), None);
    }

    #[test]
    fn vui_timing() {
        // H.264 x264 at 60 fps: time_scale 120, num_units_in_tick 1 (a tick is a field).
        assert_eq!(FrameRate::from_vui(120, 2).unwrap().per_second(), 60.0);
        // H.265 at 59.94: time_scale 60 000, num_units_in_tick 1001.
        let ntsc = FrameRate::from_vui(60_000, 1001).unwrap();
        assert_eq!((ntsc.frames, ntsc.seconds, ntsc.per_second()), (60_000, 1001, 59.94));
        assert_eq!(FrameRate::from_vui(0, 1), None);
    }
}
