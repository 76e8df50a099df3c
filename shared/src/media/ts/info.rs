//! What ingest learns about a segment's media: the tracks, their codecs, the start PTS
//! and the duration, accumulated packet by packet ([`InfoScan`]) during the analysis pass.

use super::packet::Packet;
use super::psi::{parse_pat, parse_pmt, StreamType};
use super::timestamps::parse_pes_header;
use super::{TsError, MAX_SPAN_SECONDS};
use crate::media::codec::{self, AacParams, Ac3Frame, FrameRate, VideoParams};
use crate::time::{Ticks, PTS_WRAP, TICKS_PER_SECOND};

/// Cap on how much of the first video PES is kept to look for parameter sets.
const MAX_FIRST_PES: usize = 1 << 20;

/// The video track of a segment.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoTrack {
    pub stream_type: StreamType,
    /// Codec string and size, when the first access unit carried an SPS.
    pub params: Option<VideoParams>,
    /// Number of access units (PES packets) in the segment.
    pub frames: u32,
    /// From the spacing of the decoding timestamps, else from the VUI timing.
    pub frame_rate: Option<FrameRate>,
}

/// An audio track of a segment.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioTrack {
    pub stream_type: StreamType,
    /// AAC parameters from an ADTS header (None for AC-3/E-AC-3).
    pub aac: Option<AacParams>,
    /// AC-3/E-AC-3 parameters from a sync frame header (None for AAC).
    pub ac3: Option<Ac3Frame>,
    /// Bytes of elementary stream (PES payload) in the segment: the track's bit rate.
    pub es_bytes: u64,
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
    /// PES packets with a timestamp: the frames the decoding span is measured over.
    timed: u32,
    es_bytes: u64,
    random_access_first: bool,
    /// Payload of the first PES (video) or the current PES (audio).
    pes: Vec<u8>,
    first_pes_done: bool,
}

/// The segment-info part of the analysis pass: PAT, PMT, PES timestamps per stream, the
/// first video PES (for its parameter sets) and the last audio PES (for its frame count).
#[derive(Default)]
pub(crate) struct InfoScan {
    pmt_pids: Vec<u16>,
    pat_seen: bool,
    pmt_seen: bool,
    has_scte35: bool,
    /// Elementary streams, in the order the PMTs declared them.
    pids: Vec<(u16, PidState)>,
    /// What each PID (13 bits) carries, so a packet costs one look-up: [`PMT`] when the
    /// PAT names it, and in the other bits one more than its stream's place in `pids`.
    roles: Vec<u16>,
}

/// The bit of [`InfoScan::roles`] that marks a PMT PID.
const PMT: u16 = 1 << 15;

/// The role of `pid` in a roles table, which is made on first use.
fn role(roles: &mut Vec<u16>, pid: u16) -> &mut u16 {
    if roles.is_empty() {
        *roles = vec![0; 1 << 13];
    }
    &mut roles[usize::from(pid & 0x1fff)]
}

impl InfoScan {
    /// Takes in the next packet of the segment. Inlined into the pass loop: it runs for
    /// every packet, and a call there costs as much as the work.
    #[inline(always)]
    pub(crate) fn push(&mut self, packet: &Packet<'_>) {
        let Some(payload) = packet.payload else { return };
        let (pid, unit_start) = (packet.header.pid, packet.header.unit_start);
        if pid == 0 {
            if unit_start {
                if let Some(programs) = parse_pat(payload) {
                    self.pat_seen = true;
                    for old in std::mem::replace(&mut self.pmt_pids, programs) {
                        *role(&mut self.roles, old) &= !PMT;
                    }
                    for &new in &self.pmt_pids {
                        *role(&mut self.roles, new) |= PMT;
                    }
                }
            }
            return;
        }
        let role = self.roles.get(usize::from(pid)).copied().unwrap_or(0);
        if role & PMT != 0 {
            if unit_start {
                if let Some(streams) = parse_pmt(payload) {
                    self.pmt_seen = true;
                    for (es_pid, ty) in streams {
                        self.has_scte35 |= ty == StreamType::Scte35;
                        self.stream(es_pid).stream_type = Some(ty);
                    }
                }
            }
            return;
        }
        let stream = usize::from(role & !PMT).checked_sub(1);
        let Some((_, state)) = stream.and_then(|i| self.pids.get_mut(i)) else {
            return;
        };
        let Some(ty) = state.stream_type else { return };
        if !(ty.is_video() || ty.is_audio()) {
            return;
        }
        if unit_start {
            let Some(pes) = parse_pes_header(payload) else { return };
            if state.pes_count == 0 {
                state.random_access_first = packet.header.random_access;
                state.first_pts = pes.pts;
            } else if ty.is_video() {
                state.first_pes_done = true;
            }
            state.pes_count += 1;
            let dts = pes.dts.or(pes.pts);
            state.timed += u32::from(dts.is_some());
            let data = payload.len().saturating_sub(pes.data_offset);
            state.es_bytes += data as u64;
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
        } else if state.pes_count > 0 {
            state.es_bytes += payload.len() as u64;
            if !state.first_pes_done && state.pes.len() < MAX_FIRST_PES {
                state.pes.extend_from_slice(payload);
            }
        }
    }

    /// The state of the stream on `pid`, created when the PMT first declares it.
    fn stream(&mut self, pid: u16) -> &mut PidState {
        let role = role(&mut self.roles, pid);
        if *role & !PMT == 0 {
            self.pids.push((pid, PidState::default()));
            *role |= self.pids.len() as u16;
        }
        let index = usize::from(*role & !PMT) - 1;
        &mut self.pids[index].1
    }

    /// The segment info, or why the packets seen do not make a usable segment.
    pub(crate) fn finish(self) -> Result<SegmentInfo, TsError> {
        if !self.pat_seen {
            return Err(TsError::NoPat);
        }
        if !self.pmt_seen {
            return Err(TsError::NoPmt);
        }
        summarise(self.pids, self.pmt_pids.len(), self.has_scte35)
    }
}

fn summarise(pids: Vec<(u16, PidState)>, programs: usize, has_scte35: bool) -> Result<SegmentInfo, TsError> {
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
                ac3: matches!(stream_type, StreamType::Ac3 | StreamType::Eac3)
                    .then(|| codec::ac3_frame(&s.pes))
                    .flatten(),
                es_bytes: s.es_bytes,
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
        let frame_rate = FrameRate::from_timestamps(u64::from(v.timed.saturating_sub(1)), Ticks(span))
            .or(params.as_ref().and_then(|p| p.timing));
        return Ok(SegmentInfo {
            start_pts,
            duration: Ticks(span + frame),
            starts_with_keyframe: keyframe || v.random_access_first,
            video: Some(VideoTrack {
                stream_type: ty,
                params,
                frames: v.pes_count,
                frame_rate,
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
            frames * 1024 * TICKS_PER_SECOND / u64::from(aac.sample_rate)
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

fn plausible(span: u64) -> Result<u64, TsError> {
    if span > MAX_SPAN_SECONDS * TICKS_PER_SECOND {
        return Err(TsError::AbsurdTimestamps {
            seconds: span as f64 / TICKS_PER_SECOND as f64,
        });
    }
    Ok(span)
}

/// `later - earlier` on the 33-bit clock.
fn wrapped_diff(earlier: u64, later: u64) -> u64 {
    (later + PTS_WRAP - earlier) % PTS_WRAP
}

/// Finds the SPS and whether the access unit holds an IDR/IRAP picture.
fn scan_access_unit(ty: StreamType, es: &[u8]) -> (Option<VideoParams>, bool) {
    let mut params = None;
    let mut keyframe = false;
    for nal in codec::annexb_nal_units(es) {
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
