//! One elementary stream's PES packets turned into fMP4 samples: Annex B access units to
//! length-prefixed NAL units with the parameter sets collected for the sample entry, ADTS
//! frames to raw AAC, AC-3/E-AC-3 sync frames as they are; then cut into [`TrackRun`]s.

use super::{CmafError, Timeline, TrackRun};
use crate::media::codec::{self, annexb_nal_units, Ac3Frame};
use crate::media::mp4::{Sample, SampleEntry, Track};
use crate::media::pes::PesPacket;
use crate::media::ts::StreamType;
use crate::time::TICKS_PER_SECOND;

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
