"""Ingest speaks HTTP/1.1 the way encoders use it: keep-alive connections carrying many
uploads, POST as well as PUT, chunked bodies, Digest authentication."""

import base64
import http.client
import subprocess

from conftest import ROOT

SEGMENTS = [(ROOT / "infra" / "local" / "demo" / "180p" / f"seg_{i:05d}.ts").read_bytes() for i in range(3)]


def setup(server):
    mp = server.mediapackage()
    ingest = mp.create_channel(Id="proto")["HlsIngest"]["IngestEndpoints"][1]
    mp.create_origin_endpoint(ChannelId="proto", Id="proto-hls", HlsPackage={"SegmentDurationSeconds": 2})
    path = ingest["Url"].split("://", 1)[1].split("/", 1)[1]
    folder = "/" + path[: -len("channel")]
    token = base64.b64encode(f"{ingest['Username']}:{ingest['Password']}".encode()).decode()
    return ingest, folder, {"Authorization": f"Basic {token}"}


def test_keep_alive_post_and_chunked_uploads(local_server):
    ingest, folder, auth = setup(local_server)
    host = local_server.base.split("://", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=10)
    # PUT with Content-Length, POST, then a chunked PUT, all on one connection.
    conn.request("PUT", folder + "low/seg_00000.ts", body=SEGMENTS[0], headers=auth)
    first = conn.getresponse()
    first.read()
    sock = conn.sock
    conn.request("POST", folder + "low/seg_00001.ts", body=SEGMENTS[1], headers=auth)
    second = conn.getresponse()
    second.read()
    chunks = iter([SEGMENTS[2][:50000], SEGMENTS[2][50000:]])
    conn.request("PUT", folder + "low/seg_00002.ts", body=chunks, headers={**auth, "Transfer-Encoding": "chunked"}, encode_chunked=True)
    third = conn.getresponse()
    third.read()
    assert (first.status, second.status, third.status) == (201, 201, 201)
    assert conn.sock is sock, "the server closed a keep-alive connection between uploads"
    conn.close()
    assert local_server.indexed_paths("proto") == ["low/seg_00000.ts", "low/seg_00001.ts", "low/seg_00002.ts"]


def test_digest_authentication_with_curl(local_server):
    ingest, folder, _ = setup(local_server)
    url = local_server.base + folder + "low/seg_00000.ts"
    segment = ROOT / "infra" / "local" / "demo" / "180p" / "seg_00000.ts"
    ok = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--digest", "-u", f"{ingest['Username']}:{ingest['Password']}", "-T", str(segment), url],
        capture_output=True, text=True, timeout=30,
    )
    assert ok.stdout == "201"
    bad = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--digest", "-u", f"{ingest['Username']}:nope", "-T", str(segment), url.replace("00000", "00001")],
        capture_output=True, text=True, timeout=30,
    )
    assert bad.stdout == "401"
    assert local_server.indexed_paths("proto") == ["low/seg_00000.ts"]
