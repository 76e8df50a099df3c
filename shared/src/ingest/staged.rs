//! Staged uploads: the large-segment path in AWS. API Gateway's S3 integration writes an
//! encoder's PUT body under [`keys::staged_object`] once the staged-ingest authorizer has
//! checked its credentials (`http::authorizer`); S3 announces the object, and this turns it
//! into the [`Upload`] the ingest function would have made, so segments up to API Gateway's
//! 10 MB payload never pass through a Lambda request (6 MB).
//!
//! The staged object itself is left for the bucket's lifecycle rule (one day): re-reading it
//! is how a failed indexing is retried, and S3 announces each object at least once, which
//! [`accept`] tolerates (a re-sent segment is `Unchanged`).

use super::{accept, check_path, Accepted, IngestError, Upload};
use crate::app::IngestServices;
use crate::catalog::Catalog;
use crate::store::keys;
use crate::time::UnixMillis;

/// What became of a staged upload the ingest flow accepted.
#[derive(Debug)]
pub struct StagedUpload {
    pub channel: String,
    pub ingest_endpoint: String,
    pub path: String,
    pub bytes: u64,
    pub accepted: Accepted,
}

/// Ingests the staged object `key`, created at `created` (the upload's arrival time).
///
/// `key` may come URL-encoded (S3 event notifications encode keys; `+` is a space): its
/// decoded form is tried first, then the key as given. (In AWS a missing key is a 404 only
/// with `s3:ListBucket` on the bucket, which the template grants; otherwise S3 answers
/// 403, an error here.)
pub async fn accept_staged(app: &IngestServices, key: &str, created: UnixMillis) -> Result<StagedUpload, IngestError> {
    let decoded = decode_key(key);
    let mut found = None;
    let candidates = if decoded == key {
        vec![key]
    } else {
        vec![decoded.as_str(), key]
    };
    for candidate in candidates {
        if keys::parse_staged_object(candidate).is_none() {
            continue;
        }
        if let Some(body) = app.stores.objects.get(candidate).await? {
            found = Some((candidate, body));
            break;
        }
    }
    let Some((key, body)) = found else {
        return Err(match keys::parse_staged_object(key) {
            None => IngestError::Invalid(format!(
                "{key:?} is not a staged upload: expected {}{{channel}}/{{ingest endpoint}}/{{path}}",
                keys::STAGED_PREFIX
            )),
            Some(_) => IngestError::Invalid(format!(
                "staged upload {key:?} is not in the bucket (expired or deleted)"
            )),
        });
    };
    let (channel_id, ingest_id, path) = keys::parse_staged_object(key).expect("checked above");
    let channel = Catalog(app.stores.index.as_ref())
        .channel(channel_id)
        .await?
        .ok_or_else(|| IngestError::Invalid(format!("no channel {channel_id:?} (deleted since the upload?)")))?;
    let endpoint = channel
        .ingest_endpoint(ingest_id)
        .ok_or_else(|| IngestError::Invalid(format!("channel {channel_id:?} has no ingest endpoint {ingest_id:?}")))?;
    let limit = app.config.max_segment_bytes;
    if body.len() > limit {
        return Err(IngestError::Invalid(format!(
            "staged upload of {} bytes is larger than this function's limit of {limit} bytes (SLUICE_MAX_SEGMENT_BYTES)",
            body.len()
        )));
    }
    let path = check_path(&channel, endpoint, path)?;
    let bytes = body.len() as u64;
    let accepted = accept(
        app,
        Upload {
            channel: &channel,
            endpoint,
            path: &path,
            body,
            now: created,
        },
    )
    .await?;
    Ok(StagedUpload {
        channel: channel.id.clone(),
        ingest_endpoint: endpoint.id.clone(),
        path,
        bytes,
        accepted,
    })
}

/// `key` with `+` as a space and `%XX` escapes decoded, as S3 event notifications encode it.
fn decode_key(key: &str) -> String {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, IngestEndpoint};

    #[test]
    fn staged_keys_name_channel_endpoint_and_path() {
        let key = keys::staged_object("ch", "ie", "live/index_1080p_00001.ts");
        assert_eq!(key, "staged.uploads/ch/ie/live/index_1080p_00001.ts");
        assert_eq!(
            keys::parse_staged_object(&key),
            Some(("ch", "ie", "live/index_1080p_00001.ts"))
        );
        for not_staged in [
            "ch/ie/a.ts",
            "staged.uploads/ch/ie/",
            "staged.uploads/ch//a.ts",
            "staged.uploads/ch",
        ] {
            assert_eq!(keys::parse_staged_object(not_staged), None, "{not_staged}");
        }
        assert_eq!(
            decode_key("staged.uploads/ch/ie/a+b%2B%28c%29.ts"),
            "staged.uploads/ch/ie/a b+(c).ts"
        );
    }

    fn services() -> IngestServices {
        let config = crate::config::Config::from_settings(|name| match name {
            "SLUICE_STORE" => Some("memory".into()),
            "SLUICE_MAX_SEGMENT_BYTES" => Some("64".into()),
            _ => None,
        })
        .unwrap();
        IngestServices {
            config: std::sync::Arc::new(config),
            stores: crate::store::Stores::memory(),
        }
    }

    async fn channel(app: &IngestServices) -> Channel {
        let channel = Channel {
            id: "ch".into(),
            guid: "0".repeat(32),
            created_at: UnixMillis(0),
            description: None,
            tags: Default::default(),
            ingest_endpoints: vec![IngestEndpoint {
                id: "ie".into(),
                username: "u".into(),
                password: "p".into(),
            }],
            egress_log_group: None,
            ingress_log_group: None,
        };
        Catalog(app.stores.index.as_ref())
            .put(keys::CHANNELS, "ch", &channel, crate::store::Condition::IfAbsent)
            .await
            .unwrap();
        channel
    }

    fn invalid(result: Result<StagedUpload, IngestError>) -> String {
        match result {
            Err(IngestError::Invalid(m)) => m,
            other => panic!("not Invalid: {other:?}"),
        }
    }

    #[tokio::test]
    async fn staged_objects_are_refused_with_the_reason_when_nothing_can_be_ingested() {
        let app = services();
        let now = UnixMillis(1_700_000_000_000);
        let m = invalid(accept_staged(&app, "ch/ie/a.ts", now).await);
        assert!(m.contains("not a staged upload"), "{m}");
        let m = invalid(accept_staged(&app, "staged.uploads/ch/ie/a.ts", now).await);
        assert!(m.contains("not in the bucket"), "{m}");
        let put = |key: &str, len: usize| {
            let objects = app.stores.objects.clone();
            let key = key.to_owned();
            async move { objects.put(&key, vec![0x47; len].into(), "video/mp2t").await.unwrap() }
        };
        put("staged.uploads/gone/ie/a.ts", 10).await;
        let m = invalid(accept_staged(&app, "staged.uploads/gone/ie/a.ts", now).await);
        assert!(m.contains("no channel \"gone\""), "{m}");
        channel(&app).await;
        put("staged.uploads/ch/other/a.ts", 10).await;
        let m = invalid(accept_staged(&app, "staged.uploads/ch/other/a.ts", now).await);
        assert!(m.contains("no ingest endpoint \"other\""), "{m}");
        put("staged.uploads/ch/ie/big.ts", 65).await;
        let m = invalid(accept_staged(&app, "staged.uploads/ch/ie/big.ts", now).await);
        assert!(m.contains("65 bytes") && m.contains("limit of 64"), "{m}");
    }

    #[tokio::test]
    async fn a_staged_playlist_is_ingested_under_its_encoded_or_plain_key() {
        let app = services();
        channel(&app).await;
        let playlist = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n";
        let key = keys::staged_object("ch", "ie", "a b.m3u8");
        app.stores
            .objects
            .put(&key, playlist.as_bytes().to_vec().into(), "application/x-mpegURL")
            .await
            .unwrap();
        let raw = keys::staged_object("ch", "ie", "c+d.m3u8");
        app.stores
            .objects
            .put(&raw, playlist.as_bytes().to_vec().into(), "application/x-mpegURL")
            .await
            .unwrap();
        let now = UnixMillis(1_700_000_000_000);
        // An encoded key, a plain one, and a plain one whose `+` is its own (no "c d.m3u8").
        for (announced, path) in [
            ("staged.uploads/ch/ie/a+b.m3u8", "a b.m3u8"),
            ("staged.uploads/ch/ie/a b.m3u8", "a b.m3u8"),
            ("staged.uploads/ch/ie/c+d.m3u8", "c+d.m3u8"),
        ] {
            let staged = accept_staged(&app, announced, now).await.unwrap();
            assert_eq!((staged.channel.as_str(), staged.ingest_endpoint.as_str()), ("ch", "ie"));
            assert_eq!((staged.path.as_str(), staged.bytes), (path, playlist.len() as u64));
        }
    }
}
