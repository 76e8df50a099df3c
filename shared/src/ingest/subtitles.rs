//! A WebVTT segment upload: stored, then its cues indexed on the output timeline.
//!
//! A WebVTT segment says nothing of where it sits in the stream except through its cue
//! times (on the MPEG-TS clock, through `X-TIMESTAMP-MAP`), and an empty one says nothing
//! at all. So cues, not segments, are indexed: each upload's cues go into one document,
//! placed on the output timeline with the offset of the ladder's first video rendition
//! (the clock the cue times are on), and playback cuts subtitle segments matching the
//! video's output segments from them.

use super::Upload;
use super::{Accepted, IngestError};
use crate::app::IngestServices;
use crate::catalog::{stream_partition, Catalog, SubtitleCues, SubtitleRendition};
use crate::live::naming::rendition_id;
use crate::media::webvtt::{self, TimedCue};
use crate::model::SegmentRecord;
use crate::store::{keys, Condition};
use crate::time::{unwrap_pts, Ticks};

/// Cues this far behind the newest video segment come from an encoder whose restart the
/// video has not shown yet.
const RESTART_BEHIND: Ticks = Ticks(60 * crate::time::TICKS_PER_SECOND);

/// Largest cue document: within the index's item size (DynamoDB's 400 KB) with room for
/// its keys.
const MAX_CUES_DOC_BYTES: usize = 350_000;

pub(super) async fn ingest_subtitles(app: &IngestServices, up: Upload<'_>) -> Result<Accepted, IngestError> {
    let cues = webvtt::parse_segment(&up.body)
        .map_err(|e| IngestError::Invalid(format!("WebVTT segment {}: {e}", up.path)))?;
    let rendition = rendition_id(up.path);
    // Bytes first, durable, then the index.
    let key = keys::upload_object(&up.channel.id, &up.endpoint.id, up.path);
    app.stores.objects.put(&key, up.body.clone(), "text/vtt").await?;

    // One read of the stream documents: whether the rendition is known, and (below) the
    // video rendition whose clock the cues are on.
    let catalog = Catalog(app.stores.index.as_ref());
    let docs = catalog.stream_docs(&up.channel.id).await?;
    if !docs.subtitles.iter().any(|s| s.id == rendition) {
        let doc = SubtitleRendition { id: rendition.clone() };
        let (stream, sk) = (stream_partition(&up.channel.id), keys::subtitles(&rendition));
        match catalog.put(&stream, &sk, &doc, Condition::IfAbsent).await {
            Ok(()) | Err(crate::store::StoreError::ConditionFailed) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if cues.is_empty() {
        tracing::info!(path = %up.path, rendition, "WebVTT segment without cues stored");
        return Ok(Accepted::Stored);
    }

    // The cue times are on the encoder's clock; the first video rendition's newest
    // segment says where that clock is on the output timeline.
    let video = docs
        .ordered_renditions()
        .into_iter()
        .find(|r| r.codecs.iter().any(|c| crate::media::codec::is_video_codec(c)));
    let reference = match video {
        Some(v) => app
            .stores
            .index
            .latest_segments(&SegmentRecord::partition_of(&up.channel.id, &v.id), 1)
            .await?
            .pop(),
        None => None,
    };
    let (clock, offset) = match &reference {
        Some(r) => (
            Some(Ticks((i128::from(r.start.0) - i128::from(r.pts_offset)).max(0) as u64)),
            r.pts_offset,
        ),
        None => (None, 0),
    };
    let place = |pts: u64| Ticks((i128::from(unwrap_pts(pts, clock).0) + i128::from(offset)).max(0) as u64);
    let timed: Vec<TimedCue> = cues
        .into_iter()
        .map(|c| {
            let start = place(c.start);
            // The end unwrapped next to the start: a cue never lasts half a PTS period.
            let end = Ticks(start.0 + (c.end.wrapping_sub(c.start) % crate::time::PTS_WRAP));
            TimedCue {
                start,
                end,
                settings: c.settings,
                text: c.text,
            }
        })
        .collect();
    let first = timed.iter().map(|c| c.start).min().unwrap_or_default();
    if let Some(r) = reference.as_ref().filter(|r| first + RESTART_BEHIND < r.start) {
        // Far behind the video: the encoder restarted and its new video has not been placed
        // yet, so there is no telling where these cues go.
        return Err(IngestError::Busy(format!(
            "WebVTT segment {}: its cues are {} s behind the newest video segment; if the encoder \
             restarted, retry once its video segments are in",
            up.path,
            r.start.saturating_sub(first).as_secs_f64().round()
        )));
    }
    let last = timed.iter().map(|c| c.start.0).max().unwrap_or(0);
    let doc = SubtitleCues {
        cues: timed,
        received_at: up.now,
    };
    let size = serde_json::to_vec(&doc).map_or(0, |v| v.len());
    if size > MAX_CUES_DOC_BYTES {
        return Err(IngestError::Invalid(format!(
            "WebVTT segment {}: its cues take {size} bytes to index, more than the {MAX_CUES_DOC_BYTES} \
             one segment may; send shorter segments",
            up.path
        )));
    }
    catalog
        .put(
            &keys::cues_partition(&up.channel.id, &rendition),
            &keys::cues(last, up.path),
            &doc,
            Condition::Always,
        )
        .await?;
    tracing::info!(path = %up.path, rendition, cues = doc.cues.len(), last_start = last, "WebVTT cues indexed");
    Ok(Accepted::Stored)
}
