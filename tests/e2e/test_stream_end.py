"""The end of a stream and a stopped input, as players and CDNs see them:

- `#EXT-X-ENDLIST` from the encoder ends the output playlists (HLS TS and CMAF) two
  segment durations later unless a segment follows; with two ingest endpoints only when
  both have ended; a new segment makes the stream live again.
- A live rendition whose inputs stopped delivering without ending answers 404 with a short
  cache after the configured number of target durations, instead of a stale 200, and
  recovers as soon as a segment arrives.

Segments are real ffmpeg output, PUT as an encoder does (Basic auth)."""

import base64
import re
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import Server


@pytest.fixture(scope="module")
def segments(tmp_path_factory):
    out = tmp_path_factory.mktemp("segments")
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i",
         "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "12",
         "-c:v", "libx264", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-c:a", "aac",
         "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
         "-hls_segment_filename", str(out / "seg_%05d.ts"), str(out / "index.m3u8")],
        check=True, timeout=60,
    )
    return sorted(out.glob("seg_*.ts"))


def request(method, url, body=None, auth=None):
    req = urllib.request.Request(url, data=body, method=method)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode(errors="replace")


class Encoder:
    """Pushes the prepared segments to one ingest endpoint, with a media playlist after
    each, as ffmpeg does."""

    def __init__(self, ingest, segments):
        self.folder = ingest["Url"][: -len("channel")]
        self.auth = (ingest["Username"], ingest["Password"])
        self.segments = segments
        self.sent = []

    def push(self, i, end=False):
        path = self.segments[i]
        status, _, body = request("PUT", self.folder + "v/" + path.name, path.read_bytes(), self.auth)
        assert status in (201, 204), body
        self.sent.append(path.name)
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", f"#EXT-X-MEDIA-SEQUENCE:{i}"]
        lines += [f"#EXTINF:2.0,\n{name}" for name in self.sent[-3:]]
        if end:
            lines.append("#EXT-X-ENDLIST")
        status, _, body = request("PUT", self.folder + "v/index.m3u8", ("\n".join(lines) + "\n").encode(), self.auth)
        assert status == 201, body


def channel(server, name):
    mp = server.mediapackage()
    ch = mp.create_channel(Id=name)
    mp.create_origin_endpoint(ChannelId=name, Id=f"{name}-hls", ManifestName="index",
                              HlsPackage={"SegmentDurationSeconds": 2})
    mp.create_origin_endpoint(ChannelId=name, Id=f"{name}-cmaf", ManifestName="index",
                              CmafPackage={"SegmentDurationSeconds": 2, "HlsManifests": [{"Id": "hls", "ManifestName": "index"}]})
    return ch["HlsIngest"]["IngestEndpoints"]


def playlists(server, name):
    """(status, body) of the TS and the CMAF video media playlists."""
    return [request("GET", f"{server.base}/out/v1/{name}-hls/index_v-seg.m3u8")[::2],
            request("GET", f"{server.base}/out/v1/{name}-cmaf/hls/index_video_v-seg.m3u8")[::2]]


def test_endlist_ends_the_output_and_a_new_start_goes_live_again(local_server, segments):
    a = Encoder(channel(local_server, "ends")[0], segments)
    for i in range(3):
        a.push(i)
    for status, body in playlists(local_server, "ends"):
        assert status == 200 and "#EXT-X-ENDLIST" not in body
    a.push(3, end=True)
    # For two segment durations the stream stays live: ffmpeg ends every run with
    # #EXT-X-ENDLIST, and an encoder restarted at once must not end the players' stream.
    for status, body in playlists(local_server, "ends"):
        assert status == 200 and "#EXT-X-ENDLIST" not in body, body
    time.sleep(4.5)
    for status, body in playlists(local_server, "ends"):
        assert status == 200 and body.rstrip().endswith("#EXT-X-ENDLIST"), body
        assert body.count("#EXTINF") == 4
    a.push(4)
    for status, body in playlists(local_server, "ends"):
        assert status == 200 and "#EXT-X-ENDLIST" not in body, body


def test_with_two_inputs_the_stream_ends_only_when_both_have(local_server, segments):
    endpoints = channel(local_server, "pair")
    a, b = Encoder(endpoints[0], segments), Encoder(endpoints[1], segments)
    for i in range(3):
        a.push(i)
        b.push(i)
    a.push(3, end=True)
    b.push(3)
    for status, body in playlists(local_server, "pair"):
        assert status == 200 and "#EXT-X-ENDLIST" not in body, "A ended, B is still live"
    b.push(4, end=True)
    time.sleep(4.5)
    for status, body in playlists(local_server, "pair"):
        assert status == 200 and body.rstrip().endswith("#EXT-X-ENDLIST"), body


def test_a_stalled_input_is_404_with_a_short_cache_not_a_stale_200(segments):
    server = Server(args=["--stale-after-target-durations", "2"])
    try:
        a = Encoder(channel(server, "stall")[0], segments)
        for i in range(3):
            a.push(i)
        for status, _ in playlists(server, "stall"):
            assert status == 200
        # Two target durations of 2 s without a segment, and a margin.
        time.sleep(4.5)
        for url in (f"{server.base}/out/v1/stall-hls/index_v-seg.m3u8",
                    f"{server.base}/out/v1/stall-cmaf/hls/index_video_v-seg.m3u8"):
            status, headers, body = request("GET", url)
            assert status == 404 and "stale" in body, (url, status, body)
            assert int(re.search(r"max-age=(\d+)", headers["Cache-Control"]).group(1)) <= 2
        # Segments already listed stay available, and the stream recovers at once.
        a.push(3)
        for status, body in playlists(server, "stall"):
            assert status == 200 and body.count("#EXTINF") == 4
    finally:
        server.stop()
