//! fMP4 playback: CMAF HLS (`cmafPackage`) and DASH (`dashPackage`) manifests from the
//! index, and CMAF init and media segments repackaged from the stored TS on request.
//!
//! File names (under `/out/v1/{endpoint}/`):
//! - CMAF: `{hlsManifestId}/{manifestName}.m3u8` (multivariant),
//!   `{hlsManifestId}/{manifestName}_{track}.m3u8` (media), segments at the endpoint root
//!   `{segmentPrefix}_{track}_init.mp4` and `{segmentPrefix}_{track}_{startTicks}.mp4`
//! - DASH: `{manifestName}.mpd`, `{manifestName}_{track}_init.mp4`,
//!   `{manifestName}_{track}_{n}.mp4` with `n` the segment number or its start time
//!
//! where `{track}` is `video_{rendition}` or `audio_{rendition}`.

use super::{
    active_input, chunked_segment, live_or_ended, live_window, playlist_max_age, playlist_response, segment_group,
    segment_response, with_last_updated, ACTIVE_INPUT,
};
use crate::catalog::{Catalog, StreamDocs};
use crate::http::EdgeError;
use crate::manifest::dash::{self, Adaptation, ContentType, Presentation, Representation};
use crate::manifest::hls::{self, AudioRendition, OutputSegment, PlaylistSettings, Variant};
use crate::media::cmaf::{self, Timeline, TrackRun};
use crate::media::mp4;
use crate::model::{
    CmafHlsManifest, CmafPackage, DashPackage, OriginEndpoint, Rendition, SegmentRecord, SegmentTemplateFormat,
    StreamOrder, StreamSelection,
};
use crate::time::{Ticks, UnixMillis};
use crate::App;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// A video or audio track of one rendition.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackRef {
    pub audio: bool,
    pub rendition: String,
}

impl TrackRef {
    /// `video_{rendition}` or `audio_{rendition}`.
    pub fn name(&self) -> String {
        format!("{}_{}", if self.audio { "audio" } else { "video" }, self.rendition)
    }

    fn parse(name: &str) -> Option<TrackRef> {
        let (kind, rendition) = name.split_once('_')?;
        let audio = match kind {
            "video" => false,
            "audio" => true,
            _ => return None,
        };
        (!rendition.is_empty()).then(|| TrackRef {
            audio,
            rendition: rendition.to_owned(),
        })
    }
}

/// What an fMP4 segment file name asks for.
#[derive(Debug, PartialEq)]
pub enum SegmentFile {
    Init(TrackRef),
    /// A media segment by number or start time (which one depends on the package).
    Media(TrackRef, u64),
}

/// Parses `{prefix}_{track}_{init|n}.mp4`.
pub fn parse_segment_file(prefix: &str, file: &str) -> Option<SegmentFile> {
    let stem = file.strip_suffix(".mp4")?.strip_prefix(prefix)?.strip_prefix('_')?;
    let (track, last) = stem.rsplit_once('_')?;
    let track = TrackRef::parse(track)?;
    if last == "init" {
        return Some(SegmentFile::Init(track));
    }
    Some(SegmentFile::Media(track, last.parse().ok()?))
}

fn is_video_codec(codec: &str) -> bool {
    ["avc1", "avc3", "hvc1", "hev1"].iter().any(|p| codec.starts_with(p))
}

/// Renditions with video, filtered and ordered by `streamSelection` (video bit rate).
pub fn select<'a>(renditions: Vec<&'a Rendition>, selection: Option<&StreamSelection>) -> Vec<&'a Rendition> {
    let Some(selection) = selection else { return renditions };
    let rate = |r: &Rendition| r.bandwidth();
    let mut out: Vec<&Rendition> = renditions
        .into_iter()
        .filter(|r| selection.min_video_bits_per_second.is_none_or(|min| rate(r) >= min))
        .filter(|r| selection.max_video_bits_per_second.is_none_or(|max| rate(r) <= max))
        .collect();
    match selection.stream_order {
        StreamOrder::Original => {}
        StreamOrder::VideoBitrateAscending => out.sort_by_key(|r| rate(r)),
        StreamOrder::VideoBitrateDescending => out.sort_by_key(|r| std::cmp::Reverse(rate(r))),
    }
    out
}

/// The audio tracks offered: the first rendition carrying each distinct audio codec.
fn audio_sources<'a>(renditions: &[&'a Rendition]) -> Vec<(&'a Rendition, String)> {
    let mut out: Vec<(&Rendition, String)> = Vec::new();
    for r in renditions {
        if let Some(codec) = r.codecs.iter().find(|c| !is_video_codec(c)) {
            if !out.iter().any(|(_, c)| c == codec) {
                out.push((r, codec.clone()));
            }
        }
    }
    out
}

fn video_codec(r: &Rendition) -> Option<&String> {
    r.codecs.iter().find(|c| is_video_codec(c))
}

fn ordered_selection<'a>(
    docs: &'a StreamDocs,
    channel: &str,
    selection: Option<&StreamSelection>,
) -> Result<Vec<&'a Rendition>, EdgeError> {
    let renditions = select(docs.ordered_renditions(), selection);
    if renditions.is_empty() {
        return Err(EdgeError::not_found(format!(
            "channel {channel:?} has no rendition to offer yet (none ingested, or none inside streamSelection)"
        )));
    }
    Ok(renditions)
}

/// Serves a CMAF endpoint file: `dir` is the HLS manifest id for playlists, `None` for
/// segments at the endpoint root.
pub async fn serve_cmaf(
    app: &App,
    endpoint: &OriginEndpoint,
    package: &CmafPackage,
    dir: Option<&str>,
    file: &str,
) -> Result<Response, EdgeError> {
    let docs = Catalog(app.stores.index.as_ref())
        .stream_docs(&endpoint.channel_id)
        .await?;
    let prefix = package
        .segment_prefix
        .clone()
        .unwrap_or_else(|| endpoint.channel_id.clone());
    let Some(dir) = dir else {
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
    let track = stem
        .strip_prefix(manifest.manifest_name.as_str())
        .and_then(|s| s.strip_prefix('_'))
        .and_then(TrackRef::parse)
        .ok_or_else(|| not_a_file(endpoint, file))?;
    let rendition = rendition_of(&docs, endpoint, &track.rendition)?;
    let k = hls::group_size(package.segment_duration_seconds, rendition.target());
    let end_list = live_or_ended(app, rendition, k)?;
    let window = live_window(
        app,
        &endpoint.channel_id,
        rendition,
        k,
        manifest.playlist_window_seconds,
    )
    .await?;
    let target = hls::target_duration(&window, rendition, k);
    let settings = PlaylistSettings {
        program_date_time_interval_seconds: manifest.program_date_time_interval_seconds,
        playlist_type: manifest.playlist_type,
        version: 6,
        map_uri: Some(format!("../{prefix}_{}_init.mp4", track.name())),
        end_list,
    };
    let name = |s: &OutputSegment| format!("../{prefix}_{}_{}.mp4", track.name(), s.start.0);
    let body = hls::media_playlist(&window, &settings, target, name);
    let max_age = playlist_max_age(rendition.target(), k);
    Ok(with_last_updated(
        playlist_response(body, max_age, window.last().map(|s| s.sequence)),
        Some(rendition.updated_at),
    ))
}

fn cmaf_multivariant(
    endpoint: &OriginEndpoint,
    package: &CmafPackage,
    manifest: &CmafHlsManifest,
    docs: &StreamDocs,
) -> Result<Response, EdgeError> {
    let renditions = ordered_selection(docs, &endpoint.channel_id, package.stream_selection.as_ref())?;
    let audio = audio_sources(&renditions);
    let audio_codecs: Vec<String> = audio.iter().map(|(_, c)| c.clone()).collect();
    let media = |track: TrackRef| format!("{}_{}.m3u8", manifest.manifest_name, track.name());
    let groups: Vec<AudioRendition> = audio
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
        })
        .collect();
    let variants: Vec<Variant> = renditions
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
                audio_group: (!groups.is_empty()).then(|| "audio".to_owned()),
            })
        })
        .collect();
    let max_input = renditions
        .iter()
        .map(|r| r.target())
        .max()
        .unwrap_or_default();
    let k = hls::group_size(package.segment_duration_seconds, max_input);
    let body = hls::multivariant_with_audio(&variants, &groups, 6);
    Ok(playlist_response(body, playlist_max_age(max_input, k), None))
}

/// Serves a DASH endpoint file.
pub async fn serve_dash(
    app: &App,
    endpoint: &OriginEndpoint,
    package: &DashPackage,
    file: &str,
) -> Result<Response, EdgeError> {
    let docs = Catalog(app.stores.index.as_ref())
        .stream_docs(&endpoint.channel_id)
        .await?;
    if file == format!("{}.mpd", endpoint.manifest_name) {
        return dash_manifest(app, endpoint, package, &docs).await;
    }
    let request = parse_segment_file(&endpoint.manifest_name, file).ok_or_else(|| not_a_file(endpoint, file))?;
    let by_number = package.segment_template_format != SegmentTemplateFormat::TimeWithTimeline;
    // Numbers are looked up in the manifest window plus what a slow player may still ask for.
    let lookup = package.manifest_window_seconds + 4 * package.segment_duration_seconds;
    serve_segment(
        app,
        endpoint,
        &docs,
        package.segment_duration_seconds,
        request,
        by_number,
        lookup,
    )
    .await
}

async fn dash_manifest(
    app: &App,
    endpoint: &OriginEndpoint,
    package: &DashPackage,
    docs: &StreamDocs,
) -> Result<Response, EdgeError> {
    let renditions = ordered_selection(docs, &endpoint.channel_id, package.stream_selection.as_ref())?;
    let anchor = docs.anchor.ok_or_else(|| {
        EdgeError::not_found(format!(
            "channel {:?} has not received any segments yet",
            endpoint.channel_id
        ))
    })?;
    let max_input = renditions
        .iter()
        .map(|r| r.target())
        .max()
        .unwrap_or_default();
    let k = hls::group_size(package.segment_duration_seconds, max_input);
    let mut windows = Vec::new();
    for r in &renditions {
        let k = hls::group_size(package.segment_duration_seconds, r.target());
        windows.push(live_window(app, &endpoint.channel_id, r, k, package.manifest_window_seconds).await?);
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
                bandwidth: r.bandwidth(),
                codecs: video_codec(r)?.clone(),
                resolution: r.resolution,
                frame_rate: r.frame_rate,
                segments: w,
            })
        })
        .collect();
    let audio: Vec<Representation> = audio_sources(&renditions)
        .into_iter()
        .map(|(r, codec)| Representation {
            id: TrackRef {
                audio: true,
                rendition: r.id.clone(),
            }
            .name(),
            // Ingest measures whole TS segments, not tracks: a typical stereo AAC rate.
            bandwidth: 128_000,
            codecs: codec,
            resolution: None,
            frame_rate: None,
            segments: window_of(&r.id).unwrap_or_default(),
        })
        .collect();
    let mut adaptations = Vec::new();
    if !video.is_empty() {
        adaptations.push(Adaptation {
            content_type: ContentType::Video,
            representations: video,
        });
    }
    if !audio.is_empty() {
        adaptations.push(Adaptation {
            content_type: ContentType::Audio,
            representations: audio,
        });
    }
    // Media time zero on the wall clock: constant while the channel's clock anchor holds.
    let availability_start = UnixMillis(anchor.wall.0 - (anchor.media.0 / 90) as i64);
    let presentation = Presentation {
        package,
        prefix: &endpoint.manifest_name,
        availability_start,
        now: UnixMillis::now(),
        default_utc_uri: format!("{}/out/v1/utc", app.config.playback_base_url),
        ended: false,
    };
    let body = dash::mpd(&presentation, &adaptations);
    let last = windows.iter().filter_map(|w| w.last()).map(|s| s.sequence).max();
    // DASH: the rendition updated least recently, as MediaPackage reports the lowest.
    let updated = renditions.iter().map(|r| r.updated_at).min_by_key(|t| t.0);
    let mut response = with_last_updated(playlist_response(body, playlist_max_age(max_input, k), last), updated);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/dash+xml"),
    );
    Ok(response)
}

fn not_a_file(endpoint: &OriginEndpoint, file: &str) -> EdgeError {
    EdgeError::not_found(format!("{file:?} is not a file of origin endpoint {:?}", endpoint.id))
}

fn rendition_of<'a>(docs: &'a StreamDocs, endpoint: &OriginEndpoint, id: &str) -> Result<&'a Rendition, EdgeError> {
    docs.renditions
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| EdgeError::not_found(format!("channel {:?} has no rendition {id:?}", endpoint.channel_id)))
}

/// An init or media segment. `by_number`: the number in a media segment's name is an
/// output sequence number (DASH `$Number$`) rather than a start time.
async fn serve_segment(
    app: &App,
    endpoint: &OriginEndpoint,
    docs: &StreamDocs,
    segment_duration_seconds: u32,
    request: SegmentFile,
    by_number: bool,
    lookup_window_seconds: u32,
) -> Result<Response, EdgeError> {
    let track = match &request {
        SegmentFile::Init(t) | SegmentFile::Media(t, _) => t.clone(),
    };
    let rendition = rendition_of(docs, endpoint, &track.rendition)?;
    let k = hls::group_size(segment_duration_seconds, rendition.target());
    match request {
        SegmentFile::Init(_) => {
            let partition = SegmentRecord::partition_of(&endpoint.channel_id, &rendition.id);
            let newest = app.stores.index.latest_segments(&partition, 1).await?;
            let record = newest
                .first()
                .ok_or_else(|| EdgeError::not_found(format!("rendition {:?} has no segments yet", rendition.id)))?;
            let bytes = app.stores.objects.get(&record.object_key).await?.ok_or_else(|| {
                EdgeError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "segment bytes are not available; retry",
                )
            })?;
            let run = pick(
                cmaf::runs_from_ts(&bytes, Timeline::of(record)).map_err(repackaging)?,
                &track,
            )?;
            let init = mp4::init_segment(&run.track).map_err(|e| repackaging(e.into()))?;
            Ok(segment_response(content_type(&track), init))
        }
        SegmentFile::Media(_, n) => {
            let start = if by_number {
                let window = live_window(app, &endpoint.channel_id, rendition, k, lookup_window_seconds).await?;
                window
                    .iter()
                    .find(|s| s.sequence == n)
                    .map(|s| s.start)
                    .ok_or_else(|| {
                        EdgeError::not_found(format!(
                            "segment number {n} of rendition {:?} is not in the live window",
                            rendition.id
                        ))
                    })?
            } else {
                Ticks(n)
            };
            let (group, inputs) = segment_group(app, &endpoint.channel_id, rendition, k, start).await?;
            let mut joined: Option<TrackRun> = None;
            for (record, bytes) in &inputs {
                let run = pick(
                    cmaf::runs_from_ts(bytes, Timeline::of(record)).map_err(repackaging)?,
                    &track,
                )?;
                match joined.as_mut() {
                    Some(j) => j.append(run),
                    None => joined = Some(run),
                }
            }
            let run = joined.ok_or_else(|| EdgeError::not_found("empty segment"))?;
            // Header, then the samples where they already are (not copied behind it).
            let header = mp4::fragment_header(
                &run.track,
                group.sequence as u32,
                run.base_decode_time,
                &run.samples,
                run.data.len(),
            )
            .map_err(|e| repackaging(e.into()))?;
            let mut response = chunked_segment(
                content_type(&track),
                [bytes::Bytes::from(header), bytes::Bytes::from(run.data)],
            );
            response
                .headers_mut()
                .insert(ACTIVE_INPUT, active_input(inputs.iter().map(|(record, _)| record)));
            Ok(response)
        }
    }
}

fn content_type(track: &TrackRef) -> &'static str {
    if track.audio {
        "audio/mp4"
    } else {
        "video/mp4"
    }
}

fn pick(runs: Vec<TrackRun>, track: &TrackRef) -> Result<TrackRun, EdgeError> {
    runs.into_iter()
        .find(|r| r.track.is_video() != track.audio)
        .ok_or_else(|| {
            EdgeError::not_found(format!(
                "rendition {:?} has no {} track",
                track.rendition,
                if track.audio { "audio" } else { "video" }
            ))
        })
}

fn repackaging(e: cmaf::CmafError) -> EdgeError {
    tracing::error!(error = %e, "TS → CMAF repackaging failed");
    EdgeError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("cannot repackage the segment as CMAF: {e}"),
    )
}

/// `GET /out/v1/utc`: the server's clock for DASH `UTCTiming` (ISO 8601, also in `Date`).
pub async fn utc_time() -> Response {
    let now = UnixMillis::now();
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain".to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_owned()),
            (
                header::DATE,
                now.to_datetime().format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            ),
        ],
        now.to_datetime().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_file_names_parse() {
        assert_eq!(
            parse_segment_file("live", "live_video_channel_1_init.mp4"),
            Some(SegmentFile::Init(TrackRef {
                audio: false,
                rendition: "channel_1".into()
            }))
        );
        assert_eq!(
            parse_segment_file("live", "live_audio_360p_900000.mp4"),
            Some(SegmentFile::Media(
                TrackRef {
                    audio: true,
                    rendition: "360p".into()
                },
                900_000
            ))
        );
        assert_eq!(parse_segment_file("live", "live_text_360p_1.mp4"), None);
        assert_eq!(parse_segment_file("live", "other_video_360p_1.mp4"), None);
        assert_eq!(parse_segment_file("live", "live_video_360p_x.mp4"), None);
    }
}
