//! Property test of byte-range requests on segments (RFC 9110 §14), through the origin's
//! routes as a player or CDN sends them: whatever the `Range` header, the answer is the
//! whole segment (200), one range inside it with its bytes (206), or 416 with the length;
//! never bytes outside the object. Segments here are output segments of three stored input
//! objects of various sizes (served back to back), so ranges cross input boundaries.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sluice::catalog::{Catalog, CHANNELS, ENDPOINTS};
use sluice::config::{Config as AppConfig, StoreConfig};
use sluice::model::{Channel, HlsPackage, OriginEndpoint, Package, PlaylistType, Rendition, SegmentRecord};
use sluice::store::{keys, Condition};
use sluice::time::{Ticks, UnixMillis};
use sluice::App;
use tower::ServiceExt;

const INPUT: u64 = 180_000;
/// Sizes of the stored inputs; every three make one 6 s output segment.
const SIZES: [usize; 12] = [1, 2, 3, 188, 1_000, 7, 376, 1, 4_000, 2_500, 2_500, 2_500];

fn record(i: u64, size: usize) -> SegmentRecord {
    let start = i * INPUT;
    SegmentRecord {
        channel: "ranges".into(),
        rendition: "r".into(),
        start: Ticks(start),
        duration: Ticks(INPUT),
        sequence: i,
        ingest_endpoint: "ie".into(),
        object_key: keys::segment_object("ranges", "ie", "r", start),
        size: size as u64,
        program_date_time: UnixMillis(0),
        received_at: UnixMillis(0),
        starts_with_keyframe: true,
        source_name: format!("r/seg_{i}.ts"),
        pts_offset: 0,
        discontinuity: false,
        discontinuity_sequence: 0,
        iframes: Vec::new(),
        keyframes_before: 0,
        published: true,
    }
}

/// Bytes of stored input `i`: different in every input and position.
fn bytes_of(i: usize, size: usize) -> Vec<u8> {
    (0..size).map(|j| ((i * 31 + j * 7) % 251) as u8).collect()
}

/// An origin on the memory store with one HLS endpoint; returns it and each output
/// segment's URI with its expected bytes.
async fn origin() -> (App, Vec<(String, Vec<u8>)>) {
    let app = App::from_config(AppConfig {
        stale_after_target_durations: 0,
        ..AppConfig::local("http://ranges", StoreConfig::Memory)
    })
    .await
    .unwrap();
    let catalog = Catalog(app.stores.index.as_ref());
    let channel = Channel {
        id: "ranges".into(),
        guid: "0".repeat(32),
        created_at: UnixMillis(0),
        description: None,
        tags: Default::default(),
        ingest_endpoints: vec![],
        egress_log_group: None,
        ingress_log_group: None,
    };
    catalog
        .put(CHANNELS, "ranges", &channel, Condition::Always)
        .await
        .unwrap();
    let endpoint = OriginEndpoint {
        id: "ts".into(),
        guid: "1".repeat(32),
        channel_id: "ranges".into(),
        created_at: UnixMillis(0),
        description: None,
        manifest_name: "index".into(),
        package: Package::Hls(HlsPackage {
            segment_duration_seconds: 6,
            playlist_window_seconds: 60,
            program_date_time_interval_seconds: 0,
            playlist_type: PlaylistType::None,
            stream_selection: None,
            include_iframe_only_stream: false,
            use_audio_rendition_group: false,
            ad_selection: Default::default(),
            encryption: None,
        }),
        tags: Default::default(),
        authorization: None,
        whitelist: Vec::new(),
        origination: Default::default(),
    };
    catalog
        .put(ENDPOINTS, "ts", &endpoint, Condition::Always)
        .await
        .unwrap();
    // The rendition in its stored form; only what segment requests read is spelled out.
    let rendition: Rendition = serde_json::from_value(serde_json::json!({
        "id": "r", "codecs": ["avc1.64001f"], "peakBandwidth": 1, "averageBandwidth": 1,
        "maxSegmentDuration": INPUT, "targetSeconds": 2, "updatedAt": 0,
    }))
    .unwrap();
    catalog
        .put(
            &keys::stream("ranges"),
            &keys::rendition("r"),
            &rendition,
            Condition::Always,
        )
        .await
        .unwrap();
    let mut segments: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, size) in SIZES.iter().enumerate() {
        let record = record(i as u64, *size);
        let body = bytes_of(i, *size);
        app.stores
            .objects
            .put(&record.object_key, body.clone().into(), "video/mp2t")
            .await
            .unwrap();
        app.stores.index.insert_segment(&record, i as u64).await.unwrap();
        if i % 3 == 0 {
            segments.push((format!("/out/v1/ts/index_r_{}.ts", record.start.0), Vec::new()));
        }
        segments.last_mut().unwrap().1.extend(body);
    }
    (app, segments)
}

/// What RFC 9110 §14.1.2 makes of a single well-formed byte range over `len` bytes:
/// `Some(Some((first, last)))` to serve, `Some(None)` unsatisfiable, `None` no range.
fn rfc9110(form: &Form, len: u64) -> Option<Option<(u64, u64)>> {
    match *form {
        Form::FromTo(first, last) if first <= last => Some((first < len).then(|| (first, last.min(len - 1)))),
        Form::From(first) => Some((first < len).then(|| (first, len - 1))),
        Form::Suffix(n) => Some((n > 0 && len > 0).then(|| (len - n.min(len), len - 1))),
        _ => None,
    }
}

/// The `Range` headers tried: the single-range forms, several ranges, and anything else.
#[derive(Clone, Debug)]
enum Form {
    FromTo(u64, u64),
    From(u64),
    Suffix(u64),
    Several(u64, u64, u64, u64),
    Other(String),
}

impl Form {
    fn header(&self) -> String {
        match self {
            Form::FromTo(a, b) => format!("bytes={a}-{b}"),
            Form::From(a) => format!("bytes={a}-"),
            Form::Suffix(n) => format!("bytes=-{n}"),
            Form::Several(a, b, c, d) => format!("bytes={a}-{b}, {c}-{d}"),
            Form::Other(s) => s.clone(),
        }
    }
}

/// Forms over a segment of `len` bytes: offsets at or near its start, anywhere up to past its
/// end, one byte around its end, and the largest there is.
fn forms(len: u64) -> impl Strategy<Value = Form> {
    let offset = prop_oneof![
        Just(0),
        0u64..16,
        0u64..12_000,
        len.saturating_sub(1)..=len + 1,
        Just(u64::MAX)
    ];
    prop_oneof![
        (offset.clone(), offset.clone()).prop_map(|(a, b)| Form::FromTo(a, b)),
        offset.clone().prop_map(Form::From),
        offset.clone().prop_map(Form::Suffix),
        (offset.clone(), offset.clone(), offset.clone(), offset).prop_map(|(a, b, c, d)| Form::Several(a, b, c, d)),
        "(bytes)?[= ]{0,2}[-0-9, a-z]{0,12}".prop_map(Form::Other),
    ]
}

async fn get(app: &App, uri: &str, range: &str) -> (u16, Option<String>, Vec<u8>) {
    let req = axum::http::Request::get(uri)
        .header("range", range)
        .body(axum::body::Body::empty())
        .unwrap();
    let response = sluice::http::all_routes(app).oneshot(req).await.unwrap();
    let status = response.status().as_u16();
    let content_range = response
        .headers()
        .get("content-range")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, content_range, body.to_vec())
}

#[test]
fn ranges_never_leave_the_segment() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (app, segments) = runtime.block_on(origin());
    let config = Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    };
    let lengths: Vec<u64> = segments.iter().map(|(_, bytes)| bytes.len() as u64).collect();
    let cases = (0..segments.len()).prop_flat_map(move |i| (Just(i), forms(lengths[i])));
    TestRunner::new(config)
        .run(&cases, |(segment, form)| {
            let (uri, whole) = &segments[segment];
            let len = whole.len() as u64;
            let (status, content_range, body) = runtime.block_on(get(&app, uri, &form.header()));
            // Any other header text may or may not be a range: only the invariants apply.
            let model = (!matches!(form, Form::Other(_))).then(|| rfc9110(&form, len));
            match status {
                200 => {
                    prop_assert_eq!(&body, whole, "a 200 is the whole segment");
                    prop_assert!(content_range.is_none());
                }
                206 => {
                    let range = content_range.unwrap_or_default();
                    let (span, total) = range
                        .strip_prefix("bytes ")
                        .and_then(|r| r.split_once('/'))
                        .unwrap_or_else(|| panic!("Content-Range {range:?}"));
                    let (first, last) = span.split_once('-').unwrap();
                    let (first, last): (u64, u64) = (first.parse().unwrap(), last.parse().unwrap());
                    prop_assert_eq!(total.parse::<u64>().unwrap(), len);
                    prop_assert!(first <= last && last < len, "{} outside {} bytes", range, len);
                    prop_assert_eq!(&body[..], &whole[first as usize..=last as usize]);
                    prop_assert!(model.is_none_or(|m| m == Some(Some((first, last)))));
                }
                416 => {
                    prop_assert_eq!(content_range, Some(format!("bytes */{len}")));
                    prop_assert!(
                        model.is_none_or(|m| m == Some(None)),
                        "416 only for an unsatisfiable range"
                    );
                }
                other => prop_assert!(false, "status {} for Range {:?}", other, form.header()),
            }
            // Every well-formed single range is honoured as RFC 9110 says; several ranges
            // and malformed ones are answered with the whole segment.
            if let Some(model) = model {
                let expected = match model {
                    Some(Some(_)) => 206,
                    Some(None) => 416,
                    None => 200,
                };
                prop_assert_eq!(status, expected, "Range {:?} over {} bytes", form.header(), len);
            }
            Ok(())
        })
        .unwrap();
}
