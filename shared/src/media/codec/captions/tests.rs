//! SEI and `cc_data` bytes written out by hand from the specs: H.264 §7.3.2.3 / §D.1
//! (SEI syntax), A/53 Part 4 §6.2.3 (the T.35 header and `cc_data`), CEA-608 (byte pairs
//! with odd parity, control codes), CEA-708 §5–6 (DTVCC packets and service blocks).

use super::*;
use CaptionCarrier::*;
use CaptionChannel::*;

fn read(nals: &[&[u8]], hevc: bool) -> SegmentCaptions {
    let mut reader = CaptionReader::default();
    for nal in nals {
        reader.push_sei(nal, hevc);
    }
    reader.finish()
}

/// An H.264 SEI NAL unit holding one GA94 `cc_data` with these triplets (the T.35 header,
/// `process_cc_data_flag` set, `em_data` 0xFF, the closing marker 0xFF, then the RBSP
/// trailing bits). Triplets never hold a zero run followed by a byte below 4 (a marker
/// byte ≥ 0xF8 follows every pair), so no emulation prevention is needed here.
fn ga94(triplets: &[[u8; 3]]) -> Vec<u8> {
    let mut payload = vec![0xb5, 0x00, 0x31, b'G', b'A', b'9', b'4', 0x03];
    payload.push(0x40 | triplets.len() as u8);
    payload.push(0xff);
    payload.extend(triplets.iter().flatten());
    payload.push(0xff);
    let mut nal = vec![0x06, 0x04, payload.len() as u8];
    nal.extend(payload);
    nal.push(0x80);
    nal
}

#[test]
fn a_pop_on_caption_on_field_1_is_cc1() {
    // "HELLO" pop-on: RCL (14 20), H E, L L, O and a null, EOC (14 2F), each byte with
    // its odd parity bit: 0x14 → 0x94, 'H' 0x48 → 0xC8, 'E' 0x45, 'L' 0x4C → 0x4C,
    // 'O' 0x4F, null 0x00 → 0x80. Field 2 runs with null padding only.
    let nal = [
        0x06, 0x04, 0x1d, // SEI: payloadType 4, payloadSize 29
        0xb5, 0x00, 0x31, 0x47, 0x41, 0x39, 0x34, 0x03, // USA, ATSC, "GA94", cc_data
        0x46, 0xff, // process_cc_data_flag, cc_count 6; em_data
        0xfc, 0x94, 0x20, // field 1 RCL
        0xfc, 0xc8, 0x45, // H E
        0xfc, 0x4c, 0x4c, // L L
        0xfc, 0x4f, 0x80, // O, null
        0xfc, 0x94, 0x2f, // EOC
        0xfd, 0x80, 0x80, // field 2 padding
        0xff, 0x80, // marker bits, rbsp trailing bits
    ];
    let found = read(&[&nal], false);
    assert_eq!(found.channels, [Cea608(1)]);
    assert_eq!(found.carriers, [Field1, Field2]);
}

#[test]
fn the_data_channel_bit_tells_the_second_channel_of_each_field() {
    // RCL on CC2 is 1C 20; on CC3 (field 2) 15 20, on CC4 1D 20 (parity: 0x1C stays, 0x15
    // stays, 0x1D → 0x9D). A preamble address code on CC2 (19 40 → 0x19, 0x40 → 0x40).
    let found = read(
        &[&ga94(&[[0xfc, 0x1c, 0x20], [0xfd, 0x15, 0x20], [0xfd, 0x9d, 0x20]])],
        false,
    );
    assert_eq!(found.channels, [Cea608(2), Cea608(3), Cea608(4)]);
    let pac = read(&[&ga94(&[[0xfc, 0x19, 0x40]])], false);
    assert_eq!(pac.channels, [Cea608(2)]);
}

#[test]
fn padding_bad_parity_text_mode_and_invalid_triplets_name_no_channel() {
    // Null padding: the field runs, no channel.
    let padding = read(&[&ga94(&[[0xfc, 0x80, 0x80]])], false);
    assert_eq!((padding.channels.len(), padding.carriers.clone()), (0, vec![Field1]));
    // 14 20 without its parity bit (0x14 has two bits set).
    assert!(read(&[&ga94(&[[0xfc, 0x14, 0x20]])], false).channels.is_empty());
    // Text restart (14 2A) and resume text display (14 2B) select T1, not CC1.
    let text = read(
        &[&ga94(&[[0xfc, 0x94, 0x2a], [0xfc, 0x94, 0xab], [0xfc, 0xc8, 0x45]])],
        false,
    );
    assert!(text.channels.is_empty());
    // cc_valid clear (0xF8: field 1, not valid): neither channel nor carrier.
    let invalid = read(&[&ga94(&[[0xf8, 0x94, 0x20]])], false);
    assert_eq!(invalid, SegmentCaptions::default());
    // process_cc_data_flag clear: the triplets are ignored.
    let mut unprocessed = ga94(&[[0xfc, 0x94, 0x20]]);
    unprocessed[11] &= !0x40;
    assert_eq!(read(&[&unprocessed], false), SegmentCaptions::default());
}

#[test]
fn dtvcc_service_blocks_name_their_services_across_access_units() {
    // A DTVCC packet of 6 bytes (header 0x03: sequence 0, packet_size_code 3): a block of
    // service 1 with 2 bytes (0x22: 'H' 'E' = 48 45), the null block header 0x00. It
    // starts (cc_type 3, 0xFF) in one access unit and ends (cc_type 2, 0xFE) in the next.
    let first = ga94(&[[0xff, 0x03, 0x22], [0xfe, 0x48, 0x45]]);
    let second = ga94(&[[0xfe, 0x00, 0x00]]);
    let found = read(&[&first, &second], false);
    assert_eq!(found.channels, [Cea708(1)]);
    assert_eq!(found.carriers, [Dtvcc]);
    // Extended service 10: header 0xE1 (service_number 7, block_size 1), then 0x0A, then
    // one byte; packet_size_code 2 (4 bytes). Then service 2 in the next packet.
    let extended = ga94(&[
        [0xff, 0x02, 0xe1],
        [0xfe, 0x0a, 0x20],
        [0xff, 0x02, 0x41],
        [0xfe, 0x20, 0x00],
    ]);
    assert_eq!(read(&[&extended], false).channels, [Cea708(2), Cea708(10)]);
    // Padding (cc_type 2 not valid, 0xFA) names nothing; a data pair before any packet
    // start is dropped.
    assert!(read(&[&ga94(&[[0xfa, 0x00, 0x00], [0xfe, 0x22, 0x48]])], false)
        .channels
        .is_empty());
}

#[test]
fn hevc_prefix_sei_is_read_after_its_two_byte_header() {
    // nal_unit_type 39 (prefix SEI): 0x4E 0x01.
    let mut nal = vec![0x4e, 0x01];
    nal.extend_from_slice(&ga94(&[[0xfc, 0x94, 0x20]])[1..]);
    assert_eq!(read(&[&nal], true).channels, [Cea608(1)]);
}

#[test]
fn other_sei_messages_emulation_prevention_and_long_sizes_are_stepped_over() {
    // First a user_data_unregistered message (payloadType 5) of 300 bytes, size coded
    // FF 2D (255 + 45): a UUID of zeros, then zeros. In the NAL unit every 00 00 before
    // a byte ≤ 3 has an emulation-prevention 03 inserted (H.264 §7.4.1).
    let unregistered = vec![0u8; 300];
    let mut rbsp = vec![0x05, 0xff, 0x2d];
    rbsp.extend(&unregistered);
    // Then a T.35 message of another provider (DirecTV, 0x002F) and the ATSC captions.
    rbsp.extend([0x04, 0x0a, 0xb5, 0x00, 0x2f, 0x03, 0x42, 0xff, 0xfc, 0x94, 0x20, 0xff]);
    rbsp.extend(&ga94(&[[0xfc, 0x94, 0x20]])[1..]);
    let mut nal = vec![0x06];
    let mut zeros = 0;
    for &b in &rbsp {
        if zeros >= 2 && b <= 3 {
            nal.push(0x03);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        nal.push(b);
    }
    assert!(nal.len() > rbsp.len() + 100, "emulation prevention was inserted");
    assert_eq!(read(&[&nal], false).channels, [Cea608(1)]);
}

#[test]
fn broken_sei_bytes_never_panic() {
    let nal = ga94(&[[0xff, 0x00, 0x21], [0xfe, 0x20, 0xe1], [0xfc, 0x94, 0x20]]);
    for cut in 0..nal.len() {
        let _ = read(&[&nal[..cut]], false);
        let mut broken = nal.clone();
        broken[cut] ^= 0xa5;
        let _ = read(&[&broken], cut % 2 == 0);
    }
    assert_eq!(read(&[&[0x06, 0xff, 0xff, 0xff]], false), SegmentCaptions::default());
}
