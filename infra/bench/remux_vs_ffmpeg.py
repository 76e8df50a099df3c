#!/usr/bin/env python3
"""Whole-process TS → fMP4 remux: `sluice-local remux` against ffmpeg on the same input,
same machine, same run.

    python3 infra/bench/remux_vs_ffmpeg.py [--seconds 120] [--rounds 7] [--work DIR]

Encodes (once, cached in the work folder) SECONDS of 1280x720 30 fps H.264 (3 Mb/s,
B-frames, 2 s GOP) + AAC 128 kb/s into MPEG-TS, builds `sluice-local` in release, then
remuxes the file with each tool ROUNDS times, round-robin, into fresh output folders:

- sluice:          sluice-local remux IN.ts OUT --fragment-seconds 2
                   (per-track CMAF: init + 2 s fragments, video and audio apart)
- ffmpeg-dash:     ffmpeg -c copy -bsf:a aac_adtstoasc -f dash -seg_duration 2
                   (the same shape of output: per-track init + 2 s fragments)
- ffmpeg-hls-fmp4: ffmpeg -c copy -bsf:a aac_adtstoasc -f hls -hls_segment_type fmp4
- ffmpeg-frag-mp4: ffmpeg -c copy -bsf:a aac_adtstoasc -movflags frag_keyframe+empty_moov
                   (one fragmented file)

Wall time is measured around each run, CPU time (user + system, every thread) from the
children's resource usage and peak RSS is GNU time's (`%M`); the medians and the ratios to
Sluice are printed. Sluice parses on one thread and writes files on another; ffmpeg's
stream copy runs on one, so the CPU column is the like-for-like work figure. Before timing, Sluice's output is decoded by ffmpeg and
compared frame by frame (framemd5) with the input, so a fast wrong answer cannot pass.
"""

import argparse
import pathlib
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def make_input(path, seconds):
    if path.exists():
        return
    sh(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3M", "-g", "60", "-bf", "2",
        "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", str(path) + ".part"])
    pathlib.Path(str(path) + ".part").rename(path)


def frame_hashes(path, stream):
    out = sh(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", f"0:{stream}",
              "-f", "framemd5", "-"], capture_output=True, text=True).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if not line.startswith("#")]


def check_sluice_output(binary, source, work):
    out = work / "check"
    shutil.rmtree(out, ignore_errors=True)
    sh([str(binary), "remux", str(source), str(out), "--fragment-seconds", "2"], capture_output=True)
    for track, stream in (("video", "v"), ("audio_2", "a")):
        joined = work / f"check-{track}.mp4"
        with open(joined, "wb") as f:
            f.write((out / f"{track}_init.mp4").read_bytes())
            for fragment in sorted(out.glob(f"{track}_0*.m4s")):
                f.write(fragment.read_bytes())
        expected, actual = frame_hashes(source, stream), frame_hashes(joined, stream)
        if expected != actual:
            sys.exit(f"sluice's {track} output decodes differently from the input")
        print(f"check: {track}: {len(actual)} frames decode identically to the input")


def timed(cmd, work):
    """(wall seconds, CPU seconds, peak RSS KiB) of one run. The wall clock is taken around
    the child (GNU time's %e only has 10 ms resolution); CPU time (user + system, all
    threads) is the change in this process's reaped children's usage; peak RSS is GNU
    time's %M, because a child forked from Python would count Python's own pages until it
    execs."""
    rss_file = work / "rss.txt"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(rss_file), *cmd],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {result.stderr[-800:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, int(rss_file.read_text().split()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--work", type=pathlib.Path, default=pathlib.Path(tempfile.gettempdir()) / "sluice-remux-bench")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    source = args.work / f"input-720p-{args.seconds}s.ts"
    make_input(source, args.seconds)
    sh(["cargo", "build", "--release", "--quiet", "-p", "sluice-local"], cwd=ROOT)
    binary = ROOT / "target" / "release" / "sluice-local"
    check_sluice_output(binary, source, args.work)

    copy = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(source), "-map", "0",
            "-c", "copy", "-bsf:a", "aac_adtstoasc"]
    tools = {
        "sluice": lambda d: [str(binary), "remux", str(source), str(d), "--fragment-seconds", "2"],
        "ffmpeg-dash": lambda d: [*copy, "-tag:v", "avc1", "-tag:a", "mp4a", "-f", "dash", "-seg_duration", "2",
                                  str(d / "out.mpd")],
        "ffmpeg-hls-fmp4": lambda d: [*copy, "-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "2",
                                      "-hls_playlist_type", "vod", str(d / "out.m3u8")],
        "ffmpeg-frag-mp4": lambda d: [*copy, "-movflags", "frag_keyframe+empty_moov+default_base_moof",
                                      str(d / "out.mp4")],
    }
    runs = {name: [] for name in tools}
    for _ in range(args.rounds):
        for name, cmd in tools.items():
            out = args.work / "out" / name
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            runs[name].append(timed(cmd(out), args.work))
    size = source.stat().st_size / 1e6
    print(f"\ninput: {source.name}, {size:.1f} MB, {args.rounds} rounds, medians")
    def medians(samples):
        return [statistics.median(sample[i] for sample in samples) for i in range(3)]

    base_wall, base_cpu, base_rss = medians(runs["sluice"])
    print(f"{'tool':18} {'wall ms':>8} {'CPU ms':>7} {'peak RSS MiB':>13} "
          f"{'wall / sluice':>14} {'CPU / sluice':>13} {'RSS / sluice':>13}")
    for name, samples in runs.items():
        wall, cpu, rss = medians(samples)
        print(f"{name:18} {wall * 1000:8.0f} {cpu * 1000:7.0f} {rss / 1024:13.1f} "
              f"{wall / base_wall:13.1f}x {cpu / base_cpu:12.1f}x {rss / base_rss:12.1f}x")


if __name__ == "__main__":
    main()
