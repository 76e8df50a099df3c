//! Closed captions in H.264/H.265 SEI: which CEA-608 channels and CEA-708 services the
//! `cc_data` of ATSC A/53 Part 4 carries (SEI `user_data_registered_itu_t_t35`, country
//! 0xB5, provider 0x0031, `GA94`, `user_data_type_code` 3). Only SEI NAL units are read,
//! never slices; nothing is decoded beyond what names a channel.

use super::strip_emulation_prevention;
use crate::model::{CaptionCarrier, CaptionChannel, SegmentCaptions};
use std::collections::BTreeSet;

/// SEI `payloadType` of `user_data_registered_itu_t_t35` (H.264 §D.1.6, H.265 §D.2.6).
const USER_DATA_REGISTERED: u32 = 4;
/// T.35 header of ATSC caption data: United States, ATSC, `GA94`, `cc_data` (A/53 Part 4
/// Table 6.4 and 6.7).
const ATSC_CC_DATA: [u8; 8] = [0xb5, 0x00, 0x31, b'G', b'A', b'9', b'4', 0x03];

/// Reads the SEI NAL units of one video stream's access units, in decoding order, and
/// collects the caption channels they carry.
#[derive(Default)]
pub struct CaptionReader {
    channels: BTreeSet<CaptionChannel>,
    carriers: Vec<CaptionCarrier>,
    /// The DTVCC packet being assembled from `cc_type` 3 and 2 byte pairs (CEA-708 §5).
    dtvcc: Vec<u8>,
}

impl CaptionReader {
    /// Reads one SEI NAL unit, its NAL header included (one byte in H.264, two in H.265)
    /// and its emulation-prevention bytes not yet removed.
    pub fn push_sei(&mut self, nal: &[u8], hevc: bool) {
        let Some(body) = nal.get(if hevc { 2 } else { 1 }..) else {
            return;
        };
        let rbsp = strip_emulation_prevention(body);
        let mut rest = &rbsp[..];
        // sei_message(): payloadType and payloadSize, each coded as 0xFF bytes plus a last byte.
        while rest.len() >= 2 {
            let Some((payload_type, after)) = ff_coded(rest) else {
                return;
            };
            let Some((size, after)) = ff_coded(after) else { return };
            let size = (size as usize).min(after.len());
            if payload_type == USER_DATA_REGISTERED {
                if let Some(cc_data) = after[..size].strip_prefix(&ATSC_CC_DATA[..]) {
                    self.push_cc_data(cc_data);
                }
            }
            rest = &after[size..];
        }
    }

    /// Reads one `cc_data()` (A/53 Part 4 §6.2.3.1): flags and `cc_count`, `em_data`, then
    /// `cc_count` triplets of marker bits, `cc_valid`, `cc_type` and two bytes.
    fn push_cc_data(&mut self, data: &[u8]) {
        let [flags, _em_data, triplets @ ..] = data else { return };
        // process_cc_data_flag clear: the triplets are to be ignored.
        if flags & 0x40 == 0 {
            return;
        }
        let count = usize::from(flags & 0x1f);
        for triplet in triplets.chunks_exact(3).take(count) {
            let (valid, cc_type) = (triplet[0] & 0x04 != 0, triplet[0] & 0x03);
            if !valid {
                continue;
            }
            match cc_type {
                0 | 1 => self.push_608(cc_type, triplet[1], triplet[2]),
                3 => {
                    self.carried(CaptionCarrier::Dtvcc);
                    self.end_dtvcc_packet();
                    self.dtvcc.extend_from_slice(&triplet[1..]);
                    self.complete_dtvcc_packet();
                }
                _ => {
                    self.carried(CaptionCarrier::Dtvcc);
                    if !self.dtvcc.is_empty() {
                        self.dtvcc.extend_from_slice(&triplet[1..]);
                        self.complete_dtvcc_packet();
                    }
                }
            }
        }
    }

    /// One CEA-608 byte pair of field 1 (`cc_type` 0) or 2. A control code (first byte
    /// 0x10–0x1F after the parity bit, second 0x20–0x7F) names its data channel: bit 3 of
    /// the first byte clear for the field's first channel (CC1, CC3), set for its second
    /// (CC2, CC4). Text-mode commands (TR, RTD) select a text service, not captions.
    fn push_608(&mut self, cc_type: u8, first: u8, second: u8) {
        self.carried(if cc_type == 0 {
            CaptionCarrier::Field1
        } else {
            CaptionCarrier::Field2
        });
        // Each byte is seven bits with odd parity (CEA-608 §B.3); a pair that fails is dropped.
        if first.count_ones().is_multiple_of(2) || second.count_ones().is_multiple_of(2) {
            return;
        }
        let (first, second) = (first & 0x7f, second & 0x7f);
        if !(0x10..=0x1f).contains(&first) || second < 0x20 {
            return;
        }
        let miscellaneous = first & 0x76 == 0x14;
        if miscellaneous && matches!(second, 0x2a | 0x2b) {
            return;
        }
        let channel = 2 * cc_type + 1 + u8::from(first & 0x08 != 0);
        self.channels.insert(CaptionChannel::Cea608(channel));
    }

    /// Reads the assembled DTVCC packet once it holds as many bytes as its header says.
    fn complete_dtvcc_packet(&mut self) {
        let size = match self.dtvcc.first().map(|h| usize::from(h & 0x3f)) {
            Some(0) => 128,
            Some(code) => 2 * code,
            None => return,
        };
        if self.dtvcc.len() >= size {
            self.dtvcc.truncate(size);
            self.end_dtvcc_packet();
        }
    }

    /// Reads the service blocks of the DTVCC packet assembled so far (CEA-708 §6.2: a
    /// header of `service_number` (3 bits) and `block_size` (5 bits), an extended service
    /// number byte when `service_number` is 7, then the block), up to the null block.
    fn end_dtvcc_packet(&mut self) {
        let packet = std::mem::take(&mut self.dtvcc);
        let mut rest = packet.get(1..).unwrap_or_default();
        while let [header, after @ ..] = rest {
            let (service, size) = (header >> 5, usize::from(header & 0x1f));
            if service == 0 {
                break;
            }
            let (number, block) = match (service, after) {
                (7, [extended, block @ ..]) if size > 0 => (extended & 0x3f, block),
                _ => (service, after),
            };
            if size == 0 || block.len() < size {
                break;
            }
            if (1..=63).contains(&number) {
                self.channels.insert(CaptionChannel::Cea708(number));
            }
            rest = &block[size..];
        }
    }

    fn carried(&mut self, carrier: CaptionCarrier) {
        if !self.carriers.contains(&carrier) {
            self.carriers.push(carrier);
        }
    }

    /// What the access units read carried (a DTVCC packet cut short by the end is read as
    /// far as it goes).
    pub fn finish(mut self) -> SegmentCaptions {
        self.end_dtvcc_packet();
        SegmentCaptions {
            channels: self.channels.into_iter().collect(),
            carriers: self.carriers,
        }
    }
}

/// A value coded as a run of 0xFF bytes (255 each) and a last byte, and what follows.
fn ff_coded(data: &[u8]) -> Option<(u32, &[u8])> {
    let mut value = 0u32;
    for (i, &byte) in data.iter().enumerate() {
        value += u32::from(byte);
        if byte != 0xff {
            return Some((value, &data[i + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests;
