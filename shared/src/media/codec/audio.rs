//! Audio frame headers: AAC in ADTS (ISO/IEC 13818-7 §6.2) and AC-3/E-AC-3 sync frames
//! (ETSI TS 102 366): codec strings, sample rates, channels and frame lengths.

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
