//! Playback: `/out/v1/{endpoint}/{file}` → a manifest built from the index, or segment
//! bytes from the object store. [`serve`] answers a [`Reply`] or a [`PlaybackError`]; the
//! HTTP edge (`http::playback`) turns them into responses, with byte ranges, metrics and
//! access logs.
//!
//! One file per package kind: [`hls_ts`], [`cmaf`], [`dash`] (with [`segments`] for the
//! fMP4 segments both repackage, [`select`] for stream selection and track names,
//! [`ladder`] for the audio tracks and HLS rendition groups every package offers,
//! [`arrival`] for holding a new channel's manifests until its ladder has come);
//! [`window`] reads the published segments, [`reply`] says what an answer is, [`access`]
//! checks who may watch.

mod access;
mod arrival;
mod cenc;
mod cmaf;
mod dash;
mod hls_ts;
mod ladder;
mod protection;
mod reply;
mod segments;
mod select;
mod subtitles;
mod window;

pub use access::{Viewer, CDN_IDENTIFIER};
pub use hls_ts::{parse_file, PlaybackRequest};
pub use reply::{PlaybackError, Reply, ReplyBody, SEGMENT_MAX_AGE};
pub use select::{parse_segment_file, SegmentFile, TrackRef};

use crate::app::PlaybackServices;
use crate::catalog::Catalog;
use crate::model::{OriginEndpoint, Package};

/// Answers a request for `file` (under `dir`, for CMAF's manifest folders) of an origin
/// endpoint, once `viewer` passed its access control; `reached` is set to the endpoint
/// when it exists (for metrics and logs, whatever the answer).
pub async fn serve(
    app: &PlaybackServices,
    endpoint_id: &str,
    dir: Option<&str>,
    file: &str,
    viewer: &Viewer,
    reached: &mut Option<OriginEndpoint>,
) -> Result<Reply, PlaybackError> {
    let catalog = Catalog(app.stores.index.as_ref());
    let endpoint = catalog
        .endpoint(endpoint_id)
        .await?
        .ok_or_else(|| PlaybackError::not_found(format!("no origin endpoint {endpoint_id:?}")))?;
    *reached = Some(endpoint.clone());
    access::check(app, &endpoint, viewer).await?;
    match (&endpoint.package, dir) {
        (Package::Hls(hls), None) => hls_ts::serve_hls(app, &endpoint, hls, file).await,
        (Package::Cmaf(cmaf), _) => cmaf::serve_cmaf(app, &endpoint, cmaf, dir, file).await,
        (Package::Dash(dash), None) => dash::serve_dash(app, &endpoint, dash, file).await,
        (Package::Hls(_), Some(_)) => Err(PlaybackError::not_found(format!(
            "no such file under HLS endpoint {endpoint_id:?}"
        ))),
        (Package::Dash(_), Some(_)) => Err(PlaybackError::not_found(format!(
            "no such file under DASH endpoint {endpoint_id:?}"
        ))),
    }
}
