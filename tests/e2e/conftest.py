"""Fixtures for the end-to-end tests: a real `sluice-local` process on 127.0.0.1 (local
disk store, or S3 + DynamoDB in a `moto_server` emulator), boto3 clients, and helpers to
read the server's JSON logs. Everything started here is stopped at teardown."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
import pytest

from botocore_shapes import validate_responses

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("SLUICE_BIN", ROOT / "target" / "debug" / "sluice-local"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def get(url):
    """(status, body) of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def play(player, url, min_seconds=4, **env):
    """Plays `url` in `player` (tests/player/play.mjs: at least `min_seconds` within 60 s,
    with the page's env settings such as SWITCH_AUDIO) and returns its report; fails with it."""
    result = subprocess.run(
        ["node", str(ROOT / "tests" / "player" / "play.mjs"), player, url, str(min_seconds), "60"],
        capture_output=True, text=True, timeout=100, env={**os.environ, **env},
    )
    played = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    assert result.returncode == 0, (played or result.stdout, result.stderr[-1000:])
    return played


def encoder_folder(ingest):
    """The ingest endpoint's folder URL (its `Url` less `channel`) with the credentials in
    it, as an encoder such as ffmpeg is given it: `http://user:password@host/in/v2/…/`."""
    user = urllib.parse.quote(ingest["Username"], safe="")
    password = urllib.parse.quote(ingest["Password"], safe="")
    return ingest["Url"][: -len("channel")].replace("http://", f"http://{user}:{password}@")


class Server:
    """A running sluice-local with its base URL and log file."""

    def __init__(self, args=(), env=None, demo=False):
        assert BIN.exists(), f"{BIN} is missing: build it with `cargo build -p sluice-local`"
        self.dir = tempfile.TemporaryDirectory(prefix="sluice-e2e-")
        self.log_path = pathlib.Path(self.dir.name) / "server.log"
        self.out_path = pathlib.Path(self.dir.name) / "server.out"
        cmd = [str(BIN), "--listen", "127.0.0.1:0", "--data-dir", str(pathlib.Path(self.dir.name) / "data"), *args]
        if demo:
            cmd.append("--demo")
        full_env = {**os.environ, "SLUICE_LOG_FORMAT": "json", "RUST_LOG": "info", **(env or {})}
        self.proc = subprocess.Popen(
            cmd, stdout=open(self.out_path, "w"), stderr=open(self.log_path, "w"), env=full_env
        )
        self.base = self._wait_for_line("sluice-local listening on ", 30).split()[3]
        self.demo_url = self._wait_for_line("demo playback URL: ", 30).split()[-1] if demo else None

    def _wait_for_line(self, prefix, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.out_path.read_text().splitlines():
                if line.startswith(prefix):
                    return line
            if self.proc.poll() is not None:
                raise RuntimeError(f"sluice-local exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"sluice-local did not print {prefix!r} within {timeout}s")

    def logs(self):
        """The server's JSON log lines, parsed."""
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def indexed_paths(self, channel):
        return [
            e["fields"]["path"]
            for e in self.logs()
            if e.get("fields", {}).get("message") == "segment indexed" and e["fields"].get("channel") == channel
        ]

    def mediapackage(self):
        """A boto3 MediaPackage client whose every response is checked against botocore's model."""
        return validate_responses(boto3.client(
            "mediapackage",
            endpoint_url=self.base,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.dir.cleanup()


def start_moto():
    """An AWS emulator (S3, DynamoDB, Secrets Manager, CloudWatch) on a free loopback port,
    answering: (process, endpoint URL). The caller stops it with `stop_moto`."""
    port = free_port()
    proc = subprocess.Popen(
        # moto_server with DynamoDB's isolation (see moto_serial.py).
        [sys.executable, str(pathlib.Path(__file__).with_name("moto_serial.py")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 30)
    except BaseException:
        stop_moto(proc)
        raise
    return proc, f"http://127.0.0.1:{port}"


def stop_moto(proc):
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
def moto():
    """One emulator for the session's AWS-backed servers."""
    proc, endpoint = start_moto()
    try:
        yield endpoint
    finally:
        stop_moto(proc)


def aws_env(endpoint, suffix):
    return {
        "SLUICE_STORE": "aws",
        "SLUICE_BUCKET": f"sluice-e2e-{suffix}",
        "SLUICE_CATALOG_TABLE": f"catalog-{suffix}",
        "SLUICE_SEGMENTS_TABLE": f"segments-{suffix}",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }


@pytest.fixture(params=["local", "aws"])
def make_server(request):
    """Starts sluice-local with extra flags, on the local store or (second run) on the
    AWS adapters against moto; stops them all at teardown."""
    started = []

    def make(args=()):
        if request.param == "aws":
            endpoint = request.getfixturevalue("moto")
            env = aws_env(endpoint, f"{os.getpid()}-{free_port()}")
            srv = Server(args=["--create-aws-resources", *args], env=env)
        else:
            srv = Server(args=args)
        srv.store = request.param
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def server(make_server):
    """sluice-local on the local store, then on the AWS adapters against moto."""
    return make_server()


@pytest.fixture
def local_server():
    srv = Server()
    yield srv
    srv.stop()
