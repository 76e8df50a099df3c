"""CMAF HLS key rotation (`cmafPackage.encryption.keyRotationIntervalSeconds`): every key
period has its own key and KID, so its own init segment (`tenc` holds the default KID).
Sluice names the key period in the segment and init segment names (`….k{period}.mp4`),
writes a new `EXT-X-MAP` and new `EXT-X-KEY` tags where the period changes and no
`EXT-X-SESSION-KEY` (there is no one key for the stream). Each segment decrypts with its
period's key (FFmpeg 9) to the clear endpoint's frames, hls.js plays across key changes
through Chromium's ClearKey CDM, and names that do not match the playlist are 404."""

import base64
import re
import time
import urllib.parse

import m3u8
import pytest

from conftest import Server, get, play
from test_encryption_cmaf import (CMAF, COMMON, boxes, content_key, framemd5, ok, protection, speke)

ROTATION = 4  # seconds: two 2 s segments per key period


@pytest.fixture(scope="module")
def origin():
    srv = Server(demo=True)
    try:
        mp = srv.mediapackage()
        mp.create_origin_endpoint(ChannelId="demo", Id="clear", ManifestName="index", CmafPackage=CMAF)
        for name, method in (("rot-cbcs", "SAMPLE_AES"), ("rot-cenc", "AES_CTR")):
            encryption = {"EncryptionMethod": method, "KeyRotationIntervalSeconds": ROTATION,
                          "SpekeKeyProvider": speke(srv.base, name, [COMMON])}
            created = mp.create_origin_endpoint(ChannelId="demo", Id=name, ManifestName="index",
                                                CmafPackage={**CMAF, "Encryption": encryption})
            assert created["CmafPackage"]["Encryption"]["KeyRotationIntervalSeconds"] == ROTATION
        srv.license = f"{srv.base}/clearkey/license"
        yield srv
    finally:
        srv.stop()


def video_playlist(origin, endpoint, least=6, within=60):
    url = f"{origin.base}/out/v1/{endpoint}/hls/index_video_360p-seg.m3u8"
    deadline = time.time() + within
    body = b""
    while time.time() < deadline:
        status, body = get(url)
        if status == 200 and body.count(b"#EXTINF") >= least:
            return body.decode(), url
        time.sleep(0.5)
    raise AssertionError(f"{endpoint}: fewer than {least} segments within {within} s: {body[:300]!r}")


def clearkey_kid(line):
    uri = re.search(r'URI="data:text/plain;base64,([^"]+)"', line).group(1)
    return base64.b64decode(uri).hex()


def periods(text):
    """Per segment of a media playlist: (segment URI, init URI, KID of its ClearKey key tag)."""
    out, init, kid = [], None, None
    for line in text.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            init = re.search(r'URI="([^"]+)"', line).group(1)
        elif line.startswith("#EXT-X-KEY:") and 'KEYFORMAT="org.w3.clearkey"' in line:
            kid = clearkey_kid(line)
        elif line and not line.startswith("#"):
            out.append((line, init, kid))
    return out


@pytest.mark.parametrize("endpoint", ["rot-cbcs", "rot-cenc"])
def test_each_key_period_has_its_own_kid_init_segment_and_key_tags(origin, tmp_path, endpoint):
    text, url = video_playlist(origin, endpoint)
    segments = periods(text)
    for uri, init, kid in segments:
        (period,) = re.findall(r"\.k(\d+)\.mp4$", uri)
        assert init.endswith(f"_init.k{period}.mp4"), (uri, init)
        assert kid, uri
    # Key periods of 4 s with 2 s segments: a new period at least every second segment.
    kids = [kid for _, _, kid in segments]
    assert len(set(kids)) >= len(segments) // 2, kids
    # Tags only where the period changes, each change with its map and its keys.
    lines = text.splitlines()
    maps = [line for line in lines if line.startswith("#EXT-X-MAP:")]
    assert len(maps) == len({init for _, init, _ in segments}), maps
    playlist = m3u8.loads(text)
    assert all(s.key is not None and s.init_section is not None for s in playlist.segments)
    master = ok(f"{origin.base}/out/v1/{endpoint}/hls/index.m3u8").decode()
    assert "#EXT-X-SESSION-KEY" not in master and "#EXT-X-KEY" not in master, master
    # Every period's init segment holds its KID; the segment decrypts with it.
    for uri, init, kid in segments[-3:-1]:
        init_bytes, segment_bytes = ok(urllib.parse.urljoin(url, init)), ok(urllib.parse.urljoin(url, uri))
        init_path, segment_path = tmp_path / "init.mp4", tmp_path / "segment.mp4"
        init_path.write_bytes(init_bytes)
        segment_path.write_bytes(segment_bytes)
        (report, _) = boxes(init_path, segment_path)
        assert protection(report)["tenc"]["kid"] == kid
        clear_uri = re.sub(r"\.k\d+(?=\.mp4$)", "", uri)
        clear_init = ok(urllib.parse.urljoin(url, "../seg_video_360p-seg_init.mp4").replace(f"/{endpoint}/", "/clear/"))
        clear_segment = ok(urllib.parse.urljoin(url, clear_uri).replace(f"/{endpoint}/", "/clear/"))
        encrypted, clear = tmp_path / "encrypted.mp4", tmp_path / "clear.mp4"
        encrypted.write_bytes(init_bytes + segment_bytes)
        clear.write_bytes(clear_init + clear_segment)
        expected = framemd5(clear, "v")
        assert len(expected) >= 40
        assert framemd5(encrypted, "v", content_key(origin, kid)) == expected, uri


def test_names_that_are_not_the_playlists_are_404(origin):
    text, url = video_playlist(origin, "rot-cbcs")
    uri, init, _ = periods(text)[-2]
    period = int(re.search(r"\.k(\d+)\.mp4$", uri).group(1))
    assert get(urllib.parse.urljoin(url, uri))[0] == 200
    later = re.sub(r"\.k\d+\.mp4$", f".k{period + 1000}.mp4", uri)
    unnamed = re.sub(r"\.k\d+\.mp4$", ".mp4", uri)
    for wrong in (later, unnamed, re.sub(r"\.k\d+\.mp4$", ".mp4", init)):
        status, body = get(urllib.parse.urljoin(url, wrong))
        assert status == 404, (wrong, status, body[:200])
        assert body[4:8] not in (b"ftyp", b"styp", b"moof"), wrong
    # The clear endpoint has no key periods in its names.
    status, _ = get(urllib.parse.urljoin(url, uri).replace("/rot-cbcs/", "/clear/"))
    assert status == 404


@pytest.mark.parametrize("endpoint", ["rot-cbcs", "rot-cenc"])
def test_hlsjs_plays_across_key_changes(origin, endpoint):
    played = play("hlsjs", f"{origin.base}/out/v1/{endpoint}/hls/index.m3u8", 12, CLEARKEY_LICENSE=origin.license)
    eme = played["eme"]
    assert eme["mediaKeys"] and eme["licenseRequests"], played
    usable = [kid for kid, status in eme["keyStatuses"].items() if status == "usable"]
    assert len(usable) >= 3, ("at least three keys used in 12 s of 4 s key periods", played)
    assert played["maxStallSeconds"] < 4, played
