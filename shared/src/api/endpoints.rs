//! Origin endpoint operations and the `hlsPackage` validation.

use super::channels::find_channel;
use super::*;

/// The origin endpoint's ARN (MediaPackage v1 shape).
pub fn endpoint_arn(config: &Config, endpoint: &OriginEndpoint) -> String {
    endpoint.arn(&config.region, &config.account_id)
}

/// The `OriginEndpoint` wire shape.
pub fn endpoint_json(config: &Config, endpoint: &OriginEndpoint) -> Value {
    let mut v = json!({
        "arn": endpoint_arn(config, endpoint),
        "id": endpoint.id,
        "channelId": endpoint.channel_id,
        "createdAt": endpoint.created_at.to_iso8601(),
        "manifestName": endpoint.manifest_name,
        "startoverWindowSeconds": 0,
        "timeDelaySeconds": 0,
        "tags": endpoint.tags,
        "url": endpoint_url(config, endpoint),
    });
    if let Some(d) = &endpoint.description {
        v["description"] = json!(d);
    }
    super::access::access_json(endpoint, &mut v);
    match &endpoint.package {
        Package::Hls(hls) => {
            v["hlsPackage"] = json!({
                "segmentDurationSeconds": hls.segment_duration_seconds,
                "playlistWindowSeconds": hls.playlist_window_seconds,
                "programDateTimeIntervalSeconds": hls.program_date_time_interval_seconds,
                "playlistType": hls.playlist_type,
                "adMarkers": "NONE",
                "includeIframeOnlyStream": hls.include_iframe_only_stream,
                "includeDvbSubtitles": false,
                "useAudioRenditionGroup": hls.use_audio_rendition_group,
            });
            if let Some(selection) = &hls.stream_selection {
                v["hlsPackage"]["streamSelection"] = json!(selection);
            }
            packages::echo_ad_selection(&mut v["hlsPackage"], &hls.ad_selection);
            if let Some(encryption) = &hls.encryption {
                v["hlsPackage"]["encryption"] = json!(encryption);
            }
        }
        Package::Cmaf(cmaf) => v["cmafPackage"] = packages::cmaf_json(&config.playback_base_url, &endpoint.id, cmaf),
        Package::Dash(dash) => v["dashPackage"] = packages::dash_json(dash),
    }
    v
}

/// The endpoint's playback URL: its manifest (for CMAF, the first HLS manifest's).
fn endpoint_url(config: &Config, endpoint: &OriginEndpoint) -> String {
    let base = format!("{}/out/v1/{}", config.playback_base_url, endpoint.id);
    match &endpoint.package {
        Package::Dash(_) => format!("{base}/{}.mpd", endpoint.manifest_name),
        Package::Cmaf(cmaf) => match cmaf.hls_manifests.first() {
            Some(first) => format!("{base}/{}/{}.m3u8", first.id, first.manifest_name),
            None => format!("{base}/{}.m3u8", endpoint.manifest_name),
        },
        Package::Hls(_) => format!("{base}/{}.m3u8", endpoint.manifest_name),
    }
}

/// The package objects of a create or update request, validated; `None` when the
/// request names no package. At most one package per endpoint.
fn package_of(map: &Map<String, Value>, previous: Option<&OriginEndpoint>) -> Result<Option<Package>> {
    let object = |key: &str| -> Result<Option<Map<String, Value>>> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o.clone())),
            Some(_) => Err(ControlError::Unprocessable(format!("{key} must be an object"))),
        }
    };
    let (hls, cmaf, dash) = (object("hlsPackage")?, object("cmafPackage")?, object("dashPackage")?);
    let given = [hls.is_some(), cmaf.is_some(), dash.is_some()]
        .iter()
        .filter(|&&b| b)
        .count();
    if given > 1 {
        return Err(ControlError::Unprocessable(
            "an origin endpoint has one package: give only one of hlsPackage, cmafPackage, dashPackage".into(),
        ));
    }
    let previous_dash = match previous.map(|e| &e.package) {
        Some(Package::Dash(dash)) => Some(dash),
        _ => None,
    };
    Ok(match (hls, cmaf, dash) {
        (Some(hls), _, _) => Some(Package::Hls(hls_package(hls)?)),
        (_, Some(cmaf), _) => Some(Package::Cmaf(packages::cmaf_package(cmaf)?)),
        (_, _, Some(dash)) => Some(Package::Dash(packages::dash_package(dash, previous_dash)?)),
        (None, None, None) => None,
    })
}

pub(super) async fn all_endpoints(app: &ControlServices) -> Result<Vec<OriginEndpoint>> {
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

pub(super) async fn list_endpoints(
    State(app): State<ControlServices>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>> {
    let limit = page_size(q.max_results)?;
    let pages = Pages::new(&app, "originEndpoints").await?;
    let after = pages.decode(q.next_token.as_deref())?;
    let matching: Vec<OriginEndpoint> = all_endpoints(&app)
        .await?
        .into_iter()
        .filter(|e| q.channel_id.as_ref().is_none_or(|c| &e.channel_id == c))
        .filter(|e| after.as_ref().is_none_or(|a| &e.id > a))
        .take(limit + 1)
        .collect();
    let render = |e: &OriginEndpoint| (e.id.clone(), endpoint_json(&app.config, e));
    Ok(Json(pages.page_json("originEndpoints", &matching, limit, render)))
}

/// What DescribeOriginEndpoint returns when time-shift is off: accepted, as every other
/// value is refused until startover windows and time delay exist.
fn neutral_time_shift() -> [(&'static str, Value); 2] {
    [("startoverWindowSeconds", json!(0)), ("timeDelaySeconds", json!(0))]
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateEndpointRequest {
    id: Option<String>,
    channel_id: Option<String>,
    description: Option<String>,
    manifest_name: Option<String>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

/// Validates an `hlsPackage` request object.
pub(super) fn hls_package(map: Map<String, Value>) -> Result<HlsPackage> {
    refuse_unsupported(
        &map,
        "hlsPackage.",
        &[
            "segmentDurationSeconds",
            "playlistWindowSeconds",
            "programDateTimeIntervalSeconds",
            "playlistType",
            "streamSelection",
            "includeIframeOnlyStream",
            "adTriggers",
            "adsOnDeliveryRestrictions",
            "useAudioRenditionGroup",
            "encryption",
        ],
        &[("adMarkers", json!("NONE")), ("includeDvbSubtitles", json!(false))],
    )?;
    let selection = packages::hls_stream_selection(&map)?;
    let mut map = map;
    map.remove("streamSelection");
    let encryption = map.remove("encryption").filter(|v| !v.is_null());
    let ad_selection = packages::take_ad_selection("hlsPackage.", &mut map)?;
    let mut hls: HlsPackage = parse("hlsPackage", map)?;
    hls.stream_selection = selection;
    hls.ad_selection = ad_selection;
    hls.encryption = encryption
        .map(|e| super::encryption::hls_encryption(&e, hls.include_iframe_only_stream))
        .transpose()?;
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

pub(super) async fn create_endpoint(
    State(app): State<ControlServices>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let map = body_object(&body)?;
    refuse_unsupported(
        &map,
        "",
        &[
            "id",
            "channelId",
            "description",
            "manifestName",
            "hlsPackage",
            "cmafPackage",
            "dashPackage",
            "tags",
            "authorization",
            "whitelist",
            "origination",
        ],
        &neutral_time_shift(),
    )?;
    let package = package_of(&map, None)?;
    let access = super::access::access(&map, super::access::Access::none())?;
    let mut map = map;
    for key in [
        "hlsPackage",
        "cmafPackage",
        "dashPackage",
        "authorization",
        "whitelist",
        "origination",
    ] {
        map.remove(key);
    }
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
    let package = package.ok_or_else(|| {
        ControlError::Unprocessable("an endpoint needs a package: hlsPackage, cmafPackage or dashPackage".into())
    })?;
    let endpoint = OriginEndpoint {
        id: id.clone(),
        guid: random_hex(),
        channel_id: channel_id.clone(),
        created_at: UnixMillis::now(),
        description: req.description,
        manifest_name,
        package,
        tags: req.tags,
        authorization: access.authorization,
        whitelist: access.whitelist,
        origination: access.origination,
    };
    if let Err(e) = find_channel(&app, &channel_id).await {
        return Err(match e {
            ControlError::NotFound(_) => {
                ControlError::Unprocessable(format!("channelId {channel_id:?} does not exist"))
            }
            other => other,
        });
    }
    check_tags(&endpoint.tags)?;
    let siblings = all_endpoints(&app)
        .await?
        .into_iter()
        .filter(|e| e.channel_id == channel_id)
        .count();
    if siblings >= app.config.max_endpoints_per_channel {
        return Err(ControlError::TooManyRequests(format!(
            "Too many requests, please try again. Resource limit exceeded: at most {} origin endpoints per channel",
            app.config.max_endpoints_per_channel
        )));
    }
    create_unique(&app, ENDPOINTS, &id, &endpoint, "origin endpoint").await?;
    remember_arn(&app, &endpoint_arn(&app.config, &endpoint), ENDPOINTS, &id).await?;
    tracing::info!(endpoint = %id, channel = %channel_id, "origin endpoint created");
    Ok(Json(endpoint_json(&app.config, &endpoint)))
}

pub(super) async fn find_endpoint(app: &ControlServices, id: &str) -> Result<OriginEndpoint> {
    Catalog(app.stores.index.as_ref())
        .endpoint(id)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("origin endpoint {id:?} does not exist")))
}

pub(super) async fn describe_endpoint(
    State(app): State<ControlServices>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    Ok(Json(endpoint_json(&app.config, &find_endpoint(&app, &id).await?)))
}

pub(super) async fn delete_endpoint(State(app): State<ControlServices>, Path(id): Path<String>) -> Result<Response> {
    let endpoint = find_endpoint(&app, &id).await?;
    app.stores.index.delete_doc(ENDPOINTS, &id).await?;
    forget_arn(&app, &endpoint_arn(&app.config, &endpoint)).await?;
    tracing::info!(endpoint = %id, "origin endpoint deleted");
    Ok(StatusCode::ACCEPTED.into_response())
}

/// UpdateOriginEndpoint: omitted fields keep their value; a supplied `hlsPackage`
/// replaces the previous one wholesale. Playback reads the endpoint on every request, so
/// the next manifest already follows the change.
pub(super) async fn update_endpoint(
    State(app): State<ControlServices>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let map = body_object(&body)?;
    refuse_unsupported(
        &map,
        "",
        &[
            "description",
            "manifestName",
            "hlsPackage",
            "cmafPackage",
            "dashPackage",
            "authorization",
            "whitelist",
            "origination",
        ],
        &neutral_time_shift(),
    )?;
    let mut endpoint = find_endpoint(&app, &id).await?;
    let access = super::access::access(&map, super::access::Access::of(&endpoint))?;
    endpoint.authorization = access.authorization;
    endpoint.whitelist = access.whitelist;
    endpoint.origination = access.origination;
    if let Some(description) = map.get("description") {
        endpoint.description = description.as_str().map(str::to_owned);
    }
    if let Some(Value::String(name)) = map.get("manifestName") {
        check_id("manifestName", name)?;
        endpoint.manifest_name = name.clone();
    }
    if let Some(package) = package_of(&map, Some(&endpoint))? {
        endpoint.package = package;
    }
    replace_existing(&app, ENDPOINTS, &id, &endpoint, "origin endpoint").await?;
    tracing::info!(endpoint = %id, "origin endpoint updated");
    Ok(Json(endpoint_json(&app.config, &endpoint)))
}
