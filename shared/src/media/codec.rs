//! Codec parameters from elementary-stream headers: H.264/H.265 SPS to RFC 6381 codec
//! strings and picture size, AAC ADTS headers to `mp4a.40.x`.

use h264_reader::nal::sps::SeqParameterSet;
use h264_reader::rbsp::{decode_nal, BitReader};

/// What a video parameter set tells the packager.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoParams {
    /// RFC 6381 codec string, e.g. `avc1.64001f` or `hvc1.1.6.L93.B0`.
    pub codec: String,
    /// Display size in pixels after cropping, when the SPS could be parsed that far.
    pub resolution: Option<(u32, u32)>,
}

/// Codec string and size from an H.264 SPS NAL unit (header byte included, Annex B start
/// code stripped).
pub fn h264_sps(nal: &[u8]) -> Option<VideoParams> {
    if nal.len() < 4 || nal[0] & 0x1f != 7 {
        return None;
    }
    let codec = format!("avc1.{:02x}{:02x}{:02x}", nal[1], nal[2], nal[3]);
    let resolution = decode_nal(nal)
        .ok()
        .and_then(|rbsp| SeqParameterSet::from_bits(BitReader::new(&rbsp[..])).ok())
        .and_then(|sps| sps.pixel_dimensions().ok());
    Some(VideoParams { codec, resolution })
}

/// Codec string and size from an H.265 SPS NAL unit (2-byte header included).
pub fn h265_sps(nal: &[u8]) -> Option<VideoParams> {
    if nal.len() < 15 || (nal[0] >> 1) & 0x3f != 33 {
        return None;
    }
    let rbsp = strip_emulation_prevention(&nal[2..]);
    let mut r = Bits::new(&rbsp);
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.read(3)? as usize;
    r.skip(1)?; // temporal_id_nesting
    let profile_space = r.read(2)?;
    let tier = r.read(1)?;
    let profile_idc = r.read(5)?;
    let compat = r.read(32)? as u32;
    let mut constraint = [0u8; 6];
    for byte in &mut constraint {
        *byte = r.read(8)? as u8;
    }
    let level_idc = r.read(8)?;
    let codec = hevc_codec_string(profile_space, tier, profile_idc, compat, &constraint, level_idc);
    let resolution = hevc_resolution(&mut r, max_sub_layers_minus1);
    Some(VideoParams { codec, resolution })
}

fn hevc_codec_string(
    profile_space: u64,
    tier: u64,
    profile_idc: u64,
    compat: u32,
    constraint: &[u8; 6],
    level_idc: u64,
) -> String {
    let space = ["", "A", "B", "C"][profile_space as usize & 3];
    let mut s = format!(
        "hvc1.{space}{profile_idc}.{:X}.{}{level_idc}",
        compat.reverse_bits(),
        if tier == 1 { 'H' } else { 'L' }
    );
    let used = constraint.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    for byte in &constraint[..used] {
        s.push_str(&format!(".{byte:X}"));
    }
    s
}

fn hevc_resolution(r: &mut Bits, max_sub_layers_minus1: usize) -> Option<(u32, u32)> {
    let mut profile_present = [false; 8];
    let mut level_present = [false; 8];
    for i in 0..max_sub_layers_minus1 {
        profile_present[i] = r.read(1)? == 1;
        level_present[i] = r.read(1)? == 1;
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?;
    }
    for i in 0..max_sub_layers_minus1 {
        if profile_present[i] {
            r.skip(88)?;
        }
        if level_present[i] {
            r.skip(8)?;
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc == 3 {
        r.skip(1)?;
    }
    let width = r.ue()? as u32;
    let height = r.ue()? as u32;
    let (sub_w, sub_h) = match chroma_format_idc {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    if r.read(1)? == 1 {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        let w = width.checked_sub(sub_w * (left + right) as u32)?;
        let h = height.checked_sub(sub_h * (top + bottom) as u32)?;
        return Some((w, h));
    }
    Some((width, height))
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
}

/// What an ADTS header says about an AAC stream.
#[derive(Clone, Debug, PartialEq)]
pub struct AacParams {
    /// `mp4a.40.<audio object type>`.
    pub codec: String,
    /// Sampling rate in Hz.
    pub sample_rate: u32,
    /// Channel configuration (1 = mono, 2 = stereo, ...).
    pub channels: u8,
}

const AAC_SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Parses the ADTS header at the start of `data`.
pub fn adts_header(data: &[u8]) -> Option<AacParams> {
    if data.len() < 7 || data[0] != 0xff || data[1] & 0xf6 != 0xf0 {
        return None;
    }
    let object_type = ((data[2] >> 6) & 3) + 1;
    let sample_rate = *AAC_SAMPLE_RATES.get(usize::from((data[2] >> 2) & 0xf))?;
    let channels = ((data[2] & 1) << 2) | (data[3] >> 6);
    Some(AacParams {
        codec: format!("mp4a.40.{object_type}"),
        sample_rate,
        channels,
    })
}

/// Number of whole ADTS frames in `data` (used to time the end of an audio-only segment).
pub fn adts_frame_count(mut data: &[u8]) -> usize {
    let mut count = 0;
    while data.len() >= 7 && data[0] == 0xff && data[1] & 0xf6 == 0xf0 {
        let len = (usize::from(data[3] & 3) << 11) | (usize::from(data[4]) << 3) | usize::from(data[5] >> 5);
        if len < 7 || len > data.len() {
            break;
        }
        count += 1;
        data = &data[len..];
    }
    count
}

/// One AAC access unit found in an ADTS stream: the raw frame without its header.
pub struct AdtsFrame<'a> {
    pub header: AacParams,
    /// AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1) for the `esds` box.
    pub config: [u8; 2],
    pub raw: &'a [u8],
}

/// Splits an ADTS byte stream into frames; stops at the first byte that is not a frame.
pub fn adts_frames(mut data: &[u8]) -> impl Iterator<Item = AdtsFrame<'_>> {
    std::iter::from_fn(move || {
        let header = adts_header(data)?;
        let len = (usize::from(data[3] & 3) << 11) | (usize::from(data[4]) << 3) | usize::from(data[5] >> 5);
        let header_len = if data[1] & 1 == 0 { 9 } else { 7 };
        if len <= header_len || len > data.len() {
            return None;
        }
        let object_type = ((data[2] >> 6) & 3) + 1;
        let frequency_index = (data[2] >> 2) & 0xf;
        let config = [
            (object_type << 3) | (frequency_index >> 1),
            ((frequency_index & 1) << 7) | (header.channels << 3),
        ];
        let frame = AdtsFrame {
            header,
            config,
            raw: &data[header_len..len],
        };
        data = &data[len..];
        Some(frame)
    })
}

/// What an AC-3 or E-AC-3 sync frame header says (ETSI TS 102 366 §4.4 and Annex E),
/// enough for the `dac3`/`dec3` boxes and for timing.
#[derive(Clone, Debug, PartialEq)]
pub struct Ac3Frame {
    pub enhanced: bool,
    pub fscod: u8,
    pub bsid: u8,
    pub bsmod: u8,
    pub acmod: u8,
    pub lfeon: bool,
    /// AC-3 `frmsizecod >> 1` (bit rate index); unused for E-AC-3.
    pub bit_rate_code: u8,
    pub sample_rate: u32,
    /// PCM samples per frame (1536 for AC-3; 256 × blocks for E-AC-3).
    pub samples: u32,
    /// Frame length in bytes.
    pub size: usize,
}

impl Ac3Frame {
    /// Channel count including LFE.
    pub fn channels(&self) -> u16 {
        let main = [2, 1, 2, 3, 3, 4, 4, 5][usize::from(self.acmod & 7)];
        main + u16::from(self.lfeon)
    }

    /// Bit rate in kbit/s.
    pub fn kbps(&self) -> u32 {
        (self.size as u64 * 8 * u64::from(self.sample_rate) / u64::from(self.samples.max(1)) / 1000) as u32
    }
}

const AC3_KBPS: [u32; 19] = [
    32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640,
];

/// Parses the AC-3 or E-AC-3 sync frame header at the start of `data`.
pub fn ac3_frame(data: &[u8]) -> Option<Ac3Frame> {
    if data.len() < 8 || data[0] != 0x0b || data[1] != 0x77 {
        return None;
    }
    let bsid = data[5] >> 3;
    if bsid > 10 {
        let frmsiz = (usize::from(data[2] & 7) << 8) | usize::from(data[3]);
        let fscod = data[4] >> 6;
        let (sample_rate, blocks) = if fscod == 3 {
            ([24_000, 22_050, 16_000, 0][usize::from((data[4] >> 4) & 3)], 6)
        } else {
            (
                [48_000, 44_100, 32_000][usize::from(fscod)],
                [1, 2, 3, 6][usize::from((data[4] >> 4) & 3)],
            )
        };
        if sample_rate == 0 {
            return None;
        }
        return Some(Ac3Frame {
            enhanced: true,
            fscod,
            bsid,
            bsmod: 0,
            acmod: (data[4] >> 1) & 7,
            lfeon: data[4] & 1 == 1,
            bit_rate_code: 0,
            sample_rate,
            samples: 256 * blocks,
            size: (frmsiz + 1) * 2,
        });
    }
    let fscod = data[4] >> 6;
    let frmsizecod = data[4] & 0x3f;
    let kbps = *AC3_KBPS.get(usize::from(frmsizecod >> 1))?;
    let words = match fscod {
        0 => kbps * 2,
        1 => kbps * 96_000 / 44_100 + u32::from(frmsizecod & 1),
        2 => kbps * 3,
        _ => return None,
    };
    let acmod = data[6] >> 5;
    // lfeon follows optional 2-bit mix levels (§5.4.2.4-2.6).
    let mut bit = 3;
    if acmod & 1 != 0 && acmod != 1 {
        bit += 2;
    }
    if acmod & 4 != 0 {
        bit += 2;
    }
    if acmod == 2 {
        bit += 2;
    }
    let lfe_byte = u16::from_be_bytes([data[6], data[7]]);
    let lfeon = (lfe_byte >> (15 - bit)) & 1 == 1;
    Some(Ac3Frame {
        enhanced: false,
        fscod,
        bsid,
        bsmod: data[5] & 7,
        acmod,
        lfeon,
        bit_rate_code: frmsizecod >> 1,
        sample_rate: [48_000, 44_100, 32_000][usize::from(fscod)],
        samples: 1536,
        size: words as usize * 2,
    })
}

/// The fields of an HEVC SPS that `hvcC` repeats (ISO/IEC 14496-15 §8.3.3.1).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HevcConfig {
    pub profile_space: u8,
    pub tier: bool,
    pub profile_idc: u8,
    pub compatibility: [u8; 4],
    pub constraints: [u8; 6],
    pub level_idc: u8,
    pub chroma_format_idc: u8,
    pub bit_depth_luma_minus8: u8,
    pub bit_depth_chroma_minus8: u8,
    pub temporal_layers: u8,
    pub temporal_id_nested: bool,
}

/// Reads the `hvcC` fields from an H.265 SPS NAL unit (2-byte header included).
pub fn h265_config(nal: &[u8]) -> Option<HevcConfig> {
    if nal.len() < 15 || (nal[0] >> 1) & 0x3f != 33 {
        return None;
    }
    let rbsp = strip_emulation_prevention(&nal[2..]);
    let mut r = Bits::new(&rbsp);
    r.skip(4)?;
    let max_sub_layers_minus1 = r.read(3)? as usize;
    let temporal_id_nested = r.read(1)? == 1;
    let mut c = HevcConfig {
        profile_space: r.read(2)? as u8,
        tier: r.read(1)? == 1,
        profile_idc: r.read(5)? as u8,
        temporal_layers: max_sub_layers_minus1 as u8 + 1,
        temporal_id_nested,
        chroma_format_idc: 1,
        ..HevcConfig::default()
    };
    for byte in &mut c.compatibility {
        *byte = r.read(8)? as u8;
    }
    for byte in &mut c.constraints {
        *byte = r.read(8)? as u8;
    }
    c.level_idc = r.read(8)? as u8;
    let mut profile_present = [false; 8];
    let mut level_present = [false; 8];
    for i in 0..max_sub_layers_minus1 {
        profile_present[i] = r.read(1)? == 1;
        level_present[i] = r.read(1)? == 1;
    }
    if max_sub_layers_minus1 > 0 {
        r.skip(2 * (8 - max_sub_layers_minus1))?;
    }
    for i in 0..max_sub_layers_minus1 {
        if profile_present[i] {
            r.skip(88)?;
        }
        if level_present[i] {
            r.skip(8)?;
        }
    }
    r.ue()?;
    c.chroma_format_idc = r.ue()? as u8;
    if c.chroma_format_idc == 3 {
        r.skip(1)?;
    }
    r.ue()?;
    r.ue()?;
    if r.read(1)? == 1 {
        for _ in 0..4 {
            r.ue()?;
        }
    }
    c.bit_depth_luma_minus8 = r.ue()? as u8;
    c.bit_depth_chroma_minus8 = r.ue()? as u8;
    Some(c)
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
    }

    #[test]
    fn hevc_codec_string_matches_iso_14496_15_examples() {
        // ISO/IEC 14496-15 Annex E: Main profile, level 3.1, progressive source flag set.
        let s = hevc_codec_string(0, 0, 1, 0x6000_0000, &[0xb0, 0, 0, 0, 0, 0], 93);
        assert_eq!(s, "hvc1.1.6.L93.B0");
        let s = hevc_codec_string(0, 1, 2, 0x2000_0000, &[0xb0, 0, 0, 0, 0, 0], 120);
        assert_eq!(s, "hvc1.2.4.H120.B0");
    }

    #[test]
    fn adts_header_and_frames() {
        // AAC-LC, 48 kHz, stereo, frame length 10 bytes.
        let frame = [0xff, 0xf1, 0x4c, 0x80, 0x01, 0x5f, 0xfc, 0, 0, 0];
        let p = adts_header(&frame).unwrap();
        assert_eq!(p.codec, "mp4a.40.2");
        assert_eq!(p.sample_rate, 48000);
        assert_eq!(p.channels, 2);
        let two = [frame, frame].concat();
        assert_eq!(adts_frame_count(&two), 2);
        assert_eq!(adts_frame_count(&two[..15]), 1);
    }

    #[test]
    fn emulation_prevention_is_removed() {
        assert_eq!(strip_emulation_prevention(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }
}
