"""Overlapping uploads lose nothing: an encoder that keeps 1, 2, 4 or 8 uploads of each
rendition in flight, in shuffled order within the in-flight set, to one or both ingest
endpoints, on the local store and on S3 + DynamoDB in moto; two sluice-local processes in
front of one moto store (two Lambda instances); and twenty short ffmpeg pushes that end
with #EXT-X-ENDLIST. Every acknowledged (2xx) segment is listed exactly once, served byte
for byte, under sequence numbers that are contiguous and never reassigned between polls;
every rendition of an ended push ends."""

import base64
import concurrent.futures
import hashlib
import random
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import m3u8
import pytest

from conftest import Server, aws_env, free_port

SEGMENTS = 16  # 2 s each
NO_STALE = ["--stale-after-target-durations", "0"]
RENDITIONS = ("hi", "lo")


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    """Real ffmpeg TS segments of two renditions: {rendition: [path, ...]}."""
    out = tmp_path_factory.mktemp("ladder")
    for name, size in (("hi", "320x180"), ("lo", "160x90")):
        (out / name).mkdir()
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i",
             f"testsrc2=size={size}:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", str(2 * SEGMENTS),
             "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
             "-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
             "-hls_segment_filename", str(out / name / "seg_%05d.ts"), str(out / name / "index.m3u8")],
            check=True, timeout=120,
        )
    ladder = {name: sorted((out / name).glob("seg_*.ts")) for name in RENDITIONS}
    assert all(len(files) == SEGMENTS for files in ladder.values()), ladder
    return ladder


def request(method, url, body=None, auth=None, timeout=30):
    req = urllib.request.Request(url, data=body, method=method)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def sha(data):
    return hashlib.sha256(data).hexdigest()


class Poller:
    """Polls the media playlists while uploads run and remembers which segment (by its
    bytes' hash) each media sequence number named; a number that changes meaning is a
    failure."""

    def __init__(self, urls):
        self.urls = urls
        self.numbering = {name: {} for name in urls}
        self.uri_hash = {}
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            self.poll()
            self.stop.wait(0.3)

    def poll(self, final=False):
        for name, url in self.urls.items():
            status, body = request("GET", url)
            for _ in range(20 if final else 0):
                if status == 200:
                    break
                time.sleep(0.5)
                status, body = request("GET", url)
            if status != 200:
                if final:
                    self.errors.append(f"{url}: {status} {body[:200]!r} after the uploads")
                continue
            playlist = m3u8.loads(body.decode(), uri=url)
            for i, seg in enumerate(playlist.segments):
                seq = playlist.media_sequence + i
                uri = urllib.parse.urljoin(url, seg.uri)
                if uri not in self.uri_hash:
                    s, data = request("GET", uri)
                    if s != 200:
                        self.errors.append(f"{uri}: {s} while listed")
                        continue
                    self.uri_hash[uri] = sha(data)
                digest = self.uri_hash[uri]
                before = self.numbering[name].setdefault(seq, digest)
                if before != digest:
                    self.errors.append(f"{name} sequence {seq} changed meaning")

    def finish(self):
        self.stop.set()
        self.thread.join(30)
        self.poll(final=True)
        return self.numbering


def upload_all(targets, ladder, in_flight, seed):
    """Uploads every segment of every rendition to each (folder, auth) in `targets`, with
    `in_flight` uploads per rendition at once in shuffled order within each group; answers
    {status: [(rendition, index, hash)]}."""
    rng = random.Random(seed)
    results = {}
    lock = threading.Lock()

    def put(rendition, i, folder, auth):
        path = ladder[rendition][i]
        status, body = request("PUT", folder + f"{rendition}/{path.name}", path.read_bytes(), auth)
        with lock:
            results.setdefault(status, []).append((rendition, i, sha(path.read_bytes()), body[:300]))

    with concurrent.futures.ThreadPoolExecutor(max_workers=in_flight * len(RENDITIONS) * len(targets)) as pool:
        for group in range(0, SEGMENTS, in_flight):
            jobs = [(r, i, folder, auth) for r in RENDITIONS for i in range(group, min(group + in_flight, SEGMENTS))
                    for folder, auth in targets]
            rng.shuffle(jobs)
            for f in [pool.submit(put, *job) for job in jobs]:
                f.result()
            time.sleep(0.2)
    return results


def check_listing(results, numbering, ladder):
    unexpected = {s: v for s, v in results.items() if s not in (201, 204, 409)}
    assert not unexpected, unexpected
    acked = {(r, h) for s in (201, 204) for r, _, h, _ in results.get(s, [])}
    refused = {(r, h) for r, _, h, _ in results.get(409, [])} - acked
    for rendition in RENDITIONS:
        seqs = numbering[rendition]
        listed = [seqs[n] for n in sorted(seqs)]
        assert sorted(seqs) == list(range(min(seqs), max(seqs) + 1)), f"{rendition}: sequence numbers with holes {sorted(seqs)}"
        assert len(listed) == len(set(listed)), f"{rendition}: a segment listed twice"
        mine = {h for r, h in acked if r == rendition}
        assert mine <= set(listed), f"{rendition}: {len(mine - set(listed))} acknowledged segments never listed"
        assert not ({h for r, h in refused if r == rendition} & set(listed)), "a refused segment was listed"
        # Listed in media-time order: the encoder's file order.
        order = {sha(p.read_bytes()): i for i, p in enumerate(ladder[rendition])}
        positions = [order[h] for h in listed]
        assert positions == sorted(positions), f"{rendition}: not in media-time order {positions}"
    return len(acked), len(refused)


def make_channel(mp, name):
    ingest = mp.create_channel(Id=name)["HlsIngest"]["IngestEndpoints"]
    mp.create_origin_endpoint(ChannelId=name, Id=f"{name}-hls", ManifestName="index",
                              HlsPackage={"SegmentDurationSeconds": 2, "PlaylistWindowSeconds": 120})
    return [(e["Url"][: -len("channel")], (e["Username"], e["Password"])) for e in ingest]


def media_urls(server, name):
    return {r: f"{server.base}/out/v1/{name}-hls/index_{r}-seg.m3u8" for r in RENDITIONS}


@pytest.mark.parametrize("inputs", ["A", "AB"])
def test_overlapping_uploads_are_all_listed_once_in_order(make_server, ladder, inputs):
    # The uploads end long before the last polls: no "stale" 404 for a stopped encoder here.
    server = make_server(NO_STALE)
    mp = server.mediapackage()
    totals = []
    for in_flight in (1, 2, 4, 8):
        name = f"par{in_flight}{inputs.lower()}"
        endpoints = make_channel(mp, name)
        targets = endpoints[: len(inputs)]
        poller = Poller(media_urls(server, name))
        try:
            results = upload_all(targets, ladder, in_flight, seed=in_flight)
            time.sleep(2.5)  # past the publish horizon: nothing is left waiting
        finally:
            numbering = poller.finish()
        assert not poller.errors, (in_flight, poller.errors[:5])
        try:
            acked, refused = check_listing(results, numbering, ladder)
        except AssertionError as e:
            raise AssertionError(f"{in_flight} in flight to {inputs}: {e}") from e
        totals.append((in_flight, acked, refused))
        # A refusal is only ever the publish-horizon 409, which says what happened.
        assert all(b"publish horizon" in body for *_, body in results.get(409, [])), results.get(409)
        if server.store == "local":
            # A rendition's timeline starts at the first segment indexed, so segments of the
            # first in-flight group that lost the race to it are refused; later uploads of one
            # group land well within the 2 s horizon of each other. (moto, which handles
            # DynamoDB calls one at a time in Python, can take longer than the horizon with 16
            # uploads in flight: those are refused too, never lost.)
            late = sorted({i for _, i, _, _ in results.get(409, [])})
            assert all(i < in_flight for i in late), (in_flight, late)
    print("in flight, acknowledged, refused:", totals)


def test_two_processes_on_one_store_number_interleaved_uploads_once(moto, ladder):
    env = aws_env(moto, f"two-{free_port()}")
    first = Server(args=["--create-aws-resources", *NO_STALE], env=env)
    second = Server(args=NO_STALE, env=env)
    try:
        mp = first.mediapackage()
        endpoints = make_channel(mp, "twoproc")
        folder, auth = endpoints[0]
        other = folder.replace(first.base, second.base)
        assert other != folder
        poller = Poller(media_urls(first, "twoproc"))
        try:
            # Uploads alternate between the two processes, four in flight per rendition.
            results = {}
            rng = random.Random(7)
            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                for group in range(0, SEGMENTS, 4):
                    jobs = [(r, i) for r in RENDITIONS for i in range(group, group + 4)]
                    rng.shuffle(jobs)

                    def put(r, i):
                        path = ladder[r][i]
                        target = folder if (i + hash(r)) % 2 else other
                        status, body = request("PUT", target + f"{r}/{path.name}", path.read_bytes(), auth)
                        return status, (r, i, sha(path.read_bytes()), body[:300])

                    for status, entry in pool.map(lambda job: put(*job), jobs):
                        results.setdefault(status, []).append(entry)
                    time.sleep(0.2)
            time.sleep(2.5)
        finally:
            numbering = poller.finish()
        assert not poller.errors, poller.errors[:5]
        acked, refused = check_listing(results, numbering, ladder)
        assert acked + refused == SEGMENTS * len(RENDITIONS), results.keys()
        assert all(b"publish horizon" in body or b"arrived after" in body for *_, body in results.get(409, []))
        # Both processes serve the same numbering.
        for r, url in media_urls(second, "twoproc").items():
            status, body = request("GET", url)
            assert status == 200
            a = m3u8.loads(request("GET", media_urls(first, "twoproc")[r])[1].decode())
            b = m3u8.loads(body.decode())
            assert (a.media_sequence, [s.uri for s in a.segments]) == (b.media_sequence, [s.uri for s in b.segments])
    finally:
        second.stop()
        first.stop()


def test_short_ffmpeg_pushes_always_end(local_server, tmp_path):
    """The README's ffmpeg command (two renditions, -method PUT) cut to 6 s, twenty times,
    five at once: every rendition of every push shows #EXT-X-ENDLIST."""
    source = tmp_path / "source.ts"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i",
         "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine", "-t", "6",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
         "-c:a", "aac", "-f", "mpegts", str(source)],
        check=True, timeout=60,
    )
    mp = local_server.mediapackage()

    def push(n):
        name = f"ends{n}"
        ingest = mp.create_channel(Id=name)["HlsIngest"]["IngestEndpoints"][0]
        mp.create_origin_endpoint(ChannelId=name, Id=f"{name}-hls", ManifestName="index",
                                  HlsPackage={"SegmentDurationSeconds": 2})
        parts = urllib.parse.urlsplit(ingest["Url"][: -len("channel")])
        folder = f"{parts.scheme}://{ingest['Username']}:{ingest['Password']}@{parts.netloc}{parts.path}"
        proc = subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-i", str(source),
             "-map", "0:v", "-map", "0:a", "-map", "0:v", "-map", "0:a", "-c", "copy",
             "-f", "hls", "-hls_time", "2", "-method", "PUT", "-master_pl_name", "master.m3u8",
             "-var_stream_map", "v:0,a:0,name:720p v:1,a:1,name:360p",
             "-hls_segment_filename", folder + "%v/seg_%05d.ts", folder + "%v/index.m3u8"],
            capture_output=True, text=True, timeout=60,
        )
        assert proc.returncode == 0, proc.stderr[-1000:]
        ended = {}
        last = {}
        deadline = time.time() + 10
        while time.time() < deadline and len(ended) < 2:
            for r in ("720p", "360p"):
                status, body = request("GET", f"{local_server.base}/out/v1/{name}-hls/index_{r}-seg.m3u8")
                last[r] = (status, body[-300:])
                if status == 200 and b"#EXT-X-ENDLIST" in body:
                    ended[r] = True
            time.sleep(0.3)
        if len(ended) < 2:
            print(name, last, proc.stderr[-500:])
        return name, sorted(ended)

    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as pool:
        outcomes = list(pool.map(push, range(20)))
    not_ended = [(name, ended) for name, ended in outcomes if ended != ["360p", "720p"]]
    assert not not_ended, not_ended
