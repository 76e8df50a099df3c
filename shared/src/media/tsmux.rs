//! fMP4 → MPEG-TS (ISO/IEC 13818-1) for CMAF ingest served as HLS TS: one PAT and PMT at
//! the start, one PES per access unit, PCR on the video PID, 188-byte packets.
//!
//! Video NAL units go from length-prefixed to Annex B start codes with an access unit
//! delimiter first and the init segment's parameter sets before every keyframe that does
//! not carry its own (ISO/IEC 14496-15 §5.3, Apple HLS authoring spec); AAC frames get
//! ADTS headers (ISO/IEC 13818-7 §6.2); AC-3/E-AC-3 frames are carried as they are.
//! Hand-written: no kept Rust crate writes TS.

use super::fmp4::{self, Fmp4Error, Init, InitTrack, TrackCoding};
use crate::time::{PTS_WRAP, TICKS_PER_SECOND};

const PACKET: usize = 188;
const PMT_PID: u16 = 0x1000;
const FIRST_ES_PID: u16 = 0x100;
/// Where presentation time zero of the fMP4 timeline lands in TS: leaves room for decode
/// times before presentation times, as ffmpeg's own TS muxer does (1.4 s).
const TS_ORIGIN: i128 = 126_000;

/// The TS segment carrying the same access units as `segment` (a `moof` + `mdat` file)
/// described by `init`.
pub fn to_ts(init: &Init, segment: &[u8]) -> Result<Vec<u8>, Fmp4Error> {
    let samples = fmp4::samples(init, segment)?;
    let tracks: Vec<&InitTrack> = init.tracks.iter().collect();
    let pid_of = |id: u32| FIRST_ES_PID + tracks.iter().position(|t| t.id == id).unwrap_or(0) as u16;
    let pcr_pid = tracks
        .iter()
        .find(|t| t.coding.is_video())
        .or(tracks.first())
        .map(|t| pid_of(t.id))
        .unwrap_or(FIRST_ES_PID);

    // Access units in decode order across tracks, as a demuxer reads them.
    let mut units: Vec<(u64, u64, &fmp4::Sample, &InitTrack)> = samples
        .iter()
        .filter_map(|s| {
            let track = tracks.iter().find(|t| t.id == s.track)?;
            let dts = to_90k(s.decode as i128 - i128::from(track.edit), track.timescale);
            let pts = to_90k(
                s.decode as i128 + s.composition_offset as i128 - i128::from(track.edit),
                track.timescale,
            );
            Some((dts, pts, s, *track))
        })
        .collect();
    units.sort_by_key(|u| (u.0, u.3.id));

    let mut out = Vec::with_capacity(segment.len() + segment.len() / 10 + 4 * PACKET);
    let mut counters = std::collections::HashMap::<u16, u8>::new();
    let pat = psi_section(0x00, 1, &pat_body());
    write_section(&mut out, 0, &pat, &mut counters);
    let pmt = psi_section(0x02, 1, &pmt_body(&tracks, pcr_pid, pid_of));
    write_section(&mut out, PMT_PID, &pmt, &mut counters);

    for (dts, pts, sample, track) in units {
        let (stream_id, payload, keyframe) = match &track.coding {
            TrackCoding::H264 {
                nal_length,
                parameter_sets,
            } => {
                let (bytes, key) = annex_b(sample.data, *nal_length, parameter_sets, false);
                (0xE0, bytes, key)
            }
            TrackCoding::H265 {
                nal_length,
                parameter_sets,
            } => {
                let (bytes, key) = annex_b(sample.data, *nal_length, parameter_sets, true);
                (0xE0, bytes, key)
            }
            TrackCoding::Aac {
                object_type,
                frequency_index,
                channels,
            } => {
                let mut bytes = adts_header(*object_type, *frequency_index, *channels, sample.data.len()).to_vec();
                bytes.extend_from_slice(sample.data);
                (0xC0, bytes, true)
            }
            TrackCoding::Ac3 | TrackCoding::Eac3 => (0xBD, sample.data.to_vec(), true),
        };
        let pid = pid_of(track.id);
        let pes = pes_packet(
            stream_id,
            pts,
            (dts != pts).then_some(dts),
            &payload,
            track.coding.is_video(),
        );
        let pcr = (pid == pcr_pid).then_some(dts.saturating_sub(9_000) % PTS_WRAP);
        write_pes(
            &mut out,
            pid,
            &pes,
            pcr,
            keyframe && track.coding.is_video(),
            &mut counters,
        );
    }
    Ok(out)
}

/// `t` in `timescale` units to 90 kHz ticks on the TS clock (33 bits, wrapping).
fn to_90k(t: i128, timescale: u32) -> u64 {
    let ticks = t * i128::from(TICKS_PER_SECOND) / i128::from(timescale) + TS_ORIGIN;
    ticks.rem_euclid(i128::from(PTS_WRAP)) as u64
}

/// Length-prefixed NAL units → Annex B with an AUD first and, before a keyframe that
/// lacks them, the parameter sets. Returns the bytes and whether it is a keyframe.
fn annex_b(data: &[u8], nal_length: usize, parameter_sets: &[Vec<u8>], hevc: bool) -> (Vec<u8>, bool) {
    let mut nals = Vec::new();
    let mut at = 0;
    while at + nal_length <= data.len() {
        let len = data[at..at + nal_length]
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b));
        at += nal_length;
        let Some(nal) = data.get(at..at + len) else { break };
        if !nal.is_empty() {
            nals.push(nal);
        }
        at += len;
    }
    let kind = |nal: &[u8]| if hevc { (nal[0] >> 1) & 0x3f } else { nal[0] & 0x1f };
    let (aud, keyframe_types, parameter_types): (&[u8], std::ops::RangeInclusive<u8>, &[u8]) = if hevc {
        (&[0x46, 0x01, 0x50], 16..=23, &[32, 33, 34])
    } else {
        (&[0x09, 0xF0], 5..=5, &[7, 8])
    };
    let keyframe = nals.iter().any(|n| keyframe_types.contains(&kind(n)));
    let has_parameters = nals.iter().any(|n| parameter_types.contains(&kind(n)));
    let aud_type = if hevc { 35 } else { 9 };
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut put = |nal: &[u8]| {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    };
    if nals.first().is_none_or(|n| kind(n) != aud_type) {
        put(aud);
    }
    let mut parameters_sent = !keyframe || has_parameters;
    for nal in &nals {
        if !parameters_sent && keyframe_types.contains(&kind(nal)) {
            for ps in parameter_sets {
                put(ps);
            }
            parameters_sent = true;
        }
        put(nal);
    }
    (out, keyframe)
}

/// The 7-byte ADTS header (no CRC) of a raw AAC frame of `len` bytes.
pub(super) fn adts_header(object_type: u8, frequency_index: u8, channels: u8, len: usize) -> [u8; 7] {
    let frame = len + 7;
    let profile = object_type.saturating_sub(1) & 3;
    [
        0xFF,
        0xF1,
        (profile << 6) | ((frequency_index & 0x0f) << 2) | ((channels >> 2) & 1),
        ((channels & 3) << 6) | ((frame >> 11) & 3) as u8,
        ((frame >> 3) & 0xff) as u8,
        (((frame & 7) << 5) as u8) | 0x1f,
        0xFC,
    ]
}

fn timestamp(prefix: u8, t: u64) -> [u8; 5] {
    [
        (prefix << 4) | (((t >> 30) & 7) as u8) << 1 | 1,
        (t >> 22) as u8,
        (((t >> 15) & 0x7f) as u8) << 1 | 1,
        (t >> 7) as u8,
        ((t & 0x7f) as u8) << 1 | 1,
    ]
}

/// A PES packet. Video PES are unbounded (length 0), as TS allows for video.
pub(super) fn pes_packet(stream_id: u8, pts: u64, dts: Option<u64>, payload: &[u8], video: bool) -> Vec<u8> {
    let header_data = if dts.is_some() { 10 } else { 5 };
    let mut pes = Vec::with_capacity(payload.len() + 19);
    pes.extend_from_slice(&[0, 0, 1, stream_id]);
    let length = 3 + header_data + payload.len();
    let length = if video || length > 0xffff { 0 } else { length as u16 };
    pes.extend_from_slice(&length.to_be_bytes());
    pes.push(0x80);
    pes.push(if dts.is_some() { 0xC0 } else { 0x80 });
    pes.push(header_data as u8);
    match dts {
        Some(dts) => {
            pes.extend_from_slice(&timestamp(3, pts));
            pes.extend_from_slice(&timestamp(1, dts));
        }
        None => pes.extend_from_slice(&timestamp(2, pts)),
    }
    pes.extend_from_slice(payload);
    pes
}

fn next_counter(counters: &mut std::collections::HashMap<u16, u8>, pid: u16) -> u8 {
    let c = counters.entry(pid).or_insert(0);
    let now = *c;
    *c = (*c + 1) & 0x0f;
    now
}

/// Splits a PES into packets: PCR and random-access flag on the first when asked,
/// adaptation-field stuffing on the last.
pub(super) fn write_pes(
    out: &mut Vec<u8>,
    pid: u16,
    pes: &[u8],
    pcr: Option<u64>,
    random_access: bool,
    counters: &mut std::collections::HashMap<u16, u8>,
) {
    let mut rest = pes;
    let mut first = true;
    while !rest.is_empty() {
        let mut adaptation = Vec::new();
        if first && (pcr.is_some() || random_access) {
            let mut flags = 0u8;
            if random_access {
                flags |= 0x40;
            }
            adaptation.push(0);
            if let Some(pcr) = pcr {
                flags |= 0x10;
                adaptation.push(flags);
                adaptation.extend_from_slice(&[
                    (pcr >> 25) as u8,
                    (pcr >> 17) as u8,
                    (pcr >> 9) as u8,
                    (pcr >> 1) as u8,
                    (((pcr & 1) as u8) << 7) | 0x7e,
                    0,
                ]);
            } else {
                adaptation.push(flags);
            }
        }
        let room = PACKET - 4 - adaptation.len();
        let take = rest.len().min(room);
        if take < room {
            // Stuff: grow (or create) the adaptation field to fill the packet.
            if adaptation.is_empty() {
                let fill = room - take;
                if fill == 1 {
                    adaptation.push(0);
                } else {
                    adaptation.push(0);
                    adaptation.push(0);
                    adaptation.resize(fill, 0xff);
                }
            } else {
                let fill = room - take;
                adaptation.resize(adaptation.len() + fill, 0xff);
            }
        }
        if !adaptation.is_empty() {
            adaptation[0] = (adaptation.len() - 1) as u8;
        }
        let control = if adaptation.is_empty() { 0x10 } else { 0x30 };
        let counter = next_counter(counters, pid);
        out.push(0x47);
        out.push(if first { 0x40 } else { 0 } | ((pid >> 8) as u8 & 0x1f));
        out.push(pid as u8);
        out.push(control | counter);
        out.extend_from_slice(&adaptation);
        out.extend_from_slice(&rest[..take]);
        rest = &rest[take..];
        first = false;
    }
}

pub(super) fn write_section(
    out: &mut Vec<u8>,
    pid: u16,
    section: &[u8],
    counters: &mut std::collections::HashMap<u16, u8>,
) {
    let counter = next_counter(counters, pid);
    let start = out.len();
    out.extend_from_slice(&[0x47, 0x40 | ((pid >> 8) as u8 & 0x1f), pid as u8, 0x10 | counter, 0]);
    out.extend_from_slice(section);
    out.resize(start + PACKET, 0xff);
}

fn pat_body() -> Vec<u8> {
    let mut body = vec![0x00, 0x01];
    body.extend_from_slice(&(0xE000 | PMT_PID).to_be_bytes());
    body
}

fn pmt_body(tracks: &[&InitTrack], pcr_pid: u16, pid_of: impl Fn(u32) -> u16) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(0xE000 | pcr_pid).to_be_bytes());
    body.extend_from_slice(&[0xF0, 0x00]);
    for track in tracks {
        let stream_type = match track.coding {
            TrackCoding::H264 { .. } => 0x1B,
            TrackCoding::H265 { .. } => 0x24,
            TrackCoding::Aac { .. } => 0x0F,
            TrackCoding::Ac3 => 0x81,
            TrackCoding::Eac3 => 0x87,
        };
        body.push(stream_type);
        body.extend_from_slice(&(0xE000 | pid_of(track.id)).to_be_bytes());
        body.extend_from_slice(&[0xF0, 0x00]);
    }
    body
}

/// A PSI section (table id, id extension, version 0, one section) with its CRC.
pub(super) fn psi_section(table_id: u8, extension: u16, body: &[u8]) -> Vec<u8> {
    let length = 5 + body.len() + 4;
    let mut section = vec![table_id, 0xB0 | ((length >> 8) as u8 & 0x0f), length as u8];
    section.extend_from_slice(&extension.to_be_bytes());
    section.extend_from_slice(&[0xC1, 0x00, 0x00]);
    section.extend_from_slice(body);
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());
    section
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, not reflected, initial all ones).
pub(super) fn crc32_mpeg2(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_mpeg2_check_value() {
        // The catalogue check value of CRC-32/MPEG-2 over "123456789".
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn adts_header_round_trips_through_the_adts_reader() {
        let raw = [0x21u8; 300];
        let mut frame = adts_header(2, 3, 2, raw.len()).to_vec();
        frame.extend_from_slice(&raw);
        let frames: Vec<_> = crate::media::codec::adts_frames(&frame).collect();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].raw, &raw[..]);
        assert_eq!(frames[0].config, [0x11, 0x90]);
        assert_eq!(frames[0].header.sample_rate, 48_000);
        assert_eq!(frames[0].header.channels, 2);
    }

    #[test]
    fn keyframes_get_an_aud_and_parameter_sets_once() {
        let idr = [0x65u8, 0x88, 0x84];
        let sei = [0x06u8, 0x05];
        let mut sample = Vec::new();
        for nal in [&sei[..], &idr[..]] {
            sample.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            sample.extend_from_slice(nal);
        }
        let sps = vec![0x67, 0x64, 0x00, 0x1f];
        let pps = vec![0x68, 0xeb];
        let (out, key) = annex_b(&sample, 4, &[sps.clone(), pps.clone()], false);
        assert!(key);
        let expected: Vec<u8> = [&[0x09u8, 0xF0][..], &sei, &sps, &pps, &idr]
            .iter()
            .flat_map(|n| [&[0u8, 0, 0, 1][..], n].concat())
            .collect();
        assert_eq!(out, expected);
        let (out, key) = annex_b(&[0, 0, 0, 2, 0x41, 0x9a], 4, &[sps, pps], false);
        assert!(!key);
        assert_eq!(out, [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x41, 0x9a]);
    }
}
