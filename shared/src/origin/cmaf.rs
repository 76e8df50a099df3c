//! CMAF HLS (`cmafPackage`): multivariant and media playlists from the index; the
//! segments are served by [`super::segments`].
//!
//! File names (under `/out/v1/{endpoint}/`):
//! - CMAF: `{hlsManifestId}/{manifestName}.m3u8` (multivariant),
//!   `{hlsManifestId}/{manifestName}_{track}.m3u8` (media),
//!   `{hlsManifestId}/{manifestName}_{track}_iframes.m3u8` (I-frames, video tracks, with
//!   `includeIframeOnlyStream`), segments at the endpoint root
//!   `{segmentPrefix}_{track}_init.mp4` and `{segmentPrefix}_{track}_{startTicks}.mp4`, and
//!   each keyframe alone as `{segmentPrefix}_{track}_{startTicks}_iframe{timeTicks}.mp4`
//! - DASH: `{manifestName}.mpd`, `{manifestName}_{track}_init.mp4`,
//!   `{manifestName}_{track}_{n}.mp4` with `n` the segment number or its start time
//!
//! where `{track}` is `video_{rendition}` or `audio_{rendition}`.

use super::reply::*;
use super::segments::{serve_iframe, serve_segment};
use super::select::*;
use super::window::*;
use crate::app::PlaybackServices;
use crate::catalog::{Catalog, StreamDocs};
use crate::live::timeline;
use crate::live::timeline::{OutputIFrame, OutputSegment};
use crate::manifest::hls::{self, AudioRendition, PlaylistSettings, Variant};
use crate::model::{CmafHlsManifest, CmafPackage, OriginEndpoint};

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
        if let Some(iframe) = parse_iframe_file(&prefix, file) {
            if !package.hls_manifests.iter().any(|m| m.include_iframe_only_stream) {
                return Err(no_iframes(endpoint));
            }
            return serve_iframe(app, endpoint, &docs, package.segment_duration_seconds, iframe).await;
        }
        let request = parse_segment_file(&prefix, file).ok_or_else(|| not_a_file(endpoint, file))?;
        return serve_segment(
            app,
            endpoint,
            &docs,
            package.segment_duration_seconds,
            request,
            false,
            0,
        )
        .await;
    };
    let manifest = package
        .hls_manifests
        .iter()
        .find(|m| m.id == dir)
        .ok_or_else(|| not_a_file(endpoint, &format!("{dir}/{file}")))?;
    let stem = file.strip_suffix(".m3u8").ok_or_else(|| not_a_file(endpoint, file))?;
    if stem == manifest.manifest_name {
        return cmaf_multivariant(endpoint, package, manifest, &docs);
    }
    let track_name = stem
        .strip_prefix(manifest.manifest_name.as_str())
        .and_then(|s| s.strip_prefix('_'))
        .ok_or_else(|| not_a_file(endpoint, file))?;
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
        return Ok(with_last_updated(
            playlist_response(body, max_age, window.last().map(|s| s.sequence)),
            Some(rendition.updated_at),
        ));
    }
    let settings = PlaylistSettings {
        program_date_time_interval_seconds: manifest.program_date_time_interval_seconds,
        playlist_type: manifest.playlist_type,
        version: 6,
        map_uri: Some(init),
        end_list,
    };
    let name = |s: &OutputSegment| format!("../{prefix}_{}_{}.mp4", track.name(), s.start.0);
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
) -> Result<Reply, PlaybackError> {
    let renditions = ordered_selection(docs, &endpoint.channel_id, package.stream_selection.as_ref())?;
    let audio = audio_sources(&renditions);
    let audio_codecs: Vec<String> = audio.iter().map(|(_, c)| c.clone()).collect();
    let media = |track: TrackRef| format!("{}_{}.m3u8", manifest.manifest_name, track.name());
    let mut groups: Vec<AudioRendition> = audio
        .iter()
        .enumerate()
        .map(|(i, (r, codec))| AudioRendition {
            group: "audio".into(),
            name: format!("{codec} ({})", r.id),
            uri: media(TrackRef {
                audio: true,
                rendition: r.id.clone(),
            }),
            default: i == 0,
            channels: r.audio_channels.and_then(|c| c.count()),
        })
        .collect();
    // A variant plays its video with the group's audio: the highest audio rate on top.
    let audio_peak = audio.iter().filter_map(|(r, _)| r.audio_bandwidth()).max().unwrap_or(0);
    let mut variants: Vec<Variant> = renditions
        .iter()
        .filter_map(|r| {
            let video = video_codec(r)?.clone();
            Some(Variant {
                rendition: r,
                uri: media(TrackRef {
                    audio: false,
                    rendition: r.id.clone(),
                }),
                codecs: Some(std::iter::once(video).chain(audio_codecs.iter().cloned()).collect()),
                bandwidth: Some(r.video_bandwidth() + audio_peak),
                audio_group: (!groups.is_empty()).then(|| "audio".to_owned()),
            })
        })
        .collect();
    if variants.is_empty() {
        // No video (an audio-only channel): the audio renditions are the variants, as a
        // player needs at least one EXT-X-STREAM-INF.
        groups.clear();
        variants = audio
            .iter()
            .map(|(r, codec)| Variant {
                rendition: r,
                uri: media(TrackRef {
                    audio: true,
                    rendition: r.id.clone(),
                }),
                codecs: Some(vec![codec.clone()]),
                bandwidth: r.audio_bandwidth(),
                audio_group: None,
            })
            .collect();
    }
    let iframe_variants: Vec<Variant> = variants
        .iter()
        .filter(|v| manifest.include_iframe_only_stream && v.rendition.iframe_bandwidth() > 0)
        .map(|v| Variant {
            rendition: v.rendition,
            uri: format!("{}_video_{}_iframes.m3u8", manifest.manifest_name, v.rendition.id),
            codecs: None,
            bandwidth: None,
            audio_group: None,
        })
        .collect();
    let max_input = renditions.iter().map(|r| r.target()).max().unwrap_or_default();
    let k = timeline::group_size(package.segment_duration_seconds, max_input);
    let body = hls::multivariant_full(&variants, &groups, &iframe_variants, 6);
    Ok(playlist_response(body, playlist_max_age(max_input, k), None))
}

fn no_iframes(endpoint: &OriginEndpoint) -> PlaybackError {
    PlaybackError::not_found(format!(
        "endpoint {:?} has no I-frame playlists; set includeIframeOnlyStream on its HLS manifest",
        endpoint.id
    ))
}
