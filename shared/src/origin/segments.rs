//! CMAF init and media segments of fMP4 endpoints, repackaged from the stored TS inputs
//! of one output segment on request (for `NUMBER_WITH_DURATION`, with media times moved
//! back to the number origin), and single keyframes for CMAF I-frame playlists.

use super::cenc;
use super::reply::*;
use super::select::*;
use super::window::*;
use crate::app::PlaybackServices;
use crate::catalog::StreamDocs;
use crate::live::timeline;
use crate::manifest::dash;
use crate::media::cenc as common;
use crate::media::cmaf::{self, Timeline, TrackRun};
use crate::media::mp4;
use crate::model::{OriginEndpoint, SegmentRecord};
use crate::time::Ticks;

/// How a media segment's name says which segment it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Numbering {
    /// Its start time (HLS, DASH `$Time$`).
    Time,
    /// Its output sequence number (DASH `$Number$` with a SegmentTimeline).
    Number,
    /// Its number from the number origin of `NUMBER_WITH_DURATION`, whose segments carry
    /// their media time moved back by the origin (see [`dash::NumberOrigin`]).
    NumberFromOrigin,
}

/// An init or media segment, named by `numbering`; numbers are looked up in the newest
/// `lookup_window_seconds` of the rendition. `key_period`: the key period its name gives
/// (CMAF HLS with key rotation).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve_segment(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    docs: &StreamDocs,
    segment_duration_seconds: u32,
    request: SegmentFile,
    numbering: Numbering,
    lookup_window_seconds: u32,
    key_period: Option<u64>,
) -> Result<Reply, PlaybackError> {
    let track = match &request {
        SegmentFile::Init(t) | SegmentFile::Media(t, _) => t.clone(),
    };
    let rendition = rendition_of(docs, endpoint, &track.rendition)?;
    let k = timeline::group_size(segment_duration_seconds, rendition.target());
    let encryption = cenc::common_encryption(endpoint);
    if encryption.is_none() && key_period.is_some() {
        return Err(PlaybackError::not_found(format!(
            "endpoint {:?} is not encrypted: its segment names have no key period",
            endpoint.id
        )));
    }
    match request {
        SegmentFile::Init(_) => {
            let partition = SegmentRecord::partition_of(&endpoint.channel_id, &rendition.id);
            let newest = app.stores.index.latest_segments(&partition, 1).await?;
            let record = newest
                .first()
                .ok_or_else(|| PlaybackError::not_found(format!("rendition {:?} has no segments yet", rendition.id)))?;
            // Encrypted: the key first, so that a key never obtained is a 404 before any work.
            let protection = match &encryption {
                Some(e) => {
                    let latest = e.period_of(record.start);
                    Some(e.protection(&cenc::segment_key(app, endpoint, e, key_period, latest).await?))
                }
                None => None,
            };
            let bytes = app
                .stores
                .objects
                .get(&record.object_key)
                .await?
                .ok_or_else(|| PlaybackError::Unavailable("segment bytes are not available; retry".into()))?;
            let run = pick(
                cmaf::runs_from_ts(&bytes, Timeline::of(record)).map_err(repackaging)?,
                &track,
            )?;
            let mut init = mp4::init_segment(&run.track).map_err(|e| repackaging(e.into()))?;
            if let Some(protection) = &protection {
                init = common::boxes::protect_init(&init, &run.track, protection).map_err(encrypting)?;
            }
            Ok(segment_response(content_type(&track), init))
        }
        SegmentFile::Media(_, n) => {
            let (start, moved_back) = media_start(
                app,
                &endpoint.channel_id,
                rendition,
                k,
                n,
                numbering,
                segment_duration_seconds,
                lookup_window_seconds,
            )
            .await?;
            let protection = match &encryption {
                Some(e) => {
                    let latest = e.period_of(start);
                    Some(e.protection(&cenc::segment_key(app, endpoint, e, key_period, latest).await?))
                }
                None => None,
            };
            let (group, inputs) = segment_group(app, &endpoint.channel_id, rendition, k, start).await?;
            let mut joined: Option<TrackRun> = None;
            for (record, bytes) in &inputs {
                let run = pick(
                    cmaf::runs_from_ts(bytes, Timeline::of(record)).map_err(repackaging)?,
                    &track,
                )?;
                match joined.as_mut() {
                    Some(j) => j.append(run),
                    None => joined = Some(run),
                }
            }
            let mut run = joined.ok_or_else(|| PlaybackError::not_found("empty segment"))?;
            // Encrypted in place, with IVs from decode times on the channel's timeline.
            let aux = match &protection {
                Some(p) => Some(
                    common::encrypt_samples(
                        &run.track,
                        &rendition.id,
                        run.base_decode_time,
                        &run.samples,
                        &mut run.data,
                        p,
                    )
                    .map_err(encrypting)?,
                ),
                None => None,
            };
            let scale = u64::from(run.track.timescale);
            run.base_decode_time = run
                .base_decode_time
                .saturating_sub(moved_back.0 * scale / crate::time::TICKS_PER_SECOND);
            // Header, then the samples where they already are (not copied behind it).
            let header = mp4::fragment_header(
                &run.track,
                group.sequence as u32,
                run.base_decode_time,
                &run.samples,
                run.data.len(),
                aux.as_ref(),
            )
            .map_err(|e| repackaging(e.into()))?;
            let mut reply = chunked_segment(
                content_type(&track),
                [bytes::Bytes::from(header), bytes::Bytes::from(run.data)],
            );
            reply.active_input = Some(active_input(inputs.iter().map(|(record, _)| record)));
            Ok(reply)
        }
    }
}

/// The start of the output segment a media segment name gives as `n` (its start, or its
/// number looked up in the newest `lookup_window_seconds`), and how far its media times
/// are moved back (the number origin of `NUMBER_WITH_DURATION`, else zero).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn media_start(
    app: &PlaybackServices,
    channel: &str,
    rendition: &crate::model::Rendition,
    k: u64,
    n: u64,
    numbering: Numbering,
    segment_duration_seconds: u32,
    lookup_window_seconds: u32,
) -> Result<(Ticks, Ticks), PlaybackError> {
    if numbering == Numbering::Time {
        return Ok((Ticks(n), Ticks(0)));
    }
    let window = live_window(app, channel, rendition, k, lookup_window_seconds).await?;
    let mut moved_back = Ticks(0);
    if numbering == Numbering::NumberFromOrigin {
        let duration = u64::from(segment_duration_seconds) * crate::time::TICKS_PER_SECOND;
        moved_back = window
            .last()
            .map_or(Ticks(0), |newest| dash::number_origin(newest, duration).media_start);
    }
    let start = window
        .iter()
        .find(|s| s.sequence == n)
        .map(|s| s.start)
        .ok_or_else(|| {
            PlaybackError::not_found(format!(
                "segment number {n} of rendition {:?} is not in the live window",
                rendition.id
            ))
        })?;
    Ok((start, moved_back))
}

/// The keyframe at `file.time` alone, as a CMAF fragment (`styp`, `moof`, `mdat` of one
/// sample) for the I-frame playlist: it lasts until the next keyframe of its input (or
/// the input's end), and is read from the one input segment that holds it.
pub(crate) async fn serve_iframe(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    docs: &StreamDocs,
    segment_duration_seconds: u32,
    file: IFrameFile,
) -> Result<Reply, PlaybackError> {
    let rendition = rendition_of(docs, endpoint, &file.track.rendition)?;
    let k = timeline::group_size(segment_duration_seconds, rendition.target());
    let partition = SegmentRecord::partition_of(&endpoint.channel_id, &rendition.id);
    let records = app
        .stores
        .index
        .segments_from(&partition, file.segment, k as usize)
        .await?;
    let missing = || {
        PlaybackError::not_found(format!(
            "no keyframe at {} in the segment starting at {} of rendition {:?}",
            file.time.0, file.segment.0, rendition.id
        ))
    };
    let group = timeline::group_segments(&records, k);
    group
        .first()
        .filter(|g| g.start == file.segment)
        .filter(|g| g.iframes.iter().any(|f| f.time == file.time))
        .ok_or_else(missing)?;
    let record = records
        .iter()
        .find(|r| r.published && r.iframes.iter().any(|f| f.time == file.time))
        .ok_or_else(missing)?;
    let bytes = app.stores.objects.get(&record.object_key).await?.ok_or_else(|| {
        tracing::error!(key = %record.object_key, "indexed segment has no stored bytes");
        PlaybackError::Unavailable("segment bytes are not available; retry".into())
    })?;
    let run = pick(
        cmaf::runs_from_ts(&bytes, Timeline::of(record)).map_err(repackaging)?,
        &file.track,
    )?;
    let (sample, decode_time, offset) = keyframe_at(&run, file.time).ok_or_else(missing)?;
    let data = &run.data[offset..offset + sample.size as usize];
    let fragment = mp4::media_segment(&run.track, (record.sequence / k) as u32, decode_time, &[sample], data)
        .map_err(|e| repackaging(e.into()))?;
    Ok(segment_response("video/mp4", fragment))
}

/// The keyframe sample presented at `time` (90 kHz), lasting until the next keyframe or
/// the end of the run; with its decode time and the offset of its bytes in the run.
fn keyframe_at(run: &TrackRun, time: Ticks) -> Option<(mp4::Sample, u64, usize)> {
    let scale = u64::from(run.track.timescale);
    let wanted = time.0 * scale / crate::time::TICKS_PER_SECOND;
    // One frame of slack for the rounding between the two timescales.
    let slack = run.samples.first().map_or(0, |s| u64::from(s.duration) / 2);
    let (mut decode, mut offset) = (run.base_decode_time, 0usize);
    for (i, s) in run.samples.iter().enumerate() {
        let presented = decode.checked_add_signed(i64::from(s.composition_offset))?;
        if s.keyframe && presented.abs_diff(wanted) <= slack {
            let until_next: u64 = run.samples[i..]
                .iter()
                .enumerate()
                .take_while(|(j, n)| *j == 0 || !n.keyframe)
                .map(|(_, n)| u64::from(n.duration))
                .sum();
            let sample = mp4::Sample {
                duration: u32::try_from(until_next).ok()?,
                ..*s
            };
            return Some((sample, decode, offset));
        }
        decode += u64::from(s.duration);
        offset += s.size as usize;
    }
    None
}

pub(crate) fn content_type(track: &TrackRef) -> &'static str {
    if track.audio {
        "audio/mp4"
    } else {
        "video/mp4"
    }
}

pub(crate) fn pick(runs: Vec<TrackRun>, track: &TrackRef) -> Result<TrackRun, PlaybackError> {
    runs.into_iter()
        .find(|r| r.track.is_video() != track.audio)
        .ok_or_else(|| {
            PlaybackError::not_found(format!(
                "rendition {:?} has no {} track",
                track.rendition,
                if track.audio { "audio" } else { "video" }
            ))
        })
}

pub(crate) fn repackaging(e: cmaf::CmafError) -> PlaybackError {
    tracing::error!(error = %e, "TS → CMAF repackaging failed");
    PlaybackError::Internal(format!("cannot repackage the segment as CMAF: {e}"))
}

fn encrypting(e: common::CencError) -> PlaybackError {
    tracing::error!(error = %e, "Common Encryption of a segment failed");
    PlaybackError::Internal(format!("cannot encrypt the segment: {e}"))
}
