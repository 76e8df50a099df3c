//! Encryption of output segments, as pure functions over bytes: HLS AES-128 (RFC 8216
//! §4.3.2.4: the whole segment in AES-128-CBC with PKCS#7 padding).

use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
use bytes::Bytes;

type Aes128CbcEnc = cbc::Encryptor<aes::Aes128>;

/// The IV of a segment without a constant IV: its media sequence number as a 128-bit
/// big-endian integer (RFC 8216 §5.2).
pub fn sequence_iv(sequence: u64) -> [u8; 16] {
    u128::from(sequence).to_be_bytes()
}

/// Parses 32 hex digits (an optional `0x` first).
pub fn parse_iv(hex: &str) -> Option<[u8; 16]> {
    let hex = hex.strip_prefix("0x").or_else(|| hex.strip_prefix("0X")).unwrap_or(hex);
    if hex.len() != 32 {
        return None;
    }
    u128::from_str_radix(hex, 16).ok().map(u128::to_be_bytes)
}

/// `0x` and 32 hex digits, as `EXT-X-KEY`'s IV attribute writes it.
pub fn iv_hex(iv: &[u8; 16]) -> String {
    format!("0x{:032X}", u128::from_be_bytes(*iv))
}

/// Encrypts `parts`, one segment stored in pieces, as one AES-128-CBC stream with PKCS#7
/// padding, in place in the one copy that becomes the output.
pub fn aes128_cbc(key: &[u8; 16], iv: &[u8; 16], parts: &[Bytes]) -> Vec<u8> {
    let total: usize = parts.iter().map(Bytes::len).sum();
    let mut out = Vec::with_capacity(total + 16);
    for part in parts {
        out.extend_from_slice(part);
    }
    let padded = total / 16 * 16 + 16;
    out.resize(padded, 0);
    let written = Aes128CbcEnc::new(key.into(), iv.into())
        .encrypt_padded_mut::<Pkcs7>(&mut out, total)
        .expect("the buffer has room for the padding")
        .len();
    out.truncate(written);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NIST SP 800-38A F.2.1 (CBC-AES128.Encrypt), first two blocks.
    #[test]
    fn matches_the_nist_vector() {
        let hex = |s: &str| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect::<Vec<u8>>()
        };
        let key: [u8; 16] = hex("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap();
        let iv: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let plain = hex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let (a, b) = plain.split_at(7);
        let out = aes128_cbc(&key, &iv, &[Bytes::copy_from_slice(a), Bytes::copy_from_slice(b)]);
        assert_eq!(out.len(), 48, "two blocks and a block of padding");
        assert_eq!(
            out[..32],
            hex("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2")[..]
        );
    }

    #[test]
    fn ivs() {
        assert_eq!(sequence_iv(1)[15], 1);
        assert_eq!(sequence_iv(0x0102)[14..], [1, 2]);
        assert_eq!(
            parse_iv("0x000102030405060708090A0B0C0D0E0F"),
            Some(core::array::from_fn(|i| i as u8))
        );
        assert_eq!(parse_iv("00"), None);
        assert_eq!(iv_hex(&sequence_iv(255)), "0x000000000000000000000000000000FF");
    }
}
