//! The media core: pure functions over segment bytes. No I/O, no clock.
//! Ingest calls [`ts::analyze_segment`] (one pass: segment info, keyframes, leading
//! PSI) on every uploaded TS segment; [`codec`] turns
//! parameter sets and audio headers into HLS `CODECS`/`RESOLUTION` values; [`pes`],
//! [`cmaf`] and [`mp4`] repackage TS segments as CMAF fMP4 for CMAF HLS and DASH.

pub mod cenc;
pub mod cmaf;
pub mod codec;
pub mod crypto;
pub mod fmp4;
pub mod iframes;
pub mod mp4;
pub mod pes;
pub mod remux;
pub mod sample_aes;
pub mod ts;
pub mod tsmux;
pub mod webvtt;
