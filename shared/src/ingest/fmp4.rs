//! CMAF / fMP4 ingest: init segments are kept in the index; media segments are rewritten
//! as TS with their rendition's init segment and then take the TS path.

use super::Upload;
use super::{Accepted, IngestError};
use crate::app::IngestServices;
use crate::catalog::Catalog;
use crate::media::{fmp4, tsmux};
use crate::store::{keys, Condition};
use crate::time::UnixMillis;

/// An encoder's fMP4 init segment (`EXT-X-MAP`), kept whole: it is small (about 1 KB).
#[derive(serde::Serialize, serde::Deserialize)]
struct InitSegment {
    /// Base64 of the bytes.
    bytes: String,
    received_at: UnixMillis,
}

/// CMAF / fMP4 ingest (ffmpeg `-hls_segment_type fmp4`): init segments are remembered;
/// each media segment is rewritten as TS with the init segment of its rendition and then
/// indexed exactly like a TS segment, so every output (HLS TS, CMAF, DASH) serves it.
pub(super) async fn ingest_fmp4(app: &IngestServices, up: Upload<'_>) -> Result<Accepted, IngestError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let catalog = Catalog(app.stores.index.as_ref());
    let pk = keys::init_partition(&up.channel.id);
    if fmp4::is_init(&up.body) {
        let init =
            fmp4::parse_init(&up.body).map_err(|e| IngestError::Invalid(format!("init segment {}: {e}", up.path)))?;
        let doc = InitSegment {
            bytes: b64.encode(&up.body),
            received_at: up.now,
        };
        catalog
            .put(&pk, &keys::init(&up.endpoint.id, up.path), &doc, Condition::Always)
            .await?;
        tracing::info!(path = %up.path, tracks = init.tracks.len(), "fMP4 init segment stored");
        return Ok(Accepted::Stored);
    }
    let prefix = keys::init_prefix(&up.endpoint.id);
    // ffmpeg sends the init segment and, without waiting for that answer, the first media
    // segment on another connection: give the init's handler a moment (bounded) to store it.
    let mut inits: Vec<(String, InitSegment)> = Vec::new();
    for attempt in 0..15 {
        inits.clear();
        for (sk, bytes) in app.stores.index.list_docs(&pk, None, 1000).await? {
            if let Some(path) = sk.strip_prefix(&prefix) {
                let doc: InitSegment = serde_json::from_slice(&bytes)
                    .map_err(|e| IngestError::Corrupt(format!("init record {sk}: {e}")))?;
                inits.push((path.to_owned(), doc));
            }
        }
        if init_for(up.path, &inits).is_some() || attempt == 14 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let Some(init) = init_for(up.path, &inits) else {
        return Err(IngestError::NotYet(format!(
            "fMP4 segment {} arrived before any init segment in its folder; send the init segment (EXT-X-MAP) first",
            up.path
        )));
    };
    let init_bytes = b64
        .decode(&init.bytes)
        .map_err(|e| IngestError::Corrupt(format!("init record: {e}")))?;
    let init = fmp4::parse_init(&init_bytes).map_err(|e| IngestError::Corrupt(format!("stored init segment: {e}")))?;
    let ts_bytes =
        tsmux::to_ts(&init, &up.body).map_err(|e| IngestError::Invalid(format!("fMP4 segment {}: {e}", up.path)))?;
    super::segment::ingest_segment(
        app,
        Upload {
            body: ts_bytes.into(),
            ..up
        },
    )
    .await
}

/// The init segment of the media segment at `path`: among those uploaded to the same
/// folder, the only one, else the one whose name (without "init") names the segment's
/// variant (`init_1.mp4` ↔ `seg_1_00042.m4s`), else the newest.
fn init_for<'a>(path: &str, inits: &'a [(String, InitSegment)]) -> Option<&'a InitSegment> {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    let same_dir: Vec<&(String, InitSegment)> = inits
        .iter()
        .filter(|(p, _)| p.rsplit_once('/').map_or("", |(d, _)| d) == dir)
        .collect();
    if same_dir.len() <= 1 {
        return same_dir.first().map(|(_, doc)| doc);
    }
    let tokens = |stem: &str| -> Vec<String> {
        stem.split(['_', '-', '.'])
            .filter(|t| !t.is_empty())
            .map(str::to_ascii_lowercase)
            .collect()
    };
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let variant = stem
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches(['_', '-', '.']);
    let segment_tokens = tokens(variant);
    let named = same_dir.iter().find(|(p, _)| {
        let name = p.rsplit('/').next().unwrap_or(p);
        let name = name.rsplit_once('.').map_or(name, |(s, _)| s).to_ascii_lowercase();
        let rest: Vec<String> = tokens(&name.replace("init", ""));
        !rest.is_empty() && rest.iter().all(|t| segment_tokens.contains(t))
    });
    named
        .or_else(|| same_dir.iter().max_by_key(|(_, doc)| doc.received_at.0))
        .map(|(_, doc)| doc)
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_segments_find_their_init_segment() {
        let doc = |at: i64| InitSegment {
            bytes: at.to_string(),
            received_at: UnixMillis(at),
        };
        let found = |path: &str, inits: &[(String, InitSegment)]| init_for(path, inits).map(|d| d.bytes.clone());
        // One folder per rendition (ffmpeg with %v in the folder).
        let per_folder = [
            ("360p/init.mp4".to_owned(), doc(1)),
            ("180p/init.mp4".to_owned(), doc(2)),
        ];
        assert_eq!(found("360p/seg_00007.m4s", &per_folder).as_deref(), Some("1"));
        assert_eq!(found("180p/seg_00007.m4s", &per_folder).as_deref(), Some("2"));
        assert_eq!(found("720p/seg_00007.m4s", &per_folder), None);
        // One folder for all (ffmpeg with %v in the file names).
        let flat = [("init_0.mp4".to_owned(), doc(1)), ("init_1.mp4".to_owned(), doc(2))];
        assert_eq!(found("seg_1_00003.m4s", &flat).as_deref(), Some("2"));
        assert_eq!(found("seg_0_00003.m4s", &flat).as_deref(), Some("1"));
        // Names that say nothing: the newest.
        assert_eq!(found("video00003.m4s", &flat).as_deref(), Some("2"));
    }
}
