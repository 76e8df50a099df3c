//! What a rendition's document says about it, measured from its segments.

use crate::model::SegmentRecord;
use crate::time::Ticks;

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

/// Bit rate of `bytes` of one track's elementary stream over a segment's `duration`.
pub fn audio_bits_per_second(bytes: u64, duration: Ticks) -> u64 {
    let secs = duration.as_secs_f64();
    if secs > 0.0 {
        (bytes as f64 * 8.0 / secs).round() as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_rate_over_the_segment() {
        // 2 s of 128 kb/s AAC: 32 000 bytes.
        assert_eq!(audio_bits_per_second(32_000, Ticks(180_000)), 128_000);
        assert_eq!(audio_bits_per_second(32_000, Ticks(0)), 0);
    }
}
