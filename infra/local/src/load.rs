//! `sluice-local load`: a load test on loopback. The demo feeder pushes N channels with R
//! renditions each in real time through the ingest API (as encoders do) while C viewer
//! tasks request multivariant playlists, media playlists and the newest segment as fast
//! as they get answers. Reports throughput and latency percentiles per request kind and
//! fails (exit status 1) on any error: an upload not answered 2xx, a playback request not
//! answered 200, or a request that did not complete.

use crate::demo::{self, HttpClient, LoopRendition};
use anyhow::bail;
use bytes::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What to run.
pub struct Plan {
    pub channels: usize,
    pub renditions: usize,
    pub seconds: u64,
    pub concurrency: usize,
}

/// Latencies and failures of one request kind.
#[derive(Default)]
struct Kind {
    micros: Vec<u64>,
    bytes: u64,
    errors: Vec<String>,
}

#[derive(Default)]
struct Stats {
    kinds: Mutex<BTreeMap<&'static str, Kind>>,
}

impl Stats {
    fn record(&self, kind: &'static str, ok: bool, took: Duration, bytes: usize, what: impl FnOnce() -> String) {
        let mut kinds = self.kinds.lock().expect("stats lock");
        let k = kinds.entry(kind).or_default();
        k.micros.push(took.as_micros() as u64);
        k.bytes += bytes as u64;
        if !ok && k.errors.len() < 20 {
            k.errors.push(what());
        } else if !ok {
            k.errors.push(String::new());
        }
    }
}

/// One channel under load: its endpoint's base URL and media playlist names.
struct Target {
    base: String,
    multivariant: String,
    media: Vec<String>,
}

/// Runs the plan against the server at `base_url`; prints the report; Err on any error.
pub async fn run(base_url: &str, demo_dir: &Path, plan: &Plan) -> anyhow::Result<()> {
    let source = demo::load(demo_dir)?;
    // R renditions from the pre-encoded loop, reusing its encodings under new names.
    let renditions: Vec<LoopRendition> = (0..plan.renditions)
        .map(|i| {
            let r = &source[i % source.len()];
            LoopRendition {
                name: format!("{}-{}", r.name, i),
                segments: r.segments.clone(),
            }
        })
        .collect();
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(plan.concurrency + plan.channels + 8)
        .build_http();
    let stats = Arc::new(Stats::default());
    let mut feeders = Vec::new();
    let mut endpoints = Vec::new();
    for c in 0..plan.channels {
        let id = format!("load{c}");
        let fed = demo::channel_with_endpoint(
            &client,
            base_url,
            &id,
            &format!("{id}-hls"),
            r#"{"segmentDurationSeconds":2,"playlistWindowSeconds":30}"#,
        )
        .await?;
        let observed = stats.clone();
        let observer: demo::UploadObserver = Arc::new(move |status, took| {
            observed.record("ingest PUT", (200..300).contains(&status), took, 0, || {
                format!("upload answered {status}")
            })
        });
        let (client, renditions) = (client.clone(), renditions.clone());
        feeders.push(tokio::spawn(async move {
            demo::feed(client, fed.folder, fed.auth, renditions, Some(observer)).await
        }));
        endpoints.push(fed.endpoint_url);
    }

    // Wait until every channel lists every rendition and serves its media playlists.
    let mut targets = Vec::new();
    for url in &endpoints {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = demo::send(&client, "GET", url, None, Bytes::new()).await?;
            let media: Vec<String> = String::from_utf8_lossy(&body)
                .lines()
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned)
                .collect();
            let base = url.rsplit_once('/').map_or("", |(b, _)| b).to_owned();
            let mut ready = status == 200 && media.len() == plan.renditions;
            for m in &media {
                if ready {
                    ready = demo::send(&client, "GET", &format!("{base}/{m}"), None, Bytes::new())
                        .await?
                        .0
                        == 200;
                }
            }
            if ready {
                targets.push(Target {
                    base,
                    multivariant: url.clone(),
                    media,
                });
                break;
            }
            if Instant::now() > deadline {
                bail!("{url} did not list {} playable renditions within 30 s", plan.renditions);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let targets = Arc::new(targets);

    println!(
        "load: {} channels x {} renditions fed in real time, {} viewer tasks for {} s",
        plan.channels, plan.renditions, plan.concurrency, plan.seconds
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(plan.seconds);
    let mut viewers = Vec::new();
    for v in 0..plan.concurrency {
        let (client, stats, targets) = (client.clone(), stats.clone(), targets.clone());
        viewers.push(tokio::spawn(async move {
            let mut n = v;
            while Instant::now() < deadline {
                let target = &targets[n % targets.len()];
                let media = &target.media[(n / targets.len()) % target.media.len()];
                n += 1;
                if n % 10 == 0 {
                    get(&client, &stats, "multivariant", &target.multivariant).await;
                }
                let playlist = format!("{}/{media}", target.base);
                let Some(body) = get(&client, &stats, "media playlist", &playlist).await else {
                    continue;
                };
                let newest = String::from_utf8_lossy(&body)
                    .lines()
                    .rfind(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned);
                if let Some(segment) = newest {
                    get(&client, &stats, "segment", &format!("{}/{segment}", target.base)).await;
                }
            }
        }));
    }
    for v in viewers {
        v.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    for f in &feeders {
        f.abort();
    }
    report(&stats, elapsed)
}

async fn get(client: &HttpClient, stats: &Stats, kind: &'static str, url: &str) -> Option<Bytes> {
    let started = Instant::now();
    match demo::send(client, "GET", url, None, Bytes::new()).await {
        Ok((200, body)) => {
            stats.record(kind, true, started.elapsed(), body.len(), String::new);
            Some(body)
        }
        Ok((status, body)) => {
            stats.record(kind, false, started.elapsed(), body.len(), || {
                format!("GET {url}: {status} {}", String::from_utf8_lossy(&body).trim())
            });
            None
        }
        Err(e) => {
            stats.record(kind, false, started.elapsed(), 0, || format!("GET {url}: {e:#}"));
            None
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn report(stats: &Stats, seconds: f64) -> anyhow::Result<()> {
    let mut kinds = stats.kinds.lock().expect("stats lock");
    println!(
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "kind", "requests", "req/s", "MB/s", "p50 ms", "p99 ms", "max ms", "errors"
    );
    let mut errors = Vec::new();
    for (name, kind) in kinds.iter_mut() {
        kind.micros.sort_unstable();
        println!(
            "{:<16} {:>9} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>7}",
            name,
            kind.micros.len(),
            kind.micros.len() as f64 / seconds,
            kind.bytes as f64 / seconds / 1e6,
            percentile(&kind.micros, 0.5),
            percentile(&kind.micros, 0.99),
            percentile(&kind.micros, 1.0),
            kind.errors.len()
        );
        errors.extend(kind.errors.iter().filter(|e| !e.is_empty()).cloned());
    }
    let total: usize = kinds.values().map(|k| k.errors.len()).sum();
    if total > 0 {
        for e in &errors {
            eprintln!("error: {e}");
        }
        bail!("{total} requests failed");
    }
    println!("load: no errors");
    Ok(())
}
