//! SAMPLE-AES checked by decrypting as the decryptors do (FFmpeg's
//! `hls_sample_encryption.c` loop, written independently here: drop emulation
//! prevention, decrypt a block while more than 16 bytes remain, skip 144), on the demo
//! channel's real ffmpeg-encoded segment.

use super::*;
use crate::media::codec::strip_emulation_prevention as unescape;
use aes::cipher::BlockDecryptMut;

const KEY: [u8; 16] = *b"0123456789abcdef";
const IV: [u8; 16] = [7; 16];

fn demo() -> &'static [u8] {
    include_bytes!("../../../../infra/local/demo/360p/seg_00000.ts")
}

/// The PES packets of each PID, reassembled from payloads (PSI included, harmlessly).
fn pes_by_pid(data: &[u8]) -> HashMap<u16, Vec<Vec<u8>>> {
    let mut out: HashMap<u16, Vec<Vec<u8>>> = HashMap::new();
    for p in ts::packets(data) {
        let p = p.unwrap();
        let Some(payload) = p.payload else { continue };
        let list = out.entry(p.header.pid).or_default();
        if p.header.unit_start || list.is_empty() {
            list.push(Vec::new());
        }
        list.last_mut().unwrap().extend_from_slice(payload);
    }
    out
}

/// As FFmpeg and hls.js decrypt: the emulation prevention bytes out, the blocks
/// decrypted, nothing put back.
fn decrypt_nal(nal: &[u8]) -> Vec<u8> {
    if nal.len() <= 48 || !matches!(nal[0] & 0x1f, 1 | 5) {
        return nal.to_vec();
    }
    let mut data = unescape(nal);
    let mut cipher = cbc::Decryptor::<aes::Aes128>::new((&KEY).into(), (&IV).into());
    let (mut at, mut rem) = (32usize, data.len() as isize - 32);
    while rem > 0 {
        if rem > 16 {
            cipher.decrypt_block_mut((&mut data[at..at + 16]).into());
            at += 16;
            rem -= 16;
        }
        let skip = rem.min(144);
        at += skip as usize;
        rem -= skip;
    }
    data
}

/// The NAL units of an Annex B stream (start codes and zero bytes dropped).
fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    let starts: Vec<usize> = memchr::memmem::find_iter(data, &[0, 0, 1]).map(|p| p + 3).collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let mut e = starts.get(i + 1).map_or(data.len(), |n| n - 3);
            while e > s && data[e - 1] == 0 {
                e -= 1;
            }
            &data[s..e]
        })
        .collect()
}

proptest::proptest! {
    /// Any bytes (rich in the ones that matter: 0 to 3) escape to bytes with no start
    /// code and no `00 00 00`, which unescape to the same bytes.
    #[test]
    fn any_bytes_escape_and_round_trip(rbsp in proptest::collection::vec(
        proptest::sample::select(vec![0u8, 0, 0, 1, 2, 3, 4, 0xff]), 0..300)) {
        let mut escaped = Vec::new();
        escape_into(&rbsp, &mut escaped);
        proptest::prop_assert!(escaped.windows(3).all(|w| !(w[0] == 0 && w[1] == 0 && w[2] <= 2)));
        proptest::prop_assert_eq!(unescape(&escaped), rbsp);
    }
}

#[test]
fn emulation_prevention_round_trips_and_leaves_no_start_code() {
    let rbsp: Vec<u8> = (0..4000u32)
        .map(|i| if i % 7 < 3 { 0 } else { (i % 5) as u8 })
        .collect();
    let mut escaped = Vec::new();
    escape_into(&rbsp, &mut escaped);
    assert!(escaped.len() > rbsp.len());
    assert!(escaped.windows(3).all(|w| !(w[0] == 0 && w[1] == 0 && w[2] <= 2)));
    assert_eq!(unescape(&escaped), rbsp);
}

#[test]
fn slices_are_encrypted_one_block_in_ten_after_32_bytes_and_the_rest_is_clear() {
    let (key, iv) = (KEY, IV);
    // AUD, SPS, an IDR slice of 1,000 bytes with zero runs (escaped), a 40-byte slice.
    let idr: Vec<u8> = std::iter::once(0x65)
        .chain((1..1000u32).map(|i| if i % 50 < 4 { 0 } else { i as u8 | 1 }))
        .collect();
    let mut idr_escaped = Vec::new();
    escape_into(&idr, &mut idr_escaped);
    let small: Vec<u8> = std::iter::once(0x41).chain(std::iter::repeat_n(9, 39)).collect();
    let mut au = vec![0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x64, 0, 0x1e, 0xac];
    au.extend_from_slice(&[0, 0, 1]);
    au.extend_from_slice(&idr_escaped);
    au.extend_from_slice(&[0, 0, 0, 1]);
    au.extend_from_slice(&small);
    let out = encrypt_annex_b(&key, &iv, &au);
    let (before, after) = (nal_units(&au), nal_units(&out));
    assert_eq!(after.len(), 4);
    assert_eq!((after[0], after[1], after[3]), (before[0], before[1], before[3]));
    // What is encrypted is the NAL unit as the encoder escaped it.
    let encrypted = unescape(after[2]);
    let n = idr_escaped.len();
    assert_eq!(encrypted.len(), n);
    assert_eq!(encrypted[..32], idr_escaped[..32]);
    assert_ne!(encrypted[32..48], idr_escaped[32..48]);
    assert_eq!(encrypted[48..192], idr_escaped[48..192]);
    assert_ne!(encrypted[192..208], idr_escaped[192..208]);
    // The last block that fits before the end with a byte to spare, and no later one.
    let last = (n - 17 - 32) / 160 * 160 + 32;
    assert_ne!(encrypted[last..last + 16], idr_escaped[last..last + 16]);
    assert_eq!(encrypted[last + 16..], idr_escaped[last + 16..]);
    assert!(
        after[2].windows(3).all(|w| !(w[0] == 0 && w[1] == 0 && w[2] <= 2)),
        "no start code inside"
    );
    assert_eq!(decrypt_nal(after[2]), idr_escaped);
}

#[test]
fn adts_frames_keep_header_and_16_bytes_clear_each_from_the_iv() {
    let frame = |fill: u8| {
        let mut f = tsmux::adts_header(2, 4, 2, 100).to_vec();
        f.extend(std::iter::repeat_n(fill, 100));
        f
    };
    let mut frames = [frame(5), frame(5)].concat();
    let clear = frames.clone();
    encrypt_adts(&KEY, &IV, &mut frames).unwrap();
    for f in frames.chunks(107) {
        assert_eq!(f[..23], clear[..23]);
        assert_ne!(f[23..39], clear[23..39]);
        // 84 bytes after the clear lead: five blocks, four clear bytes.
        assert_eq!(f[103..], clear[103..107]);
        let mut body = f[23..103].to_vec();
        let mut cipher = cbc::Decryptor::<aes::Aes128>::new((&KEY).into(), (&IV).into());
        for block in body.chunks_exact_mut(16) {
            cipher.decrypt_block_mut(block.into());
        }
        assert_eq!(body, clear[23..103]);
    }
    assert_eq!(encrypt_adts(&KEY, &IV, &mut [0u8; 20]), Err(()));
}

#[test]
fn a_real_segment_decrypts_to_its_clear_elementary_streams_with_the_pmt_signalling_it() {
    let clear = demo();
    let out = encrypt_ts(&KEY, &IV, clear).unwrap();
    assert_eq!(out.len() % ts::PACKET_SIZE, 0);
    let (clear_pes, out_pes) = (pes_by_pid(clear), pes_by_pid(&out));
    let (streams, pmt_pid) = {
        let (_, streams) = crate::media::pes::demux(clear).unwrap();
        (streams, ts::parse_pat(&out_pes[&0][0]).unwrap()[0])
    };
    let (video, audio) = (streams[0].0, streams[1].0);
    // The PMT: encrypted stream types, descriptors, a CRC that checks.
    let pmt = &out_pes[&pmt_pid][0];
    let section = &pmt[1..];
    let length = 3 + ((usize::from(section[1] & 0x0f) << 8) | usize::from(section[2]));
    assert_eq!(
        tsmux::crc32_mpeg2(&section[..length - 4]).to_be_bytes(),
        section[length - 4..length]
    );
    let types: Vec<_> = ts::parse_pmt(pmt).unwrap();
    assert_eq!(
        types,
        [(video, StreamType::Other(0xdb)), (audio, StreamType::Other(0xcf))]
    );
    let bytes = &section[..length];
    assert!(bytes.windows(6).any(|w| w == [0x0f, 4, b'z', b'a', b'v', b'c']));
    assert!(bytes.windows(6).any(|w| w == [0x0f, 4, b'a', b'a', b'c', b'd']));
    // 48 kHz (index 3) stereo AAC-LC: AudioSpecificConfig 0x11 0x90.
    assert!(bytes
        .windows(16)
        .any(|w| w == [0x05, 14, b'a', b'p', b'a', b'd', b'z', b'a', b'a', b'c', 0, 0, 1, 2, 0x11, 0x90]));
    // Video: same PES headers, every NAL unit decrypts to the clear one, some changed.
    assert_eq!(clear_pes[&video].len(), out_pes[&video].len());
    let mut changed = 0;
    for (c, o) in clear_pes[&video].iter().zip(&out_pes[&video]) {
        let header = 9 + usize::from(c[8]);
        assert_eq!(c[..4], o[..4]);
        assert_eq!(c[6..header], o[6..header], "PTS/DTS kept");
        let (cn, on) = (nal_units(&c[header..]), nal_units(&o[header..]));
        assert_eq!(cn.len(), on.len());
        for (c, o) in cn.iter().zip(&on) {
            changed += usize::from(c != o);
            assert_eq!(decrypt_nal(o), *c);
        }
    }
    assert!(changed >= 50, "{changed} NAL units encrypted");
    // Audio: same sizes, frames differ past their first 16 bytes.
    let (ca, oa): (Vec<u8>, Vec<u8>) = (clear_pes[&audio].concat(), out_pes[&audio].concat());
    assert_eq!(ca.len(), oa.len());
    assert_ne!(ca, oa);
    // Deterministic: every instance writes the same bytes.
    assert_eq!(encrypt_ts(&KEY, &IV, clear).unwrap(), out);
}

#[test]
fn codecs_outside_apples_format_are_refused() {
    let hevc = ts::synthetic::segment(&ts::synthetic::Spec {
        video: Some(0x24),
        ..Default::default()
    });
    let err = encrypt_ts(&KEY, &IV, &hevc).unwrap_err();
    assert!(matches!(err, SampleAesError::Unsupported(_, 0x100)), "{err}");
    assert!(err.to_string().contains("H265"), "{err}");
}

/// Each PID's continuity counter runs on without a break from the encoder's first one
/// (ISO/IEC 13818-1 §2.4.3.3: +1 per packet with a payload, none without).
#[test]
fn continuity_counters_run_on_from_the_encoders() {
    // A segment whose audio counter does not start at 0.
    let clear: &[u8] = include_bytes!("../../../../infra/local/demo/360p/seg_00001.ts");
    let out = encrypt_ts(&KEY, &IV, clear).unwrap();
    let mut last: HashMap<u16, u8> = HashMap::new();
    let mut first: HashMap<u16, u8> = HashMap::new();
    for p in out.chunks(ts::PACKET_SIZE) {
        let (pid, cc, payload) = (ts::pid(p[1], p[2]), p[3] & 0x0f, p[3] & 0x10 != 0);
        if let Some(&before) = last.get(&pid) {
            let expected = if payload { (before + 1) & 0x0f } else { before };
            assert_eq!(cc, expected, "PID {pid:#x}");
        }
        first.entry(pid).or_insert(cc);
        last.insert(pid, cc);
    }
    for p in clear.chunks(ts::PACKET_SIZE) {
        let pid = ts::pid(p[1], p[2]);
        if let Some(cc) = first.remove(&pid) {
            assert_eq!(cc, p[3] & 0x0f, "PID {pid:#x} starts where the encoder's did");
        }
    }
}

#[test]
fn a_segment_without_a_pmt_is_refused_not_sent_clear() {
    let (_, streams) = crate::media::pes::demux(demo()).unwrap();
    let media: Vec<u8> = demo()
        .chunks(ts::PACKET_SIZE)
        .filter(|p| streams.iter().any(|s| s.0 == ts::pid(p[1], p[2])))
        .flatten()
        .copied()
        .collect();
    assert_eq!(
        encrypt_ts(&KEY, &IV, &media).unwrap_err(),
        SampleAesError::NothingToEncrypt
    );
}

proptest::proptest! {
    /// A PMT packet with any of its bytes changed is encrypted or refused, never a panic
    /// (a viewer's request runs this).
    #[test]
    fn a_damaged_pmt_never_panics(at in 4usize..188, value: u8) {
        let mut segment = demo().to_vec();
        let pmt_pid = ts::parse_pat(&pes_by_pid(demo())[&0][0]).unwrap()[0];
        let offset = segment
            .chunks(ts::PACKET_SIZE)
            .position(|p| ts::pid(p[1], p[2]) == pmt_pid)
            .unwrap()
            * ts::PACKET_SIZE;
        segment[offset + at] = value;
        let _ = encrypt_ts(&KEY, &IV, &segment);
    }
}
