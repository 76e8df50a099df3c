//! H.265 sequence parameter sets (ITU-T H.265 §7.3.2.2): the RFC 6381 `hvc1` codec
//! string, the picture size, the fields the `hvcC` box repeats, and (in `vui`) the VUI's
//! transfer characteristics and timing.

mod vui;

use super::{strip_emulation_prevention, Bits, VideoParams};

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
    // The VUI follows the rest of the SPS; a part that cannot be read leaves it unknown.
    let vui = resolution
        .and_then(|_| vui::read(&mut r, max_sub_layers_minus1))
        .unwrap_or_default();
    Some(VideoParams {
        codec,
        resolution,
        transfer: vui.transfer,
        timing: vui.timing,
    })
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
    fn hevc_codec_string_matches_iso_14496_15_examples() {
        // ISO/IEC 14496-15 Annex E: Main profile, level 3.1, progressive source flag set.
        let s = hevc_codec_string(0, 0, 1, 0x6000_0000, &[0xb0, 0, 0, 0, 0, 0], 93);
        assert_eq!(s, "hvc1.1.6.L93.B0");
        let s = hevc_codec_string(0, 1, 2, 0x2000_0000, &[0xb0, 0, 0, 0, 0, 0], 120);
        assert_eq!(s, "hvc1.2.4.H120.B0");
    }

    #[test]
    fn vui_gives_the_transfer_and_the_frame_rate() {
        // x265 (ffmpeg -c:v libx265 -pix_fmt yuv420p10le -color_trc smpte2084, 320x180 at
        // 60000/1001); ffprobe: Main 10, color_transfer=smpte2084, r_frame_rate=60000/1001.
        let sps = [
            0x42, 0x01, 0x01, 0x02, 0x20, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3c,
            0xa0, 0x0a, 0x08, 0x0c, 0x1f, 0x3b, 0x65, 0x95, 0x95, 0x29, 0x30, 0xbc, 0x05, 0xa8, 0x48, 0x80, 0x48, 0x20,
            0x00, 0x00, 0x7d, 0x20, 0x00, 0x1d, 0x4c, 0x01,
        ];
        let p = h265_sps(&sps).unwrap();
        assert_eq!(p.resolution, Some((320, 180)));
        assert_eq!(p.transfer, Some(super::super::TRANSFER_PQ));
        let rate = p.timing.unwrap();
        assert_eq!((rate.frames, rate.seconds), (60_000, 1001));
    }
}
