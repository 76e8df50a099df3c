//! The boxes of Common Encryption (ISO/IEC 23001-7 §8): the init segment's protected
//! sample entry (`encv`/`enca` holding `sinf` → `frma`, `schm`, `schi` → `tenc`) and
//! `pssh` boxes, and each fragment's `senc`, `saiz` and `saio`.
//!
//! `mp4-atom` has no sample-entry protection boxes, so the clear init segment it writes
//! is amended here: the sample entry is renamed and `sinf` appended to it, the `pssh`
//! boxes appended to `moov`, and the sizes of the boxes around them grown.

use super::{Aux, CencError, Protection};
use crate::media::mp4::Track;
use mp4_atom::{Saio, Saiz, Senc, SencBoxVersion, Traf};

/// A box of `kind` around `body`.
fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&((8 + body.len()) as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

/// A full box (version and flags) of `kind` around `body`.
fn full_box(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut head = flags.to_be_bytes();
    head[0] = version;
    boxed(kind, &[&head[..], body].concat())
}

/// `tenc` (§8.2): the default KID, the IV size (or the constant IV) and the pattern.
pub fn tenc(protection: &Protection, video: bool) -> Vec<u8> {
    let pattern = protection.pattern(video);
    let mut body = vec![0u8];
    body.push(pattern.map_or(0, |(crypt, skip)| (crypt << 4) | skip));
    body.push(1); // default_isProtected
    body.push(protection.iv_size());
    body.extend_from_slice(&protection.kid);
    if protection.iv_size() == 0 {
        body.push(16);
        body.extend_from_slice(&protection.constant_iv);
    }
    full_box(b"tenc", u8::from(pattern.is_some()), 0, &body)
}

/// `sinf` of a sample entry whose clear format was `original`.
pub fn sinf(protection: &Protection, video: bool, original: [u8; 4]) -> Vec<u8> {
    let frma = boxed(b"frma", &original);
    let mut scheme = protection.scheme.fourcc().to_vec();
    scheme.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    let schm = full_box(b"schm", 0, 0, &scheme);
    let schi = boxed(b"schi", &tenc(protection, video));
    boxed(b"sinf", &[frma, schm, schi].concat())
}

/// The first child box of `kind` in `buf[start..end]`: its start and end.
fn child(buf: &[u8], start: usize, end: usize, kind: &[u8; 4]) -> Option<(usize, usize)> {
    let mut at = start;
    while at + 8 <= end {
        let size = u32::from_be_bytes(buf[at..at + 4].try_into().ok()?) as usize;
        if size < 8 || at + size > end {
            return None;
        }
        if &buf[at + 4..at + 8] == kind {
            return Some((at, at + size));
        }
        at += size;
    }
    None
}

fn grow(buf: &mut [u8], box_start: usize, by: usize) {
    let size = u32::from_be_bytes(buf[box_start..box_start + 4].try_into().expect("4 bytes")) as usize;
    buf[box_start..box_start + 4].copy_from_slice(&((size + by) as u32).to_be_bytes());
}

/// The protected init segment of `track` from its clear one.
pub fn protect_init(init: &[u8], track: &Track, protection: &Protection) -> Result<Vec<u8>, CencError> {
    let missing = CencError::NotAnInitSegment;
    let mut ancestors = Vec::new();
    let (mut start, mut end) = (0, init.len());
    for kind in [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"] {
        let (s, e) = child(init, start, end, kind).ok_or(missing(std::str::from_utf8(kind).unwrap_or("?")))?;
        ancestors.push(s);
        // Children start after the header; stsd's after its version, flags and count.
        (start, end) = (s + if kind == b"stsd" { 16 } else { 8 }, e);
    }
    let entry = start;
    let entry_size = init
        .get(entry..entry + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .filter(|&n| n >= 8 && entry + n <= end)
        .ok_or(missing("sample entry"))?;
    let video = track.is_video();
    let original: [u8; 4] = init[entry + 4..entry + 8].try_into().expect("4 bytes");
    let sinf = sinf(protection, video, original);
    let pssh: Vec<u8> = protection.pssh.concat();
    let mut out = Vec::with_capacity(init.len() + sinf.len() + pssh.len());
    out.extend_from_slice(&init[..entry + entry_size]);
    out.extend_from_slice(&sinf);
    out.extend_from_slice(&init[entry + entry_size..]);
    out[entry + 4..entry + 8].copy_from_slice(if video { b"encv" } else { b"enca" });
    grow(&mut out, entry, sinf.len());
    for &a in &ancestors {
        grow(&mut out, a, sinf.len());
    }
    let moov = ancestors[0];
    let moov_end = moov + u32::from_be_bytes(out[moov..moov + 4].try_into().expect("4 bytes")) as usize;
    out.splice(moov_end..moov_end, pssh.iter().copied());
    grow(&mut out, moov, pssh.len());
    Ok(out)
}

/// Adds `senc`, and `saiz`/`saio` pointing into it, to a fragment's `traf`. The `saio`
/// offset is a placeholder until [`aux_offset`] gives it.
pub fn add_to_traf(traf: &mut Traf, aux: &Aux) {
    let sizes: Vec<u8> = aux.entries.iter().map(|e| e.len() as u8).collect();
    let same = sizes.first().filter(|&&s| s > 0 && sizes.iter().all(|x| x == &s));
    traf.saiz = vec![Saiz {
        aux_info: None,
        default_sample_info_size: same.copied().unwrap_or(0),
        sample_count: sizes.len() as u32,
        sample_info_size: if same.is_some() { Vec::new() } else { sizes },
    }];
    traf.saio = vec![Saio {
        aux_info: None,
        offsets: vec![0],
    }];
    let mut data = (aux.entries.len() as u32).to_be_bytes().to_vec();
    for entry in &aux.entries {
        data.extend_from_slice(entry);
    }
    traf.senc = Some(Senc {
        version: SencBoxVersion::V0,
        use_subsamples: aux.use_subsamples,
        data,
    });
}

/// Where the first `senc` entry is in an encoded `moof`, counted from the `moof`'s start
/// (the base of `saio` offsets with `default-base-is-moof`).
pub fn aux_offset(moof: &[u8]) -> Option<u64> {
    let (_, moof_end) = child(moof, 0, moof.len(), b"moof")?;
    let (traf, traf_end) = child(moof, 8, moof_end, b"traf")?;
    let (senc, _) = child(moof, traf + 8, traf_end, b"senc")?;
    // Box header, version and flags, sample count.
    Some((senc + 16) as u64)
}
