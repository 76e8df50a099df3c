//! DASH (`dashPackage`): the MPD from the index, its segments (by number or time) and the
//! UTC timing endpoint. With key rotation, one Period per key (`periods`).

mod periods;

use super::arrival::*;
use super::ladder::*;
use super::reply::*;
use super::segments::{serve_segment, Numbering};
use super::select::*;
use super::subtitles;
use super::window::*;
use crate::app::PlaybackServices;
use crate::catalog::{Catalog, StreamDocs};
use crate::live::timeline;
use crate::manifest::dash::{self, Adaptation, ContentType, Period, Presentation, Representation};
use crate::model::{CaptionChannel, DashPackage, OriginEndpoint, Rendition, SegmentTemplateFormat};
use crate::time::UnixMillis;

/// Serves a DASH endpoint file.
pub async fn serve_dash(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    package: &DashPackage,
    file: &str,
) -> Result<Reply, PlaybackError> {
    let docs = Catalog(app.stores.index.as_ref())
        .stream_docs(&endpoint.channel_id)
        .await?;
    if file == format!("{}.mpd", endpoint.manifest_name) {
        return dash_manifest(app, endpoint, package, &docs).await;
    }
    let numbering = match package.segment_template_format {
        SegmentTemplateFormat::TimeWithTimeline => Numbering::Time,
        SegmentTemplateFormat::NumberWithTimeline => Numbering::Number,
        SegmentTemplateFormat::NumberWithDuration => Numbering::NumberFromOrigin,
    };
    // Numbers are looked up in the manifest window (and, with key rotation, as far back as
    // its MPD lists Periods) plus what a slow player may still ask for.
    let lookup = package.manifest_window_seconds + read_back(package) + 4 * package.segment_duration_seconds;
    if let Some(text) = subtitles::parse_dash_file(&endpoint.manifest_name, file) {
        let seconds = package.segment_duration_seconds;
        return subtitles::dash_segment(app, endpoint, &docs, seconds, text, numbering, lookup).await;
    }
    // With key rotation a name ends in the key period of its key: `….k{period}.mp4`.
    let (file, key_period) = super::cenc::split_key_period(file);
    let request = parse_segment_file(&endpoint.manifest_name, &file).ok_or_else(|| not_a_file(endpoint, &file))?;
    serve_segment(
        app,
        endpoint,
        &docs,
        package.segment_duration_seconds,
        request,
        numbering,
        lookup,
        key_period,
    )
    .await
}

/// How much further back than the manifest window an MPD lists segments: with key
/// rotation, back to the start of the oldest listed Period.
fn read_back(package: &DashPackage) -> u32 {
    match &package.encryption {
        Some(e) if e.key_rotation_interval_seconds > 0 => {
            periods::read_back_seconds(e.key_rotation_interval_seconds, package.segment_duration_seconds)
        }
        _ => 0,
    }
}

/// How much later than the wall clock of its media segments are announced: the channel's
/// clock anchor is set by the first rendition to arrive, and the other renditions of a
/// ladder arrive after it (an encoder uploads them one after the other), so a segment
/// announced at its media end exactly would answer 404 for those for a moment.
const LADDER_ARRIVAL_MS: i64 = 1000;

/// The caption channels every video rendition carries: `Accessibility` describes the
/// whole video AdaptationSet, whichever Representation plays.
fn common_captions(renditions: &[&Rendition]) -> Vec<CaptionChannel> {
    let mut video = renditions.iter().filter(|r| video_codec(r).is_some());
    let first = video.next().map(|r| r.caption_channels()).unwrap_or_default();
    video.fold(first, |common, r| {
        let theirs = r.caption_channels();
        common.into_iter().filter(|c| theirs.contains(c)).collect()
    })
}

pub(crate) async fn dash_manifest(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    package: &DashPackage,
    docs: &StreamDocs,
) -> Result<Reply, PlaybackError> {
    let renditions = ordered_selection(docs, &endpoint.channel_id, package.stream_selection.as_ref())?;
    ladder_ready(docs, &endpoint.channel_id, UnixMillis::now())?;
    let encryption = super::cenc::common_encryption(endpoint);
    // Encrypted with one key for the whole stream: the key first, so that a key never
    // obtained is a 404 before any work.
    let protection = match encryption.as_ref().filter(|e| e.rotation == 0) {
        Some(e) => {
            let key = super::cenc::segment_key(app, endpoint, e, None, 0).await?;
            Some(super::cenc::dash_content_protection(e.scheme, &key))
        }
        None => None,
    };
    let read_seconds = package.manifest_window_seconds + read_back(package);
    let anchor = docs.anchor.ok_or_else(|| {
        PlaybackError::not_found(format!(
            "channel {:?} has not received any segments yet",
            endpoint.channel_id
        ))
    })?;
    let max_input = renditions.iter().map(|r| r.target()).max().unwrap_or_default();
    let k = timeline::group_size(package.segment_duration_seconds, max_input);
    let mut windows = Vec::new();
    for r in &renditions {
        let k = timeline::group_size(package.segment_duration_seconds, r.target());
        windows.push(live_window(app, &endpoint.channel_id, r, k, read_seconds).await?);
    }
    let window_of = |id: &str| renditions.iter().position(|r| r.id == id).map(|i| &windows[i][..]);
    let video: Vec<Representation> = renditions
        .iter()
        .zip(&windows)
        .filter_map(|(r, w)| {
            Some(Representation {
                id: TrackRef {
                    audio: false,
                    rendition: r.id.clone(),
                }
                .name(),
                // The audio is its own Representation.
                bandwidth: r.video_bandwidth(),
                codecs: video_codec(r)?.clone(),
                resolution: r.resolution,
                frame_rate: r.frame_rate,
                audio_channels: None,
                segments: w,
            })
        })
        .collect();
    // One AdaptationSet per language and codec (players switch languages between sets,
    // bit rates within one).
    let mut audio: Vec<Adaptation> = Vec::new();
    for t in audio_tracks(docs, &renditions) {
        let representation = Representation {
            id: TrackRef {
                audio: true,
                rendition: t.rendition.id.clone(),
            }
            .name(),
            // Documents from before audio was measured: a typical stereo AAC rate.
            bandwidth: t.rendition.audio_bandwidth().unwrap_or(128_000),
            codecs: t.codec.clone(),
            resolution: None,
            frame_rate: None,
            audio_channels: t.rendition.audio_channels,
            segments: window_of(&t.rendition.id).unwrap_or_default(),
        };
        let set = audio
            .iter_mut()
            .find(|a| a.lang == t.language && a.representations[0].codecs == t.codec);
        match set {
            Some(set) => {
                set.main |= t.default;
                set.representations.push(representation);
            }
            None => audio.push(Adaptation {
                content_type: ContentType::Audio,
                representations: vec![representation],
                lang: t.language.clone(),
                main: t.default,
                captions: Vec::new(),
            }),
        }
    }
    let mut adaptations = Vec::new();
    if !video.is_empty() {
        adaptations.push(Adaptation {
            content_type: ContentType::Video,
            representations: video,
            lang: None,
            main: true,
            captions: common_captions(&renditions),
        });
    }
    adaptations.extend(audio);
    // Subtitles follow the first video rendition's segments, one behind (see
    // `super::subtitles`), each rendition in its own set.
    // (A DASH set has no URI of its own: `uri` carries the rendition id here.)
    let subtitle_media = subtitles::subtitle_media(docs, |id| id.to_owned());
    let reference = subtitles::reference_video(docs, &endpoint.channel_id).ok();
    let subtitle_window = match reference.filter(|_| !subtitle_media.is_empty()) {
        // No video to follow (an audio-only channel): no subtitles.
        None => Vec::new(),
        Some(video) => {
            // Its window is read above unless the stream selection left it out.
            let mut w = match window_of(&video.id) {
                Some(w) => w.to_vec(),
                None => {
                    let k = timeline::group_size(package.segment_duration_seconds, video.target());
                    let window = live_window(app, &endpoint.channel_id, video, k, read_seconds);
                    window.await.unwrap_or_default()
                }
            };
            w.pop();
            w
        }
    };
    // Its set is listed once the video has a segment after the first (dash.js adds no set
    // on a later MPD), which is waited for as the ladder is (`ladder_ready`).
    if let (true, Some(video)) = (subtitle_window.is_empty() && !subtitle_media.is_empty(), reference) {
        let k = timeline::group_size(package.segment_duration_seconds, video.target()) as i64;
        let arrival = Arrival::of(docs, UnixMillis::now());
        if let Some(arrival) = arrival.filter(|a| a.within(2 * k)) {
            let missing = "a second video segment, which the subtitle segments follow";
            return Err(arrival.wait(&endpoint.channel_id, missing, 2 * k));
        }
    }
    if !subtitle_window.is_empty() {
        for s in &subtitle_media {
            adaptations.push(Adaptation {
                content_type: ContentType::Text,
                representations: vec![Representation {
                    id: format!("subtitles_{}", s.uri),
                    bandwidth: 1000,
                    codecs: "wvtt".into(),
                    resolution: None,
                    frame_rate: None,
                    audio_channels: None,
                    segments: &subtitle_window,
                }],
                lang: s.language.clone(),
                main: s.default,
                captions: Vec::new(),
            });
        }
    }
    // Media time zero on the wall clock: constant while the channel's clock anchor holds.
    let availability_start = UnixMillis(anchor.wall.0 - anchor.media.as_millis() + LADDER_ARRIVAL_MS);
    let presentation = Presentation {
        package,
        prefix: &endpoint.manifest_name,
        availability_start,
        now: UnixMillis::now(),
        default_utc_uri: format!("{}/out/v1/utc", app.config.playback_base_url),
        ended: false,
    };
    let periods = match encryption.as_ref().filter(|e| e.rotation > 0) {
        Some(e) => periods::key_periods(app, endpoint, e, package.manifest_window_seconds, adaptations).await?,
        None => vec![Period {
            start: None,
            protection,
            file_suffix: String::new(),
            adaptations,
        }],
    };
    let body = dash::mpd(&presentation, &periods);
    let last = windows.iter().filter_map(|w| w.last()).map(|s| s.sequence).max();
    // DASH: the rendition updated least recently, as MediaPackage reports the lowest.
    let updated = renditions.iter().map(|r| r.updated_at).min_by_key(|t| t.0);
    let mut reply = with_last_updated(playlist_response(body, playlist_max_age(max_input, k), last), updated);
    reply.content_type = DASH_TYPE;
    Ok(reply)
}
