"""SPEKE v2 (CPIX 2.3): CMAF and DASH endpoints whose `spekeKeyProvider` has an
`encryptionContractConfiguration` (the SHARED presets: one key per period for every
track) ask the provider with `X-Speke-Version: 2.0` and a CPIX 2.3 document, as the SPEKE
v2 API describes it; the key they get encrypts what players decrypt (hls.js, dash.js
through ClearKey EME, FFmpeg to the clear endpoint's frames); an answer that does not
echo the version, and presets Sluice cannot honour, are refused."""

import urllib.parse
import xml.etree.ElementTree as ET

import botocore.exceptions
import m3u8
import pytest

from conftest import Server, get, play
from test_encryption_cmaf import (CMAF, COMMON, DASH, DASHIF_CLEARKEY, boxes, check_decrypted, content_key,
                                  framemd5, hls_files, protection)
from test_encryption_hls import FlakyProvider

SHARED = {"PresetSpeke20Audio": "SHARED", "PresetSpeke20Video": "SHARED"}
CPIX = "{urn:dashif:org:cpix}"


def speke_v2(keys, name, systems):
    return {"Url": f"{keys.url}/{name}/speke/v2", "ResourceId": f"live-{name}",
            "RoleArn": "arn:aws:iam::123456789012:role/speke", "SystemIds": systems,
            "EncryptionContractConfiguration": SHARED}


@pytest.fixture(scope="module")
def origin():
    srv = Server(demo=True)
    keys = FlakyProvider(srv.base)
    try:
        srv.mp, srv.keys = srv.mediapackage(), keys
        srv.license = f"{srv.base}/clearkey/license"
        srv.mp.create_origin_endpoint(ChannelId="demo", Id="clear", ManifestName="index", CmafPackage=CMAF)
        srv.created = srv.mp.create_origin_endpoint(ChannelId="demo", Id="v2-cbcs", ManifestName="index", CmafPackage={
            **CMAF, "Encryption": {"EncryptionMethod": "SAMPLE_AES", "KeyRotationIntervalSeconds": 0,
                                   "SpekeKeyProvider": speke_v2(keys, "v2-cbcs", [COMMON])}})
        srv.mp.create_origin_endpoint(ChannelId="demo", Id="v2-dash", ManifestName="live", DashPackage={
            **DASH, "Encryption": {"KeyRotationIntervalSeconds": 0,
                                   "SpekeKeyProvider": speke_v2(keys, "v2-dash", [DASHIF_CLEARKEY, COMMON])}})
        yield srv
    finally:
        keys.stop()
        srv.stop()


def test_the_contract_is_echoed_and_keys_are_asked_for_in_cpix_2_3(origin, tmp_path):
    provider = origin.created["CmafPackage"]["Encryption"]["SpekeKeyProvider"]
    assert provider["EncryptionContractConfiguration"] == SHARED
    described = origin.mp.describe_origin_endpoint(Id="v2-cbcs")["CmafPackage"]["Encryption"]["SpekeKeyProvider"]
    assert described == provider
    init_url, _, _ = hls_files(origin, "v2-cbcs", "video")
    status, init = get(init_url)
    assert status == 200
    (tmp_path / "init.mp4").write_bytes(init)
    kid = protection(boxes(tmp_path / "init.mp4")[0])["tenc"]["kid"]

    headers, bodies = origin.keys.headers["v2-cbcs"], origin.keys.bodies["v2-cbcs"]
    assert all(h.get("x-speke-version") == "2.0" for h in headers), headers
    root = ET.fromstring(bodies[0])
    assert root.tag == f"{CPIX}CPIX" and root.get("version") == "2.3", bodies[0][:300]
    assert root.get("contentId") == "live-v2-cbcs" and root.get("id") is None
    (key,) = root.iter(f"{CPIX}ContentKey")
    assert key.get("commonEncryptionScheme") == "cbcs"
    assert key.get("kid").replace("-", "") == kid, "the init segment names the key asked for"
    (drm,) = root.iter(f"{CPIX}DRMSystem")
    assert drm.get("systemId") == COMMON and drm.find(f"{CPIX}PSSH") is not None
    assert [e.get("playlist") for e in drm.iter(f"{CPIX}HLSSignalingData")] == ["media", "master"]
    (rule,) = root.iter(f"{CPIX}ContentKeyUsageRule")
    assert rule.get("intendedTrackType") == "ALL", "SHARED: one key for every track"
    assert rule.find(f"{CPIX}VideoFilter") is not None and rule.find(f"{CPIX}AudioFilter") is not None
    assert not [e for e in root.iter() if e.tag.endswith("URIExtXKey")], "a SPEKE v1 element"


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_ffmpeg_decrypts_to_the_clear_endpoints_frames(origin, tmp_path, kind):
    init_url, segment_url, start = hls_files(origin, "v2-cbcs", kind)
    (tmp_path / "init.mp4").write_bytes(get(init_url)[1])
    key = content_key(origin, protection(boxes(tmp_path / "init.mp4")[0])["tenc"]["kid"])
    clear_init, clear_segment = (url.replace("/v2-cbcs/", "/clear/").replace(".k0.", ".")
                                 for url in (init_url, segment_url))
    encrypted, clear = tmp_path / "encrypted.mp4", tmp_path / "clear.mp4"
    encrypted.write_bytes(get(init_url)[1] + get(segment_url)[1])
    clear.write_bytes(get(clear_init)[1] + get(clear_segment)[1])
    expected = framemd5(clear, kind[0])
    assert len(expected) >= (40 if kind == "video" else 80), len(expected)
    assert framemd5(encrypted, kind[0], key) == expected


def test_hlsjs_plays_cmaf_cbcs(origin):
    check_decrypted(play("hlsjs", f"{origin.base}/out/v1/v2-cbcs/hls/index.m3u8", 4, CLEARKEY_LICENSE=origin.license))


def test_dashjs_plays_dash_cenc(origin):
    check_decrypted(play("dashjs", f"{origin.base}/out/v1/v2-dash/live.mpd", 4, CLEARKEY_LICENSE=origin.license))
    (rule,) = ET.fromstring(origin.keys.bodies["v2-dash"][0]).iter(f"{CPIX}ContentKey")
    assert rule.get("commonEncryptionScheme") == "cenc"


def test_an_answer_without_the_speke_version_is_not_used(origin):
    origin.keys.modes["no-echo"] = "no-echo"
    origin.mp.create_origin_endpoint(ChannelId="demo", Id="no-echo", ManifestName="index", CmafPackage={
        **CMAF, "Encryption": {"EncryptionMethod": "SAMPLE_AES", "KeyRotationIntervalSeconds": 0,
                               "SpekeKeyProvider": speke_v2(origin.keys, "no-echo", [COMMON])}})
    master_url = f"{origin.base}/out/v1/no-echo/hls/index.m3u8"
    status, body = get(master_url)
    if status == 200:  # the multivariant playlist may need no key: its media playlists do
        variant = m3u8.loads(body.decode(), uri=master_url).playlists[0]
        status, body = get(urllib.parse.urljoin(master_url, variant.uri))
    assert status == 404 and b"no content key has been obtained" in body, (status, body[:300])
    assert origin.keys.requests.get("no-echo", 0) >= 1
    reasons = [e["fields"].get("error", "") for e in origin.logs()
               if e.get("fields", {}).get("message") == "KeyProviderError" and e["fields"].get("endpoint") == "no-echo"]
    assert any("must echo X-Speke-Version: 2.0" in r for r in reasons), reasons


@pytest.mark.parametrize("preset, field", [
    ({"PresetSpeke20Audio": "SHARED", "PresetSpeke20Video": "PRESET-VIDEO-1"}, "presetSpeke20Video PRESET-VIDEO-1"),
    ({"PresetSpeke20Audio": "UNENCRYPTED", "PresetSpeke20Video": "SHARED"}, "presetSpeke20Audio UNENCRYPTED"),
])
def test_presets_with_keys_per_track_are_refused(origin, preset, field):
    provider = {**speke_v2(origin.keys, "refused", [COMMON]), "EncryptionContractConfiguration": preset}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        origin.mp.create_origin_endpoint(ChannelId="demo", Id="refused", ManifestName="live", DashPackage={
            **DASH, "Encryption": {"KeyRotationIntervalSeconds": 0, "SpekeKeyProvider": provider}})
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 422
    assert field in e.value.response["Error"]["Message"], e.value.response["Error"]["Message"]
