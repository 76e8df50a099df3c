"""Connection limits in sluice-local: 2,000 idle or slow connections from one client do
not stop it serving others; each is closed by its own timeout (request head, idle
keep-alive, request body rate), and beyond --max-connections new connections wait
with one warning line instead of the process running out of file descriptors."""

import base64
import contextlib
import http.client
import resource
import select
import socket
import time

import pytest

from conftest import Server

# Long enough that all 2,000 connections are open (a few seconds on a busy machine) before
# the first is closed, short enough for a quick test.
HEADER_TIMEOUT = 6
IDLE_TIMEOUT = 9
BODY_TIMEOUT = 3
SLACK = 1.5  # the server checks deadlines exactly; this covers scheduling on a busy machine


@pytest.fixture(autouse=True)
def open_file_limit():
    """2,000 client sockets here and as many in the server (which inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4500:
        pytest.skip(f"the hard open-file limit {hard} is too low for 2,000 connections on each side")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def start(max_connections, header_timeout=HEADER_TIMEOUT):
    return Server(args=[
        "--header-timeout-secs", str(header_timeout),
        "--idle-timeout-secs", str(IDLE_TIMEOUT),
        "--body-timeout-secs", str(BODY_TIMEOUT),
        "--body-min-bytes", "1024",
        "--max-connections", str(max_connections),
    ])


def address(server):
    host, port = server.base[len("http://"):].split(":")
    return host, int(port)


def timed_get(server, path="/channels"):
    """A normal request on a fresh connection: (status, seconds)."""
    host, port = address(server)
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, time.monotonic() - started
    finally:
        conn.close()


def read_response(sock):
    """One small HTTP response with a Content-Length, read off a blocking socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(65536)
    return head.decode()


class Watcher:
    """Client sockets, polled for the server closing them (recv gives b"" or a reset) and
    for anything it sends; slow heads get one more byte a second."""

    SLOW_HEAD = b"ET /channels HTTP/1.1\r\nX-Drip: " + b"a" * 1000

    def __init__(self):
        self.socks = {}  # fileno -> (kind, socket, when its timeout clock started)
        self.closed, self.answers = {}, {}
        self.poller = select.poll()
        self.next_drip, self.dripped = time.monotonic() + 1, 0

    def add(self, kind, sock, since):
        sock.setblocking(False)
        self.socks[sock.fileno()] = (kind, sock, since)
        self.poller.register(sock.fileno(), select.POLLIN)

    def open_left(self):
        return [fd for fd in self.socks if fd not in self.closed]

    def poll(self, timeout_ms):
        for fd, _ in self.poller.poll(timeout_ms):
            try:
                data = self.socks[fd][1].recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                self.answers[fd] = self.answers.get(fd, b"") + data
            else:
                self.closed[fd] = time.monotonic()
                self.poller.unregister(fd)
        if time.monotonic() >= self.next_drip:
            for fd in self.open_left():
                if self.socks[fd][0] == "slow head":
                    with contextlib.suppress(OSError):
                        self.socks[fd][1].send(self.SLOW_HEAD[self.dripped:self.dripped + 1])
            self.dripped += 1
            self.next_drip += 1

    def close(self):
        for _, sock, _ in self.socks.values():
            sock.close()


def test_idle_and_slow_connections_are_closed_and_others_are_served():
    server = start(max_connections=4000)
    watcher = Watcher()
    try:
        mp = server.mediapackage()
        ingest = mp.create_channel(Id="slow")["HlsIngest"]["IngestEndpoints"][0]
        token = base64.b64encode(f"{ingest['Username']}:{ingest['Password']}".encode()).decode()
        upload_path = ingest["Url"].split("://", 1)[1].split("/", 1)[1][: -len("channel")] + "v/seg_00000.ts"
        host, port = address(server)

        def connect(first_bytes=b""):
            sock = socket.create_connection((host, port), timeout=5)
            if first_bytes:
                sock.sendall(first_bytes)
            return sock

        def watch(kind, sock, since):
            watcher.add(kind, sock, since)
            if len(watcher.socks) % 100 == 0:
                watcher.poll(0)

        opening = time.monotonic()
        # Keep-alive connections that made one request and then say nothing, first: they take
        # a round trip each, and their idle clock only starts once answered. All 96 requests
        # go out before any answer is read, so a busy machine cannot stretch this phase.
        keep_alive = [connect(f"GET /nowhere HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                      for _ in range(96)]
        for sock in keep_alive:
            assert read_response(sock).startswith("HTTP/1.1 404"), "the keep-alive request was not answered"
            watch("keep-alive", sock, time.monotonic())
        # Sockets that send nothing, request heads sent a byte a second and never finished.
        for _ in range(1200):
            watch("idle", connect(), time.monotonic())
        for _ in range(700):
            watch("slow head", connect(b"G"), time.monotonic())
        # Uploads that declare a body and stall after a little of it: ingest and control.
        for _ in range(2):
            watch("stalled upload", connect((
                f"PUT /{upload_path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Basic {token}\r\n"
                "Content-Type: video/mp2t\r\nContent-Length: 1000000\r\n\r\n"
            ).encode() + b"\x47" * 500), time.monotonic())
        for _ in range(2):
            watch("stalled upload", connect((
                f"POST /channels HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                "Content-Length: 200\r\n\r\n{\"id\": "
            ).encode()), time.monotonic())
        assert len(watcher.socks) == 2000
        opened_in = time.monotonic() - opening
        assert watcher.closed == {}, f"connections were closed while they were being opened (in {opened_in:.1f} s)"

        # Everyone else is still served at once while all 2,000 are open.
        for _ in range(3):
            status, seconds = timed_get(server)
            assert status == 200 and seconds < 0.1, f"GET /channels took {seconds:.3f} s with 2,000 connections open"
        status, seconds = timed_get(server, "/no/such/path")
        assert status == 404 and seconds < 0.1, f"a 404 took {seconds:.3f} s with 2,000 connections open"
        assert watcher.closed == {}

        # Bounded: every timeout has passed, with slack, by this deadline.
        deadline = time.monotonic() + IDLE_TIMEOUT + SLACK + 1
        while watcher.open_left() and time.monotonic() < deadline:
            watcher.poll(50)

        open_left = sorted({watcher.socks[fd][0] for fd in watcher.open_left()})
        assert not open_left, f"the server never closed these connections: {open_left}"
        after = {}
        for fd, (kind, _, since) in watcher.socks.items():
            after.setdefault(kind, []).append(watcher.closed[fd] - since)
        limits = {"idle": HEADER_TIMEOUT, "slow head": HEADER_TIMEOUT, "keep-alive": IDLE_TIMEOUT, "stalled upload": BODY_TIMEOUT}
        for kind, times in after.items():
            assert limits[kind] - 0.5 <= min(times) and max(times) <= limits[kind] + SLACK, (
                f"{kind}: closed after {min(times):.2f} to {max(times):.2f} s, expected about {limits[kind]} s"
            )
        for fd, (kind, _, _) in watcher.socks.items():
            answer = watcher.answers.get(fd, b"").decode(errors="replace")
            if kind == "stalled upload":
                assert answer.startswith("HTTP/1.1 408 Request Timeout"), answer
                assert f"request body too slow: fewer than 1024 bytes arrived in {BODY_TIMEOUT} s" in answer, answer
                assert answer.count("HTTP/1.1") == 1, "a stalled upload was answered more than once"
            else:
                assert answer == "", f"a {kind} connection was sent {answer[:200]!r}"

        # Nothing was stored from the half uploads, and the server still answers.
        assert server.indexed_paths("slow") == []
        assert timed_get(server)[0] == 200
        stalls = [e for e in server.logs() if "request body stalled" in e.get("fields", {}).get("message", "")]
        assert len(stalls) == 4, stalls
    finally:
        watcher.close()
        server.stop()


def test_beyond_max_connections_new_ones_wait_with_one_warning():
    server = start(max_connections=20, header_timeout=2)
    socks = []
    try:
        host, port = address(server)
        assert timed_get(server)[0] == 200
        for _ in range(30):
            socks.append(socket.create_connection((host, port), timeout=5))
        # Queued behind 20 idle connections until the head timeout closes them.
        status, seconds = timed_get(server)
        assert status == 200
        assert 1.5 <= seconds <= 2 + SLACK, f"served after {seconds:.2f} s"
        # Then served at once again.
        assert timed_get(server)[1] < 0.1
        warnings = [e["fields"]["message"] for e in server.logs() if e.get("level") == "WARN"
                    and "connection limit" in e.get("fields", {}).get("message", "")]
        assert warnings == [
            "connection limit (20) reached; new connections wait until one closes (see --max-connections)"
        ], warnings
    finally:
        for s in socks:
            s.close()
        server.stop()
