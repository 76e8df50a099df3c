"""Edge hardening: text logs escape control characters from client input (no forged
lines, no terminal escapes); the local store's data folder and database are owner-only;
control credentials can come from the environment or a file instead of argv; ingest names
the store cannot hold are a 400 naming the problem (not a 503 to retry); ingress access
logs do not take clientIp from a client's X-Forwarded-For unless configured to."""

import base64
import http.client
import json
import os
import stat
import time

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import ROOT, Server

KEY, SECRET = "AKIDEDGE", "edge/s3cret+value"
SEGMENT = (ROOT / "infra" / "local" / "demo" / "180p" / "seg_00000.ts").read_bytes()


def send(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(server.base.split("://", 1)[1], timeout=10)
    conn.putrequest(method, path, skip_accept_encoding=True)
    for name, value in (headers or {}).items():
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, response.headers, data


@pytest.fixture
def started():
    servers = []

    def start(*args, **kwargs):
        servers.append(Server(*args, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def channel(server, channel_id):
    """Creates a channel: (ingest folder path, Basic Authorization header)."""
    ingest = server.mediapackage().create_channel(Id=channel_id)["HlsIngest"]["IngestEndpoints"][0]
    folder = "/" + ingest["Url"].split("://", 1)[1].split("/", 1)[1][: -len("channel")]
    token = base64.b64encode(f"{ingest['Username']}:{ingest['Password']}".encode()).decode()
    return folder, {"Authorization": f"Basic {token}"}


def test_text_logs_escape_control_characters(started):
    server = started(env={"SLUICE_LOG_FORMAT": "text"})
    folder, auth = channel(server, "logs")
    forged = "a%0Afake%1B[31m.ts"
    assert send(server, "PUT", f"/in/v2/x/y/{forged}", SEGMENT)[0] == 404  # unauthenticated, no channel
    assert send(server, "PUT", folder + forged, SEGMENT)[0] == 401
    assert send(server, "PUT", folder + forged, SEGMENT, auth)[0] == 400
    time.sleep(0.5)
    raw = server.log_path.read_bytes()
    assert b"\x1b" not in raw, "a terminal escape reached the log"
    lines = raw.decode().splitlines()
    assert not [l for l in lines if l.startswith("fake")], "a forged log line"
    assert "a\\nfake\\u{1b}[31m.ts" in raw.decode(), "the request path is logged, escaped"
    assert not any(l.lstrip().startswith("{") for l in lines), "text, not JSON"


def test_data_folder_and_database_are_owner_only(started):
    server = started()
    data = os.path.join(server.dir.name, "data")
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
    assert mode(data) == 0o700
    assert mode(os.path.join(data, "objects")) == 0o700
    assert mode(os.path.join(data, "index.redb")) == 0o600


def signed(server, secret):
    return boto3.client("mediapackage", endpoint_url=server.base, region_name="us-east-1",
                        aws_access_key_id=KEY, aws_secret_access_key=secret)


def check_credentials_required(server):
    assert signed(server, SECRET).create_channel(Id="signed")["Id"] == "signed"
    with pytest.raises(ClientError) as info:
        signed(server, "wrong").list_channels()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    cmdline = open(f"/proc/{server.proc.pid}/cmdline", "rb").read()
    assert SECRET.encode() not in cmdline, "the secret shows in ps"


def test_control_credentials_from_the_environment(started):
    check_credentials_required(started(env={"SLUICE_CONTROL_CREDENTIALS": f"{KEY}:{SECRET}"}))


def test_control_credentials_from_a_file(started, tmp_path):
    path = tmp_path / "credentials"
    path.write_text(f"  {KEY}:{SECRET}\n")
    check_credentials_required(started(args=["--control-credentials-file", str(path)]))


def test_unstorable_ingest_names_are_400(started):
    server = started()
    folder, auth = channel(server, "names")
    cases = [
        ("v/a%00b.ts", "control character"),
        ("v/a%0Db.ts", "control character"),
        ("v/" + "x" * 300 + ".ts", "longer than 255 bytes"),
        ("/".join(["abcdefgh"] * 80) + "/x.ts", "bytes long"),
    ]
    for path, problem in cases:
        status, headers, body = send(server, "PUT", folder + path, SEGMENT, auth)
        assert status == 400, (path, status, body)
        assert problem in body.decode(), body
    assert send(server, "PUT", folder + "v/seg_00000.ts", SEGMENT, auth)[0] == 201
    assert server.indexed_paths("names") == ["v/seg_00000.ts"]


def test_ingress_client_ip_ignores_forwarded_for_by_default(started):
    server = started()
    folder, auth = channel(server, "xff")
    server.mediapackage().configure_logs(Id="xff", IngressAccessLogs={"LogGroupName": "/aws/MediaPackage/Ingress"})
    status, _, _ = send(server, "PUT", folder + "v/seg_00000.ts", SEGMENT, {**auth, "X-Forwarded-For": "203.0.113.9"})
    assert status == 201
    deadline = time.time() + 5
    lines = []
    while time.time() < deadline and not lines:
        time.sleep(0.2)
        lines = [json.loads(l) for l in server.out_path.read_text().splitlines()
                 if l.startswith("{") and '"logGroupName"' in l]
    assert lines, "no ingress access log"
    assert [l["clientIp"] for l in lines] == ["127.0.0.1"]


def test_missing_asset_names_no_local_path(started):
    server = started()
    status, _, body = send(server, "GET", "/assets/missing.js")
    assert status == 404
    assert b"missing.js" in body and str(ROOT).encode() not in body and b"/assets" not in body.replace(b"--assets-dir", b"")
