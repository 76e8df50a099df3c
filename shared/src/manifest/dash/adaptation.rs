//! The AdaptationSets of a Period: their descriptors, Representations and
//! SegmentTemplates (`$Number$` or `$Time$` with a SegmentTimeline, or `@duration`).

use super::*;

pub(super) fn write(
    w: &mut Writer<Vec<u8>>,
    p: &Presentation<'_>,
    period: &Period<'_>,
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
    if let Some(protection) = period
        .protection
        .as_ref()
        .filter(|_| a.content_type != ContentType::Text)
    {
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
        write_template(w, p, period, layout, "$RepresentationID$", behind.segments);
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
            write_template(w, p, period, layout, &r.id, r.segments);
        }
        let _ = w.write_event(Event::End(BytesEnd::new("Representation")));
    }
    let _ = w.write_event(Event::End(BytesEnd::new("AdaptationSet")));
}

/// `25`, `30000/1001` for NTSC rates (which HLS writes 29.97), else thousandths reduced.
pub(super) fn frame_rate(fps: f64) -> String {
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
pub(super) fn channel_configuration(channels: AudioChannels) -> Option<(&'static str, String)> {
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
    period: &Period<'_>,
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
    let suffix = &period.file_suffix;
    let media = format!("{}_{representation}_{token}{suffix}.mp4", p.prefix);
    let init = format!("{}_{representation}_init{suffix}.mp4", p.prefix);
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
    // A Period of several starts at its first segment's media time; the single one at 0.
    let offset = period.start.map_or(0, |t| t.0).to_string();
    t.push_attribute(("presentationTimeOffset", offset.as_str()));
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
