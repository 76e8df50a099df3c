//! A TS segment upload: placed on its rendition's timeline, stored, indexed unpublished
//! under optimistic concurrency, then published (see [`crate::live::publish`]).

use super::rendition::{touch_input, update_rendition};
use super::Upload;
use super::{Accepted, IngestError};
use crate::app::IngestServices;
use crate::catalog::{stream_partition, Catalog, ClockAnchor, InputTarget};
use crate::live::naming::rendition_id;
use crate::live::placement::{place, Placement};
use crate::media::{iframes, ts};
use crate::model::{IFrame, SegmentRecord};
use crate::store::{keys, PublishedEdge, SlotWrite};
use crate::time::{Ticks, UnixMillis};

/// How often one upload re-reads the index when other writers of its rendition got there
/// first (each attempt is two reads and one conditional write).
const INDEX_ATTEMPTS: u32 = 24;

/// An upload behind the live edge whose media-time neighbours arrived less than this long
/// ago is late (overtaken by later uploads), not the first segment of a restarted encoder.
const LATE_UPLOAD_MS: i64 = 10_000;

/// Where an upload goes, decided against one consistent read of its rendition's index.
enum Slot {
    /// A new record at `start`; `restart`: the encoder's timestamps were reset here.
    New {
        start: Ticks,
        pts_offset: i64,
        restart: bool,
    },
    /// The slot is indexed already (a re-send, or the other input's copy).
    Existing(Box<SegmentRecord>),
}

pub(super) async fn ingest_segment(app: &IngestServices, up: Upload<'_>) -> Result<Accepted, IngestError> {
    // One pass over the packets: segment info, keyframes, the leading PAT/PMT, captions.
    let ts::SegmentAnalysis {
        info,
        keyframes,
        leading_psi: psi_size,
        captions,
    } = ts::analyze_segment(&up.body).map_err(|e| IngestError::Invalid(format!("segment {}: {e}", up.path)))?;
    let rendition = rendition_id(up.path);
    let target = input_target(app, &up.channel.id, &rendition, info.duration)
        .await?
        .map_err(|e| IngestError::Invalid(format!("segment {}: {e}", up.path)))?;
    crate::live::target::check(info.duration, target)
        .map_err(|e| IngestError::Invalid(format!("segment {}: {e}", up.path)))?;
    let keyframes = iframes::bounded(keyframes);
    let partition = SegmentRecord::partition_of(&up.channel.id, &rendition);
    let index = app.stores.index.as_ref();
    let size = up.body.len() as u64;
    let mut stored_key: Option<String> = None;

    // Optimistic concurrency: read the head version and the newest record, decide, write
    // conditioned on that version; another writer in between means deciding again.
    let mut indexed = None;
    for attempt in 0..INDEX_ATTEMPTS {
        let (head, version) = index.segment_head(&partition).await?;
        let edge = crate::publish::edge(index, &partition, &head).await?;
        let latest = index.latest_segments(&partition, 1).await?.pop();
        let (start, pts_offset, restart) = match slot_of(index, &partition, &up, &info, latest.as_ref(), edge).await? {
            Slot::Existing(existing) => {
                // This input is alive (it must not look silent when deciding whether the
                // stream has ended).
                touch_input(app, &up, &rendition).await?;
                if !takes_back(&up, &existing) {
                    tracing::info!(path = %up.path, "segment already indexed (re-sent or sent by the other ingest endpoint)");
                    if !existing.published {
                        // Perhaps a retry after a failed publish: publish now.
                        crate::publish::advance(index, &partition, up.now).await?;
                    }
                    return Ok(Accepted::Unchanged);
                }
                let iframes = iframes_of(existing.start, &info, &keyframes, psi_size);
                if existing.published && iframes.len() != existing.iframes.len() {
                    // Its I-frame entries are numbered already (`keyframes_before` of the
                    // segments after it): another count of keyframes would renumber them.
                    tracing::info!(path = %up.path, "segment already indexed from the other input with another number of keyframes; kept");
                    return Ok(Accepted::Unchanged);
                }
                match take_back(app, &up, *existing, &info, iframes, version).await? {
                    true => return Ok(Accepted::Stored),
                    false => {
                        crate::publish::back_off(attempt).await;
                        continue;
                    }
                }
            }
            Slot::New {
                start,
                pts_offset,
                restart,
            } => (start, pts_offset, restart),
        };
        let object_key = keys::segment_object(&up.channel.id, &up.endpoint.id, &rendition, start.0);
        if stored_key.as_deref() != Some(object_key.as_str()) {
            // Bytes first, durable, then the index.
            app.stores
                .objects
                .put(&object_key, up.body.clone(), "video/mp2t")
                .await?;
            stored_key = Some(object_key.clone());
        }
        let anchor = clock_anchor(app, &up.channel.id, start, info.duration, up.now).await?;
        let record = SegmentRecord {
            channel: up.channel.id.clone(),
            rendition: rendition.clone(),
            start,
            duration: info.duration,
            sequence: 0,
            ingest_endpoint: up.endpoint.id.clone(),
            object_key,
            size,
            program_date_time: anchor.wall_clock_of(start),
            received_at: up.now,
            starts_with_keyframe: info.starts_with_keyframe,
            source_name: up.path.to_owned(),
            pts_offset,
            discontinuity: restart,
            discontinuity_sequence: 0,
            iframes: iframes_of(start, &info, &keyframes, psi_size),
            keyframes_before: 0,
            published: false,
        };
        match index.insert_segment(&record, version).await? {
            SlotWrite::Written => {
                indexed = Some(record);
                break;
            }
            // Taken: decided again on the next read, which finds the slot.
            SlotWrite::SlotTaken | SlotWrite::HeadMoved => crate::publish::back_off(attempt).await,
        }
    }
    let Some(record) = indexed else {
        return Err(IngestError::Busy(format!(
            "segment {}: too many concurrent writers on rendition {rendition:?}; retry the upload",
            up.path
        )));
    };
    update_rendition(app, &record, &info, &captions, target).await?;
    // The record is durable: if publishing fails here, the next upload or a playlist
    // request publishes it (playback does once it is past the horizon).
    let published = match crate::publish::advance(index, &partition, up.now).await {
        Ok(published) => published,
        Err(e) => {
            tracing::warn!(path = %up.path, error = %e, "segment indexed, publishing left to the next writer");
            Vec::new()
        }
    };
    let sequence = published.iter().find(|r| r.start == record.start).map(|r| r.sequence);
    tracing::info!(
        channel = %record.channel, ingest_endpoint = %record.ingest_endpoint, path = %up.path,
        rendition = %record.rendition, bytes = size, sequence, start = record.start.0,
        duration_ms = info.duration.as_millis(), keyframe = info.starts_with_keyframe,
        restart = record.discontinuity, published = published.len(),
        "segment indexed"
    );
    Ok(Accepted::Stored)
}

/// Decides where an upload goes, given the newest indexed record and the published edge
/// of its rendition; a segment whose slot was published without it is refused (409).
async fn slot_of(
    index: &dyn crate::store::Index,
    partition: &str,
    up: &Upload<'_>,
    info: &ts::SegmentInfo,
    latest: Option<&SegmentRecord>,
    edge: Option<PublishedEdge>,
) -> Result<Slot, IngestError> {
    let (start, far) = match place(info.start_pts, latest) {
        Placement::Next { start, pts_offset, .. } => {
            return Ok(Slot::New {
                start,
                pts_offset,
                restart: false,
            })
        }
        Placement::Behind { start, far } => (start, far),
    };
    let last = latest.expect("Behind needs a previous segment");
    // The record at or just after this media time tells a late upload from a restart: a
    // late one's neighbours arrived moments ago; a restarted encoder's timestamps land on
    // segments of its previous run, which arrived long ago.
    let known = index.segments_from(partition, start, 1).await?.into_iter().next();
    let recent = known
        .as_ref()
        .is_some_and(|r| up.now.0 - r.received_at.0 < LATE_UPLOAD_MS);
    if far && !recent {
        // The encoder restarted (its timestamps went back): continue the timeline after
        // the newest segment and mark the discontinuity.
        let encoder_pts = i128::from(start.0) - i128::from(last.pts_offset);
        let offset = i128::from(last.end().0) - encoder_pts;
        tracing::warn!(path = %up.path, partition, "encoder timestamps went back: restart, discontinuity");
        return Ok(Slot::New {
            start: last.end(),
            pts_offset: offset as i64,
            restart: true,
        });
    }
    if let Some(existing) = known.filter(|r| r.start == start) {
        return Ok(Slot::Existing(Box::new(existing)));
    }
    if edge.is_none_or(|e| start.0 > e.start.0) {
        // Overtaken by a later upload, but its place is not published yet: in order.
        return Ok(Slot::New {
            start,
            pts_offset: last.pts_offset,
            restart: false,
        });
    }
    let horizon = crate::live::publish::horizon_ms(last) as f64 / 1000.0;
    Err(IngestError::Conflict(format!(
        "segment {} (media time {:.3} s) arrived after a later segment of its rendition was \
             published, so it is not indexed: a rendition's timeline starts at its first indexed \
             segment, and a segment after a hole waits {horizon:.1} s (the publish horizon) for the \
             ones before it. Upload segments in order or within the publish horizon of each other",
        up.path,
        start.as_secs_f64()
    )))
}

/// The keyframes of a segment placed at `start`, on the rendition's timeline.
fn iframes_of(start: Ticks, info: &ts::SegmentInfo, keyframes: &[iframes::KeyFrame], psi_size: u64) -> Vec<IFrame> {
    keyframes
        .iter()
        .map(|k| IFrame {
            time: Ticks(start.0.saturating_add_signed(pts_delta(info.start_pts, k.pts))),
            offset: k.offset,
            size: k.size,
            psi_size,
        })
        .collect()
}

/// Whether this upload takes a slot back from the other input: it comes from the
/// preferred input (the channel's first ingest endpoint, MediaPackage's primary) and is
/// not late, i.e. it arrived less than one segment duration after the other input's copy.
/// A late preferred copy leaves the slot as it is, so what players already fetched stays.
fn takes_back(up: &Upload<'_>, existing: &SegmentRecord) -> bool {
    let preferred = up
        .channel
        .ingest_endpoints
        .first()
        .is_some_and(|e| e.id == up.endpoint.id);
    preferred
        && existing.ingest_endpoint != up.endpoint.id
        && up.now.0 - existing.received_at.0 < existing.duration.as_millis()
}

/// Serves the slot of `existing` from this (preferred) input's bytes from now on: same
/// start, duration, sequence and discontinuity numbers, so playlists do not change. False
/// when the index moved since `version` was read (the caller decides again).
async fn take_back(
    app: &IngestServices,
    up: &Upload<'_>,
    existing: SegmentRecord,
    info: &ts::SegmentInfo,
    iframes: Vec<IFrame>,
    version: u64,
) -> Result<bool, IngestError> {
    let object_key = keys::segment_object(&up.channel.id, &up.endpoint.id, &existing.rendition, existing.start.0);
    let size = up.body.len() as u64;
    app.stores
        .objects
        .put(&object_key, up.body.clone(), "video/mp2t")
        .await?;
    let record = SegmentRecord {
        ingest_endpoint: up.endpoint.id.clone(),
        object_key,
        size,
        received_at: up.now,
        starts_with_keyframe: info.starts_with_keyframe,
        source_name: up.path.to_owned(),
        iframes,
        ..existing
    };
    if app.stores.index.replace_segment(&record, version).await? != SlotWrite::Written {
        return Ok(false);
    }
    tracing::info!(
        channel = %record.channel, ingest_endpoint = %record.ingest_endpoint, path = %up.path,
        rendition = %record.rendition, sequence = record.sequence, start = record.start.0,
        "preferred input took its slot back"
    );
    Ok(true)
}

/// The channel's media-time ↔ wall-clock anchor, set on first use and reset when media
/// time and wall clock disagree by more than 10 s (encoder restart, long pause).
async fn clock_anchor(
    app: &IngestServices,
    channel: &str,
    start: Ticks,
    duration: Ticks,
    now: UnixMillis,
) -> Result<ClockAnchor, IngestError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let pk = stream_partition(channel);
    let expected = UnixMillis(now.0 - duration.as_millis());
    let anchor = catalog
        .update::<ClockAnchor>(&pk, keys::ANCHOR, |current| match current {
            Some(anchor) if (anchor.wall_clock_of(start).0 - expected.0).abs() <= 10_000 => None,
            _ => Some(ClockAnchor {
                media: start,
                wall: expected,
            }),
        })
        .await?;
    Ok(anchor.unwrap_or(ClockAnchor {
        media: start,
        wall: expected,
    }))
}

/// The rendition's input target in seconds: the stored one, or the one this segment fixes
/// when it is the rendition's first (the first writer wins; the others read its value).
/// The inner error is a segment too long to be any rendition's first.
async fn input_target(
    app: &IngestServices,
    channel: &str,
    rendition: &str,
    duration: Ticks,
) -> Result<Result<u32, String>, IngestError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let sk = keys::target(rendition);
    let mut refused = None;
    let stored = catalog
        .update::<InputTarget>(&stream_partition(channel), &sk, |current| match current {
            Some(_) => None,
            None => match crate::live::target::target_of_first(duration) {
                Ok(seconds) => Some(InputTarget { seconds }),
                Err(e) => {
                    refused = Some(e);
                    None
                }
            },
        })
        .await?;
    Ok(match (stored, refused) {
        (Some(target), _) => Ok(target.seconds),
        (None, Some(e)) => Err(e),
        (None, None) => Err("no target duration".to_owned()),
    })
}

/// `later − earlier` between two 33-bit PTS values, the short way round the wrap.
fn pts_delta(earlier: u64, later: u64) -> i64 {
    let wrap = crate::time::PTS_WRAP as i64;
    let d = (later as i64 - earlier as i64).rem_euclid(wrap);
    if d > wrap / 2 {
        d - wrap
    } else {
        d
    }
}
