//! Manifest writers: pure functions from the output timeline ([`crate::live::timeline`])
//! and endpoint settings to playlist text.

pub mod dash;
pub mod hls;
