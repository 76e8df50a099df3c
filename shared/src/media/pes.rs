//! MPEG-TS demultiplexing into whole PES packets (ISO/IEC 13818-1 §2.4.3.6), the input of
//! the TS → fMP4 repackager. Push-based: feed 188-byte packets, collect each PES packet of
//! an audio or video stream once the next one starts (or at [`Demuxer::finish`]), so a long
//! input is processed with one access unit per stream in memory.

use crate::media::ts::{self, Packet, StreamType, TsError, PACKET_SIZE};

/// One reassembled PES packet of an audio or video elementary stream.
#[derive(Clone, Debug, PartialEq)]
pub struct PesPacket {
    pub pid: u16,
    pub stream_type: StreamType,
    /// Presentation time stamp, 33-bit 90 kHz, as written by the encoder.
    pub pts: Option<u64>,
    /// Decoding time stamp; absent when equal to the PTS.
    pub dts: Option<u64>,
    /// The adaptation field flagged a random access point on the first packet.
    pub random_access: bool,
    /// The elementary stream bytes (for video, an Annex B access unit).
    pub data: Vec<u8>,
}

/// Streaming demultiplexer state: which PIDs carry what, and the PES being assembled per PID.
#[derive(Default)]
pub struct Demuxer {
    pmt_pids: Vec<u16>,
    streams: Vec<(u16, StreamType)>,
    current: Vec<Option<PesPacket>>,
    pat_seen: bool,
    pmt_seen: bool,
    packets: usize,
}

impl Demuxer {
    pub fn new() -> Demuxer {
        Demuxer::default()
    }

    /// The audio and video elementary streams declared so far, in PMT order.
    pub fn streams(&self) -> &[(u16, StreamType)] {
        &self.streams
    }

    /// Feeds one 188-byte packet; completed PES packets are appended to `out`.
    pub fn push(&mut self, packet: &[u8], out: &mut Vec<PesPacket>) -> Result<(), TsError> {
        let offset = self.packets * PACKET_SIZE;
        self.packets += 1;
        let Some(packet) = Packet::parse(offset, packet)? else {
            return Ok(());
        };
        let Some(payload) = packet.payload else { return Ok(()) };
        let (pid, unit_start, random_access) =
            (packet.header.pid, packet.header.unit_start, packet.header.random_access);
        if pid == 0 {
            if unit_start {
                if let Some(pids) = ts::parse_pat(payload) {
                    self.pat_seen = true;
                    self.pmt_pids = pids;
                }
            }
            return Ok(());
        }
        if self.pmt_pids.contains(&pid) {
            if unit_start {
                if let Some(streams) = ts::parse_pmt(payload) {
                    self.pmt_seen = true;
                    for (es_pid, ty) in streams {
                        if (ty.is_video() || ty.is_audio()) && !self.streams.iter().any(|(p, _)| *p == es_pid) {
                            self.streams.push((es_pid, ty));
                            self.current.push(None);
                        }
                    }
                }
            }
            return Ok(());
        }
        let Some(index) = self.streams.iter().position(|(p, _)| *p == pid) else {
            return Ok(());
        };
        if unit_start {
            if let Some(done) = self.current[index].take() {
                out.push(done);
            }
            if let Some(header) = ts::parse_pes_header(payload) {
                let mut data = Vec::with_capacity(if self.streams[index].1.is_video() {
                    64 * 1024
                } else {
                    4096
                });
                data.extend_from_slice(payload.get(header.data_offset..).unwrap_or_default());
                self.current[index] = Some(PesPacket {
                    pid,
                    stream_type: self.streams[index].1,
                    pts: header.pts,
                    dts: header.dts,
                    random_access,
                    data,
                });
            }
        } else if let Some(pes) = self.current[index].as_mut() {
            pes.data.extend_from_slice(payload);
        }
        Ok(())
    }

    /// Ends the input: emits the PES packets still being assembled and checks that the
    /// stream was described (PAT and PMT).
    pub fn finish(&mut self, out: &mut Vec<PesPacket>) -> Result<(), TsError> {
        out.extend(self.current.iter_mut().filter_map(Option::take));
        if self.packets == 0 {
            return Err(TsError::Empty);
        }
        if !self.pat_seen {
            return Err(TsError::NoPat);
        }
        if !self.pmt_seen {
            return Err(TsError::NoPmt);
        }
        Ok(())
    }
}

/// An elementary stream: its PID and type.
pub type Stream = (u16, StreamType);

/// Demultiplexes a whole TS buffer: the PES packets in arrival order and the streams.
pub fn demux(data: &[u8]) -> Result<(Vec<PesPacket>, Vec<Stream>), TsError> {
    let mut demuxer = Demuxer::new();
    let mut out = Vec::with_capacity(data.len() / 2000 + 8);
    for packet in data.chunks(PACKET_SIZE) {
        demuxer.push(packet, &mut out)?;
    }
    demuxer.finish(&mut out)?;
    Ok((out, demuxer.streams))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_segment_demuxes_into_frames() {
        // ffprobe -show_packets on this file: 50 video packets (first pts 133200, keyframe)
        // and audio in PES packets carrying several ADTS frames each.
        let bytes = include_bytes!("../../../infra/local/demo/360p/seg_00000.ts");
        let (packets, streams) = demux(bytes).unwrap();
        assert_eq!(
            streams.iter().map(|s| s.1).collect::<Vec<_>>(),
            [StreamType::H264, StreamType::Aac]
        );
        let video: Vec<&PesPacket> = packets.iter().filter(|p| p.stream_type == StreamType::H264).collect();
        assert_eq!(video.len(), 50);
        assert_eq!(video[0].pts, Some(133_200));
        assert!(video[0].data.starts_with(&[0, 0, 0, 1]));
        let audio_bytes: usize = packets
            .iter()
            .filter(|p| p.stream_type == StreamType::Aac)
            .map(|p| p.data.len())
            .sum();
        assert!(audio_bytes > 0);
    }

    #[test]
    fn junk_is_refused_with_its_offset() {
        let err = demux(b"not a transport stream").unwrap_err();
        assert_eq!(err, TsError::NoSync { offset: 0, found: b'n' });
    }
}
