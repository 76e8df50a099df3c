"""HLS TS with AES-128 (`hlsPackage.encryption`), keys from sluice-local's reference key
server over SPEKE v1: the settings are echoed as botocore models them and refused with 422
where Sluice cannot honour them; each segment decrypts (AES-128-CBC, the media sequence
number as IV, the key from the playlist's key URI) to exactly the clear endpoint's segment;
ffmpeg decodes the encrypted segments to the clear ones' frames; hls.js plays through key
changes every 10 s. A key provider that fails after the first key leaves the last key in
use; one that never answered gives 404 (a segment 503) and never clear bytes; a slow one is waited for a
bounded time.

The key provider the endpoints name is a small proxy in this test in front of the
reference server's `/speke/v1`, so that it can be made to fail or stall per endpoint."""

import http.server
import os
import re
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import botocore.exceptions
import m3u8
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from conftest import Server, aws_env, get, play

AES_128 = "81376844-f976-481e-a84e-cc25d39b0b33"
ROTATION = 10
COMMON_PSSH = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"  # W3C common PSSH: Chromium's ClearKey reads it
TICKS = 90_000


class FlakyProvider:
    """Forwards `POST /{name}/speke/v1` (or `/v2`) to the reference key server unless
    `modes[name]` says `down` (503), `slow` (answers after 8 s) or `no-echo` (answers
    without the X-Speke-Version header); counts the requests and keeps their headers and
    bodies per name."""

    def __init__(self, upstream):
        self.modes, self.requests, self.headers, self.bodies = {}, {}, {}, {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                name = self.path.strip("/").split("/")[0]
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests[name] = outer.requests.get(name, 0) + 1
                outer.headers.setdefault(name, []).append({k.lower(): v for k, v in self.headers.items()})
                outer.bodies.setdefault(name, []).append(body)
                mode = outer.modes.get(name, "up")
                if mode == "slow":
                    time.sleep(8)
                if mode == "down":
                    self.send_response(503)
                    self.end_headers()
                    self.wfile.write(b"key server down for the test")
                    return
                forwarded = {"Content-Type": "application/xml"}
                if self.headers.get("X-Speke-Version"):
                    forwarded["X-Speke-Version"] = self.headers["X-Speke-Version"]
                request = urllib.request.Request(
                    upstream + self.path[len(name) + 1:], data=body, headers=forwarded
                )
                with urllib.request.urlopen(request, timeout=5) as r:
                    answer, version = r.read(), r.headers.get("X-Speke-Version")
                self.send_response(200)
                if version and mode != "no-echo":
                    self.send_header("X-Speke-Version", version)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()


def provider(url, resource="live-1"):
    return {"Url": url, "ResourceId": resource, "RoleArn": "arn:aws:iam::123456789012:role/speke",
            "SystemIds": [AES_128]}


@pytest.fixture(scope="module")
def origin():
    srv = Server(demo=True)
    keys = FlakyProvider(srv.base)
    try:
        mp = srv.mediapackage()
        window = {"SegmentDurationSeconds": 2, "PlaylistWindowSeconds": 40}
        mp.create_origin_endpoint(ChannelId="demo", Id="clear", ManifestName="index", HlsPackage=window)
        mp.create_origin_endpoint(
            ChannelId="demo", Id="aes", ManifestName="index",
            HlsPackage={**window, "Encryption": {
                "EncryptionMethod": "AES_128", "KeyRotationIntervalSeconds": ROTATION,
                "SpekeKeyProvider": provider(f"{keys.url}/aes/speke/v1")}},
        )
        srv.keys = keys
        srv.mp = mp
        yield srv
    finally:
        keys.stop()
        srv.stop()


def media_playlist(origin, endpoint, least=2, within=40):
    """The 360p media playlist of `endpoint` once it lists `least` segments."""
    deadline = time.time() + within
    while time.time() < deadline:
        status, body = get(f"{origin.base}/out/v1/{endpoint}/index_360p-seg.m3u8")
        if status == 200 and body.count(b"#EXTINF") >= least:
            return body.decode()
        time.sleep(0.5)
    raise AssertionError(f"{endpoint}: fewer than {least} segments within {within} s: {status} {body[:300]!r}")


def keyed_segments(text, base):
    """(media sequence number, start ticks, key URI, segment URL) of each segment."""
    playlist = m3u8.loads(text)
    out = []
    for i, s in enumerate(playlist.segments):
        start = int(re.search(r"_(\d+)(?:\.k\d+)?\.ts$", s.uri).group(1))
        uri = s.key.uri if s.key and s.key.method == "AES-128" else None
        out.append((playlist.media_sequence + i, start, uri, f"{base}/{s.uri}"))
    return out


def decrypt(data, key, sequence):
    iv = sequence.to_bytes(16, "big")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def test_encryption_is_echoed_as_given_and_modelled(origin):
    described = origin.mp.describe_origin_endpoint(Id="aes")["HlsPackage"]["Encryption"]
    assert described == {
        "EncryptionMethod": "AES_128", "KeyRotationIntervalSeconds": ROTATION, "RepeatExtXKey": False,
        "SpekeKeyProvider": provider(f"{origin.keys.url}/aes/speke/v1"),
    }


@pytest.mark.parametrize("change, field", [
    ({"ConstantInitializationVector": "0011"}, "constantInitializationVector"),
    ({"SpekeKeyProvider": {**provider("http://k"), "SystemIds": [AES_128, AES_128]}}, "exactly one system id"),
    ({"SpekeKeyProvider": {**provider("http://k"), "SystemIds": ["edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"]}},
     "AES-128 system id"),
    ({"SpekeKeyProvider": {**provider("http://k"), "CertificateArn":
      "arn:aws:acm:us-east-1:123456789012:certificate/abc"}}, "certificateArn is not supported"),
    ({"SpekeKeyProvider": {**provider("http://k"), "RoleArn": "speke"}}, "roleArn"),
])
def test_settings_sluice_cannot_honour_are_refused(origin, change, field):
    encryption = {"SpekeKeyProvider": provider("http://k"), **change}
    with pytest.raises(botocore.exceptions.ClientError) as e:
        origin.mp.create_origin_endpoint(ChannelId="demo", Id="refused", HlsPackage={"Encryption": encryption})
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 422
    assert field in e.value.response["Error"]["Message"]


def test_segments_decrypt_to_the_clear_segments_and_keys_rotate(origin):
    text = media_playlist(origin, "aes", least=8, within=60)
    segments = keyed_segments(text, f"{origin.base}/out/v1/aes")
    lines = [l for l in text.splitlines() if l.startswith("#EXT-X-KEY")]
    assert all(l.startswith("#EXT-X-KEY:METHOD=AES-128,URI=\"http") for l in lines), lines
    assert not any("IV=" in l for l in lines), "the IV is the media sequence number"
    # A key tag where each key period (10 s of media time) begins, and only there.
    tagged = [i for i, line in enumerate(text.splitlines()) if line.startswith("#EXT-X-KEY")]
    periods = [start // (ROTATION * TICKS) for _, start, _, _ in segments]
    changes = 1 + sum(1 for a, b in zip(periods, periods[1:]) if a != b)
    assert len(tagged) == changes >= 2, (periods, lines)
    uris = [uri for _, _, uri, _ in segments]
    assert len(set(uris)) == changes
    for (sequence, start, uri, url), period in zip(segments, periods):
        status, key = get(uri)
        assert status == 200 and len(key) == 16
        status, encrypted = get(url)
        assert status == 200
        status, clear = get(f"{origin.base}/out/v1/clear/index_360p-seg_{start}.ts")
        assert status == 200
        assert encrypted != clear and len(encrypted) == (len(clear) // 16 + 1) * 16
        assert decrypt(encrypted, key, sequence) == clear, f"segment {sequence} of period {period}"
    assert origin.keys.requests["aes"] >= changes


def framemd5(playlist_path):
    out = subprocess.run(
        ["ffmpeg", "-v", "error", "-allowed_extensions", "ALL",
         "-protocol_whitelist", "file,http,tcp,crypto,data", "-i", str(playlist_path),
         "-map", "0:v", "-f", "framemd5", "-"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return [l.split(",")[-1].strip() for l in out.stdout.splitlines() if not l.startswith("#")]


def test_ffmpeg_decodes_the_encrypted_segments_to_the_clear_frames(origin, tmp_path):
    text = media_playlist(origin, "aes", least=6)
    # The encrypted playlist as it is, ended, with absolute URIs; the clear one lists the
    # same segments from the clear endpoint.
    base = f"{origin.base}/out/v1"
    encrypted = re.sub(r"^(index_.*\.ts)$", rf"{base}/aes/\1", text, flags=re.M) + "#EXT-X-ENDLIST\n"
    clear = "\n".join(
        l for l in re.sub(r"^(index_.*)\.k\d+\.ts$", rf"{base}/clear/\1.ts", text, flags=re.M).splitlines()
        if not l.startswith("#EXT-X-KEY")
    ) + "\n#EXT-X-ENDLIST\n"
    (tmp_path / "aes.m3u8").write_text(encrypted)
    (tmp_path / "clear.m3u8").write_text(clear)
    frames = framemd5(tmp_path / "aes.m3u8")
    assert len(frames) >= 6 * 2 * 24 // 2, len(frames)
    assert frames == framemd5(tmp_path / "clear.m3u8")


def test_hlsjs_plays_through_three_key_changes(origin):
    played = play("hlsjs", f"{origin.base}/out/v1/aes/index.m3u8", min_seconds=3 * ROTATION + 4)
    keys = played["info"]["decryptedKeys"]
    assert len(keys) >= 4, played
    assert all("/keys/live-1/" in k for k in keys), keys


def segments_after(origin, endpoint, period, what):
    """The keyed segments of `endpoint`'s playlist once it lists one of a key period after
    `period`, and those segments; fails after 30 s."""
    deadline = time.time() + 3 * ROTATION
    while time.time() < deadline:
        segments = keyed_segments(media_playlist(origin, endpoint), f"{origin.base}/out/v1/{endpoint}")
        later = [s for s in segments if s[1] // (ROTATION * TICKS) > period]
        if later:
            return segments, later
        time.sleep(1)
    raise AssertionError(f"no segment of {what} within 30 s")


def test_a_provider_that_fails_after_the_first_key_leaves_the_last_key(origin):
    mp = origin.mp
    mp.create_origin_endpoint(
        ChannelId="demo", Id="fragile", ManifestName="index",
        HlsPackage={"SegmentDurationSeconds": 2, "PlaylistWindowSeconds": 40, "Encryption": {
            "KeyRotationIntervalSeconds": ROTATION,
            "SpekeKeyProvider": provider(f"{origin.keys.url}/fragile/speke/v1", "fragile")}},
    )
    first = keyed_segments(media_playlist(origin, "fragile"), f"{origin.base}/out/v1/fragile")
    origin.keys.modes["fragile"] = "down"
    last_key = first[-1][2]
    last_period = first[-1][1] // (ROTATION * TICKS)
    _, later = segments_after(origin, "fragile", last_period, "a later key period")
    assert {s[2] for s in later} == {last_key}, "later periods use the last key obtained"
    assert all(s[3].endswith(f".k{last_period}.ts") for s in later), "named by the key they use"
    status, key = get(last_key)
    assert status == 200
    for sequence, start, _, url in later:
        status, encrypted = get(url)
        assert status == 200
        status, clear = get(f"{origin.base}/out/v1/clear/index_360p-seg_{start}.ts")
        assert decrypt(encrypted, key, sequence) == clear
    # Back up: the segments listed with the stand-in keep their names and key; a later
    # period gets its own key.
    origin.keys.modes["fragile"] = "up"
    stood_in = {s[3] for s in later}
    newest_stand_in = max(s[1] for s in later) // (ROTATION * TICKS)
    segments, fresh = segments_after(origin, "fragile", newest_stand_in, "a new key period after the provider's return")
    assert all(s[2] != last_key for s in fresh)
    listed = {s[3] for s in segments}
    assert all(url in listed for url in stood_in if int(re.search(r"_(\d+)\.k", url).group(1)) >= segments[0][1])
    errors = [e for e in origin.logs() if e.get("fields", {}).get("message") == "KeyProviderError"]
    assert any(e["fields"].get("endpoint") == "fragile" for e in errors), errors[-3:]


def test_a_provider_down_from_the_start_gives_404_never_clear_bytes(origin):
    origin.keys.modes["never"] = "down"
    origin.mp.create_origin_endpoint(
        ChannelId="demo", Id="never", ManifestName="index",
        HlsPackage={"SegmentDurationSeconds": 2, "Encryption": {
            "SpekeKeyProvider": provider(f"{origin.keys.url}/never/speke/v1", "never")}},
    )
    clear = keyed_segments(media_playlist(origin, "clear"), "")
    status, body = get(f"{origin.base}/out/v1/never/index_360p-seg.m3u8")
    assert status == 404 and b"no content key" in body, body
    status, body = get(f"{origin.base}/out/v1/never/index_360p-seg_{clear[-1][1]}.k0.ts")
    assert status == 503 and b"cannot be obtained" in body, body[:200]
    status, body = get(f"{origin.base}/out/v1/never/index_360p-seg_{clear[-1][1]}.ts")
    assert status == 404 and b"is encrypted" in body, body[:200]
    assert origin.keys.requests["never"] >= 1


def test_a_slow_provider_is_waited_for_a_bounded_time(origin):
    origin.keys.modes["slow"] = "slow"
    origin.mp.create_origin_endpoint(
        ChannelId="demo", Id="slow", ManifestName="index",
        HlsPackage={"SegmentDurationSeconds": 2, "Encryption": {
            "SpekeKeyProvider": provider(f"{origin.keys.url}/slow/speke/v1", "slow")}},
    )
    media_playlist(origin, "clear")
    started = time.time()
    status, body = get(f"{origin.base}/out/v1/slow/index_360p-seg.m3u8")
    waited = time.time() - started
    assert status == 404 and b"no content key" in body, body
    assert b"127.0.0.1" not in body, "viewers are not told the provider's address"
    assert waited < 5, waited
    reasons = [e["fields"].get("error", "") for e in origin.logs()
               if e.get("fields", {}).get("message") == "KeyProviderError" and e["fields"].get("endpoint") == "slow"]
    assert any("did not answer within 2000 ms" in r for r in reasons), reasons


def playlists(url):
    """The playlist at `url` and every media playlist it leads to: {URL path: text}."""
    status, body = get(url)
    assert status == 200, (url, status, body[:300])
    playlist = m3u8.loads(body.decode(), uri=url)
    out = {urllib.parse.urlsplit(url).path: body.decode()}
    for variant in [*playlist.playlists, *(m for m in playlist.media if m.uri)]:
        out.update(playlists(urllib.parse.urljoin(url, variant.uri)))
    return out


def segment_paths(base, texts):
    """The URL paths of the init and media segments that playlists `texts` list."""
    out = set()
    for path, text in texts.items():
        for segment in m3u8.loads(text, uri=base + path).segments:
            for uri in [segment.uri] + ([segment.init_section.uri] if segment.init_section else []):
                out.add(urllib.parse.urlsplit(urllib.parse.urljoin(base + path, uri)).path)
    return out


def test_instances_on_one_store_serve_identical_bytes_with_keys_asked_for_by_an_assumed_role(moto):
    """Two sluice-local processes on one S3 + DynamoDB (moto), as two Lambda instances:
    the same playlists and byte-identical segments from each (AES-128 and SAMPLE-AES HLS
    with key rotation, CMAF cbcs with key rotation and CMAF cenc), each having asked the
    key provider itself, with requests SigV4-signed for execute-api by credentials from STS
    AssumeRole of the endpoint's roleArn (moto's STS)."""
    env = aws_env(moto, f"enc-{os.getpid()}")
    one = Server(args=["--create-aws-resources"], env=env, demo=True)
    two = Server(env=env)
    keys = FlakyProvider(one.base)
    try:
        one.mp = one.mediapackage()
        window = {"SegmentDurationSeconds": 2, "PlaylistWindowSeconds": 20}
        for endpoint, method in (("shared", "AES_128"), ("shared-sa", "SAMPLE_AES")):
            one.mp.create_origin_endpoint(ChannelId="demo", Id=endpoint, ManifestName="index", HlsPackage={
                **window, "Encryption": {"EncryptionMethod": method, "KeyRotationIntervalSeconds": ROTATION,
                                         "SpekeKeyProvider": provider(f"{keys.url}/signed/speke/v1", endpoint)}})
        for endpoint, method, rotation in (("shared-cbcs", "SAMPLE_AES", ROTATION), ("shared-cenc", "AES_CTR", 0)):
            speke = {**provider(f"{keys.url}/signed/speke/v1", endpoint), "SystemIds": [COMMON_PSSH]}
            one.mp.create_origin_endpoint(ChannelId="demo", Id=endpoint, CmafPackage={
                "SegmentDurationSeconds": 2, "SegmentPrefix": "seg",
                "HlsManifests": [{"Id": "hls", "ManifestName": "index", "PlaylistWindowSeconds": 20}],
                "Encryption": {"EncryptionMethod": method, "KeyRotationIntervalSeconds": rotation,
                               "SpekeKeyProvider": speke}})
        media_playlist(one, "shared", least=6, within=60)
        manifests = {"shared": "index.m3u8", "shared-sa": "index.m3u8",
                     "shared-cbcs": "hls/index.m3u8", "shared-cenc": "hls/index.m3u8"}
        crawled = {}
        for endpoint, manifest in manifests.items():
            for _ in range(10):
                # A segment may be published between the two requests: ask again.
                texts = [playlists(f"{srv.base}/out/v1/{endpoint}/{manifest}") for srv in (one, two)]
                if texts[0] == texts[1]:
                    break
            assert texts[0] == texts[1], endpoint
            paths = segment_paths(one.base, texts[0])
            assert sum(path.endswith((".ts", ".mp4")) for path in paths) >= 6, (endpoint, paths)
            for path in sorted(paths):
                bodies = [get(srv.base + path) for srv in (one, two)]
                assert bodies[0][0] == 200 and bodies[0] == bodies[1], (path, bodies[0][0], bodies[1][0])
            crawled[endpoint] = paths
        segments = keyed_segments(media_playlist(one, "shared"), "")
        assert len({uri for _, _, uri, _ in segments}) >= 2, "two key periods at least"
        periods = {re.search(r"\.k(\d+)\.mp4$", path).group(1) for path in crawled["shared-cbcs"] if ".k" in path}
    finally:
        keys.stop()
        two.stop()
        one.stop()
    assert len(periods) >= 2, "CMAF cbcs: two key periods at least"
    signed = keys.headers["signed"]
    assert len(signed) >= 4, "each instance asked for each period"
    for headers in signed:
        credential = re.search(r"Credential=([^/]+)/\d{8}/us-east-1/execute-api/aws4_request", headers["authorization"])
        assert credential, headers["authorization"]
        assert credential.group(1).startswith("ASIA"), "temporary credentials from AssumeRole"
        assert headers["x-amz-security-token"] and headers["x-amz-date"]
