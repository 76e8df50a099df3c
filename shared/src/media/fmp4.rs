//! Reading fragmented MP4 as encoders push it (ffmpeg `-hls_segment_type fmp4`, CMAF):
//! the init segment's tracks and the access units of each media segment
//! (ISO/IEC 14496-12 §8.8, ISO/IEC 23000-19). Boxes are decoded by mp4-atom; this module
//! resolves what the boxes leave implicit: sample defaults (`trex`/`tfhd`), data offsets
//! relative to the `moof`, composition offsets and the edit list's start.

use mp4_atom::{Codec, Decode, Moof, Moov, Trex};

#[derive(Debug, thiserror::Error)]
pub enum Fmp4Error {
    #[error("not an ISO-BMFF file: {0}")]
    Boxes(String),
    #[error("the init segment has no moov box")]
    NoMoov,
    #[error("the segment has no moof box (a media segment needs moof + mdat)")]
    NoMoof,
    #[error("track {0}: codec {1} is not supported (H.264, H.265, AAC, AC-3, E-AC-3 are)")]
    Codec(u32, String),
    #[error("the segment's track {0} is not declared by the init segment")]
    UnknownTrack(u32),
    #[error("track {0}: sample data lies outside the segment")]
    OutOfBounds(u32),
    #[error("the init segment declares no audio or video track")]
    NoTracks,
}

/// How a track's samples are coded, with what a TS muxer needs to re-frame them.
#[derive(Clone, Debug, PartialEq)]
pub enum TrackCoding {
    /// Length-prefixed NAL units; `parameter_sets` are SPS then PPS, without start codes.
    H264 {
        nal_length: usize,
        parameter_sets: Vec<Vec<u8>>,
    },
    /// Length-prefixed NAL units; VPS, SPS, PPS.
    H265 {
        nal_length: usize,
        parameter_sets: Vec<Vec<u8>>,
    },
    /// Raw AAC frames; the AudioSpecificConfig fields an ADTS header repeats.
    Aac {
        object_type: u8,
        frequency_index: u8,
        channels: u8,
    },
    /// Sync frames, carried as they are.
    Ac3,
    Eac3,
}

impl TrackCoding {
    pub fn is_video(&self) -> bool {
        matches!(self, TrackCoding::H264 { .. } | TrackCoding::H265 { .. })
    }
}

/// One track of an init segment.
#[derive(Clone, Debug, PartialEq)]
pub struct InitTrack {
    pub id: u32,
    pub timescale: u32,
    pub coding: TrackCoding,
    /// From the edit list, in the track's timescale: presentation = decode + composition
    /// offset − `edit`.
    pub edit: i64,
    defaults: Trex,
}

/// The tracks of an init segment.
#[derive(Clone, Debug, PartialEq)]
pub struct Init {
    pub tracks: Vec<InitTrack>,
}

/// One access unit of a media segment, with times in its track's timescale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample<'a> {
    pub track: u32,
    pub decode: u64,
    pub composition_offset: i64,
    pub duration: u32,
    pub data: &'a [u8],
}

/// A top-level box: its type and where it starts and ends in the file.
struct TopBox {
    kind: [u8; 4],
    start: usize,
    end: usize,
}

/// The top-level boxes of `bytes`.
fn top_level(bytes: &[u8]) -> Result<Vec<TopBox>, Fmp4Error> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let head = bytes
            .get(at..at + 8)
            .ok_or_else(|| Fmp4Error::Boxes(format!("truncated box header at byte {at}")))?;
        let size32 = u32::from_be_bytes(head[0..4].try_into().expect("4 bytes")) as usize;
        let kind: [u8; 4] = head[4..8].try_into().expect("4 bytes");
        let (size, header) = match size32 {
            0 => (bytes.len() - at, 8),
            1 => {
                let large = bytes
                    .get(at + 8..at + 16)
                    .ok_or_else(|| Fmp4Error::Boxes("truncated 64-bit box size".into()))?;
                (u64::from_be_bytes(large.try_into().expect("8 bytes")) as usize, 16)
            }
            n => (n, 8),
        };
        if size < header || at.checked_add(size).is_none_or(|end| end > bytes.len()) {
            return Err(Fmp4Error::Boxes(format!(
                "box {:?} at byte {at} claims {size} bytes but the file ends at {}",
                String::from_utf8_lossy(&kind),
                bytes.len()
            )));
        }
        out.push(TopBox {
            kind,
            start: at,
            end: at + size,
        });
        at += size;
    }
    Ok(out)
}

/// True when `bytes` are meant as an init segment: a `moov` box starts before any `moof`
/// (even if the file is cut short, so that a truncated init is refused as an init).
pub fn is_init(bytes: &[u8]) -> bool {
    let mut at = 0;
    while let Some(head) = bytes.get(at..at + 8) {
        match &head[4..8] {
            b"moov" => return true,
            b"moof" | b"mdat" => return false,
            _ => {}
        }
        let size = u32::from_be_bytes(head[0..4].try_into().expect("4 bytes")) as usize;
        if size < 8 {
            return false;
        }
        at += size;
    }
    false
}

/// True when `bytes` start like ISO-BMFF (an `ftyp`, `styp`, `moov`, `moof` or `sidx` box).
pub fn looks_like_mp4(bytes: &[u8]) -> bool {
    bytes.get(4..8).is_some_and(|k| {
        [b"ftyp", b"styp", b"moov", b"moof", b"sidx", b"emsg"]
            .iter()
            .any(|t| k == *t)
    })
}

/// The tracks of an init segment.
pub fn parse_init(bytes: &[u8]) -> Result<Init, Fmp4Error> {
    let boxes = top_level(bytes)?;
    let moov_box = boxes.iter().find(|b| &b.kind == b"moov").ok_or(Fmp4Error::NoMoov)?;
    let moov =
        Moov::decode(&mut &bytes[moov_box.start..moov_box.end]).map_err(|e| Fmp4Error::Boxes(format!("moov: {e}")))?;
    let trex = moov.mvex.as_ref().map(|m| m.trex.clone()).unwrap_or_default();
    let mut tracks = Vec::new();
    for trak in &moov.trak {
        let id = trak.tkhd.track_id;
        let Some(codec) = trak.mdia.minf.stbl.stsd.codecs.first() else {
            continue;
        };
        let coding = match codec {
            Codec::Avc1(c) => avc(&c.avcc),
            Codec::Avc3(c) => avc(&c.avcc),
            Codec::Hvc1(c) => hevc(&c.hvcc),
            Codec::Hev1(c) => hevc(&c.hvcc),
            Codec::Mp4a(c) => {
                let specific = c.esds.es_desc.dec_config.dec_specific.clone().unwrap_or_default();
                TrackCoding::Aac {
                    object_type: specific.profile.max(1),
                    frequency_index: specific.freq_index,
                    channels: specific.chan_conf,
                }
            }
            Codec::Ac3(_) => TrackCoding::Ac3,
            Codec::Eac3(_) => TrackCoding::Eac3,
            // Timed metadata, captions and the like: not packaged.
            Codec::Unknown(..) => continue,
            other => return Err(Fmp4Error::Codec(id, format!("{other:?}").chars().take(12).collect())),
        };
        let timescale = trak.mdia.mdhd.timescale.max(1);
        let edit = trak
            .edts
            .as_ref()
            .and_then(|e| e.elst.as_ref())
            .map_or(0, |elst| edit_offset(elst, moov.mvhd.timescale.max(1), timescale));
        let defaults = trex.iter().find(|t| t.track_id == id).cloned().unwrap_or(Trex {
            track_id: id,
            default_sample_description_index: 1,
            ..Default::default()
        });
        tracks.push(InitTrack {
            id,
            timescale,
            coding,
            edit,
            defaults,
        });
    }
    if tracks.is_empty() {
        return Err(Fmp4Error::NoTracks);
    }
    Ok(Init { tracks })
}

/// Presentation = decode + composition offset − this (track timescale): leading empty
/// edits delay the track (a dwell, in the movie timescale), the first real edit's
/// `media_time` is the media time shown first (ISO/IEC 14496-12 §8.6.6). ffmpeg writes both.
fn edit_offset(elst: &mp4_atom::Elst, movie_timescale: u32, timescale: u32) -> i64 {
    let mut dwell: u64 = 0;
    for entry in &elst.entries {
        match entry.media_time {
            None => dwell += entry.segment_duration,
            Some(media_time) => {
                let dwell = (i128::from(dwell) * i128::from(timescale) / i128::from(movie_timescale)) as i64;
                return media_time as i64 - dwell;
            }
        }
    }
    0
}

fn avc(avcc: &mp4_atom::Avcc) -> TrackCoding {
    TrackCoding::H264 {
        nal_length: usize::from(avcc.length_size.clamp(1, 4)),
        parameter_sets: avcc
            .sequence_parameter_sets
            .iter()
            .chain(&avcc.picture_parameter_sets)
            .cloned()
            .collect(),
    }
}

fn hevc(hvcc: &mp4_atom::Hvcc) -> TrackCoding {
    let mut arrays: Vec<&mp4_atom::HvcCArray> = hvcc.arrays.iter().collect();
    // VPS (32), SPS (33), PPS (34) in that order, then anything else (SEI).
    arrays.sort_by_key(|a| a.nal_unit_type);
    TrackCoding::H265 {
        nal_length: usize::from(hvcc.length_size_minus_one & 3) + 1,
        parameter_sets: arrays.iter().flat_map(|a| a.nalus.iter().cloned()).collect(),
    }
}

/// The access units of a media segment in file order, per track fragment.
pub fn samples<'a>(init: &Init, bytes: &'a [u8]) -> Result<Vec<Sample<'a>>, Fmp4Error> {
    let boxes = top_level(bytes)?;
    if !boxes.iter().any(|b| &b.kind == b"moof") {
        return Err(Fmp4Error::NoMoof);
    }
    let mut out = Vec::new();
    for &TopBox { kind, start, end } in &boxes {
        if &kind != b"moof" {
            continue;
        }
        let moof = Moof::decode(&mut &bytes[start..end]).map_err(|e| Fmp4Error::Boxes(format!("moof: {e}")))?;
        // Without an explicit base, the first track fragment's data starts at the moof and
        // each later one where the previous one's data ended (§8.8.7.1).
        let mut previous_end = start as u64;
        for traf in &moof.traf {
            let id = traf.tfhd.track_id;
            let track = init.tracks.iter().find(|t| t.id == id);
            let Some(track) = track else {
                return Err(Fmp4Error::UnknownTrack(id));
            };
            let base = match traf.tfhd.base_data_offset {
                Some(offset) => offset,
                None if traf.tfhd.default_base_is_moof => start as u64,
                None => previous_end,
            };
            let mut decode = traf.tfdt.as_ref().map_or(0, |t| t.base_media_decode_time);
            let mut cursor = base;
            for trun in &traf.trun {
                if let Some(offset) = trun.data_offset {
                    cursor = base
                        .checked_add_signed(i64::from(offset))
                        .ok_or(Fmp4Error::OutOfBounds(id))?;
                }
                for entry in trun.samples.iter() {
                    let duration = entry
                        .duration
                        .or(traf.tfhd.default_sample_duration)
                        .unwrap_or(track.defaults.default_sample_duration);
                    let size = entry
                        .size
                        .or(traf.tfhd.default_sample_size)
                        .unwrap_or(track.defaults.default_sample_size) as u64;
                    let from = usize::try_from(cursor).map_err(|_| Fmp4Error::OutOfBounds(id))?;
                    let to = usize::try_from(cursor + size).map_err(|_| Fmp4Error::OutOfBounds(id))?;
                    let data = bytes.get(from..to).ok_or(Fmp4Error::OutOfBounds(id))?;
                    // Only the mdat (or the moof itself, for odd writers) may hold samples.
                    if from < end && to > start {
                        return Err(Fmp4Error::OutOfBounds(id));
                    }
                    out.push(Sample {
                        track: id,
                        decode,
                        composition_offset: entry.cts.unwrap_or(0),
                        duration,
                        data,
                    });
                    decode += u64::from(duration);
                    cursor += size;
                }
            }
            previous_end = cursor;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_walker_refuses_sizes_past_the_end() {
        let mut bytes = b"\0\0\0\x10ftypiso6\0\0\0\0".to_vec();
        assert_eq!(top_level(&bytes).unwrap().len(), 1);
        bytes[3] = 0x20;
        assert!(matches!(top_level(&bytes), Err(Fmp4Error::Boxes(_))));
        assert!(matches!(top_level(&bytes[..5]), Err(Fmp4Error::Boxes(_))));
        assert!(!is_init(&bytes));
        assert!(looks_like_mp4(&bytes));
        assert!(!looks_like_mp4(&[0x47; 188]));
    }

    #[test]
    fn init_without_moov_is_refused() {
        let bytes = b"\0\0\0\x10ftypiso6\0\0\0\0";
        assert!(matches!(parse_init(bytes), Err(Fmp4Error::NoMoov)));
        assert!(matches!(
            samples(&Init { tracks: vec![] }, bytes),
            Err(Fmp4Error::NoMoof)
        ));
    }
}
