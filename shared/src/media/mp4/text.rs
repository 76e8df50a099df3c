//! WebVTT in ISO-BMFF (ISO/IEC 14496-30 §7, the `wvtt` sample entry) for DASH text
//! Representations: the init segment, and media segments whose samples cover the
//! segment's time one after the other — a `vttc` box per cue showing in a sample's span
//! (`sttg` settings, `payl` text), or an empty `vtte` where none shows.

use super::{boxed, fragment_header_of, one_track_moov, Mp4Error, Sample};
use crate::media::webvtt::TimedCue;
use crate::time::{Ticks, TICKS_PER_SECOND};
use mp4_atom::{Codec, Encode, FourCC, Ftyp, Nmhd, PlainText, Tkhd, VttC, Wvtt};

/// The track id of a text Representation's only track.
const TRACK: u32 = 1;

/// The init segment of a WebVTT track on the 90 kHz clock, in `language` (ISO 639-2/T).
pub fn init_segment(language: &str) -> Result<Vec<u8>, Mp4Error> {
    let mut out = Vec::with_capacity(512);
    Ftyp {
        major_brand: FourCC::new(b"iso6"),
        minor_version: 0,
        compatible_brands: vec![FourCC::new(b"iso6"), FourCC::new(b"isom"), FourCC::new(b"dash")],
    }
    .encode(&mut out)
    .map_err(boxed("ftyp"))?;
    let entry = Codec::Wvtt(Wvtt {
        plaintext: PlainText {
            data_reference_index: 1,
        },
        config: VttC {
            config: "WEBVTT".into(),
        },
        label: None,
        btrt: None,
    });
    let tkhd = Tkhd {
        track_id: TRACK,
        ..Default::default()
    };
    let handler = (b"text", "Sluice subtitles");
    let moov = one_track_moov(
        tkhd,
        TICKS_PER_SECOND as u32,
        language,
        handler,
        |minf| minf.nmhd = Some(Nmhd {}),
        entry,
    );
    moov.encode(&mut out).map_err(boxed("moov"))?;
    Ok(out)
}

fn push_box(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
}

/// The media segment for `[from, to)` (decode time `from - moved_back`), number `sequence`.
pub fn media_segment(
    cues: &[TimedCue],
    from: Ticks,
    to: Ticks,
    moved_back: Ticks,
    sequence: u32,
) -> Result<Vec<u8>, Mp4Error> {
    let showing: Vec<&TimedCue> = cues.iter().filter(|c| c.start < to && c.end > from).collect();
    // Sample boundaries: the segment's ends and every cue start or end inside it.
    let mut cuts: Vec<Ticks> = vec![from, to];
    for c in &showing {
        cuts.extend([c.start, c.end].into_iter().filter(|t| *t > from && *t < to));
    }
    cuts.sort();
    cuts.dedup();
    let (mut samples, mut data) = (Vec::new(), Vec::new());
    for span in cuts.windows(2) {
        let (a, b) = (span[0], span[1]);
        let before = data.len();
        for c in showing.iter().filter(|c| c.start <= a && c.end >= b) {
            let mut vttc = Vec::new();
            if !c.settings.is_empty() {
                push_box(&mut vttc, b"sttg", c.settings.as_bytes());
            }
            push_box(&mut vttc, b"payl", c.text.as_bytes());
            push_box(&mut data, b"vttc", &vttc);
        }
        if data.len() == before {
            push_box(&mut data, b"vtte", &[]);
        }
        samples.push(Sample {
            duration: (b.0 - a.0) as u32,
            size: (data.len() - before) as u32,
            composition_offset: 0,
            keyframe: true,
        });
    }
    let base = from.saturating_sub(moved_back).0;
    let mut out = fragment_header_of(TRACK, false, sequence, base, &samples, data.len(), None)?;
    out.extend_from_slice(&data);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Decode, Moof, ReadFrom};

    fn cue(start: u64, end: u64, text: &str) -> TimedCue {
        TimedCue {
            start: Ticks(start),
            end: Ticks(end),
            settings: String::new(),
            text: text.into(),
        }
    }

    #[test]
    fn samples_cover_the_segment_with_the_cues_showing_in_each_span() {
        let cues = [cue(0, 135_000, "across"), cue(180_000, 270_000, "inside")];
        let out = media_segment(&cues, Ticks(90_000), Ticks(360_000), Ticks(0), 7).unwrap();
        let mut buf = &out[..];
        let _styp = mp4_atom::Styp::read_from(&mut buf).unwrap();
        let moof = Moof::read_from(&mut buf).unwrap();
        assert_eq!(moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time, 90_000);
        let durations: Vec<u32> = moof.traf[0].trun[0]
            .samples
            .iter()
            .map(|s| s.duration.unwrap())
            .collect();
        assert_eq!(durations, [45_000, 45_000, 90_000, 90_000]);
        // mdat: vttc(across), vtte, vttc(inside), vtte.
        let mdat = mp4_atom::Mdat::decode(&mut buf).unwrap().data;
        let kinds: Vec<&[u8]> = mdat_boxes(&mdat);
        assert_eq!(kinds, [&b"vttc"[..], b"vtte", b"vttc", b"vtte"]);
        assert!(mdat.windows(10).any(|w| w == b"paylacross"));
        // The init segment names the wvtt sample entry.
        let init = init_segment("eng").unwrap();
        assert!(init.windows(4).any(|w| w == b"wvtt") && init.windows(4).any(|w| w == b"vttC"));
    }

    fn mdat_boxes(mut data: &[u8]) -> Vec<&[u8]> {
        let mut kinds = Vec::new();
        while data.len() >= 8 {
            let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
            kinds.push(&data[4..8]);
            data = &data[size..];
        }
        kinds
    }
}
