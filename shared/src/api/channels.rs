//! Channel operations: create, describe, list, delete (and, later, update, credential
//! rotation, logs).

use super::*;

/// The channel's ARN (MediaPackage v1 shape).
pub fn channel_arn(config: &Config, channel: &Channel) -> String {
    channel.arn(&config.region, &config.account_id)
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
    if let Some(group) = &channel.egress_log_group {
        v["egressAccessLogs"] = json!({ "logGroupName": group });
    }
    if let Some(group) = &channel.ingress_log_group {
        v["ingressAccessLogs"] = json!({ "logGroupName": group });
    }
    v
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CreateChannelRequest {
    id: Option<String>,
    description: Option<String>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

pub(super) async fn create_channel(State(app): State<ControlServices>, body: axum::body::Bytes) -> Result<Json<Value>> {
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
        // The first ingest endpoint's id is the channel GUID, as in MediaPackage.
        ingest_endpoints: vec![IngestEndpoint::generate(guid), IngestEndpoint::generate(random_hex())],
        egress_log_group: None,
        ingress_log_group: None,
    };
    check_tags(&channel.tags)?;
    let existing = Catalog(app.stores.index.as_ref())
        .list::<Channel>(CHANNELS, None, app.config.max_channels + 1)
        .await?;
    if existing.len() >= app.config.max_channels && !existing.iter().any(|c| c.id == id) {
        return Err(ControlError::TooManyRequests(format!(
            "Too many requests, please try again. Resource limit exceeded: at most {} channels",
            app.config.max_channels
        )));
    }
    create_unique(&app, CHANNELS, &id, &channel, "channel").await?;
    remember_arn(&app, &channel_arn(&app.config, &channel), CHANNELS, &id).await?;
    tracing::info!(channel = %id, "channel created");
    if let Some(alarms) = &app.alarms {
        // The channel exists either way; a missing alarm is reported, not fatal.
        if let Err(e) = alarms.put(&id).await {
            tracing::error!(channel = %id, error = %e, "could not create the channel's ingest-stalled alarm");
        }
    }
    Ok(Json(channel_json(&app.config, &channel)))
}

pub(super) async fn find_channel(app: &ControlServices, id: &str) -> Result<Channel> {
    Catalog(app.stores.index.as_ref())
        .channel(id)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("channel {id:?} does not exist")))
}

pub(super) async fn describe_channel(
    State(app): State<ControlServices>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    Ok(Json(channel_json(&app.config, &find_channel(&app, &id).await?)))
}

pub(super) async fn delete_channel(State(app): State<ControlServices>, Path(id): Path<String>) -> Result<Response> {
    let channel = find_channel(&app, &id).await?;
    let endpoints = all_endpoints(&app).await?;
    if let Some(e) = endpoints.iter().find(|e| e.channel_id == id) {
        return Err(ControlError::Unprocessable(format!(
            "channel {id:?} still has origin endpoint {:?}; delete its endpoints first",
            e.id
        )));
    }
    app.stores.index.delete_doc(CHANNELS, &id).await?;
    forget_arn(&app, &channel_arn(&app.config, &channel)).await?;
    tracing::info!(channel = %id, "channel deleted");
    if let Some(alarms) = &app.alarms {
        if let Err(e) = alarms.delete(&id).await {
            tracing::error!(channel = %id, error = %e, "could not delete the channel's ingest-stalled alarm");
        }
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

pub(super) async fn list_channels(
    State(app): State<ControlServices>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>> {
    let limit = page_size(q.max_results)?;
    let pages = Pages::new(&app, "channels").await?;
    let after = pages.decode(q.next_token.as_deref())?;
    let page: Vec<Channel> = Catalog(app.stores.index.as_ref())
        .list(CHANNELS, after.as_deref(), limit + 1)
        .await?;
    let render = |c: &Channel| (c.id.clone(), channel_json(&app.config, c));
    Ok(Json(pages.page_json("channels", &page, limit, render)))
}

/// Replaces a stored channel (it must still exist) and renders it.
async fn save(app: &ControlServices, channel: &Channel) -> Result<Json<Value>> {
    replace_existing(app, CHANNELS, &channel.id, channel, "channel").await?;
    Ok(Json(channel_json(&app.config, channel)))
}

/// UpdateChannel: only the description is mutable.
pub(super) async fn update_channel(
    State(app): State<ControlServices>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let map = body_object(&body)?;
    refuse_unsupported(&map, "", &["description"], &[])?;
    let mut channel = find_channel(&app, &id).await?;
    if let Some(description) = map.get("description") {
        channel.description = description.as_str().map(str::to_owned);
    }
    save(&app, &channel).await
}

/// RotateChannelCredentials (deprecated by AWS): new credentials for the first ingest endpoint.
pub(super) async fn rotate_channel_credentials(
    State(app): State<ControlServices>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let mut channel = find_channel(&app, &id).await?;
    if let Some(first) = channel.ingest_endpoints.first_mut() {
        *first = first.rotated();
    }
    tracing::info!(channel = %id, "ingest credentials rotated (first ingest endpoint)");
    save(&app, &channel).await
}

/// RotateIngestEndpointCredentials: new username and password for one ingest endpoint.
pub(super) async fn rotate_ingest_credentials(
    State(app): State<ControlServices>,
    Path((id, ingest_id)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let mut channel = find_channel(&app, &id).await?;
    let endpoint = channel
        .ingest_endpoints
        .iter_mut()
        .find(|e| e.id == ingest_id)
        .ok_or_else(|| ControlError::NotFound(format!("channel {id:?} has no ingest endpoint {ingest_id:?}")))?;
    *endpoint = endpoint.rotated();
    tracing::info!(channel = %id, ingest_endpoint = %ingest_id, "ingest credentials rotated");
    save(&app, &channel).await
}

/// ConfigureLogs: `{}` enables a log type with MediaPackage's default group; omitting it disables it.
pub(super) async fn configure_logs(
    State(app): State<ControlServices>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Value>> {
    let map = body_object(&body)?;
    refuse_unsupported(&map, "", &["egressAccessLogs", "ingressAccessLogs"], &[])?;
    let group = |key: &str, default: &str| -> Result<Option<String>> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(o)) => match o.get("logGroupName") {
                None | Some(Value::Null) => Ok(Some(default.to_owned())),
                Some(Value::String(name)) if name.starts_with("/aws/MediaPackage/") => Ok(Some(name.clone())),
                Some(other) => Err(ControlError::Unprocessable(format!(
                    "{key}.logGroupName {other} must start with /aws/MediaPackage/"
                ))),
            },
            Some(_) => Err(ControlError::Unprocessable(format!("{key} must be an object"))),
        }
    };
    let mut channel = find_channel(&app, &id).await?;
    channel.egress_log_group = group("egressAccessLogs", "/aws/MediaPackage/EgressAccessLogs")?;
    channel.ingress_log_group = group("ingressAccessLogs", "/aws/MediaPackage/IngressAccessLogs")?;
    save(&app, &channel).await
}
