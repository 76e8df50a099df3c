"""Every sample event in events/ replayed through the Lambda runtime emulator of
`cargo lambda watch`, in the order a deployment sees them (channel, endpoint, ingest,
playback), with the three functions sharing S3 + DynamoDB in moto.

Control and ingest events go through `cargo lambda invoke`, whose JSON output carries the
API Gateway response (statusCode, headers, body). The playback function streams its
responses (RESPONSE_STREAM): `cargo lambda invoke` prints a streamed body but not its
status, so playback events are also POSTed to the emulator's invoke API (the one
`cargo lambda invoke` calls), which answers with the streamed status and headers."""

import base64
import hashlib
import hmac
import json
import os
import pathlib
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import ROOT, Server, aws_env, free_port, wait_for_port

EVENTS = ROOT / "events"

# (event file, function, expected status, text the body must contain), in replay order.
REPLAY = [
    ("control-create-channel.json", "sluice-control", 200, '"id":"demo"'),
    ("control-list-channels.json", "sluice-control", 200, '"channels":[{'),
    ("control-create-origin-endpoint.json", "sluice-control", 200, '"id":"demo-hls"'),
    ("control-describe-missing-channel.json", "sluice-control", 404, "NotFoundException"),
    ("control-create-channel-malformed.json", "sluice-control", 422, "not valid JSON"),
    ("ingest-put-no-credentials.json", "sluice-ingest", 401, "authentication"),
    # lambda_http resolves the decoded `..` segments before routing: the URL left names no
    # ingest endpoint (sluice-local, which routes the raw path, answers 400).
    ("ingest-put-traversal.json", "sluice-ingest", 404, 'no such URL "/in/v2/demo/escape.ts"'),
    ("ingest-put-segment.json", "sluice-ingest", 201, ""),
    ("ingest-put-media-playlist.json", "sluice-ingest", 201, ""),
    ("ingest-put-master.json", "sluice-ingest", 201, ""),
    ("playback-multivariant.json", "sluice-playback", 200, "index_360p-seg.m3u8"),
    ("playback-media-playlist.json", "sluice-playback", 200, "#EXTINF:2,\nindex_360p-seg_133200.ts"),
    # The segment is named by its first PTS: 1.48 s in ffmpeg's output is 133200 ticks.
    ("playback-segment.json", "sluice-playback", 200, "G"),
    ("playback-unknown-endpoint.json", "sluice-playback", 404, 'no origin endpoint "no-such-endpoint"'),
    ("playback-not-a-file.json", "sluice-playback", 404, "is not a file of endpoint"),
    # The optional reference key server: a SPEKE v1 answer whose key URL names the host
    # the request came to, and that URL's key.
    ("keyserver-speke-v1.json", "sluice-keyserver", 200,
     "<cpix:URIExtXKey>" + base64.b64encode(
         b"https://keys0123456789ab.lambda-url.us-east-1.on.aws/keys/live-1/2f0e77a0-5c9e-4b5e-9c3c-6ad2e1f40b11"
     ).decode()),
    ("keyserver-key.json", "sluice-keyserver", 200, ""),
]

KEY_SERVER_SECRET = "events-test-secret-0123456789"


def test_every_event_is_replayed():
    on_disk = {p.name for p in EVENTS.glob("*.json")}
    assert on_disk == {name for name, *_ in REPLAY}


@pytest.fixture(scope="module")
def emulator(moto, tmp_path_factory):
    env = aws_env(moto, f"events-{os.getpid()}")
    # sluice-local creates the bucket and tables, then stops; the functions use them.
    Server(args=["--create-aws-resources"], env=env).stop()
    port = free_port()
    cargo_lambda = shutil.which("cargo-lambda")
    assert cargo_lambda, "cargo-lambda is missing (pip install cargo-lambda)"
    log_path = tmp_path_factory.mktemp("watch") / "watch.log"
    log = open(log_path, "w")
    # As the template's LoggingConfig does: JSON logs.
    env = {**os.environ, **env, "AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH": "true",
           "SLUICE_BASE_URL": "https://api.example", "AWS_LAMBDA_LOG_FORMAT": "JSON",
           "SLUICE_KEY_SERVER_SECRET": KEY_SERVER_SECRET}
    proc = subprocess.Popen(
        [cargo_lambda, "lambda", "watch", "--ignore-changes",
         "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, 120)
        yield port, log_path
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(20)


def invoke(port, function, event_text):
    """`cargo lambda invoke` with the event; the function's API Gateway response."""
    done = subprocess.run(
        ["cargo-lambda", "lambda", "invoke", function, "--invoke-address", "127.0.0.1",
         "--invoke-port", str(port), "--output-format", "json", "--data-ascii", event_text],
        cwd=ROOT, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def invoke_streaming(port, function, event_text):
    """The emulator's invoke API (what `cargo lambda invoke` calls) for a streaming function."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations",
        data=event_text.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=400) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_events_replay_with_expected_status(emulator):
    emulator, log_path = emulator
    channel = None
    for name, function, status, expected in REPLAY:
        text = (EVENTS / name).read_text()
        if function == "sluice-ingest":
            # The channel's generated ingest endpoint and credentials replace the placeholders.
            endpoint = channel["hlsIngest"]["ingestEndpoints"][0]
            basic = base64.b64encode(f"{endpoint['username']}:{endpoint['password']}".encode()).decode()
            text = (text.replace("INGEST_ENDPOINT_ID", endpoint["id"])
                    .replace(base64.b64encode(b"USERNAME:PASSWORD").decode(), basic))
        if function == "sluice-playback":
            got, headers, raw = invoke_streaming(emulator, function, text)
            body = raw.decode(errors="replace")
            assert headers["lambda-runtime-function-response-mode"] == "streaming"
            assert len(headers["x-mediapackage-request-id"]) == 32
            if status == 200 and name != "playback-segment.json":
                # And `cargo lambda invoke` itself prints the same streamed body.
                printed = subprocess.run(
                    ["cargo-lambda", "lambda", "invoke", function, "--invoke-address", "127.0.0.1",
                     "--invoke-port", str(emulator), "--data-ascii", text],
                    cwd=ROOT, capture_output=True, text=True, timeout=400)
                assert printed.returncode == 0 and expected in printed.stdout, (name, printed.stdout, printed.stderr[:300])
        else:
            response = invoke(emulator, function, text)
            got, body = response["statusCode"], response.get("body") or ""
            if response.get("isBase64Encoded"):
                body = base64.b64decode(body).decode(errors="replace")
        assert got == status and expected in body, (name, got, body[:500])
        if name == "keyserver-key.json":
            # HMAC-SHA256 of the secret over the content id, a zero byte and the KID (README).
            kid = bytes.fromhex("2f0e77a05c9e4b5e9c3c6ad2e1f40b11")
            expected_key = hmac.new(KEY_SERVER_SECRET.encode(), b"live-1\0" + kid, hashlib.sha256).digest()[:16]
            assert base64.b64decode(response["body"]) == expected_key
        if name == "playback-segment.json":
            segment = json.loads((EVENTS / "ingest-put-segment.json").read_text())["body"]
            assert raw == base64.b64decode(segment), "the segment is served whole and unchanged"
        if name == "control-create-channel.json":
            channel = json.loads(body)

    # The functions logged JSON objects (tracing's JSON format, as in Lambda).
    logged = []
    for line in log_path.read_text().splitlines():
        try:
            logged.append(json.loads(line))
        except ValueError:
            pass
    messages = {entry.get("fields", {}).get("message") for entry in logged if isinstance(entry, dict)}
    assert "channel created" in messages, messages
