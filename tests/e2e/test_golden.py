"""Cross-checks the golden playlists (tests/golden, produced by shared/tests/golden.rs
through the origin and by shared/tests/golden_hls.rs from the pure writers) with an
independent HLS parser, the PyPI `m3u8` package, against RFC 8216 rules."""

import datetime
import math
import pathlib

import m3u8
import pytest

GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "golden"


def load(name):
    return m3u8.loads((GOLDEN / name).read_text())


def test_multivariant_declares_every_attribute_players_need():
    playlist = load("multivariant.m3u8")
    assert playlist.is_variant
    assert [p.uri for p in playlist.playlists] == ["index_180p.m3u8", "index_720p.m3u8"]
    for p in playlist.playlists:
        info = p.stream_info
        assert info.bandwidth > 0
        assert 0 < info.average_bandwidth <= info.bandwidth
        assert info.resolution is not None
        assert info.frame_rate == 29.97
        assert info.codecs.split(",")[1] == "mp4a.40.2"


def check_media(playlist, segments, duration, window):
    assert not playlist.is_variant
    assert len(playlist.segments) == segments
    # RFC 8216 4.3.3.1: each EXTINF rounded to the nearest integer <= TARGETDURATION.
    assert all(round(s.duration) <= playlist.target_duration for s in playlist.segments)
    assert all(math.isclose(s.duration, duration, abs_tol=1e-6) for s in playlist.segments)
    # The window covers at least the configured seconds, and not one segment more.
    total = sum(s.duration for s in playlist.segments)
    assert total >= window and total - playlist.segments[0].duration < window
    assert playlist.is_endlist is False


def test_media_playlist_2s_window_and_program_date_time():
    playlist = load("media_2s_window10_pdt4.m3u8")
    check_media(playlist, 5, 2.002, 10)
    assert playlist.media_sequence == 15
    dated = [s for s in playlist.segments if s.program_date_time is not None]
    assert len(dated) == 3  # first segment, then every >= 4 s
    gaps = [(b.program_date_time - a.program_date_time).total_seconds() for a, b in zip(dated, dated[1:])]
    assert all(g >= 4 for g in gaps)
    # PDT advances exactly with media time: 2 segments of 2.002 s between dated ones.
    assert all(math.isclose(g, 4.004, abs_tol=0.001) for g in gaps)


def test_media_playlist_6s_outputs_from_2s_inputs_event():
    playlist = load("media_6s_window30_event.m3u8")
    check_media(playlist, 5, 6.006, 30)
    assert playlist.playlist_type == "event"
    assert playlist.media_sequence == 1
    # Segment names carry the start in 90 kHz ticks: consecutive outputs are 6.006 s apart.
    starts = [int(s.uri.rsplit("_", 1)[1].split(".")[0]) for s in playlist.segments]
    assert all(b - a == 540540 for a, b in zip(starts, starts[1:]))


# Goldens per feature from the pure writers (shared/tests/golden_hls.rs). Fixture facts the
# checks rely on: 2.002 s inputs (180180 ticks) from 126000 ticks, media time zero at
# 2025-11-24T16:00:00Z, segment names ending in their start in 90 kHz ticks.
INPUT, FIRST = 180180, 126000
EPOCH = datetime.datetime(2025, 11, 24, 16, 0, tzinfo=datetime.timezone.utc)


def start_of(uri):
    return int(uri.rsplit("_", 1)[1].split(".")[0])


def check_rfc8216_media(playlist):
    """Rules every media playlist here must meet (RFC 8216 §4.3.3, §7)."""
    assert not playlist.is_variant and playlist.segments
    # §4.3.3.1: each EXTINF rounded to the nearest integer is at most EXT-X-TARGETDURATION.
    assert all(round(s.duration) <= playlist.target_duration for s in playlist.segments)
    # §7: compatibility versions of the features used.
    version = playlist.version or 1
    if any(s.duration != int(s.duration) for s in playlist.segments):
        assert version >= 3, "floating-point EXTINF needs version 3"
    if playlist.is_i_frames_only or any(s.byterange for s in playlist.segments):
        assert version >= 4, "EXT-X-BYTERANGE / EXT-X-I-FRAMES-ONLY need version 4"
    if any(s.init_section for s in playlist.segments):
        assert version >= (5 if playlist.is_i_frames_only else 6), "EXT-X-MAP needs version 5 (I-frames) or 6"
    assert playlist.is_endlist is False  # live


def check_timeline(playlist, tolerance=1):
    """Consecutive segments continue each other unless an EXT-X-DISCONTINUITY separates
    them (§4.3.2.3: a change in the timestamp sequence needs the tag); returns the count of
    tagged boundaries where the timeline jumps."""
    jumps = 0
    for a, b in zip(playlist.segments, playlist.segments[1:]):
        gap = start_of(b.uri) - start_of(a.uri) - round(a.duration * 90000)
        if b.discontinuity:
            jumps += abs(gap) > tolerance
        else:
            assert abs(gap) <= tolerance, f"{b.uri}: timeline jumps by {gap} ticks without EXT-X-DISCONTINUITY"
    return jumps


def numbered(playlist):
    """{segment: (media sequence number, discontinuity sequence number)} (§6.2.1, §6.2.2)."""
    out, discontinuity = {}, playlist.discontinuity_sequence or 0
    for i, s in enumerate(playlist.segments):
        discontinuity += bool(s.discontinuity)
        out[(s.uri, s.byterange)] = (playlist.media_sequence + i, discontinuity)
    return out


def check_reloads(first, second):
    """§6.2.1/§6.2.2: between reloads a segment keeps its media sequence and discontinuity
    sequence numbers, segments leave from the front, and the sequences count what left."""
    before, after = numbered(first), numbered(second)
    common = [k for k in after if k in before]
    assert common, "the reloads overlap"
    assert all(before[k] == after[k] for k in common), {k: (before[k], after[k]) for k in common}
    keys = list(before)
    removed = keys[: keys.index(common[0])]
    assert second.media_sequence - first.media_sequence == len(removed)
    gone = sum(1 for s in first.segments[: len(removed)] if s.discontinuity)
    assert (second.discontinuity_sequence or 0) - (first.discontinuity_sequence or 0) == gone


def test_ts_live_playlist():
    playlist = load("hls_ts_live.m3u8")
    check_rfc8216_media(playlist)
    assert check_timeline(playlist) == 0 and not any(s.discontinuity for s in playlist.segments)
    assert playlist.version == 3 and playlist.target_duration == 6
    assert all(s.uri.endswith(".ts") and s.init_section is None for s in playlist.segments)
    assert all(math.isclose(s.duration, 6.006, abs_tol=1e-6) for s in playlist.segments)
    # The media sequence counts 6.006 s output segments from the stream's first input, so a
    # segment keeps its number on every reload; the newest incomplete one is not listed.
    first = start_of(playlist.segments[0].uri)
    assert playlist.media_sequence == (first - FIRST) // (3 * INPUT)
    assert start_of(playlist.segments[-1].uri) + 3 * INPUT <= FIRST + 39 * INPUT
    total = sum(s.duration for s in playlist.segments)
    assert total >= 30 and total - playlist.segments[0].duration < 30
    # Program date time: on the first segment, then whenever 12 s have passed, and the
    # date of every segment (as the parser carries it along EXTINFs) is its media time.
    dated = [s for s in playlist.segments if s.program_date_time is not None]
    assert dated[0] is playlist.segments[0] and len(dated) == 3
    for s in playlist.segments:
        expected = EPOCH + datetime.timedelta(milliseconds=start_of(s.uri) // 90)
        assert abs((s.current_program_date_time - expected).total_seconds()) < 0.002


def test_ts_discontinuities_keep_their_numbers_across_reloads():
    first, second = load("hls_ts_discontinuity_1.m3u8"), load("hls_ts_discontinuity_2.m3u8")
    for playlist in (first, second):
        check_rfc8216_media(playlist)
    # Reload 1: a lost input (the timeline jumps) and an encoder restart (it does not).
    assert [s.discontinuity for s in first.segments].count(True) == 2
    assert check_timeline(first) == 1
    assert check_timeline(second) == 0
    assert first.discontinuity_sequence in (None, 0)
    # Reload 2: the first discontinuity slid out and EXT-X-DISCONTINUITY-SEQUENCE counts it.
    assert second.discontinuity_sequence == 1
    check_reloads(first, second)


def iframe_ranges(playlist):
    for s in playlist.segments:
        length, offset = (int(v) for v in s.byterange.split("@"))
        yield s, offset, length


def test_iframe_playlist_addresses_keyframes_of_the_media_segments():
    multivariant = load("hls_iframes_multivariant.m3u8")
    media, iframes = load("hls_iframes_media.m3u8"), load("hls_iframes_1.m3u8")
    [variant], [trick] = multivariant.playlists, multivariant.iframe_playlists
    assert variant.uri == "index_720p.m3u8" and trick.uri == "index_720p_iframes.m3u8"
    info, trick_info = variant.stream_info, trick.iframe_stream_info
    assert 0 < trick_info.bandwidth < info.bandwidth
    assert trick_info.resolution == info.resolution
    assert trick_info.codecs == info.codecs.split(",")[0]  # the video codec alone
    check_rfc8216_media(media)
    check_rfc8216_media(iframes)
    assert iframes.is_i_frames_only and iframes.version == 5
    # One media sequence number per entry (§6.2.2: numbers never change across reloads):
    # the window starts after `media_sequence` output segments of 6 keyframes each (three
    # inputs with two keyframes), so the first entry's number counts those keyframes.
    assert iframes.media_sequence == media.media_sequence * 6
    # The keyframes cover the media playlist's time, each lasting until the next one.
    assert math.isclose(sum(s.duration for s in iframes.segments), sum(s.duration for s in media.segments), abs_tol=1e-3)
    assert all(math.isclose(s.duration, 1.001, abs_tol=1e-6) for s in iframes.segments)
    media_uris = {s.uri for s in media.segments}
    last_end = {}
    for s, offset, length in iframe_ranges(iframes):
        # §4.3.2.2: an explicit offset; the range is inside its segment (three 400 kB inputs)
        # and after the previous keyframe's range of the same segment.
        assert s.uri in media_uris and s.byterange.count("@") == 1
        assert length > 0 and offset + length <= 3 * 400_000
        assert offset >= last_end.get(s.uri, 0)
        last_end[s.uri] = offset + length
        # §3.2 / §4.3.2.5: the PAT/PMT comes from EXT-X-MAP, a range of the same segment that
        # starts an input and ends before the keyframe (or is where the keyframe starts).
        m = s.init_section
        assert m is not None and m.uri == s.uri
        map_length, map_offset = (int(v) for v in m.byterange.split("@"))
        assert map_offset % 400_000 == 0 and map_length == 376
        assert map_offset == offset or map_offset + map_length <= offset


def test_iframe_reloads_keep_media_sequence_numbers():
    first, second = load("hls_iframes_1.m3u8"), load("hls_iframes_2.m3u8")
    check_rfc8216_media(second)
    check_reloads(first, second)


def tags_before_discontinuities(name):
    """The tag lines between the previous URI and each discontinuous segment's URI."""
    blocks, tags = [], []
    for line in (GOLDEN / name).read_text().splitlines():
        if line.startswith("#"):
            tags.append(line)
        elif line:
            if "#EXT-X-DISCONTINUITY" in tags:
                blocks.append(tags)
            tags = []
    return blocks


def test_cmaf_multivariant_with_audio_group():
    playlist = load("cmaf_multivariant.m3u8")
    assert playlist.is_variant and playlist.is_independent_segments
    audio = [m for m in playlist.media if m.type == "AUDIO"]
    assert [m.group_id for m in audio] == ["audio"]
    # §4.3.4.1.1: at most one DEFAULT=YES per group (one here); names unique in a group.
    assert [m.default for m in audio] == ["YES"]
    assert len({m.name for m in audio}) == len(audio)
    # §4.3.4.1: AUTOSELECT must be YES when DEFAULT is YES.
    assert all(m.autoselect == "YES" for m in audio if m.default == "YES")
    assert [p.uri for p in playlist.playlists] == ["index_video_720p.m3u8", "index_video_360p.m3u8"]
    for p in playlist.playlists:
        # §4.3.4.2.1: AUDIO names an EXT-X-MEDIA group of TYPE=AUDIO.
        assert p.stream_info.audio == "audio"
        # §4.3.4.2: CODECS lists every format of the variant, its audio rendition's too.
        codecs = p.stream_info.codecs.split(",")
        assert len(codecs) == 2 and codecs[0].startswith("avc1.") and codecs[1] == "mp4a.40.2"
        assert 0 < p.stream_info.average_bandwidth <= p.stream_info.bandwidth
    tracks = [load("cmaf_" + uri.removeprefix("index_")) for uri in
              [p.uri for p in playlist.playlists] + [m.uri for m in audio]]
    for track, uri in zip(tracks, ["video_720p", "video_360p", "audio_720p"]):
        check_rfc8216_media(track)
        assert track.version == 6
        assert check_timeline(track) == 0  # the restart is placed after the edge
        # §4.3.2.5: every fMP4 segment has its track's init segment through EXT-X-MAP.
        for s in track.segments:
            assert s.uri == f"../golden_{uri}_{start_of(s.uri)}.mp4"
            assert s.init_section is not None and s.init_section.uri == f"../golden_{uri}_init.mp4"
        # The encoder restart (its new init segment) re-declares EXT-X-MAP with its
        # discontinuity, so players re-initialise their decoders there.
        assert [s.discontinuity for s in track.segments].count(True) == 1
        blocks = tags_before_discontinuities(f"cmaf_{uri}.m3u8")
        assert len(blocks) == 1 and all(any(t.startswith("#EXT-X-MAP:") for t in tags) for tags in blocks)
    # §6.2.4: matching content in the variants and the audio rendition has matching
    # timestamps, media sequence and discontinuity sequence numbers and target durations.
    shapes = {
        (t.target_duration, t.media_sequence, tuple((start_of(s.uri), s.discontinuity) for s in t.segments))
        for t in tracks
    }
    assert len(shapes) == 1
