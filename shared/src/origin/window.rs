//! The published segments a playlist or segment request is answered from: the live
//! window of a rendition, the inputs of one output segment, whether the stream is live.

use super::reply::*;
use crate::app::PlaybackServices;
use crate::live::timeline;
use crate::live::timeline::OutputSegment;
use crate::model::{Rendition, SegmentRecord};
use crate::time::{Ticks, UnixMillis};
use bytes::Bytes;

/// Whether a rendition's media playlist ends (`#EXT-X-ENDLIST`): true once the encoder
/// ended the stream. A live rendition whose inputs have stopped delivering is a 404 with
/// a short cache rather than a stale 200, so CDNs and players fail over (issue: stale
/// manifests served with 200 are a top complaint about live origins).
pub(crate) fn live_or_ended(app: &PlaybackServices, rendition: &Rendition, k: u64) -> Result<bool, PlaybackError> {
    let now = crate::time::UnixMillis::now();
    if rendition.is_ended(now) {
        return Ok(true);
    }
    let durations = app.config.stale_after_target_durations;
    if rendition.is_stale(now, durations.saturating_mul(k as u32)) {
        return Err(PlaybackError::not_found(format!(
            "rendition {:?} is stale: no input has delivered a segment for {} target durations; \
             the encoder may have stopped",
            rendition.id, durations
        )));
    }
    Ok(false)
}

/// The output segments of a rendition's live window (oldest first); 404 when empty.
pub(crate) async fn live_window(
    app: &PlaybackServices,
    channel: &str,
    rendition: &Rendition,
    k: u64,
    window_seconds: u32,
) -> Result<Vec<OutputSegment>, PlaybackError> {
    let input_secs = rendition.target().as_secs_f64().max(0.5);
    let wanted = (f64::from(window_seconds) / input_secs).ceil() as usize + 2 * k as usize + 2;
    let partition = SegmentRecord::partition_of(channel, &rendition.id);
    let records = published_segments(app, &partition, wanted.min(20_000)).await?;
    let grouped = timeline::group_segments(&records, k);
    let window = timeline::live_window(&grouped, Ticks::from_secs(u64::from(window_seconds)));
    if window.is_empty() {
        return Err(PlaybackError::not_found(format!(
            "rendition {:?} has no complete output segment yet",
            rendition.id
        )));
    }
    Ok(window.to_vec())
}

/// The newest `limit` published records of a partition, oldest first. When some are
/// unpublished, runs the publish step first: their own upload's publish may have failed
/// (the upload was answered 2xx once its record was durable), or a hole's horizon passed
/// with no upload after it.
pub(crate) async fn published_segments(
    app: &PlaybackServices,
    partition: &str,
    limit: usize,
) -> Result<Vec<SegmentRecord>, PlaybackError> {
    let index = app.stores.index.as_ref();
    let mut records = index.latest_segments(partition, limit).await?;
    if records.iter().any(|r| !r.published) {
        crate::publish::advance(index, partition, UnixMillis::now()).await?;
        records = index.latest_segments(partition, limit).await?;
    }
    records.retain(|r| r.published);
    Ok(records)
}

/// The input records and stored bytes of the output segment starting at `start`.
pub(crate) async fn segment_group(
    app: &PlaybackServices,
    channel: &str,
    rendition: &Rendition,
    k: u64,
    start: Ticks,
) -> Result<(OutputSegment, Vec<(SegmentRecord, Bytes)>), PlaybackError> {
    let partition = SegmentRecord::partition_of(channel, &rendition.id);
    let mut records = app.stores.index.segments_from(&partition, start, k as usize).await?;
    records.retain(|r| r.published);
    let group = timeline::group_segments(&records, k);
    let Some(first) = group.into_iter().next().filter(|g| g.start == start) else {
        return Err(PlaybackError::not_found(format!(
            "no segment starting at {} in rendition {:?} (it may have left the window or not exist yet)",
            start.0, rendition.id
        )));
    };
    let fetched = futures_util::future::join_all(records.iter().map(|r| app.stores.objects.get(&r.object_key))).await;
    let mut out = Vec::with_capacity(records.len());
    for (record, bytes) in records.into_iter().zip(fetched) {
        let bytes: Bytes = bytes?.ok_or_else(|| {
            tracing::error!(key = %record.object_key, "indexed segment has no stored bytes");
            PlaybackError::Unavailable("segment bytes are not available; retry".into())
        })?;
        out.push((record, bytes));
    }
    Ok((first, out))
}
