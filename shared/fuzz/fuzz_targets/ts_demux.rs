//! Everything ingest and playback do with an uploaded TS segment: the index analysis
//! (start, duration, keyframes), PES demuxing and the TS → CMAF repackaging (init and
//! media segments), and the streaming remuxer of `sluice-local remux`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::media::{cmaf, iframes, mp4, remux, ts};

fuzz_target!(|data: &[u8]| {
    let _ = ts::analyze(data);
    let _ = iframes::keyframes(data);
    let _ = iframes::leading_psi(data);
    if let Ok(runs) = cmaf::runs_from_ts(data, cmaf::Timeline::identity()) {
        for run in runs {
            let _ = mp4::init_segment(&run.track);
            let _ = run.media_segment(1);
        }
    }
    let mut remuxer = remux::Remuxer::new(sluice::time::Ticks(180_000));
    let mut sink = |_: remux::RemuxOutput<'_>| {};
    for packet in data.chunks(188) {
        if remuxer.push(packet, &mut sink).is_err() {
            return;
        }
    }
    let _ = remuxer.finish(&mut sink);
});
