"""HLS I-frame playlists (`includeIframeOnlyStream`): the multivariant playlist lists an
`EXT-X-I-FRAME-STREAM-INF` per video rendition, the I-frame playlist (parsed by the `m3u8`
library) gives a byte range of a TS segment per keyframe, the origin serves those ranges
as 206 Partial Content, and ffprobe decodes each range alone to exactly one keyframe.
CMAF HLS manifests get the same: each keyframe is its own one-sample fragment after the
init segment's EXT-X-MAP, decoded by ffprobe to one keyframe at the time it is named by."""

import base64
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import m3u8
import pytest

from conftest import Server


@pytest.fixture(scope="module")
def demo():
    srv = Server(demo=True)
    try:
        mp = srv.mediapackage()
        created = mp.create_origin_endpoint(
            ChannelId="demo", Id="trick", ManifestName="index",
            # 4 s output segments from 2 s inputs: two keyframes per output segment.
            HlsPackage={"SegmentDurationSeconds": 4, "PlaylistWindowSeconds": 30, "IncludeIframeOnlyStream": True},
        )
        assert created["HlsPackage"]["IncludeIframeOnlyStream"] is True
        deadline = time.time() + 40
        while time.time() < deadline:
            status, _, body = get(f"{srv.base}/out/v1/trick/index_360p-seg.m3u8")
            if status == 200 and body.count(b"#EXTINF") >= 2:
                break
            time.sleep(0.5)
        else:
            raise RuntimeError("no two 4 s segments within 40 s")
        yield srv
    finally:
        srv.stop()


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_multivariant_lists_an_iframe_stream_per_video_rendition(demo):
    status, _, body = get(f"{demo.base}/out/v1/trick/index.m3u8")
    assert status == 200
    master = m3u8.loads(body.decode())
    assert len(master.playlists) == 2
    iframes = master.iframe_playlists
    assert sorted(p.uri for p in iframes) == ["index_180p-seg_iframes.m3u8", "index_360p-seg_iframes.m3u8"]
    for p in iframes:
        info = p.iframe_stream_info
        assert info.codecs.startswith("avc1.") and "mp4a" not in info.codecs
        assert info.bandwidth > 0 and info.resolution in ((640, 360), (320, 180))
        # Keyframes alone cost less than the whole stream.
        whole = next(v for v in master.playlists if v.stream_info.resolution == info.resolution)
        assert info.bandwidth < whole.stream_info.bandwidth


def test_each_iframe_range_decodes_alone_to_one_keyframe(demo):
    url = f"{demo.base}/out/v1/trick/index_360p-seg_iframes.m3u8"
    status, headers, body = get(url)
    assert status == 200 and headers["Content-Type"] == "application/vnd.apple.mpegurl"
    playlist = m3u8.loads(body.decode())
    assert playlist.is_i_frames_only and playlist.version >= 4
    assert len(playlist.segments) >= 4
    media = m3u8.loads(get(f"{demo.base}/out/v1/trick/index_360p-seg.m3u8")[2].decode())
    # Two keyframes per 4 s segment, each lasting until the next one: the entries of a
    # segment add up to the segment's duration.
    by_uri = {}
    for entry in playlist.segments:
        by_uri.setdefault(entry.uri, []).append(entry)
    for segment in media.segments:
        if segment.uri in by_uri:
            entries = by_uri[segment.uri]
            assert len(entries) == 2, [e.byterange for e in entries]
            assert abs(sum(e.duration for e in entries) - segment.duration) < 0.05
    for entry in playlist.segments[:6]:
        length, offset = (int(x) for x in entry.byterange.split("@"))
        segment_url = urllib.parse.urljoin(url, entry.uri)
        status, headers, part = get(segment_url, {"Range": f"bytes={offset}-{offset + length - 1}"})
        assert status == 206, status
        assert headers["Content-Range"].startswith(f"bytes {offset}-{offset + length - 1}/")
        assert len(part) == length and part[0] == 0x47
        assert entry.init_section is None, "one keyframe per input: every range starts with PAT/PMT"
        assert_one_keyframe(part, entry.byterange)


def assert_one_keyframe(part, what):
    probe = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=key_frame,pict_type",
             "-of", "csv=p=0", "-"],
        input=part, capture_output=True, timeout=30,
    )
    frames = [l.strip(",") for l in probe.stdout.decode().split() if l]
    assert frames == ["1,I"], (what, frames, probe.stderr[-300:])


def test_keyframes_inside_a_segment_get_the_pat_and_pmt_from_ext_x_map(demo, tmp_path):
    """ffmpeg with a 1 s GOP in 2 s segments: the second keyframe of each segment is mid-
    segment, so the playlist (version 5) points EXT-X-MAP at the segment's PAT/PMT, and map
    bytes + range bytes decode to exactly one keyframe."""
    mp = demo.mediapackage()
    ingest = mp.create_channel(Id="gop1")["HlsIngest"]["IngestEndpoints"][0]
    mp.create_origin_endpoint(ChannelId="gop1", Id="gop1-hls", ManifestName="index",
                              HlsPackage={"SegmentDurationSeconds": 2, "IncludeIframeOnlyStream": True})
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i",
         "testsrc2=size=320x180:rate=25", "-t", "6", "-c:v", "libx264", "-g", "25", "-keyint_min", "25",
         "-sc_threshold", "0", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
         "-hls_segment_filename", str(tmp_path / "seg_%03d.ts"), str(tmp_path / "index.m3u8")],
        check=True, timeout=60,
    )
    folder = ingest["Url"][: -len("channel")]
    token = base64.b64encode(f"{ingest['Username']}:{ingest['Password']}".encode()).decode()
    for segment in sorted(tmp_path.glob("seg_*.ts")):
        request = urllib.request.Request(folder + "v/" + segment.name, data=segment.read_bytes(), method="PUT",
                                         headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 201
    url = f"{demo.base}/out/v1/gop1-hls/index_v-seg_iframes.m3u8"
    status, _, body = get(url)
    assert status == 200, body
    playlist = m3u8.loads(body.decode())
    assert playlist.version == 5 and playlist.is_i_frames_only
    assert len(playlist.segments) == 6, body.decode()
    maps = 0
    for entry in playlist.segments:
        segment_url = urllib.parse.urljoin(url, entry.uri)
        length, offset = (int(x) for x in entry.byterange.split("@"))
        part = get(segment_url, {"Range": f"bytes={offset}-{offset + length - 1}"})[2]
        init = entry.init_section
        if init is not None:
            maps += 1
            map_length, map_offset = (int(x) for x in init.byterange.split("@"))
            psi = get(urllib.parse.urljoin(url, init.uri), {"Range": f"bytes={map_offset}-{map_offset + map_length - 1}"})[2]
            assert psi[0] == 0x47 and len(psi) == map_length
            pids = {((psi[i + 1] & 0x1F) << 8) | psi[i + 2] for i in range(0, len(psi), 188)}
            assert 0 in pids, f"the map range {init.byterange} holds no PAT"
            part = psi + part
        assert_one_keyframe(part, entry.byterange)
    assert maps == 6


def test_ranges_past_the_end_are_416_and_plain_requests_get_everything(demo):
    media_url = f"{demo.base}/out/v1/trick/index_360p-seg.m3u8"
    media = m3u8.loads(get(media_url)[2].decode())
    segment_url = urllib.parse.urljoin(media_url, media.segments[0].uri)
    status, headers, whole = get(segment_url)
    assert status == 200 and headers["Accept-Ranges"] == "bytes"
    status, headers, body = get(segment_url, {"Range": f"bytes={len(whole)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(whole)}"
    assert b"outside the segment" in body
    status, _, tail = get(segment_url, {"Range": "bytes=-188"})
    assert status == 206 and tail == whole[-188:]


def test_iframe_playlist_is_404_when_not_enabled(demo):
    mp = demo.mediapackage()
    mp.create_origin_endpoint(ChannelId="demo", Id="plain", ManifestName="index",
                              HlsPackage={"SegmentDurationSeconds": 2})
    status, _, body = get(f"{demo.base}/out/v1/plain/index_360p-seg_iframes.m3u8")
    assert status == 404 and b"includeIframeOnlyStream" in body
    assert b"I-FRAME" not in get(f"{demo.base}/out/v1/plain/index.m3u8")[2]


def test_cmaf_iframe_playlists_give_each_keyframe_as_its_own_fragment(demo):
    mp = demo.mediapackage()
    created = mp.create_origin_endpoint(
        ChannelId="demo", Id="cmaf-trick",
        CmafPackage={"SegmentDurationSeconds": 4, "HlsManifests": [
            {"Id": "trick", "IncludeIframeOnlyStream": True, "PlaylistWindowSeconds": 30},
            {"Id": "plain"},
        ]},
    )
    manifests = created["CmafPackage"]["HlsManifests"]
    assert [m["IncludeIframeOnlyStream"] for m in manifests] == [True, False]
    master = m3u8.loads(get(manifests[0]["Url"])[2].decode())
    iframes = sorted(p.uri for p in master.iframe_playlists)
    assert iframes == ["index_video_180p-seg_iframes.m3u8", "index_video_360p-seg_iframes.m3u8"], iframes
    assert all(p.iframe_stream_info.codecs.startswith("avc1.") for p in master.iframe_playlists)
    assert b"I-FRAME" not in get(manifests[1]["Url"])[2]
    assert get(urllib.parse.urljoin(manifests[1]["Url"], iframes[0]))[0] == 404

    url = urllib.parse.urljoin(manifests[0]["Url"], "index_video_360p-seg_iframes.m3u8")
    status, headers, body = get(url)
    assert status == 200 and headers["Content-Type"] == "application/vnd.apple.mpegurl"
    playlist = m3u8.loads(body.decode())
    assert playlist.is_i_frames_only and playlist.version >= 5
    assert len(playlist.segments) >= 4
    media = m3u8.loads(get(urllib.parse.urljoin(url, "index_video_360p-seg.m3u8"))[2].decode())
    assert playlist.segments[0].init_section.uri == media.segments[0].init_section.uri
    init = get(urllib.parse.urljoin(url, playlist.segments[0].init_section.uri))[2]
    # 4 s segments of 2 s inputs with one keyframe each: two entries per segment, 2 s each.
    assert all(abs(e.duration - 2) < 0.05 and e.byterange is None for e in playlist.segments)
    segment_starts = {int(s.uri.rsplit("_", 1)[1].split(".")[0]) for s in media.segments}
    for entry in playlist.segments[:6]:
        stem = entry.uri.rsplit("/", 1)[-1].removesuffix(".mp4")
        start, time_ticks = stem.rsplit("_", 2)[1:]
        time_ticks = int(time_ticks.removeprefix("iframe"))
        assert int(start) in segment_starts or int(start) < min(segment_starts)
        status, headers, fragment = get(urllib.parse.urljoin(url, entry.uri))
        assert status == 200 and headers["Content-Type"] == "video/mp4"
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "frame=key_frame,pict_type,pts_time",
             "-of", "csv=p=0", "-"],
            input=init + fragment, capture_output=True, timeout=30,
        )
        frames = [line.strip(",") for line in probe.stdout.decode().split() if line]
        assert len(frames) == 1, (entry.uri, frames, probe.stderr[-300:])
        key, pts, kind = frames[0].split(",")
        assert (key, kind) == ("1", "I") and abs(float(pts) - time_ticks / 90000) < 0.002, frames
    decode = subprocess.run(["ffmpeg", "-v", "error", "-i", url, "-t", "4", "-f", "null", "-"],
                            capture_output=True, timeout=60)
    assert decode.returncode == 0 and not decode.stderr.strip(), decode.stderr[-500:]
