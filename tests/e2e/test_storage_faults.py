"""Storage faults during a 60 s live ingest (sluice-local with the fault-injecting store
wrapper, `--faults`): 8 % of all storage calls fail before or after doing their work,
or stall 1.5 s and fail like a timeout. The encoder here retries on 5xx as MediaLive does
(ffmpeg never retries, nor reports errors). Checked: ingest answers 5xx, never a 2xx
for an upload it did not keep; playback answers 5xx, never a wrong or truncated body; and
once the faults stop, every segment that got a 2xx is listed and served byte for byte."""

import hashlib
import json
import pathlib
import subprocess
import threading
import time
import urllib.error
import urllib.request

import base64

from conftest import Server, aws_env, start_moto, stop_moto

SEGMENT_SECONDS = 2
SEGMENTS = 30  # 60 s


def request(method, url, body=None, auth=None):
    req = urllib.request.Request(url, data=body, method=method)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=40) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def put_with_retries(url, body, auth, log):
    """An encoder's upload: retried on 5xx; True when some attempt got a 2xx."""
    for _ in range(10):
        status, text = request("PUT", url, body, auth)
        log.append(status)
        if 200 <= status < 300:
            return True
        assert status >= 500, (url, status, text[:300])
        time.sleep(0.1)
    return False


def test_acknowledged_segments_survive_storage_faults(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(SEGMENTS * SEGMENT_SECONDS),
         "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-b:v", "200k", "-c:a", "aac", "-b:a", "64k",
         "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_list_size", "0",
         "-hls_segment_filename", str(source / "seg_%03d.ts"), str(source / "index.m3u8")],
        check=True)
    segments = sorted(source.glob("seg_*.ts"))
    assert len(segments) == SEGMENTS
    uploaded = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name for p in segments}

    faults = tmp_path / "faults.json"
    srv = Server(args=["--faults", str(faults)])
    try:
        mp = srv.mediapackage()
        channel = mp.create_channel(Id="faulty")
        ingest = channel["HlsIngest"]["IngestEndpoints"][0]
        auth = (ingest["Username"], ingest["Password"])
        folder = ingest["Url"].rsplit("/", 1)[0] + "/"
        url = mp.create_origin_endpoint(ChannelId="faulty", Id="faulty-hls", ManifestName="index",
                                        HlsPackage={"SegmentDurationSeconds": SEGMENT_SECONDS,
                                                    "PlaylistWindowSeconds": 300})["Url"]
        media_url = url.replace("index.m3u8", "index_360p-seg.m3u8")
        base = url.rsplit("/", 1)[0] + "/"

        faults.write_text(json.dumps({"fail": 0.04, "fail_after": 0.03, "slow": 0.01, "slow_ms": 1500}))
        statuses, acked, playback = [], set(), {"ok": 0, "5xx": 0, "bad": []}
        stop = threading.Event()

        def watch():
            """A player during the faults: every 200 must be whole and right."""
            while not stop.is_set():
                status, body = request("GET", media_url)
                if status >= 500:
                    playback["5xx"] += 1
                elif status == 200:
                    text = body.decode()
                    if not text.startswith("#EXTM3U"):
                        playback["bad"].append(("playlist", text[:200]))
                    for name in [l for l in text.splitlines() if l and not l.startswith("#")][-2:]:
                        status, seg = request("GET", base + name)
                        if status == 200:
                            playback["ok"] += 1
                            if hashlib.sha256(seg).hexdigest() not in uploaded:
                                playback["bad"].append((name, len(seg)))
                        elif status >= 500:
                            playback["5xx"] += 1
                        else:
                            playback["bad"].append((name, status))
                time.sleep(0.3)

        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.time()
        lines = ["#EXTM3U", "#EXT-X-VERSION:3", f"#EXT-X-TARGETDURATION:{SEGMENT_SECONDS}", "#EXT-X-MEDIA-SEQUENCE:0"]
        for i, path in enumerate(segments):
            time.sleep(max(0.0, started + i * SEGMENT_SECONDS - time.time()))
            body = path.read_bytes()
            if put_with_retries(folder + "360p/" + path.name, body, auth, statuses):
                acked.add(hashlib.sha256(body).hexdigest())
            lines += [f"#EXTINF:{SEGMENT_SECONDS}.000000,", path.name]
            put_with_retries(folder + "360p/index.m3u8", "\n".join(lines).encode() + b"\n", auth, statuses)
        stop.set()
        watcher.join(30)
        faults.unlink()
        time.sleep(0.5)

        injected = sum(1 for e in srv.logs() if e.get("fields", {}).get("message") == "injected storage fault")
        assert injected >= 20, f"only {injected} faults were injected"
        assert sum(1 for s in statuses if s >= 500) >= 5, "ingest answered the faults with 5xx"
        assert not playback["bad"], playback["bad"]
        assert playback["ok"] > 10 and playback["5xx"] > 0, playback

        # Faults off: everything acknowledged is listed and served intact.
        status, body = request("GET", media_url)
        assert status == 200, body
        names = [l for l in body.decode().splitlines() if l and not l.startswith("#")]
        served = {}
        for name in names:
            status, seg = request("GET", base + name)
            assert status == 200, (name, status)
            served[hashlib.sha256(seg).hexdigest()] = name
        missing = [uploaded[h] for h in acked - set(served)]
        assert not missing, f"acknowledged but not served: {missing}"
        assert set(served) <= set(uploaded), "every served segment is one of the uploads"
        print(f"faults injected: {injected}; ingest 5xx: {sum(1 for s in statuses if s >= 500)} of "
              f"{len(statuses)} requests; acked {len(acked)}/{SEGMENTS}; playback 200 {playback['ok']}, "
              f"5xx {playback['5xx']}")
    finally:
        srv.stop()


def test_stopped_and_resumed_emulator_loses_nothing(tmp_path):
    """S3 + DynamoDB (moto) frozen for 24 s in the middle of a live ingest on the AWS
    adapters (SIGSTOP, then SIGCONT: the process keeps its data, as after a real outage):
    the upload caught in the freeze is answered 503 when the storage call times out (20 s,
    under API Gateway's 29 s), the encoder's retry succeeds once storage is back, and
    every acknowledged segment is listed and served byte for byte."""
    import os
    import signal

    source = tmp_path / "source"
    source.mkdir()
    count = 10
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25",
         "-t", str(count * SEGMENT_SECONDS), "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-b:v", "200k",
         "-f", "hls", "-hls_time", str(SEGMENT_SECONDS), "-hls_list_size", "0",
         "-hls_segment_filename", str(source / "seg_%03d.ts"), str(source / "index.m3u8")],
        check=True)
    segments = sorted(source.glob("seg_*.ts"))
    uploaded = {hashlib.sha256(p.read_bytes()).hexdigest(): p.name for p in segments}

    moto, endpoint = start_moto()
    srv = None
    try:
        srv = Server(args=["--create-aws-resources"], env=aws_env(endpoint, f"freeze-{moto.pid}"))
        mp = srv.mediapackage()
        ingest = mp.create_channel(Id="frozen")["HlsIngest"]["IngestEndpoints"][0]
        auth = (ingest["Username"], ingest["Password"])
        folder = ingest["Url"].rsplit("/", 1)[0] + "/"
        url = mp.create_origin_endpoint(ChannelId="frozen", Id="frozen-hls", ManifestName="index",
                                        HlsPackage={"SegmentDurationSeconds": SEGMENT_SECONDS,
                                                    "PlaylistWindowSeconds": 300})["Url"]
        statuses, acked = [], set()
        for i, path in enumerate(segments):
            if i == 4:
                os.kill(moto.pid, signal.SIGSTOP)
                threading.Timer(24, os.kill, (moto.pid, signal.SIGCONT)).start()
            body = path.read_bytes()
            if put_with_retries(folder + "360p/" + path.name, body, auth, statuses):
                acked.add(hashlib.sha256(body).hexdigest())
        assert len(acked) == count, f"{len(acked)} of {count} acknowledged after retries"
        assert 503 in statuses, f"the upload caught in the freeze was not answered 503: {statuses}"

        media_url = url.replace("index.m3u8", "index_360p-seg.m3u8")
        base = url.rsplit("/", 1)[0] + "/"
        status, body = request("GET", media_url)
        assert status == 200, body
        served = set()
        for name in [l for l in body.decode().splitlines() if l and not l.startswith("#")]:
            status, seg = request("GET", base + name)
            assert status == 200, (name, status)
            served.add(hashlib.sha256(seg).hexdigest())
        assert acked <= served, [uploaded[h] for h in acked - served]
        print(f"freeze: ingest statuses {statuses}")
    finally:
        if srv:
            srv.stop()
        os.kill(moto.pid, signal.SIGCONT)
        stop_moto(moto)
