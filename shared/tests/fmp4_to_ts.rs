//! fMP4 → TS against ffmpeg: ffmpeg (the encoder users run) writes an fMP4 HLS stream,
//! Sluice turns every `.m4s` into TS, and ffmpeg decodes both. Every video and audio frame
//! must decode to the same picture and sound (framemd5), with presentation times that
//! keep their spacing (one constant shift for the whole stream) and A/V sync.

use sluice::media::{fmp4, ts, tsmux};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(args)
        .output()
        .expect("ffmpeg is installed (tests/run.sh installs it)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// (pts in seconds, md5) of every decoded frame of stream `map` (`0:v` or `0:a`).
fn frames(input: &Path, map: &str) -> Vec<(f64, String)> {
    // Input timestamps as they are (no start-time normalisation, no frame-rate conversion).
    let args = [
        "-copyts",
        "-i",
        input.to_str().unwrap(),
        "-map",
        map,
        "-fps_mode",
        "passthrough",
        "-f",
        "framemd5",
        "-",
    ];
    let text = String::from_utf8(ffmpeg(&args)).unwrap();
    let mut timebase = 1.0;
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(tb) = line.strip_prefix("#tb 0: ") {
            let (n, d) = tb.split_once('/').unwrap();
            timebase = n.trim().parse::<f64>().unwrap() / d.trim().parse::<f64>().unwrap();
        }
        if line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        out.push((cols[2].parse::<f64>().unwrap() * timebase, cols[5].to_owned()));
    }
    out
}

fn convert(dir: &Path) -> PathBuf {
    let init = fmp4::parse_init(&std::fs::read(dir.join("init.mp4")).unwrap()).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".m4s"))
        .collect();
    names.sort();
    assert!(names.len() >= 3, "ffmpeg wrote {names:?}");
    let mut all = Vec::new();
    for name in &names {
        let ts_bytes = tsmux::to_ts(&init, &std::fs::read(dir.join(name)).unwrap()).unwrap();
        assert_eq!(ts_bytes.len() % 188, 0);
        // Each converted segment stands alone for Sluice's own TS reader too.
        let info = ts::analyze(&ts_bytes).unwrap();
        assert!(info.starts_with_keyframe, "{name} starts with a keyframe");
        all.extend_from_slice(&ts_bytes);
    }
    let out = dir.join("converted.ts");
    std::fs::write(&out, all).unwrap();
    out
}

fn assert_same_frames(source: &Path, converted: &Path, map: &str) -> f64 {
    let a = frames(source, map);
    let b = frames(converted, map);
    assert!(a.len() > 50, "{map}: only {} frames decoded from the source", a.len());
    assert_eq!(a.len(), b.len(), "{map}: frame count");
    let shift = b[0].0 - a[0].0;
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert_eq!(x.1, y.1, "{map}: frame {i} decodes differently");
        assert!(
            (y.0 - x.0 - shift).abs() < 0.002,
            "{map}: frame {i} at {} s, expected {}",
            y.0,
            x.0 + shift
        );
    }
    shift
}

fn check(codec_args: &[&str], name: &str) {
    let dir = scratch(name);
    let playlist = dir.join("index.m3u8");
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "7",
        "-g",
        "50",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
    ];
    args.extend_from_slice(codec_args);
    args.extend_from_slice(&[
        "-f",
        "hls",
        "-hls_segment_type",
        "fmp4",
        "-hls_time",
        "2",
        "-hls_playlist_type",
        "vod",
        playlist.to_str().unwrap(),
    ]);
    ffmpeg(&args);
    let converted = convert(&dir);
    let video_shift = assert_same_frames(&playlist, &converted, "0:v");
    let audio_shift = assert_same_frames(&playlist, &converted, "0:a");
    // Audio and video move together: lip sync is kept.
    assert!(
        (video_shift - audio_shift).abs() < 0.001,
        "video shifted {video_shift} s, audio {audio_shift} s"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn h264_with_b_frames_and_aac_decode_identically() {
    check(&["-c:v", "libx264", "-preset", "veryfast", "-bf", "2"], "fmp4-h264");
}

#[test]
fn h265_and_aac_decode_identically() {
    check(
        &[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=none",
            "-tag:v",
            "hvc1",
        ],
        "fmp4-h265",
    );
}
