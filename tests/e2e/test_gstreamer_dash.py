"""GStreamer 1.22 as a live DASH player against a live ffmpeg push: `gst-launch-1.0` plays
Sluice's DASH endpoints for 3 minutes of wall clock into `fakesink sync=true` (paced by the
pipeline clock, as a real player is), with both of GStreamer's DASH demuxers — the classic
`dashdemux` (gst-plugins-bad, inside `uridecodebin`) and `dashdemux2` (gst-plugins-good
adaptivedemux2, only reachable through `uridecodebin3`). `gst-launch-1.0 -v` prints every
buffer's PTS (fakesink `last-message`); a player passes when its first video buffer comes
within 30 s, it reports no ERROR and no EOS before it is stopped, no more than 8 s of wall
clock pass between two video buffers (or after the last one), the video PTS never steps back
nor forward by more than 4 s, and it advances by at least 180 - 40 s.

All four players start together, after the stream is older than the MPDs'
suggestedPresentationDelay + 2 s (counted from availabilityStartTime + Period@start), so the
module takes about 4 minutes; at most four `gst-launch-1.0` run at once, on 2 shared cores:
- `$Number$` with `@duration` (NUMBER_WITH_DURATION), FULL with dashdemux and COMPACT with
  dashdemux2: these must play (the other pairing is not run, to stay within four players);
- SegmentTimeline, NUMBER_WITH_TIMELINE FULL with dashdemux and TIME_WITH_TIMELINE COMPACT
  with dashdemux2: expected to fail (xfail, not strict) because of GStreamer — see
  `TIMELINE_BUG`. They are checked against the same criteria, so the test XPASSes once
  GStreamer is fixed.

Known issue, left as it is: while the stream is younger than suggestedPresentationDelay, the
NUMBER_WITH_DURATION MPD's Period@start is the first segment's start (1.48 s), the live edge
(now - availabilityStartTime - suggestedPresentationDelay) falls before it, and the classic
dashdemux fails with "Unable to find live period active". That is why the players wait.
"""

import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime

import pytest

from conftest import Server, encoder_folder

PLAY_SECONDS = 180
STARTUP = 30.0  # first video buffer within this many seconds of starting the player
STALL = 8.0  # wall-clock seconds allowed without a video buffer
JUMP = 4.0  # largest PTS step, back or forward, between two video buffers
SLACK = 40.0  # the video PTS must advance by at least PLAY_SECONDS - SLACK
ENCODER_SECONDS = PLAY_SECONDS + 150  # outlives the wait for the players and their run

# name: (SegmentTemplateFormat, ManifestLayout, demuxer that plays it)
DURATION = {
    "number-with-duration-full": ("NUMBER_WITH_DURATION", "FULL", "dashdemux"),
    "number-with-duration-compact": ("NUMBER_WITH_DURATION", "COMPACT", "dashdemux2"),
}
TIMELINE = {
    "number-with-timeline-full": ("NUMBER_WITH_TIMELINE", "FULL", "dashdemux"),
    "time-with-timeline-compact": ("TIME_WITH_TIMELINE", "COMPACT", "dashdemux2"),
}
ENDPOINTS = {**DURATION, **TIMELINE}

# (uridecodebin element, GST_PLUGIN_FEATURE_RANK) per demuxer: the ranks keep the other one out.
DEMUXERS = {
    "dashdemux": ("uridecodebin", "dashdemux2:NONE,hlsdemux2:NONE"),
    "dashdemux2": ("uridecodebin3", "dashdemux:NONE,hlsdemux:NONE,dashdemux2:MAX,hlsdemux2:MAX"),
}

TIMELINE_BUG = (
    "GStreamer 1.22 cannot follow a live SegmentTimeline once the window no longer starts near 0: "
    "gst_mpd_client_stream_seek() (gst-plugins-bad 1.22.0 ext/dash/gstmpdclient.c:1708-1711, "
    "gst-plugins-good ext/adaptivedemux2/dash/gstmpdclient.c:1710-1713) computes repeat_index = "
    "((ts - segment->start) + segments[0]->start) / segment->duration, adding the first listed "
    "segment's start; ffmpeg's own `-f dash -use_timeline 1` live output fails the same way on "
    "this GStreamer while its `@duration` output plays"
)

PTS = re.compile(r"(vsink|asink)\W.*?last-message.*?chain.*?pts:\\? (\d+):(\d\d):(\d\d\.\d+)")
PACKAGES = "gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-libav"


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError as e:
        return None, str(e).encode()


def require_gstreamer():
    if not shutil.which("gst-launch-1.0") or not shutil.which("gst-inspect-1.0"):
        pytest.skip(f"gst-launch-1.0 is missing: apt-get install {PACKAGES}")
    for element in ["dashdemux", "dashdemux2", "uridecodebin3", "avdec_h264"]:
        run = subprocess.run(["gst-inspect-1.0", element], capture_output=True, timeout=60)
        if run.returncode != 0:
            pytest.skip(f"GStreamer element {element} is missing: apt-get install {PACKAGES}")


def seconds(iso_duration):
    """`PT1.480S` → 1.48 (the MPDs write seconds only)."""
    return float(iso_duration.removeprefix("PT").removesuffix("S"))


def mpd_age(body):
    """How far the wall clock is past the Period's start, less suggestedPresentationDelay."""
    text = body.decode()
    ast = re.search(r'availabilityStartTime="([^"]+)"', text)
    delay = re.search(r'suggestedPresentationDelay="([^"]+)"', text)
    start = re.search(r'<Period[^>]*\sstart="([^"]+)"', text)
    if not (ast and delay and start):
        return None
    ast = datetime.fromisoformat(ast[1].replace("Z", "+00:00")).timestamp()
    return time.time() - ast - seconds(start[1]) - seconds(delay[1])


class Player:
    """`gst-launch-1.0` playing `url` with one demuxer; records (wall, PTS) of every video buffer."""

    def __init__(self, name, url, demuxer, log_path):
        self.name, self.url, self.demuxer, self.log_path = name, url, demuxer, log_path
        element, ranks = DEMUXERS[demuxer]
        env = {**os.environ, "GST_DEBUG_NO_COLOR": "1", "GST_PLUGIN_FEATURE_RANK": ranks}
        cmd = ["gst-launch-1.0", "-v", element, f"uri={url}", "name=d",
               "d.", "!", "video/x-raw", "!", "queue", "!", "fakesink", "name=vsink", "sync=true", "silent=false",
               "d.", "!", "audio/x-raw", "!", "queue", "!", "fakesink", "name=asink", "sync=true", "silent=false"]
        self.video, self.audio_buffers, self.errors = [], 0, []
        self.stopped_at, self.exited_early = None, None
        self.started = time.time()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                                     errors="replace", start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        with open(self.log_path, "w") as log:
            for line in self.proc.stdout:
                wall = time.time() - self.started
                m = PTS.search(line)
                if m:
                    if m[1] == "vsink":
                        self.video.append((wall, int(m[2]) * 3600 + int(m[3]) * 60 + float(m[4])))
                    else:
                        self.audio_buffers += 1
                    continue
                log.write(f"{wall:8.2f} {line}")
                if self.stopped_at is None and (line.startswith("ERROR") or "Got EOS" in line):
                    self.errors.append(f"{wall:.1f}s {line.strip()[:200]}")

    def interrupt(self):
        self.stopped_at = time.time() - self.started
        self.exited_early = self.proc.poll()
        if self.exited_early is None:
            self.proc.send_signal(signal.SIGINT)

    def finish(self):
        """Waits for the SIGINT to take (5 s), else kills; then reads what is left."""
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.reader.join(10)

    def problems(self):
        out = []
        if self.errors:
            out.append(f"{len(self.errors)} ERROR/EOS lines, first: {self.errors[0]}")
        if self.exited_early is not None:
            out.append(f"gst-launch-1.0 exited with {self.exited_early} before it was stopped")
        if not self.video:
            return out + ["no video buffer"]
        m = self.measures()
        if m["first_buffer"] > STARTUP:
            out.append(f"first video buffer after {m['first_buffer']:.1f}s")
        if m["max_gap"] > STALL:
            out.append(f"{m['max_gap']:.1f}s without a video buffer from {m['max_gap_at']:.1f}s")
        if m["max_back"] > JUMP or m["max_forward"] > JUMP:
            out.append(f"PTS steps: back {m['max_back']:.2f}s, forward {m['max_forward']:.2f}s")
        if m["pts_span"] < PLAY_SECONDS - SLACK:
            out.append(f"video PTS advanced {m['pts_span']:.1f}s in {PLAY_SECONDS}s")
        return out

    def measures(self):
        walls = [w for w, _ in self.video]
        gaps = [(b - a, a) for a, b in zip(walls, walls[1:])]
        gaps.append((self.stopped_at - walls[-1], walls[-1]))  # stalled until the end?
        steps = [q - p for (_, p), (_, q) in zip(self.video, self.video[1:])]
        gap, at = max(gaps)
        return {
            "first_buffer": walls[0], "buffers": len(self.video), "audio_buffers": self.audio_buffers,
            "pts_first": self.video[0][1], "pts_last": self.video[-1][1],
            "pts_span": self.video[-1][1] - self.video[0][1],
            "max_gap": gap, "max_gap_at": at,
            "max_back": max([0.0] + [-s for s in steps]), "max_forward": max([0.0] + steps),
        }

    def summary(self):
        head = f"{self.name} ({self.demuxer})"
        if not self.video:
            return f"{head}: no video buffer; errors {self.errors[:3]}; log {self.log_path}"
        m = self.measures()
        return (f"{head}: first video buffer {m['first_buffer']:.1f}s, {m['buffers']} video / "
                f"{m['audio_buffers']} audio buffers, video PTS {m['pts_first']:.2f} -> {m['pts_last']:.2f} "
                f"(+{m['pts_span']:.1f}s in {PLAY_SECONDS}s), longest gap {m['max_gap']:.2f}s at "
                f"{m['max_gap_at']:.1f}s, PTS steps back {m['max_back']:.3f}s / forward {m['max_forward']:.3f}s, "
                f"{len(self.errors)} ERROR/EOS lines{' (first: ' + self.errors[0] + ')' if self.errors else ''}; "
                f"log {self.log_path}")


@pytest.fixture(scope="module")
def played(tmp_path_factory):
    """Server, channel, the four endpoints and a live push; then all four players, together,
    for PLAY_SECONDS: {endpoint name: finished Player}."""
    require_gstreamer()
    logs = tmp_path_factory.mktemp("gstreamer")
    server = Server()
    mp = server.mediapackage()
    ingest = mp.create_channel(Id="gst")["HlsIngest"]["IngestEndpoints"][0]
    urls = {}
    for name, (fmt, layout, _) in ENDPOINTS.items():
        urls[name] = mp.create_origin_endpoint(ChannelId="gst", Id=name, DashPackage={
            "SegmentDurationSeconds": 2, "SegmentTemplateFormat": fmt, "ManifestLayout": layout})["Url"]
        assert urllib.parse.urlsplit(urls[name]).hostname == "127.0.0.1", urls[name]
    folder = encoder_folder(ingest)
    encoder_log = logs / "ffmpeg.log"
    encoder = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "verbose", "-nostdin", "-re",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(ENCODER_SECONDS),
         "-filter_complex", "[0:v]split=2[a][b];[b]scale=320:180[b2]",
         "-map", "[a]", "-map", "[b2]", "-map", "1:a", "-map", "1:a",
         "-c:v", "libx264", "-preset", "veryfast", "-threads", "1", "-g", "50", "-keyint_min", "50",
         "-sc_threshold", "0", "-b:v:0", "500k", "-b:v:1", "150k", "-c:a", "aac", "-b:a", "64k",
         "-f", "hls", "-hls_time", "2", "-hls_list_size", "6", "-method", "PUT",
         "-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,a:0,name:360p v:1,a:1,name:180p",
         "-hls_segment_filename", folder + "%v/seg_%05d.ts", folder + "%v/index.m3u8"],
        stdout=subprocess.DEVNULL, stderr=open(encoder_log, "w"),
    )
    players = []
    try:
        # Every MPD answers, and the live edge is past its Period's start by 2 s.
        deadline = time.time() + 90
        while True:
            ages = {}
            for name, url in urls.items():
                status, body = fetch(url)
                ages[name] = mpd_age(body) if status == 200 else None
            if all(age is not None and age > 2 for age in ages.values()):
                break
            assert time.time() < deadline, (ages, encoder_log.read_text()[-2000:])
            assert encoder.poll() is None, encoder_log.read_text()[-2000:]
            time.sleep(1)
        for name, (_, _, demuxer) in ENDPOINTS.items():
            players.append(Player(name, urls[name], demuxer, logs / f"{name}.log"))
        time.sleep(PLAY_SECONDS)
        assert encoder.poll() is None, ("the encoder stopped before the players", encoder_log.read_text()[-2000:])
        for player in players:
            player.interrupt()
        for player in players:
            player.finish()
        yield {player.name: player for player in players}
    finally:
        for player in players:
            if player.proc.poll() is None:
                player.proc.kill()
                player.proc.wait(5)
        encoder.terminate()
        try:
            encoder.wait(10)
        except subprocess.TimeoutExpired:
            encoder.kill()
            encoder.wait(5)
        server.stop()


def check(players):
    for player in players:
        print(player.summary())
    failures = {player.name: player.problems() for player in players if player.problems()}
    assert not failures, "\n".join([f"{name}: {problems}" for name, problems in failures.items()]
                                   + [player.summary() for player in players])


def test_gstreamer_plays_number_with_duration_live(played):
    check([played[name] for name in DURATION])


@pytest.mark.xfail(strict=False, reason=TIMELINE_BUG)
def test_gstreamer_plays_segment_timeline_live(played):
    check([played[name] for name in TIMELINE])
