//! Manifest writers: pure functions from index records and endpoint settings to
//! playlist text.

pub mod dash;
pub mod hls;
