//! CMAF init and media segments of fMP4 endpoints, repackaged from the stored TS inputs
//! of one output segment on request.

use super::reply::*;
use super::select::*;
use super::window::*;
use crate::app::PlaybackServices;
use crate::catalog::StreamDocs;
use crate::live::timeline;
use crate::media::cmaf::{self, Timeline, TrackRun};
use crate::media::mp4;
use crate::model::{OriginEndpoint, SegmentRecord};
use crate::time::Ticks;

/// An init or media segment. `by_number`: the number in a media segment's name is an
/// output sequence number (DASH `$Number$`) rather than a start time.
pub(crate) async fn serve_segment(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    docs: &StreamDocs,
    segment_duration_seconds: u32,
    request: SegmentFile,
    by_number: bool,
    lookup_window_seconds: u32,
) -> Result<Reply, PlaybackError> {
    let track = match &request {
        SegmentFile::Init(t) | SegmentFile::Media(t, _) => t.clone(),
    };
    let rendition = rendition_of(docs, endpoint, &track.rendition)?;
    let k = timeline::group_size(segment_duration_seconds, rendition.target());
    match request {
        SegmentFile::Init(_) => {
            let partition = SegmentRecord::partition_of(&endpoint.channel_id, &rendition.id);
            let newest = app.stores.index.latest_segments(&partition, 1).await?;
            let record = newest
                .first()
                .ok_or_else(|| PlaybackError::not_found(format!("rendition {:?} has no segments yet", rendition.id)))?;
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
            let init = mp4::init_segment(&run.track).map_err(|e| repackaging(e.into()))?;
            Ok(segment_response(content_type(&track), init))
        }
        SegmentFile::Media(_, n) => {
            let start = if by_number {
                let window = live_window(app, &endpoint.channel_id, rendition, k, lookup_window_seconds).await?;
                window
                    .iter()
                    .find(|s| s.sequence == n)
                    .map(|s| s.start)
                    .ok_or_else(|| {
                        PlaybackError::not_found(format!(
                            "segment number {n} of rendition {:?} is not in the live window",
                            rendition.id
                        ))
                    })?
            } else {
                Ticks(n)
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
            let run = joined.ok_or_else(|| PlaybackError::not_found("empty segment"))?;
            // Header, then the samples where they already are (not copied behind it).
            let header = mp4::fragment_header(
                &run.track,
                group.sequence as u32,
                run.base_decode_time,
                &run.samples,
                run.data.len(),
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
