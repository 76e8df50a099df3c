//! The 33-bit 90 kHz clock in the stream: PTS and DTS in PES headers (ISO/IEC 13818-1
//! §2.4.3.7) and the PCR base in adaptation fields, read and rewritten in place.

use super::packet::{Header, RawPacket, PACKET_SIZE, SYNC_BYTE};
use crate::time::PTS_WRAP;

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
    for packet in data.chunks_exact_mut(PACKET_SIZE) {
        let Ok(packet) = <&mut RawPacket>::try_from(packet) else {
            continue;
        };
        if packet[0] != SYNC_BYTE {
            continue;
        }
        let header = Header::read(packet);
        if header.pcr {
            shift_pcr(&mut packet[6..11], offset);
        }
        let Some(start) = header
            .payload_start
            .filter(|start| header.unit_start && start + 19 <= PACKET_SIZE)
        else {
            continue;
        };
        let p = &mut packet[start..];
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

/// The 33-bit PCR base in the first five bytes of a PCR field; the extension is kept.
fn shift_pcr(pcr: &mut [u8], offset: u64) {
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
    use crate::media::ts::analyze;

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
    fn shifting_moves_pts_by_the_offset() {
        let mut bytes = include_bytes!("../../../../infra/local/demo/180p/seg_00001.ts").to_vec();
        let before = analyze(&bytes).unwrap();
        shift_timestamps(&mut bytes, 900_000);
        let after = analyze(&bytes).unwrap();
        assert_eq!(after.start_pts, before.start_pts + 900_000);
        assert_eq!(after.duration, before.duration);
    }
}
