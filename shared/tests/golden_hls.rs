//! Golden HLS playlists per feature, written by the pure writers of `manifest::hls` from
//! index records numbered by the publish rule (`live::publish`): TS live, discontinuities
//! over two reloads, I-frame-only playlists, and CMAF HLS with an audio rendition group.
//! Compared byte for byte with `tests/golden/{hls,cmaf}_*.m3u8` (reviewed by a person) and
//! cross-checked against RFC 8216 by the independent Python `m3u8` parser in
//! tests/e2e/test_golden.py. Regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p sluice --test golden_hls` and review the diff.

use sluice::live::publish::publishable;
use sluice::live::timeline::{self, OutputSegment};
use sluice::manifest::hls::{self, AudioRendition, PlaylistSettings, Variant};
use sluice::model::{IFrame, PlaylistType, Rendition, SegmentRecord};
use sluice::time::{Ticks, UnixMillis};

/// 2.002 s inputs (60 frames at 29.97 fps), ffmpeg's default first PTS of 1.4 s.
const INPUT: u64 = 180_180;
const FIRST: u64 = 126_000;
/// Wall clock of media time zero: 2025-11-24T16:00:00Z.
const EPOCH_MS: i64 = 1_764_000_000_000;

/// An encoder's input segment as ingest indexes it (unpublished), arriving as it ends.
fn input(rendition: &str, start: u64) -> SegmentRecord {
    let pdt = EPOCH_MS + (start / 90) as i64;
    SegmentRecord {
        channel: "golden".into(),
        rendition: rendition.into(),
        start: Ticks(start),
        duration: Ticks(INPUT),
        sequence: 0,
        ingest_endpoint: "ie".into(),
        object_key: sluice::store::keys::segment_object("golden", "ie", rendition, start),
        size: 400_000,
        program_date_time: UnixMillis(pdt),
        received_at: UnixMillis(pdt + (INPUT / 90) as i64),
        starts_with_keyframe: true,
        source_name: format!("{rendition}/seg_{start}.ts"),
        pts_offset: 0,
        discontinuity: false,
        discontinuity_sequence: 0,
        iframes: Vec::new(),
        keyframes_before: 0,
        published: false,
    }
}

/// Inputs `from..to` of one continuous encoder run.
fn run(rendition: &str, from: u64, to: u64) -> Vec<SegmentRecord> {
    (from..to).map(|i| input(rendition, FIRST + i * INPUT)).collect()
}

/// Numbers the inputs as the publish step does once every hole's horizon has passed.
fn publish(inputs: &[SegmentRecord]) -> Vec<SegmentRecord> {
    let out = publishable(None, inputs, UnixMillis(EPOCH_MS + 86_400_000), usize::MAX);
    assert_eq!(out.len(), inputs.len(), "every input is published");
    out
}

/// A rendition in its stored (JSON) form, so only what the writers read is spelled out.
fn rendition(id: &str, size: (u32, u32), bandwidth: u64, codecs: &[&str]) -> Rendition {
    serde_json::from_value(serde_json::json!({
        "id": id,
        "codecs": codecs,
        "resolution": [size.0, size.1],
        "frameRate": 29.97,
        "peakBandwidth": bandwidth,
        "averageBandwidth": bandwidth * 9 / 10,
        "maxSegmentDuration": INPUT,
        "targetSeconds": 2,
        "iframeBandwidth": bandwidth / 6,
        "updatedAt": 0,
    }))
    .expect("a rendition document")
}

/// Output segments of `segment_seconds` and the live window of `window_seconds`, as the
/// origin computes them from a rendition's newest records.
fn window(records: &[SegmentRecord], segment_seconds: u32, window_seconds: u64) -> (u64, Vec<OutputSegment>) {
    let k = timeline::group_size(segment_seconds, Ticks(INPUT));
    let grouped = timeline::group_segments(records, k);
    (
        k,
        timeline::live_window(&grouped, Ticks::from_secs(window_seconds)).to_vec(),
    )
}

fn settings(pdt_seconds: u32, version: usize, map_uri: Option<String>) -> PlaylistSettings {
    PlaylistSettings {
        program_date_time_interval_seconds: pdt_seconds,
        playlist_type: PlaylistType::None,
        version,
        map_uri,
        end_list: false,
        keys: None,
    }
}

fn ts_name(rendition: &str) -> impl Fn(&OutputSegment) -> String + '_ {
    move |s| format!("index_{rendition}_{}.ts", s.start.0)
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

/// TS live: 6 s outputs of three 2.002 s inputs, a 30 s window that has slid (the newest,
/// incomplete output segment is not listed yet), a program date time every 12 s.
#[test]
fn ts_live() {
    let r = rendition("720p", (1280, 720), 3_000_000, &["avc1.64001f", "mp4a.40.2"]);
    let records = publish(&run("720p", 0, 40));
    // The origin reads the newest records: the oldest ones here start mid-group.
    let (k, window) = window(&records[5..], 6, 30);
    let target = timeline::target_duration(&window, &r, k);
    let body = hls::media_playlist(&window, &settings(12, 3, None), target, ts_name("720p"));
    compare("hls_ts_live.m3u8", &body);
}

/// A lost input (a hole, published as a discontinuity once its horizon passed) and an
/// encoder restart (its new timestamps placed after the edge), seen by two reloads of
/// the same live playlist: the first discontinuity slides out between them.
#[test]
fn ts_discontinuities_over_two_reloads() {
    let r = rendition("720p", (1280, 720), 3_000_000, &["avc1.64001f", "mp4a.40.2"]);
    let mut inputs = run("720p", 0, 5); // input 5 never arrives
    inputs.extend(run("720p", 6, 10));
    for (n, restarted) in run("720p", 10, 15).into_iter().enumerate() {
        // The restarted encoder starts again at 1.4 s; ingest maps it onto the timeline.
        let pts_offset = (restarted.start.0 - FIRST - n as u64 * INPUT) as i64;
        inputs.push(SegmentRecord {
            pts_offset,
            discontinuity: n == 0,
            ..restarted
        });
    }
    let records = publish(&inputs);
    for (reload, upto) in [(1, 11), (2, records.len())] {
        let (k, window) = window(&records[..upto], 2, 16);
        let target = timeline::target_duration(&window, &r, k);
        let body = hls::media_playlist(&window, &settings(0, 3, None), target, ts_name("720p"));
        compare(&format!("hls_ts_discontinuity_{reload}.m3u8"), &body);
    }
}

/// I-frame-only playlist of 6 s outputs whose inputs each hold two keyframes: the first
/// at the input's start (its range begins with the PAT/PMT), the second mid-input (its
/// PAT/PMT comes from `EXT-X-MAP`); two reloads, the media playlist of the first and the
/// multivariant playlist that names both.
#[test]
fn ts_iframes() {
    let r = rendition("720p", (1280, 720), 3_000_000, &["avc1.64001f", "mp4a.40.2"]);
    let inputs: Vec<SegmentRecord> = run("720p", 0, 15)
        .into_iter()
        .map(|record| {
            let start = record.start.0;
            let keyframe = |time: u64, offset: u64, size: u64| IFrame {
                time: Ticks(time),
                offset,
                size,
                psi_size: 376,
            };
            SegmentRecord {
                iframes: vec![keyframe(start, 0, 60_000), keyframe(start + 90_090, 200_000, 55_000)],
                ..record
            }
        })
        .collect();
    let records = publish(&inputs);
    for (reload, upto) in [(1, 12), (2, records.len())] {
        let (k, window) = window(&records[..upto], 6, 18);
        let target = timeline::target_duration(&window, &r, k);
        if reload == 1 {
            let media = hls::media_playlist(&window, &settings(0, 3, None), target, ts_name("720p"));
            compare("hls_iframes_media.m3u8", &media);
        }
        let body = hls::iframe_playlist(&window, target, ts_name("720p"));
        compare(&format!("hls_iframes_{reload}.m3u8"), &body);
    }
    let variant = |uri: &str| Variant {
        rendition: &r,
        uri: uri.into(),
        codecs: None,
        bandwidth: None,
        audio_group: None,
    };
    let multivariant =
        hls::multivariant_with_iframes(&[variant("index_720p.m3u8")], &[variant("index_720p_iframes.m3u8")]);
    compare("hls_iframes_multivariant.m3u8", &multivariant);
}

/// CMAF HLS (`cmafPackage`): two video variants sharing one audio rendition group, and
/// their fMP4 media playlists (`EXT-X-MAP`, version 6) across an encoder restart, named as
/// the origin names them (segments at the endpoint root, playlists one folder down).
#[test]
fn cmaf_with_audio_group() {
    let high = rendition("720p", (1280, 720), 3_000_000, &["avc1.64001f", "mp4a.40.2"]);
    let low = rendition("360p", (640, 360), 800_000, &["avc1.4d401e", "mp4a.40.2"]);
    let mut inputs = run("720p", 0, 27);
    for (n, restarted) in run("720p", 27, 36).into_iter().enumerate() {
        inputs.push(SegmentRecord {
            pts_offset: (restarted.start.0 - FIRST - n as u64 * INPUT) as i64,
            discontinuity: n == 0,
            ..restarted
        });
    }
    let records = publish(&inputs);
    let (k, window) = window(&records, 6, 30);
    let target = timeline::target_duration(&window, &high, k);
    for track in ["video_720p", "video_360p", "audio_720p"] {
        let map = Some(format!("../golden_{track}_init.mp4"));
        let name = |s: &OutputSegment| format!("../golden_{track}_{}.mp4", s.start.0);
        let body = hls::media_playlist(&window, &settings(6, 6, map), target, name);
        compare(&format!("cmaf_{track}.m3u8"), &body);
    }
    fn variant(r: &Rendition) -> Variant<'_> {
        Variant {
            rendition: r,
            uri: format!("index_video_{}.m3u8", r.id),
            codecs: Some(vec![r.codecs[0].clone(), "mp4a.40.2".into()]),
            bandwidth: None,
            audio_group: Some("audio".into()),
        }
    }
    let variants = [variant(&high), variant(&low)];
    let audio = [AudioRendition {
        group: "audio".into(),
        name: "mp4a.40.2 (720p)".into(),
        uri: "index_audio_720p.m3u8".into(),
        default: true,
        language: None,
        channels: Some(2),
    }];
    compare(
        "cmaf_multivariant.m3u8",
        &hls::multivariant_full(&variants, &audio, &[], &[], 6, &[]),
    );
}

/// Encrypted playlists: `EXT-X-KEY` before the first segment and where the key changes,
/// or before every segment when repeated; `IV` only as given (checked line by line
/// against RFC 8216 §4.3.2.4, not against a file the writer produced).
#[test]
fn ts_key_tags_where_the_key_changes_or_on_every_segment() {
    let r = rendition("720p", (1280, 720), 3_000_000, &["avc1.64001f", "mp4a.40.2"]);
    let records = publish(&run("720p", 0, 12));
    let (k, window) = window(&records, 2, 30);
    assert!(window.len() >= 6);
    let target = timeline::target_duration(&window, &r, k);
    let key = |uri: &str, iv: Option<&str>| m3u8_rs::Key {
        method: m3u8_rs::KeyMethod::AES128,
        uri: Some(uri.into()),
        iv: iv.map(str::to_owned),
        keyformat: None,
        keyformatversions: None,
    };
    // Two periods: the first three segments with key a, the rest with key b.
    let keys: Vec<Vec<m3u8_rs::Key>> = (0..window.len())
        .map(|i| {
            if i < 3 {
                vec![key("https://k/a", None)]
            } else {
                vec![key("https://k/b", Some("0x00000000000000000000000000000001"))]
            }
        })
        .collect();
    let tags = |repeat: bool| {
        let settings = PlaylistSettings {
            keys: Some(hls::SegmentKeys {
                keys: keys.clone(),
                repeat,
                maps: None,
            }),
            ..settings(0, 3, None)
        };
        let body = hls::media_playlist(&window, &settings, target, ts_name("720p"));
        // The key tag in force before each segment line, if one was written right before it.
        let mut out = Vec::new();
        let mut pending = None;
        for line in body.lines() {
            if let Some(tag) = line.strip_prefix("#EXT-X-KEY:") {
                pending = Some(tag.to_owned());
            } else if !line.starts_with('#') && !line.is_empty() {
                out.push(pending.take());
            }
        }
        out
    };
    let a = Some(r#"METHOD=AES-128,URI="https://k/a""#.to_owned());
    let b = Some(r#"METHOD=AES-128,URI="https://k/b",IV=0x00000000000000000000000000000001"#.to_owned());
    let changes = tags(false);
    assert_eq!(changes[0], a);
    assert_eq!(changes[3], b);
    assert!(
        changes
            .iter()
            .enumerate()
            .all(|(i, t)| (i == 0 || i == 3) == t.is_some()),
        "{changes:?}"
    );
    let every = tags(true);
    assert!(
        every[..3].iter().all(|t| *t == a) && every[3..].iter().all(|t| *t == b),
        "{every:?}"
    );
}

/// CMAF key rotation: each key period has its own init segment, so `EXT-X-MAP` is
/// written before the first segment and again where the map changes (RFC 8216
/// §4.3.2.5: a map applies to every segment after it until the next one), and not
/// on the segments in between.
#[test]
fn map_tags_where_the_key_period_changes_the_init_segment() {
    let records = publish(&run("720p", 0, 12));
    let (_, window) = window(&records, 2, 30);
    assert!(window.len() >= 6);
    let key = |uri: &str| m3u8_rs::Key {
        method: m3u8_rs::KeyMethod::SampleAES,
        uri: Some(uri.into()),
        iv: None,
        keyformat: Some("identity".into()),
        keyformatversions: None,
    };
    let period = |i: usize| if i < 3 { 0 } else { 1 };
    let settings = PlaylistSettings {
        keys: Some(hls::SegmentKeys {
            keys: (0..window.len())
                .map(|i| vec![key(&format!("https://k/{}", period(i)))])
                .collect(),
            repeat: false,
            maps: Some((0..window.len()).map(|i| format!("init.k{}.mp4", period(i))).collect()),
        }),
        ..settings(0, 3, None)
    };
    let body = hls::media_playlist(&window, &settings, 2, ts_name("720p"));
    let mut maps = Vec::new();
    let mut pending = None;
    for line in body.lines() {
        if let Some(tag) = line.strip_prefix("#EXT-X-MAP:") {
            pending = Some(tag.to_owned());
        } else if !line.starts_with('#') && !line.is_empty() {
            maps.push(pending.take());
        }
    }
    assert_eq!(maps[0].as_deref(), Some(r#"URI="init.k0.mp4""#), "{body}");
    assert_eq!(maps[3].as_deref(), Some(r#"URI="init.k1.mp4""#), "{body}");
    assert!(
        maps.iter().enumerate().all(|(i, m)| (i == 0 || i == 3) == m.is_some()),
        "{body}"
    );
}
