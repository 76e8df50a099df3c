//! Just-in-time repackaging of one 2 s segment of 720p H.264 + AAC, the work behind every
//! CMAF/DASH segment request and every CMAF-ingest upload:
//! - `ts_to_cmaf`: a TS segment → a video and an audio CMAF fragment (what the origin
//!   does per request; init segments are built separately and cached by CDNs);
//! - `fmp4_to_ts`: an fMP4 segment (ffmpeg `-hls_segment_type fmp4`) → TS (CMAF ingest);
//! - `ts_to_aes128_ts`: a TS segment → the same segment AES-128-CBC encrypted (an HLS TS
//!   request of an AES-128 endpoint; the clear one sends the stored bytes untouched);
//! - `ts_to_sample_aes_ts`: a TS segment → the same segment with HLS SAMPLE-AES (an HLS
//!   TS request of a SAMPLE_AES endpoint);
//! - `ts_to_cmaf_cbcs`, `ts_to_cmaf_cenc`: `ts_to_cmaf` with Common Encryption of the
//!   samples and its boxes (a CMAF SAMPLE_AES / AES_CTR or DASH request).
//!
//! The input is encoded once by ffmpeg (`testsrc2` 1280x720 at 30 fps, 3 Mb/s, B-frames,
//! AAC 128 kb/s) into a temporary folder. After criterion's estimates the bench prints
//! p50 and p99 over 2,000 timed runs of each, since tail latency is what a viewer sees.
//!
//! `cargo bench -p sluice --bench repackage`

use criterion::Criterion;
use sluice::media::cmaf::{self, Timeline};
use sluice::media::{cenc, crypto, fmp4, mp4, sample_aes, tsmux};
use sluice::time::Ticks;
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Inputs {
    ts: Vec<u8>,
    init: fmp4::Init,
    fragment: Vec<u8>,
}

fn encode(dir: &Path) -> Inputs {
    let common = [
        "-hide_banner",
        "-loglevel",
        "error",
        "-nostdin",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=1280x720:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-b:v",
        "3M",
        "-g",
        "60",
        "-bf",
        "2",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
    ];
    let run = |extra: &[&str]| {
        let status = Command::new("ffmpeg")
            .args(common)
            .args(extra)
            .status()
            .expect("ffmpeg is installed");
        assert!(status.success(), "ffmpeg {extra:?}");
    };
    let ts = dir.join("segment.ts");
    run(&["-f", "mpegts", ts.to_str().unwrap()]);
    let playlist = dir.join("index.m3u8");
    run(&[
        "-f",
        "hls",
        "-hls_segment_type",
        "fmp4",
        "-hls_time",
        "4",
        "-hls_playlist_type",
        "vod",
        playlist.to_str().unwrap(),
    ]);
    Inputs {
        ts: std::fs::read(ts).unwrap(),
        init: fmp4::parse_init(&std::fs::read(dir.join("init.mp4")).unwrap()).unwrap(),
        fragment: std::fs::read(dir.join("index0.m4s")).unwrap(),
    }
}

fn ts_to_cmaf(ts: &[u8]) -> usize {
    let timeline = Timeline {
        reference: Ticks(126_000),
        offset: 0,
    };
    let runs = cmaf::runs_from_ts(ts, timeline).unwrap();
    runs.iter().map(|run| run.media_segment(1).unwrap().len()).sum()
}

/// `ts_to_cmaf` with the samples encrypted in `scheme` and `senc`/`saiz`/`saio` written.
fn ts_to_cmaf_encrypted(ts: &[u8], scheme: cenc::Scheme) -> usize {
    let timeline = Timeline {
        reference: Ticks(126_000),
        offset: 0,
    };
    let protection = cenc::Protection {
        scheme,
        kid: [3; 16],
        key: [7; 16],
        constant_iv: [9; 16],
        pssh: Vec::new(),
    };
    let mut runs = cmaf::runs_from_ts(ts, timeline).unwrap();
    let mut total = 0;
    for run in &mut runs {
        let (track, bdt) = (&run.track, run.base_decode_time);
        let aux = cenc::encrypt_samples(track, "720p", bdt, &run.samples, &mut run.data, &protection).unwrap();
        let header = mp4::fragment_header(track, 1, bdt, &run.samples, run.data.len(), Some(&aux)).unwrap();
        total += header.len() + run.data.len();
    }
    total
}

fn percentiles(name: &str, mut run: impl FnMut() -> usize) {
    let mut times: Vec<Duration> = (0..2000)
        .map(|_| {
            let start = Instant::now();
            black_box(run());
            start.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!("{name}: p50 {:?}  p99 {:?}  (2,000 runs)", at(0.50), at(0.99));
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = encode(dir.path());
    println!(
        "inputs: TS segment {} bytes, fMP4 segment {} bytes",
        inputs.ts.len(),
        inputs.fragment.len()
    );
    let mut criterion = Criterion::default().configure_from_args();
    criterion.bench_function("ts_to_cmaf/720p_2s", |b| b.iter(|| ts_to_cmaf(black_box(&inputs.ts))));
    criterion.bench_function("fmp4_to_ts/720p_2s", |b| {
        b.iter(|| tsmux::to_ts(&inputs.init, black_box(&inputs.fragment)).unwrap().len())
    });
    let ts_bytes = bytes::Bytes::from(inputs.ts.clone());
    let aes128 = || crypto::aes128_cbc(&[7; 16], &crypto::sequence_iv(42), std::slice::from_ref(&ts_bytes)).len();
    criterion.bench_function("ts_to_aes128_ts/720p_2s", |b| b.iter(|| black_box(aes128())));
    let sample_aes = || sample_aes::encrypt_ts(&[7; 16], &[9; 16], &inputs.ts).unwrap().len();
    criterion.bench_function("ts_to_sample_aes_ts/720p_2s", |b| b.iter(|| black_box(sample_aes())));
    let cbcs = || ts_to_cmaf_encrypted(&inputs.ts, cenc::Scheme::Cbcs);
    let cenc = || ts_to_cmaf_encrypted(&inputs.ts, cenc::Scheme::Cenc);
    criterion.bench_function("ts_to_cmaf_cbcs/720p_2s", |b| b.iter(|| black_box(cbcs())));
    criterion.bench_function("ts_to_cmaf_cenc/720p_2s", |b| b.iter(|| black_box(cenc())));
    criterion.final_summary();
    percentiles("ts_to_cmaf/720p_2s", || ts_to_cmaf(&inputs.ts));
    percentiles("fmp4_to_ts/720p_2s", || {
        tsmux::to_ts(&inputs.init, &inputs.fragment).unwrap().len()
    });
    percentiles("ts_to_aes128_ts/720p_2s", aes128);
    percentiles("ts_to_sample_aes_ts/720p_2s", sample_aes);
    percentiles("ts_to_cmaf_cbcs/720p_2s", cbcs);
    percentiles("ts_to_cmaf_cenc/720p_2s", cenc);
}
