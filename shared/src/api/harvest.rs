//! Harvest jobs (live-to-VOD): CreateHarvestJob, DescribeHarvestJob, ListHarvestJobs.
//!
//! The request is validated as MediaPackage does (required fields, time window of at most
//! 24 hours that has ended, an existing HLS endpoint) and the job is recorded, but Sluice
//! cannot run harvests yet: a created job is stored as FAILED and the response carries the
//! reason in `x-sluice-status-reason`; the same reason is logged.

use super::*;

use crate::store::keys::HARVEST_JOBS as JOBS;
/// What every job says until harvesting exists.
const CANNOT_RUN: &str =
    "Sluice cannot run harvest jobs yet (live-to-VOD is not implemented); the job was recorded as FAILED";

/// A stored harvest job.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct HarvestJob {
    id: String,
    channel_id: String,
    origin_endpoint_id: String,
    start_time: String,
    end_time: String,
    s3_destination: S3Destination,
    status: String,
    status_reason: String,
    created_at: UnixMillis,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct S3Destination {
    bucket_name: String,
    manifest_key: String,
    role_arn: String,
}

fn job_json(config: &Config, job: &HarvestJob) -> Value {
    json!({
        "arn": format!("arn:aws:mediapackage:{}:{}:harvest_jobs/{}", config.region, config.account_id, job.id),
        "id": job.id,
        "channelId": job.channel_id,
        "originEndpointId": job.origin_endpoint_id,
        "startTime": job.start_time,
        "endTime": job.end_time,
        "s3Destination": {
            "bucketName": job.s3_destination.bucket_name,
            "manifestKey": job.s3_destination.manifest_key,
            "roleArn": job.s3_destination.role_arn,
        },
        "status": job.status,
        "createdAt": job.created_at.to_iso8601(),
    })
}

/// Parses an ISO-8601 time with offset or epoch seconds, as MediaPackage accepts.
fn parse_time(field: &str, value: &str) -> Result<UnixMillis> {
    if let Ok(secs) = value.parse::<i64>() {
        return Ok(UnixMillis(secs * 1000));
    }
    chrono::DateTime::parse_from_rfc3339(value)
        .map(|t| UnixMillis(t.timestamp_millis()))
        .map_err(|_| {
            ControlError::Unprocessable(format!(
                "{field} {value:?} is not an ISO-8601 time with offset (2026-11-24T20:30:00-08:00) or epoch seconds"
            ))
        })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateHarvestJobRequest {
    id: Option<String>,
    origin_endpoint_id: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    s3_destination: Option<S3Destination>,
}

pub(super) async fn create_harvest_job(
    State(app): State<ControlServices>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let map = body_object(&body)?;
    refuse_unsupported(
        &map,
        "",
        &["id", "originEndpointId", "startTime", "endTime", "s3Destination"],
        &[],
    )?;
    let req: CreateHarvestJobRequest = parse("CreateHarvestJob", map)?;
    let required = |field: &str, value: Option<String>| {
        value.ok_or_else(|| ControlError::Unprocessable(format!("{field} is required")))
    };
    let id = required("id", req.id)?;
    check_id("harvest job id", &id)?;
    let endpoint_id = required("originEndpointId", req.origin_endpoint_id)?;
    let start_time = required("startTime", req.start_time)?;
    let end_time = required("endTime", req.end_time)?;
    let destination = req.s3_destination.ok_or_else(|| {
        ControlError::Unprocessable("s3Destination (bucketName, manifestKey, roleArn) is required".into())
    })?;
    let (start, end) = (parse_time("startTime", &start_time)?, parse_time("endTime", &end_time)?);
    if end <= start {
        return Err(ControlError::Unprocessable("endTime must be after startTime".into()));
    }
    if end.0 - start.0 > 24 * 3600 * 1000 {
        return Err(ControlError::Unprocessable(
            "a harvest job covers at most 24 hours".into(),
        ));
    }
    if end > UnixMillis::now() {
        return Err(ControlError::Unprocessable("endTime must be in the past".into()));
    }
    let endpoint = match find_endpoint(&app, &endpoint_id).await {
        Err(ControlError::NotFound(_)) => {
            return Err(ControlError::Unprocessable(format!(
                "originEndpointId {endpoint_id:?} does not exist"
            )))
        }
        other => other?,
    };
    let job = HarvestJob {
        id: id.clone(),
        channel_id: endpoint.channel_id,
        origin_endpoint_id: endpoint_id,
        start_time,
        end_time,
        s3_destination: destination,
        status: "FAILED".into(),
        status_reason: CANNOT_RUN.into(),
        created_at: UnixMillis::now(),
    };
    create_unique(&app, JOBS, &id, &job, "harvest job").await?;
    tracing::warn!(harvest_job = %id, reason = CANNOT_RUN, "harvest job recorded as FAILED");
    let mut response = Json(job_json(&app.config, &job)).into_response();
    response.headers_mut().insert(
        "x-sluice-status-reason",
        axum::http::HeaderValue::from_static(CANNOT_RUN),
    );
    Ok(response)
}

pub(super) async fn describe_harvest_job(
    State(app): State<ControlServices>,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let job: HarvestJob = Catalog(app.stores.index.as_ref())
        .get(JOBS, &id)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("harvest job {id:?} does not exist")))?;
    Ok(Json(job_json(&app.config, &job)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ListJobsQuery {
    max_results: Option<usize>,
    next_token: Option<String>,
    include_channel_id: Option<String>,
    include_status: Option<String>,
}

pub(super) async fn list_harvest_jobs(
    State(app): State<ControlServices>,
    Query(q): Query<ListJobsQuery>,
) -> Result<Json<Value>> {
    let limit = page_size(q.max_results)?;
    if let Some(status) = &q.include_status {
        if !["IN_PROGRESS", "SUCCEEDED", "FAILED"].contains(&status.as_str()) {
            return Err(ControlError::Unprocessable(format!(
                "includeStatus {status:?} must be IN_PROGRESS, SUCCEEDED or FAILED"
            )));
        }
    }
    let pages = Pages::new(&app, "harvestJobs").await?;
    let mut after = pages.decode(q.next_token.as_deref())?;
    let catalog = Catalog(app.stores.index.as_ref());
    let mut matching: Vec<HarvestJob> = Vec::new();
    while matching.len() <= limit {
        let batch: Vec<HarvestJob> = catalog.list(JOBS, after.as_deref(), 1000).await?;
        let done = batch.len() < 1000;
        after = batch.last().map(|j| j.id.clone());
        matching.extend(batch.into_iter().filter(|j| {
            q.include_channel_id.as_ref().is_none_or(|c| &j.channel_id == c)
                && q.include_status.as_ref().is_none_or(|s| &j.status == s)
        }));
        if done {
            break;
        }
    }
    matching.truncate(limit + 1);
    let render = |j: &HarvestJob| (j.id.clone(), job_json(&app.config, j));
    Ok(Json(pages.page_json("harvestJobs", &matching, limit, render)))
}
