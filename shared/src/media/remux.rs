//! Streaming TS → CMAF remuxing of a long input (a recording, a file on disk): packets in,
//! one init segment per track and fragments of about a target duration out, cut at video
//! keyframes. Memory stays at one fragment per track whatever the input length. The same
//! [`StreamBuilder`]s serve live segments in the origin.

use crate::media::cmaf::{builders_for, CmafError, StreamBuilder, Timeline};
use crate::media::mp4::{self, Track};
use crate::media::pes::{Demuxer, PesPacket};
use crate::time::Ticks;

/// What the remuxer hands to its sink.
pub enum RemuxOutput<'a> {
    /// The init segment of a track, before its first fragment.
    Init { track: &'a Track, bytes: Vec<u8> },
    /// A media segment of a track, `header` then `data`; `sequence` counts fragments from 1.
    Fragment {
        track: &'a Track,
        sequence: u32,
        header: Vec<u8>,
        data: Vec<u8>,
    },
}

/// A TS → CMAF remuxer over a stream of 188-byte packets.
pub struct Remuxer {
    demuxer: Demuxer,
    builders: Vec<(u16, StreamBuilder)>,
    initialised: Vec<bool>,
    target: Ticks,
    pending: Vec<PesPacket>,
    sequence: u32,
    reference: u64,
}

impl Remuxer {
    /// Fragments are cut at the first keyframe at least `target` after the previous cut.
    pub fn new(target: Ticks) -> Remuxer {
        Remuxer {
            demuxer: Demuxer::new(),
            builders: Vec::new(),
            initialised: Vec::new(),
            target,
            pending: Vec::new(),
            sequence: 0,
            reference: 0,
        }
    }

    /// Feeds one packet.
    pub fn push(&mut self, packet: &[u8], sink: &mut impl FnMut(RemuxOutput<'_>)) -> Result<(), CmafError> {
        self.demuxer.push(packet, &mut self.pending)?;
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            for pes in &pending {
                self.add(pes, sink)?;
            }
            self.pending = pending;
            self.pending.clear();
        }
        Ok(())
    }

    /// Ends the input and flushes the last fragment.
    pub fn finish(&mut self, sink: &mut impl FnMut(RemuxOutput<'_>)) -> Result<(), CmafError> {
        let mut rest = Vec::new();
        self.demuxer.finish(&mut rest)?;
        for pes in &rest {
            self.add(pes, sink)?;
        }
        self.cut(None, None, sink)
    }

    fn add(&mut self, pes: &PesPacket, sink: &mut impl FnMut(RemuxOutput<'_>)) -> Result<(), CmafError> {
        if self.builders.is_empty() {
            self.builders = builders_for(self.demuxer.streams());
            self.initialised = vec![false; self.builders.len()];
        }
        let timeline = Timeline {
            reference: Ticks(self.reference),
            offset: 0,
        };
        let Some(index) = self.builders.iter().position(|(pid, _)| *pid == pes.pid) else {
            return Ok(());
        };
        self.builders[index].1.push(pes, timeline);
        let builder = &self.builders[index].1;
        if let Some(first) = builder.first_presentation() {
            self.reference = first.max(1);
        }
        if let Some((decode, presentation)) = builder.cut_point() {
            let first = builder.first_presentation().unwrap_or(presentation);
            if presentation >= first + self.target.0 {
                self.cut(Some(decode), Some(presentation), sink)?;
            }
        }
        Ok(())
    }

    /// Writes every track's frames before the cut (video by decode time, audio by
    /// presentation time) as one fragment each.
    fn cut(
        &mut self,
        video_end: Option<u64>,
        audio_end: Option<u64>,
        sink: &mut impl FnMut(RemuxOutput<'_>),
    ) -> Result<(), CmafError> {
        self.sequence += 1;
        for (i, (_, builder)) in self.builders.iter_mut().enumerate() {
            let end = if builder.is_video() { video_end } else { audio_end };
            let Some(run) = builder.take(end)? else { continue };
            if !self.initialised[i] {
                self.initialised[i] = true;
                sink(RemuxOutput::Init {
                    track: &run.track,
                    bytes: mp4::init_segment(&run.track)?,
                });
            }
            let header = mp4::fragment_header(
                &run.track,
                self.sequence,
                run.base_decode_time,
                &run.samples,
                run.data.len(),
                None,
            )?;
            sink(RemuxOutput::Fragment {
                track: &run.track,
                sequence: self.sequence,
                header,
                data: run.data,
            });
        }
        Ok(())
    }
}
