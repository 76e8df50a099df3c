"""Captioned H.264 for the tests. ffmpeg cannot write CEA-608 from text, so this puts the
captions in by hand: an SEI NAL unit with ATSC A/53 Part 4 `cc_data` (ITU-T T.35, country
0xB5, provider 0x0031, "GA94", user_data_type_code 3) before the first slice of every
access unit of an Annex B stream ffmpeg encoded. Field 1 carries a CEA-608 pop-on caption
on CC1 every `period` frames (RCL, ENM, a preamble address code for row 15, the text, EOC,
each control code sent twice as encoders do; EDM clears it later), null padding otherwise;
field 2 carries null padding only.

    python3 captioned.py in.h264 out.h264 [TEXT]
"""

import sys

RCL, ENM, EOC, EDM = (0x14, 0x20), (0x14, 0x2E), (0x14, 0x2F), (0x14, 0x2C)
PAC_ROW_15 = (0x14, 0x70)
NULL = (0x00, 0x00)


def odd_parity(byte):
    """A 7-bit CEA-608 byte with its parity bit (bit 7) making the count of ones odd."""
    return byte | 0x80 if bin(byte).count("1") % 2 == 0 else byte


def pop_on(text):
    """The byte pairs of a pop-on caption showing `text` (at most 32 characters)."""
    chars = [ord(c) for c in text] + ([0] if len(text) % 2 else [])
    return [RCL, RCL, ENM, ENM, PAC_ROW_15, PAC_ROW_15,
            *zip(chars[::2], chars[1::2]), EOC, EOC]


def escape(rbsp):
    """Inserts H.264 emulation-prevention bytes (00 00 0x → 00 00 03 0x for x ≤ 3)."""
    out, zeros = bytearray(), 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        zeros = zeros + 1 if b == 0 else 0
        out.append(b)
    return bytes(out)


def cc_sei(field1, field2=NULL):
    """An H.264 SEI NAL unit (start code included) with one cc_data holding one CEA-608
    pair for each field (cc_valid set, cc_type 0 and 1)."""
    triplets = bytes([0xFC, odd_parity(field1[0]), odd_parity(field1[1]),
                      0xFD, odd_parity(field2[0]), odd_parity(field2[1])])
    payload = bytes([0xB5, 0x00, 0x31]) + b"GA94" + bytes([0x03, 0x40 | 2, 0xFF]) + triplets + b"\xff"
    sei = bytes([0x04, len(payload)]) + payload + b"\x80"
    return b"\x00\x00\x00\x01\x06" + escape(sei)


def nal_units(stream):
    """The NAL units of an Annex B stream, start codes removed."""
    starts = []
    i = stream.find(b"\x00\x00\x01")
    while i >= 0:
        starts.append(i + 3)
        i = stream.find(b"\x00\x00\x01", i + 3)
    for n, start in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(stream)
        yield stream[start:end].rstrip(b"\x00") if n + 1 < len(starts) else stream[start:end]


def insert_captions(stream, text="HELLO", period=50, shown=35):
    """`stream` with a cc_data SEI before the first slice of each picture: the caption
    `text` starting every `period` frames, erased `shown` frames after it starts."""
    caption = pop_on(text)
    out, frame = bytearray(), 0
    for nal in nal_units(stream):
        nal_type = nal[0] & 0x1F if nal else 0
        # The first slice of a picture: a VCL NAL unit with first_mb_in_slice 0 (ue(v) "1").
        if 1 <= nal_type <= 5 and len(nal) > 1 and nal[1] & 0x80:
            at = frame % period
            pair = caption[at] if at < len(caption) else EDM if at in (shown, shown + 1) else NULL
            out += cc_sei(pair)
            frame += 1
        out += b"\x00\x00\x00\x01" + nal
    return bytes(out)


if __name__ == "__main__":
    source, target = sys.argv[1], sys.argv[2]
    with open(source, "rb") as f:
        data = f.read()
    with open(target, "wb") as f:
        f.write(insert_captions(data, *(sys.argv[3:4] or ["HELLO"])))
