//! Test segments written with the TS muxer's own packet writer: a PAT and PMT (after an
//! SDT-like DVB packet when asked), then one PES per access unit with the keyframes, PCR
//! and random-access flags a test asks for. Small enough to build thousands of variants.

use crate::media::tsmux::{adts_header, pes_packet, psi_section, write_pes, write_section};
use std::collections::HashMap;

const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x100;
const AUDIO_PID: u16 = 0x101;

/// The x264 SPS of the codec tests (640x360, High, level 3.0).
const SPS: [u8; 26] = [
    0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00,
    0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
];
const PPS: [u8; 6] = [0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

/// What the generated segment holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spec {
    /// Video stream type (0x1b H.264, 0x24 H.265), or none.
    pub video: Option<u8>,
    /// An AAC stream next to the video.
    pub audio: bool,
    /// Video frames at 25 fps (audio covers the same time).
    pub frames: u32,
    /// A keyframe every `gop` frames, the first included.
    pub gop: u32,
    /// Keyframe packets carry the random-access indicator.
    pub random_access: bool,
    /// A DVB SI packet (PID 0x11) comes before the PAT, as ffmpeg writes an SDT.
    pub sdt: bool,
    /// PTS of the first frame (33 bits).
    pub start: u64,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            video: Some(0x1b),
            audio: true,
            frames: 50,
            gop: 12,
            random_access: true,
            sdt: true,
            start: 126_000,
        }
    }
}

/// A TS segment as `spec` describes it.
pub(crate) fn segment(spec: &Spec) -> Vec<u8> {
    let mut out = Vec::new();
    let mut counters = HashMap::new();
    if spec.sdt {
        write_section(&mut out, 0x11, &psi_section(0x42, 1, &[0xff, 0x01]), &mut counters);
    }
    let pat = [0x00, 0x01, 0xe0 | (PMT_PID >> 8) as u8, PMT_PID as u8];
    write_section(&mut out, 0, &psi_section(0x00, 1, &pat), &mut counters);
    let mut pmt = vec![0xe0 | (VIDEO_PID >> 8) as u8, VIDEO_PID as u8, 0xf0, 0x00];
    let mut stream = |ty: u8, pid: u16| pmt.extend_from_slice(&[ty, 0xe0 | (pid >> 8) as u8, pid as u8, 0xf0, 0x00]);
    if let Some(ty) = spec.video {
        stream(ty, VIDEO_PID);
    }
    if spec.audio {
        stream(0x0f, AUDIO_PID);
    }
    write_section(&mut out, PMT_PID, &psi_section(0x02, 1, &pmt), &mut counters);
    let mut audio_frames = 0u64;
    for i in 0..spec.frames {
        let pts = (spec.start + u64::from(i) * 3_600) % crate::time::PTS_WRAP;
        if let Some(ty) = spec.video {
            let keyframe = i % spec.gop.max(1) == 0;
            // Every third keyframe has a long SEI first, so its slice is far into the PES.
            let sei = if keyframe && i % (3 * spec.gop.max(1)) == 2 * spec.gop {
                5_000
            } else {
                20
            };
            let es = access_unit(ty == 0x24, keyframe, sei, 700 + (i as usize * 379) % 3_000);
            let dts = pts.wrapping_sub(3_600) % crate::time::PTS_WRAP;
            let pes = pes_packet(0xe0, pts, Some(dts), &es, true);
            let pcr = dts.saturating_sub(9_000);
            write_pes(
                &mut out,
                VIDEO_PID,
                &pes,
                Some(pcr),
                keyframe && spec.random_access,
                &mut counters,
            );
        }
        if spec.audio {
            // AAC frames (1,920 ticks each at 48 kHz) up to the end of this video frame.
            let mut es = Vec::new();
            let first = audio_frames;
            while audio_frames * 1_920 < u64::from(i + 1) * 3_600 {
                let raw = vec![0x21; 200 + (audio_frames as usize * 13) % 150];
                es.extend_from_slice(&adts_header(2, 3, 2, raw.len()));
                es.extend_from_slice(&raw);
                audio_frames += 1;
            }
            let pts = (spec.start + first * 1_920) % crate::time::PTS_WRAP;
            write_pes(
                &mut out,
                AUDIO_PID,
                &pes_packet(0xc0, pts, None, &es, false),
                None,
                false,
                &mut counters,
            );
        }
    }
    out
}

/// An Annex B access unit: AUD, parameter sets and an IDR/IRAP slice for a keyframe, a
/// trailing picture slice otherwise; slice bytes never form a start code.
fn access_unit(hevc: bool, keyframe: bool, sei: usize, slice: usize) -> Vec<u8> {
    let mut es = Vec::new();
    let mut nal = |header: &[u8], body: usize| {
        es.extend_from_slice(&[0, 0, 0, 1]);
        es.extend_from_slice(header);
        es.extend((0..body).map(|n| 0x80 | (n as u8 & 0x7f)));
    };
    if hevc {
        nal(&[0x46, 0x01, 0x50], 0);
        nal(&[0x4e, 0x01], sei);
        nal(if keyframe { &[0x26, 0x01] } else { &[0x02, 0x01] }, slice);
    } else {
        nal(&[0x09, 0xf0], 0);
        if keyframe {
            nal(&SPS, 0);
            nal(&PPS, 0);
        }
        nal(&[0x06], sei);
        nal(if keyframe { &[0x65] } else { &[0x41] }, slice);
    }
    es
}
