"""HLS TS with SAMPLE-AES (`hlsPackage.encryption.encryptionMethod: SAMPLE_AES`), keys
from sluice-local's reference key server over SPEKE v1: the playlist's
`#EXT-X-KEY:METHOD=SAMPLE-AES` tags change with the key period; each segment's PMT
signals the encrypted streams as Apple's stream encryption format says (stream types
0xdb and 0xcf, `zavc`/`aacd` private data indicators, the `apad` audio setup); the
segments differ from the clear ones but FFmpeg's HLS demuxer, which implements
SAMPLE-AES decryption itself, decodes them to the clear endpoint's audio and video
frames; hls.js plays through key changes; settings SAMPLE-AES cannot honour are refused."""

import re
import subprocess

import botocore.exceptions
import pytest

from conftest import Server, get, play
from test_encryption_hls import media_playlist

AES_128 = "81376844-f976-481e-a84e-cc25d39b0b33"
WIDEVINE = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"
ROTATION = 10
TICKS = 90_000


def encryption(origin, resource="sample-aes", system=AES_128, **more):
    return {"EncryptionMethod": "SAMPLE_AES", "KeyRotationIntervalSeconds": ROTATION, **more,
            "SpekeKeyProvider": {"Url": f"{origin.base}/speke/v1", "ResourceId": resource,
                                 "RoleArn": "arn:aws:iam::123456789012:role/speke", "SystemIds": [system]}}


@pytest.fixture(scope="module")
def origin():
    srv = Server(demo=True)
    try:
        srv.mp = srv.mediapackage()
        window = {"SegmentDurationSeconds": 2, "PlaylistWindowSeconds": 40}
        srv.mp.create_origin_endpoint(ChannelId="demo", Id="clear", ManifestName="index", HlsPackage=window)
        srv.mp.create_origin_endpoint(ChannelId="demo", Id="sa", ManifestName="index",
                                      HlsPackage={**window, "Encryption": encryption(srv)})
        srv.mp.create_origin_endpoint(ChannelId="demo", Id="sa-one-key", ManifestName="index",
                                      HlsPackage={**window, "Encryption": encryption(srv, KeyRotationIntervalSeconds=0)})
        yield srv
    finally:
        srv.stop()


def pmt_streams(ts):
    """(stream type, PID, ES descriptors) of the first PMT in a TS segment, read here
    from ISO/IEC 13818-1 §2.4.4.8 (not by Sluice's parser), with its CRC checked."""
    packets = [ts[i:i + 188] for i in range(0, len(ts), 188)]
    pat = next(p for p in packets if ((p[1] & 0x1f) << 8 | p[2]) == 0 and p[1] & 0x40)
    pat = pat[5 + pat[4]:]
    pmt_pid = (pat[10] & 0x1f) << 8 | pat[11]
    pmt = next(p for p in packets if ((p[1] & 0x1f) << 8 | p[2]) == pmt_pid and p[1] & 0x40)
    section = pmt[5 + pmt[4]:]
    length = 3 + ((section[1] & 0x0f) << 8 | section[2])
    crc = 0xFFFFFFFF
    for b in section[:length]:
        crc ^= b << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    assert crc == 0, "the PMT's CRC-32 checks"
    i = 12 + ((section[10] & 0x0f) << 8 | section[11])
    out = []
    while i + 5 <= length - 4:
        info = (section[i + 3] & 0x0f) << 8 | section[i + 4]
        out.append((section[i], (section[i + 1] & 0x1f) << 8 | section[i + 2], section[i + 5:i + 5 + info]))
        i += 5 + info
    return out


def test_playlists_name_sample_aes_keys_that_change_with_the_key_period(origin):
    text = media_playlist(origin, "sa", least=8, within=60)
    keys = [l for l in text.splitlines() if l.startswith("#EXT-X-KEY")]
    tag = r'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="http[^"]+/keys/sample-aes/[^"]+",IV=0x([0-9a-fA-F]{32})'
    assert keys and all(re.fullmatch(tag, k) for k in keys), keys
    # Each key names its own IV: players take a SAMPLE-AES IV only from the tag.
    assert len({re.fullmatch(tag, k).group(1) for k in keys}) == len(keys), keys
    names = re.findall(r"^index_360p-seg_(\d+)\.k(\d+)\.ts$", text, flags=re.M)
    periods = [int(start) // (ROTATION * TICKS) for start, _ in names]
    assert [int(p) for _, p in names] == periods, "each segment is named by its own key period"
    assert len(keys) == len(set(periods)) >= 2, (keys, periods)


def test_segments_signal_apples_stream_encryption_and_are_encrypted(origin):
    text = media_playlist(origin, "sa", least=4)
    start, period = re.findall(r"^index_360p-seg_(\d+)\.k(\d+)\.ts$", text, flags=re.M)[-1]
    status, encrypted = get(f"{origin.base}/out/v1/sa/index_360p-seg_{start}.k{period}.ts")
    assert status == 200 and len(encrypted) % 188 == 0
    status, clear = get(f"{origin.base}/out/v1/clear/index_360p-seg_{start}.ts")
    assert status == 200
    streams = pmt_streams(encrypted)
    assert [s[0] for s in streams] == [0xdb, 0xcf], streams
    assert [s[0] for s in pmt_streams(clear)] == [0x1b, 0x0f]
    video, audio = streams[0][2], streams[1][2]
    assert bytes([0x0f, 4]) + b"zavc" in video
    assert bytes([0x0f, 4]) + b"aacd" in audio
    # registration descriptor 'apad': audio_type 'zaac', priming 0, version 1, then the
    # 2-byte AudioSpecificConfig of the demo's 48 kHz stereo AAC-LC (ISO/IEC 14496-3).
    assert bytes([0x05, 14]) + b"apadzaac" + bytes([0, 0, 1, 2, 0x11, 0x90]) in audio, audio
    assert encrypted != clear
    # Everything outside the encrypted blocks is as it was: the same number of 188-byte
    # packets give or take the few that emulation prevention bytes add.
    assert abs(len(encrypted) - len(clear)) <= 188 * 8
    status, again = get(f"{origin.base}/out/v1/sa/index_360p-seg_{start}.k{period}.ts")
    assert again == encrypted, "published output never changes under the same URL"


def framemd5(playlist, stream, ffmpeg="ffmpeg"):
    out = subprocess.run(
        [ffmpeg, "-v", "error", "-allowed_extensions", "ALL",
         "-protocol_whitelist", "file,http,tcp,crypto,data", "-i", str(playlist),
         "-map", f"0:{stream}", "-f", "framemd5", "-"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return [l.split(",")[-1].strip() for l in out.stdout.splitlines() if not l.startswith("#")]


def test_ffmpeg_decrypts_video_and_audio_to_the_clear_frames(origin, tmp_path):
    """FFmpeg decrypts each packet with the key and IV of the segment that is current when
    the packet leaves its demuxer, which for a segment's last access units is already the
    next segment (and after the last one, none: they stay encrypted). So this endpoint has
    one key (no rotation, one IV), and the frames of all segments but the last one listed
    are compared with the clear endpoint's; hls.js, which decrypts segment by segment,
    plays through key changes below."""
    text = media_playlist(origin, "sa-one-key", least=6, within=60)
    base = f"{origin.base}/out/v1"
    encrypted = re.sub(r"^(index_.*\.ts)$", rf"{base}/sa-one-key/\1", text, flags=re.M) + "#EXT-X-ENDLIST\n"
    segments = re.findall(r"^(index_.*)\.k\d+\.ts$", text, flags=re.M)
    clear = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n" + "".join(
        f"#EXTINF:2,\n{base}/clear/{name}.ts\n" for name in segments[:-1]) + "#EXT-X-ENDLIST\n"
    (tmp_path / "sa.m3u8").write_text(encrypted)
    (tmp_path / "clear.m3u8").write_text(clear)
    for stream in ("v", "a"):
        expected = framemd5(tmp_path / "clear.m3u8", stream)
        frames = framemd5(tmp_path / "sa.m3u8", stream)
        assert len(expected) >= 5 * 24 and len(frames) > len(expected), (stream, len(expected), len(frames))
        assert frames[:len(expected)] == expected, stream


def test_hlsjs_plays_through_key_changes(origin):
    played = play("hlsjs", f"{origin.base}/out/v1/sa/index.m3u8", min_seconds=2 * ROTATION + 4)
    keys = played["info"]["decryptedKeys"]
    assert len(keys) >= 3 and all("/keys/sample-aes/" in k for k in keys), played


@pytest.mark.parametrize("package, message", [
    ({"Encryption": {"SystemIds": [WIDEVINE]}}, "SAMPLE_AES is encrypted for the AES-128 system id"),
    ({"IncludeIframeOnlyStream": True}, "cannot be combined with SAMPLE_AES encryption"),
])
def test_settings_sample_aes_cannot_honour_are_refused(origin, package, message):
    system = package.get("Encryption", {}).get("SystemIds", [AES_128])[0]
    hls = {"Encryption": encryption(origin, system=system)}
    if package.get("IncludeIframeOnlyStream"):
        hls["IncludeIframeOnlyStream"] = True
    with pytest.raises(botocore.exceptions.ClientError) as e:
        origin.mp.create_origin_endpoint(ChannelId="demo", Id="refused", HlsPackage=hls)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 422
    assert message in e.value.response["Error"]["Message"], e.value.response["Error"]["Message"]
