//! `CLOSED-CAPTIONS` rendition groups (RFC 8216 §4.3.4.1–4.3.4.2) of a multivariant
//! playlist: an `EXT-X-MEDIA` per caption channel the variants' video carries, its
//! `INSTREAM-ID` naming the channel, and the group each variant plays with. CEA-608 data
//! says no language, so no `LANGUAGE` is written.

use super::Variant;
use crate::model::{CaptionChannel, Rendition};
use m3u8_rs::{AlternativeMedia, AlternativeMediaType, ClosedCaptionGroupId, InstreamId};

/// The caption groups: one per distinct set of channels among the variants, in variant
/// order (`cc`, then `cc-2`, …; one group, `cc`, when every captioned variant carries the
/// same channels, as in a normal ladder).
pub(super) struct CaptionGroups(Vec<Vec<CaptionChannel>>);

impl CaptionGroups {
    pub(super) fn of(variants: &[Variant<'_>]) -> CaptionGroups {
        let mut sets: Vec<Vec<CaptionChannel>> = Vec::new();
        for v in variants {
            let channels = v.rendition.caption_channels();
            if !channels.is_empty() && !sets.contains(&channels) {
                sets.push(channels);
            }
        }
        CaptionGroups(sets)
    }

    /// `CLOSED-CAPTIONS` of a variant of `rendition`: its group, None without captions.
    pub(super) fn group_of(&self, rendition: &Rendition) -> Option<ClosedCaptionGroupId> {
        let channels = rendition.caption_channels();
        let index = self.0.iter().position(|set| *set == channels)?;
        Some(ClosedCaptionGroupId::GroupId(group_id(index)))
    }

    /// The `EXT-X-MEDIA` entries: the first channel of each group the default, all
    /// auto-selectable (RFC 8216 §4.3.4.1.1: at most one default per group).
    pub(super) fn media(&self) -> impl Iterator<Item = AlternativeMedia> + '_ {
        self.0.iter().enumerate().flat_map(|(index, set)| {
            set.iter().enumerate().map(move |(i, &channel)| AlternativeMedia {
                media_type: AlternativeMediaType::ClosedCaptions,
                group_id: group_id(index),
                name: channel.to_string(),
                default: i == 0,
                autoselect: true,
                instream_id: Some(match channel {
                    CaptionChannel::Cea608(n) => InstreamId::CC(n),
                    CaptionChannel::Cea708(n) => InstreamId::Service(n),
                }),
                ..Default::default()
            })
        })
    }

    /// `EXT-X-VERSION` with these groups: at least 7 once a `SERVICE` `INSTREAM-ID` is
    /// written (RFC 8216 §7); CEA-608 channels need no particular version.
    pub(super) fn version(&self, version: usize) -> usize {
        let services = self.0.iter().flatten().any(|c| matches!(c, CaptionChannel::Cea708(_)));
        if services {
            version.max(7)
        } else {
            version
        }
    }
}

fn group_id(index: usize) -> String {
    match index {
        0 => "cc".to_owned(),
        n => format!("cc-{}", n + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use crate::time::UnixMillis;

    fn rendition(id: &str, captions: &[&str]) -> Rendition {
        let mut r: Rendition = serde_json::from_value(serde_json::json!({
            "id": id, "codecs": ["avc1.64001e", "mp4a.40.2"], "peakBandwidth": 1, "averageBandwidth": 1,
            "maxSegmentDuration": 180_000, "updatedAt": 0,
        }))
        .unwrap();
        r.captions = captions
            .iter()
            .map(|c| (c.to_string().try_into().unwrap(), UnixMillis(0)))
            .collect();
        r
    }

    fn variant(r: &Rendition) -> Variant<'_> {
        Variant {
            rendition: r,
            uri: format!("{}.m3u8", r.id),
            codecs: None,
            bandwidth: None,
            audio_group: None,
        }
    }

    #[test]
    fn captioned_variants_name_one_group_with_an_entry_per_channel() {
        let (high, low, plain) = (
            rendition("high", &["CC1", "CC3"]),
            rendition("low", &["CC1", "CC3"]),
            rendition("plain", &[]),
        );
        let out = multivariant_playlist(&[variant(&high), variant(&low), variant(&plain)]);
        // RFC 8216 §4.3.4.1: TYPE CLOSED-CAPTIONS, no URI, INSTREAM-ID; one DEFAULT per group.
        assert!(
            out.contains(
                "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC1\",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID=\"CC1\"\n"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC3\",AUTOSELECT=YES,INSTREAM-ID=\"CC3\"\n"
            ),
            "{out}"
        );
        assert_eq!(out.matches(",CLOSED-CAPTIONS=\"cc\"").count(), 2, "{out}");
        let plain_line = out
            .lines()
            .find(|l| l.contains("BANDWIDTH") && !l.contains("CLOSED-CAPTIONS"));
        assert!(plain_line.is_some(), "the uncaptioned variant names no group: {out}");
        assert!(out.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n"), "{out}");
        // What a real parser reads back.
        let parsed = m3u8_rs::parse_master_playlist_res(out.as_bytes()).unwrap();
        assert_eq!(parsed.alternatives.len(), 2);
        assert_eq!(parsed.variants[2].closed_captions, None);
    }

    #[test]
    fn different_channel_sets_get_their_own_groups_and_services_need_version_7() {
        let (a, b) = (rendition("a", &["CC1"]), rendition("b", &["CC1", "SERVICE1"]));
        let out = multivariant_playlist(&[variant(&a), variant(&b)]);
        assert!(
            out.contains(",CLOSED-CAPTIONS=\"cc\"") && out.contains(",CLOSED-CAPTIONS=\"cc-2\""),
            "{out}"
        );
        assert!(
            out.contains("GROUP-ID=\"cc-2\",NAME=\"SERVICE1\",AUTOSELECT=YES,INSTREAM-ID=\"SERVICE1\""),
            "{out}"
        );
        assert!(out.contains("#EXT-X-VERSION:7\n"), "{out}");
    }
}
