//! Live DASH MPD writer (ISO/IEC 23009-1, isoff-live profile): one Period, or one per key
//! period with key rotation; AdaptationSets of CMAF segments with a SegmentTemplate
//! (`adaptation`), in FULL or COMPACT layout. Pure: records, settings and `now` in, XML
//! out. All MPD times use the 90 kHz timescale of the index. Caption `Accessibility`
//! descriptors in `captions`.

mod adaptation;
mod captions;
mod protection;

pub use adaptation::{CICP_CHANNELS, DOLBY_CHANNELS};
pub use protection::ContentProtection;

use crate::live::timeline::OutputSegment;
use crate::model::{
    AudioChannels, CaptionChannel, DashPackage, DashProfile, ManifestLayout, SegmentTemplateFormat, UtcTiming,
};
use crate::time::{Ticks, UnixMillis, TICKS_PER_SECOND};
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, Event};
use quick_xml::Writer;

/// Kind of an adaptation set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentType {
    Video,
    Audio,
    /// Subtitles (WebVTT in ISO-BMFF, `wvtt`).
    Text,
}

/// One Representation: a track of one rendition, with its segments (oldest first).
#[derive(Clone)]
pub struct Representation<'a> {
    /// Used in URLs (`$RepresentationID$`): `video_360p`, `audio_360p`.
    pub id: String,
    pub bandwidth: u64,
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    /// Written as `AudioChannelConfiguration` (audio).
    pub audio_channels: Option<AudioChannels>,
    pub segments: &'a [OutputSegment],
}

/// One AdaptationSet.
#[derive(Clone)]
pub struct Adaptation<'a> {
    pub content_type: ContentType,
    pub representations: Vec<Representation<'a>>,
    /// `@lang` (RFC 5646) of an audio or text set; `und` when unknown.
    pub lang: Option<String>,
    /// `Role` `main` (the default track) rather than `alternate`.
    pub main: bool,
    /// Caption channels every Representation's video carries, written as `Accessibility`.
    pub captions: Vec<CaptionChannel>,
}

/// Everything the MPD says besides the tracks.
pub struct Presentation<'a> {
    pub package: &'a DashPackage,
    /// File name prefix of segments: `{prefix}_{representation}_{n}.mp4`.
    pub prefix: &'a str,
    /// Wall-clock time of media time zero (constant for the life of the stream).
    pub availability_start: UnixMillis,
    pub now: UnixMillis,
    /// Default `UTCTiming@value` when the package gives no `utcTimingUri`.
    pub default_utc_uri: String,
    /// The stream has ended: a static presentation.
    pub ended: bool,
}

/// One Period and its AdaptationSets (each Representation with the segments of this
/// Period).
pub struct Period<'a> {
    /// Where it starts in media time (`Period@start` on the MPD timeline, whose zero is
    /// media time zero, and every SegmentTemplate's `presentationTimeOffset`, so segment
    /// times and numbers stay what they are in a single Period). `None`: the single
    /// Period of the presentation, from zero (or from the `NUMBER_WITH_DURATION` origin).
    pub start: Option<Ticks>,
    /// Encrypted: the `ContentProtection` of its audio and video AdaptationSets.
    pub protection: Option<ContentProtection>,
    /// What its segment and init segment names end in before `.mp4` (`.k{key period}`
    /// with key rotation, else nothing).
    pub file_suffix: String,
    pub adaptations: Vec<Adaptation<'a>>,
}

/// ISO 8601 duration with millisecond precision: `PT2.5S`.
pub fn duration(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("PT{}S", ms / 1000)
    } else {
        format!("PT{}.{:03}S", ms / 1000, ms % 1000)
    }
}

fn iso(t: UnixMillis) -> String {
    t.to_datetime().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Writes the MPD.
pub fn mpd(p: &Presentation<'_>, periods: &[Period<'_>]) -> String {
    let pkg = p.package;
    let mut w = Writer::new_with_indent(Vec::with_capacity(8192), b' ', 2);
    let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let mut profiles = vec!["urn:mpeg:dash:profile:isoff-live:2011"];
    match pkg.profile {
        DashProfile::Hbbtv15 => profiles.push("urn:hbbtv:dash:profile:isoff-live:2012"),
        DashProfile::DvbDash2014 => profiles.push("urn:dvb:dash:profile:dvb-dash:2014"),
        _ => {}
    }
    let profiles = profiles.join(",");
    let mut root = BytesStart::new("MPD");
    root.push_attribute(("xmlns", "urn:mpeg:dash:schema:mpd:2011"));
    root.push_attribute(("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"));
    root.push_attribute(("xmlns:cenc", "urn:mpeg:cenc:2013"));
    root.push_attribute(("profiles", profiles.as_str()));
    root.push_attribute(("type", if p.ended { "static" } else { "dynamic" }));
    let ast = iso(p.availability_start);
    let publish = iso(p.now);
    root.push_attribute(("availabilityStartTime", ast.as_str()));
    root.push_attribute(("publishTime", publish.as_str()));
    let min_buffer = duration(u64::from(pkg.min_buffer_time_seconds) * 1000);
    root.push_attribute(("minBufferTime", min_buffer.as_str()));
    // The longest segment listed, rounded up to the millisecond (ISO/IEC 23009-1 §5.3.1.2).
    let longest = periods
        .iter()
        .flat_map(|period| &period.adaptations)
        .flat_map(|a| &a.representations)
        .flat_map(|r| r.segments)
        .map(|s| s.duration.0.div_ceil(TICKS_PER_SECOND / 1000))
        .max()
        .map(duration);
    if let Some(longest) = &longest {
        root.push_attribute(("maxSegmentDuration", longest.as_str()));
    }
    let (update, depth, delay) = (
        duration(u64::from(pkg.min_update_period_seconds) * 1000),
        duration(u64::from(pkg.manifest_window_seconds) * 1000),
        duration(u64::from(pkg.suggested_presentation_delay_seconds) * 1000),
    );
    if !p.ended {
        root.push_attribute(("minimumUpdatePeriod", update.as_str()));
        root.push_attribute(("timeShiftBufferDepth", depth.as_str()));
        root.push_attribute(("suggestedPresentationDelay", delay.as_str()));
    }
    let _ = w.write_event(Event::Start(root));

    for period in periods {
        write_period(&mut w, p, period);
    }

    if pkg.utc_timing != UtcTiming::None {
        let scheme = match pkg.utc_timing {
            UtcTiming::HttpHead => "urn:mpeg:dash:utc:http-head:2014",
            UtcTiming::HttpXsdate => "urn:mpeg:dash:utc:http-xsdate:2014",
            _ => "urn:mpeg:dash:utc:http-iso:2014",
        };
        let value = pkg.utc_timing_uri.clone().unwrap_or_else(|| p.default_utc_uri.clone());
        let mut utc = BytesStart::new("UTCTiming");
        utc.push_attribute(("schemeIdUri", scheme));
        utc.push_attribute(("value", value.as_str()));
        let _ = w.write_event(Event::Empty(utc));
    }
    let _ = w.write_event(Event::End(BytesEnd::new("MPD")));
    let mut out = String::from_utf8(w.into_inner()).unwrap_or_default();
    out.push('\n');
    out
}

fn write_period(w: &mut Writer<Vec<u8>>, p: &Presentation<'_>, period: &Period<'_>) {
    let layout = NumberLayout::of(p.package, &period.adaptations);
    let mut element = BytesStart::new("Period");
    let (id, start) = match period.start {
        None => ("0".to_owned(), duration(layout.period_start_ms)),
        // The id is its start: unique, and the same in every later MPD.
        Some(start) => (start.0.to_string(), seconds(start)),
    };
    element.push_attribute(("id", id.as_str()));
    element.push_attribute(("start", start.as_str()));
    let _ = w.write_event(Event::Start(element));
    for (index, adaptation) in period.adaptations.iter().enumerate() {
        adaptation::write(w, p, period, &layout, index, adaptation);
    }
    let _ = w.write_event(Event::End(BytesEnd::new("Period")));
}

/// A media time as an ISO 8601 duration to the microsecond (a Period starts where its
/// first segment does, which is rarely a whole millisecond).
fn seconds(t: Ticks) -> String {
    let micros = (u128::from(t.0) * 1_000_000 / u128::from(TICKS_PER_SECOND)) as u64;
    let (whole, fraction) = (micros / 1_000_000, micros % 1_000_000);
    if fraction == 0 {
        format!("PT{whole}S")
    } else {
        let digits = format!("{fraction:06}");
        format!("PT{whole}.{}S", digits.trim_end_matches('0'))
    }
}

/// For `NUMBER_WITH_DURATION`: where segment numbers start. The player finds segment `n`
/// at `Period@start + (n - startNumber) × duration` on the MPD timeline and its media at
/// `presentationTimeOffset + (n - startNumber) × duration`. The Period starts where segment
/// `startNumber`'s media does, so every number sits where its media is, as the
/// SegmentTimeline formats put it (as long as segments last the nominal duration); and the
/// segments of this format are served with their media times moved back by that start
/// ([`NumberOrigin::media_start`]), so `presentationTimeOffset` is 0 — ffmpeg's DASH reader
/// loops on a non-zero one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NumberOrigin {
    pub start_number: u64,
    /// Media time (90 kHz) of segment `start_number`: `Period@start`, and what the
    /// segments' decode times are moved back by.
    pub media_start: Ticks,
}

/// The number origin of a rendition whose newest output segment is `newest`, for segments
/// of `duration_ticks`: the lowest number that keeps the Period start at or after zero.
pub fn number_origin(newest: &OutputSegment, duration_ticks: u64) -> NumberOrigin {
    // Segment n's media starts at newest.start - (newest.sequence - n) × duration.
    let whole = newest.start.0 / duration_ticks;
    let start_number = newest.sequence.saturating_sub(whole);
    NumberOrigin {
        start_number,
        media_start: Ticks(newest.start.0 - (newest.sequence - start_number) * duration_ticks),
    }
}

struct NumberLayout {
    period_start_ms: u64,
    start_number: u64,
    duration_ticks: u64,
}

impl NumberLayout {
    fn of(pkg: &DashPackage, adaptations: &[Adaptation<'_>]) -> NumberLayout {
        let duration_ticks = u64::from(pkg.segment_duration_seconds) * TICKS_PER_SECOND;
        let newest = adaptations
            .iter()
            .flat_map(|a| a.representations.iter())
            .filter_map(|r| r.segments.last())
            .max_by_key(|s| s.sequence);
        let (Some(newest), SegmentTemplateFormat::NumberWithDuration) = (newest, pkg.segment_template_format) else {
            return NumberLayout {
                period_start_ms: 0,
                start_number: 0,
                duration_ticks,
            };
        };
        let origin = number_origin(newest, duration_ticks);
        NumberLayout {
            // Rounded up, so that no segment is announced before its media has ended.
            period_start_ms: origin.media_start.0.div_ceil(TICKS_PER_SECOND / 1000),
            start_number: origin.start_number,
            duration_ticks,
        }
    }
}

#[cfg(test)]
mod tests;
