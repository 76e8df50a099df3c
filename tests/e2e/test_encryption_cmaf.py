"""CMAF HLS and DASH with Common Encryption (`cmafPackage.encryption`: SAMPLE_AES → cbcs,
AES_CTR → cenc; `dashPackage.encryption`: cenc), one key for the whole stream from
sluice-local's reference key server over SPEKE v1, on the demo channel.

The settings are echoed as botocore models them and refused with 422 where Sluice cannot
honour them yet. mp4box.js (an independent parser) finds in each init segment the
protected sample entry (encv/enca with sinf: frma, schm, schi/tenc) and a pssh per DRM
system in the moov, and in each media segment saiz, saio and senc in the traf; the
segments decrypt, by this test's own AES (the key from the ClearKey license endpoint) and
by FFmpeg 9 (`-decryption_key`), to exactly the samples and frames of a clear endpoint on
the same channel. HLS playlists carry ClearKey and Widevine `EXT-X-KEY` and
`EXT-X-SESSION-KEY` tags naming the key of the init segments, the MPD its
`ContentProtection` elements. hls.js, dash.js and Shaka Player play through Chromium's
ClearKey CDM with licenses from the reference server. A key provider that never answers
leaves every playlist, init and segment 404 or 503, never clear bytes."""

import base64
import json
import re
import struct
import subprocess
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import botocore.exceptions
import imageio_ffmpeg
import m3u8
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from conftest import ROOT, Server, free_port, get, play
from test_encryption_hls import FlakyProvider

COMMON = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"  # W3C common PSSH: Chromium's ClearKey reads it
DASHIF_CLEARKEY = "e2719d58-a985-b3c9-781a-b030af78d30e"  # what dash.js and Shaka look for
WIDEVINE = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"
AES_128 = "81376844-f976-481e-a84e-cc25d39b0b33"
ROLE = "arn:aws:iam::123456789012:role/speke"
CONSTANT_IV = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()  # FFmpeg 9: decrypts cenc and cbcs fMP4
NS = {"d": "urn:mpeg:dash:schema:mpd:2011", "cenc": "urn:mpeg:cenc:2013"}
CENC_NS = "{urn:mpeg:cenc:2013}"

CMAF = {"SegmentDurationSeconds": 2, "SegmentPrefix": "seg",
        "HlsManifests": [{"Id": "hls", "ManifestName": "index", "PlaylistWindowSeconds": 30}]}
DASH = {"SegmentDurationSeconds": 2, "SegmentTemplateFormat": "TIME_WITH_TIMELINE", "ManifestWindowSeconds": 30,
        "UtcTiming": "HTTP-ISO"}


def speke(origin_base, resource, system_ids, url=None):
    return {"Url": url or f"{origin_base}/speke/v1", "ResourceId": resource, "RoleArn": ROLE,
            "SystemIds": system_ids}


# Endpoint id → (package, encryption settings but the key provider, resource id, system ids).
ENCRYPTED = {
    "cbcs": ("cmaf", {"EncryptionMethod": "SAMPLE_AES", "KeyRotationIntervalSeconds": 0}, "live-cbcs",
             [COMMON, DASHIF_CLEARKEY, WIDEVINE]),
    "cbcs-iv": ("cmaf", {"EncryptionMethod": "SAMPLE_AES", "KeyRotationIntervalSeconds": 0,
                         "ConstantInitializationVector": CONSTANT_IV.upper()}, "live-cbcs-iv", [COMMON]),
    "cenc": ("cmaf", {"EncryptionMethod": "AES_CTR", "KeyRotationIntervalSeconds": 0}, "live-cenc", [COMMON]),
    "dash-cenc": ("dash", {"KeyRotationIntervalSeconds": 0}, "live-dash", [DASHIF_CLEARKEY, COMMON]),
}
SCHEME = {"cbcs": "cbcs", "cbcs-iv": "cbcs", "cenc": "cenc", "dash-cenc": "cenc"}
CLEAR = {"cmaf": "clear", "dash": "dash-clear"}


def ok(url):
    status, body = get(url)
    assert status == 200, f"GET {url}: {status} {body[:300]!r}"
    return body


@pytest.fixture(scope="module")
def origin():
    srv = Server(demo=True)
    try:
        mp = srv.mediapackage()
        srv.mp = mp
        mp.create_origin_endpoint(ChannelId="demo", Id="clear", ManifestName="index", CmafPackage=CMAF)
        mp.create_origin_endpoint(ChannelId="demo", Id="dash-clear", ManifestName="live", DashPackage=DASH)
        srv.sent, srv.created = {}, {}
        for name, (package, settings, resource, systems) in ENCRYPTED.items():
            encryption = {**settings, "SpekeKeyProvider": speke(srv.base, resource, systems)}
            srv.sent[name] = encryption
            if package == "cmaf":
                srv.created[name] = mp.create_origin_endpoint(
                    ChannelId="demo", Id=name, ManifestName="index", CmafPackage={**CMAF, "Encryption": encryption})
            else:
                srv.created[name] = mp.create_origin_endpoint(
                    ChannelId="demo", Id=name, ManifestName="live", DashPackage={**DASH, "Encryption": encryption})
        srv.license = f"{srv.base}/clearkey/license"
        yield srv
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------
# Where things are: playlists, MPD, init and media segments of an endpoint's track.


def media_playlist(origin, endpoint, kind, least=3, within=40):
    """The text of `endpoint`'s CMAF HLS media playlist of `kind` (video, audio: the first
    variant's), with its URL, once it lists `least` segments."""
    master_url = f"{origin.base}/out/v1/{endpoint}/hls/index.m3u8"
    deadline = time.time() + within
    status, body = None, b""
    while time.time() < deadline:
        status, body = get(master_url)
        if status == 200:
            master = m3u8.loads(body.decode())
            uri = master.playlists[0].uri if kind == "video" else next(
                m.uri for m in master.media if m.type == "AUDIO" and m.uri)
            url = urllib.parse.urljoin(master_url, uri)
            status, body = get(url)
            if status == 200 and body.count(b"#EXTINF") >= least:
                return body.decode(), url
        time.sleep(0.5)
    raise AssertionError(f"{endpoint} {kind}: fewer than {least} segments within {within} s: {status} {body[:300]!r}")


def hls_files(origin, endpoint, kind):
    """(init URL, URL of the segment before the newest, its start in ticks) of a CMAF HLS
    media playlist."""
    text, url = media_playlist(origin, endpoint, kind)
    playlist = m3u8.loads(text)
    segment = playlist.segments[-2]
    init = urllib.parse.urljoin(url, segment.init_section.uri)
    start = int(re.search(r"_(\d+)(?:\.k\d+)?\.mp4$", segment.uri).group(1))
    return init, urllib.parse.urljoin(url, segment.uri), start


def mpd(origin, endpoint, within=40):
    """`endpoint`'s MPD, parsed, once each AdaptationSet's timeline lists 3 segments."""
    url = f"{origin.base}/out/v1/{endpoint}/live.mpd"
    deadline = time.time() + within
    status, body = None, b""
    while time.time() < deadline:
        status, body = get(url)
        if status == 200:
            root = ET.fromstring(body)
            sets = root.findall("d:Period/d:AdaptationSet", NS)
            if sets and all(len(timeline(template(a, a.find("d:Representation", NS)))) >= 3 for a in sets):
                return root, url
        time.sleep(0.5)
    raise AssertionError(f"{endpoint}: no MPD with 3 segments within {within} s: {status} {body[:300]!r}")


def template(adaptation, representation):
    """The Representation's SegmentTemplate, else the AdaptationSet's."""
    own = representation.find("d:SegmentTemplate", NS)
    return own if own is not None else adaptation.find("d:SegmentTemplate", NS)


def timeline(t):
    out, end = [], 0
    for s in t.findall("d:SegmentTimeline/d:S", NS):
        start = int(s.get("t", end))
        for _ in range(int(s.get("r", 0)) + 1):
            out.append(start)
            start += int(s.get("d"))
        end = start
    return out


def adaptation_of(root, kind):
    return next(a for a in root.findall("d:Period/d:AdaptationSet", NS) if a.get("contentType") == kind)


def dash_files(origin, endpoint, kind):
    """(init URL, URL of the segment before the newest, its start) of the first
    Representation of `kind` in `endpoint`'s MPD (TIME_WITH_TIMELINE)."""
    root, url = mpd(origin, endpoint)
    adaptation = adaptation_of(root, kind)
    representation = adaptation.find("d:Representation", NS)
    t = template(adaptation, representation)
    start = timeline(t)[-2]
    rid = representation.get("id")
    init = t.get("initialization").replace("$RepresentationID$", rid)
    media = t.get("media").replace("$RepresentationID$", rid).replace("$Time$", str(start))
    return urllib.parse.urljoin(url, init), urllib.parse.urljoin(url, media), start


def track(origin, endpoint, kind, tmp_path):
    """The init segment and one media segment of `endpoint`'s `kind` track, and the same
    segment (same start) of the clear endpoint of its package, as files and as mp4box.js
    reads them: a dict of bytes, paths and box reports."""
    package = ENCRYPTED[endpoint][0]
    files = hls_files if package == "cmaf" else dash_files
    init_url, segment_url, start = files(origin, endpoint, kind)
    clear = CLEAR[package]
    # The clear endpoint's segment of the same start: the same name at the clear endpoint
    # (less a key period's `.k…`, should the name carry one).
    clear_init_url = init_url.replace(f"/out/v1/{endpoint}/", f"/out/v1/{clear}/")
    clear_segment_url = re.sub(r"\.k\d+(?=\.mp4$)", "", segment_url.replace(f"/out/v1/{endpoint}/", f"/out/v1/{clear}/"))
    out = {"start": start, "urls": (init_url, segment_url, clear_init_url, clear_segment_url)}
    paths = []
    for name, url in zip(["init", "segment", "clear_init", "clear_segment"], out["urls"]):
        out[name] = ok(url)
        path = tmp_path / f"{endpoint}_{kind}_{name}.mp4"
        path.write_bytes(out[name])
        out[f"{name}_path"] = path
        paths.append(path)
    out["boxes"] = dict(zip(["init", "segment", "clear_init", "clear_segment"], boxes(*paths)))
    return out


def boxes(*paths):
    out = subprocess.run(["node", str(ROOT / "tests" / "player" / "mp4_boxes.mjs"), *map(str, paths)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def content_key(origin, kid_hex):
    """The key of a KID, as any ClearKey player gets it: a W3C ClearKey license request to
    the reference server's license endpoint."""
    kid = bytes.fromhex(kid_hex)
    request = urllib.request.Request(
        origin.license, data=json.dumps({"kids": [b64url(kid)], "type": "temporary"}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as r:
        answer = json.loads(r.read())
    (key,) = answer["keys"]
    assert key["kty"] == "oct" and key["kid"] == b64url(kid), answer
    k = base64.urlsafe_b64decode(key["k"] + "=" * (-len(key["k"]) % 4))
    assert len(k) == 16
    return k


def parse_pssh(data):
    """(version, system id, KIDs, system data) of one pssh box (ISO/IEC 23001-7 §8.1)."""
    size, kind, version = struct.unpack(">I4sB", data[:9])
    assert size == len(data) and kind == b"pssh", data[:8]
    system = data[12:28].hex()
    at, kids = 28, []
    if version > 0:
        (count,) = struct.unpack(">I", data[at:at + 4])
        kids = [data[at + 4 + 16 * i: at + 20 + 16 * i].hex() for i in range(count)]
        at += 4 + 16 * count
    (length,) = struct.unpack(">I", data[at:at + 4])
    assert at + 4 + length == size
    return version, system, kids, data[at + 4:]


def with_pssh(endpoint):
    """The system ids of `endpoint` that get a pssh box (all but DASH-IF ClearKey)."""
    return [s for s in ENCRYPTED[endpoint][3] if s != DASHIF_CLEARKEY]


def hexid(uuid):
    return uuid.replace("-", "").lower()


def protection(init_report):
    (t,) = init_report["moov"]["tracks"]
    return t["protection"]


# ---------------------------------------------------------------------------------------
# Control API


def test_encryption_is_echoed_as_given_and_modelled(origin):
    for name, (package, _, _, _) in ENCRYPTED.items():
        key = "CmafPackage" if package == "cmaf" else "DashPackage"
        described = origin.mp.describe_origin_endpoint(Id=name)[key]["Encryption"]
        assert described == origin.sent[name], name
        assert origin.created[name][key]["Encryption"] == origin.sent[name], name
    listed = {e["Id"]: e for e in origin.mp.list_origin_endpoints()["OriginEndpoints"]}
    assert listed["cenc"]["CmafPackage"]["Encryption"] == origin.sent["cenc"]


SPEKE_V2_ROTATION = r"keyRotationIntervalSeconds 60: SPEKE v2.*set 0"
ECC = {"PresetSpeke20Audio": "PRESET-AUDIO-1", "PresetSpeke20Video": "PRESET-VIDEO-1"}
SHARED = {"PresetSpeke20Audio": "SHARED", "PresetSpeke20Video": "SHARED"}
CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/abc"


@pytest.mark.parametrize("package, change, field, words", [
    ("dash", {"KeyRotationIntervalSeconds": None, "Provider": {"EncryptionContractConfiguration": SHARED}},
     "keyRotationIntervalSeconds", SPEKE_V2_ROTATION),
    ("cmaf", {"EncryptionMethod": "AES_CTR", "ConstantInitializationVector": CONSTANT_IV},
     "constantInitializationVector", None),
    ("cmaf", {"ConstantInitializationVector": "0011"}, "constantInitializationVector", None),
    ("cmaf", {"Systems": [COMMON, AES_128]}, "systemIds", None),
    ("dash", {"Systems": [AES_128]}, "systemIds", None),
    ("cmaf", {"Provider": {"CertificateArn": CERTIFICATE}}, "certificateArn", None),
    ("dash", {"Provider": {"CertificateArn": CERTIFICATE}}, "certificateArn", None),
    ("cmaf", {"Provider": {"EncryptionContractConfiguration": ECC}}, "encryptionContractConfiguration", None),
    ("dash", {"Provider": {"EncryptionContractConfiguration": ECC}}, "encryptionContractConfiguration", None),
    ("cmaf-iframes", {}, "includeIframeOnlyStream", None),
], ids=["speke-v2-rotation-default", "cenc-constant-iv",
        "short-constant-iv", "cmaf-aes128-id", "dash-aes128-id", "cmaf-certificate", "dash-certificate",
        "cmaf-speke-v2", "dash-speke-v2", "cmaf-iframes"])
def test_settings_sluice_cannot_honour_are_refused(origin, package, change, field, words):
    change = dict(change)
    provider = {**speke(origin.base, "refused", change.pop("Systems", [COMMON])), **change.pop("Provider", {})}
    encryption = {"KeyRotationIntervalSeconds": 0, "SpekeKeyProvider": provider, **change}
    encryption = {k: v for k, v in encryption.items() if v is not None}
    if package == "dash":
        kwargs = {"DashPackage": {**DASH, "Encryption": encryption}}
    else:
        manifests = [{**CMAF["HlsManifests"][0], "IncludeIframeOnlyStream": package == "cmaf-iframes"}]
        kwargs = {"CmafPackage": {**CMAF, "HlsManifests": manifests, "Encryption": encryption}}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        origin.mp.create_origin_endpoint(ChannelId="demo", Id="refused", **kwargs)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 422
    message = e.value.response["Error"]["Message"]
    assert field.lower() in message.lower(), message
    if words:
        assert re.search(words, message, re.I | re.S), message
    assert "refused" not in {x["Id"] for x in origin.mp.list_origin_endpoints()["OriginEndpoints"]}


# ---------------------------------------------------------------------------------------
# Init segments: protected sample entries and pssh boxes, where the spec puts them.

TRACKS = [("cbcs", "video"), ("cbcs", "audio"), ("cenc", "video"), ("cenc", "audio"),
          ("dash-cenc", "video"), ("dash-cenc", "audio")]


@pytest.mark.parametrize("endpoint, kind", TRACKS + [("cbcs-iv", "video")])
def test_init_segments_signal_the_scheme_and_the_key(origin, tmp_path, endpoint, kind):
    t = track(origin, endpoint, kind, tmp_path)
    init, clear = t["boxes"]["init"], t["boxes"]["clear_init"]
    (entry,) = init["moov"]["tracks"]
    (clear_entry,) = clear["moov"]["tracks"]
    encrypted_type = {"video": "encv", "audio": "enca"}[kind]
    assert entry["entry"] == encrypted_type and clear_entry["entry"] == {"video": "avc1", "audio": "mp4a"}[kind]
    # The protected sample entry is the clear one but for its type and the sinf.
    for field in ("handler", "timescale", "width", "height", "channels", "sampleRate", "avcC"):
        assert entry.get(field) == clear_entry.get(field), field
    stsd = "moov/trak/mdia/minf/stbl/stsd"
    sinf = f"{stsd}/{encrypted_type}/sinf"
    for box in ("sinf", "sinf/frma", "sinf/schm", "sinf/schi", "sinf/schi/tenc"):
        assert init["paths"].count(f"{stsd}/{encrypted_type}/{box}") == 1, (box, init["paths"])
    assert [p for p in init["paths"] if p.endswith("/tenc")] == [f"{sinf}/schi/tenc"]
    p = entry["protection"]
    assert p["sinfs"] == 1 and p["originalFormat"] == clear_entry["entry"]
    scheme = SCHEME[endpoint]
    assert p["scheme"] == scheme and p["schemeVersion"] == 0x00010000
    tenc = p["tenc"]
    assert tenc["isProtected"] == 1 and re.fullmatch(r"[0-9a-f]{32}", tenc["kid"]) and int(tenc["kid"], 16)
    if scheme == "cenc":
        assert tenc["perSampleIVSize"] == 8 and tenc.get("constantIV") is None
    else:
        assert tenc["version"] == 1, "cbcs needs tenc version 1 for its pattern"
        assert tenc["perSampleIVSize"] == 0 and tenc["constantIVSize"] == 16 and len(tenc["constantIV"]) == 32
        pattern = (tenc["cryptByteBlock"], tenc["skipByteBlock"])
        assert pattern == ((1, 9) if kind == "video" else (0, 0)), pattern
        if endpoint == "cbcs-iv":
            assert tenc["constantIV"] == CONSTANT_IV
    # One pssh per system id, in the moov (not in a trak), naming the key; none for DASH-IF
    # ClearKey, which names ClearKey in an MPD and whose pssh is the common system's.
    systems = with_pssh(endpoint)
    assert [x for x in init["paths"] if x.endswith("pssh")] == ["moov/pssh"] * len(systems), init["paths"]
    pssh = init["moov"]["pssh"]
    assert sorted(x["systemId"] for x in pssh) == sorted(hexid(s) for s in systems)
    for x in pssh:
        assert x["version"] == 1 and x["kids"] == [tenc["kid"]], x
        raw = t["init"][x["start"]: x["start"] + x["size"]]
        assert parse_pssh(raw)[:3] == (1, x["systemId"], [tenc["kid"]])
    # The key server issued that KID: its license endpoint answers its key.
    content_key(origin, tenc["kid"])


# ---------------------------------------------------------------------------------------
# Media segments: sample encryption boxes, and the samples decrypt to the clear ones.


def decrypt_samples(data, moof, tenc, scheme, key):
    """`data` (a media segment) with each sample of its first traf decrypted in place, by
    the senc entries mp4box.js read: cenc (AES-CTR, §9.4.2; the counter runs on across a
    sample's protected ranges) or cbcs (AES-CBC of the pattern's encrypted 16-byte blocks,
    §9.6 and §10.4; the IV anew for each subsample, a partial last block clear)."""
    data = bytearray(data)
    at = moof["moofStart"] + moof["dataOffset"]
    for size, entry in zip(moof["sizes"], moof["encryption"]["senc"]["samples"]):
        regions, offset = [], at
        for clear, protected in entry.get("subsamples") or [[0, size]]:
            regions.append((offset + clear, protected))
            offset += clear + protected
        assert offset == at + size, "subsamples cover the sample exactly"
        iv = bytes.fromhex(entry["iv"] or tenc["constantIV"])
        if scheme == "cenc":
            groups = [(regions, modes.CTR(iv.ljust(16, b"\0")))]
        else:
            crypt, skip = tenc["cryptByteBlock"], tenc["skipByteBlock"]
            if (crypt, skip) == (0, 0):  # every whole block
                crypt = 1
            groups = [([(o + 16 * i, 16) for i in range(n // 16) if i % (crypt + skip) < crypt], modes.CBC(iv))
                      for o, n in regions]
        for spans, mode in groups:
            joined = b"".join(data[o:o + n] for o, n in spans)
            plain = Cipher(algorithms.AES(key), mode).decryptor().update(joined)
            for o, n in spans:
                data[o:o + n], plain = plain[:n], plain[n:]
        at += size
    return bytes(data)


def mdat(data, moof):
    return data[moof["mdatStart"] + moof["mdatHeader"]: moof["mdatStart"] + moof["mdatSize"]]


def nal_starts(sample):
    """Offsets of each NAL unit of a sample (4-byte lengths) in it."""
    out, at = [], 0
    while at < len(sample):
        out.append(at)
        at += 4 + int.from_bytes(sample[at:at + 4], "big")
    assert at == len(sample)
    return out


@pytest.mark.parametrize("endpoint, kind", TRACKS)
def test_media_segments_carry_sample_encryption_and_decrypt_to_the_clear_samples(origin, tmp_path, endpoint, kind):
    t = track(origin, endpoint, kind, tmp_path)
    tenc = protection(t["boxes"]["init"])["tenc"]
    seg, clear = t["boxes"]["segment"], t["boxes"]["clear_segment"]
    for box in ("saiz", "saio", "senc"):
        assert seg["paths"].count(f"moof/traf/{box}") == 1, (box, seg["paths"])
        assert f"moof/traf/{box}" not in clear["paths"]
    m, c = seg["moof"], clear["moof"]
    assert [b["type"] for b in seg["boxes"]] == [b["type"] for b in clear["boxes"]]
    for field in ("baseMediaDecodeTime", "samples", "durations", "sizes", "flags", "compositionOffsets"):
        assert m[field] == c[field], field
    assert m["mdatSize"] == c["mdatSize"], "encryption keeps every sample's size"
    e = m["encryption"]
    senc = e["senc"]
    # Subsamples for video (NAL headers clear); audio is full-sample encryption (§9.5;
    # cbcs: every whole block, pattern 0:0, the partial last block clear).
    assert senc["flags"] == (2 if kind == "video" else 0), senc["flags"]
    assert senc["sampleCount"] == m["samples"] and senc["trailingBytes"] == 0 and "error" not in senc, senc
    entry_sizes = [s["size"] for s in senc["samples"]]
    assert e["saiz"]["count"] == m["samples"]
    if e["saiz"]["defaultSize"]:
        assert set(entry_sizes) == {e["saiz"]["defaultSize"]}
    else:
        assert e["saiz"]["sizes"] == entry_sizes
    # saio: one offset, from the moof (default-base-is-moof), to senc's first entry.
    assert m["defaultBaseIsMoof"] and e["saio"]["count"] == 1
    assert e["saio"]["offsets"] == [senc["start"] + senc["headerSize"] + 4 - m["moofStart"]]
    ivs = [s["iv"] for s in senc["samples"]]
    if SCHEME[endpoint] == "cenc":
        assert all(len(iv) == 16 for iv in ivs) and len(set(ivs)) == len(ivs), "8-byte IVs, each its own"
    else:
        assert set(ivs) == {""}, "cbcs: the constant IV of the tenc"
    clear_bytes = t["clear_segment"]
    at = c["moofStart"] + c["dataOffset"]
    for size, entry in zip(c["sizes"], senc["samples"]):
        subsamples = entry.get("subsamples") or [[0, size]]
        assert sum(a + b for a, b in subsamples) == size
        if kind == "video":
            # Each NAL unit's length and header are in the clear (§10.2 / §10.4.2).
            clear_at, offset = set(), 0
            for a, b in subsamples:
                clear_at.update(range(offset, offset + a))
                offset += a + b
            for nal in nal_starts(clear_bytes[at:at + size]):
                assert set(range(nal, nal + 5)) <= clear_at, (nal, subsamples)
        at += size
    assert mdat(t["segment"], m) != mdat(clear_bytes, c), "the samples are encrypted"
    key = content_key(origin, tenc["kid"])
    decrypted = decrypt_samples(t["segment"], m, tenc, SCHEME[endpoint], key)
    assert mdat(decrypted, m) == mdat(clear_bytes, c), "decrypts to exactly the clear endpoint's samples"


def framemd5(path, stream, key=None):
    out = subprocess.run(
        [FFMPEG, "-v", "error", *(["-decryption_key", key.hex()] if key else []), "-i", str(path),
         "-map", f"0:{stream}", "-f", "framemd5", "-"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return [line.rsplit(",", 1)[1].strip() for line in out.stdout.splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("endpoint, kind", [("cbcs", "video"), ("cenc", "video"), ("cbcs", "audio"),
                                            ("cenc", "audio"), ("dash-cenc", "video")])
def test_ffmpeg_decrypts_to_the_clear_endpoints_frames(origin, tmp_path, endpoint, kind):
    t = track(origin, endpoint, kind, tmp_path)
    key = content_key(origin, protection(t["boxes"]["init"])["tenc"]["kid"])
    encrypted, clear = tmp_path / "encrypted.mp4", tmp_path / "clear.mp4"
    encrypted.write_bytes(t["init"] + t["segment"])
    clear.write_bytes(t["clear_init"] + t["clear_segment"])
    stream = kind[0]
    expected = framemd5(clear, stream)
    assert len(expected) >= (40 if kind == "video" else 80), len(expected)
    assert framemd5(encrypted, stream, key) == expected


# ---------------------------------------------------------------------------------------
# Signalling: HLS key tags, MPD ContentProtection.


def attributes(text):
    """An HLS attribute list as a dict, quoted strings unquoted."""
    out = {}
    for name, value in re.findall(r'([A-Z0-9-]+)=("[^"]*"|[^",]*)', text):
        assert name not in out, f"{name} twice in {text}"
        out[name] = value[1:-1] if value.startswith('"') else value
    return out


def expected_key_tags(endpoint, kid, pssh_by_system):
    """The attribute dicts of the key tags for `endpoint`'s systems and a KID."""
    method = {"cbcs": "SAMPLE-AES", "cenc": "SAMPLE-AES-CTR"}[SCHEME[endpoint]]
    systems = ENCRYPTED[endpoint][3]
    out = []
    if COMMON in systems or DASHIF_CLEARKEY in systems:
        out.append({"METHOD": method, "URI": "data:text/plain;base64," + base64.b64encode(bytes.fromhex(kid)).decode(),
                    "KEYFORMAT": "org.w3.clearkey", "KEYFORMATVERSIONS": "1"})
    if WIDEVINE in systems:
        out.append({"METHOD": method, "URI": "data:text/plain;base64," + base64.b64encode(
            pssh_by_system[hexid(WIDEVINE)]).decode(), "KEYFORMAT": f"urn:uuid:{WIDEVINE}", "KEYFORMATVERSIONS": "1"})
    return out


def by_format(tags):
    return sorted(tags, key=lambda a: a.get("KEYFORMAT", ""))


@pytest.mark.parametrize("endpoint", ["cbcs", "cenc"])
def test_cmaf_hls_playlists_name_the_key_of_the_init_segments(origin, tmp_path, endpoint):
    session_expected = []
    for kind in ("video", "audio"):
        text, _ = media_playlist(origin, endpoint, kind)
        t = track(origin, endpoint, kind, tmp_path)
        init = t["boxes"]["init"]
        kid = protection(init)["tenc"]["kid"]
        pssh = {x["systemId"]: t["init"][x["start"]: x["start"] + x["size"]] for x in init["moov"]["pssh"]}
        expected = expected_key_tags(endpoint, kid, pssh)
        lines = text.splitlines()
        first_segment = next(i for i, line in enumerate(lines) if line.startswith("#EXTINF"))
        tags = [(i, attributes(line.split(":", 1)[1])) for i, line in enumerate(lines) if line.startswith("#EXT-X-KEY:")]
        before = [a for i, a in tags if i < first_segment]
        # cenc: ClearKey also as an `identity` key tag (how Shaka Player takes it), the URL of
        # the key; not for SAMPLE-AES, where hls.js would take it for its TS decryption.
        identities = [a for a in before if a["KEYFORMAT"] == "identity"]
        if SCHEME[endpoint] == "cenc":
            (identity,) = identities
            assert identity["METHOD"] == "SAMPLE-AES-CTR" and identity["KEYFORMATVERSIONS"] == "1", identity
            assert ok(identity["URI"]) == content_key(origin, kid), "the identity URI serves the key of the KID"
            expected = [identity, *expected]
        else:
            assert identities == [], identities
        assert by_format(before) == by_format(expected), (kind, before)
        assert all(a in before for _, a in tags), "any later key tag repeats the first ones"
        # The m3u8 library reads the same: every segment under the key.
        playlist = m3u8.loads(text)
        assert all(s.key is not None and s.key.method == expected[0]["METHOD"] for s in playlist.segments)
        clearkey = next(a for a in before if a["KEYFORMAT"] == "org.w3.clearkey")
        assert base64.b64decode(clearkey["URI"].split(",", 1)[1]).hex() == kid
        for a in expected:
            if a not in session_expected:
                session_expected.append(a)
    master = ok(f"{origin.base}/out/v1/{endpoint}/hls/index.m3u8").decode()
    session = [attributes(line.split(":", 1)[1]) for line in master.splitlines()
               if line.startswith("#EXT-X-SESSION-KEY:")]
    assert by_format(session) == by_format(session_expected), session
    assert len(m3u8.loads(master).session_keys) == len(session_expected)
    assert "#EXT-X-KEY" not in master


def test_dash_mpd_carries_content_protection_for_each_system(origin, tmp_path):
    root, _ = mpd(origin, "dash-cenc")
    systems = ENCRYPTED["dash-cenc"][3]
    later = {f"{{{NS['d']}}}{n}" for n in ("Accessibility", "Role", "Rating", "Viewpoint", "ContentComponent",
                                           "BaseURL", "SegmentBase", "SegmentList", "SegmentTemplate",
                                           "Representation")}
    for kind in ("video", "audio"):
        adaptation = adaptation_of(root, kind)
        children = list(adaptation)
        protections = [c for c in children if c.tag == f"{{{NS['d']}}}ContentProtection"]
        # Schema order (ISO/IEC 23009-1 AdaptationSetType): ContentProtection before Role,
        # SegmentTemplate and the Representations.
        assert max(children.index(c) for c in protections) < min(
            (children.index(c) for c in children if c.tag in later), default=len(children))
        mp4 = [c for c in protections if c.get("schemeIdUri") == "urn:mpeg:dash:mp4protection:2011"]
        assert len(mp4) == 1 and mp4[0].get("value") == "cenc", [c.attrib for c in protections]
        default_kid = mp4[0].get(f"{CENC_NS}default_KID")
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", default_kid or ""), default_kid
        t = track(origin, "dash-cenc", kind, tmp_path)
        init = t["boxes"]["init"]
        assert protection(init)["tenc"]["kid"] == hexid(default_kid)
        in_init = {x["systemId"]: t["init"][x["start"]: x["start"] + x["size"]] for x in init["moov"]["pssh"]}
        drm = [c for c in protections if c is not mp4[0]]
        # ClearKey (common or DASH-IF id asked for) is signalled once, as DASH-IF ClearKey
        # (DASH-IF IOP §7.6.2.4); the common pssh stays in the init segment.
        signalled = {DASHIF_CLEARKEY if s in (COMMON, DASHIF_CLEARKEY) else s for s in systems}
        assert sorted(c.get("schemeIdUri").lower() for c in drm) == sorted(f"urn:uuid:{s}" for s in signalled)
        for c in drm:
            system = hexid(c.get("schemeIdUri").removeprefix("urn:uuid:"))
            if system == hexid(DASHIF_CLEARKEY):
                assert c.findall("cenc:pssh", NS) == [], "DASH-IF ClearKey: the common pssh is the init segment's"
                assert system not in in_init
                if COMMON in systems:
                    assert parse_pssh(in_init[hexid(COMMON)])[:3] == (1, hexid(COMMON), [hexid(default_kid)])
                continue
            (pssh,) = c.findall("cenc:pssh", NS)
            data = base64.b64decode(pssh.text.strip())
            assert parse_pssh(data)[:3] == (1, system, [hexid(default_kid)])
            assert data == in_init[system], "the same pssh box as the init segment's"


# ---------------------------------------------------------------------------------------
# Players, through Chromium's ClearKey CDM.


def check_decrypted(played, license=True):
    """That the player played through EME with ClearKey: the key usable in the CDM, from a
    license it asked for (`license`) or from the playlist's key URL."""
    eme = played["eme"]
    assert "org.w3.clearkey" in eme["granted"] and eme["mediaKeys"], played
    assert bool(eme["licenseRequests"]) == license, ("license requests", played)
    assert eme["keyStatuses"] and set(eme["keyStatuses"].values()) == {"usable"}, played


@pytest.mark.parametrize("player", ["shaka", "dashjs"])
def test_dash_players_play_cenc(origin, player):
    played = play(player, f"{origin.base}/out/v1/dash-cenc/live.mpd", 4, CLEARKEY_LICENSE=origin.license)
    check_decrypted(played)


@pytest.mark.parametrize("endpoint", ["cbcs", "cenc"])
def test_hlsjs_plays_cmaf_hls(origin, endpoint):
    played = play("hlsjs", f"{origin.base}/out/v1/{endpoint}/hls/index.m3u8", 4, CLEARKEY_LICENSE=origin.license)
    check_decrypted(played)


def test_shaka_plays_cmaf_hls_cenc_with_the_identity_key(origin):
    played = play("shaka", f"{origin.base}/out/v1/cenc/hls/index.m3u8", 4, CLEARKEY_LICENSE=origin.license)
    check_decrypted(played, license=False)


def test_shaka_cannot_play_cmaf_hls_cbcs_with_clearkey_and_says_why(origin):
    """Shaka Player's HLS parser knows no org.w3.clearkey KEYFORMAT, only `identity`, which
    Sluice writes for SAMPLE-AES-CTR only (hls.js takes `identity` SAMPLE-AES for its own
    TS decryption and then plays no EME). Of this endpoint's tags Shaka reads Widevine's
    alone, and Chromium here has no Widevine CDM: Shaka's own error, 6001
    REQUESTED_KEY_SYSTEM_CONFIG_UNAVAILABLE. Should a Shaka release read ClearKey tags,
    this fails."""
    with pytest.raises(AssertionError) as refused:
        play("shaka", f"{origin.base}/out/v1/cbcs/hls/index.m3u8", 4, CLEARKEY_LICENSE=origin.license)
    assert "shaka load 6001" in str(refused.value), refused.value


# ---------------------------------------------------------------------------------------
# A key provider that never answered: nothing is served, least of all clear media.


def refused_everything(urls, clear):
    for url in urls:
        status, body = get(url)
        assert status in (404, 503), (url, status, body[:200])
        assert body[4:8] not in (b"ftyp", b"styp", b"moof", b"moov") and not any(body == c for c in clear), url


def test_a_provider_down_from_the_start_serves_no_clear_bytes(origin, tmp_path):
    keys = FlakyProvider(origin.base)
    try:
        keys.modes["dash-down"] = "down"
        closed = f"http://127.0.0.1:{free_port()}/speke/v1"
        origin.mp.create_origin_endpoint(ChannelId="demo", Id="down", ManifestName="index", CmafPackage={
            **CMAF, "Encryption": {"EncryptionMethod": "SAMPLE_AES", "KeyRotationIntervalSeconds": 0,
                                   "SpekeKeyProvider": speke(origin.base, "down", [COMMON], closed)}})
        origin.mp.create_origin_endpoint(ChannelId="demo", Id="dash-down", ManifestName="live", DashPackage={
            **DASH, "Encryption": {"KeyRotationIntervalSeconds": 0, "SpekeKeyProvider": speke(
                origin.base, "dash-down", [DASHIF_CLEARKEY], f"{keys.url}/dash-down/speke/v1")}})
        for kind in ("video", "audio"):
            _, clear_url = media_playlist(origin, "clear", kind)
            init, segment, _ = hls_files(origin, "clear", kind)
            clear = [ok(init), ok(segment)]
            down = [u.replace("/out/v1/clear/", "/out/v1/down/") for u in (clear_url, init, segment)]
            refused_everything(down, clear)
            init, segment, _ = dash_files(origin, "dash-clear", kind)
            clear = [ok(init), ok(segment)]
            refused_everything([u.replace("/out/v1/dash-clear/", "/out/v1/dash-down/") for u in (init, segment)], clear)
        status, body = get(f"{origin.base}/out/v1/dash-down/live.mpd")
        assert status in (404, 503), (status, body[:300])
        assert keys.requests.get("dash-down", 0) >= 1, "the provider was asked"
    finally:
        keys.stop()
