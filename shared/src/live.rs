//! Pure live-edge rules: records and `now` in, decisions out. No I/O, no clock.
//! Ingest and playback call them through the flows that own the storage calls;
//! [`timeline`] is the output timeline every package writer reads.

pub mod naming;
pub mod placement;
pub mod publish;
pub mod stats;
pub mod target;
pub mod timeline;
