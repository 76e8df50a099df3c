//! Playback: `/out/v1/{endpoint}/{file}` → a manifest built from the index, or segment
//! bytes from the object store.
//!
//! One file per package kind: [`hls_ts`], [`cmaf`], [`dash`] (with [`segments`] for the
//! fMP4 segments both repackage, [`select`] for stream selection and track names);
//! [`window`] reads the published segments, [`reply`] shapes answers, [`access`] checks
//! who may watch, [`range`] serves byte ranges.

mod access;
mod cmaf;
mod dash;
mod hls_ts;
mod range;
mod reply;
mod segments;
mod select;
mod window;

pub use hls_ts::{parse_file, PlaybackRequest};
pub(crate) use reply::REQUEST_ID;
pub use reply::SEGMENT_MAX_AGE;
pub use select::{parse_segment_file, SegmentFile, TrackRef};

use crate::catalog::Catalog;
use crate::http::{EdgeError, RequestInfo};
use crate::model::OriginEndpoint;
use crate::App;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use reply::*;

/// The playback routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/out/v1/utc", get(dash::utc_time).head(dash::utc_time))
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
        return cmaf::serve_cmaf(app, &endpoint, cmaf, dir, file).await;
    }
    if let Some(dash) = &endpoint.dash_package {
        if dir.is_some() {
            return Err(EdgeError::not_found(format!(
                "no such file under DASH endpoint {endpoint_id:?}"
            )));
        }
        return dash::serve_dash(app, &endpoint, dash, file).await;
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
    hls_ts::serve_hls(app, &endpoint, &package, file).await
}
