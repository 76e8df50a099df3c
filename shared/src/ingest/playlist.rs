//! The encoder's playlists: the multivariant playlist gives the renditions' order and
//! declared bit rates, a media playlist names its rendition and, with `#EXT-X-ENDLIST`,
//! ends its input.

use super::Upload;
use super::{Accepted, IngestError};
use crate::app::IngestServices;
use crate::catalog::{stream_partition, Catalog, IngestAudio, IngestMaster, IngestPlaylist, IngestSubtitles};
use crate::live::naming::rendition_id;
use crate::media::ts;
use crate::model::Rendition;
use crate::store::{keys, Condition};

/// The encoder ended this input's stream (`#EXT-X-ENDLIST`): recorded on the rendition,
/// whose playlists end once every recently active input has ended.
async fn end_of_stream(app: &IngestServices, up: &Upload<'_>, rendition: &str) -> Result<(), IngestError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let pk = stream_partition(&up.channel.id);
    let sk = keys::rendition(rendition);
    catalog
        .update::<Rendition>(&pk, &sk, |doc| {
            let mut doc = doc?.clone();
            doc.inputs.entry(up.endpoint.id.clone()).or_default().ended = Some(up.now);
            Some(doc)
        })
        .await?;
    tracing::info!(rendition, "encoder sent #EXT-X-ENDLIST");
    Ok(())
}

/// What m3u8-rs lets through but no encoder writes: URIs with spaces or control
/// characters, and segment durations that are not a positive number of seconds.
fn check_playlist(playlist: &m3u8_rs::Playlist) -> Result<(), String> {
    let uri_ok = |uri: &str| !uri.is_empty() && !uri.chars().any(|c| c.is_control() || c.is_whitespace());
    match playlist {
        m3u8_rs::Playlist::MasterPlaylist(master) => {
            if let Some(v) = master.variants.iter().find(|v| !uri_ok(&v.uri)) {
                return Err(format!("variant URI {:?} is not a URI", v.uri));
            }
        }
        m3u8_rs::Playlist::MediaPlaylist(media) => {
            for (n, segment) in media.segments.iter().enumerate() {
                if !uri_ok(&segment.uri) {
                    return Err(format!("segment {n} has URI {:?}, which is not a URI", segment.uri));
                }
                let d = segment.duration;
                if !(d.is_finite() && d > 0.0 && d <= ts::MAX_SPAN_SECONDS as f32) {
                    return Err(format!(
                        "segment {n} ({}) has #EXTINF duration {d}, not a number of seconds in (0, {}]",
                        segment.uri,
                        ts::MAX_SPAN_SECONDS
                    ));
                }
            }
        }
    }
    Ok(())
}

pub(super) async fn ingest_playlist(app: &IngestServices, up: Upload<'_>) -> Result<Accepted, IngestError> {
    let playlist = m3u8_rs::parse_playlist_res(&up.body)
        .map_err(|_| IngestError::Invalid(format!("playlist {}: not a valid HLS playlist (RFC 8216)", up.path)))?;
    check_playlist(&playlist).map_err(|e| IngestError::Invalid(format!("playlist {}: {e}", up.path)))?;
    let catalog = Catalog(app.stores.index.as_ref());
    let pk = stream_partition(&up.channel.id);
    let dir = up.path.rsplit_once('/').map_or("", |(d, _)| d);
    let resolve = |uri: &str| -> String {
        let uri = uri.split('?').next().unwrap_or(uri);
        if dir.is_empty() || uri.starts_with('/') || uri.contains("://") {
            uri.rsplit("://")
                .next()
                .unwrap_or(uri)
                .trim_start_matches('/')
                .to_owned()
        } else {
            format!("{dir}/{uri}")
        }
    };
    match &playlist {
        m3u8_rs::Playlist::MasterPlaylist(master) => {
            let variants = master
                .variants
                .iter()
                .filter(|v| !v.is_i_frame)
                .map(|v| (resolve(&v.uri), v.bandwidth))
                .collect();
            let audio = master
                .alternatives
                .iter()
                .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio)
                .filter_map(|a| {
                    Some(IngestAudio {
                        path: resolve(a.uri.as_deref()?),
                        language: a.language.clone(),
                        name: a.name.clone(),
                        default: a.default,
                        channels: a.channels.clone(),
                    })
                })
                .collect();
            let subtitles = master
                .alternatives
                .iter()
                .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Subtitles)
                .filter_map(|a| {
                    Some(IngestSubtitles {
                        path: resolve(a.uri.as_deref()?),
                        language: a.language.clone(),
                        name: a.name.clone(),
                        default: a.default,
                        forced: a.forced,
                    })
                })
                .collect();
            let master = IngestMaster {
                variants,
                audio,
                subtitles,
            };
            if catalog.get::<IngestMaster>(&pk, keys::MASTER).await?.as_ref() != Some(&master) {
                catalog.put(&pk, keys::MASTER, &master, Condition::Always).await?;
            }
        }
        m3u8_rs::Playlist::MediaPlaylist(media) => {
            if let Some(first) = media.segments.first() {
                let mapping = IngestPlaylist {
                    rendition: rendition_id(&resolve(&first.uri)),
                };
                let sk = keys::playlist(up.path);
                if catalog.get::<IngestPlaylist>(&pk, &sk).await?.as_ref() != Some(&mapping) {
                    catalog.put(&pk, &sk, &mapping, Condition::Always).await?;
                }
                if media.end_list {
                    end_of_stream(app, &up, &mapping.rendition).await?;
                }
            }
        }
    }
    let key = keys::upload_object(&up.channel.id, &up.endpoint.id, up.path);
    app.stores
        .objects
        .put(&key, up.body, "application/vnd.apple.mpegurl")
        .await?;
    tracing::debug!(path = %up.path, "playlist stored");
    Ok(Accepted::Stored)
}
