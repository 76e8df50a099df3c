//! The publish step shared by ingest and playback: numbers the indexed segments of a
//! rendition whose place on the timeline is settled ([`crate::live::publish`] has the
//! rules), with one conditional write of the records and the partition's head. Ingest runs
//! it after every insert; playback runs it when it meets a settled segment nobody has
//! published yet (a hole's horizon passed and no upload came after it).

use crate::live::publish::publishable;
use crate::model::SegmentRecord;
use crate::store::{Index, PublishedEdge, SegmentHead, SlotWrite, StoreError, MAX_PUBLISH};
use crate::time::{Ticks, UnixMillis};

/// How often one call tries again when another writer moved the head first.
const ATTEMPTS: u32 = 24;

/// Waits a little before another optimistic attempt: a few milliseconds, growing, with
/// jitter so that writers that collided do not collide again.
pub async fn back_off(attempt: u32) {
    let ms = u64::from(attempt.min(10) + 1) * 2 + u64::from(rand::random::<u8>() % 8);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// The published edge: from the head, or for partitions written before heads existed
/// (records numbered on insert), the newest published record.
pub async fn edge(index: &dyn Index, partition: &str, head: &SegmentHead) -> Result<Option<PublishedEdge>, StoreError> {
    if head.published.is_some() {
        return Ok(head.published);
    }
    let latest = index.latest_segments(partition, 64).await?;
    Ok(latest.iter().rev().find(|r| r.published).map(PublishedEdge::of))
}

/// Publishes what can be published in `partition` at `now`; returns the records this call
/// published. When another writer keeps moving the head, gives up after a bounded number of
/// attempts: that writer runs this step too.
pub async fn advance(index: &dyn Index, partition: &str, now: UnixMillis) -> Result<Vec<SegmentRecord>, StoreError> {
    let mut done = Vec::new();
    for attempt in 0..ATTEMPTS {
        let (head, version) = index.segment_head(partition).await?;
        let edge = edge(index, partition, &head).await?;
        let from = edge.map_or(Ticks(0), |e| Ticks(e.start.0 + 1));
        let pending: Vec<SegmentRecord> = index
            .segments_from(partition, from, MAX_PUBLISH)
            .await?
            .into_iter()
            .filter(|r| !r.published)
            .collect();
        let out = publishable(edge, &pending, now, MAX_PUBLISH);
        let Some(last) = out.last() else { return Ok(done) };
        let head = SegmentHead {
            published: Some(PublishedEdge::of(last)),
        };
        match index.publish_segments(partition, &out, &head, version).await? {
            SlotWrite::Written => {
                let full = out.len() == MAX_PUBLISH;
                done.extend(out);
                if !full {
                    return Ok(done);
                }
            }
            SlotWrite::HeadMoved | SlotWrite::SlotTaken => back_off(attempt).await,
        }
    }
    Ok(done)
}
