//! `ContentProtection` descriptors of an encrypted AdaptationSet (ISO/IEC 23009-1
//! §5.8.4.1, ISO/IEC 23001-7 §11, DASH-IF IOP §7.7.2): the MP4 protection scheme with
//! `cenc:default_KID`, then one descriptor per DRM system with its `cenc:pssh`.

use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

/// How the AdaptationSets of a presentation are protected (one key for every track).
#[derive(Clone, Debug, PartialEq)]
pub struct ContentProtection {
    /// `cenc` or `cbcs`.
    pub scheme: &'static str,
    /// The KID as a UUID (`8-4-4-4-12`).
    pub default_kid: String,
    /// Each DRM system's id (UUID) and its `pssh` box in base64, if the provider gave one.
    pub systems: Vec<(String, Option<String>)>,
}

pub(super) fn write(w: &mut Writer<Vec<u8>>, p: &ContentProtection) {
    let mut mp4 = BytesStart::new("ContentProtection");
    mp4.push_attribute(("schemeIdUri", "urn:mpeg:dash:mp4protection:2011"));
    mp4.push_attribute(("value", p.scheme));
    mp4.push_attribute(("cenc:default_KID", p.default_kid.as_str()));
    let _ = w.write_event(Event::Empty(mp4));
    for (system, pssh) in &p.systems {
        let mut element = BytesStart::new("ContentProtection");
        let scheme = format!("urn:uuid:{system}");
        element.push_attribute(("schemeIdUri", scheme.as_str()));
        element.push_attribute(("cenc:default_KID", p.default_kid.as_str()));
        let Some(pssh) = pssh else {
            let _ = w.write_event(Event::Empty(element));
            continue;
        };
        let _ = w.write_event(Event::Start(element));
        let _ = w.write_event(Event::Start(BytesStart::new("cenc:pssh")));
        let _ = w.write_event(Event::Text(BytesText::new(pssh)));
        let _ = w.write_event(Event::End(BytesEnd::new("cenc:pssh")));
        let _ = w.write_event(Event::End(BytesEnd::new("ContentProtection")));
    }
}
