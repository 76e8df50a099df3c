//! TS → CMAF repackaging: PES packets become fMP4 samples, one track per elementary stream.
//! Video access units go from Annex B to 4-byte length-prefixed NAL units (access unit
//! delimiters dropped, parameter sets kept in band as well as in the sample entry); AAC
//! loses its ADTS headers; AC-3/E-AC-3 sync frames pass through. Timestamps are unwrapped
//! and moved onto the channel's continuous timeline, so fragments of consecutive segments
//! follow each other exactly. Pure: bytes and records in, bytes out.

use crate::media::codec::{self, Ac3Frame};
use crate::media::mp4::{self, Mp4Error, Sample, SampleEntry, Track};
use crate::media::pes::{self, PesPacket};
use crate::media::ts::{annexb_nal_units, StreamType, TsError};
use crate::model::SegmentRecord;
use crate::time::{unwrap_pts, Ticks, TICKS_PER_SECOND};
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

/// One elementary stream being turned into samples.
pub struct StreamBuilder {
    id: u32,
    stream_type: StreamType,
    track: Option<Track>,
    parameter_sets: ParameterSets,
    /// Video: (decode time, presentation time, size, keyframe) in 90 kHz; audio: (time in
    /// the sample rate's units, duration, size).
    frames: Vec<Frame>,
    data: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
struct Frame {
    decode: u64,
    presentation: u64,
    duration: u32,
    size: u32,
    keyframe: bool,
}

#[derive(Default)]
struct ParameterSets {
    vps: Option<Vec<u8>>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl StreamBuilder {
    /// A builder for the stream of `stream_type`, written as track `id`.
    pub fn new(id: u32, stream_type: StreamType) -> StreamBuilder {
        StreamBuilder {
            id,
            stream_type,
            track: None,
            parameter_sets: ParameterSets::default(),
            frames: Vec::new(),
            data: Vec::new(),
        }
    }

    pub fn is_video(&self) -> bool {
        matches!(self.stream_type, StreamType::H264 | StreamType::H265)
    }

    /// The track, once the stream has said enough about itself.
    pub fn track(&self) -> Option<&Track> {
        self.track.as_ref()
    }

    /// Presentation time (90 kHz, on the output timeline) of the first pending frame.
    pub fn first_presentation(&self) -> Option<u64> {
        let first = self.frames.first()?;
        Some(if self.is_video() {
            first.presentation
        } else {
            first.decode * TICKS_PER_SECOND / u64::from(self.timescale())
        })
    }

    fn timescale(&self) -> u32 {
        self.track.as_ref().map_or(90_000, |t| t.timescale)
    }

    /// Decode and presentation time (90 kHz) of the newest frame when it is a keyframe that
    /// is not the first pending frame: a place to cut a fragment.
    pub fn cut_point(&self) -> Option<(u64, u64)> {
        let last = self.frames.last()?;
        (self.is_video() && last.keyframe && self.frames.len() > 1).then_some((last.decode, last.presentation))
    }

    /// Adds one PES packet.
    pub fn push(&mut self, pes: &PesPacket, timeline: Timeline) {
        let Some(pts) = pes.pts.map(|raw| timeline.place(raw)) else {
            return; // a PES without a timestamp cannot be placed; encoders always send one
        };
        match self.stream_type {
            StreamType::H264 | StreamType::H265 => {
                let dts = pes.dts.map_or(pts, |raw| timeline.place(raw));
                self.push_access_unit(&pes.data, dts, pts, pes.random_access);
            }
            StreamType::Aac => {
                for frame in codec::adts_frames(&pes.data) {
                    if self.track.is_none() {
                        self.track = Some(Track {
                            id: self.id,
                            timescale: frame.header.sample_rate,
                            entry: SampleEntry::Aac { config: frame.config },
                            codec: frame.header.codec.clone(),
                            width: 0,
                            height: 0,
                            sample_rate: frame.header.sample_rate,
                            channels: u16::from(frame.header.channels),
                        });
                    }
                    self.push_audio_frame(frame.raw, pts, 1024);
                }
            }
            StreamType::Ac3 | StreamType::Eac3 => {
                let mut rest = &pes.data[..];
                while let Some(frame) = codec::ac3_frame(rest) {
                    if frame.size == 0 || frame.size > rest.len() {
                        break;
                    }
                    if self.track.is_none() {
                        self.track = Some(ac3_track(self.id, &frame));
                    }
                    self.push_audio_frame(&rest[..frame.size], pts, frame.samples);
                    rest = &rest[frame.size..];
                }
            }
            _ => {}
        }
    }

    /// Audio frames follow each other without gaps; the PES timestamp places the first
    /// frame of a run and re-anchors when it drifts by more than half a frame.
    fn push_audio_frame(&mut self, raw: &[u8], pes_pts: u64, samples: u32) {
        let rate = u64::from(self.timescale());
        let anchored = pes_pts * rate / TICKS_PER_SECOND;
        let time = match self.frames.last() {
            Some(last) => {
                let next = last.decode + u64::from(last.duration);
                // Frames after the first in one PES share its PTS: stay contiguous unless the
                // PES timestamp is ahead of where contiguity puts us (a gap in the input).
                if anchored > next + u64::from(samples) / 2 {
                    anchored
                } else {
                    next
                }
            }
            None => anchored,
        };
        self.frames.push(Frame {
            decode: time,
            presentation: time,
            duration: samples,
            size: raw.len() as u32,
            keyframe: true,
        });
        self.data.extend_from_slice(raw);
    }

    fn push_access_unit(&mut self, annexb: &[u8], dts: u64, pts: u64, random_access: bool) {
        let hevc = self.stream_type == StreamType::H265;
        let start = self.data.len();
        let mut keyframe = random_access;
        for nal in annexb_nal_units(annexb) {
            let Some(&header) = nal.first() else { continue };
            let nal_type = if hevc { (header >> 1) & 0x3f } else { header & 0x1f };
            let slot = match (hevc, nal_type) {
                (false, 9) | (true, 35) => continue, // access unit delimiter
                (false, 5) | (true, 16..=21) => {
                    keyframe = true;
                    None
                }
                (false, 7) | (true, 33) => Some(&mut self.parameter_sets.sps),
                (false, 8) | (true, 34) => Some(&mut self.parameter_sets.pps),
                (true, 32) => Some(&mut self.parameter_sets.vps),
                _ => None,
            };
            if let Some(slot) = slot {
                if slot.is_none() {
                    *slot = Some(nal.to_vec());
                }
            }
            self.data.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            self.data.extend_from_slice(nal);
        }
        if self.track.is_none() {
            self.track = video_track(self.id, hevc, &self.parameter_sets);
        }
        self.frames.push(Frame {
            decode: dts,
            presentation: pts.max(dts),
            duration: 0,
            size: (self.data.len() - start) as u32,
            keyframe,
        });
    }

    /// Takes the pending frames that start before `end` (90 kHz presentation time; all when
    /// `None`) as a run. Video durations come from decode times; the last one runs to
    /// `end` when given, otherwise it repeats the previous frame's duration.
    pub fn take(&mut self, end: Option<u64>) -> Result<Option<TrackRun>, CmafError> {
        let count = match end {
            None => self.frames.len(),
            Some(end) if self.is_video() => self.frames.iter().take_while(|f| f.decode < end).count(),
            Some(end) => {
                let end = end * u64::from(self.timescale()) / TICKS_PER_SECOND;
                self.frames.iter().take_while(|f| f.decode < end).count()
            }
        };
        if count == 0 {
            return Ok(None);
        }
        let track = self.track.clone().ok_or(if self.is_video() {
            CmafError::NoParameterSets("video")
        } else {
            CmafError::NoFrames("audio")
        })?;
        let frames: Vec<Frame> = self.frames.drain(..count).collect();
        let bytes: usize = frames.iter().map(|f| f.size as usize).sum();
        // The run takes the buffer itself; only the frames after the cut (usually the one
        // keyframe that called for it) move to a new buffer of the same capacity. Draining
        // the run out instead copied every byte of every fragment once more.
        let data = if bytes == self.data.len() {
            std::mem::take(&mut self.data)
        } else {
            let mut rest = Vec::with_capacity(self.data.capacity());
            rest.extend_from_slice(&self.data[bytes..]);
            self.data.truncate(bytes);
            std::mem::replace(&mut self.data, rest)
        };
        let next_decode = self.frames.first().map(|f| f.decode);
        let samples = if self.is_video() {
            let mut samples: Vec<Sample> = Vec::with_capacity(frames.len());
            for (i, f) in frames.iter().enumerate() {
                let next = frames.get(i + 1).map(|n| n.decode).or(next_decode).or(end);
                let duration = match next {
                    Some(n) if n > f.decode => (n - f.decode) as u32,
                    _ => samples.last().map_or(3600, |s: &Sample| s.duration),
                };
                samples.push(Sample {
                    duration,
                    size: f.size,
                    composition_offset: (f.presentation - f.decode) as i32,
                    keyframe: f.keyframe,
                });
            }
            samples
        } else {
            frames
                .iter()
                .map(|f| Sample {
                    duration: f.duration,
                    size: f.size,
                    composition_offset: 0,
                    keyframe: true,
                })
                .collect()
        };
        Ok(Some(TrackRun {
            track,
            base_decode_time: frames[0].decode,
            samples,
            data,
        }))
    }
}

fn video_track(id: u32, hevc: bool, sets: &ParameterSets) -> Option<Track> {
    let (sps, pps) = (sets.sps.clone()?, sets.pps.clone()?);
    let (entry, params) = if hevc {
        let params = codec::h265_sps(&sps)?;
        let config = codec::h265_config(&sps)?;
        let entry = SampleEntry::Hevc {
            vps: sets.vps.clone()?,
            sps,
            pps,
            config,
        };
        (entry, params)
    } else {
        let params = codec::h264_sps(&sps)?;
        (SampleEntry::Avc { sps, pps }, params)
    };
    let (width, height) = params.resolution.unwrap_or((0, 0));
    Some(Track {
        id,
        timescale: 90_000,
        entry,
        codec: params.codec,
        width,
        height,
        sample_rate: 0,
        channels: 0,
    })
}

fn ac3_track(id: u32, frame: &Ac3Frame) -> Track {
    Track {
        id,
        timescale: frame.sample_rate,
        entry: SampleEntry::Ac3(frame.clone()),
        codec: if frame.enhanced { "ec-3" } else { "ac-3" }.into(),
        width: 0,
        height: 0,
        sample_rate: frame.sample_rate,
        channels: frame.channels(),
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
