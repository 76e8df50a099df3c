//! Ingest: an encoder's WebDAV-style PUT/POST under `/in/v2/{channel}/{ingest}/…`
//! becomes stored bytes and, for TS segments, an index record.
//!
//! Order per request: find channel and ingest endpoint (404), authenticate from headers
//! alone (401 before `100 Continue` is ever sent, because the body is not polled), check
//! the declared size (413), read the body with the same cap, then store bytes durably and
//! only then index them.

pub mod auth;

use crate::catalog::{stream_partition, Catalog, ClockAnchor, IngestMaster, IngestPlaylist, InputTarget};
use crate::http::EdgeError;
use crate::media::{fmp4, iframes, ts, tsmux};
use crate::model::{Channel, IFrame, IngestEndpoint, Rendition, SegmentRecord};
use crate::store::{Condition, PublishedEdge, SlotWrite};
use crate::time::{unwrap_pts, Ticks, UnixMillis};
use crate::App;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use bytes::Bytes;

/// The ingest routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/in/v2/{channel}/{ingest}/{*path}", any(handle))
        .with_state(app)
}

async fn handle(
    State(app): State<App>,
    Path((channel, ingest_id, path)): Path<(String, String, String)>,
    request: crate::http::RequestInfo,
    body: Body,
) -> Response {
    let crate::http::RequestInfo {
        method,
        uri,
        version,
        headers,
        peer,
    } = request;
    use tracing::Instrument;
    let span = tracing::info_span!("ingest", channel = %channel, ingest_endpoint = %ingest_id, path = %path);
    // Run detached: encoders such as ffmpeg close the connection right after the last
    // body byte without waiting for the response, and the server then drops this future.
    // Once the body is complete the upload must still be stored and indexed.
    let started = std::time::Instant::now();
    let request_id = crate::model::random_hex();
    let id = request_id.clone();
    let work = async move {
        let request_id = id;
        let mut reached: Option<crate::model::Channel> = None;
        let mut response = match ingest(
            &app,
            &channel,
            &ingest_id,
            &path,
            &method,
            &uri,
            &headers,
            body,
            &mut reached,
        )
        .await
        {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(status = e.status.as_u16(), error = %e.message, "ingest rejected");
                e.into_response()
            }
        };
        // Metrics only for uploads a real ingest endpoint accepted.
        let received = response.extensions_mut().remove::<IngressSize>();
        let elapsed = started.elapsed().as_secs_f64();
        let now = UnixMillis::now();
        if let Some(IngressSize(bytes)) = received {
            crate::metrics::emit(|| crate::metrics::ingress(now.0, &channel, &ingest_id, bytes, elapsed * 1000.0));
        }
        // Access logs for every request to a real channel that has them on.
        if let Some(group) = reached.as_ref().and_then(|c| c.ingress_log_group.as_deref()) {
            let declared = || headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok();
            let config = &app.config;
            crate::access_log::Entry {
                log_group: group,
                at: now,
                processing_seconds: elapsed,
                // X-Forwarded-For only where it is configured to be trusted, as for egress.
                client_ip: if config.client_ip_from_forwarded_for {
                    crate::access_log::client_ip(&headers, peer)
                } else {
                    peer
                },
                status: response.status().as_u16(),
                received_bytes: received.map(|r| r.0).or_else(declared).unwrap_or(0),
                sent_bytes: response
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(0),
                method: method.as_str(),
                request: crate::access_log::request_url(&headers, &uri),
                protocol: crate::access_log::protocol(version),
                user_agent: crate::access_log::user_agent(&headers),
                account: &config.account_id,
                channel_id: &channel,
                channel_arn: &crate::api::channel_arn(config, reached.as_ref().expect("checked above")),
                domain_name: "",
                request_id: &request_id,
                endpoint_id: &ingest_id,
                endpoint_arn: "-",
            }
            .write();
        }
        response
    };
    let mut response = match tokio::spawn(work.instrument(span)).await {
        Ok(response) => response,
        Err(e) => EdgeError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("ingest task failed: {e}")).into_response(),
    };
    if let Ok(v) = axum::http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(crate::origin::REQUEST_ID, v);
    }
    response
}

#[allow(clippy::too_many_arguments)] // the request's parts, and the channel it reached
async fn ingest(
    app: &App,
    channel_id: &str,
    ingest_id: &str,
    path: &str,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: Body,
    reached: &mut Option<crate::model::Channel>,
) -> Result<Response, EdgeError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let channel = catalog.channel(channel_id).await?.ok_or_else(|| {
        EdgeError::not_found(format!("no channel {channel_id:?}; create it with CreateChannel first"))
    })?;
    *reached = Some(channel.clone());
    let endpoint = channel.ingest_endpoint(ingest_id).ok_or_else(|| {
        EdgeError::not_found(format!(
            "channel {channel_id:?} has no ingest endpoint {ingest_id:?}; use a URL from DescribeChannel"
        ))
    })?;
    let target = auth::Target::new(uri, &app.config.ingest_base_url);
    authenticate(endpoint, method, target, headers)?;

    match *method {
        Method::PUT | Method::POST => {}
        Method::OPTIONS => {
            return Ok((
                StatusCode::OK,
                [
                    (header::ALLOW, "OPTIONS, PUT, POST, DELETE, MKCOL"),
                    (header::HeaderName::from_static("dav"), "1"),
                ],
            )
                .into_response())
        }
        Method::DELETE => return Ok(StatusCode::NO_CONTENT.into_response()),
        _ if method.as_str() == "MKCOL" => return Ok(StatusCode::CREATED.into_response()),
        _ => {
            return Err(EdgeError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not supported on ingest; use PUT or POST"),
            ))
        }
    }
    let path = clean_path(path)?;
    let key_bytes = channel.id.len() + endpoint.id.len() + path.len() + 2;
    if key_bytes > MAX_KEY_BYTES {
        return Err(EdgeError::bad_request(format!(
            "channel id, ingest endpoint id and ingest path make a {key_bytes}-byte object key, \
             more than the {MAX_KEY_BYTES} the store can hold; use shorter names"
        )));
    }
    let body = read_body(headers, body, app.config.max_segment_bytes).await?;
    let upload = Upload {
        channel: &channel,
        endpoint,
        path: &path,
        body,
        now: UnixMillis::now(),
    };
    let size = upload.body.len() as u64;
    let mut response = match extension(&path) {
        "ts" => ingest_segment(app, upload).await,
        "mp4" | "m4s" | "m4v" | "m4a" | "cmfv" | "cmfa" | "cmfi" if fmp4::looks_like_mp4(&upload.body) => {
            ingest_fmp4(app, upload).await
        }
        "m3u8" => ingest_playlist(app, upload).await,
        _ => {
            let key = format!("{}/{}/{}", channel.id, endpoint.id, path);
            app.stores
                .objects
                .put(&key, upload.body, "application/octet-stream")
                .await?;
            tracing::warn!(path = %path, "stored but not indexed: only TS segments, fMP4 init and media segments and .m3u8 playlists are packaged");
            Ok(StatusCode::CREATED.into_response())
        }
    }?;
    response.extensions_mut().insert(IngressSize(size));
    Ok(response)
}

/// Body bytes of an accepted upload, for the `IngressBytes` metric.
#[derive(Clone, Copy)]
struct IngressSize(u64);

fn authenticate(
    endpoint: &IngestEndpoint,
    method: &Method,
    target: auth::Target,
    headers: &HeaderMap,
) -> Result<(), EdgeError> {
    let now = UnixMillis::now().as_secs();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let stale = match auth::check(authorization, method.as_str(), &target, endpoint, now) {
        auth::AuthResult::Ok => return Ok(()),
        auth::AuthResult::Stale => true,
        auth::AuthResult::Denied => false,
    };
    let message = if authorization.is_some() && !stale {
        "wrong ingest credentials: use the username and password of this ingest endpoint from DescribeChannel"
    } else {
        "ingest needs HTTP Digest or Basic authentication with this ingest endpoint's username and password"
    };
    Err(EdgeError::new(StatusCode::UNAUTHORIZED, message).with_challenges(auth::challenges(endpoint, now, stale)))
}

/// Longest ingest path, in bytes.
const MAX_PATH_BYTES: usize = 512;
/// Longest object key (`channel/endpoint/path`), in bytes: S3's limit.
const MAX_KEY_BYTES: usize = 1024;
/// Longest file or folder name in an ingest path, in bytes (a file name on most file systems).
const MAX_NAME_BYTES: usize = 255;

/// Rejects paths that could escape the ingest folder.
/// Also refuses names the stores cannot hold (S3 keys are at most 1,024 bytes, file names
/// 255), so the encoder gets a 400 naming the problem rather than a 503 it would retry.
fn clean_path(path: &str) -> Result<String, EdgeError> {
    if path.chars().any(char::is_control) {
        return Err(EdgeError::bad_request(format!(
            "ingest path {path:?} contains a control character (NUL, newline, escape…); use printable file names"
        )));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(EdgeError::bad_request(format!(
            "ingest path is {} bytes long, more than the {MAX_PATH_BYTES} the store can hold; use shorter names",
            path.len()
        )));
    }
    if let Some(long) = path.split('/').find(|p| p.len() > MAX_NAME_BYTES) {
        return Err(EdgeError::bad_request(format!(
            "ingest path segment of {} bytes is longer than {MAX_NAME_BYTES} bytes (\"{}…\"); use shorter names",
            long.len(),
            long.chars().take(32).collect::<String>()
        )));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|p| *p == "." || *p == ".." || p.contains('\\')) {
        return Err(EdgeError::bad_request(format!(
            "ingest path {path:?} is not a plain relative file path"
        )));
    }
    Ok(parts.join("/"))
}

fn extension(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.rsplit_once('.').map_or("", |(_, ext)| ext)
}

async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, EdgeError> {
    let too_large = || {
        EdgeError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is larger than the ingest limit of {limit} bytes; use shorter segments or a lower bit rate"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => Ok(bytes),
        Err(e) => {
            let source_is_limit =
                std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if source_is_limit || e.to_string().contains("length limit") {
                Err(too_large())
            } else {
                Err(EdgeError::bad_request(format!("could not read the request body: {e}")))
            }
        }
    }
}

struct Upload<'a> {
    channel: &'a Channel,
    endpoint: &'a IngestEndpoint,
    path: &'a str,
    body: Bytes,
    now: UnixMillis,
}

/// Stable rendition id from an encoder file path: folder plus file stem without its
/// trailing counter (`360p/seg_00012.ts` → `360p-seg`, `channel_1_00001.ts` → `channel_1`).
pub fn rendition_id(path: &str) -> String {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let prefix = stem
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches(['_', '-', '.']);
    let joined = [dir, prefix]
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("-");
    let id: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if id.is_empty() {
        "default".into()
    } else {
        id
    }
}

/// Where a segment goes on its rendition's timeline, given the newest indexed one.
#[derive(Debug, PartialEq)]
pub enum Placement {
    /// The next segment: `start` on the timeline, with the offset from encoder PTS and
    /// whether the encoder's timestamps jumped here.
    Next {
        start: Ticks,
        pts_offset: i64,
        discontinuity: bool,
    },
    /// At or before the live edge. Near it: a re-send, the other input's copy of a slot or
    /// a straggler. `far` behind (more than two segments): the encoder restarted, even when
    /// its new timestamps happen to equal an old slot's (ffmpeg always starts at 1.4 s).
    Behind { start: Ticks, far: bool },
}

/// Largest gap between where a segment was expected and where it starts that still
/// counts as continuous: two seconds or one segment, whichever is longer.
fn tolerance(last: &SegmentRecord) -> i128 {
    i128::from(last.duration.0.max(180_000))
}

/// Places a segment whose first PTS (33-bit) is `raw_pts` after `last`.
pub fn place(raw_pts: u64, last: Option<&SegmentRecord>) -> Placement {
    let Some(last) = last else {
        return Placement::Next {
            start: unwrap_pts(raw_pts, None),
            pts_offset: 0,
            discontinuity: false,
        };
    };
    let encoder_ref = (i128::from(last.start.0) - i128::from(last.pts_offset)).max(0) as u64;
    let encoder_pts = unwrap_pts(raw_pts, Some(Ticks(encoder_ref)));
    let candidate = (i128::from(encoder_pts.0) + i128::from(last.pts_offset)).max(0) as u64;
    let jump = i128::from(candidate) - i128::from(last.end().0);
    if candidate <= last.start.0 {
        return Placement::Behind {
            start: Ticks(candidate),
            far: -jump > tolerance(last) + i128::from(last.duration.0),
        };
    }
    Placement::Next {
        start: Ticks(candidate),
        pts_offset: last.pts_offset,
        discontinuity: jump.abs() > tolerance(last),
    }
}

/// Partition of a channel's fMP4 init segments, kept apart from the stream documents that
/// every manifest request reads.
fn init_partition(channel: &str) -> String {
    format!("fmp4init#{channel}")
}

/// An encoder's fMP4 init segment (`EXT-X-MAP`), kept whole: it is small (about 1 KB).
#[derive(serde::Serialize, serde::Deserialize)]
struct InitSegment {
    /// Base64 of the bytes.
    bytes: String,
    received_at: UnixMillis,
}

/// CMAF / fMP4 ingest (ffmpeg `-hls_segment_type fmp4`): init segments are remembered;
/// each media segment is rewritten as TS with the init segment of its rendition and then
/// indexed exactly like a TS segment, so every output (HLS TS, CMAF, DASH) serves it.
async fn ingest_fmp4(app: &App, up: Upload<'_>) -> Result<Response, EdgeError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let catalog = Catalog(app.stores.index.as_ref());
    let pk = init_partition(&up.channel.id);
    if fmp4::is_init(&up.body) {
        let init =
            fmp4::parse_init(&up.body).map_err(|e| EdgeError::bad_request(format!("init segment {}: {e}", up.path)))?;
        let doc = InitSegment {
            bytes: b64.encode(&up.body),
            received_at: up.now,
        };
        catalog
            .put(&pk, &format!("{}/{}", up.endpoint.id, up.path), &doc, Condition::Always)
            .await?;
        tracing::info!(path = %up.path, tracks = init.tracks.len(), "fMP4 init segment stored");
        return Ok(StatusCode::CREATED.into_response());
    }
    let prefix = format!("{}/", up.endpoint.id);
    // ffmpeg sends the init segment and, without waiting for that answer, the first media
    // segment on another connection: give the init's handler a moment (bounded) to store it.
    let mut inits: Vec<(String, InitSegment)> = Vec::new();
    for attempt in 0..15 {
        inits.clear();
        for (sk, bytes) in app.stores.index.list_docs(&pk, None, 1000).await? {
            if let Some(path) = sk.strip_prefix(&prefix) {
                let doc: InitSegment = serde_json::from_slice(&bytes)
                    .map_err(|e| EdgeError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("init record {sk}: {e}")))?;
                inits.push((path.to_owned(), doc));
            }
        }
        if init_for(up.path, &inits).is_some() || attempt == 14 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let Some(init) = init_for(up.path, &inits) else {
        return Err(EdgeError::new(
            StatusCode::CONFLICT,
            format!(
                "fMP4 segment {} arrived before any init segment in its folder; send the init segment (EXT-X-MAP) first",
                up.path
            ),
        ));
    };
    let init_bytes = b64
        .decode(&init.bytes)
        .map_err(|e| EdgeError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("init record: {e}")))?;
    let init = fmp4::parse_init(&init_bytes)
        .map_err(|e| EdgeError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("stored init segment: {e}")))?;
    let ts_bytes =
        tsmux::to_ts(&init, &up.body).map_err(|e| EdgeError::bad_request(format!("fMP4 segment {}: {e}", up.path)))?;
    ingest_segment(
        app,
        Upload {
            body: ts_bytes.into(),
            ..up
        },
    )
    .await
}

/// The init segment of the media segment at `path`: among those uploaded to the same
/// folder, the only one, else the one whose name (without "init") names the segment's
/// variant (`init_1.mp4` ↔ `seg_1_00042.m4s`), else the newest.
fn init_for<'a>(path: &str, inits: &'a [(String, InitSegment)]) -> Option<&'a InitSegment> {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    let same_dir: Vec<&(String, InitSegment)> = inits
        .iter()
        .filter(|(p, _)| p.rsplit_once('/').map_or("", |(d, _)| d) == dir)
        .collect();
    if same_dir.len() <= 1 {
        return same_dir.first().map(|(_, doc)| doc);
    }
    let tokens = |stem: &str| -> Vec<String> {
        stem.split(['_', '-', '.'])
            .filter(|t| !t.is_empty())
            .map(str::to_ascii_lowercase)
            .collect()
    };
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let variant = stem
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches(['_', '-', '.']);
    let segment_tokens = tokens(variant);
    let named = same_dir.iter().find(|(p, _)| {
        let name = p.rsplit('/').next().unwrap_or(p);
        let name = name.rsplit_once('.').map_or(name, |(s, _)| s).to_ascii_lowercase();
        let rest: Vec<String> = tokens(&name.replace("init", ""));
        !rest.is_empty() && rest.iter().all(|t| segment_tokens.contains(t))
    });
    named
        .or_else(|| same_dir.iter().max_by_key(|(_, doc)| doc.received_at.0))
        .map(|(_, doc)| doc)
}

/// How often one upload re-reads the index when other writers of its rendition got there
/// first (each attempt is two reads and one conditional write).
const INDEX_ATTEMPTS: u32 = 24;

/// An upload behind the live edge whose media-time neighbours arrived less than this long
/// ago is late (overtaken by later uploads), not the first segment of a restarted encoder.
const LATE_UPLOAD_MS: i64 = 10_000;

/// Where an upload goes, decided against one consistent read of its rendition's index.
enum Slot {
    /// A new record at `start`; `restart`: the encoder's timestamps were reset here.
    New {
        start: Ticks,
        pts_offset: i64,
        restart: bool,
    },
    /// The slot is indexed already (a re-send, or the other input's copy).
    Existing(SegmentRecord),
}

async fn ingest_segment(app: &App, up: Upload<'_>) -> Result<Response, EdgeError> {
    let info = ts::analyze(&up.body).map_err(|e| EdgeError::bad_request(format!("segment {}: {e}", up.path)))?;
    let rendition = rendition_id(up.path);
    let target = input_target(app, &up.channel.id, &rendition, info.duration)
        .await?
        .map_err(|e| EdgeError::bad_request(format!("segment {}: {e}", up.path)))?;
    crate::live::target::check(info.duration, target)
        .map_err(|e| EdgeError::bad_request(format!("segment {}: {e}", up.path)))?;
    let keyframes = iframes::bounded(iframes::keyframes(&up.body));
    let psi_size = iframes::leading_psi(&up.body);
    let partition = SegmentRecord::partition_of(&up.channel.id, &rendition);
    let index = app.stores.index.as_ref();
    let size = up.body.len() as u64;
    let mut stored_key: Option<String> = None;

    // Optimistic concurrency: read the head version and the newest record, decide, write
    // conditioned on that version; another writer in between means deciding again.
    let mut indexed = None;
    for attempt in 0..INDEX_ATTEMPTS {
        let (head, version) = index.segment_head(&partition).await?;
        let edge = crate::publish::edge(index, &partition, &head).await?;
        let latest = index.latest_segments(&partition, 1).await?.pop();
        let (start, pts_offset, restart) = match slot_of(index, &partition, &up, &info, latest.as_ref(), edge).await? {
            Slot::Existing(existing) => {
                // This input is alive (it must not look silent when deciding whether the
                // stream has ended).
                touch_input(app, &up, &rendition).await?;
                if !takes_back(&up, &existing) {
                    tracing::info!(path = %up.path, "segment already indexed (re-sent or sent by the other ingest endpoint)");
                    if !existing.published {
                        // Perhaps a retry after a failed publish: publish now.
                        crate::publish::advance(index, &partition, up.now).await?;
                    }
                    return Ok(StatusCode::NO_CONTENT.into_response());
                }
                let iframes = iframes_of(existing.start, &info, &keyframes, psi_size);
                match take_back(app, &up, existing, &info, iframes, version).await? {
                    true => return Ok(StatusCode::CREATED.into_response()),
                    false => {
                        crate::publish::back_off(attempt).await;
                        continue;
                    }
                }
            }
            Slot::New {
                start,
                pts_offset,
                restart,
            } => (start, pts_offset, restart),
        };
        let object_key = format!("{}/{}/{}/{}.ts", up.channel.id, up.endpoint.id, rendition, start.0);
        if stored_key.as_deref() != Some(object_key.as_str()) {
            // Bytes first, durable, then the index.
            app.stores
                .objects
                .put(&object_key, up.body.clone(), "video/mp2t")
                .await?;
            stored_key = Some(object_key.clone());
        }
        let anchor = clock_anchor(app, &up.channel.id, start, info.duration, up.now).await?;
        let record = SegmentRecord {
            channel: up.channel.id.clone(),
            rendition: rendition.clone(),
            start,
            duration: info.duration,
            sequence: 0,
            ingest_endpoint: up.endpoint.id.clone(),
            object_key,
            size,
            program_date_time: anchor.wall_clock_of(start),
            received_at: up.now,
            starts_with_keyframe: info.starts_with_keyframe,
            source_name: up.path.to_owned(),
            pts_offset,
            discontinuity: restart,
            discontinuity_sequence: 0,
            iframes: iframes_of(start, &info, &keyframes, psi_size),
            published: false,
        };
        match index.insert_segment(&record, version).await? {
            SlotWrite::Written => {
                indexed = Some(record);
                break;
            }
            // Taken: decided again on the next read, which finds the slot.
            SlotWrite::SlotTaken | SlotWrite::HeadMoved => crate::publish::back_off(attempt).await,
        }
    }
    let Some(record) = indexed else {
        return Err(EdgeError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "segment {}: too many concurrent writers on rendition {rendition:?}; retry the upload",
                up.path
            ),
        ));
    };
    update_rendition(app, &record, &info, target).await?;
    // The record is durable: if publishing fails here, the next upload or a playlist
    // request publishes it (playback does once it is past the horizon).
    let published = match crate::publish::advance(index, &partition, up.now).await {
        Ok(published) => published,
        Err(e) => {
            tracing::warn!(path = %up.path, error = %e, "segment indexed, publishing left to the next writer");
            Vec::new()
        }
    };
    let sequence = published.iter().find(|r| r.start == record.start).map(|r| r.sequence);
    tracing::info!(
        channel = %record.channel, ingest_endpoint = %record.ingest_endpoint, path = %up.path,
        rendition = %record.rendition, bytes = size, sequence, start = record.start.0,
        duration_ms = info.duration.as_millis(), keyframe = info.starts_with_keyframe,
        restart = record.discontinuity, published = published.len(),
        "segment indexed"
    );
    Ok(StatusCode::CREATED.into_response())
}

/// Decides where an upload goes, given the newest indexed record and the published edge
/// of its rendition; a segment whose slot was published without it is refused (409).
async fn slot_of(
    index: &dyn crate::store::Index,
    partition: &str,
    up: &Upload<'_>,
    info: &ts::SegmentInfo,
    latest: Option<&SegmentRecord>,
    edge: Option<PublishedEdge>,
) -> Result<Slot, EdgeError> {
    let (start, far) = match place(info.start_pts, latest) {
        Placement::Next { start, pts_offset, .. } => {
            return Ok(Slot::New {
                start,
                pts_offset,
                restart: false,
            })
        }
        Placement::Behind { start, far } => (start, far),
    };
    let last = latest.expect("Behind needs a previous segment");
    // The record at or just after this media time tells a late upload from a restart: a
    // late one's neighbours arrived moments ago; a restarted encoder's timestamps land on
    // segments of its previous run, which arrived long ago.
    let known = index.segments_from(partition, start, 1).await?.into_iter().next();
    let recent = known
        .as_ref()
        .is_some_and(|r| up.now.0 - r.received_at.0 < LATE_UPLOAD_MS);
    if far && !recent {
        // The encoder restarted (its timestamps went back): continue the timeline after
        // the newest segment and mark the discontinuity.
        let encoder_pts = i128::from(start.0) - i128::from(last.pts_offset);
        let offset = i128::from(last.end().0) - encoder_pts;
        tracing::warn!(path = %up.path, partition, "encoder timestamps went back: restart, discontinuity");
        return Ok(Slot::New {
            start: last.end(),
            pts_offset: offset as i64,
            restart: true,
        });
    }
    if let Some(existing) = known.filter(|r| r.start == start) {
        return Ok(Slot::Existing(existing));
    }
    if edge.is_none_or(|e| start.0 > e.start.0) {
        // Overtaken by a later upload, but its place is not published yet: in order.
        return Ok(Slot::New {
            start,
            pts_offset: last.pts_offset,
            restart: false,
        });
    }
    let horizon = crate::live::publish::horizon_ms(last) as f64 / 1000.0;
    Err(EdgeError::new(
        StatusCode::CONFLICT,
        format!(
            "segment {} (media time {:.3} s) arrived after a later segment of its rendition was \
             published, so it is not indexed: a rendition's timeline starts at its first indexed \
             segment, and a segment after a hole waits {horizon:.1} s (the publish horizon) for the \
             ones before it. Upload segments in order or within the publish horizon of each other",
            up.path,
            start.as_secs_f64()
        ),
    ))
}

/// The keyframes of a segment placed at `start`, on the rendition's timeline.
fn iframes_of(start: Ticks, info: &ts::SegmentInfo, keyframes: &[iframes::KeyFrame], psi_size: u64) -> Vec<IFrame> {
    keyframes
        .iter()
        .map(|k| IFrame {
            time: Ticks(start.0.saturating_add_signed(pts_delta(info.start_pts, k.pts))),
            offset: k.offset,
            size: k.size,
            psi_size,
        })
        .collect()
}

/// Whether this upload takes a slot back from the other input: it comes from the
/// preferred input (the channel's first ingest endpoint, MediaPackage's primary) and is
/// not late, i.e. it arrived less than one segment duration after the other input's copy.
/// A late preferred copy leaves the slot as it is, so what players already fetched stays.
fn takes_back(up: &Upload<'_>, existing: &SegmentRecord) -> bool {
    let preferred = up
        .channel
        .ingest_endpoints
        .first()
        .is_some_and(|e| e.id == up.endpoint.id);
    preferred
        && existing.ingest_endpoint != up.endpoint.id
        && up.now.0 - existing.received_at.0 < existing.duration.as_millis()
}

/// Serves the slot of `existing` from this (preferred) input's bytes from now on: same
/// start, duration, sequence and discontinuity numbers, so playlists do not change. False
/// when the index moved since `version` was read (the caller decides again).
async fn take_back(
    app: &App,
    up: &Upload<'_>,
    existing: SegmentRecord,
    info: &ts::SegmentInfo,
    iframes: Vec<IFrame>,
    version: u64,
) -> Result<bool, EdgeError> {
    let object_key = format!(
        "{}/{}/{}/{}.ts",
        up.channel.id, up.endpoint.id, existing.rendition, existing.start.0
    );
    let size = up.body.len() as u64;
    app.stores
        .objects
        .put(&object_key, up.body.clone(), "video/mp2t")
        .await?;
    let record = SegmentRecord {
        ingest_endpoint: up.endpoint.id.clone(),
        object_key,
        size,
        received_at: up.now,
        starts_with_keyframe: info.starts_with_keyframe,
        source_name: up.path.to_owned(),
        iframes,
        ..existing
    };
    if app.stores.index.replace_segment(&record, version).await? != SlotWrite::Written {
        return Ok(false);
    }
    tracing::info!(
        channel = %record.channel, ingest_endpoint = %record.ingest_endpoint, path = %up.path,
        rendition = %record.rendition, sequence = record.sequence, start = record.start.0,
        "preferred input took its slot back"
    );
    Ok(true)
}

/// The channel's media-time ↔ wall-clock anchor, set on first use and reset when media
/// time and wall clock disagree by more than 10 s (encoder restart, long pause).
async fn clock_anchor(
    app: &App,
    channel: &str,
    start: Ticks,
    duration: Ticks,
    now: UnixMillis,
) -> Result<ClockAnchor, EdgeError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let pk = stream_partition(channel);
    let expected = UnixMillis(now.0 - duration.as_millis());
    let anchor = catalog
        .update::<ClockAnchor>(&pk, "anchor", |current| match current {
            Some(anchor) if (anchor.wall_clock_of(start).0 - expected.0).abs() <= 10_000 => None,
            _ => Some(ClockAnchor {
                media: start,
                wall: expected,
            }),
        })
        .await?;
    Ok(anchor.unwrap_or(ClockAnchor {
        media: start,
        wall: expected,
    }))
}

/// The rendition's input target in seconds: the stored one, or the one this segment fixes
/// when it is the rendition's first (the first writer wins; the others read its value).
/// The inner error is a segment too long to be any rendition's first.
async fn input_target(
    app: &App,
    channel: &str,
    rendition: &str,
    duration: Ticks,
) -> Result<Result<u32, String>, EdgeError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let sk = format!("target#{rendition}");
    let mut refused = None;
    let stored = catalog
        .update::<InputTarget>(&stream_partition(channel), &sk, |current| match current {
            Some(_) => None,
            None => match crate::live::target::target_of_first(duration) {
                Ok(seconds) => Some(InputTarget { seconds }),
                Err(e) => {
                    refused = Some(e);
                    None
                }
            },
        })
        .await?;
    Ok(match (stored, refused) {
        (Some(target), _) => Ok(target.seconds),
        (None, Some(e)) => Err(e),
        (None, None) => Err("no target duration".to_owned()),
    })
}

async fn update_rendition(
    app: &App,
    record: &SegmentRecord,
    info: &ts::SegmentInfo,
    target_seconds: u32,
) -> Result<(), EdgeError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let pk = stream_partition(&record.channel);
    let sk = format!("rendition#{}", record.rendition);
    let bitrate = record.bitrate();
    let video = info.video.as_ref();
    let frame_rate = video.and_then(|v| {
        let secs = info.duration.as_secs_f64();
        (secs > 0.0 && v.frames > 1).then(|| snap_frame_rate(f64::from(v.frames) / secs))
    });
    let codecs = info.codecs();
    let next = |previous: Option<&Rendition>| -> Option<Rendition> {
        let rendition = Rendition {
            id: record.rendition.clone(),
            codecs: if codecs.is_empty() {
                previous.map(|p| p.codecs.clone()).unwrap_or_default()
            } else {
                codecs.clone()
            },
            resolution: video
                .and_then(|v| v.params.as_ref())
                .and_then(|p| p.resolution)
                .or(previous.and_then(|p| p.resolution)),
            frame_rate: frame_rate.or(previous.and_then(|p| p.frame_rate)),
            peak_bandwidth: previous.map_or(bitrate, |p| p.peak_bandwidth.max(bitrate)),
            average_bandwidth: previous
                .as_ref()
                .map_or(bitrate, |p| (p.average_bandwidth * 7 + bitrate) / 8),
            max_segment_duration: previous
                .as_ref()
                .map_or(record.duration, |p| p.max_segment_duration.max(record.duration)),
            target_seconds,
            recent_bandwidth: crate::live::target::push_recent(
                previous.map_or(&[][..], |p| &p.recent_bandwidth),
                bitrate,
            ),
            recent_iframe_bandwidth: crate::live::target::push_recent(
                previous.map_or(&[][..], |p| &p.recent_iframe_bandwidth),
                iframe_bits_per_second(record),
            ),
            declared_bandwidth: previous.and_then(|p| p.declared_bandwidth),
            declared_order: previous.and_then(|p| p.declared_order),
            iframe_bandwidth: previous
                .as_ref()
                .map_or(0, |p| p.iframe_bandwidth)
                .max(iframe_bits_per_second(record)),
            inputs: {
                let mut inputs = previous.map(|p| p.inputs.clone()).unwrap_or_default();
                inputs.entry(record.ingest_endpoint.clone()).or_default().last_segment = record.received_at;
                inputs
            },
            updated_at: record.received_at,
        };
        (previous != Some(&rendition)).then_some(rendition)
    };
    catalog.update(&pk, &sk, next).await?;
    Ok(())
}

/// Records that this ingest endpoint delivered a segment of `rendition` just now.
async fn touch_input(app: &App, up: &Upload<'_>, rendition: &str) -> Result<(), EdgeError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let pk = stream_partition(&up.channel.id);
    let sk = format!("rendition#{rendition}");
    catalog
        .update::<Rendition>(&pk, &sk, |doc| {
            let mut doc = doc?.clone();
            doc.inputs.entry(up.endpoint.id.clone()).or_default().last_segment = up.now;
            Some(doc)
        })
        .await?;
    Ok(())
}

/// The encoder ended this input's stream (`#EXT-X-ENDLIST`): recorded on the rendition,
/// whose playlists end once every recently active input has ended.
async fn end_of_stream(app: &App, up: &Upload<'_>, rendition: &str) -> Result<(), EdgeError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let pk = stream_partition(&up.channel.id);
    let sk = format!("rendition#{rendition}");
    catalog
        .update::<Rendition>(&pk, &sk, |doc| {
            let mut doc = doc?.clone();
            doc.inputs.entry(up.endpoint.id.clone()).or_default().ended = Some(up.now);
            Some(doc)
        })
        .await?;
    tracing::info!(rendition, "encoder sent #EXT-X-ENDLIST");
    Ok(())
}

/// `later − earlier` between two 33-bit PTS values, the short way round the wrap.
fn pts_delta(earlier: u64, later: u64) -> i64 {
    let wrap = crate::time::PTS_WRAP as i64;
    let d = (later as i64 - earlier as i64).rem_euclid(wrap);
    if d > wrap / 2 {
        d - wrap
    } else {
        d
    }
}

/// Bit rate of a segment's keyframes over the segment's duration.
fn iframe_bits_per_second(record: &SegmentRecord) -> u64 {
    let bits: u64 = record.iframes.iter().map(|f| f.size * 8).sum();
    let secs = record.duration.as_secs_f64();
    if secs > 0.0 {
        (bits as f64 / secs).round() as u64
    } else {
        0
    }
}

/// Rounds a measured frame rate to the common rate it is within 0.5 % of, else to 3 decimals.
pub fn snap_frame_rate(measured: f64) -> f64 {
    const RATES: [f64; 10] = [23.976, 24.0, 25.0, 29.97, 30.0, 47.952, 48.0, 50.0, 59.94, 60.0];
    RATES
        .iter()
        .copied()
        .find(|r| (measured - r).abs() / r < 0.005)
        .unwrap_or((measured * 1000.0).round() / 1000.0)
}

/// What m3u8-rs lets through but no encoder writes: URIs with spaces or control
/// characters, and segment durations that are not a positive number of seconds.
fn check_playlist(playlist: &m3u8_rs::Playlist) -> Result<(), String> {
    let uri_ok = |uri: &str| !uri.is_empty() && !uri.chars().any(|c| c.is_control() || c.is_whitespace());
    match playlist {
        m3u8_rs::Playlist::MasterPlaylist(master) => {
            if let Some(v) = master.variants.iter().find(|v| !uri_ok(&v.uri)) {
                return Err(format!("variant URI {:?} is not a URI", v.uri));
            }
        }
        m3u8_rs::Playlist::MediaPlaylist(media) => {
            for (n, segment) in media.segments.iter().enumerate() {
                if !uri_ok(&segment.uri) {
                    return Err(format!("segment {n} has URI {:?}, which is not a URI", segment.uri));
                }
                let d = segment.duration;
                if !(d.is_finite() && d > 0.0 && d <= ts::MAX_SPAN_SECONDS as f32) {
                    return Err(format!(
                        "segment {n} ({}) has #EXTINF duration {d}, not a number of seconds in (0, {}]",
                        segment.uri,
                        ts::MAX_SPAN_SECONDS
                    ));
                }
            }
        }
    }
    Ok(())
}

async fn ingest_playlist(app: &App, up: Upload<'_>) -> Result<Response, EdgeError> {
    let playlist = m3u8_rs::parse_playlist_res(&up.body)
        .map_err(|_| EdgeError::bad_request(format!("playlist {}: not a valid HLS playlist (RFC 8216)", up.path)))?;
    check_playlist(&playlist).map_err(|e| EdgeError::bad_request(format!("playlist {}: {e}", up.path)))?;
    let catalog = Catalog(app.stores.index.as_ref());
    let pk = stream_partition(&up.channel.id);
    let dir = up.path.rsplit_once('/').map_or("", |(d, _)| d);
    let resolve = |uri: &str| -> String {
        let uri = uri.split('?').next().unwrap_or(uri);
        if dir.is_empty() || uri.starts_with('/') || uri.contains("://") {
            uri.rsplit("://")
                .next()
                .unwrap_or(uri)
                .trim_start_matches('/')
                .to_owned()
        } else {
            format!("{dir}/{uri}")
        }
    };
    match &playlist {
        m3u8_rs::Playlist::MasterPlaylist(master) => {
            let variants = master
                .variants
                .iter()
                .filter(|v| !v.is_i_frame)
                .map(|v| (resolve(&v.uri), v.bandwidth))
                .collect();
            let master = IngestMaster { variants };
            if catalog.get::<IngestMaster>(&pk, "master").await?.as_ref() != Some(&master) {
                catalog.put(&pk, "master", &master, Condition::Always).await?;
            }
        }
        m3u8_rs::Playlist::MediaPlaylist(media) => {
            if let Some(first) = media.segments.first() {
                let mapping = IngestPlaylist {
                    rendition: rendition_id(&resolve(&first.uri)),
                };
                let sk = format!("playlist#{}", up.path);
                if catalog.get::<IngestPlaylist>(&pk, &sk).await?.as_ref() != Some(&mapping) {
                    catalog.put(&pk, &sk, &mapping, Condition::Always).await?;
                }
                if media.end_list {
                    end_of_stream(app, &up, &mapping.rendition).await?;
                }
            }
        }
    }
    let key = format!("{}/{}/{}", up.channel.id, up.endpoint.id, up.path);
    app.stores
        .objects
        .put(&key, up.body, "application/vnd.apple.mpegurl")
        .await?;
    tracing::debug!(path = %up.path, "playlist stored");
    Ok(StatusCode::CREATED.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_segments_find_their_init_segment() {
        let doc = |at: i64| InitSegment {
            bytes: at.to_string(),
            received_at: UnixMillis(at),
        };
        let found = |path: &str, inits: &[(String, InitSegment)]| init_for(path, inits).map(|d| d.bytes.clone());
        // One folder per rendition (ffmpeg with %v in the folder).
        let per_folder = [
            ("360p/init.mp4".to_owned(), doc(1)),
            ("180p/init.mp4".to_owned(), doc(2)),
        ];
        assert_eq!(found("360p/seg_00007.m4s", &per_folder).as_deref(), Some("1"));
        assert_eq!(found("180p/seg_00007.m4s", &per_folder).as_deref(), Some("2"));
        assert_eq!(found("720p/seg_00007.m4s", &per_folder), None);
        // One folder for all (ffmpeg with %v in the file names).
        let flat = [("init_0.mp4".to_owned(), doc(1)), ("init_1.mp4".to_owned(), doc(2))];
        assert_eq!(found("seg_1_00003.m4s", &flat).as_deref(), Some("2"));
        assert_eq!(found("seg_0_00003.m4s", &flat).as_deref(), Some("1"));
        // Names that say nothing: the newest.
        assert_eq!(found("video00003.m4s", &flat).as_deref(), Some("2"));
    }

    #[test]
    fn rendition_ids_follow_encoder_naming() {
        assert_eq!(rendition_id("360p/seg_00012.ts"), "360p-seg");
        assert_eq!(rendition_id("channel_1_00001.ts"), "channel_1");
        assert_eq!(rendition_id("channel-high-00230.ts"), "channel-high");
        assert_eq!(rendition_id("720p/00001.ts"), "720p");
        assert_eq!(rendition_id("00001.ts"), "default");
        assert_eq!(rendition_id("a b/x.y_1.ts"), "a-b-x-y");
    }

    #[test]
    fn frame_rates_snap_to_broadcast_rates() {
        assert_eq!(snap_frame_rate(25.01), 25.0);
        assert_eq!(snap_frame_rate(29.969), 29.97);
        assert_eq!(snap_frame_rate(12.3456), 12.346);
    }

    fn indexed(start: u64, pts_offset: i64) -> SegmentRecord {
        SegmentRecord {
            pts_offset,
            ..crate::store::contract::record("r", start, 0)
        }
    }

    #[test]
    fn placement_follows_the_encoder_timeline() {
        // First segment: taken as is.
        assert_eq!(
            place(126_000, None),
            Placement::Next {
                start: Ticks(126_000),
                pts_offset: 0,
                discontinuity: false
            }
        );
        // The next 2 s segment continues.
        let last = indexed(126_000, 0);
        assert_eq!(
            place(306_000, Some(&last)),
            Placement::Next {
                start: Ticks(306_000),
                pts_offset: 0,
                discontinuity: false
            }
        );
        // A re-send of the same slot is behind, not far.
        assert_eq!(
            place(126_000, Some(&last)),
            Placement::Behind {
                start: Ticks(126_000),
                far: false
            }
        );
        // A forward jump of a minute is a discontinuity on the same offset.
        assert_eq!(
            place(5_706_000, Some(&last)),
            Placement::Next {
                start: Ticks(5_706_000),
                pts_offset: 0,
                discontinuity: true
            }
        );
        // An encoder restart (PTS back to 1.4 s after 100 s): far behind.
        let late = indexed(9_126_000, 0);
        assert_eq!(
            place(126_000, Some(&late)),
            Placement::Behind {
                start: Ticks(126_000),
                far: true
            }
        );
        // After a restart the encoder's PTS are mapped through the new offset.
        let restarted = indexed(9_306_000, 9_180_000); // encoder PTS 126_000
        assert_eq!(
            place(306_000, Some(&restarted)),
            Placement::Next {
                start: Ticks(9_486_000),
                pts_offset: 9_180_000,
                discontinuity: false
            }
        );
        // The 33-bit wrap is not a discontinuity.
        let near_wrap = indexed(crate::time::PTS_WRAP - 90_000, 0);
        assert_eq!(
            place(90_000, Some(&near_wrap)),
            Placement::Next {
                start: Ticks(crate::time::PTS_WRAP + 90_000),
                pts_offset: 0,
                discontinuity: false
            }
        );
    }

    #[test]
    fn paths_cannot_escape() {
        assert!(clean_path("../x.ts").is_err());
        assert!(clean_path("a/./x.ts").is_err());
        assert_eq!(clean_path("a//b.ts").unwrap(), "a/b.ts");
        for bad in ["a/b\0.ts", "a\nfake.ts", "a/\u{1b}[31m.ts", "a\r.ts", "a/\u{7f}.ts"] {
            let e = clean_path(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad:?}");
            assert!(e.message.contains("control character"), "{}", e.message);
        }
        let long_name = format!("a/{}.ts", "x".repeat(253));
        let e = clean_path(&long_name).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("longer than 255 bytes"), "{}", e.message);
        assert!(clean_path(&format!("a/{}.ts", "x".repeat(252))).is_ok());
        let long_path = format!("{}x.ts", "abcdefgh/".repeat(60));
        let e = clean_path(&long_path).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("more than the 512"), "{}", e.message);
        assert_eq!(clean_path("360p/segment_00001.ts").unwrap(), "360p/segment_00001.ts");
    }
}
