"""Staged ingest, the AWS path for segments larger than a Lambda request (template.yaml,
`StagedIngest=Enabled`), as far as the emulators reach.

API Gateway itself has no emulator here, so a small stand-in plays its part, configured
from the template's own values: the 401 challenge of its gateway responses (with this
stack's nonce), the authorizer call (the real `sluice-authorizer` in `cargo lambda watch`,
with the REQUEST event API Gateway sends), the S3 integration's key mapping (the body is
written to moto's S3), its 10 MB payload limit, and the S3 → EventBridge "Object Created"
event that invokes the real `sluice-staged`. Like API Gateway, the stand-in answers
`Expect: 100-continue` itself and reads the whole body before authorising.

ffmpeg pushes a 6 s 1080p 8 Mbit/s rendition (segments over 5 MB, which no Lambda request
carries) with the preemptive Basic header the README gives for AWS; curl authenticates
with Digest against the fixed challenge; sluice-local serves the result from the same
tables and bucket, and hls.js plays it."""

import base64
import hashlib
import http.server
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import boto3
import m3u8
import pytest
from cfnlint.decode import decode

from conftest import ROOT, Server, aws_env, free_port, wait_for_port

NONCE = str(uuid.uuid4())
SEGMENTS = 2
# Events delivered at once.
DELIVERERS = 3


def template_values():
    """What the stand-in takes from template.yaml: the staged key layout, the challenge,
    API Gateway's payload limit message."""
    tpl, matches = decode(str(ROOT / "template.yaml"))
    assert not matches, matches
    body = tpl["Resources"]["StagedIngestApi"]["Properties"]["DefinitionBody"]
    put = body["paths"]["/in/v2/{channel}/{ingest}/{file+}"]["put"]
    uri = put["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
    key_template = uri.split("${SegmentBucket}/", 1)[1]
    responses = body["x-amazon-apigateway-gateway-responses"]
    header, names = responses["UNAUTHORIZED"]["responseParameters"]["gatewayresponse.header.WWW-Authenticate"]["Fn::Sub"]
    assert names["Nonce"] == {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    challenge = header.strip("'").replace("${Nonce}", NONCE)
    too_large = json.loads(responses["REQUEST_TOO_LARGE"]["responseTemplates"]["application/json"])["message"]
    return key_template, challenge, too_large


def invoke(port, function, event):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(event).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=400) as r:
        return r.status, json.loads(r.read() or b"null"), r.headers.get("X-Amz-Function-Error")


def authorizer_event(method, path, headers):
    """A REQUEST authorizer event as API Gateway sends it (path without the stage)."""
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:us-east-1:123456789012:abcdef1234/v1/{method}{path}",
        "resource": "/in/v2/{channel}/{ingest}/{file+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {},
        "multiValueQueryStringParameters": {},
        "pathParameters": dict(zip(("channel", "ingest", "file"), path.split("/", 5)[3:])),
        "stageVariables": {},
        "requestContext": {"path": "/v1" + path, "accountId": "123456789012", "resourceId": "abc123",
                           "stage": "v1", "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "127.0.0.1"},
                           "resourcePath": "/in/v2/{channel}/{ingest}/{file+}", "httpMethod": method,
                           "apiId": "abcdef1234"},
    }


def object_created_event(bucket, key, size):
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Object Created", "source": "aws.s3",
        "account": "123456789012", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1", "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {"version": "0", "bucket": {"name": bucket},
                   "object": {"key": key, "size": size, "etag": "0", "sequencer": "0"},
                   "request-id": "0", "requester": "123456789012", "reason": "PutObject"},
    }


class Gateway:
    """The stand-in for API Gateway's staged-ingest API (see the module docstring)."""

    LIMIT = 10 * 1024 * 1024

    def __init__(self, lambda_port, s3, bucket):
        self.key_template, self.challenge, self.too_large = template_values()
        self.lambda_port, self.s3, self.bucket = lambda_port, s3, bucket
        self.staged, self.answers, self.events = [], [], queue.Queue()
        self.invocations = []
        self.lock, self.in_flight = threading.Lock(), 0
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def read_body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = bytearray()
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return bytes(body)
                        body += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def answer(self, status, message="", headers=()):
                body = json.dumps({"message": message}).encode() if message else b""
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                gateway.answers.append((self.command, self.path, status))
                try:
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # ffmpeg closes the connection after the last body byte, unanswered

            def do_PUT(self):
                with gateway.lock:
                    gateway.in_flight += 1
                try:
                    self.stage()
                finally:
                    with gateway.lock:
                        gateway.in_flight -= 1

            def stage(self):
                body = self.read_body()
                if len(body) > gateway.LIMIT:
                    return self.answer(413, gateway.too_large)  # REQUEST_TOO_LARGE
                challenge = [("WWW-Authenticate", gateway.challenge)]
                # API Gateway hands the authorizer and the integration the decoded path.
                path = urllib.parse.unquote(self.path.split("?", 1)[0])
                resource = path.removeprefix("/v1")
                if not resource.startswith("/in/v2/") or resource.count("/") < 5:
                    return self.answer(404, "Missing Authentication Token")
                if "Authorization" not in self.headers:
                    return self.answer(401, "Unauthorized", challenge)
                headers = {k: v for k, v in self.headers.items()}
                status, policy, error = invoke(gateway.lambda_port, "sluice-authorizer",
                                               authorizer_event(self.command, resource, headers))
                gateway.invocations.append(policy)
                if error or status != 200:
                    return self.answer(500, "authorizer failed")
                if policy["policyDocument"]["Statement"][0]["Effect"] != "Allow":
                    return self.answer(401, "Unauthorized", challenge)
                channel, ingest, file = resource.split("/", 5)[3:]
                key = (gateway.key_template.replace("{channel}", channel).replace("{ingest}", ingest)
                       .replace("{file}", file))
                gateway.s3.put_object(Bucket=gateway.bucket, Key=key, Body=body)
                gateway.staged.append((key, len(body)))
                # S3 event notifications URL-encode the key (a space is "+").
                encoded = urllib.parse.quote_plus(key, safe="/")
                gateway.events.put(object_created_event(gateway.bucket, encoded, len(body)))
                self.answer(201)

            do_POST = do_PUT

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        # S3 → EventBridge → the staged-ingest function: asynchronously, several at once, so
        # in no particular order.
        self.results = []
        for _ in range(DELIVERERS):
            threading.Thread(target=self._deliver, daemon=True).start()

    def _deliver(self):
        while True:
            event = self.events.get()
            if event is None:
                return
            self.results.append(invoke(self.lambda_port, "sluice-staged", event))
            self.events.task_done()

    def settle(self, timeout=120):
        # Quiet for a second: no upload in flight (one may still be being accepted just
        # after its encoder exited), no event undelivered.
        deadline, quiet_since = time.time() + timeout, None
        while time.time() < deadline:
            busy = self.in_flight or self.events.unfinished_tasks
            quiet_since = None if busy else (quiet_since or time.time())
            if quiet_since and time.time() - quiet_since >= 1:
                return
            time.sleep(0.1)
        raise AssertionError("uploads or events still in flight")

    def stop(self):
        for _ in range(DELIVERERS):
            self.events.put(None)
        self.server.shutdown()


@pytest.fixture(scope="module")
def stack(moto, tmp_path_factory):
    env = aws_env(moto, f"staged-{os.getpid()}")
    # Creates the bucket and tables; serves control and playback from them.
    server = Server(args=["--create-aws-resources"], env=env)
    port = free_port()
    log_path = tmp_path_factory.mktemp("staged") / "watch.log"
    gateway_env = {**os.environ, **env, "SLUICE_STAGED_DIGEST_NONCE": NONCE,
                   "SLUICE_MAX_SEGMENT_BYTES": "10485760", "SLUICE_METRICS": "emf",
                   "AWS_LAMBDA_LOG_FORMAT": "JSON", "RUST_LOG": "info"}
    proc = None
    gateway = None
    try:
        s3 = boto3.client("s3", endpoint_url=moto, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
        gateway = Gateway(port, s3, env["SLUICE_BUCKET"])
        gateway_env["SLUICE_INGEST_BASE_URL"] = gateway.base
        proc = subprocess.Popen(
            [shutil.which("cargo-lambda"), "lambda", "watch", "--ignore-changes",
             "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
            cwd=ROOT, env=gateway_env, stdout=open(log_path, "w"), stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_for_port(port, 120)
        # The first invocation of each function builds it: do that before any encoder waits.
        for function, event in (("sluice-authorizer", authorizer_event("GET", "/in/v2/x/y/z", {})),
                                ("sluice-staged", object_created_event("none", "none", 0))):
            invoke(port, function, event)
        yield server, gateway, log_path
    finally:
        if gateway:
            gateway.stop()
        if proc:
            os.killpg(proc.pid, 15)
            proc.wait(20)
        server.stop()


def logged(log_path, message):
    out = []
    for line in log_path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("fields", {}).get("message") == message:
            out.append(entry["fields"])
    return out


def fetch(url, data=None, headers=()):
    """GET, or PUT `data`: (status, headers, body)."""
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "PUT", headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_a_six_second_1080p_8_mbit_rendition_goes_through_s3_and_plays(stack, tmp_path):
    server, gateway, log_path = stack
    mp = server.mediapackage()
    ingest = mp.create_channel(Id="staged")["HlsIngest"]["IngestEndpoints"][0]
    hls = mp.create_origin_endpoint(ChannelId="staged", Id="staged-hls", HlsPackage={"SegmentDurationSeconds": 6})
    folder = f"{gateway.base}/in/v2/staged/{ingest['Id']}/"
    basic = base64.b64encode(f"{ingest['Username']}:{ingest['Password']}".encode()).decode()
    log = tmp_path / "ffmpeg.log"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "verbose", "-nostdin",
         "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(6 * SEGMENTS),
         "-c:v", "libx264", "-preset", "ultrafast", "-threads", "2", "-g", "60", "-keyint_min", "60",
         "-sc_threshold", "0", "-x264-params", "nal-hrd=cbr",
         "-b:v", "8M", "-minrate", "8M", "-maxrate", "8M", "-bufsize", "8M", "-c:a", "aac", "-b:a", "128k",
         # As the README says for AWS: the credentials with the first request.
         "-headers", f"Authorization: Basic {basic}\r\n",
         "-f", "hls", "-hls_time", "6", "-method", "PUT",
         "-hls_segment_filename", folder + "1080p/seg_%03d.ts", folder + "1080p/index.m3u8"],
        stdout=subprocess.DEVNULL, stderr=open(log, "w"), check=True, timeout=120,
    )
    gateway.settle()
    ffmpeg_log = log.read_text()[-2000:]
    segments = [(key, size) for key, size in gateway.staged if key.endswith(".ts")]
    assert [key for key, _ in segments] == [
        f"staged.uploads/staged/{ingest['Id']}/1080p/seg_{n:03d}.ts" for n in range(SEGMENTS)], (gateway.answers, ffmpeg_log)
    # Above what any Lambda request carries (6 MB; 4.5 MB of binary after base64).
    assert min(size for _, size in segments) > 4_500_000, segments
    assert all(status == 200 and not error for status, _, error in gateway.results), gateway.results
    ingested = {f["path"] for f in logged(log_path, "staged upload ingested")}
    assert {f"1080p/seg_{n:03d}.ts" for n in range(SEGMENTS)} <= ingested, ingested
    # Each staged upload counts in the channel's IngressBytes, as a direct upload does.
    metrics = [json.loads(line) for line in log_path.read_text().splitlines()
               if line.startswith("{") and '"IngressBytes"' in line]
    assert sum(m["IngressBytes"] for m in metrics if m["Channel"] == "staged") >= sum(s for _, s in segments)

    media = None
    deadline = time.time() + 30
    while time.time() < deadline:
        status, _, body = fetch(hls["Url"])
        if status == 200:
            master = m3u8.loads(body.decode())
            media_url = urllib.parse.urljoin(hls["Url"], master.playlists[0].uri)
            media = m3u8.loads(fetch(media_url)[2].decode())
            if len(media.segments) >= SEGMENTS:
                break
        time.sleep(1)
    assert media and len(media.segments) == SEGMENTS, media and media.dumps()
    served = [fetch(urllib.parse.urljoin(media_url, s.uri)) for s in media.segments]
    assert [len(body) for _, _, body in served] == [size for _, size in segments]
    result = subprocess.run(
        ["node", str(ROOT / "tests" / "player" / "play_hls.mjs"), server.base + "/", hls["Url"], "6", "60"],
        capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, (result.stdout, result.stderr[-1000:])


def digest(username, password, method, uri, nonce):
    """A Digest `Authorization` value (RFC 7616, MD5, qop=auth), as curl and ffmpeg make it."""
    md5 = lambda s: hashlib.md5(s.encode()).hexdigest()
    ha1, ha2 = md5(f"{username}:Sluice:{password}"), md5(f"{method}:{uri}")
    response = md5(f"{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}")
    return (f'Digest username="{username}", realm="Sluice", nonce="{nonce}", uri="{uri}", '
            f'response="{response}", qop=auth, nc=00000001, cnonce="0a4f113b", algorithm=MD5')


def test_digest_answers_the_fixed_challenge_and_wrong_credentials_are_refused(stack, tmp_path):
    server, gateway, log_path = stack
    mp = server.mediapackage()
    ingest = mp.create_channel(Id="staged-auth")["HlsIngest"]["IngestEndpoints"][0]
    # A name with a space: escaped in the URL and the Digest uri, decoded in API Gateway's
    # path, encoded again in the S3 event's key.
    path = f"/in/v2/staged-auth/{ingest['Id']}/live%20index.m3u8"
    url = gateway.base + path
    playlist = tmp_path / "index.m3u8"
    playlist.write_text("#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n")

    # curl answers the fixed challenge with Digest; the authorizer accepts it.
    done = subprocess.run(
        ["curl", "-sS", "--digest", "-u", f"{ingest['Username']}:{ingest['Password']}", "-T", str(playlist),
         "-o", "/dev/null", "-w", "%{http_code}", url], capture_output=True, text=True, timeout=60)
    assert done.stdout == "201", (done.stdout, done.stderr, gateway.answers[-3:])
    gateway.settle()
    ingested = [f for f in logged(log_path, "staged upload ingested") if f.get("channel") == "staged-auth"]
    assert [f["path"] for f in ingested] == ["live index.m3u8"], ingested

    # Refused: a wrong password; the right Digest made with another nonce (the stack's
    # is the only one accepted) or for another method; another channel's credentials.
    wrong = subprocess.run(
        ["curl", "-sS", "--digest", "-u", f"{ingest['Username']}:nope", "-T", str(playlist),
         "-o", "/dev/null", "-w", "%{http_code}", url], capture_output=True, text=True, timeout=60)
    assert wrong.stdout == "401", wrong
    before = len(gateway.invocations)
    for nonce, method in ((str(uuid.uuid4()), "PUT"), (NONCE, "DELETE")):
        header = digest(ingest["Username"], ingest["Password"], method, "/v1" + path, nonce)
        assert fetch(url, b"#EXTM3U\n", {"Authorization": header})[0] == 401
    right = digest(ingest["Username"], ingest["Password"], "PUT", "/v1" + path, NONCE)
    assert fetch(url, b"#EXTM3U\n", {"Authorization": right})[0] == 201
    basic = base64.b64encode(f"{ingest['Username']}:{ingest['Password']}".encode()).decode()
    other = f"{gateway.base}/in/v2/staged/{ingest['Id']}/index.m3u8"
    assert fetch(other, b"#EXTM3U\n", {"Authorization": f"Basic {basic}"})[0] == 401
    effects = [p["policyDocument"]["Statement"][0]["Effect"] for p in gateway.invocations[before:]]
    assert effects == ["Deny", "Deny", "Allow", "Deny"], gateway.invocations[before:]
    denied = [p["context"]["message"] for p in gateway.invocations if p["policyDocument"]["Statement"][0]["Effect"] == "Deny"]
    assert any("wrong ingest credentials" in m for m in denied), denied
    assert any('no channel "staged"' in m or "has no ingest endpoint" in m for m in denied), denied
    gateway.settle()


def test_a_staged_upload_the_flow_refuses_is_logged_counted_and_not_retried(stack):
    server, gateway, log_path = stack
    mp = server.mediapackage()
    ingest = mp.create_channel(Id="staged-bad")["HlsIngest"]["IngestEndpoints"][0]
    basic = base64.b64encode(f"{ingest['Username']}:{ingest['Password']}".encode()).decode()
    url = f"{gateway.base}/in/v2/staged-bad/{ingest['Id']}/1080p/seg_000.ts"
    # S3 acknowledges anything: the refusal can only be logged and counted.
    assert fetch(url, b"this is not MPEG-TS" * 100, {"Authorization": f"Basic {basic}"})[0] == 201
    gateway.settle()
    status, _, error = gateway.results[-1]
    assert status == 200 and not error, "a refusal is final: the event succeeds, so Lambda does not retry it"
    refused = [f for f in logged(log_path, "staged upload refused") if f.get("channel") == "staged-bad"]
    assert refused and "seg_000.ts" in refused[0]["key"], refused
    counted = [json.loads(line) for line in log_path.read_text().splitlines()
               if line.startswith("{") and '"StagedUploadsRejected"' in line]
    assert any(m["Channel"] == "staged-bad" for m in counted), counted
