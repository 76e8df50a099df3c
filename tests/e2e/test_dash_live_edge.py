"""DASH checked against the wall clock during a 3-minute live ffmpeg push: on every poll,
the newest segment each MPD announces at the moment of asking — by the wall clock for
`$Number$` with `@duration` (ISO/IEC 23009-1 §5.3.9.5.3), the last `S` for the
SegmentTimeline formats — answers 200, for every Representation; then ffmpeg (as a
player) decodes 10 s of every DASH template format and layout, and of HLS TS and CMAF,
with no error line."""

import re
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from fractions import Fraction

import mpegdash.parser
import pytest

from conftest import Server, encoder_folder

RUN_SECONDS = 180
FORMATS = ["NUMBER_WITH_TIMELINE", "TIME_WITH_TIMELINE", "NUMBER_WITH_DURATION"]
LAYOUTS = ["FULL", "COMPACT"]


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def seconds(iso_duration):
    """`PT1.400S` → 1.4 (the MPDs write seconds only)."""
    return Fraction(iso_duration.removeprefix("PT").removesuffix("S"))


def instant(iso):
    return Fraction(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()).limit_denominator(1000)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    server = Server()
    mp = server.mediapackage()
    ingest = mp.create_channel(Id="edge")["HlsIngest"]["IngestEndpoints"][0]
    urls = {}
    for fmt in FORMATS:
        for layout in LAYOUTS:
            name = f"{fmt.lower()}-{layout.lower()}".replace("_", "-")
            urls[name] = mp.create_origin_endpoint(ChannelId="edge", Id=name, DashPackage={
                "SegmentDurationSeconds": 2, "SegmentTemplateFormat": fmt, "ManifestLayout": layout})["Url"]
    urls["hls"] = mp.create_origin_endpoint(ChannelId="edge", Id="hls", HlsPackage={
        "SegmentDurationSeconds": 2})["Url"]
    urls["cmaf"] = mp.create_origin_endpoint(ChannelId="edge", Id="cmaf", CmafPackage={
        "SegmentDurationSeconds": 2, "HlsManifests": [{"Id": "hls"}]})["Url"]
    folder = encoder_folder(ingest)
    log = tmp_path_factory.mktemp("encoder") / "ffmpeg.log"
    encoder = subprocess.Popen(
        ["ffmpeg", "-hide_banner", "-loglevel", "verbose", "-nostdin", "-re",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(RUN_SECONDS + 30),
         "-filter_complex", "[0:v]split=2[a][b];[b]scale=320:180[b2]",
         "-map", "[a]", "-map", "[b2]", "-map", "1:a", "-map", "1:a",
         "-c:v", "libx264", "-preset", "veryfast", "-threads", "1", "-g", "50", "-keyint_min", "50",
         "-sc_threshold", "0", "-b:v:0", "500k", "-b:v:1", "150k", "-c:a", "aac", "-b:a", "64k",
         "-f", "hls", "-hls_time", "2", "-hls_list_size", "6", "-method", "PUT",
         "-master_pl_name", "master.m3u8", "-var_stream_map", "v:0,a:0,name:360p v:1,a:1,name:180p",
         "-hls_segment_filename", folder + "%v/seg_%05d.ts", folder + "%v/index.m3u8"],
        stdout=subprocess.DEVNULL, stderr=open(log, "w"),
    )
    started = time.time()
    try:
        deadline = time.time() + 40
        while True:
            status, master = fetch(urls["hls"])
            media = [line for line in master.decode().splitlines() if line and not line.startswith("#")]
            if status == 200 and media and b"#EXTINF" in fetch(urllib.parse.urljoin(urls["hls"], media[0]))[1]:
                break
            assert time.time() < deadline, log.read_text()[-2000:]
            time.sleep(0.5)
        time.sleep(8)  # a few segments in every window
        yield server, urls, started
    finally:
        encoder.terminate()
        encoder.wait(10)
        server.stop()


def newest_announced(mpd_text, url, now):
    """URLs of the newest segment of each Representation the MPD announces at `now`."""
    mpd = mpegdash.parser.MPEGDASHParser.parse(mpd_text)
    ast = instant(mpd.availability_start_time)
    period = mpd.periods[0]
    out = []
    for adaptation in period.adaptation_sets:
        for representation in adaptation.representations:
            template = (representation.segment_templates or adaptation.segment_templates)[0]
            media = template.media.replace("$RepresentationID$", representation.id)
            if template.duration:
                d = Fraction(template.duration, template.timescale)
                start_number = template.start_number if template.start_number is not None else 1
                # §5.3.9.5.3: segment n is available once it has ended on the MPD timeline.
                elapsed = now - ast - seconds(period.start)
                newest = start_number + int(elapsed // d) - 1
                out.append(media.replace("$Number$", str(newest)))
            else:
                timeline = template.segment_timelines[0].Ss
                t = None
                number = template.start_number if template.start_number is not None else 1
                for s in timeline:
                    t = s.t if s.t is not None else t
                    for _ in range((s.r or 0) + 1):
                        last_t, last_number = t, number
                        t += s.d
                        number += 1
                out.append(media.replace("$Time$", str(last_t)).replace("$Number$", str(last_number)))
    return [urllib.parse.urljoin(url, m) for m in out]


def test_the_newest_announced_segment_exists_on_every_poll(live):
    _, urls, started = live
    dash = {name: url for name, url in urls.items() if name not in ("hls", "cmaf")}
    misses, polls = [], 0
    while time.time() - started < RUN_SECONDS:
        for name, url in dash.items():
            status, body = fetch(url)
            assert status == 200, (name, body[:300])
            now = Fraction(time.time()).limit_denominator(1000)
            for segment in newest_announced(body.decode(), url, now):
                polls += 1
                status, answer = fetch(segment)
                if status != 200:
                    misses.append((name, round(float(now - Fraction(started)), 1), segment.rsplit("/", 1)[1],
                                   status, answer[:120]))
        time.sleep(0.7)
    assert polls > 500 and not misses, (polls, misses[:10])


def first_segment_start(url):
    """`t` of the first `S` in the MPD: it changes when the window slides by a segment."""
    status, body = fetch(url)
    assert status == 200, body[:300]
    return re.search(rb'<S t="(\d+)"', body).group(1)


def just_after_the_window_slides(url):
    """Returns once the first `S` of the timeline at `url` has moved on (bounded: 3 s)."""
    first = first_segment_start(url)
    deadline = time.time() + 3
    while first_segment_start(url) == first and time.time() < deadline:
        time.sleep(0.05)


def ffmpeg_errors(url):
    run = subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-i", url, "-t", "10", "-f", "null", "-"],
                         capture_output=True, text=True, timeout=90)
    return run.returncode, [line for line in run.stderr.splitlines() if line.strip()]


def test_ffmpeg_decodes_every_dash_format_and_layout_and_hls(live):
    # After the poll above: the stream is older than the MPDs' timeShiftBufferDepth (60 s).
    # ffmpeg 5.1's DASH reader computes `$Number$`s of an `@duration` MPD from
    # (now - availabilityStartTime) - timeShiftBufferDepth and - suggestedPresentationDelay
    # in unsigned arithmetic (libavformat/dashdec.c calc_min_seg_no / calc_cur_seg_no),
    # which wraps around while the stream is younger than those: it then asks for the same
    # segment again and again. That is ffmpeg's; Sluice's part was a non-zero
    # presentationTimeOffset, which that reader mishandles at any age.
    #
    # With a SegmentTimeline the same reader re-reads the MPD before every segment and
    # carries its position over as an index into the timeline (dashdec.c refresh_manifest:
    # get_segment_start_time_based_on_timeline with the old position, then
    # calc_next_seg_no_from_timelines on the new timeline). When the window has slid by a
    # segment between two reads, the index now names the previous segment: ffmpeg fetches it
    # again and reports "non monotonically increasing dts". Any sliding-window timeline
    # (ffmpeg's own `-f dash -window_size` output too) gives that. So a timeline endpoint is
    # read right after its window has slid, which leaves ffmpeg ~2 s to read its 10 s
    # before the next slide.
    _, urls, started = live
    assert time.time() - started > 90
    failures = {}
    for name, url in urls.items():
        if "timeline" in name:
            just_after_the_window_slides(url)
        returncode, lines = ffmpeg_errors(url)
        if returncode != 0 or lines:
            failures[name] = (returncode, len(lines), lines[:3])
    assert not failures, failures
