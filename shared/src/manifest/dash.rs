//! Live DASH MPD writer (ISO/IEC 23009-1, isoff-live profile): one Period, one video and
//! one audio AdaptationSet of CMAF segments, SegmentTemplate with a SegmentTimeline
//! (`$Number$` or `$Time$`) or with `@duration`, in FULL or COMPACT layout. Pure: records,
//! settings and `now` in, XML out. All MPD times use the 90 kHz timescale of the index.
//! Caption `Accessibility` descriptors in `captions`.

mod captions;
mod protection;

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
    /// Encrypted: the `ContentProtection` of every audio and video AdaptationSet.
    pub protection: Option<ContentProtection>,
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
pub fn mpd(p: &Presentation<'_>, adaptations: &[Adaptation<'_>]) -> String {
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
    let longest = adaptations
        .iter()
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

    let mut period = BytesStart::new("Period");
    period.push_attribute(("id", "0"));
    let layout = NumberLayout::of(pkg, adaptations);
    let period_start = duration(layout.period_start_ms);
    period.push_attribute(("start", period_start.as_str()));
    let _ = w.write_event(Event::Start(period));
    for (index, adaptation) in adaptations.iter().enumerate() {
        write_adaptation(&mut w, p, &layout, index, adaptation);
    }
    let _ = w.write_event(Event::End(BytesEnd::new("Period")));

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

fn write_adaptation(
    w: &mut Writer<Vec<u8>>,
    p: &Presentation<'_>,
    layout: &NumberLayout,
    index: usize,
    a: &Adaptation<'_>,
) {
    let Some(first) = a.representations.first() else { return };
    let compact = p.package.manifest_layout != ManifestLayout::Full;
    let mut set = BytesStart::new("AdaptationSet");
    let id = index.to_string();
    set.push_attribute(("id", id.as_str()));
    let (content, mime) = match a.content_type {
        ContentType::Video => ("video", "video/mp4"),
        ContentType::Audio => ("audio", "audio/mp4"),
        ContentType::Text => ("text", "application/mp4"),
    };
    set.push_attribute(("contentType", content));
    set.push_attribute(("mimeType", mime));
    set.push_attribute(("segmentAlignment", "true"));
    set.push_attribute(("startWithSAP", "1"));
    if a.content_type != ContentType::Video {
        set.push_attribute(("lang", a.lang.as_deref().unwrap_or("und")));
    }
    let max_width = a.representations.iter().filter_map(|r| r.resolution).map(|r| r.0).max();
    let max_height = a.representations.iter().filter_map(|r| r.resolution).map(|r| r.1).max();
    let (mw, mh) = (max_width.map(|v| v.to_string()), max_height.map(|v| v.to_string()));
    if let (Some(mw), Some(mh)) = (&mw, &mh) {
        set.push_attribute(("maxWidth", mw.as_str()));
        set.push_attribute(("maxHeight", mh.as_str()));
    }
    let _ = w.write_event(Event::Start(set));
    if let Some(protection) = p.protection.as_ref().filter(|_| a.content_type != ContentType::Text) {
        protection::write(w, protection);
    }
    for (scheme, value) in captions::accessibility(&a.captions) {
        let mut element = BytesStart::new("Accessibility");
        element.push_attribute(("schemeIdUri", scheme));
        element.push_attribute(("value", value.as_str()));
        let _ = w.write_event(Event::Empty(element));
    }
    if a.content_type != ContentType::Video {
        let value = match (a.content_type, a.main) {
            (ContentType::Text, _) => "subtitle",
            (_, true) => "main",
            (_, false) => "alternate",
        };
        let mut role = BytesStart::new("Role");
        role.push_attribute(("schemeIdUri", "urn:mpeg:dash:role:2011"));
        role.push_attribute(("value", value));
        let _ = w.write_event(Event::Empty(role));
    }
    if compact {
        // One timeline for every Representation: the one whose newest segment is oldest,
        // so it lists no segment that another Representation has not received yet (an
        // encoder uploads a ladder's renditions one after the other).
        let behind = a
            .representations
            .iter()
            .min_by_key(|r| r.segments.last().map(|s| s.start))
            .unwrap_or(first);
        write_template(w, p, layout, "$RepresentationID$", behind.segments);
    }
    for r in &a.representations {
        let mut rep = BytesStart::new("Representation");
        rep.push_attribute(("id", r.id.as_str()));
        let bandwidth = r.bandwidth.to_string();
        rep.push_attribute(("bandwidth", bandwidth.as_str()));
        rep.push_attribute(("codecs", r.codecs.as_str()));
        let (width, height) = r
            .resolution
            .map_or((String::new(), String::new()), |(w, h)| (w.to_string(), h.to_string()));
        if r.resolution.is_some() {
            rep.push_attribute(("width", width.as_str()));
            rep.push_attribute(("height", height.as_str()));
            rep.push_attribute(("sar", "1:1"));
        }
        let rate = r.frame_rate.map(frame_rate);
        if let Some(rate) = &rate {
            rep.push_attribute(("frameRate", rate.as_str()));
        }
        let channels = r.audio_channels.and_then(channel_configuration);
        if compact && channels.is_none() {
            let _ = w.write_event(Event::Empty(rep));
            continue;
        }
        let _ = w.write_event(Event::Start(rep));
        if let Some((scheme, value)) = &channels {
            let mut element = BytesStart::new("AudioChannelConfiguration");
            element.push_attribute(("schemeIdUri", *scheme));
            element.push_attribute(("value", value.as_str()));
            let _ = w.write_event(Event::Empty(element));
        }
        if !compact {
            write_template(w, p, layout, &r.id, r.segments);
        }
        let _ = w.write_event(Event::End(BytesEnd::new("Representation")));
    }
    let _ = w.write_event(Event::End(BytesEnd::new("AdaptationSet")));
}

/// `25`, `30000/1001` for NTSC rates (which HLS writes 29.97), else thousandths reduced.
fn frame_rate(fps: f64) -> String {
    let ntsc = (fps * 1.001).round();
    if (fps - fps.round()).abs() < 0.0005 {
        format!("{}", fps.round() as u64)
    } else if (fps - ntsc / 1.001).abs() < 0.001 {
        format!("{}/1001", ntsc as u64 * 1000)
    } else {
        let (mut a, mut b) = ((fps * 1000.0).round() as u64, 1000);
        let (n, d) = (a, b);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        format!("{}/{}", n / a.max(1), d / a.max(1))
    }
}

/// The MPEG CICP channel configuration scheme (ISO/IEC 23091-3), for AAC.
pub const CICP_CHANNELS: &str = "urn:mpeg:mpegB:cicp:ChannelConfiguration";
/// Dolby's channel configuration scheme for AC-3 and E-AC-3 (DASH-IF IOP §9.2.1.2).
pub const DOLBY_CHANNELS: &str = "tag:dolby.com,2014:dash:audio_channel_configuration:2011";

/// `AudioChannelConfiguration` scheme and value: AAC's channel configuration 1–7 is the
/// CICP value; AC-3's is the 16-bit channel map of ETSI TS 102 366 Table E.1.4 in four
/// hex digits (bit 15 down: L, C, R, Ls, Rs, Lc/Rc, Lrs/Rrs, Cs, …, LFE in bit 0).
fn channel_configuration(channels: AudioChannels) -> Option<(&'static str, String)> {
    match channels {
        AudioChannels::Aac { configuration } => (1..=7)
            .contains(&configuration)
            .then(|| (CICP_CHANNELS, configuration.to_string())),
        AudioChannels::Dolby { acmod, lfe } => {
            const L: u16 = 0x8000;
            const C: u16 = 0x4000;
            const R: u16 = 0x2000;
            const LS: u16 = 0x1000;
            const RS: u16 = 0x0800;
            const CS: u16 = 0x0100;
            // acmod (Table 4.3): 1+1, 1/0, 2/0, 3/0, 2/1, 3/1, 2/2, 3/2; one surround is Cs.
            let map = [
                L | R,
                C,
                L | R,
                L | C | R,
                L | R | CS,
                L | C | R | CS,
                L | R | LS | RS,
                L | C | R | LS | RS,
            ];
            let map = map[usize::from(acmod & 7)] | u16::from(lfe);
            Some((DOLBY_CHANNELS, format!("{map:04X}")))
        }
    }
}

fn write_template(
    w: &mut Writer<Vec<u8>>,
    p: &Presentation<'_>,
    layout: &NumberLayout,
    representation: &str,
    segments: &[OutputSegment],
) {
    let format = p.package.segment_template_format;
    let token = if format == SegmentTemplateFormat::TimeWithTimeline {
        "$Time$"
    } else {
        "$Number$"
    };
    let media = format!("{}_{representation}_{token}.mp4", p.prefix);
    let init = format!("{}_{representation}_init.mp4", p.prefix);
    let mut t = BytesStart::new("SegmentTemplate");
    t.push_attribute(("timescale", "90000"));
    t.push_attribute(("media", media.as_str()));
    t.push_attribute(("initialization", init.as_str()));
    let (start_number, dur);
    match format {
        SegmentTemplateFormat::NumberWithDuration => {
            start_number = layout.start_number.to_string();
            dur = layout.duration_ticks.to_string();
            t.push_attribute(("startNumber", start_number.as_str()));
            t.push_attribute(("duration", dur.as_str()));
            let _ = w.write_event(Event::Empty(t));
            return;
        }
        SegmentTemplateFormat::NumberWithTimeline => {
            start_number = segments.first().map_or(0, |s| s.sequence).to_string();
            t.push_attribute(("startNumber", start_number.as_str()));
        }
        SegmentTemplateFormat::TimeWithTimeline => {}
    }
    t.push_attribute(("presentationTimeOffset", "0"));
    let _ = w.write_event(Event::Start(t));
    let _ = w.write_event(Event::Start(BytesStart::new("SegmentTimeline")));
    let mut i = 0;
    while i < segments.len() {
        let s = &segments[i];
        let mut repeat = 0;
        while let Some(next) = segments.get(i + 1 + repeat) {
            let prev = &segments[i + repeat];
            if next.duration != s.duration || next.start.0 != prev.start.0 + prev.duration.0 {
                break;
            }
            repeat += 1;
        }
        let mut e = BytesStart::new("S");
        let (ts, ds, rs) = (s.start.0.to_string(), s.duration.0.to_string(), repeat.to_string());
        e.push_attribute(("t", ts.as_str()));
        e.push_attribute(("d", ds.as_str()));
        if repeat > 0 {
            e.push_attribute(("r", rs.as_str()));
        }
        let _ = w.write_event(Event::Empty(e));
        i += 1 + repeat;
    }
    let _ = w.write_event(Event::End(BytesEnd::new("SegmentTimeline")));
    let _ = w.write_event(Event::End(BytesEnd::new("SegmentTemplate")));
}

#[cfg(test)]
mod tests;
