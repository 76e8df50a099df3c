//! CMAF ingest: an init segment and a media segment read with mp4-atom and rewritten as
//! TS. The input is split at a byte chosen by the fuzzer: init before, media after.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::media::{fmp4, tsmux};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let at = (usize::from(split) * 8).min(rest.len());
    let (init, media) = rest.split_at(at);
    let _ = fmp4::is_init(init);
    if let Ok(init) = fmp4::parse_init(init) {
        let _ = fmp4::samples(&init, media);
        let _ = tsmux::to_ts(&init, media);
    }
});
