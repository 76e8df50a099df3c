"""The first real path, end to end: boto3 creates a channel and an HLS endpoint, ffmpeg
pushes a live two-rendition stream over HTTP PUT with the channel's credentials, and
the output is checked on the server side, with ffprobe and with hls.js in Chromium.
Runs against the local store and against S3 + DynamoDB (moto) through the AWS adapters."""

import json
import pathlib
import re
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from conftest import ROOT, encoder_folder

PUSH_SECONDS = 30


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def playlist_lines(body):
    return body.decode().splitlines()


def tag_value(lines, tag):
    for line in lines:
        if line.startswith(tag + ":"):
            return line.split(":", 1)[1]
    return None


def uris(lines):
    return [l for l in lines if l and not l.startswith("#")]


def max_age(headers):
    m = re.search(r"max-age=(\d+)", headers.get("Cache-Control", ""))
    return int(m.group(1)) if m else None


def start_encoder(ingest, log_path):
    folder = encoder_folder(ingest)
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "verbose", "-nostdin", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(PUSH_SECONDS),
        "-filter_complex", "[0:v]split=2[a][b];[b]scale=320:180[b2]",
        "-map", "[a]", "-map", "[b2]", "-map", "1:a", "-map", "1:a",
        "-c:v", "libx264", "-preset", "veryfast", "-threads", "1",
        "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
        "-b:v:0", "500k", "-b:v:1", "150k", "-c:a", "aac", "-b:a", "64k",
        "-f", "hls", "-hls_time", "2", "-hls_list_size", "6", "-method", "PUT",
        "-master_pl_name", "master.m3u8",
        "-var_stream_map", "v:0,a:0,name:360p v:1,a:1,name:180p",
        "-hls_segment_filename", folder + "%v/seg_%05d.ts",
        folder + "%v/index.m3u8",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))


def segments_opened(log_path, folder_path):
    """The .ts paths ffmpeg opened for writing, relative to the ingest folder."""
    opened = re.findall(r"Opening '([^']+\.ts)' for writing", pathlib.Path(log_path).read_text())
    return sorted(urllib.parse.urlparse(u).path[len(folder_path):] for u in opened)


def run_player(page, url):
    return subprocess.run(
        ["node", str(ROOT / "tests" / "player" / "play_hls.mjs"), page, url, "6", "45"],
        capture_output=True, text=True, timeout=90,
    )


def test_ffmpeg_live_push_is_stored_indexed_and_plays(server, tmp_path):
    mp = server.mediapackage()
    channel = mp.create_channel(Id="live1", Description="e2e")
    endpoint = mp.create_origin_endpoint(
        ChannelId="live1", Id="live1-hls", ManifestName="index",
        HlsPackage={"SegmentDurationSeconds": 2, "PlaylistWindowSeconds": 120, "ProgramDateTimeIntervalSeconds": 2},
    )
    url = endpoint["Url"]
    assert url == f"{server.base}/out/v1/live1-hls/index.m3u8"
    status, headers, body = fetch(url)
    assert status == 404 and max_age(headers) <= 2 and b"not received any segments" in body

    ingest = channel["HlsIngest"]["IngestEndpoints"][0]
    folder_path = urllib.parse.urlparse(ingest["Url"]).path[: -len("channel")]
    encoder_log = tmp_path / "ffmpeg.log"
    encoder = start_encoder(ingest, encoder_log)

    # While the encoder pushes: media sequence numbers never go back, and hls.js plays.
    sequences = {}
    player = {}
    def play():
        player["result"] = run_player(server.base + "/", url)
    player_thread = None
    deadline = time.time() + PUSH_SECONDS + 20
    while encoder.poll() is None and time.time() < deadline:
        status, _, body = fetch(url)
        if status == 200:
            for media in uris(playlist_lines(body)):
                s, _, mbody = fetch(urllib.parse.urljoin(url, media))
                if s == 200:
                    seq = int(tag_value(playlist_lines(mbody), "#EXT-X-MEDIA-SEQUENCE") or 0)
                    sequences.setdefault(media, []).append(seq)
            if player_thread is None:
                player_thread = threading.Thread(target=play)
                player_thread.start()
        time.sleep(1)
    assert encoder.wait(30) == 0, pathlib.Path(encoder_log).read_text()[-2000:]
    assert player_thread is not None, "the endpoint never served a playlist during the push"
    player_thread.join(100)
    result = player["result"]
    assert result.returncode == 0, f"hls.js did not play: {result.stdout} {result.stderr[-1000:]}"
    played = json.loads(result.stdout.strip().splitlines()[-1])
    assert played["advanced"] >= 6 and not played["errors"], played
    for media, seqs in sequences.items():
        assert seqs == sorted(seqs), f"{media}: media sequence went backwards: {seqs}"

    # Every segment ffmpeg sent is stored and indexed (ffmpeg never reports PUT errors,
    # so this is asserted from the server's log).
    time.sleep(1.5)
    sent = segments_opened(encoder_log, folder_path)
    assert len(sent) >= 2 * (PUSH_SECONDS // 2 - 1), sent
    assert sorted(server.indexed_paths("live1")) == sent

    # The endpoint lists all of them and serves each one.
    status, headers, body = fetch(url)
    assert status == 200
    assert headers["Content-Type"] == "application/vnd.apple.mpegurl"
    assert 1 <= max_age(headers) <= 2
    assert headers["Access-Control-Allow-Origin"] == "*"
    master = playlist_lines(body)
    stream_infs = [l for l in master if l.startswith("#EXT-X-STREAM-INF:")]
    assert len(stream_infs) == 2
    for inf in stream_infs:
        for attribute in ("BANDWIDTH=", "AVERAGE-BANDWIDTH=", "RESOLUTION=", "CODECS=", "FRAME-RATE=25"):
            assert attribute in inf, inf
    assert {re.search(r"RESOLUTION=(\d+x\d+)", l).group(1) for l in stream_infs} == {"640x360", "320x180"}

    listed = 0
    for media in uris(master):
        mstatus, mheaders, mbody = fetch(urllib.parse.urljoin(url, media))
        assert mstatus == 200 and 1 <= max_age(mheaders) <= 2
        lines = playlist_lines(mbody)
        assert tag_value(lines, "#EXT-X-TARGETDURATION") == "2"
        assert tag_value(lines, "#EXT-X-MEDIA-SEQUENCE") in (None, "0")
        assert sum(1 for l in lines if l.startswith("#EXT-X-PROGRAM-DATE-TIME:")) == len(uris(lines))
        segments = uris(lines)
        assert len(segments) == len(sent) // 2, (media, len(segments), len(sent))
        listed += len(segments)
        for i, segment in enumerate(segments):
            sstatus, sheaders, sbody = fetch(urllib.parse.urljoin(url, segment))
            assert sstatus == 200 and sheaders["Content-Type"] == "video/mp2t"
            assert max_age(sheaders) >= 86400 and sbody[0] == 0x47
            if i in (0, len(segments) - 1):
                probe = subprocess.run(
                    ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", "-"],
                    input=sbody, capture_output=True, timeout=30,
                )
                assert set(probe.stdout.decode().split()) == {"aac", "h264"}, probe.stderr
    assert listed == len(sent)

    # ffprobe, as a player would, sees both renditions through the endpoint URL.
    # (A generous probe window: on a busy machine the default one can end before a
    # rendition's first SPS is decoded, and ffprobe then reports height 0.)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-analyzeduration", "10000000", "-probesize", "20000000",
         "-show_entries", "stream=codec_type,height", "-of", "json", url],
        capture_output=True, text=True, timeout=60,
    )
    streams = json.loads(probe.stdout)["streams"]
    heights = sorted({s["height"] for s in streams if s["codec_type"] == "video"})
    assert heights == [180, 360], probe.stdout


def test_demo_mode_plays_in_hlsjs(tmp_path):
    from conftest import Server

    srv = Server(demo=True)
    try:
        assert srv.demo_url.endswith("/out/v1/demo-hls/index.m3u8")
        # 12 s of playback crosses the 10 s loop of the pre-encoded segments.
        result = subprocess.run(
            ["node", str(ROOT / "tests" / "player" / "play_hls.mjs"), srv.base + "/", srv.demo_url, "12", "60"],
            capture_output=True, text=True, timeout=100,
        )
        assert result.returncode == 0, result.stdout + result.stderr[-1000:]
        played = json.loads(result.stdout.strip().splitlines()[-1])
        assert played["advanced"] >= 12 and len(played["levels"]) == 2, played
    finally:
        srv.stop()
