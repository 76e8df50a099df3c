"""CMAF ingest: ffmpeg pushes fMP4 HLS (`-hls_segment_type fmp4`: an init segment per
rendition, then .m4s media segments) with PUT and Digest auth, exactly as users run it.
Sluice serves the one ingest as HLS TS, CMAF HLS and DASH: hls.js, Shaka Player and
dash.js play them in Chromium, ffprobe reads them, and every segment ffmpeg sent is
indexed (asserted from the server side: ffmpeg never reports PUT errors)."""

import json
import pathlib
import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from conftest import ROOT, encoder_folder

PUSH_SECONDS = 80


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def start_encoder(ingest, log_path):
    folder = encoder_folder(ingest)
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "verbose", "-nostdin", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(PUSH_SECONDS),
        "-filter_complex", "[0:v]split=2[a][b];[b]scale=320:180[b2]",
        "-map", "[a]", "-map", "[b2]", "-map", "1:a", "-map", "1:a",
        "-c:v", "libx264", "-preset", "veryfast", "-threads", "1", "-bf", "2",
        "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
        "-b:v:0", "500k", "-b:v:1", "150k", "-c:a", "aac", "-b:a", "64k",
        "-f", "hls", "-hls_time", "2", "-hls_list_size", "6", "-method", "PUT",
        "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
        "-master_pl_name", "master.m3u8",
        "-var_stream_map", "v:0,a:0,name:360p v:1,a:1,name:180p",
        "-hls_segment_filename", folder + "%v/seg_%05d.m4s",
        folder + "%v/index.m3u8",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))


def play(player, url, seconds=6):
    result = subprocess.run(
        ["node", str(ROOT / "tests" / "player" / "play.mjs"), player, url, str(seconds), "45"],
        capture_output=True, text=True, timeout=90,
    )
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr[-2000:]
    return result.returncode, json.loads(lines[-1])


def test_ffmpeg_fmp4_push_is_served_as_ts_cmaf_and_dash(local_server, tmp_path):
    server = local_server
    mp = server.mediapackage()
    channel = mp.create_channel(Id="cmafin")
    urls = {
        "ts": mp.create_origin_endpoint(
            ChannelId="cmafin", Id="cmafin-ts", ManifestName="index",
            HlsPackage={"SegmentDurationSeconds": 2, "PlaylistWindowSeconds": 60})["Url"],
        "cmaf": mp.create_origin_endpoint(
            ChannelId="cmafin", Id="cmafin-cmaf", ManifestName="index",
            CmafPackage={"SegmentDurationSeconds": 2,
                         "HlsManifests": [{"Id": "hls", "ManifestName": "index", "PlaylistWindowSeconds": 60}]},
        )["CmafPackage"]["HlsManifests"][0]["Url"],
        "dash": mp.create_origin_endpoint(
            ChannelId="cmafin", Id="cmafin-dash", ManifestName="live",
            DashPackage={"SegmentDurationSeconds": 2, "ManifestWindowSeconds": 60,
                         "SuggestedPresentationDelaySeconds": 6, "MinBufferTimeSeconds": 4},
        )["Url"],
    }
    ingest = channel["HlsIngest"]["IngestEndpoints"][0]
    folder_path = urllib.parse.urlparse(ingest["Url"]).path[: -len("channel")]
    encoder_log = tmp_path / "ffmpeg.log"
    encoder = start_encoder(ingest, encoder_log)
    try:
        # Bounded wait for a few segments on every output.
        deadline = time.time() + 30
        while time.time() < deadline:
            status, _, body = fetch(urls["ts"])
            if status == 200:
                media = [l for l in body.decode().splitlines() if l and not l.startswith("#")][0]
                _, _, mbody = fetch(urllib.parse.urljoin(urls["ts"], media))
                if mbody.count(b"#EXTINF") >= 3:
                    break
            time.sleep(0.5)
        else:
            raise AssertionError(f"no TS playlist with 3 segments in 30 s: {encoder_log.read_text()[-1500:]}")

        for kind, player in (("ts", "hlsjs"), ("cmaf", "hlsjs"), ("cmaf", "shaka"), ("dash", "dashjs"),
                             ("dash", "shaka")):
            code, result = play(player, urls[kind])
            assert code == 0, (kind, json.dumps(result))
            assert len(result["info"]["levels"]) == 2, (kind, result)
    finally:
        assert encoder.wait(PUSH_SECONDS + 30) == 0, encoder_log.read_text()[-2000:]

    # Every media segment ffmpeg sent was converted and indexed; the init segments were
    # stored, not indexed.
    time.sleep(1.5)
    log = encoder_log.read_text()
    sent = sorted(urllib.parse.urlparse(u).path[len(folder_path):]
                  for u in re.findall(r"Opening '([^']+\.m4s)' for writing", log))
    assert len(sent) >= 2 * (PUSH_SECONDS // 2 - 1), sent
    assert sorted(server.indexed_paths("cmafin")) == sent
    inits = [e for e in server.logs() if e.get("fields", {}).get("message") == "fMP4 init segment stored"]
    assert len(inits) == 2, inits

    # The TS output is TS with H.264 and AAC; the CMAF and DASH outputs are fMP4.
    status, _, body = fetch(urls["ts"])
    media = [l for l in body.decode().splitlines() if l and not l.startswith("#")]
    _, _, mbody = fetch(urllib.parse.urljoin(urls["ts"], media[0]))
    segment = [l for l in mbody.decode().splitlines() if l and not l.startswith("#")][-1]
    status, headers, sbody = fetch(urllib.parse.urljoin(urllib.parse.urljoin(urls["ts"], media[0]), segment))
    assert status == 200 and headers["Content-Type"] == "video/mp2t" and sbody[0] == 0x47
    for url in (urls["ts"], urls["cmaf"], urls["dash"]):
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,height", "-of", "json", url],
            capture_output=True, text=True, timeout=60,
        )
        streams = json.loads(probe.stdout or "{}").get("streams", [])
        assert {s["codec_name"] for s in streams} == {"h264", "aac"}, (url, probe.stdout, probe.stderr[-500:])
        assert {s.get("height") for s in streams if s["codec_name"] == "h264"} == {180, 360}, (url, probe.stdout)

