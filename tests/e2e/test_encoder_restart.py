"""An encoder restart (ffmpeg stopped and started again: its timestamps go back to the
start and its file names repeat) continues the same live stream: every segment of both
runs is indexed, media sequence numbers continue, EXT-X-DISCONTINUITY marks the restart,
and hls.js plays across it."""

import json
import re
import subprocess
import threading
import time
import urllib.parse

from conftest import ROOT
from test_live_hls import fetch, playlist_lines, segments_opened, start_encoder, tag_value, uris


def test_encoder_restart_is_a_discontinuity_not_a_stall(server, tmp_path, monkeypatch):
    import test_live_hls

    monkeypatch.setattr(test_live_hls, "PUSH_SECONDS", 12)
    mp = server.mediapackage()
    ingest = mp.create_channel(Id="restart")["HlsIngest"]["IngestEndpoints"][0]
    url = mp.create_origin_endpoint(
        ChannelId="restart", Id="restart-hls",
        HlsPackage={"SegmentDurationSeconds": 2, "PlaylistWindowSeconds": 120, "ProgramDateTimeIntervalSeconds": 2},
    )["Url"]
    folder_path = urllib.parse.urlparse(ingest["Url"]).path[: -len("channel")]

    player = {}

    def play():
        player["result"] = subprocess.run(
            ["node", str(ROOT / "tests" / "player" / "play_hls.mjs"), server.base + "/", url, "14", "60"],
            capture_output=True, text=True, timeout=100,
        )

    thread = None
    sent = []
    for run in range(2):
        log = tmp_path / f"ffmpeg-{run}.log"
        encoder = start_encoder(ingest, log)
        while encoder.poll() is None:
            if thread is None and fetch(url)[0] == 200:
                thread = threading.Thread(target=play)
                thread.start()
            time.sleep(0.5)
        assert encoder.returncode == 0, log.read_text()[-2000:]
        sent += segments_opened(log, folder_path)
    time.sleep(1.5)

    # Every segment of both runs was indexed, even though the names repeat.
    assert sorted(server.indexed_paths("restart")) == sorted(sent)

    status, _, body = fetch(url)
    assert status == 200
    for media in uris(playlist_lines(body)):
        lines = playlist_lines(fetch(urllib.parse.urljoin(url, media))[2])
        segments = uris(lines)
        assert len(segments) == len(sent) // 2
        assert tag_value(lines, "#EXT-X-MEDIA-SEQUENCE") in (None, "0")
        assert sum(1 for l in lines if l == "#EXT-X-DISCONTINUITY") == 1
        # The restart's first segment follows the tag, and both sides decode.
        after = lines[lines.index("#EXT-X-DISCONTINUITY") + 1 :]
        first_after = next(l for l in after if l and not l.startswith("#"))
        before = segments[segments.index(first_after) - 1]
        for segment in (before, first_after):
            data = fetch(urllib.parse.urljoin(url, segment))[2]
            probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", "-"],
                                   input=data, capture_output=True, timeout=30)
            assert set(probe.stdout.decode().split()) == {"aac", "h264"}
        # Segment names (timeline starts) keep increasing across the restart.
        starts = [int(re.search(r"_(\d+)\.ts$", s).group(1)) for s in segments]
        assert starts == sorted(starts) and len(set(starts)) == len(starts)

    thread.join(110)
    result = player["result"]
    played = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert result.returncode == 0, f"hls.js did not play across the restart: {result.stdout} {result.stderr[-800:]}"
    assert played["advanced"] >= 14 and not played["errors"], played
