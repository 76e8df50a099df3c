//! I-frame-only playlists (RFC 8216 §4.3.3.6) of TS and CMAF renditions.

use super::write;
use crate::live::timeline::{OutputIFrame, OutputSegment};
use crate::time::Ticks;
use m3u8_rs::{MediaPlaylist, MediaSegment};

/// How long each keyframe of `segments` lasts in an I-frame playlist: until the next
/// keyframe, the next segment's first one, or (before a discontinuity or at the end) the
/// end of its segment.
fn iframe_durations(segments: &[OutputSegment]) -> Vec<Vec<f64>> {
    segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let end = segments
                .get(i + 1)
                .filter(|n| !n.discontinuity)
                .map_or(s.start.0 + s.duration.0, |n| {
                    n.iframes.first().map_or(n.start.0, |f| f.time.0)
                });
            s.iframes
                .iter()
                .enumerate()
                .map(|(j, f)| {
                    let until = s.iframes.get(j + 1).map_or(end, |n| n.time.0);
                    Ticks(until.saturating_sub(f.time.0)).as_secs_f64()
                })
                .collect()
        })
        .collect()
}

/// An I-frame playlist of `entries` (RFC 8216 §4.3.3.6), one per keyframe of `segments`.
/// The media sequence is the keyframes published before the first segment, so every entry
/// keeps its number across reloads; the target duration is the media playlist's `target`
/// unless a keyframe lasts longer (a segment without keyframes).
fn write_iframe_playlist(
    segments: &[OutputSegment],
    target: u64,
    version: usize,
    entries: Vec<MediaSegment>,
) -> String {
    let longest = entries.iter().map(|e| e.duration).fold(0f32, f32::max);
    let playlist = MediaPlaylist {
        version: Some(version),
        target_duration: (longest.round() as u64).max(target).max(1),
        // One number per entry, so a reload keeps every entry's number (RFC 8216 §6.2.2).
        media_sequence: segments.first().map_or(0, |s| s.keyframes_before),
        discontinuity_sequence: segments
            .first()
            .map_or(0, |s| s.discontinuity_sequence - u64::from(s.discontinuity)),
        i_frames_only: true,
        segments: entries,
        ..Default::default()
    };
    write(|w| playlist.write_to(w))
}

/// Writes the I-frame-only playlist of a TS rendition: one entry per keyframe, as a byte
/// range of its output segment. `uri` names a segment.
pub fn iframe_playlist(segments: &[OutputSegment], target: u64, uri: impl Fn(&OutputSegment) -> String) -> String {
    let needs_map = segments.iter().flat_map(|s| &s.iframes).any(|f| !f.self_contained);
    let mut current_map: Option<(Ticks, (u64, u64))> = None;
    let mut entries: Vec<MediaSegment> = Vec::new();
    for (s, durations) in segments.iter().zip(iframe_durations(segments)) {
        for (j, (f, duration)) in s.iframes.iter().zip(durations).enumerate() {
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
    // EXT-X-MAP in an I-frame playlist needs version 5 (RFC 8216 §7).
    write_iframe_playlist(segments, target, if needs_map { 5 } else { 4 }, entries)
}

/// Writes the I-frame-only playlist of a CMAF rendition: one entry per keyframe, each its
/// own fragment named by `uri` (no byte ranges), after the init segment's `EXT-X-MAP`.
pub fn iframe_playlist_fmp4(
    segments: &[OutputSegment],
    target: u64,
    map_uri: &str,
    uri: impl Fn(&OutputSegment, &OutputIFrame) -> String,
) -> String {
    let mut entries: Vec<MediaSegment> = Vec::new();
    for (s, durations) in segments.iter().zip(iframe_durations(segments)) {
        for (j, (f, duration)) in s.iframes.iter().zip(durations).enumerate() {
            let first = entries.is_empty();
            entries.push(MediaSegment {
                uri: uri(s, f),
                duration: duration as f32,
                discontinuity: s.discontinuity && j == 0,
                map: (first || (s.discontinuity && j == 0)).then(|| m3u8_rs::Map {
                    uri: map_uri.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
    }
    write_iframe_playlist(segments, target, 6, entries)
}
