//! Common Encryption (ISO/IEC 23001-7) of CMAF tracks, as pure functions over samples:
//!
//! - `cenc`: AES-128-CTR; every sample has its own 8-byte IV; video samples are
//!   subsample-encrypted (NAL length prefixes, headers and the first bytes of each slice
//!   in the clear, the rest in whole blocks), audio samples whole.
//! - `cbcs`: AES-128-CBC with one constant IV; video subsamples use the 1:9 pattern
//!   (one block encrypted, nine clear), audio samples every whole block (pattern 0:0);
//!   the CBC chain restarts at each subsample, and a trailing partial block stays clear.
//!
//! The sample bytes are encrypted where they are (no second copy). What players need to
//! decrypt goes into boxes ([`boxes`]): `sinf`/`tenc` in the init segment and
//! `senc`/`saiz`/`saio` in each fragment. Everything is a function of the key, the
//! rendition and the sample's decode time, so every instance writes the same bytes.

pub mod boxes;

use crate::media::mp4::{Sample, SampleEntry, Track};
use aes::cipher::{BlockEncryptMut, KeyIvInit, StreamCipher};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The protection scheme of a track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// AES-CTR, per-sample IVs (`SAMPLE-AES-CTR` in HLS, DASH's `cenc`).
    Cenc,
    /// AES-CBC with a pattern and a constant IV (`SAMPLE-AES` in CMAF HLS).
    Cbcs,
}

impl Scheme {
    /// The scheme's name, as `schm` and CPIX's `commonEncryptionScheme` write it.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Cenc => "cenc",
            Scheme::Cbcs => "cbcs",
        }
    }

    pub fn fourcc(self) -> [u8; 4] {
        match self {
            Scheme::Cenc => *b"cenc",
            Scheme::Cbcs => *b"cbcs",
        }
    }
}

/// How one track is encrypted: the key, its KID, and the DRM systems' `pssh` boxes.
#[derive(Clone, Debug, PartialEq)]
pub struct Protection {
    pub scheme: Scheme,
    pub kid: [u8; 16],
    pub key: [u8; 16],
    /// `cbcs`: the IV of every subsample (`cenc` ignores it).
    pub constant_iv: [u8; 16],
    /// Whole `pssh` boxes for the init segment's `moov`.
    pub pssh: Vec<Vec<u8>>,
}

impl Protection {
    /// `(crypt, skip)` blocks of the pattern of a track (`cbcs`), or `None` (`cenc`).
    pub fn pattern(&self, video: bool) -> Option<(u8, u8)> {
        match (self.scheme, video) {
            (Scheme::Cenc, _) => None,
            (Scheme::Cbcs, true) => Some((1, 9)),
            // 0:0, no pattern: every whole block (ISO/IEC 23001-7 §10.4; what Shaka Packager writes).
            (Scheme::Cbcs, false) => Some((0, 0)),
        }
    }

    /// Bytes of each sample's IV in `senc` (0: the constant IV).
    pub fn iv_size(&self) -> u8 {
        match self.scheme {
            Scheme::Cenc => 8,
            Scheme::Cbcs => 0,
        }
    }

    /// Whether samples of a track are described by subsamples: video, whose NAL headers
    /// stay clear; audio is full-sample encryption (§9.5).
    pub fn uses_subsamples(&self, video: bool) -> bool {
        video
    }
}

/// The constant IV of `cbcs` when none is configured: derived from the KID, so that it
/// is the same on every instance.
pub fn derived_iv(kid: &[u8; 16]) -> [u8; 16] {
    let digest = Sha256::new_with_prefix(b"sluice cbcs iv\0")
        .chain_update(kid)
        .finalize();
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&digest[..16]);
    iv
}

/// Why a fragment cannot be encrypted.
#[derive(Debug, Error)]
pub enum CencError {
    #[error("a sample has {0} encrypted NAL units; a saiz entry holds at most {MAX_SUBSAMPLES} subsamples")]
    TooManySubsamples(usize),
    #[error("the init segment has no {0} box where a one-track CMAF init segment has one")]
    NotAnInitSegment(&'static str),
}

/// Most subsamples of one sample: its `senc` entry (8-byte IV, count, 6 bytes each) must
/// fit `saiz`'s one-byte size.
const MAX_SUBSAMPLES: usize = (255 - 8 - 2) / 6;

/// Bytes at the start of a slice NAL unit left in the clear, as HLS SAMPLE-AES does, so
/// that the NAL and slice headers stay readable.
const CLEAR_SLICE_LEAD: usize = 32;

/// The sample auxiliary information (`senc` entries) of one fragment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Aux {
    pub use_subsamples: bool,
    /// Each sample's entry: its IV (if per-sample), then its subsamples (if any).
    pub entries: Vec<Vec<u8>>,
}

/// Encrypts the `samples` of `track` (their bytes back to back in `data`) in place, and
/// returns their auxiliary information. `base_decode_time` is the decode time of the
/// first sample on the channel's timeline and `rendition` names the track's rendition:
/// with the track id they make every `cenc` sample's IV unique for the key.
pub fn encrypt_samples(
    track: &Track,
    rendition: &str,
    base_decode_time: u64,
    samples: &[Sample],
    data: &mut [u8],
    protection: &Protection,
) -> Result<Aux, CencError> {
    let video = track.is_video();
    let mut aux = Aux {
        use_subsamples: protection.uses_subsamples(video),
        entries: Vec::with_capacity(samples.len()),
    };
    let (mut offset, mut decode_time) = (0usize, base_decode_time);
    for sample in samples {
        let end = (offset + sample.size as usize).min(data.len());
        let bytes = &mut data[offset..end];
        let subsamples = match (video, aux.use_subsamples) {
            (true, _) => nal_subsamples(&track.entry, bytes),
            (false, true) => vec![(0, bytes.len() as u32)],
            (false, false) => Vec::new(),
        };
        if subsamples.len() > MAX_SUBSAMPLES {
            return Err(CencError::TooManySubsamples(subsamples.len()));
        }
        let mut entry = Vec::with_capacity(8 + 2 + 6 * subsamples.len());
        match protection.scheme {
            Scheme::Cenc => {
                let iv = sample_iv(rendition, track.id, decode_time);
                entry.extend_from_slice(&iv);
                ctr_encrypt(&protection.key, &iv, bytes, &subsamples);
            }
            Scheme::Cbcs => {
                let pattern = protection.pattern(video).unwrap_or((0, 0));
                cbcs_encrypt(&protection.key, &protection.constant_iv, bytes, &subsamples, pattern);
            }
        }
        if aux.use_subsamples {
            entry.extend_from_slice(&(subsamples.len() as u16).to_be_bytes());
            for (clear, protected) in &subsamples {
                entry.extend_from_slice(&clear.to_be_bytes());
                entry.extend_from_slice(&protected.to_be_bytes());
            }
        }
        aux.entries.push(entry);
        offset = end;
        decode_time += u64::from(sample.duration);
    }
    Ok(aux)
}

/// A `cenc` sample's IV: unique per rendition, track and decode time.
fn sample_iv(rendition: &str, track_id: u32, decode_time: u64) -> [u8; 8] {
    let digest = Sha256::new_with_prefix(b"sluice cenc iv\0")
        .chain_update(rendition.as_bytes())
        .chain_update(b"\0")
        .chain_update(track_id.to_be_bytes())
        .chain_update(decode_time.to_be_bytes())
        .finalize();
    let mut iv = [0u8; 8];
    iv.copy_from_slice(&digest[..8]);
    iv
}

/// `(clear, protected)` byte counts of a video sample of 4-byte length-prefixed NAL
/// units: slice NAL units are encrypted after their first bytes, in whole blocks; all
/// else (parameter sets, SEI, delimiters, anything unparsable) stays clear.
fn nal_subsamples(entry: &SampleEntry, sample: &[u8]) -> Vec<(u16, u32)> {
    let is_slice = |nal: &[u8]| match (entry, nal.first()) {
        (SampleEntry::Avc { .. }, Some(b)) => (1..=5).contains(&(b & 0x1f)),
        (SampleEntry::Hevc { .. }, Some(b)) => (b >> 1) & 0x3f < 32,
        _ => false,
    };
    let mut out = Vec::new();
    let mut clear = 0usize;
    let push = |out: &mut Vec<(u16, u32)>, clear: &mut usize, protected: usize| {
        while *clear > usize::from(u16::MAX) {
            out.push((u16::MAX, 0));
            *clear -= usize::from(u16::MAX);
        }
        out.push((*clear as u16, protected as u32));
        *clear = 0;
    };
    let mut pos = 0usize;
    while pos + 4 <= sample.len() {
        let n = u32::from_be_bytes([sample[pos], sample[pos + 1], sample[pos + 2], sample[pos + 3]]) as usize;
        let Some(end) = pos.checked_add(4 + n).filter(|&e| e <= sample.len()) else {
            break;
        };
        let nal = &sample[pos + 4..end];
        if is_slice(nal) && n >= CLEAR_SLICE_LEAD + 16 {
            let protected = (n - CLEAR_SLICE_LEAD) / 16 * 16;
            clear += 4 + n - protected;
            push(&mut out, &mut clear, protected);
        } else {
            clear += 4 + n;
        }
        pos = end;
    }
    clear += sample.len() - pos;
    if clear > 0 || out.is_empty() {
        push(&mut out, &mut clear, 0);
    }
    out
}

/// AES-CTR over the protected bytes of `sample`, one key stream for the whole sample.
fn ctr_encrypt(key: &[u8; 16], iv: &[u8; 8], sample: &mut [u8], subsamples: &[(u16, u32)]) {
    let mut counter = [0u8; 16];
    counter[..8].copy_from_slice(iv);
    let mut cipher = ctr::Ctr128BE::<aes::Aes128>::new(key.into(), &counter.into());
    if subsamples.is_empty() {
        cipher.apply_keystream(sample);
        return;
    }
    let mut pos = 0usize;
    for &(clear, protected) in subsamples {
        pos += usize::from(clear);
        let end = (pos + protected as usize).min(sample.len());
        cipher.apply_keystream(&mut sample[pos..end]);
        pos = end;
    }
}

/// AES-CBC pattern encryption of each subsample (none: the whole sample): `crypt` blocks
/// encrypted, `skip` blocks clear, repeated (0:0: every block); each subsample starts
/// from `iv`; partial blocks stay clear.
fn cbcs_encrypt(key: &[u8; 16], iv: &[u8; 16], sample: &mut [u8], subsamples: &[(u16, u32)], (crypt, skip): (u8, u8)) {
    let (crypt, skip) = (usize::from(crypt.max(1)) * 16, usize::from(skip) * 16);
    let whole = [(0, sample.len() as u32)];
    let mut pos = 0usize;
    for &(clear, protected) in if subsamples.is_empty() { &whole[..] } else { subsamples } {
        pos += usize::from(clear);
        let end = (pos + protected as usize).min(sample.len());
        let mut cipher = cbc::Encryptor::<aes::Aes128>::new(key.into(), iv.into());
        let mut at = pos;
        while at + crypt <= end {
            for block in sample[at..at + crypt].chunks_exact_mut(16) {
                cipher.encrypt_block_mut(block.into());
            }
            at += crypt + skip;
        }
        pos = end;
    }
}

#[cfg(test)]
mod tests;
