"""An encoder restart (ffmpeg stopped and started again: its timestamps go back to the
start and its file names repeat) continues the same live stream: every segment of both
runs is indexed, media sequence numbers continue, EXT-X-DISCONTINUITY marks the restart,
and hls.js plays across it. DASH needs no new Period: the repackaged fragments carry the
rendition's continuous timeline (the restart's timestamps moved after the last segment):
the MPD's SegmentTimeline has no gap, and ffprobe reads the video fragments of both runs,
joined behind their init segment, as one stream whose timestamps only go forward."""

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
    dash_url = mp.create_origin_endpoint(
        ChannelId="restart", Id="restart-dash", ManifestName="live",
        DashPackage={"SegmentDurationSeconds": 2, "ManifestWindowSeconds": 60,
                     "SuggestedPresentationDelaySeconds": 6, "MinBufferTimeSeconds": 4},
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

    # DASH: one SegmentTimeline without a gap, and the fragments of both runs decode as
    # one stream with increasing timestamps.
    import xml.etree.ElementTree as ET
    status, _, mpd = fetch(dash_url)
    assert status == 200, mpd
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    root = ET.fromstring(mpd)
    assert len(root.findall("d:Period", ns)) == 1
    video = next(a for a in root.iter("{urn:mpeg:dash:schema:mpd:2011}AdaptationSet")
                 if a.get("contentType") == "video" or "video" in (a.get("mimeType") or ""))
    template = video.find(".//d:SegmentTemplate", ns)
    representation = video.find("d:Representation", ns).get("id")
    times = []
    for s in template.find("d:SegmentTimeline", ns).findall("d:S", ns):
        t = int(s.get("t", times[-1][0] + times[-1][1] if times else 0))
        for _ in range(int(s.get("r", 0)) + 1):
            times.append((t, int(s.get("d"))))
            t += int(s.get("d"))
    assert len(times) == len(sent) // 2, (len(times), len(sent))
    assert all(a + d == b for (a, d), (b, _) in zip(times, times[1:])), times
    def expand(pattern, time_value):
        return (pattern.replace("$RepresentationID$", representation).replace("$Time$", str(time_value))
                .replace("$Number$", str(int(template.get("startNumber", 1)) + [t for t, _ in times].index(time_value))))
    joined = fetch(urllib.parse.urljoin(dash_url, expand(template.get("initialization"), times[0][0])))[2]
    for t, _ in times:
        status, _, fragment = fetch(urllib.parse.urljoin(dash_url, expand(template.get("media"), t)))
        assert status == 200
        joined += fragment
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "packet=dts_time",
                            "-of", "csv=p=0", "-"], input=joined, capture_output=True, timeout=60)
    dts = [float(x) for x in probe.stdout.decode().split() if x.strip()]
    assert len(dts) >= 25 * 2 * len(times) * 0.9, len(dts)
    assert all(a < b for a, b in zip(dts, dts[1:])), "DASH decode timestamps go back at the restart"
    assert max(b - a for a, b in zip(dts, dts[1:])) < 0.1, "a gap in the DASH timeline"
