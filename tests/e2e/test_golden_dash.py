"""Cross-checks the golden MPDs (tests/golden/dash_*.mpd, written by
shared/tests/golden_dash.rs) with an independent MPD parser, the PyPI `mpegdash` package,
against ISO/IEC 23009-1 rules for live (dynamic, isoff-live) presentations.

Fixture facts the checks rely on: every track has the same records, 6 s output segments of
three inputs from 126000 ticks (ffmpeg's 1.4 s), and media time zero at the
availabilityStartTime; dash_compact.mpd and dash_number_with_duration.mpd describe the
same segments at the same publishTime."""

import datetime
import pathlib
import re
import xml.etree.ElementTree as ET
from fractions import Fraction

from mpegdash.parser import MPEGDASHParser

GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "golden"
LIVE_PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
UTC_SCHEMES = {
    "urn:mpeg:dash:utc:http-head:2014",
    "urn:mpeg:dash:utc:http-iso:2014",
    "urn:mpeg:dash:utc:http-xsdate:2014",
}
FIRST = 126000


def load(name):
    mpd = MPEGDASHParser.parse((GOLDEN / name).read_text())
    # mpegdash reads xs:boolean with Python's bool(), which takes "false" for true: read
    # AdaptationSet@segmentAlignment from the document itself.
    root = ET.fromstring((GOLDEN / name).read_text())
    ns = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}
    alignment = [a.get("segmentAlignment") for a in root.iterfind("mpd:Period/mpd:AdaptationSet", ns)]
    for adaptation, value in zip(mpd.periods[0].adaptation_sets, alignment):
        adaptation.segment_alignment = value
    return mpd


def seconds(duration):
    """An xs:duration (ISO 8601, as MPD durations are written) in seconds."""
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", duration)
    assert m and duration not in ("P", "PT"), f"not an xs:duration: {duration!r}"
    days, hours, minutes, secs = (Fraction(g) if g else Fraction(0) for g in m.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + secs


def instant(text):
    """An xs:dateTime in seconds since the epoch."""
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert t.tzinfo is not None, f"{text}: a live MPD's times need a time zone"
    return Fraction(round(t.timestamp() * 1000), 1000)


def template_of(adaptation, representation):
    """The SegmentTemplate in force for a Representation (ISO 23009-1 §5.3.9.1: the
    Representation's own, else the AdaptationSet's)."""
    own = representation.segment_templates or adaptation.segment_templates
    assert own and len(own) == 1
    return own[0]


def timeline(template):
    """[(t, d)] of a SegmentTimeline (§5.3.9.6): an S without @t starts where the previous
    one ended, @r repeats it."""
    out, end = [], 0
    for s in template.segment_timelines[0].Ss:
        assert s.d > 0 and (s.r is None or s.r >= 0)
        t = end if s.t is None else s.t
        assert t >= end, f"S@t={t} overlaps the previous segment (ends at {end})"
        for _ in range((s.r or 0) + 1):
            out.append((t, s.d))
            t += s.d
        end = t
    return out


def expand(pattern, representation, number=None, time=None):
    """A URL template with its identifiers substituted (§5.3.9.4.4, Table 16)."""
    identifiers = set(re.findall(r"\$([^$]*)\$", pattern))
    assert identifiers <= {"RepresentationID", "Number", "Time", "Bandwidth", ""}, identifiers
    url = pattern.replace("$RepresentationID$", representation.id)
    if number is not None:
        url = url.replace("$Number$", str(number))
    if time is not None:
        url = url.replace("$Time$", str(time))
    assert "$" not in url
    return url


def check_live(mpd):
    """What every dynamic isoff-live MPD here must meet; returns its tracks as
    [(adaptation, representation, template)]."""
    assert mpd.type == "dynamic"
    assert LIVE_PROFILE in mpd.profiles.split(",")
    # §5.3.1.2: a dynamic MPD has availabilityStartTime and publishTime; minBufferTime
    # is mandatory; minimumUpdatePeriod says it changes, timeShiftBufferDepth how far back.
    ast, publish = instant(mpd.availability_start_time), instant(mpd.publish_time)
    assert ast <= publish
    for d in (mpd.min_buffer_time, mpd.minimum_update_period, mpd.time_shift_buffer_depth):
        assert d is not None and seconds(d) > 0
    assert seconds(mpd.suggested_presentation_delay) < seconds(mpd.time_shift_buffer_depth)
    [timing] = mpd.utc_timings
    assert timing.scheme_id_uri in UTC_SCHEMES and timing.value.startswith(("http://", "https://"))
    # §5.3.2.2: in a dynamic MPD every Period has an @id; the first has a @start.
    [period] = mpd.periods
    assert period.id and period.start is not None
    tracks, ids = [], set()
    for adaptation in period.adaptation_sets:
        assert adaptation.content_type in ("video", "audio")
        assert adaptation.mime_type == f"{adaptation.content_type}/mp4"
        # isoff-live (§8.4.2): segments aligned and starting with a SAP of type 1 or 2.
        assert adaptation.segment_alignment == "true" and adaptation.start_with_sap in (1, 2)
        for r in adaptation.representations:
            # §5.3.5.2: @id unique within the Period, @bandwidth and codecs present.
            assert r.id not in ids and r.bandwidth > 0 and r.codecs
            ids.add(r.id)
            assert not r.segment_bases and not r.segment_lists
            t = template_of(adaptation, r)
            assert t.timescale == 90000 and t.initialization and t.media
            assert expand(t.initialization, r).endswith(f"_{r.id}_init.mp4")
            tracks.append((adaptation, r, t))
    return tracks


def available(mpd, start, end):
    """§5.3.9.5.3: a segment of MPD time [start, end) is available from AST + Period@start
    + end until that plus timeShiftBufferDepth (and the segment duration)."""
    ast, publish = instant(mpd.availability_start_time), instant(mpd.publish_time)
    since = ast + seconds(mpd.periods[0].start) + end
    return since <= publish <= since + seconds(mpd.time_shift_buffer_depth) + (end - start)


def timeline_segments(mpd, template):
    """[(number or None, media t, d, MPD start s)] of a timeline template."""
    pto = template.presentation_time_offset or 0
    period_start = seconds(mpd.periods[0].start)
    numbered = "$Number$" in template.media
    return [
        (
            (template.start_number or 1) + i if numbered else None,
            t,
            d,
            period_start + Fraction(t - pto, template.timescale),
        )
        for i, (t, d) in enumerate(timeline(template))
    ]


def check_timeline_mpd(name, token):
    mpd = load(name)
    tracks = check_live(mpd)
    for adaptation, r, t in tracks:
        # $Number$ xor $Time$, as segmentTemplateFormat says.
        assert (token in t.media) and ({"$Number$", "$Time$"} - {token}).pop() not in t.media
        segments = timeline_segments(mpd, t)
        assert segments
        for _, _, d, start in segments:
            assert available(mpd, start, start + Fraction(d, t.timescale))
        # The window covers at least timeShiftBufferDepth, and not one segment more.
        total = sum(Fraction(d, t.timescale) for _, _, d, _ in segments)
        depth = seconds(mpd.time_shift_buffer_depth)
        assert total >= depth and total - Fraction(segments[0][2], t.timescale) < depth
    # §5.3.3.2 segmentAlignment: the Representations of a set have the same boundaries.
    for adaptation in mpd.periods[0].adaptation_sets:
        shapes = {tuple(timeline(template_of(adaptation, r))) for r in adaptation.representations}
        assert len(shapes) == 1
    return mpd, tracks


def test_number_with_timeline():
    mpd, tracks = check_timeline_mpd("dash_number_with_timeline.mpd", "$Number$")
    for adaptation, r, t in tracks:
        # FULL layout: the template is the Representation's own.
        assert not adaptation.segment_templates and r.segment_templates
        assert "$RepresentationID$" not in t.media
        segments = timeline_segments(mpd, t)
        # Numbers count the 6.006 s output segments from the stream's first input, as HLS
        # media sequence numbers do, so one segment keeps its number on every update.
        for number, media_t, d, _ in segments:
            assert d == 540540 and number == (media_t - FIRST) // d and (media_t - FIRST) % d == 0
        urls = [expand(t.media, r, number=n) for n, *_ in segments]
        assert len(set(urls)) == len(urls)
        assert urls[0] == f"index_{r.id}_{t.start_number}.mp4"


def test_time_with_timeline_has_a_gap_where_an_input_was_lost():
    mpd, tracks = check_timeline_mpd("dash_time_with_timeline.mpd", "$Time$")
    assert "urn:dvb:dash:profile:dvb-dash:2014" in mpd.profiles.split(",")
    assert mpd.utc_timings[0].value == "https://time.example/xsdate"
    for adaptation, r, t in tracks:
        assert r.segment_templates and not adaptation.segment_templates
        spans = timeline(t)
        gaps = [b[0] - (a[0] + a[1]) for a, b in zip(spans, spans[1:]) if b[0] != a[0] + a[1]]
        assert gaps == [180180], "one 2.002 s input is missing, nothing else"
        urls = [expand(t.media, r, time=s) for s, _ in spans]
        assert len(set(urls)) == len(urls) and urls[0] == f"index_{r.id}_{spans[0][0]}.mp4"


def test_compact_layout_shares_one_template_per_adaptation_set():
    mpd, tracks = check_timeline_mpd("dash_compact.mpd", "$Number$")
    full = load("dash_number_with_timeline.mpd")
    full_template = full.periods[0].adaptation_sets[0].representations[0].segment_templates[0]
    for adaptation, r, t in tracks:
        # COMPACT: one SegmentTemplate at the AdaptationSet, naming $RepresentationID$.
        assert adaptation.segment_templates and not r.segment_templates
        assert "$RepresentationID$" in t.media and "$RepresentationID$" in t.initialization
        # It addresses the files a FULL template names for the same representation.
        own = full_template.media.replace("video_720p", "$RepresentationID$")
        assert t.media == own
        for number, media_t, d, _ in timeline_segments(mpd, t):
            assert d == 540000 and number == (media_t - FIRST) // d
    urls = [expand(t.media, r, number=8) for _, r, t in tracks]
    assert len(set(urls)) == len(urls)


def duration_template():
    mpd = load("dash_number_with_duration.mpd")
    tracks = check_live(mpd)
    return mpd, tracks


def test_number_with_duration():
    mpd, tracks = duration_template()
    assert "urn:hbbtv:dash:profile:isoff-live:2012" in mpd.profiles.split(",")
    assert len(mpd.periods) == 1  # this format is single-period
    compact = load("dash_compact.mpd")
    assert compact.publish_time == mpd.publish_time
    reference = timeline_segments(compact, compact.periods[0].adaptation_sets[0].segment_templates[0])
    ast, publish = instant(mpd.availability_start_time), instant(mpd.publish_time)
    for adaptation, r, t in tracks:
        # §5.3.9.2: @duration xor a SegmentTimeline; $Number$ addressing.
        assert t.duration and not t.segment_timelines and "$Number$" in t.media
        assert Fraction(t.duration, t.timescale) == 6  # segmentDurationSeconds
        d = Fraction(t.duration, t.timescale)
        start_number = t.start_number if t.start_number is not None else 1
        # The newest segment available at publishTime (§5.3.9.5.3) is the newest one the
        # timeline of the same records lists, and all of them are available.
        elapsed = publish - ast - seconds(mpd.periods[0].start)
        newest = start_number + int(elapsed // d) - 1
        assert newest == reference[-1][0]
        for number, media_t, _, _ in reference:
            assert number >= start_number
            i = number - start_number
            assert available(mpd, i * d, (i + 1) * d)
            # Number n is the segment whose media starts at PTO + (n - startNumber) × duration:
            # the one the timeline lists under the same number. The origin serves this
            # format's segments with their media time moved back by the media time at
            # Period@start, so PTO is 0 (ffmpeg's DASH reader needs that): the timeline's
            # media time less Period@start (written rounded up to the millisecond).
            assert not t.presentation_time_offset
            moved = Fraction(media_t, t.timescale) - seconds(mpd.periods[0].start)
            assert 0 <= i * d - moved < Fraction(1, 1000), (number, float(moved), float(i * d))


def test_number_with_duration_places_segments_where_the_timeline_does():
    # Period@start carries the media time's remainder (here 1.4 s) as presentationTimeOffset
    # does, so each number sits where the SegmentTimeline formats put the same media.
    mpd, tracks = duration_template()
    compact = load("dash_compact.mpd")
    reference = timeline_segments(compact, compact.periods[0].adaptation_sets[0].segment_templates[0])
    for _, _, t in tracks:
        start_number = t.start_number if t.start_number is not None else 1
        for number, _, _, timeline_start in reference:
            # §5.3.9.5.3: segment n starts at Period@start + (n - startNumber) × duration.
            start = seconds(mpd.periods[0].start) + (number - start_number) * Fraction(t.duration, t.timescale)
            assert start == timeline_start, f"segment {number}: {float(start)} s, timeline {float(timeline_start)} s"
