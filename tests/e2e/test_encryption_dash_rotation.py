"""DASH key rotation (`dashPackage.encryption.keyRotationIntervalSeconds`): one Period per
key, each with its own `ContentProtection` (`cenc:default_KID`) and its own init segments
(`….k{period}.mp4`, whose `tenc` holds that KID). A Period starts where its first segment
does (ISO/IEC 23009-1 §5.3.2) and its `presentationTimeOffset` is that start, so segment
times and numbers are those of the single-Period MPD; a Period keeps its id and start in
every later MPD. Each segment decrypts with its Period's key (FFmpeg 9) to the clear
endpoint's frames, and dash.js and Shaka Player play across key changes through
Chromium's ClearKey CDM with the reference license server."""

import re
import time
import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from conftest import Server, get, play
from test_encryption_cmaf import (COMMON, DASH, DASHIF_CLEARKEY, NS, boxes, content_key, framemd5, hexid, ok,
                                  protection, speke, template, timeline)

ROTATION = 4  # seconds: two 2 s segments per key period
FORMATS = {"rot-time": "TIME_WITH_TIMELINE", "rot-number": "NUMBER_WITH_TIMELINE"}


@pytest.fixture(scope="module")
def origin():
    srv = Server(demo=True)
    try:
        mp = srv.mediapackage()
        mp.create_origin_endpoint(ChannelId="demo", Id="dash-clear", ManifestName="live", DashPackage=DASH)
        for name, format in FORMATS.items():
            encryption = {"KeyRotationIntervalSeconds": ROTATION,
                          "SpekeKeyProvider": speke(srv.base, name, [DASHIF_CLEARKEY, COMMON])}
            created = mp.create_origin_endpoint(
                ChannelId="demo", Id=name, ManifestName="live",
                DashPackage={**DASH, "SegmentTemplateFormat": format, "Encryption": encryption})
            assert created["DashPackage"]["Encryption"]["KeyRotationIntervalSeconds"] == ROTATION
        srv.mp = mp
        srv.license = f"{srv.base}/clearkey/license"
        yield srv
    finally:
        srv.stop()


def periods(origin, endpoint, least=3, within=60):
    """`endpoint`'s MPD (parsed) and URL once it has `least` Periods."""
    url = f"{origin.base}/out/v1/{endpoint}/live.mpd"
    deadline = time.time() + within
    body = b""
    while time.time() < deadline:
        status, body = get(url)
        if status == 200 and len(ET.fromstring(body).findall("d:Period", NS)) >= least:
            return ET.fromstring(body), url
        time.sleep(0.5)
    raise AssertionError(f"{endpoint}: fewer than {least} Periods within {within} s: {body[:500]!r}")


def seconds(duration):
    return float(re.fullmatch(r"PT([\d.]+)S", duration).group(1))


def default_kid(adaptation):
    (mp4,) = [c for c in adaptation.findall("d:ContentProtection", NS)
              if c.get("schemeIdUri") == "urn:mpeg:dash:mp4protection:2011"]
    assert mp4.get("value") == "cenc"
    return mp4.get("{urn:mpeg:cenc:2013}default_KID")


def tracks(period):
    """Per audio and video Representation of a Period: (set, Representation, template,
    segment start times)."""
    for a in period.findall("d:AdaptationSet", NS):
        if a.get("contentType") in ("video", "audio"):
            for r in a.findall("d:Representation", NS):
                t = template(a, r)
                yield a, r, t, timeline(t)


def test_one_period_per_key_each_starting_at_its_first_segment(origin):
    for endpoint in FORMATS:
        root, _ = periods(origin, endpoint)
        assert root.get("type") == "dynamic"
        found = root.findall("d:Period", NS)
        kids = []
        for i, period in enumerate(found):
            starts = set()
            period_kids = {default_kid(a) for a, *_ in tracks(period)}
            assert len(period_kids) == 1, ("one key for every track of a Period", period_kids)
            kids.append(period_kids.pop())
            for a, r, t, times in tracks(period):
                assert times, (endpoint, i, r.get("id"))
                (key_period,) = re.findall(r"\.k(\d+)\.mp4$", t.get("initialization"))
                assert t.get("media").endswith(f".k{key_period}.mp4"), t.attrib
                # Presentation time = Period@start + (t - presentationTimeOffset) / timescale.
                assert int(t.get("presentationTimeOffset")) == int(period.get("id"))
                starts.add(times[0])
                if endpoint == "rot-number" and i + 1 < len(found):
                    # Numbers run on across Periods: the next Period's first segment
                    # (the same Representation) has the number after this one's last.
                    following = next(t2 for _, r2, t2, _ in tracks(found[i + 1]) if r2.get("id") == r.get("id"))
                    assert int(following.get("startNumber")) == int(t.get("startNumber")) + len(times)
            # Every track's first segment starts where the Period does.
            assert starts == {int(period.get("id"))}, (endpoint, i, starts)
            assert abs(seconds(period.get("start")) - int(period.get("id")) / 90000) < 1e-6
            if i + 1 < len(found):
                # No gap and no overlap: a Period ends where the next one starts.
                for a, r, t, times in tracks(period):
                    (last,) = [s for s in t.findall("d:SegmentTimeline/d:S", NS)][-1:]
                    end = times[-1] + int(last.get("d"))
                    assert end == int(found[i + 1].get("id")), (endpoint, i, r.get("id"))
        assert len(set(kids)) == len(kids), ("a new KID in every Period", kids)


def test_periods_keep_their_id_and_start_in_later_mpds(origin):
    first, _ = periods(origin, "rot-time")
    time.sleep(ROTATION + 1)
    later, _ = periods(origin, "rot-time")
    before = {p.get("id"): p.get("start") for p in first.findall("d:Period", NS)}
    after = {p.get("id"): p.get("start") for p in later.findall("d:Period", NS)}
    common = before.keys() & after.keys()
    assert common and max(map(int, after)) > max(map(int, before)), (before, after)
    assert {k: before[k] for k in common} == {k: after[k] for k in common}
    for p in later.findall("d:Period", NS):
        if p.get("id") in common:
            kid = {default_kid(a) for a, *_ in tracks(p)}
            old = next(q for q in first.findall("d:Period", NS) if q.get("id") == p.get("id"))
            assert kid == {default_kid(a) for a, *_ in tracks(old)}


def test_each_periods_init_segment_holds_its_kid_and_segments_decrypt_with_it(origin, tmp_path):
    root, url = periods(origin, "rot-time")
    for period in root.findall("d:Period", NS)[-3:-1]:
        a, r, t, times = next((a, r, t, times) for a, r, t, times in tracks(period) if a.get("contentType") == "video")
        kid = default_kid(a)
        rid = r.get("id")
        init_url = urllib.parse.urljoin(url, t.get("initialization").replace("$RepresentationID$", rid))
        media = t.get("media").replace("$RepresentationID$", rid).replace("$Time$", str(times[-1]))
        segment_url = urllib.parse.urljoin(url, media)
        init, segment = ok(init_url), ok(segment_url)
        init_path, segment_path = tmp_path / "init.mp4", tmp_path / "segment.mp4"
        init_path.write_bytes(init)
        segment_path.write_bytes(segment)
        (report, _) = boxes(init_path, segment_path)
        assert protection(report)["tenc"]["kid"] == hexid(kid)
        clear = lambda u: re.sub(r"\.k\d+(?=\.mp4$)", "", u.replace("/rot-time/", "/dash-clear/"))
        encrypted, clear_file = tmp_path / "encrypted.mp4", tmp_path / "clear.mp4"
        encrypted.write_bytes(init + segment)
        clear_file.write_bytes(ok(clear(init_url)) + ok(clear(segment_url)))
        expected = framemd5(clear_file, "v")
        assert len(expected) >= 40
        assert framemd5(encrypted, "v", content_key(origin, hexid(kid))) == expected, segment_url
        # Another period's key name for the same segment is not served.
        later = re.sub(r"\.k(\d+)\.mp4$", lambda m: f".k{int(m.group(1)) + 1000}.mp4", segment_url)
        assert get(later)[0] == 404


@pytest.mark.parametrize("player", ["dashjs", "shaka"])
def test_dash_players_play_across_key_changes(origin, player):
    played = play(player, f"{origin.base}/out/v1/rot-number/live.mpd", 12, CLEARKEY_LICENSE=origin.license)
    eme = played["eme"]
    assert eme["mediaKeys"] and eme["licenseRequests"], played
    usable = [kid for kid, status in eme["keyStatuses"].items() if status == "usable"]
    assert len(usable) >= 3, ("at least three keys used in 12 s of 4 s key periods", played)
    # Not asserted: how long the start takes. Joining this young channel, dash.js 5.2.1
    # seeks to the exact start of the first Period and waits there until its gap
    # controller moves it on (10-25 s); with a single Period it seeks 1 ms in and plays at
    # once. Shaka Player also waited up to 9 s once. Open in issue 15's note.


def test_rotation_with_number_with_duration_is_refused(origin):
    import botocore.exceptions
    encryption = {"KeyRotationIntervalSeconds": ROTATION,
                  "SpekeKeyProvider": speke(origin.base, "refused", [DASHIF_CLEARKEY])}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        origin.mp.create_origin_endpoint(
            ChannelId="demo", Id="refused", ManifestName="live",
            DashPackage={**DASH, "SegmentTemplateFormat": "NUMBER_WITH_DURATION", "Encryption": encryption})
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 422
    message = e.value.response["Error"]["Message"]
    assert "keyRotationIntervalSeconds" in message and "NUMBER_WITH_DURATION" in message, message
