//! The part of an H.265 SPS after the conformance window, read only to reach the VUI
//! (ITU-T H.265 §7.3.2.2.1 and Annex E.2.1): its transfer characteristics (HDR) and its
//! timing (frame rate).

use super::super::{Bits, FrameRate};

/// What the VUI of an SPS says, as far as the packager cares.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Vui {
    pub transfer: Option<u8>,
    pub timing: Option<FrameRate>,
}

/// Reads on from just after `conformance_window()` to the VUI. None when the SPS ends
/// first or is malformed; a default when it has no VUI.
pub(super) fn read(r: &mut Bits, max_sub_layers_minus1: usize) -> Option<Vui> {
    r.ue()?; // bit_depth_luma_minus8
    r.ue()?; // bit_depth_chroma_minus8
    let log2_max_poc_lsb = r.ue()? as usize + 4;
    let ordering_for_all = r.read(1)? == 1;
    let first = if ordering_for_all { 0 } else { max_sub_layers_minus1 };
    for _ in first..=max_sub_layers_minus1 {
        r.ue()?; // sps_max_dec_pic_buffering_minus1
        r.ue()?; // sps_max_num_reorder_pics
        r.ue()?; // sps_max_latency_increase_plus1
    }
    for _ in 0..6 {
        r.ue()?; // coding and transform block sizes, transform hierarchy depths
    }
    if r.read(1)? == 1 && r.read(1)? == 1 {
        skip_scaling_list_data(r)?;
    }
    r.skip(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.read(1)? == 1 {
        // pcm_enabled_flag: two bit depths, two sizes, the loop filter flag.
        r.skip(8)?;
        r.ue()?;
        r.ue()?;
        r.skip(1)?;
    }
    let sets = r.ue()? as usize;
    if sets > 64 {
        return None;
    }
    let mut previous: Option<ShortTermSet> = None;
    for index in 0..sets {
        previous = Some(short_term_ref_pic_set(r, index, previous.as_ref())?);
    }
    if r.read(1)? == 1 {
        // long_term_ref_pics_present_flag
        for _ in 0..r.ue()? {
            r.skip(log2_max_poc_lsb + 1)?;
        }
    }
    r.skip(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if r.read(1)? == 0 {
        return Some(Vui::default());
    }
    vui_parameters(r)
}

/// `vui_parameters()` up to the timing information (§E.2.1).
fn vui_parameters(r: &mut Bits) -> Option<Vui> {
    let mut vui = Vui::default();
    if r.read(1)? == 1 && r.read(8)? == 255 {
        r.skip(32)?; // sar_width, sar_height after aspect_ratio_idc = EXTENDED_SAR
    }
    if r.read(1)? == 1 {
        r.skip(1)?; // overscan_appropriate_flag
    }
    if r.read(1)? == 1 {
        r.skip(4)?; // video_format, video_full_range_flag
        if r.read(1)? == 1 {
            r.skip(8)?; // colour_primaries
            vui.transfer = Some(r.read(8)? as u8);
            r.skip(8)?; // matrix_coeffs
        }
    }
    if r.read(1)? == 1 {
        r.ue()?; // chroma_sample_loc_type_top_field
        r.ue()?; // chroma_sample_loc_type_bottom_field
    }
    r.skip(3)?; // neutral_chroma_indication_flag, field_seq_flag, frame_field_info_present_flag
    if r.read(1)? == 1 {
        for _ in 0..4 {
            r.ue()?; // default display window offsets
        }
    }
    if r.read(1)? == 1 {
        let num_units_in_tick = r.read(32)?;
        let time_scale = r.read(32)? as u32;
        vui.timing = FrameRate::from_vui(time_scale, num_units_in_tick);
    }
    Some(vui)
}

/// `scaling_list_data()` (§7.3.4), skipped.
fn skip_scaling_list_data(r: &mut Bits) -> Option<()> {
    for size in 0..4 {
        let mut matrix = 0;
        while matrix < 6 {
            if r.read(1)? == 0 {
                r.ue()?; // scaling_list_pred_matrix_id_delta
            } else {
                let coefficients = 64.min(1 << (4 + (size << 1)));
                if size > 1 {
                    r.se()?; // scaling_list_dc_coef_minus8
                }
                for _ in 0..coefficients {
                    r.se()?; // scaling_list_delta_coef
                }
            }
            matrix += if size == 3 { 3 } else { 1 };
        }
    }
    Some(())
}

/// The delta POCs of one short-term reference picture set, negative ones (S0) and
/// positive ones (S1): what a later set predicted from it needs.
struct ShortTermSet {
    negative: Vec<i64>,
    positive: Vec<i64>,
}

/// `st_ref_pic_set(index)` in the SPS (§7.3.7, derivation in §7.4.8).
fn short_term_ref_pic_set(r: &mut Bits, index: usize, previous: Option<&ShortTermSet>) -> Option<ShortTermSet> {
    let predicted = index != 0 && r.read(1)? == 1;
    if let (true, Some(reference)) = (predicted, previous) {
        // In the SPS the reference is always the set just before (delta_idx_minus1 = 0).
        let sign = r.read(1)?;
        let magnitude = r.ue()? as i64 + 1;
        let delta = if sign == 1 { -magnitude } else { magnitude };
        let count = reference.negative.len() + reference.positive.len();
        let mut used = Vec::with_capacity(count + 1);
        for _ in 0..=count {
            let by_current = r.read(1)? == 1;
            used.push(by_current || r.read(1)? == 1);
        }
        let uses = |j: usize| used.get(j).copied().unwrap_or(false);
        let n = reference.negative.len();
        let mut set = ShortTermSet {
            negative: Vec::new(),
            positive: Vec::new(),
        };
        for (j, d) in reference.positive.iter().enumerate().rev() {
            if d + delta < 0 && uses(n + j) {
                set.negative.push(d + delta);
            }
        }
        if delta < 0 && uses(count) {
            set.negative.push(delta);
        }
        for (j, d) in reference.negative.iter().enumerate() {
            if d + delta < 0 && uses(j) {
                set.negative.push(d + delta);
            }
        }
        for (j, d) in reference.negative.iter().enumerate().rev() {
            if d + delta > 0 && uses(j) {
                set.positive.push(d + delta);
            }
        }
        if delta > 0 && uses(count) {
            set.positive.push(delta);
        }
        for (j, d) in reference.positive.iter().enumerate() {
            if d + delta > 0 && uses(n + j) {
                set.positive.push(d + delta);
            }
        }
        return Some(set);
    }
    if predicted {
        return None;
    }
    let (negatives, positives) = (r.ue()?, r.ue()?);
    if negatives > 16 || positives > 16 {
        return None;
    }
    let mut set = ShortTermSet {
        negative: Vec::new(),
        positive: Vec::new(),
    };
    let mut poc = 0;
    for _ in 0..negatives {
        poc -= r.ue()? as i64 + 1;
        r.skip(1)?; // used_by_curr_pic_s0_flag
        set.negative.push(poc);
    }
    poc = 0;
    for _ in 0..positives {
        poc += r.ue()? as i64 + 1;
        r.skip(1)?; // used_by_curr_pic_s1_flag
        set.positive.push(poc);
    }
    Some(set)
}
