//! Where the keyframes are in a TS segment, for HLS I-frame playlists
//! (`EXT-X-I-FRAMES-ONLY`, RFC 8216 §4.3.3.6): each keyframe's presentation time and the
//! byte range a player fetches to decode it alone.
//!
//! The range runs from the packet that starts the keyframe's PES to the last packet of
//! that PES; for a keyframe at the start of a segment it starts at byte 0 so the PAT and
//! PMT come with it. A keyframe is an H.264 IDR or an H.265 IRAP access unit, or one the
//! encoder flagged with the adaptation field's random-access indicator.

use super::ts::{parse_pat, parse_pes_header, parse_pmt, StreamType, PACKET_SIZE, SYNC_BYTE};

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

struct OpenPes {
    pts: Option<u64>,
    start: usize,
    end: usize,
    random_access: bool,
    head: Vec<u8>,
}

/// Length of the PSI packets (PAT, PMT, SDT) a segment starts with: the bytes a player needs before
/// any keyframe range that does not start at byte 0 (an `EXT-X-MAP` byte range).
pub fn leading_psi(data: &[u8]) -> u64 {
    let mut pmt_pids: Vec<u16> = Vec::new();
    let mut end = 0;
    for packet in data.chunks_exact(PACKET_SIZE) {
        let pid = (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2]);
        // PAT (0), DVB SI such as ffmpeg's SDT (0x10–0x1F), and the PMTs.
        if packet[0] != SYNC_BYTE || !(pid < 0x20 || pmt_pids.contains(&pid)) {
            break;
        }
        if pid == 0 && packet[1] & 0x40 != 0 && packet[3] & 0x10 != 0 {
            let offset = if packet[3] & 0x20 != 0 {
                5 + usize::from(packet[4])
            } else {
                4
            };
            pmt_pids = packet.get(offset..).and_then(parse_pat).unwrap_or_default();
        }
        end += PACKET_SIZE;
    }
    if pmt_pids.is_empty() {
        0
    } else {
        end as u64
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
    let mut pmt_pids: Vec<u16> = Vec::new();
    let mut video: Option<(u16, StreamType)> = None;
    let mut open: Option<OpenPes> = None;
    let mut out = Vec::new();
    let mut first_pes = true;
    for (index, packet) in data.chunks_exact(PACKET_SIZE).enumerate() {
        if packet[0] != SYNC_BYTE {
            break;
        }
        let pid = (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2]);
        let unit_start = packet[1] & 0x40 != 0;
        let adaptation = (packet[3] >> 4) & 3;
        let mut offset = 4;
        let mut random_access = false;
        if adaptation & 2 != 0 {
            let len = usize::from(packet[4]);
            random_access = len > 0 && packet[5] & 0x40 != 0;
            offset += 1 + len;
        }
        if adaptation & 1 == 0 || offset >= PACKET_SIZE {
            continue;
        }
        let payload = &packet[offset..];
        if pid == 0 && unit_start {
            pmt_pids = parse_pat(payload).unwrap_or_default();
            continue;
        }
        if unit_start && pmt_pids.contains(&pid) {
            if video.is_none() {
                video = parse_pmt(payload)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|(_, ty)| ty.is_video());
            }
            continue;
        }
        let Some((video_pid, ty)) = video else { continue };
        if pid != video_pid {
            continue;
        }
        let at = index * PACKET_SIZE;
        if unit_start {
            if let Some(pes) = open.take() {
                finish(pes, ty, first_pes, &mut out);
                first_pes = false;
            }
            let Some(header) = parse_pes_header(payload) else {
                continue;
            };
            let body = payload.get(header.data_offset..).unwrap_or_default();
            open = Some(OpenPes {
                pts: header.pts,
                start: at,
                end: at + PACKET_SIZE,
                random_access,
                head: body[..body.len().min(SCAN_BYTES)].to_vec(),
            });
        } else if let Some(pes) = open.as_mut() {
            pes.end = at + PACKET_SIZE;
            if pes.head.len() < SCAN_BYTES {
                let room = SCAN_BYTES - pes.head.len();
                pes.head.extend_from_slice(&payload[..payload.len().min(room)]);
            }
        }
    }
    if let (Some(pes), Some((_, ty))) = (open, video) {
        finish(pes, ty, first_pes, &mut out);
    }
    out
}

fn finish(pes: OpenPes, ty: StreamType, first: bool, out: &mut Vec<KeyFrame>) {
    let Some(pts) = pes.pts else { return };
    if !(pes.random_access || is_keyframe(ty, &pes.head)) {
        return;
    }
    let start = if first { 0 } else { pes.start };
    out.push(KeyFrame {
        pts,
        offset: start as u64,
        size: (pes.end - start) as u64,
    });
}

fn is_keyframe(ty: StreamType, es: &[u8]) -> bool {
    super::ts::annexb_nal_units(es).any(|nal| match (ty, nal.first()) {
        (StreamType::H265, Some(h)) => (16..=21).contains(&((h >> 1) & 0x3f)),
        (_, Some(h)) => h & 0x1f == 5,
        _ => false,
    })
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
