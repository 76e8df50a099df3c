"""One unusual segment cannot change published output (issue 12, item 2). A rendition's
target duration is fixed by its first segment: a 50 s segment and a 3 s one (a late IDR in
a 2 s stream) are refused with 400 and a message, and the published playlist keeps its
target duration, cache time, grouping and bytes. One segment with 25 times the usual bytes
is accepted but moves neither BANDWIDTH nor a maxVideoBitsPerSecond selection. A segment
of 2,000 keyframes is indexed with at most four a second."""

import base64
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import m3u8
import pytest

from conftest import Server

NULL_PACKET = b"\x47\x1f\xff\x10" + b"\xff" * 184


def ffmpeg_segments(out, name, seconds, hls_time, extra=(), size="160x90", rate=25, gop=50):
    folder = out / name
    folder.mkdir()
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i",
         f"testsrc2=size={size}:rate={rate}", "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast",
         "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", *extra,
         "-f", "hls", "-hls_time", str(hls_time), "-hls_playlist_type", "vod",
         "-hls_segment_filename", str(folder / "seg_%05d.ts"), str(folder / "index.m3u8")],
        check=True, timeout=180,
    )
    return sorted(folder.glob("seg_*.ts"))


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    out = tmp_path_factory.mktemp("outliers")
    return {
        "normal": ffmpeg_segments(out, "normal", 18, 2),
        "long": ffmpeg_segments(out, "long", 50, 60, size="64x36"),
        "late_idr": ffmpeg_segments(out, "late", 3, 3, gop=75),
        # 1,000 frames a second, every one a keyframe.
        "keyframes": ffmpeg_segments(out, "kf", 2, 2, size="64x36", rate=1000, gop=1),
    }


def request(method, url, body=None, auth=None):
    req = urllib.request.Request(url, data=body, method=method)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def snapshot(url):
    """(TARGETDURATION, Cache-Control, [(sequence, EXTINF, sha of the bytes)])."""
    status, headers, body = request("GET", url)
    assert status == 200, (url, status, body[:300])
    playlist = m3u8.loads(body.decode(), uri=url)
    entries = []
    for i, seg in enumerate(playlist.segments):
        s, _, data = request("GET", urllib.parse.urljoin(url, seg.uri))
        assert s == 200
        entries.append((playlist.media_sequence + i, round(seg.duration, 3), hash(data)))
    return playlist.target_duration, headers["Cache-Control"], entries


def test_an_odd_segment_changes_no_published_output(media):
    assert len(media["normal"]) == 9 and len(media["long"]) == 1 and len(media["late_idr"]) == 1
    server = Server(args=["--stale-after-target-durations", "0"])
    try:
        mp = server.mediapackage()
        ingest = mp.create_channel(Id="odd")["HlsIngest"]["IngestEndpoints"][0]
        folder, auth = ingest["Url"][: -len("channel")], (ingest["Username"], ingest["Password"])
        # 6 s output segments: three 2 s inputs each.
        mp.create_origin_endpoint(ChannelId="odd", Id="six", ManifestName="index",
                                  HlsPackage={"SegmentDurationSeconds": 6, "PlaylistWindowSeconds": 120})
        normal = media["normal"]
        peak = max(p.stat().st_size * 8 // 2 for p in normal)
        mp.create_origin_endpoint(ChannelId="odd", Id="capped", ManifestName="index",
                                  HlsPackage={"StreamSelection": {"MaxVideoBitsPerSecond": 3 * peak}})

        def put(path, body):
            return request("PUT", folder + path, body, auth)

        for p in normal[:3]:
            assert put(f"v/{p.name}", p.read_bytes())[0] == 201
        url = f"{server.base}/out/v1/six/index_v-seg.m3u8"
        before = snapshot(url)
        assert before[0] == 6 and len(before[2]) == 1, before

        # 50 s, and 3 s (a late IDR): refused, saying why, before anything is stored.
        for name, outlier in (("seg_00100.ts", media["long"][0]), ("seg_00101.ts", media["late_idr"][0])):
            status, _, body = put(f"v/{name}", outlier.read_bytes())
            assert status == 400, (name, status, body)
            assert b"target duration is 2 s" in body and b"fixed by its" in body, body
        # Too long to be any rendition's first segment, too.
        status, _, body = put("w/seg_00000.ts", media["long"][0].read_bytes())
        assert status == 400 and b"at most 30 s" in body, (status, body)

        # The rest, one of them padded to 25 times its size with null packets.
        for p in normal[3:6]:
            assert put(f"v/{p.name}", p.read_bytes())[0] == 201
        heavy = normal[6].read_bytes()
        heavy += NULL_PACKET * (24 * len(heavy) // len(NULL_PACKET))
        assert put(f"v/{normal[6].name}", heavy)[0] == 201
        for p in normal[7:]:
            assert put(f"v/{p.name}", p.read_bytes())[0] == 201

        after = snapshot(url)
        assert after[0] == before[0], "EXT-X-TARGETDURATION changed"
        assert after[1] == before[1], "the playlist cache time changed"
        assert after[2][: len(before[2])] == before[2], "a published segment changed"
        assert [e[0] for e in after[2]] == [0, 1, 2] and all(abs(e[1] - 6) < 0.1 for e in after[2]), after

        # Still selected, and BANDWIDTH is the ordinary peak, not the padded segment's.
        status, _, body = request("GET", f"{server.base}/out/v1/capped/index.m3u8")
        assert status == 200, body
        variants = m3u8.loads(body.decode()).playlists
        assert [v.uri for v in variants] == ["index_v-seg.m3u8"], body
        assert variants[0].stream_info.bandwidth <= 1.2 * peak, (variants[0].stream_info.bandwidth, peak)

        # A segment with 2,000 keyframes: at most one I-frame entry per quarter second.
        mp.create_origin_endpoint(ChannelId="odd", Id="trick", ManifestName="index",
                                  HlsPackage={"SegmentDurationSeconds": 2, "IncludeIframeOnlyStream": True})
        kf = media["keyframes"][0]
        assert put(f"k/{kf.name}", kf.read_bytes())[0] == 201
        status, _, body = request("GET", f"{server.base}/out/v1/trick/index_k-seg_iframes.m3u8")
        assert status == 200, body
        iframes = m3u8.loads(body.decode())
        assert 2 <= len(iframes.segments) <= 9, len(iframes.segments)
        assert abs(sum(s.duration for s in iframes.segments) - 2.0) < 0.1
        assert iframes.target_duration == 2
    finally:
        server.stop()
