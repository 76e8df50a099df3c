//! The media core: pure functions over segment bytes. No I/O, no clock.
//! Ingest calls [`ts::analyze`] on every uploaded TS segment; [`codec`] turns
//! parameter sets and audio headers into HLS `CODECS`/`RESOLUTION` values.

pub mod codec;
pub mod ts;
