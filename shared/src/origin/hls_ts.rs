//! HLS with MPEG-TS segments (`hlsPackage`): multivariant, media and I-frame playlists
//! from the index, and output segments concatenated from the stored inputs.
//!
//! File names under an HLS endpoint with manifest name `index`:
//! - `index.m3u8` — multivariant playlist
//! - `index_{rendition}.m3u8` — media playlist of one rendition
//! - `index_{rendition}_iframes.m3u8` — its I-frame playlist (`includeIframeOnlyStream`)
//! - `index_{rendition}_{start}.ts` — one output segment, named by its start in 90 kHz ticks
//!   (encrypted endpoints: `index_{rendition}_{start}.k{period}.ts`, naming the key period
//!   whose key encrypts it, so a playlist and the segments it lists always agree on the key,
//!   whichever instance serves them)
//! - `index_{rendition}_{start}.vtt` — a subtitle rendition's segment going with the video
//!   output segment that starts there (see [`super::subtitles`])

use super::arrival::*;
use super::ladder::*;
use super::protection;
use super::reply::*;
use super::select::*;
use super::subtitles;
use super::window::*;
use crate::app::PlaybackServices;
use crate::catalog::{Catalog, StreamDocs};
use crate::live::timeline;
use crate::live::timeline::OutputSegment;
use crate::manifest::hls::{self, Variant};
use crate::model::{HlsPackage, OriginEndpoint, Rendition};
use crate::time::{Ticks, UnixMillis};

/// What a playback file name asks for.
#[derive(Debug, PartialEq)]
pub enum PlaybackRequest {
    Multivariant,
    Media {
        rendition: String,
    },
    IFrames {
        rendition: String,
    },
    Segment {
        rendition: String,
        start: Ticks,
        /// The key period of an encrypted segment's key.
        key_period: Option<u64>,
    },
    Subtitles {
        rendition: String,
        start: Ticks,
    },
}

/// Parses a file name under an endpoint with manifest name `manifest`.
pub fn parse_file(manifest: &str, file: &str) -> Option<PlaybackRequest> {
    if let Some(stem) = file.strip_suffix(".m3u8") {
        if stem == manifest {
            return Some(PlaybackRequest::Multivariant);
        }
        let rendition = stem.strip_prefix(manifest)?.strip_prefix('_')?;
        if let Some(rendition) = rendition.strip_suffix("_iframes").filter(|r| !r.is_empty()) {
            return Some(PlaybackRequest::IFrames {
                rendition: rendition.to_owned(),
            });
        }
        return (!rendition.is_empty()).then(|| PlaybackRequest::Media {
            rendition: rendition.to_owned(),
        });
    }
    let (mut stem, subtitles) = match file.strip_suffix(".ts") {
        Some(stem) => (stem, false),
        None => (file.strip_suffix(".vtt")?, true),
    };
    let mut key_period = None;
    // Only `.k` and digits is a key period (a rendition id may hold `.k` itself).
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if let Some((rest, period)) = stem.rsplit_once(".k").filter(|(_, p)| !subtitles && digits(p)) {
        key_period = Some(period.parse().ok()?);
        stem = rest;
    }
    let rest = stem.strip_prefix(manifest)?.strip_prefix('_')?;
    let (rendition, start) = rest.rsplit_once('_')?;
    let start = Ticks(start.parse().ok()?);
    let rendition = rendition.to_owned();
    (!rendition.is_empty()).then_some(match subtitles {
        false => PlaybackRequest::Segment {
            rendition,
            start,
            key_period,
        },
        true => PlaybackRequest::Subtitles { rendition, start },
    })
}

/// Serves a file of an HLS (TS) endpoint.
pub(crate) async fn serve_hls(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    package: &HlsPackage,
    file: &str,
) -> Result<Reply, PlaybackError> {
    let endpoint_id = &endpoint.id;
    let catalog = Catalog(app.stores.index.as_ref());
    let request = parse_file(&endpoint.manifest_name, file).ok_or_else(|| {
        PlaybackError::not_found(format!(
            "{file:?} is not a file of endpoint {endpoint_id:?}; its manifest is {}.m3u8",
            endpoint.manifest_name
        ))
    })?;
    let docs = catalog.stream_docs(&endpoint.channel_id).await?;
    let rendition_of = |id: &str| {
        docs.renditions.iter().find(|r| r.id == id).ok_or_else(|| {
            PlaybackError::not_found(format!("channel {:?} has no rendition {id:?}", endpoint.channel_id))
        })
    };
    match request {
        PlaybackRequest::Multivariant => ts_multivariant(endpoint, package, &docs),
        PlaybackRequest::Media { rendition } if subtitles::is_subtitles(&docs, &rendition) => {
            let video = subtitles::reference_video(&docs, &endpoint.channel_id)?;
            let name = |s: &OutputSegment| format!("{}_{rendition}_{}.vtt", endpoint.manifest_name, s.start.0);
            subtitles::media_playlist(
                app,
                &endpoint.channel_id,
                video,
                package.segment_duration_seconds,
                package.playlist_window_seconds,
                package.into(),
                name,
            )
            .await
        }
        PlaybackRequest::Subtitles { rendition, start } if subtitles::is_subtitles(&docs, &rendition) => {
            let video = subtitles::reference_video(&docs, &endpoint.channel_id)?;
            let clock = subtitles::SegmentClock::Encoder;
            let seconds = package.segment_duration_seconds;
            subtitles::segment(app, &endpoint.channel_id, &rendition, video, seconds, start, clock).await
        }
        PlaybackRequest::Subtitles { rendition, .. } => Err(PlaybackError::not_found(format!(
            "channel {:?} has no subtitle rendition {rendition:?}",
            endpoint.channel_id
        ))),
        PlaybackRequest::Media { rendition } => {
            let rendition = rendition_of(&rendition)?;
            media_playlist(app, endpoint, package, rendition).await
        }
        PlaybackRequest::IFrames { rendition } => {
            if !package.include_iframe_only_stream {
                return Err(PlaybackError::not_found(format!(
                    "endpoint {endpoint_id:?} has no I-frame playlists; set hlsPackage.includeIframeOnlyStream"
                )));
            }
            let rendition = rendition_of(&rendition)?;
            let k = timeline::group_size(package.segment_duration_seconds, rendition.target());
            let window = live_window(app, &endpoint.channel_id, rendition, k, package.playlist_window_seconds).await?;
            let name = |s: &OutputSegment| format!("{}_{}_{}.ts", endpoint.manifest_name, rendition.id, s.start.0);
            let body = hls::iframe_playlist(&window, timeline::target_duration(&window, rendition, k), name);
            let max_age = playlist_max_age(rendition.target(), k);
            let last = window.iter().rev().find_map(OutputSegment::last_iframe_sequence);
            Ok(with_last_updated(
                playlist_response(body, max_age, last),
                Some(rendition.updated_at),
            ))
        }
        PlaybackRequest::Segment {
            rendition,
            start,
            key_period,
        } => {
            let rendition = rendition_of(&rendition)?;
            segment(app, endpoint, package, rendition, start, key_period).await
        }
    }
}

/// The multivariant playlist: a variant per video rendition (audio muxed in, or playing
/// with the encoder's audio-only renditions as an `EXT-X-MEDIA` audio group), the I-frame
/// streams when asked for.
fn ts_multivariant(endpoint: &OriginEndpoint, package: &HlsPackage, docs: &StreamDocs) -> Result<Reply, PlaybackError> {
    let renditions = select(docs.ordered_renditions(), package.stream_selection.as_ref());
    if renditions.is_empty() {
        return Err(PlaybackError::not_found(format!(
            "channel {:?} has not received any segments yet; start the encoder",
            endpoint.channel_id
        )));
    }
    ladder_ready(docs, &endpoint.channel_id, UnixMillis::now())?;
    let name = |r: &Rendition| format!("{}_{}.m3u8", endpoint.manifest_name, r.id);
    let tracks: Vec<AudioTrack> = audio_tracks(docs, &renditions)
        .into_iter()
        .filter(|t| t.separate)
        .collect();
    let video = video_renditions(&renditions);
    let (variants, groups) = if tracks.is_empty() || video.is_empty() {
        // Muxed audio, or no video at all: every rendition is a variant as it is.
        let variants = renditions
            .iter()
            .map(|r| Variant {
                rendition: r,
                uri: name(r),
                codecs: None,
                bandwidth: None,
                audio_group: None,
            })
            .collect();
        (variants, Vec::new())
    } else {
        // The segments go out as the encoder sent them, so the rates are the whole TS's.
        let names = HlsNames {
            audio_uri: &|t: &AudioTrack| name(t.rendition),
            audio_bandwidth: &|t: &AudioTrack| t.rendition.bandwidth(),
            video_uri: &|r: &Rendition| name(r),
            video_codecs: &|r: &Rendition| r.codecs.clone(),
            video_bandwidth: &|r: &Rendition| r.bandwidth(),
        };
        hls_entries(&video, &tracks, &names)
    };
    let max_input = renditions.iter().map(|r| r.target()).max().unwrap_or_default();
    let k = timeline::group_size(package.segment_duration_seconds, max_input);
    let max_age = playlist_max_age(max_input, k);
    let iframe_variants = iframe_variants(&video, package.include_iframe_only_stream, |r| {
        format!("{}_{}_iframes.m3u8", endpoint.manifest_name, r.id)
    });
    let subtitles = subtitles::subtitle_media(docs, |id| format!("{}_{id}.m3u8", endpoint.manifest_name));
    let body = match (groups.is_empty() && subtitles.is_empty(), iframe_variants.is_empty()) {
        (true, true) => hls::multivariant_playlist(&variants),
        (true, false) => hls::multivariant_with_iframes(&variants, &iframe_variants),
        // EXT-X-MEDIA needs no version above 3; I-frame streams need 4.
        (false, _) => hls::multivariant_full(&variants, &groups, &subtitles, &iframe_variants, 4, &[]),
    };
    Ok(playlist_response(body, max_age, None))
}

pub(crate) async fn media_playlist(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    package: &HlsPackage,
    rendition: &Rendition,
) -> Result<Reply, PlaybackError> {
    let k = timeline::group_size(package.segment_duration_seconds, rendition.target());
    let end_list = live_or_ended(app, rendition, k)?;
    let window = live_window(app, &endpoint.channel_id, rendition, k, package.playlist_window_seconds).await?;
    let target = timeline::target_duration(&window, rendition, k);
    let name = |s: &OutputSegment| format!("{}_{}_{}.ts", endpoint.manifest_name, rendition.id, s.start.0);
    let (keys, key_periods) = match &package.encryption {
        Some(encryption) => {
            let (keys, periods) = protection::hls_keys(app, endpoint, encryption, &window).await?;
            (Some(keys), periods)
        }
        None => (None, Vec::new()),
    };
    let key_period = |s: &OutputSegment| {
        let i = window.iter().position(|w| w.start == s.start)?;
        key_periods.get(i).copied()
    };
    let name = |s: &OutputSegment| match key_period(s) {
        Some(k) => format!("{}_{}_{}.k{k}.ts", endpoint.manifest_name, rendition.id, s.start.0),
        None => name(s),
    };
    let settings = hls::PlaylistSettings {
        end_list,
        keys,
        ..package.into()
    };
    let body = hls::media_playlist(&window, &settings, target, name);
    let max_age = playlist_max_age(rendition.target(), k);
    Ok(with_last_updated(
        playlist_response(body, max_age, window.last().map(|s| s.sequence)),
        Some(rendition.updated_at),
    ))
}

pub(crate) async fn segment(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    package: &HlsPackage,
    rendition: &Rendition,
    start: Ticks,
    key_period: Option<u64>,
) -> Result<Reply, PlaybackError> {
    let k = timeline::group_size(package.segment_duration_seconds, rendition.target());
    let named = |what: &str| {
        PlaybackError::not_found(format!(
            "endpoint {:?} {what}; take segment names from its media playlists",
            endpoint.id
        ))
    };
    match (&package.encryption, key_period) {
        (Some(_), None) => return Err(named("is encrypted: its segment names end in .k{key period}.ts")),
        (None, Some(_)) => return Err(named("is not encrypted: its segment names have no key period")),
        _ => {}
    }
    let (group, inputs) = segment_group(app, &endpoint.channel_id, rendition, k, start).await?;
    let active = active_input(inputs.iter().map(|(record, _)| record));
    let parts: Vec<bytes::Bytes> = inputs.into_iter().map(|(_, bytes)| bytes).collect();
    let parts = match &package.encryption {
        // AES-128: the one copy is the encrypted segment.
        Some(encryption) => {
            let period = key_period.unwrap_or_default();
            vec![
                protection::encrypt_ts_segment(app, endpoint, encryption, group.sequence, group.start, period, &parts)
                    .await?,
            ]
        }
        // The input segments go out one after the other as they were stored: never joined
        // into a second copy of the output segment.
        None => parts,
    };
    let mut reply = chunked_segment("video/mp2t", parts);
    reply.active_input = Some(active);
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playback_file_names_parse() {
        assert_eq!(parse_file("index", "index.m3u8"), Some(PlaybackRequest::Multivariant));
        assert_eq!(
            parse_file("index", "index_360p-seg.m3u8"),
            Some(PlaybackRequest::Media {
                rendition: "360p-seg".into()
            })
        );
        assert_eq!(
            parse_file("index", "index_channel_1_900000.ts"),
            Some(PlaybackRequest::Segment {
                rendition: "channel_1".into(),
                start: Ticks(900_000),
                key_period: None,
            })
        );
        assert_eq!(
            parse_file("index", "index_channel_1_900000.k12.ts"),
            Some(PlaybackRequest::Segment {
                rendition: "channel_1".into(),
                start: Ticks(900_000),
                key_period: Some(12),
            })
        );
        assert_eq!(
            parse_file("index", "index_360p-index_900000.vtt"),
            Some(PlaybackRequest::Subtitles {
                rendition: "360p-index".into(),
                start: Ticks(900_000)
            })
        );
        assert_eq!(parse_file("index", "other.m3u8"), None);
        assert_eq!(parse_file("index", "index_.m3u8"), None);
        assert_eq!(parse_file("index", "index_360p_x.ts"), None);
        assert_eq!(parse_file("index", "index_360p_9.k+1.ts"), None);
        assert_eq!(parse_file("index", "index_360p_9.k.ts"), None);
        assert_eq!(
            parse_file("index", "index_a.k5_900000.ts"),
            Some(PlaybackRequest::Segment {
                rendition: "a.k5".into(),
                start: Ticks(900_000),
                key_period: None,
            })
        );
    }
}
