"""A real encoder ladder (issue 14's first "done when"): ffmpeg pushes two video renditions
whose H.264 carries CEA-608 captions (CC1, put in by captioned.py), two audio-only
renditions (English, French) in an audio group and a WebVTT subtitle rendition (English,
cut by ffmpeg's HLS muxer from an SRT file with a numbered line every 2 s).

Checked: the HLS TS and CMAF multivariants list the audio and subtitle renditions as
`EXT-X-MEDIA` groups (no audio-only `EXT-X-STREAM-INF`) and the captions as a
`CLOSED-CAPTIONS` group, DASH has one AdaptationSet per language and the CEA-608
`Accessibility` descriptor, all of it in their first answers; every subtitle segment of HLS TS (2 s, as the inputs, and 4 s,
two inputs joined) and CMAF holds exactly the source lines that show in it, with
`X-TIMESTAMP-MAP` putting each on the same MPEG-TS time as its neighbours (no segment
shifted); hls.js (HLS TS, CMAF) lists 2 audio and 1 subtitle track, shows a subtitle line and
switches to French; Shaka (CMAF, DASH) and dash.js (DASH) offer en and fr and switch."""

import os
import re
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
SECONDS = 150
# Source subtitle line n shows from 2n + 0.5 s to 2n + 1.7 s.
LINES = [(n, 2 * n + 0.5, 2 * n + 1.7) for n in range(SECONDS // 2)]


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args], check=True, timeout=240)


def srt_time(t):
    ms = round(t * 1000)
    return f"{ms // 3_600_000:02}:{ms // 60_000 % 60:02}:{ms // 1000 % 60:02},{ms % 1000:03}"


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    clips = {}
    for name, size, rate in (("360p", "640x360", "500k"), ("180p", "320x180", "150k")):
        raw = folder / f"{name}.h264"
        # No B-frames: the raw H.264 is re-timed at 25 fps in decoding order.
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25", "-t", str(SECONDS), "-c:v", "libx264",
               "-preset", "veryfast", "-threads", "1", "-bf", "0", "-g", "50", "-keyint_min", "50",
               "-sc_threshold", "0", "-b:v", rate, "-f", "h264", str(raw))
        clips[name] = folder / f"{name}-cc.h264"
        clips[name].write_bytes(captioned.insert_captions(raw.read_bytes(), "HELLO"))
    srt = folder / "lines.srt"
    srt.write_text("\n".join(f"{n + 1}\n{srt_time(a)} --> {srt_time(b)}\nLine {n}\n" for n, a, b in LINES))

    server = Server()
    mp = server.mediapackage()
    ingest = mp.create_channel(Id="ladder")["HlsIngest"]["IngestEndpoints"][0]
    urls = {
        "hls": mp.create_origin_endpoint(ChannelId="ladder", Id="ladder-hls", HlsPackage={
            "SegmentDurationSeconds": 2})["Url"],
        "hls4": mp.create_origin_endpoint(ChannelId="ladder", Id="ladder-hls4", HlsPackage={
            "SegmentDurationSeconds": 4})["Url"],
        "cmaf": mp.create_origin_endpoint(ChannelId="ladder", Id="ladder-cmaf", CmafPackage={
            "SegmentDurationSeconds": 2, "HlsManifests": [{"Id": "hls"}]})["Url"],
        "dash": mp.create_origin_endpoint(ChannelId="ladder", Id="ladder-dash", DashPackage={
            "SegmentDurationSeconds": 2})["Url"],
    }
    log = tmp_path_factory.mktemp("encoder") / "ffmpeg.log"
    folder_url = encoder_folder(ingest)
    encoder = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
         "-re", "-framerate", "25", "-i", str(clips["360p"]), "-re", "-framerate", "25", "-i", str(clips["180p"]),
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000", "-i", str(srt), "-t", str(SECONDS),
         "-map", "0:v", "-map", "1:v", "-map", "2:a", "-map", "3:a", "-map", "4:s",
         "-c:v", "copy", "-c:a", "aac", "-b:a", "64k", "-c:s", "webvtt",
         "-f", "hls", "-hls_time", "2", "-hls_list_size", "6", "-method", "PUT", "-master_pl_name", "master.m3u8",
         "-var_stream_map", "v:0,s:0,agroup:aud,sgroup:subs,language:en,name:360p v:1,agroup:aud,name:180p "
                            "a:0,agroup:aud,language:en,name:audio_en,default:yes "
                            "a:1,agroup:aud,language:fr,name:audio_fr",
         "-hls_segment_filename", folder_url + "%v/seg_%05d.ts", folder_url + "%v/index.m3u8"],
        stdout=subprocess.DEVNULL, stderr=open(log, "w"),
    )
    try:
        # The first 200 of each multivariant and the MPD, polled from before the first segment.
        first = {}
        deadline = time.time() + 30
        while len(first) < 3 and time.time() < deadline:
            for package in ("hls", "cmaf", "dash"):
                if package not in first:
                    status, body = fetch(urls[package])
                    if status == 200:
                        first[package] = body
            time.sleep(0.1)
        deadline = time.time() + 60
        while time.time() < deadline:
            status, body = fetch(urls["hls"])
            if status == 200 and "TYPE=SUBTITLES" in body:
                sub = next(m for m in m3u8.loads(body).media if m.type == "SUBTITLES")
                if fetch(urllib.parse.urljoin(urls["hls"], sub.uri))[1].count("#EXTINF") >= 4:
                    break
            time.sleep(1)
        else:
            raise RuntimeError(f"the ladder did not arrive within 60 s: {log.read_text()[-2000:]}")
        yield server, urls, first
    finally:
        encoder.terminate()
        encoder.wait(10)
        server.stop()


@pytest.mark.parametrize("package", ["hls", "cmaf"])
def test_multivariant_has_audio_subtitle_and_caption_groups(ladder, package):
    _, urls, _ = ladder
    status, body = fetch(urls[package])
    assert status == 200, body
    master = m3u8.loads(body)
    audio = [m for m in master.media if m.type == "AUDIO"]
    subtitles = [m for m in master.media if m.type == "SUBTITLES"]
    captions = [m for m in master.media if m.type == "CLOSED-CAPTIONS"]
    assert sorted(m.language for m in audio) == ["en", "fr"], body
    assert [(m.language, m.autoselect) for m in subtitles] == [("en", "YES")], body
    assert [m.instream_id for m in captions] == ["CC1"], body
    # Only video variants, each naming all three groups.
    assert sorted(p.stream_info.resolution for p in master.playlists) == [(320, 180), (640, 360)], body
    for p in master.playlists:
        info = p.stream_info
        assert (info.audio, info.subtitles, info.closed_captions) == (
            audio[0].group_id, subtitles[0].group_id, f'"{captions[0].group_id}"'), body
        assert "avc1." in info.codecs and "mp4a.40.2" in info.codecs, body


def test_dash_has_a_set_per_language_and_the_captions(ladder):
    _, urls, _ = ladder
    mpd = ET.fromstring(fetch(urls["dash"])[1])
    sets = mpd.findall(".//d:AdaptationSet[@contentType='audio']", DASH_NS)
    assert sorted(s.get("lang") for s in sets) == ["en", "fr"]
    video = mpd.find(".//d:AdaptationSet[@contentType='video']", DASH_NS)
    assert [(a.get("schemeIdUri"), a.get("value")) for a in video.findall("d:Accessibility", DASH_NS)] == [
        (CEA608, "CC1=und")]


def test_the_first_answer_lists_the_whole_ladder(ladder):
    """Players load the multivariant (and dash.js an MPD's sets) once, so the first 200 has
    every rendition, though ffmpeg's renditions and its multivariant arrive one by one."""
    _, _, first = ladder
    assert sorted(first) == ["cmaf", "dash", "hls"], "no 200 within 30 s"
    for package in ("hls", "cmaf"):
        master = m3u8.loads(first[package])
        assert sorted(m.type for m in master.media) == ["AUDIO", "AUDIO", "CLOSED-CAPTIONS", "SUBTITLES"], (
            first[package])
        assert len(master.playlists) == 2, first[package]
    mpd = ET.fromstring(first["dash"])
    sets = sorted(s.get("contentType") for s in mpd.findall(".//d:AdaptationSet", DASH_NS))
    assert sets == ["audio", "audio", "text", "video"], first["dash"]
    assert len(mpd.findall(".//d:AdaptationSet[@contentType='video']/d:Representation", DASH_NS)) == 2

def cue_pts(vtt):
    """(MPEG-TS start, end, text) of each cue of a WebVTT segment, per its X-TIMESTAMP-MAP."""
    header, *blocks = vtt.replace("\r\n", "\n").split("\n\n")
    assert header.startswith("WEBVTT"), vtt
    mapping = re.search(r"X-TIMESTAMP-MAP=MPEGTS:(\d+),LOCAL:(\d\d):(\d\d):(\d\d)\.(\d{3})", header)
    assert mapping, vtt
    mpegts = int(mapping.group(1))
    local = ((int(mapping.group(2)) * 60 + int(mapping.group(3))) * 60 + int(mapping.group(4))) * 1000 + int(
        mapping.group(5))

    def pts(t):
        h, m, s = t.split(":")
        return mpegts + ((int(h) * 60 + int(m)) * 60_000 + round(float(s) * 1000) - local) * 90

    out = []
    for block in filter(str.strip, blocks):
        timing, *text = block.strip().split("\n")
        start, end = timing.split(" --> ")
        out.append((pts(start), pts(end.split()[0]), "\n".join(text)))
    return out


@pytest.mark.parametrize("package", ["hls", "hls4", "cmaf"])
def test_each_subtitle_segment_holds_the_lines_showing_in_it_on_one_clock(ladder, package):
    _, urls, _ = ladder
    master = m3u8.loads(fetch(urls[package])[1], uri=urls[package])
    sub = next(m for m in master.media if m.type == "SUBTITLES")
    sub_url = urllib.parse.urljoin(urls[package], sub.uri)
    video_url = urllib.parse.urljoin(urls[package], master.playlists[0].uri)
    deadline = time.time() + 30
    while True:
        # The video playlist first: the subtitle one, read after it, is at most newer.
        video = m3u8.loads(fetch(video_url)[1])
        playlist = m3u8.loads(fetch(sub_url)[1])
        if len(playlist.segments) >= 3 or time.time() > deadline:
            break
        time.sleep(1)
    assert len(playlist.segments) >= 3, playlist.dumps()
    # The subtitle playlist follows the video one: same sequence numbers and durations.
    by_sequence = {video.media_sequence + i: s.duration for i, s in enumerate(video.segments)}
    offsets, seen = set(), set()
    for i, segment in enumerate(playlist.segments):
        assert by_sequence.get(playlist.media_sequence + i) == segment.duration, (playlist.dumps(), video.dumps())
        status, body = fetch(urllib.parse.urljoin(sub_url, segment.uri))
        assert status == 200, body
        for start, end, text in cue_pts(body):
            n = int(text.removeprefix("Line "))
            _, a, b = LINES[n]
            # The source line's times, moved by one offset for the whole stream.
            offsets.add(start - round(a * 90_000))
            assert end - start == round((b - a) * 90_000), body
            seen.add(n)
    assert len(offsets) == 1, offsets
    # ffmpeg writes no X-TIMESTAMP-MAP, so its cue time 0 is MPEG-TS time 0 (RFC 8216
    # §3.5): the offset is only what ffmpeg itself moves the SRT lines by (a few frames),
    # whichever segment and endpoint a line is read from.
    assert 0 <= offsets.pop() <= 90_000 // 5, offsets
    # Every line of the playlist's time span is in it: consecutive numbers, none missing.
    assert len(seen) >= 3 and seen == set(range(min(seen), max(seen) + 1)), sorted(seen)


@pytest.mark.parametrize("package", ["hls", "cmaf"])
def test_hlsjs_lists_two_audio_and_one_subtitle_track_shows_a_line_and_switches(ladder, package):
    _, urls, _ = ladder
    played = play("hlsjs", urls[package], SWITCH_AUDIO="fr", WAIT_SUBTITLE="Line")
    assert sorted(played["info"]["audio"]) == ["en", "fr"], played
    assert played["info"]["subtitles"] == ["en"], played
    assert played["switchedAudio"] and played["info"]["activeAudio"] == "fr", played
    same_clock(played["subtitleCues"])


def test_dash_has_a_wvtt_text_set_following_the_video(ladder):
    _, urls, _ = ladder
    mpd = ET.fromstring(fetch(urls["dash"])[1])
    (text,) = mpd.findall(".//d:AdaptationSet[@contentType='text']", DASH_NS)
    assert (text.get("mimeType"), text.get("lang")) == ("application/mp4", "en")
    assert text.find("d:Role", DASH_NS).get("value") == "subtitle"
    (rep,) = text.findall("d:Representation", DASH_NS)
    assert rep.get("codecs") == "wvtt"
    # Its segments are the video's, one behind.
    video = mpd.find(".//d:AdaptationSet[@contentType='video']/d:Representation", DASH_NS)
    timeline = lambda r: [(s.get("t"), s.get("d")) for s in r.findall(".//d:S", DASH_NS)]  # noqa: E731
    text_s, video_s = timeline(rep), timeline(video)
    assert text_s and text_s[0][0] == video_s[0][0], (text_s, video_s)


def same_clock(cues):
    """The players' subtitle cues are the source lines, each moved by one offset. In DASH a
    line across a segment boundary is a sample in each segment, which Shaka and dash.js
    show as two cues meeting at the boundary: they are joined first; the first and last
    line may be cut by where the player's buffer starts and ends, and are left out."""
    lines = sorted((c for c in cues if re.fullmatch(r"Line \d+", c["text"])), key=lambda c: c["start"])
    joined = []
    for c in lines:
        if joined and joined[-1]["text"] == c["text"] and abs(joined[-1]["end"] - c["start"]) < 0.01:
            joined[-1] = {**joined[-1], "end": c["end"]}
        elif not joined or joined[-1] != c:
            joined.append(dict(c))
    inner = joined[1:-1]
    assert len(inner) >= 2, cues
    offsets = [c["start"] - LINES[int(c["text"][5:])][1] for c in inner]
    assert max(offsets) - min(offsets) < 0.01, inner
    for c in inner:
        _, a, b = LINES[int(c["text"][5:])]
        assert abs((c["end"] - c["start"]) - (b - a)) < 0.01, c


@pytest.mark.parametrize("player", ["shaka", "dashjs"])
def test_dash_players_show_a_subtitle_line(ladder, player):
    _, urls, _ = ladder
    # 10 s: the lines of a few segments, as a player near the live edge holds few ahead.
    played = play(player, urls["dash"], min_seconds=10, WAIT_SUBTITLE="Line")
    same_clock(played["subtitleCues"])


@pytest.mark.parametrize("player,package", [("shaka", "cmaf"), ("shaka", "dash"), ("dashjs", "dash")])
def test_shaka_and_dashjs_offer_both_languages_and_switch(ladder, player, package):
    _, urls, _ = ladder
    played = play(player, urls[package], SWITCH_AUDIO="fr")
    assert sorted(set(played["info"]["audio"])) == ["en", "fr"], played
    assert played["switchedAudio"] and played["info"]["activeAudio"] == "fr", played
