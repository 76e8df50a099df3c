//! The edge for Lambda events that are not HTTP requests: EventBridge's S3 "Object Created"
//! events for uploads API Gateway staged in the bucket (`ingest::staged`).
//!
//! Each event is one object. What the ingest flow refuses (not TS, a conflict, a channel
//! deleted meanwhile) cannot reach the encoder any more, which already got 201 from S3: it
//! is logged as an error with the reason and counted (`StagedUploadsRejected`, alarmed in
//! the template), and the event succeeds, since retrying would refuse it again. A store
//! that is busy or failing, or an fMP4 segment whose init segment has not been ingested
//! yet (events come in any order), makes the invocation fail, so Lambda retries the event;
//! one that fails every retry goes to the template's failed-events queue.

use crate::app::IngestServices;
use crate::ingest::{staged, IngestError};
use crate::time::UnixMillis;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

/// The `detail` of an S3 "Object Created" event (the fields used).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ObjectCreated {
    pub bucket: Bucket,
    pub object: Object,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Bucket {
    pub name: String,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Object {
    pub key: String,
    #[serde(default)]
    pub size: u64,
}

/// An S3 "Object Created" event as EventBridge delivers it.
pub type ObjectCreatedEvent = EventBridgeEvent<ObjectCreated>;

/// Why the event failed, for Lambda to retry it.
#[derive(Debug, thiserror::Error)]
#[error("staged upload {key:?} could not be ingested yet (retried): {error}")]
pub struct Retry {
    key: String,
    error: IngestError,
}

/// Ingests the object an event announces.
pub async fn object_created(app: &IngestServices, event: ObjectCreatedEvent) -> Result<(), Retry> {
    let key = event.detail.object.key.as_str();
    if event.source != "aws.s3" || event.detail_type != "Object Created" {
        tracing::error!(source = %event.source, detail_type = %event.detail_type, "not an S3 Object Created event; ignored");
        return Ok(());
    }
    let started = std::time::Instant::now();
    let created = event
        .time
        .map_or_else(UnixMillis::now, |t| UnixMillis(t.timestamp_millis()));
    match staged::accept_staged(app, key, created).await {
        Ok(upload) => {
            let millis = started.elapsed().as_secs_f64() * 1000.0;
            crate::metrics::emit(|| {
                crate::metrics::ingress(
                    created.0,
                    &upload.channel,
                    &upload.ingest_endpoint,
                    upload.bytes,
                    millis,
                )
            });
            tracing::info!(channel = %upload.channel, ingest_endpoint = %upload.ingest_endpoint,
                path = %upload.path, bytes = upload.bytes, outcome = ?upload.accepted, "staged upload ingested");
            Ok(())
        }
        Err(error @ (IngestError::Busy(_) | IngestError::Store(_) | IngestError::NotYet(_))) => Err(Retry {
            key: key.to_owned(),
            error,
        }),
        Err(error) => {
            let channel = crate::store::keys::parse_staged_object(key).map_or("-", |(channel, _, _)| channel);
            crate::metrics::emit(|| crate::metrics::staged_rejected(UnixMillis::now().0, channel));
            tracing::error!(key = %key, channel = %channel, error = %error, "staged upload refused");
            Ok(())
        }
    }
}
