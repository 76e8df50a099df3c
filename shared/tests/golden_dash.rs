//! Golden DASH MPDs per `segmentTemplateFormat` and `manifestLayout`, written by the pure
//! writer `manifest::dash::mpd` from index records numbered by the publish rule, with the
//! tracks the origin offers (two video renditions, the audio of the first). Compared byte
//! for byte with `tests/golden/dash_*.mpd` (reviewed by a person) and cross-checked
//! against ISO/IEC 23009-1 by an independent parser, the PyPI `mpegdash` package, in
//! tests/e2e/test_golden_dash.py. Regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p sluice --test golden_dash` and review the diff.

use sluice::live::publish::publishable;
use sluice::live::timeline::{self, OutputSegment};
use sluice::manifest::dash::{self, Adaptation, ContentType, Presentation, Representation};
use sluice::model::{AudioChannels, DashPackage, SegmentRecord};
use sluice::time::{Ticks, UnixMillis};

/// ffmpeg's default first PTS of 1.4 s.
const FIRST: u64 = 126_000;
/// 2.002 s inputs (60 frames at 29.97 fps) and exact 2 s ones (a CMAF encoder at 30 fps).
const NTSC: u64 = 180_180;
const EXACT: u64 = 180_000;
/// `availabilityStartTime`, the wall clock of media time zero: 2025-11-24T16:00:00Z.
const EPOCH_MS: i64 = 1_764_000_000_000;

/// An encoder's input segment as ingest indexes it (unpublished), arriving as it ends.
fn input(start: u64, duration: u64) -> SegmentRecord {
    let pdt = EPOCH_MS + (start / 90) as i64;
    SegmentRecord {
        channel: "golden".into(),
        rendition: "720p".into(),
        start: Ticks(start),
        duration: Ticks(duration),
        sequence: 0,
        ingest_endpoint: "ie".into(),
        object_key: sluice::store::keys::segment_object("golden", "ie", "720p", start),
        size: 400_000,
        program_date_time: UnixMillis(pdt),
        received_at: UnixMillis(pdt + (duration / 90) as i64),
        starts_with_keyframe: true,
        source_name: format!("720p/seg_{start}.ts"),
        pts_offset: 0,
        discontinuity: false,
        discontinuity_sequence: 0,
        iframes: Vec::new(),
        keyframes_before: 0,
        published: false,
    }
}

/// Inputs `0..count` of one encoder run, except those in `lost`, numbered by the publish
/// step once every hole's horizon has passed.
fn published(duration: u64, count: u64, lost: &[u64]) -> Vec<SegmentRecord> {
    let inputs: Vec<SegmentRecord> = (0..count)
        .filter(|i| !lost.contains(i))
        .map(|i| input(FIRST + i * duration, duration))
        .collect();
    let out = publishable(None, &inputs, UnixMillis(EPOCH_MS + 86_400_000), usize::MAX);
    assert_eq!(out.len(), inputs.len(), "every input is published");
    out
}

/// A `dashPackage` in its API (and stored) form.
fn package(settings: serde_json::Value) -> DashPackage {
    serde_json::from_value(settings).expect("a dashPackage")
}

/// The MPD the origin writes for `records` (every track has the same timeline), published
/// 1.5 s after the newest output segment ended.
fn mpd(package: &DashPackage, records: &[SegmentRecord], input: u64) -> String {
    let k = timeline::group_size(package.segment_duration_seconds, Ticks(input));
    let grouped = timeline::group_segments(records, k);
    let window: Vec<OutputSegment> =
        timeline::live_window(&grouped, Ticks::from_secs(u64::from(package.manifest_window_seconds))).to_vec();
    let newest_end = window.last().map_or(0, |s| s.start.0 + s.duration.0);
    let video = |id: &str, bandwidth: u64, codecs: &str, resolution: (u32, u32)| Representation {
        id: id.into(),
        bandwidth,
        codecs: codecs.into(),
        resolution: Some(resolution),
        frame_rate: Some(29.97),
        audio_channels: None,
        segments: &window,
    };
    let adaptations = [
        Adaptation {
            content_type: ContentType::Video,
            representations: vec![
                video("video_720p", 3_000_000, "avc1.64001f", (1280, 720)),
                video("video_360p", 800_000, "avc1.4d401e", (640, 360)),
            ],
            lang: None,
            main: true,
            captions: vec![],
        },
        Adaptation {
            content_type: ContentType::Audio,
            representations: vec![Representation {
                id: "audio_720p".into(),
                bandwidth: 128_000,
                codecs: "mp4a.40.2".into(),
                resolution: None,
                frame_rate: None,
                audio_channels: Some(AudioChannels::Aac { configuration: 2 }),
                segments: &window,
            }],
            lang: None,
            main: true,
            captions: vec![],
        },
    ];
    let presentation = Presentation {
        package,
        prefix: "index",
        availability_start: UnixMillis(EPOCH_MS),
        now: UnixMillis(EPOCH_MS + (newest_end / 90) as i64 + 1_500),
        default_utc_uri: "http://golden/out/v1/utc".into(),
        ended: false,
    };
    let period = dash::Period {
        start: None,
        protection: None,
        file_suffix: String::new(),
        adaptations: adaptations.to_vec(),
    };
    dash::mpd(&presentation, &[period])
}

fn compare(name: &str, actual: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing golden file {}", path.display()));
    assert_eq!(actual, expected, "{name} differs from the golden file");
}

/// `$Number$` with a SegmentTimeline, FULL layout: 6.006 s outputs of 2.002 s inputs, a
/// 30 s window that has slid, `UTCTiming` HTTP-ISO on the origin's clock.
#[test]
fn number_with_timeline() {
    let package = package(serde_json::json!({
        "segmentDurationSeconds": 6,
        "manifestWindowSeconds": 30,
        "segmentTemplateFormat": "NUMBER_WITH_TIMELINE",
        "utcTiming": "HTTP-ISO",
    }));
    compare(
        "dash_number_with_timeline.mpd",
        &mpd(&package, &published(NTSC, 40, &[]), NTSC),
    );
}

/// `$Time$` with a SegmentTimeline, FULL layout, DVB-DASH profile: one input lost inside
/// the window, so the timeline has a gap (a new `S@t`); `UTCTiming` HTTP-XSDATE on a
/// configured server.
#[test]
fn time_with_timeline() {
    let package = package(serde_json::json!({
        "segmentDurationSeconds": 6,
        "manifestWindowSeconds": 30,
        "segmentTemplateFormat": "TIME_WITH_TIMELINE",
        "profile": "DVB_DASH_2014",
        "utcTiming": "HTTP-XSDATE",
        "utcTimingUri": "https://time.example/xsdate",
    }));
    compare(
        "dash_time_with_timeline.mpd",
        &mpd(&package, &published(NTSC, 42, &[30]), NTSC),
    );
}

/// `$Number$` with `@duration` (no timeline), FULL layout, HbbTV profile: exact 2 s inputs
/// (the nominal duration this format needs). Same records and publish time as
/// [`compact`], so the two address the same segments by the same numbers.
#[test]
fn number_with_duration() {
    let package = package(serde_json::json!({
        "segmentDurationSeconds": 6,
        "manifestWindowSeconds": 30,
        "segmentTemplateFormat": "NUMBER_WITH_DURATION",
        "profile": "HBBTV_1_5",
        "utcTiming": "HTTP-HEAD",
    }));
    compare(
        "dash_number_with_duration.mpd",
        &mpd(&package, &published(EXACT, 40, &[]), EXACT),
    );
}

/// COMPACT layout: one SegmentTemplate per AdaptationSet with `$RepresentationID$`
/// (`$Number$` with a timeline). DRM_TOP_LEVEL_COMPACT writes the same MPD: without
/// encryption there is no ContentProtection to move to the top.
#[test]
fn compact() {
    let settings = |layout: &str| {
        package(serde_json::json!({
            "segmentDurationSeconds": 6,
            "manifestWindowSeconds": 30,
            "segmentTemplateFormat": "NUMBER_WITH_TIMELINE",
            "manifestLayout": layout,
            "utcTiming": "HTTP-HEAD",
        }))
    };
    let records = published(EXACT, 40, &[]);
    let compact = mpd(&settings("COMPACT"), &records, EXACT);
    compare("dash_compact.mpd", &compact);
    assert_eq!(mpd(&settings("DRM_TOP_LEVEL_COMPACT"), &records, EXACT), compact);
}
