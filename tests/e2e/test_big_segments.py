"""Real ladders have big segments: MediaLive's default HLS segment is 6 s, and at 8 Mbit/s
a 1080p segment is over 6 MB, above what a Lambda request can carry. `sluice-local` has no
such limit, so ffmpeg pushes a 6 s 1080p 8 Mbit/s + 540p 2 Mbit/s ladder with its own
HLS muxer, every segment is indexed, served whole and played by hls.js (HLS TS and CMAF)."""

import json
import pathlib
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import m3u8

from conftest import ROOT, Server, encoder_folder

SEGMENTS = 3


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def play(server, url):
    result = subprocess.run(
        ["node", str(ROOT / "tests" / "player" / "play_hls.mjs"), server.base + "/", url, "6", "60"],
        capture_output=True, text=True, timeout=100,
    )
    assert result.returncode == 0, f"hls.js did not play {url}: {result.stdout} {result.stderr[-1000:]}"
    played = json.loads(result.stdout.strip().splitlines()[-1])
    assert played["advanced"] >= 6 and not played["errors"] and len(played["levels"]) == 2, played


def test_six_second_1080p_8_mbit_ladder_is_ingested_and_plays(tmp_path):
    server = Server()
    try:
        mp = server.mediapackage()
        ingest = mp.create_channel(Id="big")["HlsIngest"]["IngestEndpoints"][0]
        hls = mp.create_origin_endpoint(ChannelId="big", Id="big-hls", HlsPackage={"SegmentDurationSeconds": 6})
        cmaf = mp.create_origin_endpoint(ChannelId="big", Id="big-cmaf", CmafPackage={
            "SegmentDurationSeconds": 6, "HlsManifests": [{"Id": "hls"}]})
        folder = encoder_folder(ingest)
        log = tmp_path / "ffmpeg.log"
        # Constant 8 Mbit/s (HRD filler), so every 1080p segment is about 6 MB.
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "verbose", "-nostdin",
             "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
             "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(6 * SEGMENTS),
             "-filter_complex", "[0:v]split=2[a][b];[b]scale=960:540[c]",
             "-map", "[a]", "-map", "[c]", "-map", "1:a", "-map", "1:a",
             "-c:v", "libx264", "-preset", "ultrafast", "-threads", "2", "-g", "60", "-keyint_min", "60",
             "-sc_threshold", "0", "-x264-params", "nal-hrd=cbr",
             "-b:v:0", "8M", "-minrate:v:0", "8M", "-maxrate:v:0", "8M", "-bufsize:v:0", "8M",
             "-b:v:1", "2M", "-maxrate:v:1", "2M", "-bufsize:v:1", "2M", "-c:a", "aac", "-b:a", "128k",
             "-f", "hls", "-hls_time", "6", "-method", "PUT", "-master_pl_name", "master.m3u8",
             "-var_stream_map", "v:0,a:0,name:1080p v:1,a:1,name:540p",
             "-hls_segment_filename", folder + "%v/seg_%03d.ts", folder + "%v/index.m3u8"],
            stdout=subprocess.DEVNULL, stderr=open(log, "w"), check=True, timeout=120,
        )
        # ffmpeg never reports PUT errors: what arrived is read from the server's log.
        deadline = time.time() + 20
        while len(server.indexed_paths("big")) < 2 * SEGMENTS and time.time() < deadline:
            time.sleep(0.5)
        assert sorted(server.indexed_paths("big")) == sorted(
            f"{name}/seg_{n:03d}.ts" for name in ("1080p", "540p") for n in range(SEGMENTS)
        ), pathlib.Path(log).read_text()[-2000:]

        master = m3u8.loads(fetch(hls["Url"])[1].decode())
        top = max(master.playlists, key=lambda p: p.stream_info.bandwidth)
        assert top.stream_info.resolution == (1920, 1080) and top.stream_info.bandwidth >= 8_000_000
        media = m3u8.loads(fetch(urllib.parse.urljoin(hls["Url"], top.uri))[1].decode())
        assert len(media.segments) == SEGMENTS
        sizes = []
        for segment in media.segments:
            status, body = fetch(urllib.parse.urljoin(hls["Url"], segment.uri))
            assert status == 200
            sizes.append(len(body))
        # Above what a Lambda request carries (4.5 MB after base64), served whole.
        assert min(sizes) > 4_500_000, sizes

        play(server, hls["Url"])
        play(server, cmaf["CmafPackage"]["HlsManifests"][0]["Url"])
    finally:
        server.stop()
