//! The `--demo` mode: a channel and HLS endpoint fed by a looping live stream built from
//! pre-encoded TS segments, pushed through the real ingest path over HTTP exactly as an
//! encoder would (Basic auth, PUT per segment and playlist). Also serves the demo page.

use anyhow::{bail, Context};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use sluice::media::ts;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CHANNEL: &str = "demo";
const ENDPOINT: &str = "demo-hls";
/// Segments pushed immediately at start.
const PREROLL_SEGMENTS: usize = 3;

pub(crate) type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// One rendition of the pre-encoded loop.
#[derive(Clone)]
pub(crate) struct LoopRendition {
    pub name: String,
    pub segments: Vec<Bytes>,
}

/// Called with each upload's status and time taken (the load test counts them).
pub(crate) type UploadObserver = std::sync::Arc<dyn Fn(u16, Duration) + Send + Sync>;

/// Creates the demo channel and endpoint through the control API and starts feeding it.
/// Returns the playback URL.
pub async fn start(base_url: &str, demo_dir: &Path) -> anyhow::Result<String> {
    let renditions = load(demo_dir)?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let fed = channel_with_endpoint(
        &client,
        base_url,
        CHANNEL,
        ENDPOINT,
        r#"{"segmentDurationSeconds":2,"playlistWindowSeconds":30,"programDateTimeIntervalSeconds":2}"#,
    )
    .await?;
    tokio::spawn(async move {
        if let Err(e) = feed(client, fed.folder, fed.auth, renditions, None).await {
            tracing::error!(error = %e, "demo feeder stopped");
        }
    });
    Ok(fed.endpoint_url)
}

/// What an encoder needs to push to a channel, and where players find it.
pub(crate) struct FedChannel {
    pub endpoint_url: String,
    /// The first ingest endpoint's folder URL (ends with `/`).
    pub folder: String,
    /// Its `Authorization: Basic` value.
    pub auth: String,
}

/// Creates a channel and one HLS endpoint with `hls_package` through the control API
/// (keeping them if they exist).
pub(crate) async fn channel_with_endpoint(
    client: &HttpClient,
    base_url: &str,
    channel_id: &str,
    endpoint_id: &str,
    hls_package: &str,
) -> anyhow::Result<FedChannel> {
    let channel = ensure(
        client,
        base_url,
        "/channels",
        format!(r#"{{"id":"{channel_id}","description":"fed by sluice-local"}}"#),
        &format!("/channels/{channel_id}"),
    )
    .await?;
    let body = format!(
        r#"{{"id":"{endpoint_id}","channelId":"{channel_id}","manifestName":"index","hlsPackage":{hls_package}}}"#
    );
    let endpoint = ensure(
        client,
        base_url,
        "/origin_endpoints",
        body,
        &format!("/origin_endpoints/{endpoint_id}"),
    )
    .await?;
    let ingest = &channel["hlsIngest"]["ingestEndpoints"][0];
    let (Some(url), Some(user), Some(pass)) = (
        ingest["url"].as_str(),
        ingest["username"].as_str(),
        ingest["password"].as_str(),
    ) else {
        bail!("CreateChannel response has no ingest endpoint: {channel}");
    };
    Ok(FedChannel {
        endpoint_url: endpoint["url"].as_str().context("endpoint has no url")?.to_owned(),
        folder: url.trim_end_matches("channel").to_owned(),
        auth: format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        ),
    })
}

/// POSTs `body` to `path` unless the resource at `get_path` already exists; returns it.
pub(crate) async fn ensure(
    client: &HttpClient,
    base: &str,
    path: &str,
    body: String,
    get_path: &str,
) -> anyhow::Result<Value> {
    let (status, existing) = send(client, "GET", &format!("{base}{get_path}"), None, Bytes::new()).await?;
    if status == 200 {
        return Ok(serde_json::from_slice(&existing)?);
    }
    let (status, created) = send(client, "POST", &format!("{base}{path}"), None, Bytes::from(body)).await?;
    if status != 200 {
        bail!("POST {path} answered {status}: {}", String::from_utf8_lossy(&created));
    }
    Ok(serde_json::from_slice(&created)?)
}

pub(crate) async fn send(
    client: &HttpClient,
    method: &str,
    url: &str,
    auth: Option<&str>,
    body: Bytes,
) -> anyhow::Result<(u16, Bytes)> {
    let mut request = http::Request::builder().method(method).uri(url);
    if let Some(auth) = auth {
        request = request.header(http::header::AUTHORIZATION, auth);
    }
    let response = client
        .request(request.body(Full::new(body))?)
        .await
        .with_context(|| format!("{method} {url}"))?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

pub(crate) fn load(dir: &Path) -> anyhow::Result<Vec<LoopRendition>> {
    let mut renditions = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("demo folder {} is missing", dir.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "ts"))
            .collect();
        files.sort();
        if files.is_empty() {
            continue;
        }
        let segments = files
            .iter()
            .map(|f| std::fs::read(f).map(Bytes::from))
            .collect::<Result<Vec<_>, _>>()?;
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        renditions.push(LoopRendition { name, segments });
    }
    if renditions.is_empty() {
        bail!("no renditions with .ts segments under {}", dir.display());
    }
    // Highest bit rate first in the multivariant playlist, as encoders usually list them.
    renditions.sort_by_key(|r| std::cmp::Reverse(r.segments.iter().map(|s| s.len()).sum::<usize>()));
    Ok(renditions)
}

/// Pushes the loop forever in real time, shifting timestamps by the loop length each pass.
pub(crate) async fn feed(
    client: HttpClient,
    folder: String,
    auth: String,
    renditions: Vec<LoopRendition>,
    observer: Option<UploadObserver>,
) -> anyhow::Result<()> {
    let put = |url: String, body: Bytes| {
        let (client, auth, observer) = (&client, &auth, observer.clone());
        async move {
            let started = std::time::Instant::now();
            let (status, body) = send(client, "PUT", &url, Some(auth), body).await?;
            if let Some(observe) = &observer {
                observe(status, started.elapsed());
            }
            if status >= 300 {
                tracing::warn!(status, url, body = %String::from_utf8_lossy(&body), "upload refused");
            }
            anyhow::Ok(())
        }
    };
    let first = &renditions[0].segments;
    let infos = first.iter().map(|s| ts::analyze(s)).collect::<Result<Vec<_>, _>>()?;
    let loop_ticks: u64 = infos.iter().map(|i| i.duration.0).sum();
    let durations: Vec<f64> = infos.iter().map(|i| i.duration.as_secs_f64()).collect();
    let master = master_playlist(&renditions);
    put(format!("{folder}master.m3u8"), Bytes::from(master)).await?;
    // Pre-roll: the first segments go out at once, as if the stream had been live for a
    // while, so a player opened right after start has a live window to join.
    let preroll: f64 = durations.iter().take(PREROLL_SEGMENTS).sum();
    let started = tokio::time::Instant::now();
    let mut elapsed = -preroll;
    let mut counter: u64 = 0;
    for pass in 0u64.. {
        for (i, duration) in durations.iter().enumerate() {
            elapsed += duration;
            tokio::time::sleep_until(started + Duration::from_secs_f64(elapsed.max(0.0))).await;
            for r in &renditions {
                let Some(segment) = r.segments.get(i) else { continue };
                let mut bytes = segment.to_vec();
                ts::shift_timestamps(&mut bytes, pass * loop_ticks);
                put(format!("{folder}{}/seg_{counter:05}.ts", r.name), Bytes::from(bytes)).await?;
                let playlist = format!(
                    "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{counter}\n#EXTINF:{duration:.3},\nseg_{counter:05}.ts\n",
                    duration.ceil()
                );
                put(format!("{folder}{}/index.m3u8", r.name), Bytes::from(playlist)).await?;
            }
            counter += 1;
        }
    }
    Ok(())
}

fn master_playlist(renditions: &[LoopRendition]) -> String {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
    for r in renditions {
        let bytes: usize = r.segments.iter().map(|s| s.len()).sum();
        let secs = r.segments.len() as f64 * 2.0;
        out.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={}\n{}/index.m3u8\n",
            (bytes as f64 * 8.0 / secs) as u64,
            r.name
        ));
    }
    out
}

/// `/` (the demo page) and `/assets/*` (hls.js).
pub fn page_routes(assets: PathBuf) -> Router {
    Router::new().route("/", get(|| async { Html(PAGE) })).route(
        "/assets/{file}",
        get(move |axum::extract::Path(file): axum::extract::Path<String>| {
            let assets = assets.clone();
            async move { asset(&assets, &file).await }
        }),
    )
}

async fn asset(dir: &Path, file: &str) -> Response {
    if file.contains("..") || file.contains('/') {
        return (http::StatusCode::NOT_FOUND, "no such asset").into_response();
    }
    match tokio::fs::read(dir.join(file)).await {
        Ok(bytes) => ([(http::header::CONTENT_TYPE, "text/javascript")], bytes).into_response(),
        Err(e) => {
            // The folder is named in the server's log only: responses carry no local paths.
            tracing::warn!(asset = %file, folder = %dir.display(), error = %e, "demo asset missing");
            (
                http::StatusCode::NOT_FOUND,
                format!("asset {file:?} is missing from the --assets-dir folder"),
            )
                .into_response()
        }
    }
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Sluice demo</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;background:#111;color:#eee}video{width:100%;max-width:960px;background:#000}code{color:#8cf}</style>
</head>
<body>
<h1>Sluice</h1>
<p>Playing <code id="src"></code> with hls.js.</p>
<video id="video" controls muted autoplay playsinline></video>
<pre id="status"></pre>
<script src="/assets/hls.min.js"></script>
<script>
const params = new URLSearchParams(location.search);
const src = params.get('src') || (location.origin + '/out/v1/demo-hls/index.m3u8');
document.getElementById('src').textContent = src;
const video = document.getElementById('video');
const status = document.getElementById('status');
window.playerErrors = [];
if (window.Hls && Hls.isSupported()) {
  const hls = new Hls({ liveSyncDurationCount: 3 });
  hls.on(Hls.Events.ERROR, (_, data) => {
    window.playerErrors.push({ type: data.type, details: data.details, fatal: data.fatal });
    status.textContent = 'error: ' + data.details + (data.fatal ? ' (fatal)' : '');
  });
  hls.loadSource(src);
  hls.attachMedia(video);
  window.hls = hls;
} else {
  video.src = src;
}
setInterval(() => { if (!status.textContent.startsWith('error')) status.textContent = 'time ' + video.currentTime.toFixed(1) + ' s'; }, 500);
</script>
</body>
</html>
"#;
