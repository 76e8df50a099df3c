//! Which renditions and tracks an fMP4 endpoint offers (`streamSelection`, the audio
//! tracks), and how its file names name them.

use super::reply::*;
use crate::catalog::StreamDocs;
use crate::model::{OriginEndpoint, Rendition, StreamOrder, StreamSelection};
use crate::time::Ticks;

/// A video or audio track of one rendition.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackRef {
    pub audio: bool,
    pub rendition: String,
}

impl TrackRef {
    /// `video_{rendition}` or `audio_{rendition}`.
    pub fn name(&self) -> String {
        format!("{}_{}", if self.audio { "audio" } else { "video" }, self.rendition)
    }

    pub(crate) fn parse(name: &str) -> Option<TrackRef> {
        let (kind, rendition) = name.split_once('_')?;
        let audio = match kind {
            "video" => false,
            "audio" => true,
            _ => return None,
        };
        (!rendition.is_empty()).then(|| TrackRef {
            audio,
            rendition: rendition.to_owned(),
        })
    }
}

/// What an fMP4 segment file name asks for.
#[derive(Debug, PartialEq)]
pub enum SegmentFile {
    Init(TrackRef),
    /// A media segment by number or start time (which one depends on the package).
    Media(TrackRef, u64),
}

/// Parses `{prefix}_{track}_{init|n}.mp4`.
pub fn parse_segment_file(prefix: &str, file: &str) -> Option<SegmentFile> {
    let stem = file.strip_suffix(".mp4")?.strip_prefix(prefix)?.strip_prefix('_')?;
    let (track, last) = stem.rsplit_once('_')?;
    let track = TrackRef::parse(track)?;
    if last == "init" {
        return Some(SegmentFile::Init(track));
    }
    Some(SegmentFile::Media(track, last.parse().ok()?))
}

/// A keyframe fragment of a CMAF I-frame playlist: the keyframe at `time` of the output
/// segment starting at `segment`.
#[derive(Debug, PartialEq)]
pub struct IFrameFile {
    pub track: TrackRef,
    pub segment: Ticks,
    pub time: Ticks,
}

/// Parses `{prefix}_video_{rendition}_{segment}_iframe{time}.mp4`.
pub fn parse_iframe_file(prefix: &str, file: &str) -> Option<IFrameFile> {
    let stem = file.strip_suffix(".mp4")?.strip_prefix(prefix)?.strip_prefix('_')?;
    let (rest, last) = stem.rsplit_once('_')?;
    let time = last.strip_prefix("iframe")?.parse().ok()?;
    let (track, segment) = rest.rsplit_once('_')?;
    let track = TrackRef::parse(track).filter(|t| !t.audio)?;
    Some(IFrameFile {
        track,
        segment: Ticks(segment.parse().ok()?),
        time: Ticks(time),
    })
}

pub(crate) use crate::media::codec::is_video_codec;

/// Renditions filtered and ordered by `streamSelection`, which looks at video bit rates
/// only: audio-only renditions always stay, after the video ones (an audio-only channel
/// keeps all of them), unless the selection leaves no video rendition of a video channel.
pub fn select<'a>(renditions: Vec<&'a Rendition>, selection: Option<&StreamSelection>) -> Vec<&'a Rendition> {
    let Some(selection) = selection else { return renditions };
    let rate = |r: &Rendition| r.bandwidth();
    let (video, audio_only): (Vec<&Rendition>, Vec<&Rendition>) = renditions
        .into_iter()
        .partition(|r| video_codec(r).is_some() || r.codecs.is_empty());
    let has_video = !video.is_empty();
    let mut out: Vec<&Rendition> = video
        .into_iter()
        .filter(|r| selection.min_video_bits_per_second.is_none_or(|min| rate(r) >= min))
        .filter(|r| selection.max_video_bits_per_second.is_none_or(|max| rate(r) <= max))
        .collect();
    match selection.stream_order {
        StreamOrder::Original => {}
        StreamOrder::VideoBitrateAscending => out.sort_by_key(|r| rate(r)),
        StreamOrder::VideoBitrateDescending => out.sort_by_key(|r| std::cmp::Reverse(rate(r))),
    }
    if has_video && out.is_empty() {
        return out;
    }
    out.extend(audio_only);
    out
}

/// The audio tracks offered: the first rendition carrying each distinct audio codec.
pub(crate) fn audio_sources<'a>(renditions: &[&'a Rendition]) -> Vec<(&'a Rendition, String)> {
    let mut out: Vec<(&Rendition, String)> = Vec::new();
    for r in renditions {
        if let Some(codec) = r.codecs.iter().find(|c| !is_video_codec(c)) {
            if !out.iter().any(|(_, c)| c == codec) {
                out.push((r, codec.clone()));
            }
        }
    }
    out
}

pub(crate) fn video_codec(r: &Rendition) -> Option<&String> {
    r.codecs.iter().find(|c| is_video_codec(c))
}

pub(crate) fn ordered_selection<'a>(
    docs: &'a StreamDocs,
    channel: &str,
    selection: Option<&StreamSelection>,
) -> Result<Vec<&'a Rendition>, PlaybackError> {
    let renditions = select(docs.ordered_renditions(), selection);
    if renditions.is_empty() {
        return Err(PlaybackError::not_found(format!(
            "channel {channel:?} has no rendition to offer yet (none ingested, or none inside streamSelection)"
        )));
    }
    Ok(renditions)
}

pub(crate) fn not_a_file(endpoint: &OriginEndpoint, file: &str) -> PlaybackError {
    PlaybackError::not_found(format!("{file:?} is not a file of origin endpoint {:?}", endpoint.id))
}

pub(crate) fn rendition_of<'a>(
    docs: &'a StreamDocs,
    endpoint: &OriginEndpoint,
    id: &str,
) -> Result<&'a Rendition, PlaybackError> {
    docs.renditions
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| PlaybackError::not_found(format!("channel {:?} has no rendition {id:?}", endpoint.channel_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(renditions: &[&Rendition]) -> Vec<String> {
        renditions.iter().map(|r| r.id.clone()).collect()
    }

    #[test]
    fn stream_selection_filters_video_and_keeps_audio_only_renditions() {
        let (hd, sd) = (
            Rendition::example("hd", &["avc1.64001f"], 3_000_000),
            Rendition::example("sd", &["avc1.4d401e"], 800_000),
        );
        let (en, fr) = (
            Rendition::example("en", &["mp4a.40.2"], 70_000),
            Rendition::example("fr", &["mp4a.40.2"], 70_000),
        );
        let at_least = |min| StreamSelection {
            min_video_bits_per_second: Some(min),
            max_video_bits_per_second: Some(2_147_483_647),
            stream_order: StreamOrder::VideoBitrateAscending,
        };
        let ladder = vec![&en, &hd, &fr, &sd];
        // Audio-only renditions are not video: a minimum above their rate keeps them.
        assert_eq!(
            ids(&select(ladder.clone(), Some(&at_least(100_000)))),
            ["sd", "hd", "en", "fr"]
        );
        assert_eq!(
            ids(&select(ladder.clone(), Some(&at_least(1_000_000)))),
            ["hd", "en", "fr"]
        );
        // No video left of a video channel: nothing to offer, not an audio-only ladder.
        assert!(select(ladder, Some(&at_least(5_000_000))).is_empty());
        // An audio-only channel keeps its audio whatever the selection (MediaPackage's
        // console sets one on every endpoint).
        assert_eq!(ids(&select(vec![&en, &fr], Some(&at_least(0)))), ["en", "fr"]);
    }

    #[test]
    fn segment_file_names_parse() {
        assert_eq!(
            parse_segment_file("live", "live_video_channel_1_init.mp4"),
            Some(SegmentFile::Init(TrackRef {
                audio: false,
                rendition: "channel_1".into()
            }))
        );
        assert_eq!(
            parse_segment_file("live", "live_audio_360p_900000.mp4"),
            Some(SegmentFile::Media(
                TrackRef {
                    audio: true,
                    rendition: "360p".into()
                },
                900_000
            ))
        );
        assert_eq!(
            parse_iframe_file("live", "live_video_channel_1_900000_iframe903600.mp4"),
            Some(IFrameFile {
                track: TrackRef {
                    audio: false,
                    rendition: "channel_1".into()
                },
                segment: Ticks(900_000),
                time: Ticks(903_600),
            })
        );
        assert_eq!(parse_segment_file("live", "live_video_360p_0_iframe0.mp4"), None);
        assert_eq!(parse_iframe_file("live", "live_audio_360p_0_iframe0.mp4"), None);
        assert_eq!(parse_iframe_file("live", "live_video_360p_900000.mp4"), None);
        assert_eq!(parse_segment_file("live", "live_text_360p_1.mp4"), None);
        assert_eq!(parse_segment_file("live", "other_video_360p_1.mp4"), None);
        assert_eq!(parse_segment_file("live", "live_video_360p_x.mp4"), None);
    }
}
