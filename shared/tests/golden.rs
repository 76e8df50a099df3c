//! Golden manifests: the playlists for a fixed set of index records, compared byte for
//! byte with `tests/golden/*.m3u8` (reviewed by a person; also parsed by the independent
//! Python `m3u8` parser in tests/e2e/test_golden.py). Regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p sluice --test golden` and review the diff.

use sluice::catalog::{stream_partition, Catalog, IngestMaster, IngestPlaylist, CHANNELS, ENDPOINTS};
use sluice::config::{Config, StoreConfig};
use sluice::model::{Channel, HlsPackage, OriginEndpoint, Package, PlaylistType, Rendition, SegmentRecord};
use sluice::store::Condition;
use sluice::time::{Ticks, UnixMillis};
use sluice::App;
use tower::ServiceExt;

/// 2.002 s inputs (60 frames at 29.97 fps) starting at ffmpeg's default offset of 1.4 s.
const INPUT: Ticks = Ticks(180_180);

fn record(rendition: &str, i: u64) -> SegmentRecord {
    let start = Ticks(126_000 + i * INPUT.0);
    SegmentRecord {
        channel: "golden".into(),
        rendition: rendition.into(),
        start,
        duration: INPUT,
        sequence: i,
        ingest_endpoint: "ie".into(),
        object_key: format!("golden/ie/{rendition}/{}.ts", start.0),
        size: 500_000,
        program_date_time: UnixMillis(1_764_000_000_000 + (i * INPUT.0 / 90) as i64),
        received_at: UnixMillis(0),
        starts_with_keyframe: true,
        source_name: format!("{rendition}/seg_{i:05}.ts"),
        pts_offset: 0,
        discontinuity: false,
        discontinuity_sequence: 0,
        iframes: Vec::new(),
        keyframes_before: 0,
        // Numbered as the publish step would have numbered them.
        published: true,
    }
}

fn rendition(id: &str, size: (u32, u32), bandwidth: u64, codecs: &[&str]) -> Rendition {
    Rendition {
        id: id.into(),
        codecs: codecs.iter().map(|c| c.to_string()).collect(),
        resolution: Some(size),
        frame_rate: Some(29.97),
        peak_bandwidth: bandwidth,
        average_bandwidth: bandwidth * 9 / 10,
        max_segment_duration: INPUT,
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
        first_segment: UnixMillis(0),
        updated_at: UnixMillis(0),
    }
}

fn package(segment: u32, window: u32, pdt: u32, playlist_type: PlaylistType) -> HlsPackage {
    HlsPackage {
        segment_duration_seconds: segment,
        playlist_window_seconds: window,
        program_date_time_interval_seconds: pdt,
        playlist_type,
        stream_selection: None,
        include_iframe_only_stream: false,
        use_audio_rendition_group: false,
        ad_selection: Default::default(),
        encryption: None,
    }
}

async fn app() -> App {
    let app = App::from_config(Config {
        // Fixed timestamps from long ago: not a stale live stream.
        stale_after_target_durations: 0,
        ..Config::local("http://golden", StoreConfig::Memory)
    })
    .await
    .unwrap();
    let catalog = Catalog(app.stores.index.as_ref());
    let channel = Channel {
        id: "golden".into(),
        guid: "0".repeat(32),
        created_at: UnixMillis(0),
        description: None,
        tags: Default::default(),
        ingest_endpoints: vec![],
        egress_log_group: None,
        ingress_log_group: None,
    };
    catalog
        .put(CHANNELS, "golden", &channel, Condition::Always)
        .await
        .unwrap();
    let endpoints = [
        ("live2", package(2, 10, 4, PlaylistType::None)),
        ("live6", package(6, 30, 0, PlaylistType::Event)),
    ];
    for (id, package) in endpoints {
        let endpoint = OriginEndpoint {
            id: id.into(),
            guid: "1".repeat(32),
            channel_id: "golden".into(),
            created_at: UnixMillis(0),
            description: None,
            manifest_name: "index".into(),
            package: Package::Hls(package),
            tags: Default::default(),
            authorization: None,
            whitelist: Vec::new(),
            origination: Default::default(),
        };
        catalog.put(ENDPOINTS, id, &endpoint, Condition::Always).await.unwrap();
    }
    let pk = stream_partition("golden");
    let low = rendition("180p", (320, 180), 300_000, &["avc1.42c00d", "mp4a.40.2"]);
    let high = rendition("720p", (1280, 720), 3_000_000, &["avc1.64001f", "mp4a.40.2"]);
    catalog
        .put(&pk, "rendition#180p", &low, Condition::Always)
        .await
        .unwrap();
    catalog
        .put(&pk, "rendition#720p", &high, Condition::Always)
        .await
        .unwrap();
    // The encoder listed 180p first in its multivariant playlist; the output keeps that order.
    let master = IngestMaster {
        variants: vec![
            ("180p/index.m3u8".into(), 300_000),
            ("720p/index.m3u8".into(), 3_000_000),
        ],
        audio: Vec::new(),
        subtitles: Vec::new(),
    };
    catalog.put(&pk, "master", &master, Condition::Always).await.unwrap();
    for r in ["720p", "180p"] {
        let playlist = IngestPlaylist { rendition: r.into() };
        catalog
            .put(&pk, &format!("playlist#{r}/index.m3u8"), &playlist, Condition::Always)
            .await
            .unwrap();
        for i in 0..20 {
            app.stores.index.insert_segment(&record(r, i), i).await.unwrap(); // a fresh partition: version i
        }
    }
    app
}

async fn get(app: &App, uri: &str) -> (u16, String, String) {
    let req = axum::http::Request::get(uri).body(axum::body::Body::empty()).unwrap();
    let response = sluice::http::all_routes(app).oneshot(req).await.unwrap();
    let status = response.status().as_u16();
    let cache = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, cache, String::from_utf8(body.to_vec()).unwrap())
}

fn compare(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(name);
    if std::env::var("UPDATE_GOLDEN").is_ok() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing golden file {}", path.display()));
    assert_eq!(actual, expected, "{name} differs from the golden file");
}

#[tokio::test]
async fn playlists_match_golden_files() {
    let app = app().await;
    let cases = [
        ("/out/v1/live2/index.m3u8", "multivariant.m3u8", "max-age=1"),
        (
            "/out/v1/live2/index_720p.m3u8",
            "media_2s_window10_pdt4.m3u8",
            "max-age=1",
        ),
        (
            "/out/v1/live6/index_180p.m3u8",
            "media_6s_window30_event.m3u8",
            "max-age=3",
        ),
    ];
    for (uri, golden, cache) in cases {
        let (status, cache_control, body) = get(&app, uri).await;
        assert_eq!(status, 200, "{uri}: {body}");
        assert_eq!(cache_control, cache, "{uri}");
        compare(golden, &body);
    }
}

#[tokio::test]
async fn unknown_files_and_renditions_are_404_with_short_cache() {
    let app = app().await;
    for uri in [
        "/out/v1/live2/other.m3u8",
        "/out/v1/live2/index_1080p.m3u8",
        "/out/v1/live2/index_720p_999.ts",
        "/out/v1/nope/index.m3u8",
    ] {
        let (status, cache, body) = get(&app, uri).await;
        assert_eq!(status, 404, "{uri}");
        assert_eq!(cache, "max-age=1", "{uri}");
        assert!(!body.trim().is_empty(), "{uri}: a 404 explains itself");
    }
}
