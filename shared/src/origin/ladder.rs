//! An endpoint's ladder as HLS offers it: the audio tracks (an encoder's audio-only
//! renditions, or the audio muxed with its video), their rendition groups, and the video
//! variants that play with each group.

use super::select::{audio_sources, video_codec};
use crate::catalog::StreamDocs;
use crate::manifest::hls::{AudioRendition, Variant};
use crate::model::Rendition;

/// One audio track an endpoint offers.
#[derive(Clone, Debug)]
pub(crate) struct AudioTrack<'a> {
    /// The rendition carrying it: an audio-only rendition, or one muxed with video.
    pub rendition: &'a Rendition,
    pub codec: String,
    /// An audio-only rendition (in HLS TS, its own media playlist in an audio group).
    pub separate: bool,
    /// RFC 5646 language tag, as the encoder declared it.
    pub language: Option<String>,
    pub name: String,
    pub default: bool,
    /// `CHANNELS`: as the encoder declared it, else as measured (LFE included).
    pub channels: Option<u8>,
}

/// The audio tracks offered. When the ladder has audio-only renditions (an encoder's
/// audio group: one per language or codec), those, described as the encoder's
/// multivariant playlist describes them; otherwise the first rendition carrying each
/// distinct audio codec muxed with its video.
pub(crate) fn audio_tracks<'a>(docs: &StreamDocs, renditions: &[&'a Rendition]) -> Vec<AudioTrack<'a>> {
    let audio_only: Vec<&Rendition> = renditions
        .iter()
        .copied()
        .filter(|r| video_codec(r).is_none() && !r.codecs.is_empty())
        .collect();
    if audio_only.is_empty() {
        return audio_sources(renditions)
            .into_iter()
            .enumerate()
            .map(|(i, (r, codec))| AudioTrack {
                rendition: r,
                name: format!("{codec} ({})", r.id),
                codec,
                separate: false,
                language: None,
                default: i == 0,
                channels: r.audio_channels.and_then(|c| c.count()),
            })
            .collect();
    }
    let mut tracks: Vec<AudioTrack> = audio_only
        .into_iter()
        .map(|r| {
            let declared = docs.declared_audio(&r.id);
            AudioTrack {
                rendition: r,
                codec: r.codecs[0].clone(),
                separate: true,
                language: declared.and_then(|a| a.language.clone()),
                name: declared.map_or_else(|| r.id.clone(), |a| a.name.clone()),
                default: declared.is_some_and(|a| a.default),
                channels: declared
                    .and_then(|a| a.channels.as_deref()?.split('/').next()?.parse().ok())
                    .or_else(|| r.audio_channels.and_then(|c| c.count())),
            }
        })
        .collect();
    // The encoder's order, then one default (the first) when it named none.
    let order = |t: &AudioTrack| {
        docs.master.as_ref().map_or(usize::MAX, |m| {
            m.audio
                .iter()
                .position(|a| docs.declared_audio(&t.rendition.id) == Some(a))
                .unwrap_or(usize::MAX)
        })
    };
    tracks.sort_by_key(|t| order(t));
    if !tracks.iter().any(|t| t.default) {
        tracks[0].default = true;
    }
    tracks
}

/// Audio group ids for the codecs of `tracks`: `audio` when there is one codec, else
/// `audio-{codec}` per codec (a variant's `CODECS` names its group's codec).
pub(crate) fn audio_groups(tracks: &[AudioTrack<'_>]) -> Vec<(String, String)> {
    let mut codecs: Vec<&str> = Vec::new();
    for t in tracks {
        if !codecs.contains(&t.codec.as_str()) {
            codecs.push(&t.codec);
        }
    }
    let single = codecs.len() == 1;
    codecs
        .into_iter()
        .map(|c| {
            let id = if single {
                "audio".to_owned()
            } else {
                format!("audio-{c}")
            };
            (c.to_owned(), id)
        })
        .collect()
}

/// How an HLS package names and measures the entries of its multivariant playlist.
pub(crate) struct HlsNames<'f, 'a> {
    pub audio_uri: &'f dyn Fn(&AudioTrack<'a>) -> String,
    pub audio_bandwidth: &'f dyn Fn(&AudioTrack<'a>) -> u64,
    pub video_uri: &'f dyn Fn(&'a Rendition) -> String,
    /// `CODECS` of a video rendition before its group's audio codec is added.
    pub video_codecs: &'f dyn Fn(&'a Rendition) -> Vec<String>,
    pub video_bandwidth: &'f dyn Fn(&'a Rendition) -> u64,
}

/// The audio rendition groups and the variants of `video`: each video rendition once per
/// group, its `CODECS` and `BANDWIDTH` including the group's audio (the highest rate in
/// it). Without audio tracks, the video renditions as they are.
pub(crate) fn hls_entries<'a>(
    video: &[&'a Rendition],
    tracks: &[AudioTrack<'a>],
    names: &HlsNames<'_, 'a>,
) -> (Vec<Variant<'a>>, Vec<AudioRendition>) {
    let mut renditions = Vec::new();
    let mut variants = Vec::new();
    let groups = audio_groups(tracks);
    for (codec, group) in &groups {
        let members: Vec<&AudioTrack> = tracks.iter().filter(|t| &t.codec == codec).collect();
        let default = members.iter().position(|t| t.default).unwrap_or(0);
        for (i, t) in members.iter().enumerate() {
            renditions.push(AudioRendition {
                group: group.clone(),
                name: t.name.clone(),
                uri: (names.audio_uri)(t),
                default: i == default,
                language: t.language.clone(),
                channels: t.channels,
            });
        }
        let peak = members.iter().map(|t| (names.audio_bandwidth)(t)).max().unwrap_or(0);
        for r in video {
            let mut codecs = (names.video_codecs)(r);
            if !codecs.contains(codec) {
                codecs.push(codec.clone());
            }
            variants.push(Variant {
                rendition: r,
                uri: (names.video_uri)(r),
                codecs: Some(codecs),
                bandwidth: Some((names.video_bandwidth)(r) + peak),
                audio_group: Some(group.clone()),
            });
        }
    }
    if groups.is_empty() {
        variants = video
            .iter()
            .map(|r| Variant {
                rendition: r,
                uri: (names.video_uri)(r),
                codecs: Some((names.video_codecs)(r)),
                bandwidth: Some((names.video_bandwidth)(r)),
                audio_group: None,
            })
            .collect();
    }
    (variants, renditions)
}

/// The `EXT-X-I-FRAME-STREAM-INF` entries of an endpoint that asks for them
/// (`includeIframeOnlyStream`): one per video rendition that has keyframes, named by `uri`.
pub(crate) fn iframe_variants<'a>(
    video: &[&'a Rendition],
    included: bool,
    uri: impl Fn(&Rendition) -> String,
) -> Vec<Variant<'a>> {
    video
        .iter()
        .filter(|r| included && r.iframe_bandwidth() > 0)
        .map(|r| Variant {
            rendition: r,
            uri: uri(r),
            codecs: None,
            bandwidth: None,
            audio_group: None,
        })
        .collect()
}

/// Renditions with video, in order.
pub(crate) fn video_renditions<'a>(renditions: &[&'a Rendition]) -> Vec<&'a Rendition> {
    renditions
        .iter()
        .copied()
        .filter(|r| video_codec(r).is_some())
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::{IngestAudio, IngestMaster, IngestPlaylist};

    /// An ffmpeg `agroup` ladder: two video renditions, English (default) and French audio.
    pub(crate) fn ladder() -> StreamDocs {
        let audio = |path: &str, language: &str, default| IngestAudio {
            path: path.into(),
            language: Some(language.into()),
            name: format!("audio_{language}"),
            default,
            channels: Some("2".into()),
        };
        StreamDocs {
            renditions: vec![
                Rendition::example("360p", &["avc1.64001e"], 500_000),
                Rendition::example("180p", &["avc1.64000d"], 150_000),
                Rendition::example("audio_fr", &["mp4a.40.2"], 80_000),
                Rendition::example("audio_en", &["mp4a.40.2"], 70_000),
            ],
            master: Some(IngestMaster {
                variants: vec![("360p/index.m3u8".into(), 600_000), ("180p/index.m3u8".into(), 250_000)],
                audio: vec![audio("en/index.m3u8", "en", true), audio("fr/index.m3u8", "fr", false)],
                subtitles: Vec::new(),
            }),
            playlists: [("en/index.m3u8", "audio_en"), ("fr/index.m3u8", "audio_fr")]
                .iter()
                .map(|(path, id)| {
                    (
                        path.to_string(),
                        IngestPlaylist {
                            rendition: id.to_string(),
                        },
                    )
                })
                .collect(),
            anchor: None,
            subtitles: Vec::new(),
        }
    }

    #[test]
    fn audio_only_renditions_become_one_group_the_video_variants_play_with() {
        let docs = ladder();
        let renditions: Vec<&Rendition> = docs.renditions.iter().collect();
        let tracks = audio_tracks(&docs, &renditions);
        // The encoder's order and default, its languages and names.
        let described: Vec<(&str, Option<&str>, bool)> = tracks
            .iter()
            .map(|t| (t.name.as_str(), t.language.as_deref(), t.default))
            .collect();
        assert_eq!(
            described,
            [("audio_en", Some("en"), true), ("audio_fr", Some("fr"), false)]
        );
        assert!(tracks.iter().all(|t| t.separate && t.channels == Some(2)));
        let names = HlsNames {
            audio_uri: &|t: &AudioTrack| format!("{}.m3u8", t.rendition.id),
            audio_bandwidth: &|t: &AudioTrack| t.rendition.bandwidth(),
            video_uri: &|r: &Rendition| format!("{}.m3u8", r.id),
            video_codecs: &|r: &Rendition| r.codecs.clone(),
            video_bandwidth: &|r: &Rendition| r.bandwidth(),
        };
        let (variants, groups) = hls_entries(&video_renditions(&renditions), &tracks, &names);
        assert_eq!(groups.len(), 2);
        assert!(groups.iter().all(|g| g.group == "audio"));
        assert_eq!(groups.iter().filter(|g| g.default).count(), 1);
        let summary: Vec<(&str, String, Option<u64>, Option<&str>)> = variants
            .iter()
            .map(|v| {
                let codecs = v.codecs.clone().unwrap_or_default().join(",");
                (v.uri.as_str(), codecs, v.bandwidth, v.audio_group.as_deref())
            })
            .collect();
        // Each video rendition once, with the group's codec and its highest audio rate.
        assert_eq!(
            summary,
            [
                (
                    "360p.m3u8",
                    "avc1.64001e,mp4a.40.2".to_owned(),
                    Some(580_000),
                    Some("audio")
                ),
                (
                    "180p.m3u8",
                    "avc1.64000d,mp4a.40.2".to_owned(),
                    Some(230_000),
                    Some("audio")
                ),
            ]
        );
    }

    #[test]
    fn two_audio_codecs_make_two_groups_and_a_variant_per_group() {
        let mut docs = ladder();
        docs.renditions[2].codecs = vec!["ac-3".into()];
        let renditions: Vec<&Rendition> = docs.renditions.iter().collect();
        let tracks = audio_tracks(&docs, &renditions);
        let names = HlsNames {
            audio_uri: &|t: &AudioTrack| t.rendition.id.clone(),
            audio_bandwidth: &|_: &AudioTrack| 0,
            video_uri: &|r: &Rendition| r.id.clone(),
            video_codecs: &|r: &Rendition| r.codecs.clone(),
            video_bandwidth: &|r: &Rendition| r.bandwidth(),
        };
        let (variants, groups) = hls_entries(&video_renditions(&renditions), &tracks, &names);
        let mut ids: Vec<&str> = groups.iter().map(|g| g.group.as_str()).collect();
        ids.dedup();
        assert_eq!(ids, ["audio-mp4a.40.2", "audio-ac-3"]);
        // Each group has its default.
        assert!(ids
            .iter()
            .all(|id| groups.iter().filter(|g| &g.group == id && g.default).count() == 1));
        assert_eq!(variants.len(), 4);
        assert!(variants
            .iter()
            .any(|v| v.codecs.as_ref().unwrap().contains(&"ac-3".to_string())));
    }
}
