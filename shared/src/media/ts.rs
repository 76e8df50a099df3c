//! MPEG-TS (ISO/IEC 13818-1) segments at ingest. `packet` reads each 188-byte packet's
//! header once; [`analyze_segment`] walks a segment's packets once and feeds every scan
//! ingest needs from it: the segment info ([`SegmentInfo`]: tracks, codecs, start and
//! duration), the keyframe ranges and the leading PSI ([`crate::media::iframes`]), and the
//! caption channels in the video's SEI ([`captions`]). `psi`
//! reads PAT and PMT sections, `timestamps` the PTS/DTS/PCR clock (and shifts it for
//! looped demo streams). The PES demuxer ([`crate::media::pes`]) reads the same packets.

mod analyze;
mod captions;
mod info;
mod packet;
mod psi;
mod timestamps;

pub use analyze::{analyze, analyze_segment, SegmentAnalysis};
pub use captions::captions;
pub use info::{AudioTrack, SegmentInfo, VideoTrack};
pub use packet::PACKET_SIZE;
pub(crate) use packet::{packets, pid, Packet};
pub use psi::StreamType;
pub(crate) use psi::{parse_pat, parse_pmt, VideoStream};
pub(crate) use timestamps::parse_pes_header;
pub use timestamps::shift_timestamps;

use thiserror::Error;

/// Why a TS segment could not be analysed; messages name what an engineer should check.
#[derive(Debug, Error, PartialEq)]
pub enum TsError {
    #[error("not an MPEG transport stream: byte {offset} is {found:#04x}, expected the sync byte 0x47")]
    NoSync { offset: usize, found: u8 },
    #[error("empty segment")]
    Empty,
    #[error("no PAT (program association table) in the segment")]
    NoPat,
    #[error("no PMT (program map table) for any program in the PAT")]
    NoPmt,
    #[error("no audio or video elementary stream with PES timestamps")]
    NoMedia,
    #[error(
        "absurd timestamps: the segment's decoding timestamps span {seconds:.1} s (more than {MAX_SPAN_SECONDS} s, \
         or going backwards); check the encoder's clock"
    )]
    AbsurdTimestamps { seconds: f64 },
}

/// The longest span of timestamps one segment may have: longer means broken timestamps
/// (a jump inside the segment, or time going backwards, which wraps to about 26 hours).
pub const MAX_SPAN_SECONDS: u64 = 120;

#[cfg(test)]
pub(crate) mod synthetic;
