"""CEA-608 captions in the H.264 SEI (issue 14 item 3): a ladder whose 360p video carries
a pop-on caption "HELLO" on CC1 (ATSC A/53 GA94 cc_data, put in by captioned.py, known
good by ffprobe and ffmpeg's caption decoder) and whose 180p video carries none, pushed
by ffmpeg (HLS over PUT, `-c copy`). Checked: the HLS TS and CMAF multivariants have a
CLOSED-CAPTIONS group with INSTREAM-ID CC1 that only the 360p variant names; the DASH
video AdaptationSet has the SCTE 214 Accessibility descriptor when its renditions carry
CC1 and none when one does not; a CMAF segment (init + media) still carries the captions;
hls.js shows the cue "HELLO" on HLS TS and CMAF, Shaka and dash.js list a CC1 track."""

import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import m3u8
import pytest

from conftest import Server, encoder_folder, play

sys.path.insert(0, os.path.dirname(__file__))
import captioned  # noqa: E402

DASH_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
CEA608 = "urn:scte:dash:cc:cea-608:2015"
SECONDS = int(os.environ.get("CC_SECONDS", 150))


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def ffmpeg(*args, timeout=180):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
                   check=True, timeout=timeout)


def video_line(path):
    """ffprobe's description of the video stream of `path`."""
    out = subprocess.run(["ffprobe", "-hide_banner", str(path)], capture_output=True, text=True, timeout=30)
    return next(line for line in out.stderr.splitlines() if "Video:" in line)


def caption_text(path):
    """The captions ffmpeg's CEA-608 decoder reads from the video of `path`, as SRT."""
    srt = path.with_suffix(".srt")
    ffmpeg("-f", "lavfi", "-i", f"movie={path}[out0+subcc]", "-map", "0:s", "-c:s", "srt", str(srt))
    return srt.read_text()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The 360p clip with captions and the 180p clip without, each with AAC audio."""
    folder = tmp_path_factory.mktemp("clips")
    for name, size, rate in (("360p", "640x360", "500k"), ("180p", "320x180", "150k")):
        # No B-frames: the raw H.264 is re-timed at 25 fps in decoding order.
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25", "-t", str(SECONDS),
               "-c:v", "libx264", "-preset", "veryfast", "-threads", "1", "-bf", "0", "-g", "50",
               "-keyint_min", "50", "-sc_threshold", "0", "-b:v", rate, "-f", "h264", str(folder / f"{name}.h264"))
    raw = (folder / "360p.h264").read_bytes()
    (folder / "360p-cc.h264").write_bytes(captioned.insert_captions(raw, "HELLO"))
    clips = {}
    for name, source in (("360p", "360p-cc.h264"), ("180p", "180p.h264")):
        clips[name] = folder / f"{name}.ts"
        ffmpeg("-framerate", "25", "-i", str(folder / source), "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
               "-t", str(SECONDS), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "64k",
               "-f", "mpegts", str(clips[name]))
    return clips


@pytest.fixture(scope="module")
def ladder(clips, tmp_path_factory):
    server = Server()
    mp = server.mediapackage()
    ingest = mp.create_channel(Id="cc")["HlsIngest"]["IngestEndpoints"][0]
    urls = {
        "hls": mp.create_origin_endpoint(ChannelId="cc", Id="cc-hls", HlsPackage={
            "SegmentDurationSeconds": 2})["Url"],
        "cmaf": mp.create_origin_endpoint(ChannelId="cc", Id="cc-cmaf", CmafPackage={
            "SegmentDurationSeconds": 2, "HlsManifests": [{"Id": "hls"}]})["Url"],
        "dash": mp.create_origin_endpoint(ChannelId="cc", Id="cc-dash", DashPackage={
            "SegmentDurationSeconds": 2})["Url"],
        # Only the captioned 360p rendition (~560 kb/s with its audio; 180p ~210 kb/s).
        "dash-360p": mp.create_origin_endpoint(ChannelId="cc", Id="cc-dash-360p", DashPackage={
            "SegmentDurationSeconds": 2, "StreamSelection": {"MinVideoBitsPerSecond": 350_000}})["Url"],
    }
    folder = encoder_folder(ingest)
    log = tmp_path_factory.mktemp("encoder") / "ffmpeg.log"
    encoder = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", str(clips["360p"]),
         "-re", "-i", str(clips["180p"]), "-map", "0:v", "-map", "0:a", "-map", "1:v", "-map", "1:a",
         "-c", "copy", "-f", "hls", "-hls_time", "2", "-hls_list_size", "6", "-method", "PUT",
         "-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,a:0,name:360p v:1,a:1,name:180p",
         "-hls_segment_filename", folder + "%v/seg_%05d.ts", folder + "%v/index.m3u8"],
        stdout=subprocess.DEVNULL, stderr=open(log, "w"),
    )
    try:
        # Both renditions listed, four segments of each published.
        deadline = time.time() + 40
        while time.time() < deadline:
            status, body = fetch(urls["hls"])
            if status == 200 and body.count(b"#EXT-X-STREAM-INF") == 2:
                variants = m3u8.loads(body.decode()).playlists
                counts = [fetch(urllib.parse.urljoin(urls["hls"], v.uri))[1].count(b"#EXTINF") for v in variants]
                if min(counts) >= 4:
                    break
            time.sleep(1)
        else:
            raise RuntimeError(f"the ladder did not arrive within 40 s: {log.read_text()[-2000:]}")
        yield server, urls
    finally:
        encoder.terminate()
        encoder.wait(10)
        server.stop()


def test_the_pushed_clip_carries_cc1_and_the_other_none(clips):
    # ffprobe names A/53 captions on an H.264 stream; ffmpeg's CEA-608 decoder reads the text.
    assert "Closed Captions" in video_line(clips["360p"])
    assert "Closed Captions" not in video_line(clips["180p"])
    assert "HELLO" in caption_text(clips["360p"])


@pytest.mark.parametrize("package", ["hls", "cmaf"])
def test_multivariant_has_a_closed_captions_group_named_by_the_captioned_variant(ladder, package):
    _, urls = ladder
    status, body = fetch(urls[package])
    assert status == 200, body
    text = body.decode()
    master = m3u8.loads(text)
    captions = [m for m in master.media if m.type == "CLOSED-CAPTIONS"]
    assert [(m.group_id, m.instream_id, m.name, m.default, m.autoselect) for m in captions] == [
        ("cc", "CC1", "CC1", "YES", "YES")], text
    # No LANGUAGE: CEA-608 data names none. No URI: the captions are in the video.
    assert captions[0].language is None and captions[0].uri is None, text
    by_height = {p.stream_info.resolution[1]: p.stream_info for p in master.playlists}
    assert set(by_height) == {360, 180}, text
    assert by_height[360].closed_captions == '"cc"', text
    assert by_height[180].closed_captions is None, text


def test_dash_describes_cc1_only_where_every_video_rendition_carries_it(ladder):
    _, urls = ladder
    both = ET.fromstring(fetch(urls["dash"])[1])
    video = both.find(".//d:AdaptationSet[@contentType='video']", DASH_NS)
    assert len(video.findall("d:Representation", DASH_NS)) == 2
    assert video.findall("d:Accessibility", DASH_NS) == [], "180p carries no captions"
    only = ET.fromstring(fetch(urls["dash-360p"])[1])
    video = only.find(".//d:AdaptationSet[@contentType='video']", DASH_NS)
    assert [r.get("height") for r in video.findall("d:Representation", DASH_NS)] == ["360"]
    accessibility = [(a.get("schemeIdUri"), a.get("value")) for a in video.findall("d:Accessibility", DASH_NS)]
    assert accessibility == [(CEA608, "CC1=und")], accessibility
    for audio in only.findall(".//d:AdaptationSet[@contentType='audio']", DASH_NS):
        assert audio.findall("d:Accessibility", DASH_NS) == []


def test_cmaf_segments_keep_the_captions(ladder, tmp_path):
    _, urls = ladder
    master = m3u8.loads(fetch(urls["cmaf"])[1].decode(), uri=urls["cmaf"])
    variant = next(p for p in master.playlists if p.stream_info.resolution == (640, 360))
    media_url = urllib.parse.urljoin(urls["cmaf"], variant.uri)
    media = m3u8.loads(fetch(media_url)[1].decode())
    init = fetch(urllib.parse.urljoin(media_url, media.segment_map[0].uri))[1]
    fragments = b"".join(fetch(urllib.parse.urljoin(media_url, s.uri))[1] for s in media.segments[-2:])
    clip = tmp_path / "cmaf.mp4"
    clip.write_bytes(init + fragments)
    assert "Closed Captions" in video_line(clip)
    assert "HELLO" in caption_text(clip)


@pytest.mark.parametrize("package", ["hls", "cmaf"])
def test_hlsjs_shows_the_caption(ladder, package):
    _, urls = ladder
    played = play("hlsjs", urls[package], WAIT_CAPTION="HELLO")
    tracks = played["captions"]["tracks"]
    assert tracks and all(t["kind"] == "captions" for t in tracks), played
    assert any("HELLO" in cue for t in tracks for cue in t["cues"]), played


@pytest.mark.parametrize("player", ["shaka", "dashjs"])
def test_dash_players_list_the_cc1_track(ladder, player):
    _, urls = ladder
    played = play(player, urls["dash-360p"])
    tracks = played["captions"].get("player") or played["captions"]["tracks"]
    assert any(t["id"] == "CC1" for t in tracks), played
