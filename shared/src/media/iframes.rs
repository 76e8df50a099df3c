//! Where the keyframes are in a TS segment, for HLS I-frame playlists
//! (`EXT-X-I-FRAMES-ONLY`, RFC 8216 §4.3.3.6): each keyframe's presentation time and the
//! byte range a player fetches to decode it alone.
//!
//! The range runs from the packet that starts the keyframe's PES to the last packet of
//! that PES; for a keyframe at the start of a segment it starts at byte 0 so the PAT and
//! PMT come with it. A keyframe is an H.264 IDR or an H.265 IRAP access unit, or one the
//! encoder flagged with the adaptation field's random-access indicator.
//!
//! Both scans here run inside ingest's one analysis pass ([`crate::media::ts::analyze_segment`]);
//! [`keyframes`] and [`leading_psi`] run one of them alone over a segment.

use super::ts::{packets, parse_pat, parse_pes_header, Packet, StreamType, VideoStream, PACKET_SIZE};
use memchr::memmem;

/// How much of each video PES is searched for the keyframe NAL unit (parameter sets and
/// SEI come first; a keyframe's slice starts well within this).
const SCAN_BYTES: usize = 4096;

/// One keyframe of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyFrame {
    /// Its PTS (33 bits, as in the stream).
    pub pts: u64,
    /// Byte offset of its range in the segment.
    pub offset: u64,
    /// Byte length of its range.
    pub size: u64,
}

/// Length of the PSI packets (PAT, PMT, SDT) a segment starts with: the bytes a player needs before
/// any keyframe range that does not start at byte 0 (an `EXT-X-MAP` byte range).
pub fn leading_psi(data: &[u8]) -> u64 {
    let mut scan = LeadingPsi::default();
    for packet in packets(data).map_while(Result::ok) {
        scan.push(&packet);
        if scan.done {
            break;
        }
    }
    scan.finish()
}

/// The leading-PSI part of the analysis pass: counts packets until the first one that is
/// not PAT, DVB SI or a PMT the PAT names.
#[derive(Default)]
pub(crate) struct LeadingPsi {
    pmt_pids: Vec<u16>,
    end: usize,
    done: bool,
}

impl LeadingPsi {
    /// Takes in the next packet of the segment (inlined into the pass loop, which calls it
    /// for every packet).
    #[inline(always)]
    pub(crate) fn push(&mut self, packet: &Packet<'_>) {
        let header = &packet.header;
        // PAT (0), DVB SI such as ffmpeg's SDT (0x10–0x1F), and the PMTs.
        if self.done || !(header.pid < 0x20 || self.pmt_pids.contains(&header.pid)) {
            self.done = true;
            return;
        }
        if header.pid == 0 && header.unit_start && header.has_payload {
            self.pmt_pids = packet.payload.and_then(parse_pat).unwrap_or_default();
        }
        self.end += PACKET_SIZE;
    }

    /// The byte length of the leading PSI, zero when no PAT naming a PMT came first.
    pub(crate) fn finish(self) -> u64 {
        if self.pmt_pids.is_empty() {
            0
        } else {
            self.end as u64
        }
    }
}

/// Closest two indexed keyframes of a segment may be: a quarter second of media.
pub const MIN_KEYFRAME_SPACING: u64 = 22_500;

/// Most keyframes indexed per segment: four a second of the longest segment accepted
/// (30 s), and the first.
pub const MAX_KEYFRAMES: usize = 121;

/// The keyframes worth an I-frame playlist entry: the first, then each one at least
/// [`MIN_KEYFRAME_SPACING`] after the last one kept, at most [`MAX_KEYFRAMES`]. A
/// segment of thousands of tiny keyframes would otherwise make every playlist of its
/// rendition slow and its I-frame playlist huge; players trick-play at a few per second.
pub fn bounded(frames: Vec<KeyFrame>) -> Vec<KeyFrame> {
    let mut kept: Vec<KeyFrame> = Vec::new();
    for frame in frames {
        if kept.len() == MAX_KEYFRAMES {
            break;
        }
        let far_enough = kept.last().is_none_or(|last| {
            let delta = frame.pts.wrapping_sub(last.pts) & (crate::time::PTS_WRAP - 1);
            (MIN_KEYFRAME_SPACING..crate::time::PTS_WRAP / 2).contains(&delta)
        });
        if far_enough {
            kept.push(frame);
        }
    }
    kept
}

/// The keyframes of a TS segment, in stream order. Empty when it has no video.
pub fn keyframes(data: &[u8]) -> Vec<KeyFrame> {
    let mut scan = KeyframeScan::default();
    for packet in packets(data).map_while(Result::ok) {
        scan.push(&packet);
    }
    scan.finish()
}

struct OpenPes {
    pts: Option<u64>,
    start: usize,
    end: usize,
    random_access: bool,
}

/// The keyframe part of the analysis pass: the first video stream's PES packets, where
/// each starts and ends, and the head of each to look for a keyframe in.
pub(crate) struct KeyframeScan {
    video: VideoStream,
    open: Option<OpenPes>,
    /// The first [`SCAN_BYTES`] of the open PES's payload (one buffer for all of them).
    head: Vec<u8>,
    /// The Annex B start code searcher, built once per segment.
    start_code: memmem::Finder<'static>,
    out: Vec<KeyFrame>,
    first_pes: bool,
}

impl Default for KeyframeScan {
    fn default() -> KeyframeScan {
        KeyframeScan {
            video: VideoStream::default(),
            open: None,
            head: Vec::new(),
            start_code: memmem::Finder::new(&[0, 0, 1]),
            out: Vec::new(),
            first_pes: true,
        }
    }
}

impl KeyframeScan {
    /// Takes in the next packet of the segment (inlined into the pass loop, which calls it
    /// for every packet).
    #[inline(always)]
    pub(crate) fn push(&mut self, packet: &Packet<'_>) {
        let Some((ty, payload)) = self.video.video_payload(packet) else {
            return;
        };
        let unit_start = packet.header.unit_start;
        let at = packet.offset;
        if unit_start {
            if let Some(pes) = self.open.take() {
                self.close(pes, ty);
                self.first_pes = false;
            }
            let Some(header) = parse_pes_header(payload) else {
                return;
            };
            let body = payload.get(header.data_offset..).unwrap_or_default();
            self.head.clear();
            self.head.extend_from_slice(&body[..body.len().min(SCAN_BYTES)]);
            self.open = Some(OpenPes {
                pts: header.pts,
                start: at,
                end: at + PACKET_SIZE,
                random_access: packet.header.random_access,
            });
        } else if let Some(pes) = self.open.as_mut() {
            pes.end = at + PACKET_SIZE;
            if self.head.len() < SCAN_BYTES {
                let room = SCAN_BYTES - self.head.len();
                self.head.extend_from_slice(&payload[..payload.len().min(room)]);
            }
        }
    }

    /// The keyframes found, the last PES included.
    pub(crate) fn finish(mut self) -> Vec<KeyFrame> {
        if let (Some(pes), Some(ty)) = (self.open.take(), self.video.stream_type()) {
            self.close(pes, ty);
        }
        self.out
    }

    /// Ends a PES: a keyframe when flagged or when its head holds an IDR/IRAP NAL unit.
    fn close(&mut self, pes: OpenPes, ty: StreamType) {
        let Some(pts) = pes.pts else { return };
        if !(pes.random_access || self.is_keyframe(ty)) {
            return;
        }
        let start = if self.first_pes { 0 } else { pes.start };
        self.out.push(KeyFrame {
            pts,
            offset: start as u64,
            size: (pes.end - start) as u64,
        });
    }

    /// Whether a NAL unit of an IDR (H.264) or IRAP (H.265) picture starts in the head.
    /// Only the header byte after each start code is read, and the search stops at the
    /// first keyframe one.
    fn is_keyframe(&self, ty: StreamType) -> bool {
        let es = &self.head[..];
        // An empty NAL unit (a start code right after a start code, or only zeros before
        // the next one) shows a zero byte here, which is no keyframe type in either codec.
        self.start_code.find_iter(es).any(|at| match (ty, es.get(at + 3)) {
            (StreamType::H265, Some(h)) => (16..=21).contains(&((h >> 1) & 0x3f)),
            (_, Some(h)) => h & 0x1f == 5,
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_segment_has_one_keyframe_range_from_byte_zero() {
        let bytes = include_bytes!("../../../infra/local/demo/360p/seg_00000.ts");
        let frames = keyframes(bytes);
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0].offset, 0);
        assert!(frames[0].size > 1000 && frames[0].size < bytes.len() as u64);
        assert_eq!(frames[0].size % PACKET_SIZE as u64, 0);
        let info = crate::media::ts::analyze(bytes).unwrap();
        assert_eq!(frames[0].pts, info.start_pts);
        // ffmpeg starts each segment with an SDT, a PAT and a PMT packet.
        assert_eq!(leading_psi(bytes), 3 * PACKET_SIZE as u64);
        // Without a PAT nothing counts as PSI.
        assert_eq!(leading_psi(&bytes[3 * PACKET_SIZE..]), 0);
    }

    #[test]
    fn keyframes_closer_than_a_quarter_second_are_not_indexed() {
        let at = |pts: u64| KeyFrame {
            pts,
            offset: pts,
            size: 188,
        };
        // Every 40 ms (25 fps, all keyframes) for 2 s: one in every seven kept (280 ms).
        let frames: Vec<KeyFrame> = (0..50).map(|i| at(1_000 + i * 3_600)).collect();
        let kept = bounded(frames);
        assert_eq!(
            kept.iter().map(|k| (k.pts - 1_000) / 3_600).collect::<Vec<_>>(),
            [0, 7, 14, 21, 28, 35, 42, 49]
        );
        // Across the 33-bit wrap.
        let wrap = crate::time::PTS_WRAP;
        assert_eq!(bounded(vec![at(wrap - 100), at(wrap - 50), at(22_400)]).len(), 2);
        // Never more than the bound, whatever the timestamps say.
        let many: Vec<KeyFrame> = (0..20_000).map(|i| at(i * 22_500)).collect();
        assert_eq!(bounded(many).len(), MAX_KEYFRAMES);
        // A keyframe that goes back in time is not an entry of its own.
        assert_eq!(bounded(vec![at(90_000), at(45_000), at(180_000)]).len(), 2);
    }

    #[test]
    fn not_ts_has_no_keyframes() {
        assert!(keyframes(b"not a transport stream").is_empty());
        assert!(keyframes(&[]).is_empty());
    }
}
