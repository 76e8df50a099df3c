"""Auth and edge hardening: the control API takes only JSON bodies (415 otherwise) and,
served directly by sluice-local, only requests whose Host names this server (403, against
DNS rebinding); SigV4 signatures must sign `host` and be scoped to mediapackage or
execute-api in the configured region; an ingest Digest response is bound to the URL it
was computed for and must use qop=auth. ffmpeg's Digest still authenticates."""

import hashlib
import http.client
import json
import os
import re
import subprocess
import time
import urllib.parse

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ROOT

KEY, SECRET = "AKIDHARDEN", "h4rden/secret"
SEGMENTS = [(ROOT / "infra" / "local" / "demo" / "180p" / f"seg_{i:05d}.ts").read_bytes() for i in range(2)]


def send(server, method, path, body=None, headers=None, host=None):
    """One request on a fresh connection; `host` replaces the Host header."""
    conn = http.client.HTTPConnection(server.base.split("://", 1)[1], timeout=10)
    conn.putrequest(method, path, skip_host=host is not None, skip_accept_encoding=True)
    if host is not None:
        conn.putheader("Host", host)
    for name, value in (headers or {}).items():
        conn.putheader(name, value)
    if body is not None:
        conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, response.headers, data


def test_control_refuses_non_json_bodies_and_creates_nothing(server):
    mp = server.mediapackage()
    body = json.dumps({"id": "plain"}).encode()
    for content_type in ("text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded"):
        status, headers, data = send(server, "POST", "/channels", body, {"Content-Type": content_type})
        assert status == 415, data
        assert headers["x-amzn-ErrorType"] == "UnsupportedMediaTypeException"
        assert "application/json" in json.loads(data)["message"]
    # A browser's cross-site "simple request" without a Content-Type is refused too.
    status, _, data = send(server, "POST", "/channels", body, {"Origin": "http://evil.example"})
    assert status == 415, data
    assert mp.list_channels()["Channels"] == []
    with pytest.raises(ClientError) as info:
        mp.describe_channel(Id="plain")
    assert info.value.response["Error"]["Code"] == "NotFoundException"
    # JSON (as botocore sends it), and GET/DELETE without body or Content-Type, work.
    status, _, data = send(server, "POST", "/channels", body, {"Content-Type": "application/json"})
    assert status == 200, data
    assert send(server, "GET", "/channels/plain")[0] == 200
    assert send(server, "DELETE", "/channels/plain")[0] == 202
    assert mp.create_channel(Id="boto")["Id"] == "boto"


def test_control_refuses_a_foreign_host(local_server):
    port = local_server.base.rsplit(":", 1)[1]
    status, headers, data = send(local_server, "GET", "/channels", host=f"evil.example:{port}")
    assert status == 403, data
    assert headers["x-amzn-ErrorType"] == "ForbiddenException"
    message = json.loads(data)["message"]
    assert "evil.example" in message and "127.0.0.1" in message and "localhost" in message, message
    status, _, data = send(local_server, "POST", "/channels", b'{"id":"rebound"}',
                           {"Content-Type": "application/json"}, host="evil.example")
    assert status == 403, data
    assert local_server.mediapackage().list_channels()["Channels"] == []
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "[::1]:1234", "LOCALHOST"):
        assert send(local_server, "GET", "/channels", host=host)[0] == 200, host


def test_host_from_base_url_is_accepted(make_server):
    server = make_server(["--base-url", "http://media.example.test:9999"])
    assert send(server, "GET", "/channels", host="media.example.test")[0] == 200
    status, _, data = send(server, "GET", "/channels", host="other.example.test")
    assert status == 403 and "media.example.test" in json.loads(data)["message"], data


def client(server, region):
    return boto3.client("mediapackage", endpoint_url=server.base, region_name=region,
                        aws_access_key_id=KEY, aws_secret_access_key=SECRET)


def test_sigv4_region_service_and_signed_host(make_server):
    server = make_server(["--control-credentials", f"{KEY}:{SECRET}", "--region", "eu-west-3"])
    assert client(server, "eu-west-3").create_channel(Id="sig")["Arn"].startswith("arn:aws:mediapackage:eu-west-3:")
    with pytest.raises(ClientError) as info:
        client(server, "us-east-1").list_channels()
    err = info.value.response
    assert err["Error"]["Code"] == "ForbiddenException" and err["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "'us-east-1'" in err["Error"]["Message"] and "eu-west-3" in err["Error"]["Message"]

    url = server.base + "/channels"
    credentials = Credentials(KEY, SECRET)

    def signed(service, sign_host=True):
        class Signer(SigV4Auth):
            def headers_to_sign(self, request):
                headers = super().headers_to_sign(request)
                if not sign_host:
                    del headers["host"]
                return headers

        request = AWSRequest(method="GET", url=url)
        Signer(credentials, service, "eu-west-3").add_auth(request)
        return dict(request.headers.items())

    path = urllib.parse.urlparse(url).path
    assert send(server, "GET", path, headers=signed("mediapackage"))[0] == 200
    assert send(server, "GET", path, headers=signed("execute-api"))[0] == 200
    status, headers, data = send(server, "GET", path, headers=signed("mediapackage", sign_host=False))
    assert "host" not in signed("mediapackage", sign_host=False)["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert status == 403 and headers["x-amzn-ErrorType"] == "ForbiddenException", data
    assert "'Host'" in json.loads(data)["message"]
    status, _, data = send(server, "GET", path, headers=signed("s3"))
    assert status == 403 and "'s3'" in json.loads(data)["message"], data


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


def challenge(server, path):
    status, headers, _ = send(server, "PUT", path, SEGMENTS[0])
    assert status == 401
    digest = next(c for c in headers.get_all("WWW-Authenticate") if c.startswith("Digest "))
    return dict(re.findall(r'(\w+)="([^"]*)"', digest))


def digest(ingest, params, method, uri, qop=True):
    ha1 = md5(f"{ingest['Username']}:{params['realm']}:{ingest['Password']}")
    ha2 = md5(f"{method}:{uri}")
    head = f'Digest username="{ingest["Username"]}", realm="{params["realm"]}", nonce="{params["nonce"]}", uri="{uri}"'
    if not qop:
        return f'{head}, response="{md5(ha1 + ":" + params["nonce"] + ":" + ha2)}", algorithm=MD5'
    response = md5(f"{ha1}:{params['nonce']}:00000001:0a4f113b:auth:{ha2}")
    return f'{head}, response="{response}", qop=auth, nc=00000001, cnonce="0a4f113b", algorithm=MD5, opaque="{params["opaque"]}"'


@pytest.fixture
def ingest(local_server):
    mp = local_server.mediapackage()
    ingest = mp.create_channel(Id="dig")["HlsIngest"]["IngestEndpoints"][0]
    mp.create_origin_endpoint(ChannelId="dig", Id="dig-hls", HlsPackage={"SegmentDurationSeconds": 2})
    folder = "/" + ingest["Url"].split("://", 1)[1].split("/", 1)[1][: -len("channel")]
    return local_server, ingest, folder


def test_digest_is_bound_to_its_url(ingest):
    server, ingest, folder = ingest
    first, second = folder + "v/seg_00000.ts", folder + "v/seg_00001.ts"
    params = challenge(server, first)
    header = digest(ingest, params, "PUT", first)
    assert send(server, "PUT", first, SEGMENTS[0], {"Authorization": header})[0] == 201
    # The same Authorization, replayed on another file of the same ingest endpoint.
    status, headers, body = send(server, "PUT", second, SEGMENTS[1], {"Authorization": header})
    assert status == 401, body
    assert any(c.startswith("Digest ") and 'qop="auth"' in c for c in headers.get_all("WWW-Authenticate"))
    # The same target with a query added is another request target.
    status, _, _ = send(server, "PUT", first + "?x=1", SEGMENTS[0], {"Authorization": header})
    assert status == 401
    # Computed for the second file, it is accepted there.
    assert send(server, "PUT", second, SEGMENTS[1], {"Authorization": digest(ingest, params, "PUT", second)})[0] == 201
    assert server.indexed_paths("dig") == ["v/seg_00000.ts", "v/seg_00001.ts"]


def test_digest_without_qop_is_refused(ingest):
    server, ingest, folder = ingest
    path = folder + "v/seg_00000.ts"
    params = challenge(server, path)
    status, headers, body = send(server, "PUT", path, SEGMENTS[0], {"Authorization": digest(ingest, params, "PUT", path, qop=False)})
    assert status == 401, body
    fresh = [c for c in headers.get_all("WWW-Authenticate") if c.startswith("Digest ")]
    assert fresh and 'qop="auth"' in fresh[0] and "nonce=" in fresh[0]
    assert server.indexed_paths("dig") == []


def test_ffmpeg_digest_still_authenticates(local_server, tmp_path):
    mp = local_server.mediapackage()
    ingest = mp.create_channel(Id="ffdig")["HlsIngest"]["IngestEndpoints"][0]
    url = urllib.parse.urlsplit(ingest["Url"][: -len("channel")])
    user, password = urllib.parse.quote(ingest["Username"], safe=""), urllib.parse.quote(ingest["Password"], safe="")
    folder = f"{url.scheme}://{user}:{password}@{url.netloc}{url.path}"
    log = tmp_path / "ffmpeg.log"
    result = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "debug", "-nostdin", "-f", "lavfi", "-i",
         "testsrc2=size=320x180:rate=25", "-t", "4", "-c:v", "libx264", "-g", "50", "-f", "hls",
         "-hls_time", "2", "-method", "PUT",
         "-hls_segment_filename", folder + "v/seg_%05d.ts", folder + "v/index.m3u8"],
        stderr=open(log, "w"), timeout=60, env={**os.environ, "http_proxy": "", "HTTP_PROXY": ""},
    )
    assert result.returncode == 0, log.read_text()[-1500:]
    time.sleep(1)
    assert 'Authorization: Digest' in log.read_text(), "ffmpeg did not answer with Digest"
    sent = sorted(urllib.parse.urlparse(u).path[len(url.path):]
                  for u in re.findall(r"Opening '([^']+\.ts)' for writing", log.read_text()))
    assert len(sent) >= 2, sent
    assert sorted(local_server.indexed_paths("ffdig")) == sent
    wrong = [e for e in local_server.logs()
             if e.get("fields", {}).get("message") == "ingest rejected" and "wrong" in e["fields"].get("error", "")]
    assert wrong == [], wrong
