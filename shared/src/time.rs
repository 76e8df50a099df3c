//! Units of time. Media time is 90 kHz ticks (MPEG-TS clock), unwrapped to 64 bits;
//! wall-clock time is milliseconds since the Unix epoch. Keeping them distinct types
//! is what stops the classic "seconds where ticks were meant" bug.

use serde::{Deserialize, Serialize};

/// Ticks of the 90 kHz MPEG system clock per second.
pub const TICKS_PER_SECOND: u64 = 90_000;
/// PTS/DTS values in a transport stream are 33 bits wide and wrap every ~26.5 hours.
pub const PTS_WRAP: u64 = 1 << 33;

/// A media time or duration in 90 kHz ticks, unwrapped (never wraps at 33 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Ticks(pub u64);

impl Ticks {
    /// Ticks from (possibly fractional) seconds, rounded to the nearest tick.
    pub fn from_secs_f64(secs: f64) -> Ticks {
        Ticks((secs * TICKS_PER_SECOND as f64).round().max(0.0) as u64)
    }

    /// Whole seconds.
    pub fn from_secs(secs: u64) -> Ticks {
        Ticks(secs * TICKS_PER_SECOND)
    }

    /// This time in seconds.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / TICKS_PER_SECOND as f64
    }

    /// This time in milliseconds, rounded down.
    pub fn as_millis(self) -> i64 {
        (self.0 / (TICKS_PER_SECOND / 1000)) as i64
    }

    /// Milliseconds from `earlier` to this time, negative when `earlier` is later; rounded
    /// toward zero.
    pub fn millis_since(self, earlier: Ticks) -> i64 {
        ((i128::from(self.0) - i128::from(earlier.0)) / i128::from(TICKS_PER_SECOND / 1000)) as i64
    }

    /// `self - other`, or zero when `other` is later.
    pub fn saturating_sub(self, other: Ticks) -> Ticks {
        Ticks(self.0.saturating_sub(other.0))
    }
}

impl std::ops::Add for Ticks {
    type Output = Ticks;
    fn add(self, rhs: Ticks) -> Ticks {
        Ticks(self.0 + rhs.0)
    }
}

/// Unwraps a 33-bit PTS to the 64-bit timeline value closest to `reference`.
///
/// `reference` is an unwrapped time known to be near `raw` (the previous segment of the
/// same rendition); without one, the raw value is taken as is.
pub fn unwrap_pts(raw: u64, reference: Option<Ticks>) -> Ticks {
    let raw = raw % PTS_WRAP;
    let Some(Ticks(reference)) = reference else {
        return Ticks(raw);
    };
    let epoch = reference / PTS_WRAP;
    let candidates = [epoch.checked_sub(1), Some(epoch), epoch.checked_add(1)];
    candidates
        .into_iter()
        .flatten()
        .map(|e| e * PTS_WRAP + raw)
        .min_by_key(|t| t.abs_diff(reference))
        .map(Ticks)
        .unwrap_or(Ticks(raw))
}

/// Wall-clock time: milliseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixMillis(pub i64);

impl UnixMillis {
    /// The current wall-clock time. Only edges (ingest, origin entry points) call this;
    /// the media core takes `now` as an argument.
    pub fn now() -> UnixMillis {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UnixMillis(since.as_millis() as i64)
    }

    /// As a chrono UTC timestamp (for formatting).
    pub fn to_datetime(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }

    /// ISO-8601 with milliseconds and a `Z` suffix, e.g. `2026-11-24T22:00:00.000Z`.
    pub fn to_iso8601(self) -> String {
        self.to_datetime().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    }

    /// Seconds since the epoch.
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrap_follows_the_reference_across_the_33_bit_wrap() {
        let near_end = Ticks(PTS_WRAP - 90_000);
        assert_eq!(unwrap_pts(90_000, Some(near_end)), Ticks(PTS_WRAP + 90_000));
        let after = Ticks(PTS_WRAP + 10);
        assert_eq!(unwrap_pts(PTS_WRAP - 100, Some(after)), Ticks(PTS_WRAP - 100));
        assert_eq!(unwrap_pts(1234, None), Ticks(1234));
        assert_eq!(unwrap_pts(5000, Some(Ticks(4000))), Ticks(5000));
    }

    #[test]
    fn iso8601_is_utc_with_millis() {
        assert_eq!(UnixMillis(0).to_iso8601(), "1970-01-01T00:00:00.000Z");
        assert_eq!(UnixMillis(1_500).to_iso8601(), "1970-01-01T00:00:01.500Z");
    }
}
