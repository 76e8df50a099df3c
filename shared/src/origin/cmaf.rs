//! CMAF HLS (`cmafPackage`): multivariant and media playlists from the index; the
//! segments are served by [`super::segments`].
//!
//! File names (under `/out/v1/{endpoint}/`):
//! - CMAF: `{hlsManifestId}/{manifestName}.m3u8` (multivariant),
//!   `{hlsManifestId}/{manifestName}_{track}.m3u8` (media),
//!   `{hlsManifestId}/{manifestName}_{track}_iframes.m3u8` (I-frames, video tracks, with
//!   `includeIframeOnlyStream`), segments at the endpoint root
//!   `{segmentPrefix}_{track}_init.mp4` and `{segmentPrefix}_{track}_{startTicks}.mp4`
//!   (with key rotation `…_init.k{keyPeriod}.mp4`, `…_{startTicks}.k{keyPeriod}.mp4`), and
//!   each keyframe alone as `{segmentPrefix}_{track}_{startTicks}_iframe{timeTicks}.mp4`
//! - DASH: `{manifestName}.mpd`, `{manifestName}_{track}_init.mp4`,
//!   `{manifestName}_{track}_{n}.mp4` with `n` the segment number or its start time
//!
//! where `{track}` is `video_{rendition}` or `audio_{rendition}`; a subtitle rendition has
//! `{hlsManifestId}/{manifestName}_subtitles_{rendition}.m3u8` and WebVTT segments
//! `{segmentPrefix}_subtitles_{rendition}_{startTicks}.vtt` (see [`super::subtitles`]).

use super::arrival::*;
use super::cenc;
use super::ladder::*;
use super::reply::*;
use super::segments::{serve_iframe, serve_segment, Numbering};
use super::select::*;
use super::subtitles;
use super::window::*;
use crate::app::PlaybackServices;
use crate::catalog::{Catalog, StreamDocs};
use crate::keys::ContentKey;
use crate::live::timeline;
use crate::live::timeline::{OutputIFrame, OutputSegment};
use crate::manifest::hls::{self, PlaylistSettings, Variant};
use crate::model::{CmafHlsManifest, CmafPackage, OriginEndpoint, Rendition};
use crate::time::{Ticks, UnixMillis};

/// `{prefix}_subtitles_{rendition}_{start}.vtt` as (rendition, start).
fn parse_subtitles_file<'a>(prefix: &str, file: &'a str) -> Option<(&'a str, Ticks)> {
    let rest = file
        .strip_suffix(".vtt")?
        .strip_prefix(prefix)?
        .strip_prefix("_subtitles_")?;
    let (rendition, start) = rest.rsplit_once('_')?;
    Some((rendition, Ticks(start.parse().ok()?))).filter(|(r, _)| !r.is_empty())
}

/// Serves a CMAF endpoint file: `dir` is the HLS manifest id for playlists, `None` for
/// segments at the endpoint root.
pub async fn serve_cmaf(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    package: &CmafPackage,
    dir: Option<&str>,
    file: &str,
) -> Result<Reply, PlaybackError> {
    let docs = Catalog(app.stores.index.as_ref())
        .stream_docs(&endpoint.channel_id)
        .await?;
    let prefix = package
        .segment_prefix
        .clone()
        .unwrap_or_else(|| endpoint.channel_id.clone());
    let Some(dir) = dir else {
        if let Some((rendition, start)) = parse_subtitles_file(&prefix, file) {
            if !subtitles::is_subtitles(&docs, rendition) {
                return Err(not_a_file(endpoint, file));
            }
            let video = subtitles::reference_video(&docs, &endpoint.channel_id)?;
            let clock = subtitles::SegmentClock::Output;
            let seconds = package.segment_duration_seconds;
            return subtitles::segment(app, &endpoint.channel_id, rendition, video, seconds, start, clock).await;
        }
        if let Some(iframe) = parse_iframe_file(&prefix, file) {
            if !package.hls_manifests.iter().any(|m| m.include_iframe_only_stream) {
                return Err(no_iframes(endpoint));
            }
            return serve_iframe(app, endpoint, &docs, package.segment_duration_seconds, iframe).await;
        }
        // With key rotation a name ends in the key period of its key: `….k{period}.mp4`.
        let (file, key_period) = cenc::split_key_period(file);
        let request = parse_segment_file(&prefix, &file).ok_or_else(|| not_a_file(endpoint, &file))?;
        return serve_segment(
            app,
            endpoint,
            &docs,
            package.segment_duration_seconds,
            request,
            Numbering::Time,
            0,
            key_period,
        )
        .await;
    };
    let manifest = package
        .hls_manifests
        .iter()
        .find(|m| m.id == dir)
        .ok_or_else(|| not_a_file(endpoint, &format!("{dir}/{file}")))?;
    let stem = file.strip_suffix(".m3u8").ok_or_else(|| not_a_file(endpoint, file))?;
    let encryption = cenc::common_encryption(endpoint);
    if stem == manifest.manifest_name {
        // One key for the whole stream: its tags as EXT-X-SESSION-KEY, so that a player
        // can ask for its licence early. Rotating keys are only in media playlists.
        let session_keys = match &encryption {
            Some(e) if e.rotation == 0 => {
                let key = cenc::segment_key(app, endpoint, e, None, 0).await?;
                cenc::cmaf_key_tags(e.scheme, &key)
            }
            _ => Vec::new(),
        };
        return cmaf_multivariant(endpoint, package, manifest, &docs, &session_keys);
    }
    let track_name = stem
        .strip_prefix(manifest.manifest_name.as_str())
        .and_then(|s| s.strip_prefix('_'))
        .ok_or_else(|| not_a_file(endpoint, file))?;
    if let Some(id) = track_name.strip_prefix("subtitles_") {
        if !subtitles::is_subtitles(&docs, id) {
            return Err(not_a_file(endpoint, file));
        }
        let video = subtitles::reference_video(&docs, &endpoint.channel_id)?;
        let settings = PlaylistSettings {
            program_date_time_interval_seconds: manifest.program_date_time_interval_seconds,
            playlist_type: manifest.playlist_type,
            version: 6,
            map_uri: None,
            end_list: false,
            keys: None,
        };
        let name = |s: &OutputSegment| format!("../{prefix}_subtitles_{id}_{}.vtt", s.start.0);
        return subtitles::media_playlist(
            app,
            &endpoint.channel_id,
            video,
            package.segment_duration_seconds,
            manifest.playlist_window_seconds,
            settings,
            name,
        )
        .await;
    }
    let (track_name, iframes) = match track_name.strip_suffix("_iframes") {
        Some(video) if video.starts_with("video_") => (video, true),
        _ => (track_name, false),
    };
    let track = TrackRef::parse(track_name).ok_or_else(|| not_a_file(endpoint, file))?;
    if iframes && !manifest.include_iframe_only_stream {
        return Err(no_iframes(endpoint));
    }
    let rendition = rendition_of(&docs, endpoint, &track.rendition)?;
    let k = timeline::group_size(package.segment_duration_seconds, rendition.target());
    let end_list = live_or_ended(app, rendition, k)?;
    let window = live_window(
        app,
        &endpoint.channel_id,
        rendition,
        k,
        manifest.playlist_window_seconds,
    )
    .await?;
    let target = timeline::target_duration(&window, rendition, k);
    let max_age = playlist_max_age(rendition.target(), k);
    let init = format!("../{prefix}_{}_init.mp4", track.name());
    if iframes {
        let name = |s: &OutputSegment, f: &OutputIFrame| {
            format!("../{prefix}_{}_{}_iframe{}.mp4", track.name(), s.start.0, f.time.0)
        };
        let body = hls::iframe_playlist_fmp4(&window, target, &init, name);
        let last = window.iter().rev().find_map(OutputSegment::last_iframe_sequence);
        return Ok(with_last_updated(
            playlist_response(body, max_age, last),
            Some(rendition.updated_at),
        ));
    }
    let mut settings = PlaylistSettings {
        program_date_time_interval_seconds: manifest.program_date_time_interval_seconds,
        playlist_type: manifest.playlist_type,
        version: 6,
        map_uri: Some(init),
        end_list,
        keys: None,
    };
    // Encrypted: the key of each segment; with rotation its key period in the names of
    // the segment and of its init segment (whose `tenc` holds the KID).
    let mut periods = std::collections::HashMap::new();
    if let Some(e) = &encryption {
        let keys = cenc::window_segment_keys(app, endpoint, e, &window).await?;
        let rotating = e.rotation > 0;
        if rotating {
            periods = window.iter().zip(&keys).map(|(s, k)| (s.sequence, k.period)).collect();
        }
        settings.keys = Some(hls::SegmentKeys {
            keys: keys.iter().map(|k| cenc::cmaf_key_tags(e.scheme, k)).collect(),
            repeat: false,
            maps: rotating.then(|| {
                let init = |k: &ContentKey| format!("../{prefix}_{}_init.k{}.mp4", track.name(), k.period);
                keys.iter().map(init).collect()
            }),
        });
    }
    let name = |s: &OutputSegment| {
        let period = periods.get(&s.sequence).map_or(String::new(), |p| format!(".k{p}"));
        format!("../{prefix}_{}_{}{period}.mp4", track.name(), s.start.0)
    };
    let body = hls::media_playlist(&window, &settings, target, name);
    Ok(with_last_updated(
        playlist_response(body, max_age, window.last().map(|s| s.sequence)),
        Some(rendition.updated_at),
    ))
}

pub(crate) fn cmaf_multivariant(
    endpoint: &OriginEndpoint,
    package: &CmafPackage,
    manifest: &CmafHlsManifest,
    docs: &StreamDocs,
    session_keys: &[m3u8_rs::Key],
) -> Result<Reply, PlaybackError> {
    let renditions = ordered_selection(docs, &endpoint.channel_id, package.stream_selection.as_ref())?;
    ladder_ready(docs, &endpoint.channel_id, UnixMillis::now())?;
    let tracks = audio_tracks(docs, &renditions);
    let media = |track: TrackRef| format!("{}_{}.m3u8", manifest.manifest_name, track.name());
    let audio_uri = |t: &AudioTrack| {
        media(TrackRef {
            audio: true,
            rendition: t.rendition.id.clone(),
        })
    };
    let video_uri = |r: &Rendition| {
        media(TrackRef {
            audio: false,
            rendition: r.id.clone(),
        })
    };
    let names = HlsNames {
        audio_uri: &audio_uri,
        audio_bandwidth: &|t: &AudioTrack| t.rendition.audio_bandwidth().unwrap_or(0),
        video_uri: &video_uri,
        video_codecs: &|r: &Rendition| video_codec(r).into_iter().cloned().collect(),
        video_bandwidth: &|r: &Rendition| r.video_bandwidth(),
    };
    let video = video_renditions(&renditions);
    let (mut variants, mut groups) = hls_entries(&video, &tracks, &names);
    if variants.is_empty() {
        // No video (an audio-only channel): the audio renditions are the variants, as a
        // player needs at least one EXT-X-STREAM-INF.
        groups.clear();
        variants = tracks
            .iter()
            .map(|t| Variant {
                rendition: t.rendition,
                uri: audio_uri(t),
                codecs: Some(vec![t.codec.clone()]),
                bandwidth: t.rendition.audio_bandwidth(),
                audio_group: None,
            })
            .collect();
    }
    let iframe_variants = iframe_variants(&video, manifest.include_iframe_only_stream, |r| {
        format!("{}_video_{}_iframes.m3u8", manifest.manifest_name, r.id)
    });
    let max_input = renditions.iter().map(|r| r.target()).max().unwrap_or_default();
    let k = timeline::group_size(package.segment_duration_seconds, max_input);
    let subtitles = subtitles::subtitle_media(docs, |id| format!("{}_subtitles_{id}.m3u8", manifest.manifest_name));
    let body = hls::multivariant_full(&variants, &groups, &subtitles, &iframe_variants, 6, session_keys);
    Ok(playlist_response(body, playlist_max_age(max_input, k), None))
}

fn no_iframes(endpoint: &OriginEndpoint) -> PlaybackError {
    PlaybackError::not_found(format!(
        "endpoint {:?} has no I-frame playlists; set includeIframeOnlyStream on its HLS manifest",
        endpoint.id
    ))
}
