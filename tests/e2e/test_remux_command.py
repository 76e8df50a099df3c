"""`sluice-local remux IN.ts OUTDIR`, the whole-process remuxer the benchmark times: its
output is checked against the input with ffmpeg (frame hashes) and ffprobe, and its
failures (input that is not TS, an output it cannot write) end with a non-zero exit and a
message that names the problem."""

import pathlib
import subprocess

import pytest

from conftest import BIN


def run_remux(*args, stdin=None):
    return subprocess.run([str(BIN), "remux", *map(str, args)], input=stdin, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """7 s of H.264 (B-frames, 2 s GOP) + AAC in MPEG-TS, as an encoder writes it."""
    path = tmp_path_factory.mktemp("remux") / "in.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-nostdin", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", "7", "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-bf", "2",
                    "-c:a", "aac", "-b:a", "64k", "-f", "mpegts", str(path)], check=True, timeout=60)
    return path


def framemd5(path, stream):
    out = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-map", f"0:{stream}", "-f", "framemd5", "-"],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return [line.rsplit(",", 1)[1].strip() for line in out.splitlines() if not line.startswith("#")]


def joined_track(folder, track):
    """The init segment and the track's fragments in order: one fragmented MP4 file."""
    fragments = sorted(folder.glob(f"{track}_0*.m4s"))
    joined = folder.parent / f"{folder.name}-{track}.mp4"
    joined.write_bytes((folder / f"{track}_init.mp4").read_bytes() + b"".join(f.read_bytes() for f in fragments))
    return joined, fragments


def test_output_decodes_to_the_input_frames(source, tmp_path):
    out = tmp_path / "out"
    result = run_remux(source, out, "--fragment-seconds", "2")
    assert result.returncode == 0, result.stderr.decode()
    assert b"wrote" in result.stderr
    for track, stream in (("video", "v"), ("audio_2", "a")):
        joined, fragments = joined_track(out, track)
        # 7 s cut at the first keyframe 2 s after the previous cut: 0, 2, 4, 6.
        assert len(fragments) == 4, [f.name for f in fragments]
        expected = framemd5(source, stream)
        assert expected and framemd5(joined, stream) == expected, f"{track} decodes differently from the input"
    probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height,sample_rate",
                            "-of", "csv=p=0", str(out.parent / "out-video.mp4")],
                           capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    assert probe == "h264,320,240"


def test_standard_input_gives_the_same_files(source, tmp_path):
    from_file, from_stdin = tmp_path / "file", tmp_path / "stdin"
    assert run_remux(source, from_file).returncode == 0
    result = run_remux("-", from_stdin, stdin=source.read_bytes())
    assert result.returncode == 0, result.stderr.decode()
    names = sorted(p.name for p in from_file.iterdir())
    assert names == sorted(p.name for p in from_stdin.iterdir()) and len(names) == 10
    for name in names:
        assert (from_file / name).read_bytes() == (from_stdin / name).read_bytes(), name


def test_input_that_is_not_ts_is_refused(tmp_path):
    bogus = tmp_path / "not.ts"
    bogus.write_bytes(b"<html>" + bytes(188 * 4))
    result = run_remux(bogus, tmp_path / "out")
    assert result.returncode != 0
    message = result.stderr.decode()
    assert "not an MPEG transport stream: byte 0 is 0x3c" in message, message


def test_missing_input_is_named(tmp_path):
    result = run_remux(tmp_path / "absent.ts", tmp_path / "out")
    assert result.returncode != 0
    assert "absent.ts" in result.stderr.decode()


def test_an_output_it_cannot_write_stops_it(source, tmp_path):
    # The output folder is a file.
    blocked = tmp_path / "file"
    blocked.write_text("x")
    result = run_remux(source, blocked)
    assert result.returncode != 0 and "file" in result.stderr.decode()
    # A fragment's name is taken by a folder: the writer fails part-way through.
    out = tmp_path / "out"
    (out / "video_00002.m4s").mkdir(parents=True)
    result = run_remux(source, out)
    assert result.returncode != 0
    message = result.stderr.decode()
    assert "writing into" in message and "directory" in message.lower(), message
