"""CMAF HLS and DASH out of TS ingest: endpoints made with boto3 on a channel fed by the
demo feeder (pre-encoded TS through the real ingest path), played by dash.js, Shaka
Player and hls.js in Debian's Chromium, read by ffprobe, checked box by box by mp4box.js
(an independent ISO-BMFF parser) against what ffprobe says of the source TS, and decoded
frame for frame (ffmpeg framemd5) against the TS."""

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import botocore.exceptions
import pytest

from conftest import ROOT, Server

PLAYER = ROOT / "tests" / "player"

DASH_FORMATS = {
    "number-timeline": ("NUMBER_WITH_TIMELINE", "FULL"),
    "time-timeline": ("TIME_WITH_TIMELINE", "COMPACT"),
    "number-duration": ("NUMBER_WITH_DURATION", "FULL"),
}


@pytest.fixture(scope="module")
def demo():
    srv = Server(demo=True)
    try:
        mp = srv.mediapackage()
        mp.create_origin_endpoint(
            ChannelId="demo", Id="cmaf", ManifestName="index",
            CmafPackage={"SegmentDurationSeconds": 2, "SegmentPrefix": "seg",
                         "HlsManifests": [{"Id": "hls", "ManifestName": "index", "PlaylistWindowSeconds": 30}]},
        )
        mp.create_origin_endpoint(ChannelId="demo", Id="ts2", ManifestName="index",
                                  HlsPackage={"SegmentDurationSeconds": 2})
        for name, (fmt, layout) in DASH_FORMATS.items():
            mp.create_origin_endpoint(
                ChannelId="demo", Id=f"dash-{name}", ManifestName="live",
                DashPackage={"SegmentDurationSeconds": 2, "SegmentTemplateFormat": fmt, "ManifestLayout": layout,
                             "UtcTiming": "HTTP-ISO", "ManifestWindowSeconds": 30},
            )
        # Wait (bounded) until the live window holds a few segments.
        deadline = time.time() + 40
        while time.time() < deadline:
            try:
                _, _, body = get(srv.demo_url.replace("index.m3u8", "index_360p-seg.m3u8"))
                if body.count(b"#EXTINF") >= 4:
                    break
            except AssertionError:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError("the demo feeder did not fill the window within 40 s")
        yield srv
    finally:
        srv.stop()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        raise AssertionError(f"GET {url}: {e.code} {e.read()[:300]!r}") from None


def play(player, url, seconds=8):
    result = subprocess.run(
        ["node", str(PLAYER / "play.mjs"), player, url, str(seconds), "60"],
        capture_output=True, text=True, timeout=100,
    )
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr[-2000:]
    return result.returncode, json.loads(lines[-1])


@pytest.mark.parametrize("player", ["dashjs", "shaka"])
@pytest.mark.parametrize("name", list(DASH_FORMATS))
def test_dash_endpoint_plays(demo, name, player):
    url = f"{demo.base}/out/v1/dash-{name}/live.mpd"
    status, headers, body = get(url)
    assert status == 200 and headers["content-type"] == "application/dash+xml"
    assert b'type="dynamic"' in body and b"<UTCTiming" in body
    code, result = play(player, url)
    assert code == 0, json.dumps(result)
    assert len(result["info"]["levels"]) == 2, result


@pytest.mark.parametrize("player", ["hlsjs", "shaka"])
def test_cmaf_endpoint_plays(demo, player):
    code, result = play(player, f"{demo.base}/out/v1/cmaf/hls/index.m3u8")
    assert code == 0, json.dumps(result)
    assert len(result["info"]["levels"]) == 2, result


def test_ffprobe_reads_cmaf_and_dash(demo):
    for url in [f"{demo.base}/out/v1/cmaf/hls/index.m3u8", f"{demo.base}/out/v1/dash-number-timeline/live.mpd"]:
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,height", "-of", "json", url],
            capture_output=True, text=True, timeout=60,
        )
        streams = json.loads(probe.stdout)["streams"]
        assert {s["codec_name"] for s in streams} == {"h264", "aac"}, (url, probe.stderr)
        assert {s.get("height") for s in streams if s["codec_name"] == "h264"} == {180, 360}


def media_playlist_segments(text):
    lines = text.splitlines()
    init = next(l.split('URI="')[1].rstrip('"') for l in lines if l.startswith("#EXT-X-MAP:"))
    return init, [l for l in lines if l and not l.startswith("#")]


def ffprobe_packets(path, stream):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", stream, "-show_entries", "packet=pts,dts,duration,flags",
         "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout)["packets"]


def boxes(*paths):
    out = subprocess.run(["node", str(PLAYER / "mp4_boxes.mjs"), *map(str, paths)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def cmaf_files(demo, tmp_path, kind, count=2):
    """Init, `count` consecutive CMAF segments of the 360p rendition's `kind` track, and the
    TS segments (from an HLS TS endpoint) they were made from."""
    base = f"{demo.base}/out/v1/cmaf/hls"
    _, _, master = get(f"{base}/index.m3u8")
    rendition = next(l for l in master.decode().splitlines() if l.startswith("index_video_")).split("_", 2)[2]
    rendition = rendition.removesuffix(".m3u8")
    _, _, playlist = get(f"{base}/index_{kind}_{rendition}.m3u8")
    init, segments = media_playlist_segments(playlist.decode())
    assert init == f"../seg_{kind}_{rendition}_init.mp4"
    files = {"init": tmp_path / f"{kind}_init.mp4"}
    files["init"].write_bytes(get(urllib.parse.urljoin(f"{base}/", init))[2])
    for i, uri in enumerate(segments[-1 - count:-1]):
        status, headers, body = get(urllib.parse.urljoin(f"{base}/", uri))
        assert status == 200 and headers["content-type"] == f"{kind}/mp4"
        files[i] = tmp_path / f"{kind}_{i}.m4s"
        files[i].write_bytes(body)
        start = uri.rsplit("_", 1)[1].removesuffix(".mp4")
        ts = tmp_path / f"{kind}_{i}.ts"
        ts.write_bytes(get(f"{demo.base}/out/v1/ts2/index_{rendition}_{start}.ts")[2])
        files[f"ts{i}"] = ts
    return files


def test_cmaf_video_boxes_match_the_source_ts(demo, tmp_path):
    f = cmaf_files(demo, tmp_path, "video")
    init, seg0, seg1 = boxes(f["init"], f[0], f[1])
    assert [b["type"] for b in init["boxes"]] == ["ftyp", "moov"]
    assert "cmfc" in init["brands"]["compatible"]
    (track,) = init["moov"]["tracks"]
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height,profile,level",
         "-of", "json", str(f["ts0"])], capture_output=True, text=True, check=True).stdout)["streams"][0]
    assert track["handler"] == "vide" and track["timescale"] == 90000 and track["entry"] == "avc1"
    assert (track["width"], track["height"]) == (probe["width"], probe["height"])
    assert track["avcC"]["profile"] == 77 and probe["profile"] == "Main"  # Main profile_idc
    assert track["avcC"]["level"] == probe["level"] and track["avcC"]["lengthSize"] == 4
    assert track["samples"] == 0, "an init segment carries no samples"
    assert init["moov"]["trex"] == [{"track": track["id"], "description": 1}]

    for seg, ts in [(seg0, f["ts0"]), (seg1, f["ts1"])]:
        assert [b["type"] for b in seg["boxes"]] == ["styp", "moof", "mdat"]
        m = seg["moof"]
        assert m["trafs"] == 1 and m["track"] == track["id"] and m["defaultBaseIsMoof"]
        packets = ffprobe_packets(ts, "v")
        assert m["samples"] == len(packets)
        assert m["baseMediaDecodeTime"] == int(packets[0]["dts"])
        assert m["compositionOffsets"] == [int(p["pts"]) - int(p["dts"]) for p in packets]
        dts = [int(p["dts"]) for p in packets]
        assert m["durations"][:-1] == [b - a for a, b in zip(dts, dts[1:])]
        sync = [p["flags"].startswith("K") for p in packets]
        assert [flag == 0x02000000 for flag in m["flags"]] == sync and sync[0]
        assert all(flag in (0x02000000, 0x01010000) for flag in m["flags"])
        # The data offset points from the moof to the first byte after the mdat header,
        # and the samples fill the mdat exactly.
        assert m["dataOffset"] == m["mdatStart"] + m["mdatHeader"] - m["moofStart"]
        assert sum(m["sizes"]) == m["mdatSize"] - m["mdatHeader"]
    # Consecutive segments continue each other on the timeline, numbered in order.
    assert seg1["moof"]["baseMediaDecodeTime"] == seg0["moof"]["baseMediaDecodeTime"] + sum(seg0["moof"]["durations"])
    assert seg1["moof"]["sequence"] == seg0["moof"]["sequence"] + 1


def audio_continues(ts0, ts1):
    """Whether the TS segment ts1's audio starts where ts0's ends (1024 samples per frame)."""
    first, second = ffprobe_packets(ts0, "a"), ffprobe_packets(ts1, "a")
    return abs(int(second[0]["pts"]) - int(first[-1]["pts"]) - 1024 * 90000 // 48000) <= 2


def test_cmaf_audio_boxes_match_the_source_ts(demo, tmp_path):
    # Three segments, so that a pair exists whose source audio is back to back: the demo's
    # loop is not a whole number of AAC frames long, so where one pass joins the next the
    # source's first frame overlaps its last (at most once in three segments).
    f = cmaf_files(demo, tmp_path, "audio", count=3)
    pair = 0 if audio_continues(f["ts0"], f["ts1"]) else 1
    assert audio_continues(f[f"ts{pair}"], f[f"ts{pair + 1}"]), "two joins of the demo loop in three segments"
    f = {"init": f["init"], 0: f[pair], 1: f[pair + 1], "ts0": f[f"ts{pair}"], "ts1": f[f"ts{pair + 1}"]}
    init, seg0, seg1 = boxes(f["init"], f[0], f[1])
    (track,) = init["moov"]["tracks"]
    assert track["handler"] == "soun" and track["entry"] == "mp4a" and track["timescale"] == 48000
    assert track["channels"] == 2 and init["moov"]["codecs"] == ["mp4a.40.2"]
    for seg, ts in [(seg0, f["ts0"]), (seg1, f["ts1"])]:
        m = seg["moof"]
        packets = ffprobe_packets(ts, "a")
        assert m["samples"] == len(packets)
        assert set(m["durations"]) == {1024}
        # PTS in 90 kHz → the 48 kHz track timescale.
        assert abs(m["baseMediaDecodeTime"] - int(packets[0]["pts"]) * 48000 // 90000) <= 1
        assert sum(m["sizes"]) == m["mdatSize"] - m["mdatHeader"]
    end0 = seg0["moof"]["baseMediaDecodeTime"] + sum(seg0["moof"]["durations"])
    assert abs(seg1["moof"]["baseMediaDecodeTime"] - end0) <= 1


def framemd5(path, stream):
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", f"0:{stream}", "-f", "framemd5", "-"],
                         capture_output=True, text=True, check=True).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("kind,stream", [("video", "v"), ("audio", "a")])
def test_cmaf_decodes_to_the_same_frames_as_the_ts(demo, tmp_path, kind, stream):
    f = cmaf_files(demo, tmp_path, kind)
    joined = tmp_path / f"{kind}.mp4"
    joined.write_bytes(f["init"].read_bytes() + f[0].read_bytes())
    expected = framemd5(f["ts0"], stream)
    assert expected and framemd5(joined, stream) == expected


def test_fmp4_package_validation(demo):
    mp = demo.mediapackage()

    def refused(**kwargs):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            mp.create_origin_endpoint(ChannelId="demo", **kwargs)
        assert e.value.response["Error"]["Code"] == "UnprocessableEntityException"
        return e.value.response["Error"]["Message"]

    assert "hlsManifests" in refused(Id="c1", CmafPackage={"SegmentDurationSeconds": 2})
    assert "only one" in refused(Id="c2", HlsPackage={}, DashPackage={})
    assert "segmentTemplateFormat" in refused(Id="d1", DashPackage={"SegmentTemplateFormat": "NUMBER"})
    assert "periodTriggers" in refused(Id="d2", DashPackage={"PeriodTriggers": ["ADS"]})
    assert "minVideoBitsPerSecond" in refused(
        Id="d3", DashPackage={"StreamSelection": {"MinVideoBitsPerSecond": 9, "MaxVideoBitsPerSecond": 1}})
    with pytest.raises(botocore.exceptions.ClientError) as e:
        mp.update_origin_endpoint(Id="dash-number-duration", DashPackage={"SegmentTemplateFormat": "NUMBER_WITH_TIMELINE"})
    assert "created" in e.value.response["Error"]["Message"]
    described = mp.describe_origin_endpoint(Id="dash-time-timeline")
    assert described["Url"].endswith("/out/v1/dash-time-timeline/live.mpd")
    assert described["DashPackage"]["SegmentTemplateFormat"] == "TIME_WITH_TIMELINE"
    cmaf = mp.describe_origin_endpoint(Id="cmaf")["CmafPackage"]
    assert cmaf["HlsManifests"][0]["Url"].endswith("/out/v1/cmaf/hls/index.m3u8")


def test_stream_selection_filters_and_orders(demo):
    mp = demo.mediapackage()
    mp.create_origin_endpoint(
        ChannelId="demo", Id="dash-low", ManifestName="live",
        DashPackage={"StreamSelection": {"MaxVideoBitsPerSecond": 400000}, "UtcTiming": "HTTP-ISO"})
    _, _, body = get(f"{demo.base}/out/v1/dash-low/live.mpd")
    assert body.count(b"<Representation id=\"video_") == 1 and b'height="180"' in body
    mp.create_origin_endpoint(
        ChannelId="demo", Id="hls-asc", ManifestName="index",
        HlsPackage={"StreamSelection": {"StreamOrder": "VIDEO_BITRATE_ASCENDING"}})
    _, _, body = get(f"{demo.base}/out/v1/hls-asc/index.m3u8")
    heights = [int(l.split("RESOLUTION=")[1].split("x")[1].split(",")[0])
               for l in body.decode().splitlines() if "RESOLUTION=" in l]
    assert heights == [180, 360]
