//! Program-specific information (ISO/IEC 13818-1 §2.4.4): the PAT that names each
//! program's PMT PID, and the PMT that lists the program's elementary streams and types.

use super::packet::{pid, Packet};

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

/// The first video stream of a segment, found from its PAT and PMT as the packets go by
/// (what the scans of the analysis pass share).
#[derive(Default)]
pub(crate) struct VideoStream {
    pmt_pids: Vec<u16>,
    video: Option<(u16, StreamType)>,
}

impl VideoStream {
    /// Takes in the next packet: its payload and the stream type when it belongs to the
    /// video stream; PAT and PMT packets are read here and give `None`, as do all others.
    #[inline(always)]
    pub(crate) fn video_payload<'a>(&mut self, packet: &Packet<'a>) -> Option<(StreamType, &'a [u8])> {
        let payload = packet.payload?;
        let (pid, unit_start) = (packet.header.pid, packet.header.unit_start);
        if pid == 0 && unit_start {
            self.pmt_pids = parse_pat(payload).unwrap_or_default();
            return None;
        }
        if unit_start && self.pmt_pids.contains(&pid) {
            if self.video.is_none() {
                self.video = parse_pmt(payload)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|(_, ty)| ty.is_video());
            }
            return None;
        }
        let (video_pid, ty) = self.video?;
        (pid == video_pid).then_some((ty, payload))
    }

    /// The video stream's type, once its PMT has gone by.
    pub(crate) fn stream_type(&self) -> Option<StreamType> {
        self.video.map(|(_, ty)| ty)
    }
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
        let pid = pid(section[i + 2], section[i + 3]);
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
        let pid = pid(section[i + 1], section[i + 2]);
        let info_len = (usize::from(section[i + 3] & 0x0f) << 8) | usize::from(section[i + 4]);
        streams.push((pid, ty));
        i += 5 + info_len;
    }
    Some(streams)
}
