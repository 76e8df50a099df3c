//! MPEG-TS segment analysis for ingest: PAT/PMT, PES timestamps, the first access unit's
//! parameter sets and whether the segment starts on a keyframe. One pass over the
//! 188-byte packets, no copies except the first video PES and the last audio PES.

use crate::media::codec::{self, AacParams, VideoParams};
use crate::time::{Ticks, PTS_WRAP};
use thiserror::Error;

/// Size of one transport stream packet.
pub const PACKET_SIZE: usize = 188;
pub(crate) const SYNC_BYTE: u8 = 0x47;
/// Cap on how much of the first video PES is kept to look for parameter sets.
const MAX_FIRST_PES: usize = 1 << 20;

/// Why a TS segment could not be analysed; messages name what an engineer should check.
#[derive(Debug, Error, PartialEq)]
pub enum TsError {
    #[error("not an MPEG transport stream: byte {offset} is {found:#04x}, expected the sync byte 0x47")]
    NoSync { offset: usize, found: u8 },
    #[error("empty segment")]
    Empty,
    #[error("no PAT (program association table) in the segment")]
    NoPat,
    #[error("no PMT (program map table) for any program in the PAT")]
    NoPmt,
    #[error("no audio or video elementary stream with PES timestamps")]
    NoMedia,
    #[error(
        "absurd timestamps: the segment's decoding timestamps span {seconds:.1} s (more than {MAX_SPAN_SECONDS} s, \
         or going backwards); check the encoder's clock"
    )]
    AbsurdTimestamps { seconds: f64 },
}

/// The longest span of timestamps one segment may have: longer means broken timestamps
/// (a jump inside the segment, or time going backwards, which wraps to about 26 hours).
pub const MAX_SPAN_SECONDS: u64 = 120;

fn plausible(span: u64) -> Result<u64, TsError> {
    if span > MAX_SPAN_SECONDS * crate::time::TICKS_PER_SECOND {
        return Err(TsError::AbsurdTimestamps {
            seconds: span as f64 / crate::time::TICKS_PER_SECOND as f64,
        });
    }
    Ok(span)
}

/// Elementary stream types Sluice recognises (ISO/IEC 13818-1 Table 2-34 and ATSC A/52).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamType {
    H264,
    H265,
    Aac,
    Ac3,
    Eac3,
    Scte35,
    Id3,
    Other(u8),
}

impl StreamType {
    pub(crate) fn from_byte(b: u8) -> StreamType {
        match b {
            0x1b => StreamType::H264,
            0x24 => StreamType::H265,
            0x0f => StreamType::Aac,
            0x81 => StreamType::Ac3,
            0x87 => StreamType::Eac3,
            0x86 => StreamType::Scte35,
            0x15 => StreamType::Id3,
            other => StreamType::Other(other),
        }
    }

    pub(crate) fn is_video(self) -> bool {
        matches!(self, StreamType::H264 | StreamType::H265)
    }

    pub(crate) fn is_audio(self) -> bool {
        matches!(self, StreamType::Aac | StreamType::Ac3 | StreamType::Eac3)
    }
}

/// The video track of a segment.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoTrack {
    pub stream_type: StreamType,
    /// Codec string and size, when the first access unit carried an SPS.
    pub params: Option<VideoParams>,
    /// Number of access units (PES packets) in the segment.
    pub frames: u32,
}

/// An audio track of a segment.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioTrack {
    pub stream_type: StreamType,
    /// AAC parameters from the first ADTS header (None for AC-3/E-AC-3).
    pub aac: Option<AacParams>,
}

impl AudioTrack {
    /// RFC 6381 codec string for HLS `CODECS`.
    pub fn codec(&self) -> Option<String> {
        match self.stream_type {
            StreamType::Aac => Some(self.aac.as_ref().map_or("mp4a.40.2".into(), |a| a.codec.clone())),
            StreamType::Ac3 => Some("ac-3".into()),
            StreamType::Eac3 => Some("ec-3".into()),
            _ => None,
        }
    }
}

/// What ingest learns from one TS segment.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentInfo {
    /// PTS of the first presented frame (33-bit, not unwrapped), video if present else audio.
    pub start_pts: u64,
    /// Presentation duration of the segment.
    pub duration: Ticks,
    /// The first video access unit is an IDR/IRAP picture (or flagged random access).
    pub starts_with_keyframe: bool,
    pub video: Option<VideoTrack>,
    pub audio: Vec<AudioTrack>,
    /// Number of programs in the PAT.
    pub programs: usize,
    /// A SCTE-35 PID is declared in the PMT.
    pub has_scte35: bool,
}

impl SegmentInfo {
    /// Codec strings of all tracks, video first, for `CODECS`.
    pub fn codecs(&self) -> Vec<String> {
        let video = self
            .video
            .as_ref()
            .and_then(|v| v.params.as_ref().map(|p| p.codec.clone()));
        video
            .into_iter()
            .chain(self.audio.iter().filter_map(AudioTrack::codec))
            .collect()
    }
}

#[derive(Default)]
struct PidState {
    stream_type: Option<StreamType>,
    first_pts: Option<u64>,
    first_dts: Option<u64>,
    last_dts: Option<u64>,
    pes_count: u32,
    random_access_first: bool,
    /// Payload of the first PES (video) or the current PES (audio).
    pes: Vec<u8>,
    first_pes_done: bool,
}

/// Analyses one TS segment. Fails only when the bytes are not usable as media.
pub fn analyze(data: &[u8]) -> Result<SegmentInfo, TsError> {
    if data.is_empty() {
        return Err(TsError::Empty);
    }
    let mut pmt_pids: Vec<u16> = Vec::new();
    let mut pat_seen = false;
    let mut pmt_seen = false;
    let mut has_scte35 = false;
    let mut pids: std::collections::HashMap<u16, PidState> = Default::default();

    for (index, packet) in data.chunks(PACKET_SIZE).enumerate() {
        if packet[0] != SYNC_BYTE {
            return Err(TsError::NoSync {
                offset: index * PACKET_SIZE,
                found: packet[0],
            });
        }
        if packet.len() < PACKET_SIZE {
            break; // a truncated last packet carries nothing we can use
        }
        let pid = (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2]);
        let unit_start = packet[1] & 0x40 != 0;
        let adaptation = (packet[3] >> 4) & 3;
        let mut offset = 4;
        let mut random_access = false;
        if adaptation & 2 != 0 {
            let len = usize::from(packet[4]);
            random_access = len > 0 && packet.get(5).is_some_and(|f| f & 0x40 != 0);
            offset += 1 + len;
        }
        if adaptation & 1 == 0 || offset >= PACKET_SIZE {
            continue;
        }
        let payload = &packet[offset..];
        if pid == 0 {
            if unit_start {
                if let Some(programs) = parse_pat(payload) {
                    pat_seen = true;
                    pmt_pids = programs;
                }
            }
            continue;
        }
        if pmt_pids.contains(&pid) {
            if unit_start {
                if let Some(streams) = parse_pmt(payload) {
                    pmt_seen = true;
                    for (es_pid, ty) in streams {
                        has_scte35 |= ty == StreamType::Scte35;
                        pids.entry(es_pid).or_default().stream_type = Some(ty);
                    }
                }
            }
            continue;
        }
        let Some(state) = pids.get_mut(&pid) else { continue };
        let Some(ty) = state.stream_type else { continue };
        if !(ty.is_video() || ty.is_audio()) {
            continue;
        }
        if unit_start {
            let Some(pes) = parse_pes_header(payload) else { continue };
            if state.pes_count == 0 {
                state.random_access_first = random_access;
                state.first_pts = pes.pts;
            } else if ty.is_video() {
                state.first_pes_done = true;
            }
            state.pes_count += 1;
            let dts = pes.dts.or(pes.pts);
            state.first_dts = state.first_dts.or(dts);
            state.last_dts = dts.or(state.last_dts);
            if ty.is_audio() {
                state.pes.clear();
            }
            if !state.first_pes_done {
                state
                    .pes
                    .extend_from_slice(&payload[pes.data_offset.min(payload.len())..]);
            }
        } else if state.pes_count > 0 && !state.first_pes_done && state.pes.len() < MAX_FIRST_PES {
            state.pes.extend_from_slice(payload);
        }
    }

    if !pat_seen {
        return Err(TsError::NoPat);
    }
    if !pmt_seen {
        return Err(TsError::NoPmt);
    }
    summarise(pids, pmt_pids.len(), has_scte35)
}

fn summarise(
    pids: std::collections::HashMap<u16, PidState>,
    programs: usize,
    has_scte35: bool,
) -> Result<SegmentInfo, TsError> {
    let mut pids: Vec<(u16, PidState)> = pids.into_iter().filter(|(_, s)| s.pes_count > 0).collect();
    pids.sort_by_key(|(pid, _)| *pid);
    let video_state = pids
        .iter()
        .find(|(_, s)| s.stream_type.is_some_and(StreamType::is_video));
    let audio_states: Vec<&PidState> = pids
        .iter()
        .filter(|(_, s)| s.stream_type.is_some_and(StreamType::is_audio))
        .map(|(_, s)| s)
        .collect();

    let audio: Vec<AudioTrack> = audio_states
        .iter()
        .map(|s| {
            let stream_type = s.stream_type.unwrap_or(StreamType::Aac);
            AudioTrack {
                stream_type,
                aac: (stream_type == StreamType::Aac)
                    .then(|| codec::adts_header(&s.pes))
                    .flatten(),
            }
        })
        .collect();

    if let Some((_, v)) = video_state {
        let ty = v.stream_type.unwrap_or(StreamType::H264);
        let (params, keyframe) = scan_access_unit(ty, &v.pes);
        let start_pts = v.first_pts.ok_or(TsError::NoMedia)?;
        let span = plausible(wrapped_diff(
            v.first_dts.unwrap_or(start_pts),
            v.last_dts.unwrap_or(start_pts),
        ))?;
        let frame = if v.pes_count > 1 {
            span / u64::from(v.pes_count - 1)
        } else {
            0
        };
        return Ok(SegmentInfo {
            start_pts,
            duration: Ticks(span + frame),
            starts_with_keyframe: keyframe || v.random_access_first,
            video: Some(VideoTrack {
                stream_type: ty,
                params,
                frames: v.pes_count,
            }),
            audio,
            programs,
            has_scte35,
        });
    }

    let a = audio_states.first().ok_or(TsError::NoMedia)?;
    let start_pts = a.first_pts.ok_or(TsError::NoMedia)?;
    let span = plausible(wrapped_diff(
        a.first_dts.unwrap_or(start_pts),
        a.last_dts.unwrap_or(start_pts),
    ))?;
    let tail = match audio.first().and_then(|t| t.aac.as_ref()) {
        Some(aac) => {
            let frames = codec::adts_frame_count(&a.pes).max(1) as u64;
            frames * 1024 * crate::time::TICKS_PER_SECOND / u64::from(aac.sample_rate)
        }
        None => 2880, // one AC-3 frame (1536 samples at 48 kHz)
    };
    Ok(SegmentInfo {
        start_pts,
        duration: Ticks(span + tail),
        starts_with_keyframe: true,
        video: None,
        audio,
        programs,
        has_scte35,
    })
}

/// `later - earlier` on the 33-bit clock.
fn wrapped_diff(earlier: u64, later: u64) -> u64 {
    (later + PTS_WRAP - earlier) % PTS_WRAP
}

/// Finds the SPS and whether the access unit holds an IDR/IRAP picture.
fn scan_access_unit(ty: StreamType, es: &[u8]) -> (Option<VideoParams>, bool) {
    let mut params = None;
    let mut keyframe = false;
    for nal in annexb_nal_units(es) {
        let Some(&header) = nal.first() else { continue };
        match ty {
            StreamType::H265 => {
                let nal_type = (header >> 1) & 0x3f;
                keyframe |= (16..=21).contains(&nal_type);
                if nal_type == 33 && params.is_none() {
                    params = codec::h265_sps(nal);
                }
            }
            _ => {
                let nal_type = header & 0x1f;
                keyframe |= nal_type == 5;
                if nal_type == 7 && params.is_none() {
                    params = codec::h264_sps(nal);
                }
            }
        }
    }
    (params, keyframe)
}

/// Splits an Annex B byte stream into NAL units (start codes removed).
pub fn annexb_nal_units(es: &[u8]) -> impl Iterator<Item = &[u8]> {
    // SIMD substring search: this scan touches every byte of every video frame.
    let starts: Vec<usize> = memchr::memmem::find_iter(es, &[0, 0, 1]).map(|i| i + 3).collect();
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| {
            let mut e = s - 3;
            while e > 0 && es[e - 1] == 0 {
                e -= 1;
            }
            e
        })
        .chain(std::iter::once(es.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .filter(|(s, e)| s < e)
        .map(move |(s, e)| &es[s..e])
}

/// Program map PIDs listed in a PAT section.
pub(crate) fn parse_pat(payload: &[u8]) -> Option<Vec<u16>> {
    let section = payload.get(1 + usize::from(*payload.first()?)..)?;
    if *section.first()? != 0x00 {
        return None;
    }
    let length = (usize::from(section.get(1)? & 0x0f) << 8) | usize::from(*section.get(2)?);
    let end = (3 + length).checked_sub(4)?.min(section.len());
    let mut pids = Vec::new();
    let mut i = 8;
    while i + 4 <= end {
        let program = u16::from_be_bytes([section[i], section[i + 1]]);
        let pid = (u16::from(section[i + 2] & 0x1f) << 8) | u16::from(section[i + 3]);
        if program != 0 {
            pids.push(pid);
        }
        i += 4;
    }
    Some(pids)
}

/// Elementary streams (PID, type) listed in a PMT section.
pub(crate) fn parse_pmt(payload: &[u8]) -> Option<Vec<(u16, StreamType)>> {
    let section = payload.get(1 + usize::from(*payload.first()?)..)?;
    if *section.first()? != 0x02 {
        return None;
    }
    let length = (usize::from(section.get(1)? & 0x0f) << 8) | usize::from(*section.get(2)?);
    let end = (3 + length).checked_sub(4)?.min(section.len());
    let program_info = (usize::from(section.get(10)? & 0x0f) << 8) | usize::from(*section.get(11)?);
    let mut i = 12 + program_info;
    let mut streams = Vec::new();
    while i + 5 <= end {
        let ty = StreamType::from_byte(section[i]);
        let pid = (u16::from(section[i + 1] & 0x1f) << 8) | u16::from(section[i + 2]);
        let info_len = (usize::from(section[i + 3] & 0x0f) << 8) | usize::from(section[i + 4]);
        streams.push((pid, ty));
        i += 5 + info_len;
    }
    Some(streams)
}

pub(crate) struct PesHeader {
    pub(crate) pts: Option<u64>,
    pub(crate) dts: Option<u64>,
    pub(crate) data_offset: usize,
}

pub(crate) fn parse_pes_header(p: &[u8]) -> Option<PesHeader> {
    if p.len() < 9 || p[0..3] != [0, 0, 1] {
        return None;
    }
    let flags = p[7] >> 6;
    let data_offset = 9 + usize::from(p[8]);
    let pts = if flags & 2 != 0 {
        p.get(9..14).map(read_timestamp)
    } else {
        None
    };
    let dts = if flags == 3 {
        p.get(14..19).map(read_timestamp)
    } else {
        None
    };
    Some(PesHeader { pts, dts, data_offset })
}

fn read_timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] & 0x0e) << 29)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] & 0xfe) << 14)
        | (u64::from(b[3]) << 7)
        | (u64::from(b[4]) >> 1)
}

/// Adds `offset` ticks to every PTS, DTS and PCR in a TS buffer, in place (33-bit
/// wrap-around). Used to loop pre-encoded segments as a continuous live stream.
pub fn shift_timestamps(data: &mut [u8], offset: u64) {
    for packet in data.chunks_mut(PACKET_SIZE) {
        if packet.len() < PACKET_SIZE || packet[0] != SYNC_BYTE {
            continue;
        }
        let unit_start = packet[1] & 0x40 != 0;
        let adaptation = (packet[3] >> 4) & 3;
        let mut offset_in_packet = 4;
        if adaptation & 2 != 0 {
            let len = usize::from(packet[4]);
            if len > 0 && packet[5] & 0x10 != 0 && len >= 7 {
                let pcr = &mut packet[6..12];
                let base = (u64::from(pcr[0]) << 25)
                    | (u64::from(pcr[1]) << 17)
                    | (u64::from(pcr[2]) << 9)
                    | (u64::from(pcr[3]) << 1)
                    | (u64::from(pcr[4]) >> 7);
                let base = (base + offset) % PTS_WRAP;
                pcr[0] = (base >> 25) as u8;
                pcr[1] = (base >> 17) as u8;
                pcr[2] = (base >> 9) as u8;
                pcr[3] = (base >> 1) as u8;
                pcr[4] = (pcr[4] & 0x7f) | (((base & 1) as u8) << 7);
            }
            offset_in_packet += 1 + len;
        }
        if !unit_start || adaptation & 1 == 0 || offset_in_packet + 19 > PACKET_SIZE {
            continue;
        }
        let p = &mut packet[offset_in_packet..];
        if p[0..3] != [0, 0, 1] || p[3] < 0xbc {
            continue; // not a PES with an optional header (program stream map, padding, ...)
        }
        let flags = p[7] >> 6;
        if flags & 2 != 0 {
            shift_timestamp_field(&mut p[9..14], offset);
        }
        if flags == 3 {
            shift_timestamp_field(&mut p[14..19], offset);
        }
    }
}

fn shift_timestamp_field(b: &mut [u8], offset: u64) {
    let value = (read_timestamp(b) + offset) % PTS_WRAP;
    b[0] = (b[0] & 0xf1) | (((value >> 30) as u8 & 0x07) << 1);
    b[1] = (value >> 22) as u8;
    b[2] = ((((value >> 15) & 0x7f) as u8) << 1) | (b[2] & 1);
    b[3] = (value >> 7) as u8;
    b[4] = (((value & 0x7f) as u8) << 1) | (b[4] & 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_ts_bytes_with_the_offset() {
        assert_eq!(
            analyze(b"#EXTM3U\n").unwrap_err(),
            TsError::NoSync { offset: 0, found: b'#' }
        );
        assert_eq!(analyze(&[]).unwrap_err(), TsError::Empty);
        let mut two = vec![0u8; 376];
        two[0] = 0x47;
        two[1] = 0x1f;
        two[2] = 0xff;
        two[188] = 0x00;
        assert_eq!(analyze(&two).unwrap_err(), TsError::NoSync { offset: 188, found: 0 });
    }

    #[test]
    fn timestamps_decode_per_iso_13818_1() {
        // PTS 0x1_2345_6789 encoded with marker bits as in 2.4.3.7.
        let pts: u64 = 0x1_2345_6789;
        let b = [
            0x21 | (((pts >> 30) as u8 & 0x07) << 1),
            (pts >> 22) as u8,
            (((pts >> 15) as u8) << 1) | 1,
            (pts >> 7) as u8,
            ((pts as u8) << 1) | 1,
        ];
        assert_eq!(read_timestamp(&b), pts);
    }

    #[test]
    fn shifted_timestamps_read_back_shifted() {
        let pts: u64 = PTS_WRAP - 10;
        let mut b = [0x21, 0, 1, 0, 1];
        shift_timestamp_field(&mut b, pts);
        assert_eq!(read_timestamp(&b), pts);
        shift_timestamp_field(&mut b, 20);
        assert_eq!(read_timestamp(&b), 10);
        assert_eq!(b[0] & 0xf1, 0x21, "prefix and marker bits kept");
    }

    #[test]
    fn demo_segment_matches_ffprobe() {
        // Made by infra/local/demo/make-demo.sh. Expected values from ffprobe
        // (first video packet pts_time 1.480000, flags K_, 50 frames at 25 fps, 640x360)
        // and from the CODECS ffmpeg wrote into that folder's master.m3u8.
        let bytes = include_bytes!("../../../infra/local/demo/360p/seg_00000.ts");
        let info = analyze(bytes).unwrap();
        assert_eq!(info.start_pts, 133_200);
        assert_eq!(info.duration, Ticks(180_000));
        assert!(info.starts_with_keyframe);
        assert_eq!(info.programs, 1);
        assert_eq!(info.codecs(), vec!["avc1.4d401e".to_string(), "mp4a.40.2".to_string()]);
        let video = info.video.unwrap();
        assert_eq!(video.frames, 50);
        assert_eq!(video.params.unwrap().resolution, Some((640, 360)));
        let aac = info.audio[0].aac.clone().unwrap();
        assert_eq!((aac.sample_rate, aac.channels), (48_000, 2));
    }

    #[test]
    fn shifting_moves_pts_by_the_offset() {
        let mut bytes = include_bytes!("../../../infra/local/demo/180p/seg_00001.ts").to_vec();
        let before = analyze(&bytes).unwrap();
        shift_timestamps(&mut bytes, 900_000);
        let after = analyze(&bytes).unwrap();
        assert_eq!(after.start_pts, before.start_pts + 900_000);
        assert_eq!(after.duration, before.duration);
    }

    #[test]
    fn annexb_split() {
        let es = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 9];
        let nals: Vec<&[u8]> = annexb_nal_units(&es).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 9][..]]);
    }
}
