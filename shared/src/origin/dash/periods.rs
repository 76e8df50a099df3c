//! The Periods of an encrypted DASH presentation with key rotation: one per key, each
//! with its `ContentProtection` (the key's `default_KID` and `pssh` boxes) and its own
//! init segments (`tenc` holds the default KID), named `….k{key period}.mp4` as CMAF HLS
//! names them.
//!
//! A Period starts where its first segment does, on every Representation: the output
//! segment of one sequence number belongs to the same Period on every rendition, the one
//! of the earliest key any rendition's segment of that number has (a segment may be
//! encrypted with an earlier period's key, never a later one's, so that choice can be
//! served). The windows are read far enough back that a Period's first segment is always
//! among them, so a Period keeps its start in every later MPD while any of its segments
//! is in the manifest window.

use crate::app::PlaybackServices;
use crate::keys::ContentKey;
use crate::live::timeline::{self, OutputSegment};
use crate::manifest::dash::{Adaptation, ContentType, Period};
use crate::model::OriginEndpoint;
use crate::origin::cenc::{dash_content_protection, CommonEncryption};
use crate::origin::protection::window_keys;
use crate::origin::reply::PlaybackError;
use crate::time::Ticks;
use std::collections::BTreeMap;

/// How much further back than the manifest window the windows of a rotating endpoint
/// are read: a key period and two segments, so that the first segment of the oldest
/// listed Period is among them.
pub(crate) fn read_back_seconds(rotation: u32, segment_duration_seconds: u32) -> u32 {
    rotation.saturating_add(2 * segment_duration_seconds)
}

/// The Periods of `adaptations` (whose windows reach [`read_back_seconds`] further back
/// than `window_seconds`), one per key, from the one whose key the manifest window's
/// first segment has.
pub(crate) async fn key_periods<'a>(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    encryption: &CommonEncryption<'_>,
    window_seconds: u32,
    adaptations: Vec<Adaptation<'a>>,
) -> Result<Vec<Period<'a>>, PlaybackError> {
    let text = |a: &Adaptation<'_>| a.content_type == ContentType::Text;
    let tracks = || adaptations.iter().filter(|a| !text(a)).flat_map(|a| &a.representations);
    let mut all: Vec<OutputSegment> = tracks().flat_map(|r| r.segments.iter().cloned()).collect();
    all.sort_by_key(|s| s.start);
    let keys = window_keys(app, endpoint, encryption.provider, encryption.rotation, &all).await?;
    let key_of = |s: &OutputSegment| &keys[&encryption.period_of(s.start)];
    // Each sequence number's key: the earliest any rendition's segment of it has (every
    // audio and video segment's number is in it).
    let mut chosen: BTreeMap<u64, &ContentKey> = BTreeMap::new();
    for s in &all {
        let key = key_of(s);
        let entry = chosen.entry(s.sequence).or_insert(key);
        if key.period < entry.period {
            *entry = key;
        }
    }
    let period_of = |s: &OutputSegment| chosen[&s.sequence].period;
    // The oldest listed Period: the key of the manifest window's first segment.
    let window = crate::time::Ticks::from_secs(u64::from(window_seconds));
    let oldest = tracks()
        .filter_map(|r| timeline::live_window(r.segments, window).first())
        .map(period_of)
        .min()
        .unwrap_or_default();
    // Each listed key period, where its first segment starts, and its key.
    let mut starts: BTreeMap<u64, (Ticks, &ContentKey)> = BTreeMap::new();
    for s in all.iter().filter(|s| period_of(s) >= oldest) {
        let key = chosen[&s.sequence];
        let entry = starts.entry(key.period).or_insert((s.start, key));
        entry.0 = entry.0.min(s.start);
    }
    let bounds: Vec<(u64, Ticks, &ContentKey)> = starts.iter().map(|(p, (t, k))| (*p, *t, *k)).collect();
    let mut periods = Vec::new();
    for (i, (key_period, start, key)) in bounds.iter().enumerate() {
        let end = bounds.get(i + 1).map(|b| b.1);
        let mut period_adaptations = Vec::new();
        for a in &adaptations {
            let mut a = a.clone();
            if text(&a) {
                // Subtitles follow the video a segment behind: a Period may have none yet.
                for r in &mut a.representations {
                    r.segments = contiguous(r.segments, |s| s.start >= *start && end.is_none_or(|end| s.start < end));
                }
                a.representations.retain(|r| !r.segments.is_empty());
                if a.representations.is_empty() {
                    continue;
                }
            } else {
                for r in &mut a.representations {
                    r.segments = contiguous(r.segments, |s| period_of(s) == *key_period);
                }
            }
            period_adaptations.push(a);
        }
        periods.push(Period {
            start: Some(*start),
            protection: Some(dash_content_protection(encryption.scheme, key)),
            file_suffix: format!(".k{key_period}"),
            adaptations: period_adaptations,
        });
    }
    // The newest Period is listed once every audio and video Representation has a segment
    // in it (an encoder uploads a ladder's renditions one after the other).
    while periods.len() > 1
        && periods.last().is_some_and(|p| {
            p.adaptations
                .iter()
                .filter(|a| !text(a))
                .any(|a| a.representations.iter().any(|r| r.segments.is_empty()))
        })
    {
        periods.pop();
    }
    Ok(periods)
}

/// The segments of `segments` (oldest first) for which `belongs` holds, which are one
/// run of them.
fn contiguous(segments: &[OutputSegment], belongs: impl Fn(&OutputSegment) -> bool) -> &[OutputSegment] {
    let Some(first) = segments.iter().position(&belongs) else {
        return &[];
    };
    let count = segments[first..].iter().take_while(|s| belongs(s)).count();
    &segments[first..first + count]
}
