//! HLS SAMPLE-AES of an MPEG-TS segment (Apple, "MPEG-2 Stream Encryption Format for
//! HTTP Live Streaming"), as a pure function over the segment's bytes:
//!
//! - H.264 video: NAL units of type 1 and 5 longer than 48 bytes are encrypted as they
//!   are (their emulation prevention bytes included): the first 32 bytes clear, then one
//!   16-byte block encrypted and up to nine clear, repeated; the block that would end the
//!   NAL unit and any partial block stay clear; AES-128-CBC restarts from the IV at each
//!   NAL unit. Emulation prevention is then applied over the whole encrypted NAL unit, so
//!   that it holds no start code; decryptors (FFmpeg, hls.js, Apple's) take those bytes
//!   out, decrypt, and have the NAL unit as the encoder wrote it. Other NAL units stay
//!   clear and as they are.
//! - AAC in ADTS: each frame's header and the first 16 bytes after it stay clear, then
//!   every whole block is encrypted in one CBC chain from the IV; a partial block is clear.
//! - The PMT says so: stream types 0xdb and 0xcf, a `private_data_indicator_descriptor`
//!   (`zavc`, `aacd`) and for audio a registration descriptor `apad` with the
//!   `audio_setup_information` (`zaac`, the AudioSpecificConfig).
//!
//! Each PES packet of an encrypted stream is written again (its length can change with
//! emulation prevention) where it started, with the same PES header (PTS, DTS) and the
//! first PCR it carried; every other packet is copied as it is (SCTE-35, ID3, PAT).
//! Hand-written: no kept crate writes SAMPLE-AES.

use super::ts::{self, StreamType, TsError};
use super::tsmux;
use aes::cipher::{BlockEncryptMut, KeyIvInit};
use std::collections::HashMap;
use thiserror::Error;

/// NAL units of this size or less stay clear.
const CLEAR_NAL_MAX: usize = 48;
/// Clear bytes at the start of an encrypted NAL unit.
const CLEAR_NAL_LEAD: usize = 32;
/// One encrypted block in every ten.
const NAL_BLOCK_PERIOD: usize = 160;

/// Why a segment cannot be SAMPLE-AES encrypted.
#[derive(Debug, Error, PartialEq)]
pub enum SampleAesError {
    #[error(transparent)]
    Ts(#[from] TsError),
    #[error(
        "SAMPLE-AES of MPEG-TS is done here for H.264 video and AAC audio; \
         this segment has {0} on PID {1}: use AES_128, or CMAF with SAMPLE_AES"
    )]
    Unsupported(String, u16),
    #[error("SAMPLE-AES audio is AAC-LC (or HE-AAC signalled as LC); PID {0} is AAC of object type {1}")]
    AacProfile(u16, u8),
    #[error("an AAC frame of PID {0} has no ADTS header where one should start; the segment cannot be encrypted")]
    NotAdts(u16),
    #[error("the PMT does not fit in one TS packet once the encryption descriptors are added")]
    PmtTooLarge,
    #[error("the segment's PMT cannot be read: {0}")]
    Pmt(&'static str),
    #[error("the segment has no H.264 or AAC stream in a PMT before its media: nothing would be encrypted")]
    NothingToEncrypt,
}

/// What a PID carries, from the PMT.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Video,
    Audio,
}

/// One PES packet of an encrypted stream, gathered from its packets.
struct Pes {
    pid: u16,
    kind: Kind,
    bytes: Vec<u8>,
    random_access: bool,
    pcr: Option<[u8; 6]>,
}

/// What goes out at each input packet's place.
enum Slot {
    Copy(usize),
    /// An adaptation-field-only packet (a PCR) of an encrypted stream: copied, with the
    /// continuity counter of the packet written before it on its PID.
    Adaptation(usize),
    Pes(usize),
    Pmt(usize),
}

/// Encrypts `segment` with `key` and `iv` (both as `EXT-X-KEY` gives them).
pub fn encrypt_ts(key: &[u8; 16], iv: &[u8; 16], segment: &[u8]) -> Result<Vec<u8>, SampleAesError> {
    let mut pmt_pids = Vec::new();
    let mut streams: HashMap<u16, Kind> = HashMap::new();
    let mut slots = Vec::new();
    let mut pes: Vec<Pes> = Vec::new();
    let mut open: HashMap<u16, usize> = HashMap::new();
    let mut counters: HashMap<u16, u8> = HashMap::new();
    for packet in ts::packets(segment) {
        let packet = packet?;
        let h = packet.header;
        if h.pid == 0 && h.unit_start {
            pmt_pids = packet.payload.and_then(ts::parse_pat).unwrap_or_default();
        } else if pmt_pids.contains(&h.pid) && h.unit_start {
            for (pid, ty) in packet.payload.and_then(ts::parse_pmt).unwrap_or_default() {
                match ty {
                    StreamType::H264 => streams.insert(pid, Kind::Video),
                    StreamType::Aac => streams.insert(pid, Kind::Audio),
                    // Audio and video that Sluice cannot encrypt: never served clear under
                    // a SAMPLE-AES key. (Private data, 0x06, is DVB subtitles or teletext.)
                    StreamType::H265
                    | StreamType::Ac3
                    | StreamType::Eac3
                    | StreamType::Other(0x01..=0x04 | 0x10 | 0x11 | 0x1c | 0x1e..=0x21) => {
                        return Err(SampleAesError::Unsupported(format!("{ty:?}"), pid))
                    }
                    _ => None,
                };
            }
            slots.push(Slot::Pmt(packet.offset));
            continue;
        }
        let Some(&kind) = streams.get(&h.pid) else {
            slots.push(Slot::Copy(packet.offset));
            continue;
        };
        let raw = &segment[packet.offset..packet.offset + ts::PACKET_SIZE];
        if packet.payload.is_none() {
            slots.push(Slot::Adaptation(packet.offset));
            continue;
        }
        let pcr = h.pcr.then(|| raw[6..12].try_into().expect("six bytes"));
        if h.unit_start {
            // The packets written keep counting from the encoder's counter.
            counters.entry(h.pid).or_insert(raw[3] & 0x0f);
            open.insert(h.pid, pes.len());
            slots.push(Slot::Pes(pes.len()));
            pes.push(Pes {
                pid: h.pid,
                kind,
                bytes: Vec::with_capacity(4096),
                random_access: h.random_access,
                pcr: None,
            });
        }
        // The tail of a PES packet begun in the previous segment cannot be decrypted:
        // it is left out, as a demuxer that starts here skips it.
        let Some(&at) = open.get(&h.pid) else { continue };
        let current = &mut pes[at];
        current.pcr = current.pcr.or(pcr);
        if let Some(payload) = packet.payload {
            current.bytes.extend_from_slice(payload);
        }
    }

    if streams.is_empty() {
        return Err(SampleAesError::NothingToEncrypt);
    }
    let asc = audio_configs(&pes)?;
    let mut out = Vec::with_capacity(segment.len() + segment.len() / 50);
    for slot in slots {
        match slot {
            Slot::Copy(offset) => out.extend_from_slice(&segment[offset..offset + ts::PACKET_SIZE]),
            Slot::Adaptation(offset) => {
                let at = out.len();
                out.extend_from_slice(&segment[offset..offset + ts::PACKET_SIZE]);
                let pid = ts::pid(out[at + 1], out[at + 2]);
                if let Some(next) = counters.get(&pid) {
                    out[at + 3] = (out[at + 3] & 0xf0) | (next.wrapping_sub(1) & 0x0f);
                }
            }
            Slot::Pmt(offset) => {
                let raw = &segment[offset..offset + ts::PACKET_SIZE];
                out.extend_from_slice(&encrypted_pmt(raw, &asc)?);
            }
            Slot::Pes(i) => {
                let p = &mut pes[i];
                encrypt_pes(key, iv, p)?;
                let pcr = p.pcr.map(|b| read_pcr(&b));
                tsmux::write_pes(&mut out, p.pid, &p.bytes, pcr, p.random_access, &mut counters);
            }
        }
    }
    Ok(out)
}

/// The 33-bit PCR base, as the TS writer takes it, of an adaptation field's six PCR bytes
/// (the extension is dropped: the writer writes zero).
fn read_pcr(b: &[u8; 6]) -> u64 {
    (u64::from(b[0]) << 25)
        | (u64::from(b[1]) << 17)
        | (u64::from(b[2]) << 9)
        | (u64::from(b[3]) << 1)
        | (u64::from(b[4]) >> 7)
}

/// Encrypts the elementary stream bytes of one PES packet and fixes its length field.
fn encrypt_pes(key: &[u8; 16], iv: &[u8; 16], pes: &mut Pes) -> Result<(), SampleAesError> {
    let b = &pes.bytes;
    if b.len() < 9 || b[..3] != [0, 0, 1] {
        return Ok(());
    }
    let header = 9 + usize::from(b[8]);
    let declared = usize::from(u16::from_be_bytes([b[4], b[5]]));
    let end = if declared == 0 {
        b.len()
    } else {
        (6 + declared).min(b.len())
    };
    if header > end {
        return Ok(());
    }
    let payload = match pes.kind {
        Kind::Video => encrypt_annex_b(key, iv, &b[header..end]),
        Kind::Audio => {
            let mut frames = b[header..end].to_vec();
            encrypt_adts(key, iv, &mut frames).map_err(|()| SampleAesError::NotAdts(pes.pid))?;
            frames
        }
    };
    let mut bytes = Vec::with_capacity(header + payload.len());
    bytes.extend_from_slice(&b[..header]);
    bytes.extend_from_slice(&payload);
    let length = bytes.len() - 6;
    let field = if declared == 0 || length > 0xffff {
        0
    } else {
        length as u16
    };
    bytes[4..6].copy_from_slice(&field.to_be_bytes());
    pes.bytes = bytes;
    Ok(())
}

/// Encrypts the slice NAL units of an Annex B access unit; everything between NAL units
/// (start codes, zero bytes) is kept as it is.
fn encrypt_annex_b(key: &[u8; 16], iv: &[u8; 16], data: &[u8]) -> Vec<u8> {
    let starts: Vec<usize> = memchr::memmem::find_iter(data, &[0, 0, 1]).map(|p| p + 3).collect();
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut copied = 0;
    for (i, &start) in starts.iter().enumerate() {
        let mut end = starts.get(i + 1).map_or(data.len(), |next| next - 3);
        while end > start && data[end - 1] == 0 {
            end -= 1;
        }
        let nal = &data[start..end];
        if nal.len() <= CLEAR_NAL_MAX || !matches!(nal[0] & 0x1f, 1 | 5) {
            continue;
        }
        let mut encrypted = nal.to_vec();
        let mut cipher = cbc::Encryptor::<aes::Aes128>::new(key.into(), iv.into());
        let mut at = CLEAR_NAL_LEAD;
        while at + 16 < encrypted.len() {
            cipher.encrypt_block_mut((&mut encrypted[at..at + 16]).into());
            at += NAL_BLOCK_PERIOD;
        }
        out.extend_from_slice(&data[copied..start]);
        escape_into(&encrypted, &mut out);
        copied = end;
    }
    out.extend_from_slice(&data[copied..]);
    out
}

/// Appends `rbsp` with emulation prevention bytes inserted where `00 00` is followed by
/// a byte of 3 or less (H.264 §7.4.1), copying the runs in between whole.
fn escape_into(rbsp: &[u8], out: &mut Vec<u8>) {
    let (mut copied, mut at) = (0, 0);
    while let Some(found) = memchr::memmem::find(&rbsp[at..], &[0, 0]) {
        let next = at + found + 2;
        if next < rbsp.len() && rbsp[next] <= 3 {
            out.extend_from_slice(&rbsp[copied..next]);
            out.push(3);
            copied = next;
        }
        at = next;
    }
    out.extend_from_slice(&rbsp[copied..]);
}

/// Encrypts each ADTS frame of `frames` in place; `Err` where a frame does not start
/// with the ADTS sync word or runs past the end.
fn encrypt_adts(key: &[u8; 16], iv: &[u8; 16], frames: &mut [u8]) -> Result<(), ()> {
    let mut pos = 0;
    while pos < frames.len() {
        let h = frames.get(pos..pos + 7).ok_or(())?;
        if h[0] != 0xff || h[1] & 0xf0 != 0xf0 {
            return Err(());
        }
        let header = if h[1] & 1 == 1 { 7 } else { 9 };
        let length = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        if length < header {
            return Err(());
        }
        if pos + length > frames.len() {
            // A frame cut by the end of the PES packet (the segment ended): left clear.
            break;
        }
        let body = &mut frames[pos + header..pos + length];
        if body.len() > 16 {
            let mut cipher = cbc::Encryptor::<aes::Aes128>::new(key.into(), iv.into());
            for block in body[16..].chunks_exact_mut(16) {
                cipher.encrypt_block_mut(block.into());
            }
        }
        pos += length;
    }
    Ok(())
}

/// The AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) of each audio PID's first ADTS
/// header: object type, sampling frequency index, channel configuration.
fn audio_configs(pes: &[Pes]) -> Result<HashMap<u16, [u8; 2]>, SampleAesError> {
    let mut out = HashMap::new();
    for p in pes.iter().filter(|p| p.kind == Kind::Audio) {
        if out.contains_key(&p.pid) || p.bytes.len() < 9 {
            continue;
        }
        let Some(h) = p.bytes.get(9 + usize::from(p.bytes[8])..).and_then(|b| b.get(..4)) else {
            continue;
        };
        let object = (h[2] >> 6) + 1;
        let frequency = (h[2] >> 2) & 0x0f;
        let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
        if object != 2 {
            return Err(SampleAesError::AacProfile(p.pid, object));
        }
        out.insert(
            p.pid,
            [
                (object << 3) | (frequency >> 1),
                ((frequency & 1) << 7) | (channels << 3),
            ],
        );
    }
    Ok(out)
}

/// The PMT packet `raw` with the encrypted streams' types and descriptors.
fn encrypted_pmt(raw: &[u8], asc: &HashMap<u16, [u8; 2]>) -> Result<Vec<u8>, SampleAesError> {
    let h = ts::Packet::read(0, raw.try_into().expect("one packet")).header;
    let payload = h.payload_start.map(|start| &raw[start..]).unwrap_or_default();
    let section = payload
        .first()
        .and_then(|pointer| payload.get(1 + usize::from(*pointer)..))
        .filter(|section| section.len() >= 12)
        .ok_or(SampleAesError::Pmt("its section header is not in its first packet"))?;
    if section[0] != 0x02 {
        return Err(SampleAesError::Pmt("the PMT PID carries another table"));
    }
    let length = (usize::from(section[1] & 0x0f) << 8) | usize::from(section[2]);
    if length < 13 {
        return Err(SampleAesError::Pmt("its section is shorter than a PMT"));
    }
    if section.len() < 3 + length {
        // The encoder's PMT spans packets: rewriting it is not supported.
        return Err(SampleAesError::PmtTooLarge);
    }
    let (extension, version) = (u16::from_be_bytes([section[3], section[4]]), section[5]);
    let program_info = (usize::from(section[10] & 0x0f) << 8) | usize::from(section[11]);
    let end = 3 + length - 4;
    if 12 + program_info > end {
        return Err(SampleAesError::Pmt("its program_info_length runs past the section"));
    }
    let mut body = section[8..12 + program_info].to_vec();
    let mut i = 12 + program_info;
    while i + 5 <= end {
        let (ty, pid) = (section[i], ts::pid(section[i + 1], section[i + 2]));
        let info = (usize::from(section[i + 3] & 0x0f) << 8) | usize::from(section[i + 4]);
        let descriptors = &section[i + 5..(i + 5 + info).min(end)];
        let mut added = Vec::new();
        let ty = match ty {
            0x1b => {
                added.extend_from_slice(&[0x0f, 4]);
                added.extend_from_slice(b"zavc");
                0xdb
            }
            0x0f => {
                added.extend_from_slice(&[0x0f, 4]);
                added.extend_from_slice(b"aacd");
                // audio_setup_information: type, priming 0, version 1, the config.
                if let Some(config) = asc.get(&pid) {
                    added.extend_from_slice(&[0x05, 4 + 4 + 2 + 1 + 1 + 2]);
                    added.extend_from_slice(b"apad");
                    added.extend_from_slice(b"zaac");
                    added.extend_from_slice(&[0, 0, 1, 2]);
                    added.extend_from_slice(config);
                }
                0xcf
            }
            other => other,
        };
        let info = descriptors.len() + added.len();
        body.push(ty);
        body.extend_from_slice(&section[i + 1..i + 3]);
        body.extend_from_slice(&(0xF000 | info as u16).to_be_bytes());
        body.extend_from_slice(descriptors);
        body.extend_from_slice(&added);
        i += 5 + descriptors.len();
    }
    let mut section = tsmux::psi_section(0x02, extension, &body);
    // Keep the version of the PMT the encoder wrote.
    section[5] = (section[5] & !0x3e) | (version & 0x3e);
    let crc = tsmux::crc32_mpeg2(&section[..section.len() - 4]);
    let n = section.len();
    section[n - 4..].copy_from_slice(&crc.to_be_bytes());
    if section.len() > ts::PACKET_SIZE - 5 {
        return Err(SampleAesError::PmtTooLarge);
    }
    let mut out = raw[..4].to_vec();
    // The PMT packet's own header (PID, counter), no adaptation field, pointer 0.
    out[3] = 0x10 | (raw[3] & 0x0f);
    out.push(0);
    out.extend_from_slice(&section);
    out.resize(ts::PACKET_SIZE, 0xff);
    Ok(out)
}

#[cfg(test)]
mod tests;
