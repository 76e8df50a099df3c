//! The analysis pass: one walk over a segment's packets that feeds every per-segment scan
//! ingest needs (segment info, keyframe ranges, leading PSI, caption channels). A new scan (the SCTE-35 PID)
//! joins [`analyze_segment`] as one more `push` per packet, not as another walk.

use super::captions::CaptionScan;
use super::info::{InfoScan, SegmentInfo};
use super::packet::packets;
use super::TsError;
use crate::media::iframes::{KeyFrame, KeyframeScan, LeadingPsi};
use crate::model::SegmentCaptions;

/// Everything ingest learns from one TS segment.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentAnalysis {
    /// Tracks, codecs, start and duration.
    pub info: SegmentInfo,
    /// The keyframes and their byte ranges, in stream order (see [`crate::media::iframes`]).
    pub keyframes: Vec<KeyFrame>,
    /// Bytes of PSI packets the segment starts with (see [`crate::media::iframes::leading_psi`]).
    pub leading_psi: u64,
    /// The CEA-608/708 caption channels in the video's SEI (see [`super::captions`]).
    pub captions: SegmentCaptions,
}

/// Analyses one TS segment in one pass over its packets: the same values as [`analyze`],
/// [`crate::media::iframes::keyframes`], [`crate::media::iframes::leading_psi`] and
/// [`super::captions`]. Fails when [`analyze`] would.
pub fn analyze_segment(data: &[u8]) -> Result<SegmentAnalysis, TsError> {
    if data.is_empty() {
        return Err(TsError::Empty);
    }
    let mut info = InfoScan::default();
    let mut keyframes = KeyframeScan::default();
    let mut psi = LeadingPsi::default();
    let mut captions = CaptionScan::default();
    for packet in packets(data) {
        let packet = packet?;
        info.push(&packet);
        keyframes.push(&packet);
        psi.push(&packet);
        captions.push(&packet);
    }
    Ok(SegmentAnalysis {
        info: info.finish()?,
        keyframes: keyframes.finish(),
        leading_psi: psi.finish(),
        captions: captions.finish(),
    })
}

/// Analyses one TS segment's media. Fails only when the bytes are not usable as media.
pub fn analyze(data: &[u8]) -> Result<SegmentInfo, TsError> {
    if data.is_empty() {
        return Err(TsError::Empty);
    }
    let mut info = InfoScan::default();
    for packet in packets(data) {
        info.push(&packet?);
    }
    info.finish()
}

#[cfg(test)]
mod tests {
    use super::super::synthetic::{segment, Spec};
    use super::*;
    use crate::media::iframes::{keyframes, leading_psi};
    use crate::time::Ticks;

    #[test]
    fn rejects_non_ts_bytes_with_the_offset() {
        assert_eq!(
            analyze(b"#EXTM3U\n").unwrap_err(),
            TsError::NoSync { offset: 0, found: b'#' }
        );
        assert_eq!(analyze(&[]).unwrap_err(), TsError::Empty);
        let mut two = vec![0u8; 376];
        two[0] = 0x47;
        two[1] = 0x1f;
        two[2] = 0xff;
        two[188] = 0x00;
        assert_eq!(analyze(&two).unwrap_err(), TsError::NoSync { offset: 188, found: 0 });
    }

    #[test]
    fn demo_segment_matches_ffprobe() {
        // Made by infra/local/demo/make-demo.sh. Expected values from ffprobe
        // (first video packet pts_time 1.480000, flags K_, 50 frames at 25 fps, 640x360)
        // and from the CODECS ffmpeg wrote into that folder's master.m3u8.
        let bytes = include_bytes!("../../../../infra/local/demo/360p/seg_00000.ts");
        let info = analyze(bytes).unwrap();
        assert_eq!(info.start_pts, 133_200);
        assert_eq!(info.duration, Ticks(180_000));
        assert!(info.starts_with_keyframe);
        assert_eq!(info.programs, 1);
        assert_eq!(info.codecs(), vec!["avc1.4d401e".to_string(), "mp4a.40.2".to_string()]);
        let video = info.video.unwrap();
        assert_eq!(video.frames, 50);
        assert_eq!(video.frame_rate.map(|r| (r.frames, r.seconds)), Some((25, 1)));
        // The AAC PES payloads are counted (the audio track's bit rate).
        assert!(info.audio[0].es_bytes > 0 && info.audio[0].ac3.is_none());
        assert_eq!(video.params.unwrap().resolution, Some((640, 360)));
        let aac = info.audio[0].aac.clone().unwrap();
        assert_eq!((aac.sample_rate, aac.channels), (48_000, 2));
    }

    /// The one pass against the separate ones.
    fn assert_one_pass_is_three(name: &str, bytes: &[u8]) {
        let three = analyze(bytes).map(|info| SegmentAnalysis {
            info,
            keyframes: keyframes(bytes),
            leading_psi: leading_psi(bytes),
            captions: super::super::captions(bytes),
        });
        assert_eq!(analyze_segment(bytes), three, "{name}");
    }

    const DEMO: [&[u8]; 10] = [
        include_bytes!("../../../../infra/local/demo/180p/seg_00000.ts"),
        include_bytes!("../../../../infra/local/demo/180p/seg_00001.ts"),
        include_bytes!("../../../../infra/local/demo/180p/seg_00002.ts"),
        include_bytes!("../../../../infra/local/demo/180p/seg_00003.ts"),
        include_bytes!("../../../../infra/local/demo/180p/seg_00004.ts"),
        include_bytes!("../../../../infra/local/demo/360p/seg_00000.ts"),
        include_bytes!("../../../../infra/local/demo/360p/seg_00001.ts"),
        include_bytes!("../../../../infra/local/demo/360p/seg_00002.ts"),
        include_bytes!("../../../../infra/local/demo/360p/seg_00003.ts"),
        include_bytes!("../../../../infra/local/demo/360p/seg_00004.ts"),
    ];

    #[test]
    fn one_pass_gives_what_the_three_passes_give_on_the_demo_segments() {
        for (n, bytes) in DEMO.iter().enumerate() {
            let analysis = analyze_segment(bytes).unwrap();
            assert!(!analysis.keyframes.is_empty() && analysis.leading_psi > 0, "demo {n}");
            assert_one_pass_is_three(&format!("demo {n}"), bytes);
        }
    }

    #[test]
    fn one_pass_gives_what_the_three_passes_give_on_generated_segments() {
        let base = Spec::default();
        let specs = [
            base,
            Spec {
                random_access: false,
                ..base
            },
            Spec {
                video: Some(0x24),
                random_access: false,
                ..base
            },
            Spec { video: None, ..base },
            Spec {
                audio: false,
                sdt: false,
                ..base
            },
            Spec {
                start: crate::time::PTS_WRAP - 50_000,
                ..base
            },
        ];
        for spec in specs {
            let bytes = segment(&spec);
            let analysis = analyze_segment(&bytes).unwrap();
            assert_eq!(analysis.info.start_pts, spec.start, "{spec:?}");
            assert_eq!(
                analysis.leading_psi,
                if spec.sdt { 3 * 188 } else { 2 * 188 },
                "{spec:?}"
            );
            if spec.video.is_some() {
                // Keyframes at frames 0, 12, 24, 36 and 48; the one at 24 has its slice past
                // the bytes searched, so only the random-access flag finds it.
                let expected = if spec.random_access { 5 } else { 4 };
                assert_eq!(analysis.keyframes.len(), expected, "{spec:?}");
                assert_eq!(analysis.keyframes[0].offset, 0);
            }
            assert_one_pass_is_three(&format!("{spec:?}"), &bytes);
            // Cut anywhere (mid-packet too) and with bytes broken near the start.
            for cut in (0..bytes.len()).step_by(997) {
                assert_one_pass_is_three(&format!("{spec:?} cut at {cut}"), &bytes[..cut]);
            }
            for at in 0..3 * 188 {
                let mut broken = bytes.clone();
                broken[at] ^= 0x5a;
                assert_one_pass_is_three(&format!("{spec:?} byte {at} broken"), &broken);
            }
        }
    }
}
