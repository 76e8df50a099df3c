//! WebVTT subtitle renditions of HLS TS and CMAF HLS endpoints: their `EXT-X-MEDIA`
//! entries, their media playlists and their segments.
//!
//! A subtitle rendition's output segments are the first video rendition's: same media
//! sequence numbers, times and names (its start in 90 kHz ticks), each cut from the
//! indexed cues with an `X-TIMESTAMP-MAP` tying it to that video segment's timestamps. A
//! subtitle segment is listed once the video segment after it is published — the
//! encoder sends its WebVTT segment with its video, so by then its cues are in and the
//! segment never changes after it was first served.

use super::reply::*;
use super::select::video_codec;
use super::window::*;
use crate::app::PlaybackServices;
use crate::catalog::{StreamDocs, SubtitleCues};
use crate::live::timeline::{self, OutputSegment};
use crate::manifest::hls::{self, PlaylistSettings};
use crate::media::mp4;
use crate::media::webvtt::{self, TimedCue};
use crate::model::{Rendition, SegmentRecord};
use crate::store::keys;
use crate::time::{Ticks, UnixMillis, PTS_WRAP};

/// How far before a segment the cue index is read: a cue that started longer ago than
/// this and is still showing is not carried into later segments.
const CUE_LOOKBACK: Ticks = Ticks(60 * crate::time::TICKS_PER_SECOND);

/// Cues received further than this from the video segment they fall in are from another
/// run of the channel (an encoder sends a segment's WebVTT with its video).
const SAME_RUN_MS: i64 = 10 * 60 * 1000;

/// The clock an output segment's timestamps are on, for its `X-TIMESTAMP-MAP`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum SegmentClock {
    /// HLS TS: the encoder's own PTS, as the stored TS segments carry them.
    Encoder,
    /// CMAF: the output timeline, as the fMP4 segments carry it.
    Output,
}

/// The subtitle renditions of a channel in the encoder's order, with the `EXT-X-MEDIA`
/// each gets; `uri` names a rendition's media playlist.
pub(crate) fn subtitle_media(docs: &StreamDocs, uri: impl Fn(&str) -> String) -> Vec<hls::SubtitleRendition> {
    if reference_video(docs, "").is_err() {
        // No video to follow (an audio-only channel): no subtitles.
        return Vec::new();
    }
    let mut ids: Vec<&str> = docs.subtitles.iter().map(|s| s.id.as_str()).collect();
    let position = |id: &str| {
        docs.master
            .as_ref()
            .zip(docs.declared_subtitles(id))
            .and_then(|(m, d)| m.subtitles.iter().position(|s| s == d))
            .unwrap_or(usize::MAX)
    };
    ids.sort_by_key(|id| (position(id), id.to_string()));
    ids.into_iter()
        .map(|id| {
            let declared = docs.declared_subtitles(id);
            hls::SubtitleRendition {
                name: declared.map_or_else(|| id.to_owned(), |d| d.name.clone()),
                uri: uri(id),
                default: declared.is_some_and(|d| d.default),
                forced: declared.is_some_and(|d| d.forced),
                language: declared.and_then(|d| d.language.clone()),
            }
        })
        .collect()
}

/// Whether `id` is one of the channel's subtitle renditions.
pub(crate) fn is_subtitles(docs: &StreamDocs, id: &str) -> bool {
    docs.subtitles.iter().any(|s| s.id == id)
}

/// The video rendition whose output segments the subtitle segments follow: the first
/// video rendition of the ladder.
pub(crate) fn reference_video<'a>(docs: &'a StreamDocs, channel: &str) -> Result<&'a Rendition, PlaybackError> {
    docs.ordered_renditions()
        .into_iter()
        .find(|r| video_codec(r).is_some())
        .ok_or_else(|| {
            PlaybackError::not_found(format!(
                "channel {channel:?} has no video rendition yet, which subtitle segments follow"
            ))
        })
}

/// A subtitle rendition's media playlist; `name` gives a segment's URI.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn media_playlist(
    app: &PlaybackServices,
    channel: &str,
    video: &Rendition,
    segment_duration_seconds: u32,
    window_seconds: u32,
    settings: PlaylistSettings,
    name: impl Fn(&OutputSegment) -> String,
) -> Result<Reply, PlaybackError> {
    let k = timeline::group_size(segment_duration_seconds, video.target());
    let end_list = live_or_ended(app, video, k)?;
    let mut window = live_window(app, channel, video, k, window_seconds).await?;
    if !end_list {
        window.pop();
    }
    if window.is_empty() {
        return Err(PlaybackError::not_found(
            "no subtitle segment is complete yet: a subtitle segment is listed once the video segment after it is out",
        ));
    }
    let target = timeline::target_duration(&window, video, k);
    let settings = PlaylistSettings {
        end_list,
        map_uri: None,
        keys: None,
        ..settings
    };
    let body = hls::media_playlist(&window, &settings, target, name);
    let max_age = playlist_max_age(video.target(), k);
    Ok(with_last_updated(
        playlist_response(body, max_age, window.last().map(|s| s.sequence)),
        Some(video.updated_at),
    ))
}

/// The subtitle segment going with the video output segment that starts at `start`.
pub(crate) async fn segment(
    app: &PlaybackServices,
    channel: &str,
    subtitles: &str,
    video: &Rendition,
    segment_duration_seconds: u32,
    start: Ticks,
    clock: SegmentClock,
) -> Result<Reply, PlaybackError> {
    let k = timeline::group_size(segment_duration_seconds, video.target());
    let (output, first) = output_segment(app, channel, video, k, start).await?;
    let end = Ticks(output.start.0 + output.duration.0);
    let mpegts = match clock {
        SegmentClock::Encoder => {
            (i128::from(start.0) - i128::from(first.pts_offset)).rem_euclid(PTS_WRAP.into()) as u64
        }
        SegmentClock::Output => start.0 % PTS_WRAP,
    };
    let cues = cues_between(app, channel, subtitles, start, end, first.received_at).await?;
    let body = webvtt::write_segment(&cues, start, end, mpegts);
    Ok(segment_response("text/vtt", body))
}

/// A DASH text segment name: `{manifest}_subtitles_{rendition}_init.mp4` or
/// `{manifest}_subtitles_{rendition}_{n}.mp4`.
pub(crate) struct DashTextFile {
    rendition: String,
    /// None for the init segment.
    n: Option<u64>,
}

pub(crate) fn parse_dash_file(manifest: &str, file: &str) -> Option<DashTextFile> {
    let rest = file
        .strip_suffix(".mp4")?
        .strip_prefix(manifest)?
        .strip_prefix("_subtitles_")?;
    let (rendition, n) = rest.rsplit_once('_')?;
    let n = match n {
        "init" => None,
        n => Some(n.parse().ok()?),
    };
    (!rendition.is_empty()).then(|| DashTextFile {
        rendition: rendition.to_owned(),
        n,
    })
}

/// A DASH text Representation's init or media segment (WebVTT in ISO-BMFF): the media
/// segment named `n` by `numbering`, cut from the cues like the HLS segments.
pub(crate) async fn dash_segment(
    app: &PlaybackServices,
    endpoint: &crate::model::OriginEndpoint,
    docs: &StreamDocs,
    segment_duration_seconds: u32,
    file: DashTextFile,
    numbering: super::segments::Numbering,
    lookup_window_seconds: u32,
) -> Result<Reply, PlaybackError> {
    let channel = &endpoint.channel_id;
    if !is_subtitles(docs, &file.rendition) {
        return Err(PlaybackError::not_found(format!(
            "channel {channel:?} has no subtitle rendition {:?}",
            file.rendition
        )));
    }
    let Some(n) = file.n else {
        let init = mp4::text::init_segment("und").map_err(|e| PlaybackError::Unavailable(e.to_string()))?;
        return Ok(segment_response("application/mp4", init));
    };
    let video = reference_video(docs, channel)?;
    let k = timeline::group_size(segment_duration_seconds, video.target());
    let (start, moved_back) = super::segments::media_start(
        app,
        channel,
        video,
        k,
        n,
        numbering,
        segment_duration_seconds,
        lookup_window_seconds,
    )
    .await?;
    let (output, first) = output_segment(app, channel, video, k, start).await?;
    let end = Ticks(output.start.0 + output.duration.0);
    let cues = cues_between(app, channel, &file.rendition, start, end, first.received_at).await?;
    let body = mp4::text::media_segment(&cues, start, end, moved_back, output.sequence as u32)
        .map_err(|e| PlaybackError::Unavailable(e.to_string()))?;
    Ok(segment_response("application/mp4", body))
}

/// The published output segment of `video` starting at `start`, with its first input.
async fn output_segment(
    app: &PlaybackServices,
    channel: &str,
    video: &Rendition,
    k: u64,
    start: Ticks,
) -> Result<(OutputSegment, SegmentRecord), PlaybackError> {
    let partition = SegmentRecord::partition_of(channel, &video.id);
    let mut records = app
        .stores
        .index
        .segments_from(&partition, start, 2 * k as usize)
        .await?;
    records.retain(|r| r.published);
    let mut groups = timeline::group_segments(&records, k).into_iter();
    let output = groups.next().filter(|g| g.start == start);
    // Served once the video segment after it is out (or the stream has ended), as the
    // playlists list it: by then its WebVTT is in, and it never changes afterwards.
    let complete = groups.next().is_some() || video.is_ended(UnixMillis::now());
    match (output, records.into_iter().next()) {
        (Some(output), Some(first)) if complete => Ok((output, first)),
        (Some(_), Some(_)) => Err(PlaybackError::not_found(format!(
            "the subtitle segment starting at {} is not complete yet: it is served once the video segment after it is out",
            start.0
        ))),
        _ => Err(PlaybackError::not_found(format!(
            "no subtitle segment starting at {} (it may have left the window or not exist yet)",
            start.0
        ))),
    }
}

/// The cues showing at some time in `[from, to)`, in start order, each once (both ingest
/// endpoints send the same cues; encoders repeat a cue that runs across segments).
async fn cues_between(
    app: &PlaybackServices,
    channel: &str,
    subtitles: &str,
    from: Ticks,
    to: Ticks,
    video_received_at: UnixMillis,
) -> Result<Vec<TimedCue>, PlaybackError> {
    let partition = keys::cues_partition(channel, subtitles);
    let mut after = Some(keys::cues_from(from.saturating_sub(CUE_LOOKBACK).0));
    let mut cues: Vec<TimedCue> = Vec::new();
    'pages: loop {
        let page = app.stores.index.list_docs(&partition, after.as_deref(), 100).await?;
        for (sk, bytes) in &page {
            let doc: SubtitleCues = crate::catalog::decode(sk, bytes)?;
            // Sorted by their last cue; an upload spans a segment or so, far less than the
            // look-back, so one starting that far after `to` ends the search.
            if doc.cues.iter().all(|c| c.start >= to + CUE_LOOKBACK) {
                break 'pages;
            }
            // Cues of an earlier run of the channel, at times this run has reached again.
            if (doc.received_at.0 - video_received_at.0).abs() > SAME_RUN_MS {
                continue;
            }
            cues.extend(doc.cues.into_iter().filter(|c| c.start < to && c.end > from));
        }
        match page.last() {
            Some((last, _)) if page.len() == 100 => after = Some(last.clone()),
            _ => break,
        }
    }
    cues.sort_by(|a, b| (a.start, a.end, &a.text).cmp(&(b.start, b.end, &b.text)));
    cues.dedup();
    Ok(cues)
}
