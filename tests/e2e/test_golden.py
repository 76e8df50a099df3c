"""Cross-checks the golden playlists (tests/golden, produced by shared/tests/golden.rs)
with an independent HLS parser, the PyPI `m3u8` package, against RFC 8216 rules."""

import math
import pathlib

import m3u8

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
