//! Control plane: the MediaPackage classic REST API (restJson1, camelCase keys), so
//! `boto3.client("mediapackage", endpoint_url=...)` and `aws mediapackage --endpoint-url`
//! work unchanged. This is the first subset: channels and HLS origin endpoints. Every
//! setting Sluice does not implement yet is refused with 422 naming the field, never
//! silently ignored.

use crate::catalog::{Catalog, CHANNELS, ENDPOINTS};
use crate::config::Config;
use crate::http::ControlError;
use crate::model::{Channel, HlsPackage, IngestEndpoint, OriginEndpoint, PlaylistType};
use crate::store::{Condition, StoreError};
use crate::time::UnixMillis;
use crate::App;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The control routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/channels", get(list_channels).post(create_channel))
        .route(
            "/channels/{id}",
            get(describe_channel).delete(delete_channel).put(not_yet),
        )
        .route("/channels/{id}/{*rest}", axum::routing::any(not_yet))
        .route("/origin_endpoints", get(list_endpoints).post(create_endpoint))
        .route(
            "/origin_endpoints/{id}",
            get(describe_endpoint).delete(delete_endpoint).put(not_yet),
        )
        .route("/harvest_jobs", axum::routing::any(not_yet))
        .route("/harvest_jobs/{*rest}", axum::routing::any(not_yet))
        .route("/tags/{*rest}", axum::routing::any(not_yet))
        .with_state(app)
}

async fn not_yet(uri: axum::http::Uri, method: axum::http::Method) -> ControlError {
    ControlError::Unprocessable(format!("{method} {} is not implemented by Sluice yet", uri.path()))
}

type Result<T> = std::result::Result<T, ControlError>;

fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Ids: letters, digits, `_` and `-`, 1–256 characters (MediaPackage's rule).
fn check_id(what: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty() && id.len() <= 256 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ControlError::Unprocessable(format!(
            "{what} {id:?} is invalid: use 1 to 256 letters, digits, underscores or hyphens"
        )))
    }
}

fn body_object(body: &[u8]) -> Result<Map<String, Value>> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ControlError::Unprocessable("request body must be a JSON object".into())),
        Err(e) => Err(ControlError::Unprocessable(format!(
            "request body is not valid JSON: {e}"
        ))),
    }
}

/// Refuses keys Sluice does not implement yet, unless they carry the no-op value.
fn refuse_unsupported(map: &Map<String, Value>, path: &str, supported: &[&str], noop: &[(&str, Value)]) -> Result<()> {
    for (key, value) in map {
        if supported.contains(&key.as_str()) || value.is_null() {
            continue;
        }
        if noop.iter().any(|(k, v)| k == key && v == value) {
            continue;
        }
        return Err(ControlError::Unprocessable(format!(
            "{path}{key} is not supported by Sluice yet"
        )));
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, map: Map<String, Value>) -> Result<T> {
    serde_json::from_value(Value::Object(map)).map_err(|e| ControlError::Unprocessable(format!("{what}: {e}")))
}

fn channel_arn(config: &Config, channel: &Channel) -> String {
    format!(
        "arn:aws:mediapackage:{}:{}:channels/{}",
        config.region, config.account_id, channel.guid
    )
}

fn endpoint_arn(config: &Config, endpoint: &OriginEndpoint) -> String {
    format!(
        "arn:aws:mediapackage:{}:{}:origin_endpoints/{}",
        config.region, config.account_id, endpoint.guid
    )
}

/// The `Channel` wire shape.
pub fn channel_json(config: &Config, channel: &Channel) -> Value {
    let ingest: Vec<Value> = channel
        .ingest_endpoints
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "username": e.username,
                "password": e.password,
                "url": format!("{}/in/v2/{}/{}/channel", config.ingest_base_url, channel.id, e.id),
            })
        })
        .collect();
    let mut v = json!({
        "arn": channel_arn(config, channel),
        "id": channel.id,
        "createdAt": channel.created_at.to_iso8601(),
        "hlsIngest": { "ingestEndpoints": ingest },
        "tags": channel.tags,
    });
    if let Some(d) = &channel.description {
        v["description"] = json!(d);
    }
    v
}

/// The `OriginEndpoint` wire shape.
pub fn endpoint_json(config: &Config, endpoint: &OriginEndpoint) -> Value {
    let mut v = json!({
        "arn": endpoint_arn(config, endpoint),
        "id": endpoint.id,
        "channelId": endpoint.channel_id,
        "createdAt": endpoint.created_at.to_iso8601(),
        "manifestName": endpoint.manifest_name,
        "origination": "ALLOW",
        "startoverWindowSeconds": 0,
        "timeDelaySeconds": 0,
        "whitelist": [],
        "tags": endpoint.tags,
        "url": format!("{}/out/v1/{}/{}.m3u8", config.playback_base_url, endpoint.id, endpoint.manifest_name),
    });
    if let Some(d) = &endpoint.description {
        v["description"] = json!(d);
    }
    if let Some(hls) = &endpoint.hls_package {
        v["hlsPackage"] = json!({
            "segmentDurationSeconds": hls.segment_duration_seconds,
            "playlistWindowSeconds": hls.playlist_window_seconds,
            "programDateTimeIntervalSeconds": hls.program_date_time_interval_seconds,
            "playlistType": hls.playlist_type,
            "adMarkers": "NONE",
            "includeIframeOnlyStream": false,
            "useAudioRenditionGroup": false,
        });
    }
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateChannelRequest {
    id: Option<String>,
    description: Option<String>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

async fn create_channel(State(app): State<App>, body: axum::body::Bytes) -> Result<Json<Value>> {
    let map = body_object(&body)?;
    refuse_unsupported(&map, "", &["id", "description", "tags"], &[])?;
    let req: CreateChannelRequest = parse("CreateChannel", map)?;
    let id = req
        .id
        .ok_or_else(|| ControlError::Unprocessable("id is required".into()))?;
    check_id("channel id", &id)?;
    let guid = random_hex();
    let channel = Channel {
        id: id.clone(),
        guid: guid.clone(),
        created_at: UnixMillis::now(),
        description: req.description,
        tags: req.tags,
        ingest_endpoints: vec![
            IngestEndpoint {
                id: guid,
                username: random_hex(),
                password: random_hex(),
            },
            IngestEndpoint {
                id: random_hex(),
                username: random_hex(),
                password: random_hex(),
            },
        ],
    };
    create_unique(&app, CHANNELS, &id, &channel, "channel").await?;
    tracing::info!(channel = %id, "channel created");
    Ok(Json(channel_json(&app.config, &channel)))
}

async fn find_channel(app: &App, id: &str) -> Result<Channel> {
    Catalog(app.stores.index.as_ref())
        .channel(id)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("channel {id:?} does not exist")))
}

async fn describe_channel(State(app): State<App>, Path(id): Path<String>) -> Result<Json<Value>> {
    Ok(Json(channel_json(&app.config, &find_channel(&app, &id).await?)))
}

async fn delete_channel(State(app): State<App>, Path(id): Path<String>) -> Result<Response> {
    find_channel(&app, &id).await?;
    let endpoints = all_endpoints(&app).await?;
    if let Some(e) = endpoints.iter().find(|e| e.channel_id == id) {
        return Err(ControlError::Unprocessable(format!(
            "channel {id:?} still has origin endpoint {:?}; delete its endpoints first",
            e.id
        )));
    }
    app.stores.index.delete_doc(CHANNELS, &id).await?;
    tracing::info!(channel = %id, "channel deleted");
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    max_results: Option<usize>,
    next_token: Option<String>,
    channel_id: Option<String>,
}

fn decode_token(token: Option<&str>) -> Result<Option<String>> {
    let Some(token) = token else { return Ok(None) };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(Some)
        .ok_or_else(|| ControlError::Unprocessable("nextToken is not a token returned by this API".into()))
}

fn encode_token(last: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last)
}

/// A list response: the first `limit` of `items` (fetched with one extra to know whether
/// more follow) under `key`, and a `nextToken` naming the last id when more follow.
fn page_json<T>(key: &str, items: &[T], limit: usize, render: impl Fn(&T) -> (String, Value)) -> Value {
    let rendered: Vec<(String, Value)> = items.iter().take(limit).map(render).collect();
    let mut v = json!({ key: rendered.iter().map(|(_, json)| json).collect::<Vec<_>>() });
    if items.len() > limit {
        if let Some((last, _)) = rendered.last() {
            v["nextToken"] = json!(encode_token(last));
        }
    }
    v
}

/// Writes a new catalog document; an existing id is a clear 422.
async fn create_unique<T: serde::Serialize>(app: &App, pk: &str, id: &str, value: &T, what: &str) -> Result<()> {
    match Catalog(app.stores.index.as_ref())
        .put(pk, id, value, Condition::IfAbsent)
        .await
    {
        Err(StoreError::ConditionFailed) => Err(ControlError::Unprocessable(format!(
            "{what} {id:?} already exists; choose another id"
        ))),
        other => Ok(other?),
    }
}

fn page_size(max_results: Option<usize>) -> Result<usize> {
    match max_results {
        None => Ok(1000),
        Some(n @ 1..=1000) => Ok(n),
        Some(n) => Err(ControlError::Unprocessable(format!(
            "maxResults {n} must be between 1 and 1000"
        ))),
    }
}

async fn list_channels(State(app): State<App>, Query(q): Query<ListQuery>) -> Result<Json<Value>> {
    let limit = page_size(q.max_results)?;
    let after = decode_token(q.next_token.as_deref())?;
    let page: Vec<Channel> = Catalog(app.stores.index.as_ref())
        .list(CHANNELS, after.as_deref(), limit + 1)
        .await?;
    let render = |c: &Channel| (c.id.clone(), channel_json(&app.config, c));
    Ok(Json(page_json("channels", &page, limit, render)))
}

async fn all_endpoints(app: &App) -> Result<Vec<OriginEndpoint>> {
    let catalog = Catalog(app.stores.index.as_ref());
    let mut out: Vec<OriginEndpoint> = Vec::new();
    loop {
        let page: Vec<OriginEndpoint> = catalog.list(ENDPOINTS, out.last().map(|e| e.id.as_str()), 1000).await?;
        let done = page.len() < 1000;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

async fn list_endpoints(State(app): State<App>, Query(q): Query<ListQuery>) -> Result<Json<Value>> {
    let limit = page_size(q.max_results)?;
    let after = decode_token(q.next_token.as_deref())?;
    let matching: Vec<OriginEndpoint> = all_endpoints(&app)
        .await?
        .into_iter()
        .filter(|e| q.channel_id.as_ref().is_none_or(|c| &e.channel_id == c))
        .filter(|e| after.as_ref().is_none_or(|a| &e.id > a))
        .take(limit + 1)
        .collect();
    let render = |e: &OriginEndpoint| (e.id.clone(), endpoint_json(&app.config, e));
    Ok(Json(page_json("originEndpoints", &matching, limit, render)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateEndpointRequest {
    id: Option<String>,
    channel_id: Option<String>,
    description: Option<String>,
    manifest_name: Option<String>,
    hls_package: Option<Map<String, Value>>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

/// Validates an `hlsPackage` request object.
fn hls_package(map: Map<String, Value>) -> Result<HlsPackage> {
    refuse_unsupported(
        &map,
        "hlsPackage.",
        &[
            "segmentDurationSeconds",
            "playlistWindowSeconds",
            "programDateTimeIntervalSeconds",
            "playlistType",
        ],
        &[
            ("adMarkers", json!("NONE")),
            ("adsOnDeliveryRestrictions", json!("NONE")),
            ("adTriggers", json!([])),
            ("includeIframeOnlyStream", json!(false)),
            ("includeDvbSubtitles", json!(false)),
            ("useAudioRenditionGroup", json!(false)),
        ],
    )?;
    let hls: HlsPackage = parse("hlsPackage", map)?;
    if !(1..=30).contains(&hls.segment_duration_seconds) {
        return Err(ControlError::Unprocessable(format!(
            "hlsPackage.segmentDurationSeconds {} must be between 1 and 30",
            hls.segment_duration_seconds
        )));
    }
    if !(5..=86_400).contains(&hls.playlist_window_seconds) {
        return Err(ControlError::Unprocessable(format!(
            "hlsPackage.playlistWindowSeconds {} must be between 5 and 86400",
            hls.playlist_window_seconds
        )));
    }
    if hls.program_date_time_interval_seconds > 3600 {
        return Err(ControlError::Unprocessable(
            "hlsPackage.programDateTimeIntervalSeconds must be between 0 and 3600".into(),
        ));
    }
    if hls.playlist_type == PlaylistType::Vod {
        tracing::info!("playlistType VOD on a live endpoint: EXT-X-PLAYLIST-TYPE:VOD is written as configured");
    }
    Ok(hls)
}

async fn create_endpoint(State(app): State<App>, body: axum::body::Bytes) -> Result<Json<Value>> {
    let map = body_object(&body)?;
    refuse_unsupported(
        &map,
        "",
        &["id", "channelId", "description", "manifestName", "hlsPackage", "tags"],
        &[("origination", json!("ALLOW")), ("whitelist", json!([]))],
    )?;
    let req: CreateEndpointRequest = parse("CreateOriginEndpoint", map)?;
    let id = req
        .id
        .ok_or_else(|| ControlError::Unprocessable("id is required".into()))?;
    check_id("origin endpoint id", &id)?;
    let channel_id = req
        .channel_id
        .ok_or_else(|| ControlError::Unprocessable("channelId is required".into()))?;
    let manifest_name = req.manifest_name.unwrap_or_else(|| "index".into());
    check_id("manifestName", &manifest_name)?;
    let hls = req.hls_package.ok_or_else(|| {
        ControlError::Unprocessable("an endpoint needs a package; Sluice supports hlsPackage so far".into())
    })?;
    let endpoint = OriginEndpoint {
        id: id.clone(),
        guid: random_hex(),
        channel_id: channel_id.clone(),
        created_at: UnixMillis::now(),
        description: req.description,
        manifest_name,
        hls_package: Some(hls_package(hls)?),
        tags: req.tags,
    };
    if let Err(e) = find_channel(&app, &channel_id).await {
        return Err(match e {
            ControlError::NotFound(_) => {
                ControlError::Unprocessable(format!("channelId {channel_id:?} does not exist"))
            }
            other => other,
        });
    }
    create_unique(&app, ENDPOINTS, &id, &endpoint, "origin endpoint").await?;
    tracing::info!(endpoint = %id, channel = %channel_id, "origin endpoint created");
    Ok(Json(endpoint_json(&app.config, &endpoint)))
}

async fn find_endpoint(app: &App, id: &str) -> Result<OriginEndpoint> {
    Catalog(app.stores.index.as_ref())
        .endpoint(id)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("origin endpoint {id:?} does not exist")))
}

async fn describe_endpoint(State(app): State<App>, Path(id): Path<String>) -> Result<Json<Value>> {
    Ok(Json(endpoint_json(&app.config, &find_endpoint(&app, &id).await?)))
}

async fn delete_endpoint(State(app): State<App>, Path(id): Path<String>) -> Result<Response> {
    find_endpoint(&app, &id).await?;
    app.stores.index.delete_doc(ENDPOINTS, &id).await?;
    tracing::info!(endpoint = %id, "origin endpoint deleted");
    Ok(StatusCode::ACCEPTED.into_response())
}
