//! TS → CMAF repackaging: PES packets become fMP4 samples, one track per elementary stream.
//! Video access units go from Annex B to 4-byte length-prefixed NAL units (access unit
//! delimiters dropped, parameter sets kept in band as well as in the sample entry); AAC
//! loses its ADTS headers; AC-3/E-AC-3 sync frames pass through. Timestamps are unwrapped
//! and moved onto the channel's continuous timeline, so fragments of consecutive segments
//! follow each other exactly. Pure: bytes and records in, bytes out.

mod stream;

pub use stream::StreamBuilder;

use crate::media::mp4::{self, Mp4Error, Sample, Track};
use crate::media::pes;
use crate::media::ts::{StreamType, TsError};
use crate::model::SegmentRecord;
use crate::time::{unwrap_pts, Ticks};
use thiserror::Error;

/// Why a segment could not be repackaged.
#[derive(Debug, Error)]
pub enum CmafError {
    #[error(transparent)]
    Ts(#[from] TsError),
    #[error(
        "the {0} stream has no parameter sets (SPS/PPS) before its first frame; CMAF needs them for the init segment"
    )]
    NoParameterSets(&'static str),
    #[error("the {0} stream has no frames")]
    NoFrames(&'static str),
    #[error(transparent)]
    Mp4(#[from] Mp4Error),
}

/// Where a segment's own 33-bit timestamps land on the output timeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timeline {
    /// An unwrapped encoder timestamp close to the segment's (its indexed start).
    pub reference: Ticks,
    /// Added to unwrapped encoder timestamps (non-zero after encoder restarts).
    pub offset: i64,
}

impl Timeline {
    /// The timeline of an indexed input segment.
    pub fn of(record: &SegmentRecord) -> Timeline {
        Timeline {
            reference: Ticks((record.start.0 as i64 - record.pts_offset).max(0) as u64),
            offset: record.pts_offset,
        }
    }

    /// Timestamps as they are in the input: unwrapped, not moved.
    pub fn identity() -> Timeline {
        Timeline {
            reference: Ticks(0),
            offset: 0,
        }
    }

    fn place(&self, raw: u64) -> u64 {
        let reference = (self.reference.0 > 0).then_some(self.reference);
        (unwrap_pts(raw, reference).0 as i64 + self.offset).max(0) as u64
    }
}

/// Samples of one track ready to be written as a media segment.
#[derive(Clone, Debug)]
pub struct TrackRun {
    pub track: Track,
    /// Decoding time of the first sample, in the track's timescale.
    pub base_decode_time: u64,
    pub samples: Vec<Sample>,
    /// The samples' bytes back to back.
    pub data: Vec<u8>,
}

impl TrackRun {
    /// Total duration in the track's timescale.
    pub fn duration(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.duration)).sum()
    }

    /// The media segment (`styp` + `moof` + `mdat`).
    pub fn media_segment(&self, sequence_number: u32) -> Result<Vec<u8>, Mp4Error> {
        mp4::media_segment(
            &self.track,
            sequence_number,
            self.base_decode_time,
            &self.samples,
            &self.data,
        )
    }

    /// Appends a later run of the same track (consecutive input segments of one output segment).
    pub fn append(&mut self, mut later: TrackRun) {
        // Close a gap or overlap at the boundary through the last sample's duration.
        if let Some(end) = later.base_decode_time.checked_sub(self.base_decode_time) {
            let before: u64 = self.samples.iter().rev().skip(1).map(|s| u64::from(s.duration)).sum();
            let fitted = end.checked_sub(before).and_then(|d| u32::try_from(d).ok());
            if let (Some(last), Some(d)) = (self.samples.last_mut(), fitted) {
                if d > 0 {
                    last.duration = d;
                }
            }
        }
        self.samples.append(&mut later.samples);
        self.data.append(&mut later.data);
    }
}

/// Track id of the video track; audio tracks follow in PMT order.
pub const VIDEO_TRACK_ID: u32 = 1;

/// Repackages one TS segment (or several concatenated) into one run per track, video first.
pub fn runs_from_ts(ts: &[u8], timeline: Timeline) -> Result<Vec<TrackRun>, CmafError> {
    let (packets, streams) = pes::demux(ts)?;
    let mut builders = builders_for(&streams);
    for packet in &packets {
        if let Some((_, builder)) = builders.iter_mut().find(|(pid, _)| *pid == packet.pid) {
            builder.push(packet, timeline);
        }
    }
    let mut runs = Vec::with_capacity(builders.len());
    for (_, mut builder) in builders {
        if let Some(run) = builder.take(None)? {
            runs.push(run);
        }
    }
    Ok(runs)
}

/// One builder per audio/video stream: the first video stream is track 1, audio 2, 3, ...
pub fn builders_for(streams: &[(u16, StreamType)]) -> Vec<(u16, StreamBuilder)> {
    let mut out = Vec::new();
    if let Some(&(pid, ty)) = streams
        .iter()
        .find(|(_, ty)| matches!(ty, StreamType::H264 | StreamType::H265))
    {
        out.push((pid, StreamBuilder::new(VIDEO_TRACK_ID, ty)));
    }
    let audio = streams
        .iter()
        .filter(|(_, ty)| matches!(ty, StreamType::Aac | StreamType::Ac3 | StreamType::Eac3));
    for (n, &(pid, ty)) in audio.enumerate() {
        out.push((pid, StreamBuilder::new(VIDEO_TRACK_ID + 1 + n as u32, ty)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEG0: &[u8] = include_bytes!("../../../infra/local/demo/360p/seg_00000.ts");
    const SEG1: &[u8] = include_bytes!("../../../infra/local/demo/360p/seg_00001.ts");

    #[test]
    fn demo_segment_becomes_a_video_and_an_audio_run() {
        let runs = runs_from_ts(SEG0, Timeline::identity()).unwrap();
        assert_eq!(runs.len(), 2);
        let video = &runs[0];
        assert_eq!(video.track.codec, "avc1.4d401e");
        assert_eq!((video.track.width, video.track.height), (640, 360));
        assert_eq!(video.samples.len(), 50);
        assert!(video.samples[0].keyframe);
        // 25 fps: every frame lasts 3600 ticks, two seconds in all.
        assert!(video.samples.iter().all(|s| s.duration == 3600));
        assert_eq!(video.duration(), 180_000);
        let audio = &runs[1];
        assert_eq!(audio.track.timescale, 48_000);
        assert!(audio.samples.iter().all(|s| s.duration == 1024));
        assert_eq!(
            audio.data.len(),
            audio.samples.iter().map(|s| s.size as usize).sum::<usize>()
        );
    }

    #[test]
    fn consecutive_segments_are_contiguous() {
        let a = runs_from_ts(SEG0, Timeline::identity()).unwrap();
        let b = runs_from_ts(SEG1, Timeline::identity()).unwrap();
        assert_eq!(a[0].base_decode_time + a[0].duration(), b[0].base_decode_time);
        let audio_end = a[1].base_decode_time + a[1].duration();
        assert!(
            audio_end.abs_diff(b[1].base_decode_time) <= 1,
            "{audio_end} vs {}",
            b[1].base_decode_time
        );
    }

    #[test]
    fn the_timeline_offset_moves_every_timestamp() {
        let moved = Timeline {
            reference: Ticks(133_200),
            offset: 900_000,
        };
        let a = runs_from_ts(SEG0, Timeline::identity()).unwrap();
        let b = runs_from_ts(SEG0, moved).unwrap();
        assert_eq!(b[0].base_decode_time, a[0].base_decode_time + 900_000);
        assert_eq!(b[1].base_decode_time, a[1].base_decode_time + 900_000 * 48_000 / 90_000);
    }
}
