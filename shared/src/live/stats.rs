//! What a rendition's document says about it, measured from its segments.

use crate::model::SegmentRecord;

/// Bit rate of a segment's keyframes over the segment's duration.
pub fn iframe_bits_per_second(record: &SegmentRecord) -> u64 {
    let bits: u64 = record.iframes.iter().map(|f| f.size * 8).sum();
    let secs = record.duration.as_secs_f64();
    if secs > 0.0 {
        (bits as f64 / secs).round() as u64
    } else {
        0
    }
}

/// Rounds a measured frame rate to the common rate it is within 0.5 % of, else to 3 decimals.
pub fn snap_frame_rate(measured: f64) -> f64 {
    const RATES: [f64; 10] = [23.976, 24.0, 25.0, 29.97, 30.0, 47.952, 48.0, 50.0, 59.94, 60.0];
    RATES
        .iter()
        .copied()
        .find(|r| (measured - r).abs() / r < 0.005)
        .unwrap_or((measured * 1000.0).round() / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_rates_snap_to_broadcast_rates() {
        assert_eq!(snap_frame_rate(25.01), 25.0);
        assert_eq!(snap_frame_rate(29.969), 29.97);
        assert_eq!(snap_frame_rate(12.3456), 12.346);
    }
}
