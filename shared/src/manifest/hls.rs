//! HLS (RFC 8216) multivariant and media playlists, written with `m3u8-rs` over the
//! output timeline of [`crate::live::timeline`]; caption groups in `captions`.

mod captions;
mod iframes;

pub use iframes::{iframe_playlist, iframe_playlist_fmp4};

use crate::live::timeline::OutputSegment;
use crate::model::{HlsPackage, PlaylistType, Rendition, VideoRange};
use m3u8_rs::{MasterPlaylist, MediaPlaylist, MediaPlaylistType, MediaSegment, Resolution, VariantStream};

/// What a media playlist says besides its segments.
pub struct PlaylistSettings {
    pub program_date_time_interval_seconds: u32,
    pub playlist_type: PlaylistType,
    /// `EXT-X-VERSION`: 3 for TS, 6 for fMP4 with `EXT-X-MAP`.
    pub version: usize,
    /// `EXT-X-MAP` URI of the init segment (fMP4 only); repeated after discontinuities.
    pub map_uri: Option<String>,
    /// The encoder ended the stream: `#EXT-X-ENDLIST`.
    pub end_list: bool,
    /// Encrypted: the key of each segment (in order), and whether `EXT-X-KEY` is
    /// repeated before every segment rather than written where the key changes.
    pub keys: Option<SegmentKeys>,
}

/// The `EXT-X-KEY` tags of each segment of an encrypted media playlist (one per DRM
/// system that signals in the playlist).
pub struct SegmentKeys {
    pub keys: Vec<Vec<m3u8_rs::Key>>,
    pub repeat: bool,
    /// The `EXT-X-MAP` URI of each segment, where the key chooses the init segment
    /// (CMAF key rotation); written where it changes. `None`: the playlist's `map_uri`.
    pub maps: Option<Vec<String>>,
}

/// The attributes of an `EXT-X-KEY` or `EXT-X-SESSION-KEY` tag.
fn key_attributes(key: &m3u8_rs::Key) -> String {
    let mut out = Vec::new();
    let _ = key.write_attributes_to(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

impl From<&HlsPackage> for PlaylistSettings {
    fn from(p: &HlsPackage) -> PlaylistSettings {
        PlaylistSettings {
            program_date_time_interval_seconds: p.program_date_time_interval_seconds,
            playlist_type: p.playlist_type,
            version: 3,
            map_uri: None,
            end_list: false,
            keys: None,
        }
    }
}

/// Writes a live media playlist. `uri` names a segment from its start time.
pub fn media_playlist(
    segments: &[OutputSegment],
    package: &PlaylistSettings,
    target_duration: u64,
    uri: impl Fn(&OutputSegment) -> String,
) -> String {
    let interval = i64::from(package.program_date_time_interval_seconds) * 1000;
    let mut last_pdt: Option<i64> = None;
    let maps = package.keys.as_ref().and_then(|k| k.maps.as_ref());
    let map_of = |i: usize| maps.and_then(|m| m.get(i)).or(package.map_uri.as_ref());
    let playlist = MediaPlaylist {
        version: Some(package.version),
        target_duration,
        media_sequence: segments.first().map_or(0, |s| s.sequence),
        // RFC 8216 4.3.3.3: the number of discontinuity tags before the first segment.
        discontinuity_sequence: segments
            .first()
            .map_or(0, |s| s.discontinuity_sequence - u64::from(s.discontinuity)),
        independent_segments: segments.iter().all(|s| s.starts_with_keyframe),
        end_list: package.end_list,
        playlist_type: match package.playlist_type {
            PlaylistType::None => None,
            PlaylistType::Event => Some(MediaPlaylistType::Event),
            PlaylistType::Vod => Some(MediaPlaylistType::Vod),
        },
        segments: segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let pdt = s.program_date_time.0;
                let write_pdt = interval > 0 && last_pdt.is_none_or(|last| pdt - last >= interval);
                if write_pdt {
                    last_pdt = Some(pdt);
                }
                let keys = package.keys.as_ref().and_then(|k| {
                    let key = k.keys.get(i)?;
                    let changed = i == 0 || k.repeat || k.keys.get(i - 1) != Some(key);
                    changed.then(|| key.clone())
                });
                let mut keys = keys.unwrap_or_default().into_iter();
                MediaSegment {
                    uri: uri(s),
                    key: keys.next(),
                    // m3u8-rs writes one EXT-X-KEY per segment; a second DRM system's follows.
                    unknown_tags: keys
                        .map(|k| m3u8_rs::ExtTag {
                            tag: "X-KEY".into(),
                            rest: Some(key_attributes(&k)),
                        })
                        .collect(),
                    discontinuity: s.discontinuity,
                    duration: s.duration.as_secs_f64() as f32,
                    program_date_time: write_pdt.then(|| s.program_date_time.to_datetime().fixed_offset()),
                    map: map_of(i)
                        .filter(|uri| i == 0 || s.discontinuity || map_of(i - 1) != Some(uri))
                        .map(|uri| m3u8_rs::Map {
                            uri: uri.clone(),
                            ..Default::default()
                        }),
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    };
    write(|w| playlist.write_to(w))
}

/// One variant of the multivariant playlist.
pub struct Variant<'a> {
    pub rendition: &'a Rendition,
    pub uri: String,
    /// Codecs of this variant (default: the rendition's).
    pub codecs: Option<Vec<String>>,
    /// `BANDWIDTH` of this variant (default: the rendition's), e.g. its video plus the
    /// audio rendition it plays with.
    pub bandwidth: Option<u64>,
    /// `AUDIO` group id, for CMAF where audio is its own rendition.
    pub audio_group: Option<String>,
}

/// An `EXT-X-MEDIA` audio rendition (CMAF: audio is always a separate rendition group).
pub struct AudioRendition {
    pub group: String,
    pub name: String,
    pub uri: String,
    pub default: bool,
    /// `LANGUAGE` (RFC 5646).
    pub language: Option<String>,
    /// `CHANNELS`: the number of channels, LFE included.
    pub channels: Option<u8>,
}

/// An `EXT-X-MEDIA` subtitle rendition; every variant plays with the group.
pub struct SubtitleRendition {
    pub name: String,
    pub uri: String,
    pub default: bool,
    pub forced: bool,
    /// `LANGUAGE` (RFC 5646).
    pub language: Option<String>,
}

/// `GROUP-ID` of the subtitle renditions.
pub const SUBTITLES_GROUP: &str = "subtitles";

/// Writes the multivariant playlist.
pub fn multivariant_playlist(variants: &[Variant<'_>]) -> String {
    multivariant_full(variants, &[], &[], &[], 3, &[])
}

/// Writes a multivariant playlist with `EXT-X-I-FRAME-STREAM-INF` entries for
/// `iframe_variants` (their `uri` is the I-frame playlist's).
pub fn multivariant_with_iframes(variants: &[Variant<'_>], iframe_variants: &[Variant<'_>]) -> String {
    multivariant_full(variants, &[], &[], iframe_variants, 4, &[])
}

/// Writes a multivariant playlist with audio and subtitle rendition groups and I-frame
/// streams (and the `CLOSED-CAPTIONS` groups of the variants whose video carries captions).
pub fn multivariant_full(
    variants: &[Variant<'_>],
    audio: &[AudioRendition],
    subtitles: &[SubtitleRendition],
    iframe_variants: &[Variant<'_>],
    version: usize,
    session_keys: &[m3u8_rs::Key],
) -> String {
    let captions = captions::CaptionGroups::of(variants);
    let playlist = MasterPlaylist {
        version: Some(captions.version(version)),
        independent_segments: true,
        session_key: session_keys.iter().cloned().map(m3u8_rs::SessionKey).collect(),
        alternatives: audio
            .iter()
            .map(|a| m3u8_rs::AlternativeMedia {
                media_type: m3u8_rs::AlternativeMediaType::Audio,
                uri: Some(a.uri.clone()),
                group_id: a.group.clone(),
                name: a.name.clone(),
                default: a.default,
                autoselect: true,
                language: a.language.clone(),
                channels: a.channels.map(|c| c.to_string()),
                ..Default::default()
            })
            .chain(subtitles.iter().map(|s| m3u8_rs::AlternativeMedia {
                media_type: m3u8_rs::AlternativeMediaType::Subtitles,
                uri: Some(s.uri.clone()),
                group_id: SUBTITLES_GROUP.to_owned(),
                name: s.name.clone(),
                default: s.default,
                autoselect: true,
                forced: s.forced,
                language: s.language.clone(),
                ..Default::default()
            }))
            .chain(captions.media())
            .collect(),
        variants: variants
            .iter()
            .map(|v| {
                let r = v.rendition;
                VariantStream {
                    uri: v.uri.clone(),
                    bandwidth: v.bandwidth.unwrap_or_else(|| r.bandwidth()),
                    average_bandwidth: Some(r.average_bandwidth.min(v.bandwidth.unwrap_or(u64::MAX))),
                    codecs: Some(v.codecs.as_ref().unwrap_or(&r.codecs))
                        .filter(|c| !c.is_empty())
                        .map(|c| c.join(",")),
                    audio: v.audio_group.clone(),
                    subtitles: (!subtitles.is_empty()).then(|| SUBTITLES_GROUP.to_owned()),
                    closed_captions: captions.group_of(r),
                    resolution: r.resolution.map(|(w, h)| Resolution {
                        width: u64::from(w),
                        height: u64::from(h),
                    }),
                    frame_rate: r.frame_rate,
                    other_attributes: r.video_range.map(video_range),
                    ..Default::default()
                }
            })
            .chain(iframe_variants.iter().map(|v| {
                let r = v.rendition;
                VariantStream {
                    is_i_frame: true,
                    uri: v.uri.clone(),
                    bandwidth: r.iframe_bandwidth().max(1),
                    codecs: r
                        .codecs
                        .iter()
                        .find(|c| ["avc1", "avc3", "hvc1", "hev1"].iter().any(|p| c.starts_with(p)))
                        .cloned(),
                    resolution: r.resolution.map(|(w, h)| Resolution {
                        width: u64::from(w),
                        height: u64::from(h),
                    }),
                    ..Default::default()
                }
            }))
            .collect(),
        ..Default::default()
    };
    write(|w| playlist.write_to(w))
}

/// `VIDEO-RANGE` (RFC 8216bis §4.4.6.2) of an HDR variant; SDR, the default, is not written.
fn video_range(range: VideoRange) -> std::collections::HashMap<String, m3u8_rs::QuotedOrUnquoted> {
    let value = match range {
        VideoRange::Pq => "PQ",
        VideoRange::Hlg => "HLG",
    };
    [(
        "VIDEO-RANGE".to_owned(),
        m3u8_rs::QuotedOrUnquoted::Unquoted(value.to_owned()),
    )]
    .into()
}

fn write(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut buf = Vec::with_capacity(4096);
    // Writing to a Vec cannot fail; m3u8-rs only writes ASCII and UTF-8 URIs.
    let _ = f(&mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::timeline::group_segments;
    use crate::model::SegmentRecord;

    #[test]
    fn discontinuities_are_tagged_and_counted() {
        let mut recs = SegmentRecord::examples("360p", 6);
        for (i, r) in recs.iter_mut().enumerate() {
            r.discontinuity = i == 2 || i == 4;
            r.discontinuity_sequence = [0, 0, 1, 1, 2, 2][i];
        }
        let out = group_segments(&recs, 1);
        let package = PlaylistSettings::from(&HlsPackage::default());
        let all = media_playlist(&out, &package, 2, |s| format!("{}.ts", s.sequence));
        assert_eq!(all.matches("#EXT-X-DISCONTINUITY\n").count(), 2);
        assert!(
            !all.contains("DISCONTINUITY-SEQUENCE"),
            "no discontinuity before the first segment"
        );
        // Once the first discontinuity slid out, the playlist counts it.
        let tail = media_playlist(&out[3..], &package, 2, |s| format!("{}.ts", s.sequence));
        assert!(tail.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{tail}");
        // A window starting at a discontinuity counts those before it, not itself.
        let at = media_playlist(&out[4..], &package, 2, |s| format!("{}.ts", s.sequence));
        assert!(at.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{at}");
    }
}

#[cfg(test)]
mod video_range_tests {
    use super::*;

    #[test]
    fn hdr_variants_say_their_video_range() {
        let doc = |range: &str| -> Rendition {
            serde_json::from_value(serde_json::json!({
                "id": "r", "codecs": ["hvc1.2.4.L120.B0"], "peakBandwidth": 1, "averageBandwidth": 1,
                "maxSegmentDuration": 180_000, "updatedAt": 0, "videoRange": range,
            }))
            .unwrap()
        };
        let (pq, hlg) = (doc("PQ"), doc("HLG"));
        let variant = |r| Variant {
            rendition: r,
            uri: "v.m3u8".into(),
            codecs: None,
            bandwidth: None,
            audio_group: None,
        };
        let out = multivariant_playlist(&[variant(&pq), variant(&hlg)]);
        // RFC 8216bis §4.4.6.2: VIDEO-RANGE is an enumerated string, SDR, HLG or PQ.
        assert!(
            out.contains(",VIDEO-RANGE=PQ\n") && out.contains(",VIDEO-RANGE=HLG\n"),
            "{out}"
        );
    }
}
