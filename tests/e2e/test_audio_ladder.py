"""A ladder with its audio in a rendition group, as MediaLive's audio-only outputs and
ffmpeg's `agroup` give it: two video renditions and two audio-only renditions, English
and French. The HLS TS multivariant lists the audio as `EXT-X-MEDIA` renditions with their
languages (no audio-only variant), the video variants name the group, with the audio in
CODECS and BANDWIDTH; CMAF HLS does the same and DASH has one AdaptationSet per language.
hls.js (HLS TS, CMAF), Shaka (CMAF, DASH) and dash.js (DASH) offer both languages and
switch to French while playing."""

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import m3u8
import pytest

from conftest import ROOT, Server, encoder_folder

DASH_NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    server = Server()
    mp = server.mediapackage()
    ingest = mp.create_channel(Id="lang")["HlsIngest"]["IngestEndpoints"][0]
    urls = {
        "hls": mp.create_origin_endpoint(ChannelId="lang", Id="lang-hls", HlsPackage={
            "SegmentDurationSeconds": 2})["Url"],
        "cmaf": mp.create_origin_endpoint(ChannelId="lang", Id="lang-cmaf", CmafPackage={
            "SegmentDurationSeconds": 2, "HlsManifests": [{"Id": "hls"}]})["Url"],
        "dash": mp.create_origin_endpoint(ChannelId="lang", Id="lang-dash", DashPackage={
            "SegmentDurationSeconds": 2})["Url"],
    }
    folder = encoder_folder(ingest)
    log = tmp_path_factory.mktemp("encoder") / "ffmpeg.log"
    encoder = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "verbose", "-nostdin", "-re",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000", "-t", "150",
         "-filter_complex", "[0:v]split=2[a][b];[b]scale=320:180[b2]",
         "-map", "[a]", "-map", "[b2]", "-map", "1:a", "-map", "2:a",
         "-c:v", "libx264", "-preset", "veryfast", "-threads", "1", "-g", "50", "-keyint_min", "50",
         "-sc_threshold", "0", "-b:v:0", "500k", "-b:v:1", "150k", "-c:a", "aac", "-b:a", "64k",
         "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra",
         "-f", "hls", "-hls_time", "2", "-hls_list_size", "6", "-method", "PUT",
         "-master_pl_name", "master.m3u8",
         "-var_stream_map", "v:0,agroup:aud,name:360p v:1,agroup:aud,name:180p "
                            "a:0,agroup:aud,language:en,name:audio_en,default:yes "
                            "a:1,agroup:aud,language:fr,name:audio_fr",
         "-hls_segment_filename", folder + "%v/seg_%05d.ts", folder + "%v/index.m3u8"],
        stdout=subprocess.DEVNULL, stderr=open(log, "w"),
    )
    try:
        # Every rendition has a few segments (the DASH MPD lists all four tracks).
        deadline = time.time() + 40
        while time.time() < deadline:
            status, body = fetch(urls["dash"])
            if status == 200 and body.count("<Representation ") == 4 and body.count("<S ") >= 4:
                break
            time.sleep(1)
        else:
            raise RuntimeError(f"the ladder did not arrive within 40 s: {log.read_text()[-2000:]}")
        yield server, urls
    finally:
        encoder.terminate()
        encoder.wait(10)
        server.stop()


def test_hls_ts_lists_audio_renditions_in_a_group_with_their_languages(ladder):
    _, urls = ladder
    status, body = fetch(urls["hls"])
    assert status == 200, body
    master = m3u8.loads(body)
    audio = [m for m in master.media if m.type == "AUDIO"]
    assert sorted(m.language for m in audio) == ["en", "fr"], body
    assert [m.default for m in audio if m.language == "en"] == ["YES"], body
    assert len({m.group_id for m in audio}) == 1 and all(m.autoselect == "YES" for m in audio)
    assert len(master.playlists) == 2, body
    for variant in master.playlists:
        info = variant.stream_info
        assert info.resolution in ((640, 360), (320, 180)), body
        assert info.audio == audio[0].group_id
        assert "avc1." in info.codecs and "mp4a.40.2" in info.codecs, body
    # BANDWIDTH counts the audio the variant plays with.
    for m in audio:
        status, media = fetch(urllib.parse.urljoin(urls["hls"], m.uri))
        assert status == 200 and "#EXTINF" in media
    low = min(master.playlists, key=lambda p: p.stream_info.bandwidth)
    assert low.stream_info.bandwidth > 150_000 + 64_000


def test_cmaf_and_dash_offer_both_languages(ladder):
    _, urls = ladder
    master = m3u8.loads(fetch(urls["cmaf"])[1])
    assert sorted(m.language for m in master.media if m.type == "AUDIO") == ["en", "fr"]
    assert len(master.playlists) == 2 and all(p.stream_info.audio for p in master.playlists)
    mpd = ET.fromstring(fetch(urls["dash"])[1])
    sets = mpd.findall(".//d:AdaptationSet[@contentType='audio']", DASH_NS)
    assert sorted(s.get("lang") for s in sets) == ["en", "fr"]
    roles = {s.get("lang"): s.find("d:Role", DASH_NS).get("value") for s in sets}
    assert roles == {"en": "main", "fr": "alternate"}, roles


@pytest.mark.parametrize("player,package", [
    ("hlsjs", "hls"), ("hlsjs", "cmaf"), ("shaka", "cmaf"), ("shaka", "dash"), ("dashjs", "dash"),
])
def test_players_offer_both_languages_and_switch_to_french(ladder, player, package):
    _, urls = ladder
    result = subprocess.run(
        ["node", str(ROOT / "tests" / "player" / "play.mjs"), player, urls[package], "4", "60"],
        capture_output=True, text=True, timeout=100, env={**__import__("os").environ, "SWITCH_AUDIO": "fr"},
    )
    played = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert result.returncode == 0, (result.stdout, result.stderr[-1000:])
    assert sorted(set(played["info"]["audio"])) == ["en", "fr"], played
    assert played["switchedAudio"] and played["info"]["activeAudio"] == "fr", played
