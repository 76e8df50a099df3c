//! Unit tests of the DASH writer's value formats.

use super::*;

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
