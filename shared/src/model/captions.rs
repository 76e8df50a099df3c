//! Closed captions a rendition's video carries in its SEI (CEA-608 channels and CEA-708
//! services, ATSC A/53 Part 4), named as HLS `INSTREAM-ID` names them; and how the
//! rendition document keeps them from segment to segment.

use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One caption channel: written `CC1`–`CC4` (CEA-608) or `SERVICE1`–`SERVICE63` (CEA-708),
/// the `INSTREAM-ID` values of RFC 8216 §4.3.4.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum CaptionChannel {
    /// CEA-608 data channel 1–4: CC1 and CC2 on field 1, CC3 and CC4 on field 2.
    Cea608(u8),
    /// CEA-708 caption service 1–63.
    Cea708(u8),
}

/// What carries a caption channel in `cc_data`: its `cc_type` (A/53 Part 4 Table 6.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptionCarrier {
    /// CEA-608 byte pairs of NTSC field 1 (`cc_type` 0).
    Field1,
    /// CEA-608 byte pairs of NTSC field 2 (`cc_type` 1).
    Field2,
    /// CEA-708 DTVCC packets (`cc_type` 2 and 3).
    Dtvcc,
}

impl CaptionChannel {
    /// The `cc_data` stream this channel travels in.
    pub fn carrier(self) -> CaptionCarrier {
        match self {
            CaptionChannel::Cea608(1 | 2) => CaptionCarrier::Field1,
            CaptionChannel::Cea608(_) => CaptionCarrier::Field2,
            CaptionChannel::Cea708(_) => CaptionCarrier::Dtvcc,
        }
    }
}

impl fmt::Display for CaptionChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptionChannel::Cea608(n) => write!(f, "CC{n}"),
            CaptionChannel::Cea708(n) => write!(f, "SERVICE{n}"),
        }
    }
}

impl From<CaptionChannel> for String {
    fn from(channel: CaptionChannel) -> String {
        channel.to_string()
    }
}

impl TryFrom<String> for CaptionChannel {
    type Error = String;

    fn try_from(text: String) -> Result<CaptionChannel, String> {
        let number =
            |digits: &str, range: std::ops::RangeInclusive<u8>| digits.parse::<u8>().ok().filter(|n| range.contains(n));
        let channel = match (text.strip_prefix("CC"), text.strip_prefix("SERVICE")) {
            (Some(n), _) => number(n, 1..=4).map(CaptionChannel::Cea608),
            (_, Some(n)) => number(n, 1..=63).map(CaptionChannel::Cea708),
            _ => None,
        };
        channel.ok_or_else(|| format!("{text:?} is not a caption channel (CC1–CC4 or SERVICE1–SERVICE63)"))
    }
}

/// What one segment's video carried in `cc_data`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SegmentCaptions {
    /// Channels with caption data in the segment (a control code of the channel, or a
    /// service block of the service), in order.
    pub channels: Vec<CaptionChannel>,
    /// Carriers with valid data in the segment, null padding included: an encoder keeps
    /// sending padding on a captioned stream between captions.
    pub carriers: Vec<CaptionCarrier>,
}

/// How long a caption channel stays on a rendition after the last segment that carried
/// it (or kept its carrier running), in input target durations: a segment or two
/// without captions does not take them out of the manifests.
pub const CAPTION_HOLD_SEGMENTS: i64 = 5;

/// The rendition's caption channels after a segment received `at`: the ones the segment
/// carried, and the earlier ones whose carrier it kept running, stamped `at`; the others
/// kept while within `hold_ms` of `at`.
pub fn fold_captions(
    previous: &BTreeMap<CaptionChannel, UnixMillis>,
    segment: &SegmentCaptions,
    at: UnixMillis,
    hold_ms: i64,
) -> BTreeMap<CaptionChannel, UnixMillis> {
    let mut channels: BTreeMap<CaptionChannel, UnixMillis> = previous
        .iter()
        .map(|(&channel, &seen)| {
            let running = segment.carriers.contains(&channel.carrier());
            (channel, if running { UnixMillis(seen.0.max(at.0)) } else { seen })
        })
        .filter(|(_, seen)| at.0 - seen.0 <= hold_ms)
        .collect();
    for &channel in &segment.channels {
        let seen = channels.entry(channel).or_insert(at);
        seen.0 = seen.0.max(at.0);
    }
    channels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_written_as_instream_ids() {
        for text in ["CC1", "CC4", "SERVICE1", "SERVICE63"] {
            let channel = CaptionChannel::try_from(text.to_owned()).unwrap();
            assert_eq!(channel.to_string(), text);
        }
        for bad in ["CC0", "CC5", "SERVICE0", "SERVICE64", "cc1", "T1", ""] {
            assert!(CaptionChannel::try_from(bad.to_owned()).is_err(), "{bad}");
        }
        let json = serde_json::json!({"CC1": 5, "SERVICE2": 7});
        let read: BTreeMap<CaptionChannel, UnixMillis> = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(read[&CaptionChannel::Cea708(2)], UnixMillis(7));
        assert_eq!(serde_json::to_value(&read).unwrap(), json);
    }

    #[test]
    fn a_channel_stays_while_seen_or_its_carrier_runs_within_the_hold() {
        let cc1 = CaptionChannel::Cea608(1);
        let cc3 = CaptionChannel::Cea608(3);
        let seen =
            |channels: Vec<CaptionChannel>, carriers: Vec<CaptionCarrier>| SegmentCaptions { channels, carriers };
        let hold = 10_000;
        let first = fold_captions(&BTreeMap::new(), &seen(vec![cc1, cc3], vec![]), UnixMillis(1_000), hold);
        assert_eq!(first.keys().copied().collect::<Vec<_>>(), [cc1, cc3]);
        // Field 1 padding keeps CC1 fresh; CC3, with nothing on field 2, ages.
        let padding = fold_captions(
            &first,
            &seen(vec![], vec![CaptionCarrier::Field1]),
            UnixMillis(9_000),
            hold,
        );
        assert_eq!(padding[&cc1], UnixMillis(9_000));
        assert_eq!(padding[&cc3], UnixMillis(1_000));
        // Past the hold without anything: CC3 goes, CC1 (refreshed at 9 s) stays.
        let later = fold_captions(&padding, &SegmentCaptions::default(), UnixMillis(12_000), hold);
        assert_eq!(later.keys().copied().collect::<Vec<_>>(), [cc1]);
        let gone = fold_captions(&later, &SegmentCaptions::default(), UnixMillis(19_001), hold);
        assert!(gone.is_empty());
    }
}
