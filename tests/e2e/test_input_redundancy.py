"""Input redundancy: the same timecode-locked stream pushed to both ingest endpoints of a
channel, in real time. Input A stops mid-stream, later B stops and A resumes. hls.js in
Chromium keeps playing throughout (no stall over 1 s), the media playlists never skip or
repeat a media sequence number, and every segment response says which input it came from
(`X-Sluice-Active-Input`, MediaPackage's ActiveInput)."""

import base64
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from conftest import ROOT

SEGMENTS = 18          # 2 s each
BOTH, B_ONLY, A_ONLY = range(0, 6), range(6, 11), range(11, SEGMENTS)


def put(url, body, auth):
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    req = urllib.request.Request(url, data=body, method="PUT", headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status in (201, 204), r.status


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_failover_between_inputs_keeps_hlsjs_playing(local_server, tmp_path):
    server = local_server
    mp = server.mediapackage()
    endpoints = mp.create_channel(Id="ab")["HlsIngest"]["IngestEndpoints"]
    url = mp.create_origin_endpoint(ChannelId="ab", Id="ab-hls", ManifestName="index",
                                    HlsPackage={"SegmentDurationSeconds": 2, "PlaylistWindowSeconds": 60})["Url"]
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i",
         "testsrc2=size=320x180:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", str(2 * SEGMENTS),
         "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
         "-c:a", "aac", "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
         "-hls_segment_filename", str(tmp_path / "seg_%05d.ts"), str(tmp_path / "index.m3u8")],
        check=True, timeout=120,
    )
    files = sorted(tmp_path.glob("seg_*.ts"))
    assert len(files) == SEGMENTS
    inputs = {name: (e["Url"][: -len("channel")], (e["Username"], e["Password"]), e["Id"])
              for name, e in zip("AB", endpoints)}

    def feed():
        # The first three slots at once (a live window to join), then one every 2 s.
        start = time.time() - 6
        for i, f in enumerate(files):
            time.sleep(max(0.0, start + 2 * i - time.time()))
            senders = "AB" if i in BOTH else ("B" if i in B_ONLY else "A")
            for name in senders:
                folder, auth, _ = inputs[name]
                put(folder + "v/" + f.name, f.read_bytes(), auth)

    feeder = threading.Thread(target=feed)
    feeder.start()
    media_url = f"{server.base}/out/v1/ab-hls/index_v-seg.m3u8"
    deadline = time.time() + 20
    while get(media_url)[0] != 200 and time.time() < deadline:
        time.sleep(0.2)
    player = {}
    watch = threading.Thread(target=lambda: player.update(result=subprocess.run(
        ["node", str(ROOT / "tests" / "player" / "play.mjs"), "hlsjs", url, str(2 * SEGMENTS - 14), "70"],
        capture_output=True, text=True, timeout=100)))
    watch.start()
    # Every playlist seen while inputs come and go: a URI keeps its sequence number, and
    # the sequence numbers listed are consecutive.
    numbering = {}

    def check_numbering():
        status, _, body = get(media_url)
        assert status == 200, body
        lines = body.decode().splitlines()
        # RFC 8216 §4.3.3.2: absent means 0.
        sequence = int(next((l for l in lines if l.startswith("#EXT-X-MEDIA-SEQUENCE:")), ":0").split(":")[1])
        uris = [l for l in lines if l and not l.startswith("#")]
        for offset, uri in enumerate(uris):
            assert numbering.setdefault(uri, sequence + offset) == sequence + offset, (uri, numbering[uri])

    while feeder.is_alive():
        check_numbering()
        time.sleep(0.5)
    feeder.join()
    check_numbering()
    watch.join(110)
    result = player["result"]
    played = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 0 and played["maxStallSeconds"] <= 1.0, played
    assert sorted(numbering.values()) == list(range(SEGMENTS)), numbering

    # Which input each slot came from: both early on (whichever arrived first), then B,
    # then A.
    _, _, body = get(media_url)
    uris = [l for l in body.decode().splitlines() if l and not l.startswith("#")]
    assert len(uris) == SEGMENTS
    active = []
    for uri in uris:
        status, headers, segment = get(urllib.parse.urljoin(media_url, uri))
        assert status == 200 and segment[0] == 0x47
        active.append(headers["X-Sluice-Active-Input"])
    a_id, b_id = inputs["A"][2], inputs["B"][2]
    assert set(active[i] for i in BOTH) <= {a_id, b_id}
    assert [active[i] for i in B_ONLY] == [b_id] * len(B_ONLY)
    assert [active[i] for i in A_ONLY] == [a_id] * len(A_ONLY)


def test_preferred_input_serves_its_slots_unless_missing_or_late(server, tmp_path):
    """Per slot: the first ingest endpoint (A, the preferred one) serves the segment when
    it delivers it, even a moment after B; B's copy stays when A's is missing, or later
    than one segment duration. Sequence numbers and playlists are not disturbed."""
    mp = server.mediapackage()
    endpoints = mp.create_channel(Id="pref")["HlsIngest"]["IngestEndpoints"]
    url = mp.create_origin_endpoint(ChannelId="pref", Id="pref-hls", ManifestName="index",
                                    HlsPackage={"SegmentDurationSeconds": 2, "PlaylistWindowSeconds": 60})["Url"]
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-f", "lavfi", "-i",
         "testsrc2=size=320x180:rate=25", "-t", "8", "-c:v", "libx264", "-preset", "veryfast", "-g", "50",
         "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
         "-hls_segment_filename", str(tmp_path / "seg_%05d.ts"), str(tmp_path / "index.m3u8")],
        check=True, timeout=60)
    files = sorted(tmp_path.glob("seg_*.ts"))
    assert len(files) == 4
    a, b = ({"folder": e["Url"][: -len("channel")], "auth": (e["Username"], e["Password"]), "id": e["Id"]}
            for e in endpoints)

    def send(inp, i):
        put(inp["folder"] + f"360p/{files[i].name}", files[i].read_bytes(), inp["auth"])

    send(b, 0); send(a, 0)          # A a moment after B: A takes the slot
    send(b, 1)                      # A missing: B's stays
    send(b, 2); time.sleep(2.3); send(a, 2)   # A later than a segment duration: B's stays
    send(a, 3); send(b, 3)          # A first: A's

    media = url.replace("index.m3u8", "index_360p-seg.m3u8")
    status, _, body = get(media)
    assert status == 200, body
    lines = body.decode().splitlines()
    # Media sequence 0 (the tag is left out when it is 0, as RFC 8216 allows).
    assert next((l for l in lines if l.startswith("#EXT-X-MEDIA-SEQUENCE")), "#EXT-X-MEDIA-SEQUENCE:0") == \
        "#EXT-X-MEDIA-SEQUENCE:0"
    names = [l for l in lines if l and not l.startswith("#")]
    assert len(names) == 4, names
    served_by = []
    for i, name in enumerate(names):
        status, headers, segment = get(media.rsplit("/", 1)[0] + "/" + name)
        assert status == 200 and segment == files[i].read_bytes()
        served_by.append(headers["X-Sluice-Active-Input"])
    assert served_by == [a["id"], b["id"], b["id"], a["id"]], served_by
