//! Ingest analysis of one 2 s segment of 720p H.264 + AAC in MPEG-TS: the work ingest does
//! on every uploaded TS segment before it indexes it (segment info, keyframe ranges for
//! I-frame playlists, the leading PAT/PMT for `EXT-X-MAP`).
//! - `three_passes`: `ts::analyze`, `iframes::keyframes` and `iframes::leading_psi`, each
//!   reading the segment's packets on its own (the calls ingest made before issue 13; they
//!   now run the same scans as `one_pass`, one each, so this measures the extra walks);
//! - `one_pass`: `ts::analyze_segment`, all three from one read of the packets.
//!
//! The input is encoded once by ffmpeg (`testsrc2` 1280x720 at 25 fps, 3 Mb/s, a keyframe
//! every 2 s, AAC) into `target/tmp/` and reused by later runs.
//!
//! `cargo bench -p sluice --bench analyze -- --warm-up-time 1 --measurement-time 5`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice::media::{iframes, ts};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

fn segment() -> Vec<u8> {
    let path: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("analyze-720p-2s.ts");
    if !path.exists() {
        let partial = path.with_extension("partial.ts");
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args([
                "-t", "2", "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M", "-g", "50",
            ])
            .args(["-c:a", "aac", "-b:a", "128k", "-f", "mpegts"])
            .arg(&partial)
            .status()
            .expect("ffmpeg is installed");
        assert!(status.success(), "ffmpeg could not encode the bench segment");
        std::fs::rename(&partial, &path).unwrap();
    }
    std::fs::read(&path).unwrap()
}

fn analysis(c: &mut Criterion) {
    let bytes = segment();
    println!("input: TS segment {} bytes", bytes.len());
    let mut group = c.benchmark_group("ingest_analysis/720p_2s");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("three_passes", |b| {
        b.iter(|| {
            let body = black_box(&bytes[..]);
            let info = ts::analyze(body).unwrap();
            let keyframes = iframes::keyframes(body);
            let psi = iframes::leading_psi(body);
            (info.duration, keyframes.len(), psi)
        })
    });
    group.bench_function("one_pass", |b| {
        b.iter(|| {
            let analysis = ts::analyze_segment(black_box(&bytes[..])).unwrap();
            (analysis.info.duration, analysis.keyframes.len(), analysis.leading_psi)
        })
    });
    group.finish();
}

criterion_group!(benches, analysis);
criterion_main!(benches);
