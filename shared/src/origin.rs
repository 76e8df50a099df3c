//! Playback: `/out/v1/{endpoint}/{file}` → a manifest built from the index, or segment
//! bytes from the object store.
//!
//! File names under an HLS endpoint with manifest name `index`:
//! - `index.m3u8` — multivariant playlist
//! - `index_{rendition}.m3u8` — media playlist of one rendition
//! - `index_{rendition}_iframes.m3u8` — its I-frame playlist (`includeIframeOnlyStream`)
//! - `index_{rendition}_{start}.ts` — one output segment, named by its start in 90 kHz ticks

mod access;
mod fmp4;
mod range;

pub use fmp4::{parse_segment_file, SegmentFile, TrackRef};

use crate::catalog::Catalog;
use crate::http::{EdgeError, RequestInfo};
use crate::manifest::hls::{self, OutputSegment, Variant};
use crate::model::{HlsPackage, OriginEndpoint, Rendition, SegmentRecord};
use crate::time::{Ticks, UnixMillis};
use crate::App;
use axum::extract::{Path, State};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;

/// Segments are immutable once listed: cache them for the longest startover window.
pub const SEGMENT_MAX_AGE: u32 = 1_209_600;
const HLS_TYPE: &str = "application/vnd.apple.mpegurl";

/// The playback routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/out/v1/utc", get(fmp4::utc_time).head(fmp4::utc_time))
        .route("/out/v1/{endpoint}/{file}", get(handle).options(preflight))
        .route("/out/v1/{endpoint}/{dir}/{file}", get(handle_nested).options(preflight))
        .with_state(app)
}

async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, HEAD, OPTIONS"),
            (header::ACCESS_CONTROL_ALLOW_HEADERS, "*"),
            (header::ACCESS_CONTROL_MAX_AGE, "86400"),
        ],
    )
        .into_response()
}

async fn handle(
    State(app): State<App>,
    Path((endpoint_id, file)): Path<(String, String)>,
    request: RequestInfo,
) -> Response {
    respond(app, endpoint_id, None, file, request).await
}

async fn handle_nested(
    State(app): State<App>,
    Path((endpoint_id, dir, file)): Path<(String, String, String)>,
    request: RequestInfo,
) -> Response {
    respond(app, endpoint_id, Some(dir), file, request).await
}

async fn respond(app: App, endpoint_id: String, dir: Option<String>, file: String, request: RequestInfo) -> Response {
    let headers = &request.headers;
    let viewer = access::Viewer::of(headers, request.peer, app.config.client_ip_from_forwarded_for);
    use tracing::Instrument;
    let started = std::time::Instant::now();
    let request_id = crate::model::random_hex();
    let span = tracing::info_span!("playback", endpoint = %endpoint_id, file = %file, request_id = %request_id);
    let mut reached: Option<OriginEndpoint> = None;
    let mut response = match serve(&app, &endpoint_id, dir.as_deref(), &file, &viewer, &mut reached)
        .instrument(span)
        .await
    {
        Ok(response) => range::apply(headers, response).await,
        Err(e) => {
            tracing::debug!(status = e.status.as_u16(), error = %e.message, "playback error");
            e.into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    // Metrics and access logs only for requests that reached a real endpoint (no
    // dimension values made up by whoever sends requests).
    let Some(endpoint) = reached else { return response };
    let channel = &endpoint.channel_id;
    let now = crate::time::UnixMillis::now();
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .or_else(|| axum::body::HttpBody::size_hint(response.body()).exact())
        .unwrap_or(0);
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status().as_u16();
    crate::metrics::emit(|| crate::metrics::egress(now.0, channel, &endpoint_id, status, bytes, elapsed * 1000.0));
    if let Some(inputs) = response.headers().get(ACTIVE_INPUT).and_then(|v| v.to_str().ok()) {
        for input in inputs.split(',') {
            crate::metrics::emit(|| crate::metrics::active_input(now.0, input, &endpoint_id));
        }
    }
    if let Some((group, channel_arn)) = app.egress_logs.of(&app, channel).await {
        let config = &app.config;
        crate::access_log::Entry {
            log_group: &group,
            at: now,
            processing_seconds: elapsed,
            client_ip: viewer.ip.map(std::net::IpAddr::V4).or(request.peer),
            status,
            received_bytes: 0,
            sent_bytes: bytes,
            method: request.method.as_str(),
            request: crate::access_log::request_url(headers, &request.uri),
            protocol: crate::access_log::protocol(request.version),
            user_agent: crate::access_log::user_agent(headers),
            account: &config.account_id,
            channel_id: channel,
            channel_arn: &channel_arn,
            domain_name: "",
            request_id: &request_id,
            endpoint_id: &endpoint_id,
            endpoint_arn: &endpoint.arn(&config.region, &config.account_id),
        }
        .write();
    }
    response
}

/// The request id on every playback and ingest response (MediaPackage v1's header).
pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-mediapackage-request-id");

/// When the newest segment listed was received, in epoch milliseconds (MediaPackage's
/// `X-MediaPackage-Manifest-Last-Updated`).
pub(crate) fn with_last_updated(mut response: Response, at: Option<crate::time::UnixMillis>) -> Response {
    if let Some(at) = at {
        response.headers_mut().insert(
            HeaderName::from_static("x-mediapackage-manifest-last-updated"),
            HeaderValue::from(at.0),
        );
    }
    response
}

/// What a playback file name asks for.
#[derive(Debug, PartialEq)]
pub enum PlaybackRequest {
    Multivariant,
    Media { rendition: String },
    IFrames { rendition: String },
    Segment { rendition: String, start: Ticks },
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
    let stem = file.strip_suffix(".ts")?;
    let rest = stem.strip_prefix(manifest)?.strip_prefix('_')?;
    let (rendition, start) = rest.rsplit_once('_')?;
    let start = start.parse().ok()?;
    (!rendition.is_empty()).then(|| PlaybackRequest::Segment {
        rendition: rendition.to_owned(),
        start: Ticks(start),
    })
}

async fn serve(
    app: &App,
    endpoint_id: &str,
    dir: Option<&str>,
    file: &str,
    viewer: &access::Viewer,
    reached: &mut Option<OriginEndpoint>,
) -> Result<Response, EdgeError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let endpoint = catalog
        .endpoint(endpoint_id)
        .await?
        .ok_or_else(|| EdgeError::not_found(format!("no origin endpoint {endpoint_id:?}")))?;
    *reached = Some(endpoint.clone());
    access::check(app, &endpoint, viewer).await?;
    if let Some(cmaf) = &endpoint.cmaf_package {
        return fmp4::serve_cmaf(app, &endpoint, cmaf, dir, file).await;
    }
    if let Some(dash) = &endpoint.dash_package {
        if dir.is_some() {
            return Err(EdgeError::not_found(format!(
                "no such file under DASH endpoint {endpoint_id:?}"
            )));
        }
        return fmp4::serve_dash(app, &endpoint, dash, file).await;
    }
    let package = endpoint
        .hls_package
        .clone()
        .ok_or_else(|| EdgeError::not_found(format!("origin endpoint {endpoint_id:?} has no package")))?;
    if dir.is_some() {
        return Err(EdgeError::not_found(format!(
            "no such file under HLS endpoint {endpoint_id:?}"
        )));
    }
    let request = parse_file(&endpoint.manifest_name, file).ok_or_else(|| {
        EdgeError::not_found(format!(
            "{file:?} is not a file of endpoint {endpoint_id:?}; its manifest is {}.m3u8",
            endpoint.manifest_name
        ))
    })?;
    let docs = catalog.stream_docs(&endpoint.channel_id).await?;
    let rendition_of = |id: &str| {
        docs.renditions
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| EdgeError::not_found(format!("channel {:?} has no rendition {id:?}", endpoint.channel_id)))
    };
    match request {
        PlaybackRequest::Multivariant => {
            let renditions = fmp4::select(docs.ordered_renditions(), package.stream_selection.as_ref());
            if renditions.is_empty() {
                return Err(EdgeError::not_found(format!(
                    "channel {:?} has not received any segments yet; start the encoder",
                    endpoint.channel_id
                )));
            }
            let variants: Vec<Variant> = renditions
                .into_iter()
                .map(|r| Variant {
                    rendition: r,
                    uri: format!("{}_{}.m3u8", endpoint.manifest_name, r.id),
                    codecs: None,
                    audio_group: None,
                })
                .collect();
            let max_input = variants
                .iter()
                .map(|v| v.rendition.target())
                .max()
                .unwrap_or_default();
            let k = hls::group_size(package.segment_duration_seconds, max_input);
            let max_age = playlist_max_age(max_input, k);
            let iframe_variants: Vec<Variant> = variants
                .iter()
                .filter(|v| package.include_iframe_only_stream && v.rendition.iframe_bandwidth() > 0)
                .map(|v| Variant {
                    rendition: v.rendition,
                    uri: format!("{}_{}_iframes.m3u8", endpoint.manifest_name, v.rendition.id),
                    codecs: None,
                    audio_group: None,
                })
                .collect();
            let body = if iframe_variants.is_empty() {
                hls::multivariant_playlist(&variants)
            } else {
                hls::multivariant_with_iframes(&variants, &iframe_variants)
            };
            Ok(playlist_response(body, max_age, None))
        }
        PlaybackRequest::Media { rendition } => {
            let rendition = rendition_of(&rendition)?;
            media_playlist(app, &endpoint, &package, rendition).await
        }
        PlaybackRequest::IFrames { rendition } => {
            if !package.include_iframe_only_stream {
                return Err(EdgeError::not_found(format!(
                    "endpoint {endpoint_id:?} has no I-frame playlists; set hlsPackage.includeIframeOnlyStream"
                )));
            }
            let rendition = rendition_of(&rendition)?;
            let k = hls::group_size(package.segment_duration_seconds, rendition.target());
            let window = live_window(app, &endpoint.channel_id, rendition, k, package.playlist_window_seconds).await?;
            let name = |s: &OutputSegment| format!("{}_{}_{}.ts", endpoint.manifest_name, rendition.id, s.start.0);
            let body = hls::iframe_playlist(&window, hls::target_duration(&window, rendition, k), name);
            let max_age = playlist_max_age(rendition.target(), k);
            Ok(with_last_updated(
                playlist_response(body, max_age, window.last().map(|s| s.sequence)),
                Some(rendition.updated_at),
            ))
        }
        PlaybackRequest::Segment { rendition, start } => {
            let rendition = rendition_of(&rendition)?;
            segment(app, &endpoint, &package, rendition, start).await
        }
    }
}

/// Half an output segment duration, at least one second (spec §6.7).
fn playlist_max_age(input: Ticks, k: u64) -> u64 {
    ((input.as_secs_f64() * k as f64) / 2.0).floor().max(1.0) as u64
}

fn playlist_response(body: String, max_age: u64, last_sequence: Option<u64>) -> Response {
    let mut response = (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HLS_TYPE.to_owned()),
            (header::CACHE_CONTROL, format!("max-age={max_age}")),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_owned()),
        ],
        body,
    )
        .into_response();
    if let Some(seq) = last_sequence {
        response.headers_mut().insert(
            HeaderName::from_static("x-mediapackage-manifest-last-sequence"),
            HeaderValue::from(seq),
        );
    }
    response
}

async fn media_playlist(
    app: &App,
    endpoint: &OriginEndpoint,
    package: &HlsPackage,
    rendition: &Rendition,
) -> Result<Response, EdgeError> {
    let k = hls::group_size(package.segment_duration_seconds, rendition.target());
    let end_list = live_or_ended(app, rendition, k)?;
    let window = live_window(app, &endpoint.channel_id, rendition, k, package.playlist_window_seconds).await?;
    let target = hls::target_duration(&window, rendition, k);
    let name = |s: &OutputSegment| format!("{}_{}_{}.ts", endpoint.manifest_name, rendition.id, s.start.0);
    let settings = hls::PlaylistSettings {
        end_list,
        ..package.into()
    };
    let body = hls::media_playlist(&window, &settings, target, name);
    let max_age = playlist_max_age(rendition.target(), k);
    Ok(with_last_updated(
        playlist_response(body, max_age, window.last().map(|s| s.sequence)),
        Some(rendition.updated_at),
    ))
}

/// Whether a rendition's media playlist ends (`#EXT-X-ENDLIST`): true once the encoder
/// ended the stream. A live rendition whose inputs have stopped delivering is a 404 with
/// a short cache rather than a stale 200, so CDNs and players fail over (issue: stale
/// manifests served with 200 are a top complaint about live origins).
pub(crate) fn live_or_ended(app: &App, rendition: &Rendition, k: u64) -> Result<bool, EdgeError> {
    let now = crate::time::UnixMillis::now();
    if rendition.is_ended(now) {
        return Ok(true);
    }
    let durations = app.config.stale_after_target_durations;
    if rendition.is_stale(now, durations.saturating_mul(k as u32)) {
        return Err(EdgeError::not_found(format!(
            "rendition {:?} is stale: no input has delivered a segment for {} target durations; \
             the encoder may have stopped",
            rendition.id, durations
        )));
    }
    Ok(false)
}

/// The output segments of a rendition's live window (oldest first); 404 when empty.
pub(crate) async fn live_window(
    app: &App,
    channel: &str,
    rendition: &Rendition,
    k: u64,
    window_seconds: u32,
) -> Result<Vec<OutputSegment>, EdgeError> {
    let input_secs = rendition.target().as_secs_f64().max(0.5);
    let wanted = (f64::from(window_seconds) / input_secs).ceil() as usize + 2 * k as usize + 2;
    let partition = SegmentRecord::partition_of(channel, &rendition.id);
    let records = published_segments(app, &partition, wanted.min(20_000)).await?;
    let grouped = hls::group_segments(&records, k);
    let window = hls::live_window(&grouped, Ticks::from_secs(u64::from(window_seconds)));
    if window.is_empty() {
        return Err(EdgeError::not_found(format!(
            "rendition {:?} has no complete output segment yet",
            rendition.id
        )));
    }
    Ok(window.to_vec())
}

/// The newest `limit` published records of a partition, oldest first. When some are
/// unpublished, runs the publish step first: their own upload's publish may have failed
/// (the upload was answered 2xx once its record was durable), or a hole's horizon passed
/// with no upload after it.
async fn published_segments(app: &App, partition: &str, limit: usize) -> Result<Vec<SegmentRecord>, EdgeError> {
    let index = app.stores.index.as_ref();
    let mut records = index.latest_segments(partition, limit).await?;
    if records.iter().any(|r| !r.published) {
        crate::publish::advance(index, partition, UnixMillis::now()).await?;
        records = index.latest_segments(partition, limit).await?;
    }
    records.retain(|r| r.published);
    Ok(records)
}

/// The input records and stored bytes of the output segment starting at `start`.
pub(crate) async fn segment_group(
    app: &App,
    channel: &str,
    rendition: &Rendition,
    k: u64,
    start: Ticks,
) -> Result<(OutputSegment, Vec<(SegmentRecord, Bytes)>), EdgeError> {
    let partition = SegmentRecord::partition_of(channel, &rendition.id);
    let mut records = app.stores.index.segments_from(&partition, start, k as usize).await?;
    records.retain(|r| r.published);
    let group = hls::group_segments(&records, k);
    let Some(first) = group.into_iter().next().filter(|g| g.start == start) else {
        return Err(EdgeError::not_found(format!(
            "no segment starting at {} in rendition {:?} (it may have left the window or not exist yet)",
            start.0, rendition.id
        )));
    };
    let fetched = futures_util::future::join_all(records.iter().map(|r| app.stores.objects.get(&r.object_key))).await;
    let mut out = Vec::with_capacity(records.len());
    for (record, bytes) in records.into_iter().zip(fetched) {
        let bytes: Bytes = bytes?.ok_or_else(|| {
            tracing::error!(key = %record.object_key, "indexed segment has no stored bytes");
            EdgeError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "segment bytes are not available; retry",
            )
        })?;
        out.push((record, bytes));
    }
    Ok((first, out))
}

async fn segment(
    app: &App,
    endpoint: &OriginEndpoint,
    package: &HlsPackage,
    rendition: &Rendition,
    start: Ticks,
) -> Result<Response, EdgeError> {
    let k = hls::group_size(package.segment_duration_seconds, rendition.target());
    let (_, inputs) = segment_group(app, &endpoint.channel_id, rendition, k, start).await?;
    let active = active_input(inputs.iter().map(|(record, _)| record));
    // The input segments go out one after the other as they were stored: never joined
    // into a second copy of the output segment.
    let mut response = chunked_segment("video/mp2t", inputs.into_iter().map(|(_, bytes)| bytes));
    response.headers_mut().insert(ACTIVE_INPUT, active);
    Ok(response)
}

/// Which ingest endpoint delivered a segment's inputs (MediaPackage's `ActiveInput`).
pub(crate) const ACTIVE_INPUT: HeaderName = HeaderName::from_static("x-sluice-active-input");

/// The ingest endpoints of `records`, in order, without repeats, comma-separated.
pub(crate) fn active_input<'a>(records: impl Iterator<Item = &'a SegmentRecord>) -> HeaderValue {
    let mut ids: Vec<&str> = Vec::new();
    for record in records {
        if !ids.contains(&record.ingest_endpoint.as_str()) {
            ids.push(&record.ingest_endpoint);
        }
    }
    HeaderValue::from_str(&ids.join(",")).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// A segment response that streams `parts` in order without joining them, with its
/// `Content-Length` (a streamed body does not carry one).
pub(crate) fn chunked_segment(content_type: &'static str, parts: impl IntoIterator<Item = Bytes>) -> Response {
    let parts: Vec<Result<Bytes, std::convert::Infallible>> = parts.into_iter().map(Ok).collect();
    let length: usize = parts.iter().flatten().map(Bytes::len).sum();
    let mut response = segment_response(
        content_type,
        axum::body::Body::from_stream(futures_util::stream::iter(parts)),
    );
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// A segment: immutable once listed, cached for the longest startover window.
pub(crate) fn segment_response(content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CACHE_CONTROL, format!("max-age={SEGMENT_MAX_AGE}")),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".to_owned()),
            (header::ACCEPT_RANGES, "bytes".to_owned()),
        ],
        body.into(),
    )
        .into_response()
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
                start: Ticks(900_000)
            })
        );
        assert_eq!(parse_file("index", "other.m3u8"), None);
        assert_eq!(parse_file("index", "index_.m3u8"), None);
        assert_eq!(parse_file("index", "index_360p_x.ts"), None);
    }
}
