//! The records Sluice keeps: channels and origin endpoints (the MediaPackage classic
//! resources, in their stored form), and what ingest learns about the live stream
//! (renditions and segment records). Wire rendering lives in `api`.

mod captions;
mod encryption;
mod package;
mod rendition;
mod segment;

pub use captions::*;
pub use encryption::*;
pub use package::*;
pub use rendition::*;
pub use segment::*;

use crate::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A live channel: the unit an encoder pushes to. Has two ingest endpoints (A/B).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: String,
    /// Unique id behind the ARN (32 hex digits).
    pub guid: String,
    pub created_at: UnixMillis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    pub ingest_endpoints: Vec<IngestEndpoint>,
    /// CloudWatch log group for egress access logs, when enabled by ConfigureLogs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_log_group: Option<String>,
    /// CloudWatch log group for ingress access logs, when enabled by ConfigureLogs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_log_group: Option<String>,
}

impl Channel {
    /// The ingest endpoint with this id.
    pub fn ingest_endpoint(&self, id: &str) -> Option<&IngestEndpoint> {
        self.ingest_endpoints.iter().find(|e| e.id == id)
    }

    /// `arn:aws:mediapackage:{region}:{account}:channels/{guid}`.
    pub fn arn(&self, region: &str, account: &str) -> String {
        format!("arn:aws:mediapackage:{region}:{account}:channels/{}", self.guid)
    }
}

impl OriginEndpoint {
    /// `arn:aws:mediapackage:{region}:{account}:origin_endpoints/{guid}`.
    pub fn arn(&self, region: &str, account: &str) -> String {
        format!("arn:aws:mediapackage:{region}:{account}:origin_endpoints/{}", self.guid)
    }
}

/// An IPv4 CIDR block (`a.b.c.d/n`, or an address alone for /32) as (network, mask).
pub fn parse_cidr(text: &str) -> Option<(u32, u32)> {
    let (address, bits) = match text.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok().filter(|b| *b <= 32)?),
        None => (text, 32),
    };
    let address: std::net::Ipv4Addr = address.parse().ok()?;
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    Some((u32::from(address) & mask, mask))
}

/// One of a channel's two ingest endpoints, with its WebDAV credentials.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestEndpoint {
    pub id: String,
    pub username: String,
    pub password: String,
}

impl IngestEndpoint {
    /// A new endpoint with generated id and credentials.
    pub fn generate(id: String) -> IngestEndpoint {
        IngestEndpoint {
            id,
            username: random_hex(),
            password: random_hex(),
        }
    }

    /// The same endpoint with new credentials: the old password stops working at once.
    pub fn rotated(&self) -> IngestEndpoint {
        IngestEndpoint::generate(self.id.clone())
    }
}

/// 32 random hex digits (128 bits): ids and generated credentials.
pub fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// An origin endpoint: one packaging configuration of a channel, with its playback URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OriginEndpoint {
    pub id: String,
    pub guid: String,
    pub channel_id: String,
    pub created_at: UnixMillis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub manifest_name: String,
    /// What the endpoint serves; stored as one of `hlsPackage`, `cmafPackage`,
    /// `dashPackage`, as MediaPackage names them.
    #[serde(flatten)]
    pub package: Package,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// CDN authorization: requests must carry the secret's `X-MediaPackage-CDNIdentifier`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<CdnAuthorization>,
    /// IPv4 CIDR blocks allowed to play; empty = everyone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub whitelist: Vec<String>,
    #[serde(default)]
    pub origination: Origination,
}

/// `authorization` of an origin endpoint (MediaPackage v1 wire names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CdnAuthorization {
    /// ARN (or name) of the Secrets Manager secret holding the CDN identifier.
    pub cdn_identifier_secret: String,
    /// The role MediaPackage would assume to read it; kept for compatibility (Sluice's
    /// playback function reads the secret with its own role).
    pub secrets_role_arn: String,
}

/// `origination`: whether the endpoint serves players at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Origination {
    #[default]
    Allow,
    Deny,
}

/// `hlsPackage`: HLS with MPEG-TS segments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HlsPackage {
    /// Target output segment duration; rounded to a whole multiple of the input duration.
    #[serde(default = "default_segment_duration")]
    pub segment_duration_seconds: u32,
    /// Length of the live media playlist window.
    #[serde(default = "default_playlist_window")]
    pub playlist_window_seconds: u32,
    /// Interval between `EXT-X-PROGRAM-DATE-TIME` tags; 0 = none.
    #[serde(default)]
    pub program_date_time_interval_seconds: u32,
    #[serde(default)]
    pub playlist_type: PlaylistType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_selection: Option<StreamSelection>,
    /// Adds an I-frame-only playlist per video rendition (`EXT-X-I-FRAME-STREAM-INF`).
    #[serde(default)]
    pub include_iframe_only_stream: bool,
    /// `useAudioRenditionGroup`: kept and echoed; output follows the input's audio layout
    /// (audio-only renditions grouped, muxed audio muxed) until Sluice can split or mux.
    #[serde(default)]
    pub use_audio_rendition_group: bool,
    #[serde(flatten)]
    pub ad_selection: AdSelection,
    /// AES-128 or SAMPLE-AES with keys from a SPEKE key provider; absent: clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<HlsEncryption>,
}

fn default_segment_duration() -> u32 {
    6
}

fn default_playlist_window() -> u32 {
    60
}

impl Default for HlsPackage {
    fn default() -> Self {
        HlsPackage {
            segment_duration_seconds: default_segment_duration(),
            playlist_window_seconds: default_playlist_window(),
            program_date_time_interval_seconds: 0,
            playlist_type: PlaylistType::None,
            include_iframe_only_stream: false,
            stream_selection: None,
            use_audio_rendition_group: false,
            ad_selection: AdSelection::default(),
            encryption: None,
        }
    }
}

/// `playlistType`: whether `EXT-X-PLAYLIST-TYPE` is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PlaylistType {
    #[default]
    None,
    Event,
    Vod,
}
