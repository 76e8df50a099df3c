//! Codec parameters from elementary-stream headers: H.264/H.265 SPS to RFC 6381 codec
//! strings and picture size (H.265 in `hevc`), AAC ADTS and AC-3 sync frame headers to
//! `mp4a.40.x`, `ac-3` and `ec-3` (in `audio`), CEA-608/708 caption channels from SEI (in
//! `captions`), and Annex B byte streams split into NAL units.

mod audio;
mod captions;
mod hevc;
mod rate;

pub use audio::{ac3_frame, adts_frame_count, adts_frames, adts_header, AacParams, Ac3Frame, AdtsFrame};
pub use captions::CaptionReader;
pub use hevc::{h265_config, h265_sps, HevcConfig};
pub use rate::FrameRate;

use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::rbsp::{decode_nal, BitReader};

/// What a video parameter set tells the packager.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoParams {
    /// RFC 6381 codec string, e.g. `avc1.64001f` or `hvc1.1.6.L93.B0`.
    pub codec: String,
    /// Display size in pixels after cropping, when the SPS could be parsed that far.
    pub resolution: Option<(u32, u32)>,
    /// VUI `transfer_characteristics` (ITU-T H.273 Table 3: 16 is PQ, 18 is HLG), when
    /// the SPS signals a colour description.
    pub transfer: Option<u8>,
    /// The frame rate the VUI timing declares, when it does.
    pub timing: Option<FrameRate>,
}

/// H.273 `transfer_characteristics` of SMPTE ST 2084 (PQ, HDR10).
pub const TRANSFER_PQ: u8 = 16;
/// H.273 `transfer_characteristics` of ARIB STD-B67 (HLG).
pub const TRANSFER_HLG: u8 = 18;

/// Codec string and size from an H.264 SPS NAL unit (header byte included, Annex B start
/// code stripped).
/// Whether an RFC 6381 codec string names a video codec.
pub fn is_video_codec(codec: &str) -> bool {
    ["avc1", "avc3", "hvc1", "hev1"].iter().any(|p| codec.starts_with(p))
}

pub fn h264_sps(nal: &[u8]) -> Option<VideoParams> {
    if nal.len() < 4 || nal[0] & 0x1f != 7 {
        return None;
    }
    let codec = format!("avc1.{:02x}{:02x}{:02x}", nal[1], nal[2], nal[3]);
    let sps = decode_nal(nal)
        .ok()
        .and_then(|rbsp| SeqParameterSet::from_bits(BitReader::new(&rbsp[..])).ok());
    let vui = sps.as_ref().and_then(|s| s.vui_parameters.as_ref());
    Some(VideoParams {
        codec,
        resolution: sps.as_ref().and_then(|s| s.pixel_dimensions().ok()),
        transfer: vui
            .and_then(|v| v.video_signal_type.as_ref())
            .and_then(|t| t.colour_description.as_ref())
            .map(|c| c.transfer_characteristics),
        // A tick is a field: two per frame (H.264 §E.2.1).
        timing: vui
            .and_then(|v| v.timing_info.as_ref())
            .and_then(|t| FrameRate::from_vui(t.time_scale, 2 * u64::from(t.num_units_in_tick))),
    })
}

/// Splits an Annex B byte stream into NAL units (start codes removed).
pub fn annexb_nal_units(es: &[u8]) -> impl Iterator<Item = &[u8]> {
    // SIMD substring search: this scan touches every byte of every video frame.
    let starts: Vec<usize> = memchr::memmem::find_iter(es, &[0, 0, 1]).map(|i| i + 3).collect();
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| {
            let mut e = s - 3;
            while e > 0 && es[e - 1] == 0 {
                e -= 1;
            }
            e
        })
        .chain(std::iter::once(es.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .filter(|(s, e)| s < e)
        .map(move |(s, e)| &es[s..e])
}

/// Removes H.264/H.265 emulation-prevention bytes (`00 00 03` → `00 00`).
pub fn strip_emulation_prevention(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// A minimal MSB-first bit reader for parameter sets.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits { data, pos: 0 }
    }

    fn read(&mut self, n: usize) -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = (v << 1) | u64::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        (self.pos + n <= self.data.len() * 8).then(|| self.pos += n)
    }

    /// Unsigned Exp-Golomb.
    fn ue(&mut self) -> Option<u64> {
        let mut zeros = 0;
        while self.read(1)? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u64 << zeros) - 1 + self.read(zeros)?)
    }

    /// Signed Exp-Golomb.
    fn se(&mut self) -> Option<i64> {
        let k = self.ue()? as i64;
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

/// The `avcC` extension for High profiles (ISO/IEC 14496-15 §5.3.3.1.2), from the SPS.
pub(crate) fn avc_ext(sps: &[u8]) -> Option<mp4_atom::AvccExt> {
    use h264_reader::nal::sps::{ChromaFormat, SeqParameterSet};
    use h264_reader::rbsp::{decode_nal, BitReader};
    if !matches!(sps.get(1), Some(100 | 110 | 122 | 144)) {
        return None;
    }
    let rbsp = decode_nal(sps).ok()?;
    let parsed = SeqParameterSet::from_bits(BitReader::new(&rbsp[..])).ok()?;
    let chroma = &parsed.chroma_info;
    Some(mp4_atom::AvccExt {
        chroma_format: match chroma.chroma_format {
            ChromaFormat::Monochrome => 0,
            ChromaFormat::YUV422 => 2,
            ChromaFormat::YUV444 => 3,
            _ => 1,
        },
        bit_depth_luma: 8 + chroma.bit_depth_luma_minus8,
        bit_depth_chroma: 8 + chroma.bit_depth_chroma_minus8,
        sequence_parameter_sets_ext: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_sps_gives_codec_and_size() {
        // An x264 SPS for 640x360, High profile, level 3.0 (profile_idc 100, level_idc 30).
        let sps = [
            0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00,
            0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
        ];
        let p = h264_sps(&sps).unwrap();
        assert_eq!(p.codec, "avc1.64001e");
        assert_eq!(p.resolution, Some((640, 360)));
        assert_eq!(p.transfer, None, "no colour description");
    }

    #[test]
    fn h264_vui_gives_the_transfer_and_the_frame_rate() {
        // x264 (ffmpeg -c:v libx264 -color_trc arib-std-b67, 320x180 at 50 fps); ffprobe:
        // color_transfer=arib-std-b67, r_frame_rate=50/1.
        let sps = [
            0x67, 0x42, 0xc0, 0x15, 0xda, 0x05, 0x06, 0x7e, 0x7c, 0x05, 0xa8, 0x48, 0x90, 0x4a, 0x00, 0x00, 0x03, 0x00,
            0x02, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x1e, 0x2c, 0x5d, 0x40,
        ];
        let p = h264_sps(&sps).unwrap();
        assert_eq!(p.resolution, Some((320, 180)));
        assert_eq!(p.transfer, Some(TRANSFER_HLG));
        assert_eq!(p.timing.map(FrameRate::per_second), Some(50.0));
    }

    #[test]
    fn annexb_split() {
        let es = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65, 9];
        let nals: Vec<&[u8]> = annexb_nal_units(&es).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 9][..]]);
    }

    #[test]
    fn emulation_prevention_is_removed() {
        assert_eq!(strip_emulation_prevention(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }
}
