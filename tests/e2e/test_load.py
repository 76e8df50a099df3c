"""Load on loopback: `sluice-local load` feeds 10 channels x 4 renditions in real time
through the ingest API (the demo feeder) while viewer tasks fetch multivariant and media
playlists and the newest segments back to back. Every upload must be 2xx and every
playback request 200 (the command exits 1 otherwise). Throughput and latency figures in
the README come from a longer release-build run of the same command."""

import subprocess

from conftest import BIN, ROOT


def test_ten_channels_four_renditions_without_errors(tmp_path):
    done = subprocess.run(
        [str(BIN), "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
         "--demo-dir", str(ROOT / "infra" / "local" / "demo"),
         "load", "--channels", "10", "--renditions", "4", "--seconds", "20", "--concurrency", "16"],
        capture_output=True, text=True, timeout=180)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()
            if line.split() and line.split()[0] in ("ingest", "media", "multivariant", "segment")}
    assert set(rows) == {"ingest", "media", "multivariant", "segment"}, done.stdout
    # 10 channels x 4 renditions x (segment + playlist) every 2 s for 20 s, at least.
    assert int(rows["ingest"][2]) >= 10 * 4 * 2 * 8, rows["ingest"]
    assert int(rows["segment"][1]) > 100 and rows["segment"][-1] == "0"
    assert "load: no errors" in done.stdout
