"""Bad ingest requests get the right 4xx with a message a person can act on, and
nothing from them is stored or indexed."""

import base64
import pathlib
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, Server

SEGMENT = (ROOT / "infra" / "local" / "demo" / "360p" / "seg_00000.ts").read_bytes()


def request(method, url, body=None, auth=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode(errors="replace")


@pytest.fixture
def channel(local_server):
    mp = local_server.mediapackage()
    ch = mp.create_channel(Id="errs")
    mp.create_origin_endpoint(ChannelId="errs", Id="errs-hls", HlsPackage={"SegmentDurationSeconds": 2})
    ingest = ch["HlsIngest"]["IngestEndpoints"][0]
    folder = ingest["Url"][: -len("channel")]
    return local_server, ingest, folder


def test_wrong_credentials_get_401_and_nothing_is_stored(channel):
    server, ingest, folder = channel
    status, headers, body = request("PUT", folder + "360p/seg_00000.ts", SEGMENT, auth=(ingest["Username"], "wrong"))
    assert status == 401
    challenges = headers.get_all("WWW-Authenticate")
    assert any(c.startswith("Digest ") and 'qop="auth"' in c for c in challenges), challenges
    assert "wrong ingest credentials" in body
    status, _, _ = request("PUT", folder + "360p/seg_00000.ts", SEGMENT)
    assert status == 401
    # The other ingest endpoint's password does not open this one.
    status, _, _ = request("PUT", folder + "360p/seg_00000.ts", SEGMENT, auth=(ingest["Username"], "0" * 32))
    assert status == 401
    assert server.indexed_paths("errs") == []
    status, _, body = request("GET", server.base + "/out/v1/errs-hls/index.m3u8")
    assert status == 404 and "not received any segments" in body
    data = pathlib.Path(server.dir.name) / "data" / "objects"
    assert not list(data.rglob("*.ts")), "a rejected upload left bytes behind"
    # The right credentials work, so the rejection was about the credentials.
    status, _, _ = request("PUT", folder + "360p/seg_00000.ts", SEGMENT, auth=(ingest["Username"], ingest["Password"]))
    assert status == 201
    assert server.indexed_paths("errs") == ["360p/seg_00000.ts"]


def test_unknown_channel_and_ingest_endpoint_are_404(channel):
    server, ingest, _ = channel
    status, _, body = request("PUT", f"{server.base}/in/v2/nope/{ingest['Id']}/seg_00000.ts", SEGMENT)
    assert status == 404 and "no channel" in body
    status, _, body = request("PUT", f"{server.base}/in/v2/errs/{'f' * 32}/seg_00000.ts", SEGMENT)
    assert status == 404 and "no ingest endpoint" in body


def test_body_over_the_limit_is_413_with_the_limit_in_the_message():
    server = Server(args=["--max-segment-bytes", "100000"])
    try:
        mp = server.mediapackage()
        ingest = mp.create_channel(Id="big")["HlsIngest"]["IngestEndpoints"][0]
        folder = ingest["Url"][: -len("channel")]
        creds = (ingest["Username"], ingest["Password"])
        assert len(SEGMENT) > 100000
        status, _, body = request("PUT", folder + "360p/seg_00000.ts", SEGMENT, auth=creds)
        assert status == 413 and "100000 bytes" in body, body
        # Chunked upload without Content-Length: the limit holds while streaming.
        chunks = (SEGMENT[i : i + 16384] for i in range(0, len(SEGMENT), 16384))
        req = urllib.request.Request(folder + "360p/seg_00001.ts", data=chunks, method="PUT")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode())
        req.add_header("Transfer-Encoding", "chunked")
        try:
            urllib.request.urlopen(req, timeout=10)
            status = 200
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read().decode()
        except (ConnectionError, urllib.error.URLError):
            status, body = 413, "100000 bytes (connection closed after the response)"
        assert status == 413 and "100000 bytes" in body
        assert server.indexed_paths("big") == []
    finally:
        server.stop()


def test_expect_100_continue_without_credentials_gets_401_and_no_100(channel):
    server, ingest, folder = channel
    path = folder[len(server.base):] + "360p/seg_00000.ts"
    host, port = server.base[len("http://"):].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(
            (
                f"PUT {path} HTTP/1.1\r\nHost: {host}:{port}\r\nTransfer-Encoding: chunked\r\n"
                "Expect: 100-continue\r\nContent-Type: video/mp2t\r\n\r\n"
            ).encode()
        )
        s.settimeout(5)
        first = s.recv(4096).decode(errors="replace")
    status_line = first.split("\r\n", 1)[0]
    assert status_line == "HTTP/1.1 401 Unauthorized", first
    assert "100 Continue" not in first
    assert "www-authenticate: digest" in first.lower()


def test_webdav_housekeeping_methods_are_answered_harmlessly(channel):
    server, ingest, folder = channel
    creds = (ingest["Username"], ingest["Password"])
    assert request("DELETE", folder + "360p/seg_00000.ts", auth=creds)[0] == 204
    assert request("MKCOL", folder + "360p/", auth=creds)[0] == 201
    status, headers, _ = request("OPTIONS", folder + "channel.m3u8", auth=creds)
    assert status == 200 and "PUT" in headers["Allow"]


def test_malformed_uploads_are_400_and_not_indexed(channel):
    server, ingest, folder = channel
    creds = (ingest["Username"], ingest["Password"])
    status, _, body = request("PUT", folder + "360p/seg_00009.ts", b"#EXTM3U\nnot a segment", auth=creds)
    assert status == 400 and "not an MPEG transport stream" in body
    status, _, body = request("PUT", folder + "360p/index.m3u8", b"\x00\x01garbage", auth=creds)
    assert status == 400 and "not a valid HLS playlist" in body
    # WebVTT segments: SRT sent as .vtt, a cue time WebVTT does not allow, a cue ending
    # before it starts, a broken X-TIMESTAMP-MAP.
    for vtt, reason in ((b"1\n00:00:01,000 --> 00:00:02,000\nsrt\n", "WEBVTT signature"),
                        (b"WEBVTT\n\n00:01.5 --> 00:02.000\nx\n", "not hh:mm:ss.ttt"),
                        (b"WEBVTT\n\n00:03.000 --> 00:02.000\nx\n", "ends before it starts"),
                        (b"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:abc,LOCAL:00:00:00.000\n\n", "X-TIMESTAMP-MAP")):
        status, _, body = request("PUT", folder + "subs/index0.vtt", vtt, auth=creds)
        assert status == 400 and reason in body and "subs/index0.vtt" in body, (vtt, status, body)
    # Within the 256 KiB a WebVTT segment may have, but too many cues to index as one item
    # (DynamoDB's 400 KB): refused, not retried forever.
    cue = lambda n: b"00:%02d.%03d --> 00:%02d.%03d\n\"\n\n" % (n // 1000, n % 1000, n // 1000, n % 1000)  # noqa: E731
    many = b"WEBVTT\n\n" + b"".join(cue(n) for n in range(9500))
    assert len(many) < 256 * 1024
    status, _, body = request("PUT", folder + "subs/index1.vtt", many, auth=creds)
    assert status == 400 and "bytes to index" in body, (status, body[:300])
    for escape in ("../escape.ts", "360p/../../escape.ts", "%2e%2e/escape.ts", "360p/%2E%2E/%2e%2e/escape.ts",
                   "..%2fescape.ts", "360p/.%2e/x.ts"):
        status, _, body = request("PUT", folder + escape, SEGMENT, auth=creds)
        assert status == 400 and "not a plain" in body, (escape, status, body)
    assert server.indexed_paths("errs") == []


def test_bad_fmp4_uploads_are_4xx_and_the_channel_goes_on(channel, tmp_path):
    """fMP4 ingest: a broken init segment is 400, a media segment with no init segment to
    read it by is 409, a truncated media segment is 400; each with a message, nothing
    indexed, and the next good segment is accepted."""
    server, ingest, folder = channel
    creds = (ingest["Username"], ingest["Password"])
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
         "-t", "4", "-c:v", "libx264", "-g", "50", "-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "2",
         "-hls_playlist_type", "vod", str(tmp_path / "index.m3u8")],
        check=True, timeout=60,
    )
    init = (tmp_path / "init.mp4").read_bytes()
    media = (tmp_path / "index0.m4s").read_bytes()

    status, _, body = request("PUT", folder + "v/seg_00001.m4s", media, auth=creds)
    assert status == 409 and "before any init segment" in body, (status, body)
    status, _, body = request("PUT", folder + "v/init.mp4", init[: len(init) // 2], auth=creds)
    assert status == 400 and "init segment v/init.mp4" in body, (status, body)
    status, _, body = request("PUT", folder + "v/init.mp4", init, auth=creds)
    assert status == 201, body
    status, _, body = request("PUT", folder + "v/seg_00001.m4s", media[: len(media) // 2], auth=creds)
    assert status == 400 and "fMP4 segment v/seg_00001.m4s" in body, (status, body)
    assert server.indexed_paths("errs") == []
    status, _, body = request("PUT", folder + "v/seg_00001.m4s", media, auth=creds)
    assert status == 201, body
    assert server.indexed_paths("errs") == ["v/seg_00001.m4s"]


def test_playlist_before_its_segment_does_no_harm(channel):
    server, ingest, folder = channel
    creds = (ingest["Username"], ingest["Password"])
    playlist = b"#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg_00000.ts\n"
    assert request("PUT", folder + "360p/index.m3u8", playlist, auth=creds)[0] == 201
    assert request("GET", server.base + "/out/v1/errs-hls/index.m3u8")[0] == 404
    assert request("PUT", folder + "360p/seg_00000.ts", SEGMENT, auth=creds)[0] == 201
    # Listed within one 2 s target (the wait for the rest of a ladder without a master).
    deadline = time.time() + 3
    while (answer := request("GET", server.base + "/out/v1/errs-hls/index.m3u8"))[0] != 200:
        assert answer[0] == 404 and "ladder is still arriving" in answer[2], answer
        assert time.time() < deadline, answer
        time.sleep(0.2)
    assert "index_360p-seg.m3u8" in answer[2], answer


def ts_packets(data):
    return [data[i : i + 188] for i in range(0, len(data), 188)]


def pid(packet):
    return ((packet[1] & 0x1F) << 8) | packet[2]


def pmt_pid(data):
    pat = next(p for p in ts_packets(data) if pid(p) == 0)
    section = pat[5 + pat[4]:]  # after the pointer field
    return ((section[10] & 0x1F) << 8) | section[11]


def with_pts_moved(data, stream_pid, seconds):
    """The segment with the PTS (and DTS) of `stream_pid`'s last PES moved by `seconds`."""
    packets = [bytearray(p) for p in ts_packets(data)]
    starts = [p for p in packets if pid(p) == stream_pid and p[1] & 0x40]
    packet = starts[-1]
    offset = 4 + (1 + packet[4] if packet[3] & 0x20 else 0)
    pes = offset
    assert packet[pes:pes + 3] == b"\x00\x00\x01"
    flags = packet[pes + 7] >> 6
    for field in ([9] if flags == 2 else [9, 14] if flags == 3 else []):
        at = pes + field
        b = packet[at:at + 5]
        value = ((b[0] >> 1) & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1
        value = (value + int(seconds * 90000)) % (1 << 33)
        packet[at] = (b[0] & 0xF1) | ((value >> 29) & 0x0E)
        packet[at + 1] = (value >> 22) & 0xFF
        packet[at + 2] = ((value >> 14) & 0xFE) | 1
        packet[at + 3] = (value >> 7) & 0xFF
        packet[at + 4] = ((value << 1) & 0xFE) | 1
    return b"".join(bytes(p) for p in packets)


def test_more_bad_input_is_4xx_with_a_message_and_the_channel_goes_on(channel):
    server, ingest, folder = channel
    creds = (ingest["Username"], ingest["Password"])
    pmt = pmt_pid(SEGMENT)

    # No PAT/PMT: nothing says which PID is which stream.
    no_psi = b"".join(p for p in ts_packets(SEGMENT) if pid(p) not in (0, pmt))
    status, _, body = request("PUT", folder + "360p/seg_00001.ts", no_psi, auth=creds)
    assert status == 400 and "PAT" in body, (status, body)

    # Truncated to a few bytes, and cut mid-packet.
    for cut in (SEGMENT[:100], SEGMENT[: 188 * 3 + 50]):
        status, _, body = request("PUT", folder + "360p/seg_00002.ts", cut, auth=creds)
        assert status == 400, (len(cut), status, body)

    # Absurd timestamps: the last video frame ten hours after the first.
    absurd = with_pts_moved(SEGMENT, 0x100, 36000)
    status, _, body = request("PUT", folder + "360p/seg_00003.ts", absurd, auth=creds)
    assert status == 400 and "timestamps" in body, (status, body)

    # Malformed Authorization headers are 401 with a challenge, never a 400 or 5xx.
    for header in ("Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic",
                   'Digest username="x', "Digest " + "a," * 4000, "Bearer abc", "", "Digest realm=\"\u00e9\""):
        req = urllib.request.Request(folder + "360p/seg_00004.ts", data=SEGMENT, method="PUT")
        req.add_header("Authorization", header)
        try:
            urllib.request.urlopen(req, timeout=10)
            status = 200
        except urllib.error.HTTPError as e:
            status, body, challenge = e.code, e.read().decode(), e.headers.get("WWW-Authenticate")
        assert status == 401 and "authentication" in body or "credentials" in body, (header[:40], status, body)
        assert challenge, header

    # A junk playlist and a playlist over the body limit.
    status, _, body = request("PUT", folder + "360p/index.m3u8", b"#EXTM3U\n#EXTINF:abc\n\x00", auth=creds)
    assert status == 400 and "playlist" in body, (status, body)
    # 40 MB declared (above sluice-local's 32 MiB default): refused from the headers,
    # before the body is read.
    path = folder[len(server.base):] + "360p/index.m3u8"
    host, port = server.base[len("http://"):].split(":")
    token = base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(f"PUT {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {token}\r\n"
                  f"Content-Length: {40_000_000}\r\n\r\n".encode() + b"#EXTM3U\n" + b"#EXTINF:2.0,\nseg.ts\n" * 1000)
        answer = s.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413") and "33554432 bytes" in answer, answer
    assert "40000000 bytes" in answer and "-hls_time" in answer, answer

    assert server.indexed_paths("errs") == []
    # The channel is unaffected: the good segment goes in.
    status, _, _ = request("PUT", folder + "360p/seg_00000.ts", SEGMENT, auth=creds)
    assert status == 201
    assert server.indexed_paths("errs") == ["360p/seg_00000.ts"]
