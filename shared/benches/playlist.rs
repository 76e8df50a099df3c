//! Media-playlist generation from the index: the work behind every live playlist
//! reload. Measured at two levels for a 30 s and a 15 min window of 2 s segments:
//! - `writer`: grouping + windowing + m3u8 writing from records already in memory;
//! - `request/{memory,local}`: a whole GET of the media playlist through the playback
//!   router, index read included (in-memory index, and the redb-backed local index).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use sluice::catalog::{stream_partition, Catalog, CHANNELS, ENDPOINTS};
use sluice::config::{Config, StoreConfig};
use sluice::live::timeline;
use sluice::manifest::hls;
use sluice::model::{Channel, HlsPackage, OriginEndpoint, Package, Rendition, SegmentRecord};
use sluice::store::Condition;
use sluice::time::{Ticks, UnixMillis};
use sluice::App;
use tower::ServiceExt;

const SEGMENT: Ticks = Ticks(180_000);
const WINDOWS: [u32; 2] = [30, 900];

fn record(i: u64) -> SegmentRecord {
    SegmentRecord {
        channel: "bench".into(),
        rendition: "720p".into(),
        start: Ticks(i * SEGMENT.0),
        duration: SEGMENT,
        sequence: i,
        ingest_endpoint: "ie".into(),
        object_key: format!("bench/ie/720p/{}.ts", i * SEGMENT.0),
        size: 750_000,
        program_date_time: UnixMillis(1_700_000_000_000 + i as i64 * 2000),
        received_at: UnixMillis(1_700_000_000_000 + i as i64 * 2000),
        starts_with_keyframe: true,
        source_name: format!("720p/seg_{i:05}.ts"),
        pts_offset: 0,
        discontinuity: false,
        discontinuity_sequence: 0,
        iframes: Vec::new(),
        keyframes_before: 0,
        // Numbered as the publish step would have numbered them.
        published: true,
    }
}

fn package(window: u32) -> HlsPackage {
    HlsPackage {
        segment_duration_seconds: 2,
        playlist_window_seconds: window,
        program_date_time_interval_seconds: 2,
        ..Default::default()
    }
}

fn rendition() -> Rendition {
    Rendition {
        id: "720p".into(),
        codecs: vec!["avc1.64001f".into(), "mp4a.40.2".into()],
        resolution: Some((1280, 720)),
        frame_rate: Some(25.0),
        peak_bandwidth: 3_000_000,
        average_bandwidth: 2_800_000,
        max_segment_duration: SEGMENT,
        declared_bandwidth: None,
        declared_order: None,
        iframe_bandwidth: 0,
        target_seconds: 2,
        recent_bandwidth: Vec::new(),
        recent_iframe_bandwidth: Vec::new(),
        recent_audio_bandwidth: Vec::new(),
        audio_channels: None,
        video_range: None,
        captions: Default::default(),
        inputs: Default::default(),
        updated_at: UnixMillis(0),
        first_segment: UnixMillis(0),
    }
}

async fn populated_app(store: StoreConfig, segments: u64) -> App {
    let app = App::from_config(Config {
        // Fixed timestamps from long ago: not a stale live stream.
        stale_after_target_durations: 0,
        ..Config::local("http://bench", store)
    })
    .await
    .expect("store opens");
    let catalog = Catalog(app.stores.index.as_ref());
    let channel = Channel {
        id: "bench".into(),
        guid: "0".repeat(32),
        created_at: UnixMillis(0),
        description: None,
        tags: Default::default(),
        ingest_endpoints: vec![],
        egress_log_group: None,
        ingress_log_group: None,
    };
    catalog
        .put(CHANNELS, "bench", &channel, Condition::Always)
        .await
        .unwrap();
    for window in WINDOWS {
        let endpoint = OriginEndpoint {
            id: format!("hls-{window}"),
            guid: "1".repeat(32),
            channel_id: "bench".into(),
            created_at: UnixMillis(0),
            description: None,
            manifest_name: "index".into(),
            package: Package::Hls(package(window)),
            tags: Default::default(),
            authorization: None,
            whitelist: Vec::new(),
            origination: Default::default(),
        };
        catalog
            .put(ENDPOINTS, &endpoint.id, &endpoint, Condition::Always)
            .await
            .unwrap();
    }
    catalog
        .put(
            &stream_partition("bench"),
            "rendition#720p",
            &rendition(),
            Condition::Always,
        )
        .await
        .unwrap();
    for i in 0..segments {
        app.stores.index.insert_segment(&record(i), i).await.unwrap(); // a fresh partition: version i
    }
    app
}

fn writer(c: &mut Criterion) {
    let records: Vec<SegmentRecord> = (0..1000).map(record).collect();
    let r = rendition();
    let mut group = c.benchmark_group("media_playlist/writer");
    for window in WINDOWS {
        let p = package(window);
        let wanted = window as usize / 2 + 4;
        let slice = &records[records.len() - wanted..];
        group.bench_with_input(BenchmarkId::from_parameter(format!("{window}s")), &window, |b, _| {
            b.iter(|| {
                let grouped = timeline::group_segments(slice, 1);
                let w = timeline::live_window(&grouped, Ticks::from_secs(u64::from(window)));
                let target = timeline::target_duration(w, &r, 1);
                hls::media_playlist(w, &(&p).into(), target, |s| format!("index_720p_{}.ts", s.start.0))
            })
        });
    }
    group.finish();
}

fn request(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stores = [
        ("memory", StoreConfig::Memory),
        (
            "local",
            StoreConfig::Local {
                data_dir: dir.path().to_path_buf(),
            },
        ),
    ];
    for (name, store) in stores {
        let app = rt.block_on(populated_app(store, 1000));
        let router = sluice::http::all_routes(&app);
        let mut group = c.benchmark_group(format!("media_playlist/request/{name}"));
        for window in WINDOWS {
            let uri = format!("/out/v1/hls-{window}/index_720p.m3u8");
            group.bench_with_input(BenchmarkId::from_parameter(format!("{window}s")), &uri, |b, uri| {
                b.iter(|| {
                    rt.block_on(async {
                        let req = axum::http::Request::get(uri.as_str())
                            .body(axum::body::Body::empty())
                            .unwrap();
                        let response = router.clone().oneshot(req).await.unwrap();
                        assert_eq!(response.status(), 200);
                        axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap()
                    })
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, writer, request);
criterion_main!(benches);
