use super::*;
use crate::media::cmaf::{runs_from_ts, Timeline};
use aes::cipher::BlockDecryptMut;

const SEG0: &[u8] = include_bytes!("../../../../infra/local/demo/360p/seg_00000.ts");

fn protection(scheme: Scheme) -> Protection {
    Protection {
        scheme,
        kid: [7; 16],
        key: *b"0123456789abcdef",
        constant_iv: [9; 16],
        pssh: Vec::new(),
    }
}

/// Decrypts one sample as a player would, from its `senc` entry (ISO/IEC 23001-7 §9, §10.4).
fn decrypt(p: &Protection, video: bool, entry: &[u8], sample: &mut [u8]) {
    let (iv, rest) = entry.split_at(p.iv_size() as usize);
    let subsamples: Vec<(usize, usize)> = match p.uses_subsamples(video) {
        false => vec![(0, sample.len())],
        true => (0..u16::from_be_bytes([rest[0], rest[1]]) as usize)
            .map(|i| &rest[2 + 6 * i..8 + 6 * i])
            .map(|s| {
                (
                    u16::from_be_bytes([s[0], s[1]]) as usize,
                    u32::from_be_bytes([s[2], s[3], s[4], s[5]]) as usize,
                )
            })
            .collect(),
    };
    let mut pos = 0;
    let mut counter = [0u8; 16];
    if p.scheme == Scheme::Cenc {
        counter[..8].copy_from_slice(iv);
    }
    let mut ctr = ctr::Ctr128BE::<aes::Aes128>::new((&p.key).into(), &counter.into());
    for (clear, protected) in subsamples {
        pos += clear;
        let region = &mut sample[pos..pos + protected];
        match p.pattern(video) {
            None => ctr.apply_keystream(region),
            Some((crypt, skip)) => {
                let mut cbc = cbc::Decryptor::<aes::Aes128>::new((&p.key).into(), (&p.constant_iv).into());
                let (crypt, skip) = (crypt.max(1) as usize * 16, skip as usize * 16);
                let mut at = 0;
                while at + crypt <= region.len() {
                    for block in region[at..at + crypt].chunks_exact_mut(16) {
                        cbc.decrypt_block_mut(block.into());
                    }
                    at += crypt + skip;
                }
            }
        }
        pos += protected;
    }
}

#[test]
fn every_scheme_decrypts_back_to_the_clear_samples() {
    for scheme in [Scheme::Cenc, Scheme::Cbcs] {
        let p = protection(scheme);
        for run in runs_from_ts(SEG0, Timeline::identity()).unwrap() {
            let mut data = run.data.clone();
            let video = run.track.is_video();
            let aux = encrypt_samples(&run.track, "360p", run.base_decode_time, &run.samples, &mut data, &p).unwrap();
            assert_ne!(data, run.data, "{scheme:?} video={video}: nothing was encrypted");
            assert_eq!(aux.entries.len(), run.samples.len());
            let mut offset = 0;
            for (sample, entry) in run.samples.iter().zip(&aux.entries) {
                let end = offset + sample.size as usize;
                decrypt(&p, video, entry, &mut data[offset..end]);
                offset = end;
            }
            assert_eq!(data, run.data, "{scheme:?} video={video}");
        }
    }
}

#[test]
fn slices_are_encrypted_in_whole_blocks_after_their_headers() {
    let run = runs_from_ts(SEG0, Timeline::identity()).unwrap().remove(0);
    let mut offset = 0;
    for sample in &run.samples {
        let bytes = &run.data[offset..offset + sample.size as usize];
        let subsamples = nal_subsamples(&run.track.entry, bytes);
        let total: usize = subsamples.iter().map(|(c, p)| *c as usize + *p as usize).sum();
        assert_eq!(total, bytes.len());
        assert!(subsamples.iter().all(|(_, p)| p % 16 == 0));
        // The first NAL units of a keyframe are parameter sets: in the clear.
        assert!(usize::from(subsamples[0].0) >= 4 + CLEAR_SLICE_LEAD);
        offset += sample.size as usize;
    }
}

#[test]
fn cenc_ivs_differ_by_rendition_track_and_time() {
    let a = sample_iv("360p", 1, 0);
    assert_ne!(a, sample_iv("720p", 1, 0));
    assert_ne!(a, sample_iv("360p", 2, 0));
    assert_ne!(a, sample_iv("360p", 1, 3600));
    assert_eq!(a, sample_iv("360p", 1, 0));
}

#[test]
fn tenc_is_laid_out_as_the_spec_says() {
    let cbcs = boxes::tenc(&protection(Scheme::Cbcs), true);
    // size, "tenc", version 1, flags, reserved, pattern 1:9, protected, IV size 0, KID,
    // constant IV size 16, constant IV.
    assert_eq!(cbcs.len(), 8 + 4 + 4 + 16 + 1 + 16);
    assert_eq!(&cbcs[4..8], b"tenc");
    assert_eq!(cbcs[8], 1);
    assert_eq!(cbcs[13], 0x19);
    assert_eq!((cbcs[14], cbcs[15]), (1, 0));
    assert_eq!(cbcs[32], 16);
    // Audio: no pattern (0:0), every whole block.
    assert_eq!(boxes::tenc(&protection(Scheme::Cbcs), false)[13], 0);
    let cenc = boxes::tenc(&protection(Scheme::Cenc), true);
    assert_eq!(cenc.len(), 8 + 4 + 4 + 16);
    assert_eq!((cenc[8], cenc[13], cenc[15]), (0, 0, 8));
}

#[test]
fn the_init_segment_grows_by_sinf_and_pssh_with_consistent_sizes() {
    let run = runs_from_ts(SEG0, Timeline::identity()).unwrap().remove(0);
    let clear = crate::media::mp4::init_segment(&run.track).unwrap();
    let mut p = protection(Scheme::Cenc);
    p.pssh = vec![boxes_pssh()];
    let init = boxes::protect_init(&clear, &run.track, &p).unwrap();
    let sinf = boxes::sinf(&p, true, *b"avc1");
    assert_eq!(init.len(), clear.len() + sinf.len() + p.pssh[0].len());
    // Top-level boxes still tile the file.
    let mut at = 0;
    let mut kinds = Vec::new();
    while at < init.len() {
        let size = u32::from_be_bytes(init[at..at + 4].try_into().unwrap()) as usize;
        kinds.push(String::from_utf8_lossy(&init[at + 4..at + 8]).to_string());
        at += size;
    }
    assert_eq!(at, init.len());
    assert_eq!(kinds, ["ftyp", "moov"]);
    assert!(init.windows(4).any(|w| w == b"encv"));
    assert!(init.ends_with(&p.pssh[0]));
}

fn boxes_pssh() -> Vec<u8> {
    let mut b = vec![0, 0, 0, 32];
    b.extend_from_slice(b"pssh");
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&[0x10; 16]);
    b.extend_from_slice(&[0; 4]);
    b
}
