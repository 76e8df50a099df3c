//! HLS (RFC 8216) multivariant and media playlists for TS endpoints, written with
//! `m3u8-rs`. Input segments are grouped into output segments of
//! `segmentDurationSeconds` (a whole number of inputs, MediaPackage's rule); output
//! sequence numbers are the input sequence divided by the group size, so they are stable
//! and never go backwards as the window slides.

use crate::model::{HlsPackage, PlaylistType, Rendition, SegmentRecord};
use crate::time::{Ticks, UnixMillis};
use m3u8_rs::{MasterPlaylist, MediaPlaylist, MediaPlaylistType, MediaSegment, Resolution, VariantStream};

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
}

impl From<&HlsPackage> for PlaylistSettings {
    fn from(p: &HlsPackage) -> PlaylistSettings {
        PlaylistSettings {
            program_date_time_interval_seconds: p.program_date_time_interval_seconds,
            playlist_type: p.playlist_type,
            version: 3,
            map_uri: None,
            end_list: false,
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
                MediaSegment {
                    uri: uri(s),
                    discontinuity: s.discontinuity,
                    duration: s.duration.as_secs_f64() as f32,
                    program_date_time: write_pdt.then(|| s.program_date_time.to_datetime().fixed_offset()),
                    map: package
                        .map_uri
                        .as_ref()
                        .filter(|_| i == 0 || s.discontinuity)
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

/// Writes the I-frame-only playlist of a TS rendition (RFC 8216 §4.3.3.6): one entry per
/// keyframe, lasting until the next one, as a byte range of its output segment. The media
/// sequence is the first segment's, exact when segments hold one keyframe each.
/// `target` is the media playlist's target duration: an entry lasts no longer than its
/// segment unless a segment has no keyframe at all.
pub fn iframe_playlist(segments: &[OutputSegment], target: u64, uri: impl Fn(&OutputSegment) -> String) -> String {
    let mut entries: Vec<MediaSegment> = Vec::new();
    let mut longest = 0f64;
    let needs_map = segments.iter().flat_map(|s| &s.iframes).any(|f| !f.self_contained);
    let mut current_map: Option<(Ticks, (u64, u64))> = None;
    for (i, s) in segments.iter().enumerate() {
        let end = segments
            .get(i + 1)
            .filter(|n| !n.discontinuity)
            .map_or(s.start.0 + s.duration.0, |n| {
                n.iframes.first().map_or(n.start.0, |f| f.time.0)
            });
        for (j, f) in s.iframes.iter().enumerate() {
            let until = s.iframes.get(j + 1).map_or(end, |n| n.time.0);
            let duration = Ticks(until.saturating_sub(f.time.0)).as_secs_f64();
            longest = longest.max(duration);
            // RFC 8216 §3.2: each range needs a PAT and PMT first, from its own bytes or
            // from EXT-X-MAP (which applies until the next one, so it is written whenever
            // it changes once any keyframe needs it).
            let map_tag = f
                .psi
                .filter(|_| needs_map)
                .filter(|psi| current_map != Some((s.start, *psi)))
                .map(|(offset, length)| {
                    current_map = Some((s.start, (offset, length)));
                    m3u8_rs::Map {
                        uri: uri(s),
                        byte_range: Some(m3u8_rs::ByteRange {
                            length,
                            offset: Some(offset),
                        }),
                        ..Default::default()
                    }
                });
            entries.push(MediaSegment {
                uri: uri(s),
                duration: duration as f32,
                discontinuity: s.discontinuity && j == 0,
                byte_range: Some(m3u8_rs::ByteRange {
                    length: f.size,
                    offset: Some(f.offset),
                }),
                map: map_tag,
                ..Default::default()
            });
        }
    }
    let playlist = MediaPlaylist {
        // EXT-X-MAP in an I-frame playlist needs version 5 (RFC 8216 §7).
        version: Some(if needs_map { 5 } else { 4 }),
        target_duration: (longest.round() as u64).max(target).max(1),
        media_sequence: segments.first().map_or(0, |s| s.sequence),
        discontinuity_sequence: segments
            .first()
            .map_or(0, |s| s.discontinuity_sequence - u64::from(s.discontinuity)),
        i_frames_only: true,
        segments: entries,
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
    /// `AUDIO` group id, for CMAF where audio is its own rendition.
    pub audio_group: Option<String>,
}

/// An `EXT-X-MEDIA` audio rendition (CMAF: audio is always a separate rendition group).
pub struct AudioRendition {
    pub group: String,
    pub name: String,
    pub uri: String,
    pub default: bool,
}

/// Writes the multivariant playlist.
pub fn multivariant_playlist(variants: &[Variant<'_>]) -> String {
    multivariant_with_audio(variants, &[], 3)
}

/// Writes a multivariant playlist with audio rendition groups, at `EXT-X-VERSION` `version`.
pub fn multivariant_with_audio(variants: &[Variant<'_>], audio: &[AudioRendition], version: usize) -> String {
    multivariant_full(variants, audio, &[], version)
}

/// Writes a multivariant playlist with `EXT-X-I-FRAME-STREAM-INF` entries for
/// `iframe_variants` (their `uri` is the I-frame playlist's).
pub fn multivariant_with_iframes(variants: &[Variant<'_>], iframe_variants: &[Variant<'_>]) -> String {
    multivariant_full(variants, &[], iframe_variants, 4)
}

fn multivariant_full(
    variants: &[Variant<'_>],
    audio: &[AudioRendition],
    iframe_variants: &[Variant<'_>],
    version: usize,
) -> String {
    let playlist = MasterPlaylist {
        version: Some(version),
        independent_segments: true,
        alternatives: audio
            .iter()
            .map(|a| m3u8_rs::AlternativeMedia {
                media_type: m3u8_rs::AlternativeMediaType::Audio,
                uri: Some(a.uri.clone()),
                group_id: a.group.clone(),
                name: a.name.clone(),
                default: a.default,
                autoselect: true,
                ..Default::default()
            })
            .collect(),
        variants: variants
            .iter()
            .map(|v| {
                let r = v.rendition;
                VariantStream {
                    uri: v.uri.clone(),
                    bandwidth: r.bandwidth(),
                    average_bandwidth: Some(r.average_bandwidth),
                    codecs: Some(v.codecs.as_ref().unwrap_or(&r.codecs))
                        .filter(|c| !c.is_empty())
                        .map(|c| c.join(",")),
                    audio: v.audio_group.clone(),
                    resolution: r.resolution.map(|(w, h)| Resolution {
                        width: u64::from(w),
                        height: u64::from(h),
                    }),
                    frame_rate: r.frame_rate,
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

fn write(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut buf = Vec::with_capacity(4096);
    // Writing to a Vec cannot fail; m3u8-rs only writes ASCII and UTF-8 URIs.
    let _ = f(&mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: u64) -> Vec<SegmentRecord> {
        (0..n)
            .map(|i| SegmentRecord {
                sequence: i,
                ..SegmentRecord::example("360p", i * 180_000)
            })
            .collect()
    }

    #[test]
    fn groups_are_complete_runs_of_k_inputs() {
        let out = group_segments(&records(7), 3);
        assert_eq!(
            out.iter().map(|s| (s.sequence, s.start.0)).collect::<Vec<_>>(),
            [(0, 0), (1, 540_000)]
        );
        assert_eq!(out[0].duration, Ticks(540_000));
        let mut gap = records(6);
        gap.remove(4); // input 4 missing: group 1 is incomplete and left out
        assert_eq!(group_segments(&gap, 3).len(), 1);
        // A window that starts mid-group skips the partial first group.
        assert_eq!(
            group_segments(&records(7)[1..], 3)
                .iter()
                .map(|s| s.sequence)
                .collect::<Vec<_>>(),
            [1]
        );
    }

    #[test]
    fn discontinuities_are_tagged_and_counted() {
        let mut recs = records(6);
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

    #[test]
    fn group_size_rounds_to_a_multiple_of_the_input() {
        assert_eq!(group_size(6, Ticks(180_000)), 3);
        assert_eq!(group_size(5, Ticks(180_000)), 3); // 2.5 rounds to 3
        assert_eq!(group_size(1, Ticks(180_000)), 1);
        assert_eq!(group_size(6, Ticks(183_600)), 3); // 2.04 s inputs
    }

    #[test]
    fn window_keeps_the_newest_segments_covering_it() {
        let out = group_segments(&records(10), 1);
        let w = live_window(&out, Ticks::from_secs(6));
        assert_eq!(w.iter().map(|s| s.sequence).collect::<Vec<_>>(), [7, 8, 9]);
        assert_eq!(live_window(&out, Ticks::from_secs(100)).len(), 10);
    }
}
