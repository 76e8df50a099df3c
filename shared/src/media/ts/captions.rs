//! The captions part of the analysis pass: the NAL units at the head of each video PES,
//! up to its first slice, with the SEI ones read for CEA-608/708 `cc_data`
//! ([`CaptionReader`]). A PES's bytes after the start code of its first slice are not
//! looked at, so the cost is a few packets per frame.

use super::packet::{packets, Packet};
use super::psi::{StreamType, VideoStream};
use super::timestamps::parse_pes_header;
use crate::media::codec::{annexb_nal_units, CaptionReader};
use crate::model::SegmentCaptions;
use memchr::memmem;

/// Most bytes of one PES searched for SEI before its first slice: an access unit's
/// parameter sets and SEI are far shorter.
const MAX_HEAD: usize = 64 * 1024;

/// The caption channels of a TS segment's first video stream.
pub fn captions(data: &[u8]) -> SegmentCaptions {
    let mut scan = CaptionScan::default();
    for packet in packets(data).map_while(Result::ok) {
        scan.push(&packet);
    }
    scan.finish()
}

/// Reads the SEI NAL units before the first slice of every PES of the first video stream.
pub(crate) struct CaptionScan {
    video: VideoStream,
    /// The open PES's payload so far, while its first slice has not started.
    head: Vec<u8>,
    open: bool,
    reader: CaptionReader,
    /// The Annex B start code searcher, built once per segment.
    start_code: memmem::Finder<'static>,
}

impl Default for CaptionScan {
    fn default() -> CaptionScan {
        CaptionScan {
            video: VideoStream::default(),
            head: Vec::new(),
            open: false,
            reader: CaptionReader::default(),
            start_code: memmem::Finder::new(&[0, 0, 1]),
        }
    }
}

impl CaptionScan {
    /// Takes in the next packet of the segment (inlined into the pass loop, which calls it
    /// for every packet).
    #[inline(always)]
    pub(crate) fn push(&mut self, packet: &Packet<'_>) {
        let Some((ty, payload)) = self.video.video_payload(packet) else {
            return;
        };
        let unit_start = packet.header.unit_start;
        if !(unit_start || self.open) {
            return;
        }
        let searched = if unit_start {
            self.read_head(ty);
            let Some(header) = parse_pes_header(payload) else {
                return;
            };
            self.head.clear();
            self.head
                .extend_from_slice(payload.get(header.data_offset..).unwrap_or_default());
            self.open = true;
            0
        } else {
            // A start code may straddle the packets; its header byte may be in this one.
            let searched = self.head.len().saturating_sub(3);
            self.head.extend_from_slice(payload);
            searched
        };
        self.look_for_slice(ty, searched);
    }

    /// Ends the head at the first slice NAL unit starting at or after `from`, if there is one.
    fn look_for_slice(&mut self, ty: StreamType, from: usize) {
        let hevc = ty == StreamType::H265;
        let head = &self.head[from..];
        let slice = self.start_code.find_iter(head).find(|&at| match head.get(at + 3) {
            Some(&h) if hevc => (h >> 1) & 0x3f < 32,
            Some(&h) => (1..=5).contains(&(h & 0x1f)),
            None => false,
        });
        if let Some(at) = slice {
            self.head.truncate(from + at);
            self.read_head(ty);
        } else if self.head.len() > MAX_HEAD {
            self.read_head(ty);
        }
    }

    /// Reads the SEI NAL units of the open head and closes it.
    fn read_head(&mut self, ty: StreamType) {
        if !std::mem::take(&mut self.open) {
            return;
        }
        let hevc = ty == StreamType::H265;
        for nal in annexb_nal_units(&self.head) {
            let Some(&header) = nal.first() else { continue };
            let (sei, slice) = if hevc {
                let nal_type = (header >> 1) & 0x3f;
                (nal_type == 39, nal_type < 32)
            } else {
                let nal_type = header & 0x1f;
                (nal_type == 6, (1..=5).contains(&nal_type))
            };
            if slice {
                break;
            }
            if sei {
                self.reader.push_sei(nal, hevc);
            }
        }
    }

    /// The caption channels found, the last PES included.
    pub(crate) fn finish(mut self) -> SegmentCaptions {
        if let Some(ty) = self.video.stream_type() {
            self.read_head(ty);
        }
        self.reader.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::tsmux::{pes_packet, psi_section, write_pes, write_section};
    use crate::model::CaptionChannel::{Cea608, Cea708};

    /// A GA94 `cc_data` SEI message body (after the NAL header) with these triplets.
    fn ga94(triplets: &[u8]) -> Vec<u8> {
        let mut payload = b"\xb5\x00\x31GA94\x03".to_vec();
        payload.extend([0x40 | (triplets.len() / 3) as u8, 0xff]);
        payload.extend(triplets);
        payload.push(0xff);
        let mut body = vec![0x04, payload.len() as u8];
        body.extend(payload);
        body.push(0x80);
        body
    }

    /// A segment of one video stream whose access units hold these NAL units.
    fn segment(stream_type: u8, access_units: &[Vec<Vec<u8>>]) -> Vec<u8> {
        let (mut out, mut counters) = (Vec::new(), std::collections::HashMap::new());
        write_section(
            &mut out,
            0,
            &psi_section(0x00, 1, &[0x00, 0x01, 0xf0, 0x00]),
            &mut counters,
        );
        let pmt = [0xe1, 0x00, 0xf0, 0x00, stream_type, 0xe1, 0x00, 0xf0, 0x00];
        write_section(&mut out, 0x1000, &psi_section(0x02, 1, &pmt), &mut counters);
        for (i, nals) in access_units.iter().enumerate() {
            let mut es = Vec::new();
            for nal in nals {
                es.extend([0, 0, 0, 1]);
                es.extend(nal);
            }
            let pts = 90_000 + i as u64 * 3_600;
            write_pes(
                &mut out,
                0x100,
                &pes_packet(0xe0, pts, None, &es, true),
                None,
                false,
                &mut counters,
            );
        }
        out
    }

    fn nal(header: &[u8], body: &[u8]) -> Vec<u8> {
        [header, body].concat()
    }

    #[test]
    fn sei_before_the_first_slice_of_each_picture_is_read() {
        let slice = vec![0x80; 3_000];
        // CC1's RCL (94 20) after a 5,000-byte unregistered SEI, so it starts packets into
        // the PES; a CC3 RCL (15 20) after a slice, which is not read; a DTVCC packet of
        // service 1 (header 02, block 21 20, null block) in the third picture.
        let mut long = vec![0x05, 0xff];
        long.extend(std::iter::repeat_n(0xff, 18));
        long.push(0x9b); // payloadSize 19 × 255 + 0x9B = 5,000
        long.extend(std::iter::repeat_n(0x55, 5_000));
        long.push(0x80);
        let h264 = segment(
            0x1b,
            &[
                vec![
                    vec![0x09, 0xf0],
                    nal(&[0x06], &long),
                    nal(&[0x06], &ga94(&[0xfc, 0x94, 0x20])),
                    nal(&[0x65], &slice),
                ],
                vec![
                    vec![0x09, 0xf0],
                    nal(&[0x41], &slice),
                    nal(&[0x06], &ga94(&[0xfd, 0x15, 0x20])),
                ],
                vec![
                    nal(&[0x06], &ga94(&[0xff, 0x02, 0x21, 0xfe, 0x20, 0x00])),
                    nal(&[0x41], &slice),
                ],
            ],
        );
        let found = captions(&h264);
        assert_eq!(found.channels, [Cea608(1), Cea708(1)]);
        assert_eq!(crate::media::ts::analyze_segment(&h264).unwrap().captions, found);
        // H.265: prefix SEI (type 39, 4E 01) before a CRA slice (type 21, 2A 01).
        let hevc = segment(
            0x24,
            &[vec![
                vec![0x46, 0x01, 0x50],
                nal(&[0x4e, 0x01], &ga94(&[0xfc, 0x1c, 0x20])),
                nal(&[0x2a, 0x01], &slice),
            ]],
        );
        assert_eq!(captions(&hevc).channels, [Cea608(2)]);
    }

    #[test]
    fn segments_without_caption_data_have_none() {
        let demo = include_bytes!("../../../../infra/local/demo/360p/seg_00000.ts");
        assert_eq!(captions(demo), SegmentCaptions::default());
        assert_eq!(captions(b"not a transport stream"), SegmentCaptions::default());
    }
}
