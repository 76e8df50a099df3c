//! Unit tests of the DASH writer's value formats.

use super::adaptation::{channel_configuration, frame_rate};
use super::*;
use crate::live::timeline::OutputSegment;

#[test]
fn frame_rates_as_dash_writes_them() {
    assert_eq!(frame_rate(60.0), "60");
    assert_eq!(frame_rate(25.0), "25");
    // ISO/IEC 23009-1 FrameRateType: NTSC rates as exact fractions.
    assert_eq!(frame_rate(29.97), "30000/1001");
    assert_eq!(frame_rate(59.94), "60000/1001");
    assert_eq!(frame_rate(23.976), "24000/1001");
    assert_eq!(frame_rate(12.5), "25/2");
}

#[test]
fn channel_configurations_follow_the_schemes() {
    let aac = |configuration| channel_configuration(AudioChannels::Aac { configuration });
    assert_eq!(aac(2), Some((CICP_CHANNELS, "2".to_owned())));
    assert_eq!(aac(6), Some((CICP_CHANNELS, "6".to_owned())));
    assert_eq!(aac(0), None, "configuration 0 defers to a program config element");
    // Table E.1.4 bits: L C R Ls Rs and LFE are F801 (5.1), L R A000, C alone 4000.
    let dolby = |acmod, lfe| channel_configuration(AudioChannels::Dolby { acmod, lfe }).unwrap();
    assert_eq!(dolby(7, true), (DOLBY_CHANNELS, "F801".to_owned()));
    assert_eq!(dolby(2, false), (DOLBY_CHANNELS, "A000".to_owned()));
    assert_eq!(dolby(1, false), (DOLBY_CHANNELS, "4000".to_owned()));
    assert_eq!(dolby(6, false), (DOLBY_CHANNELS, "B800".to_owned()));
}

fn segment(sequence: u64, start: u64) -> OutputSegment {
    OutputSegment {
        sequence,
        start: Ticks(start),
        duration: Ticks(180_000),
        program_date_time: UnixMillis(0),
        starts_with_keyframe: true,
        size: 1,
        discontinuity: false,
        discontinuity_sequence: 0,
        iframes: Vec::new(),
        keyframes_before: 0,
    }
}

#[test]
fn periods_start_where_their_first_segment_does_and_keep_segment_names() {
    let package: DashPackage = serde_json::from_value(serde_json::json!({})).unwrap();
    let segments: Vec<OutputSegment> = (0..4).map(|n| segment(10 + n, 126_001 + n * 180_000)).collect();
    let adaptation = |segments| Adaptation {
        content_type: ContentType::Video,
        representations: vec![Representation {
            id: "video_a".into(),
            bandwidth: 1000,
            codecs: "avc1.64001f".into(),
            resolution: Some((640, 360)),
            frame_rate: Some(25.0),
            audio_channels: None,
            segments,
        }],
        lang: None,
        main: true,
        captions: Vec::new(),
    };
    let protection = |kid: &str| ContentProtection {
        scheme: "cenc",
        default_kid: kid.into(),
        systems: Vec::new(),
    };
    let periods = [
        Period {
            start: Some(segments[0].start),
            protection: Some(protection("k1")),
            file_suffix: ".k1".into(),
            adaptations: vec![adaptation(&segments[..2])],
        },
        Period {
            start: Some(segments[2].start),
            protection: Some(protection("k2")),
            file_suffix: ".k2".into(),
            adaptations: vec![adaptation(&segments[2..])],
        },
    ];
    let presentation = Presentation {
        package: &package,
        prefix: "live",
        availability_start: UnixMillis(0),
        now: UnixMillis(1000),
        default_utc_uri: "http://x/utc".into(),
        ended: false,
    };
    let mpd = mpd(&presentation, &periods);
    // ISO/IEC 23009-1 §5.3.2: Period@start on the MPD timeline (media time zero at
    // availabilityStartTime here); §5.3.9.2: presentationTimeOffset maps a segment's
    // media time to the Period, so a segment's presentation time is its media time.
    // 126001 / 90000 s = 1.400011 s; 486001 / 90000 s = 5.400011 s.
    assert!(mpd.contains(r#"<Period id="126001" start="PT1.400011S">"#), "{mpd}");
    assert!(mpd.contains(r#"<Period id="486001" start="PT5.400011S">"#), "{mpd}");
    assert!(mpd.contains(r#"presentationTimeOffset="126001""#), "{mpd}");
    assert!(mpd.contains(r#"presentationTimeOffset="486001""#), "{mpd}");
    // Numbers continue across Periods: the first segment of each Period is its startNumber.
    assert!(
        mpd.contains(r#"startNumber="10""#) && mpd.contains(r#"startNumber="12""#),
        "{mpd}"
    );
    assert!(mpd.contains(r#"media="live_video_a_$Number$.k2.mp4" initialization="live_video_a_init.k2.mp4""#));
    assert_eq!(mpd.matches(r#"cenc:default_KID="k1""#).count(), 1, "{mpd}");
    assert_eq!(mpd.matches("<S ").count(), 2, "one S with r=1 per Period: {mpd}");
    assert_eq!(seconds(Ticks(90_000 * 60)), "PT60S");
}
