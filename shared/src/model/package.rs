//! An origin endpoint's [`Package`], the fMP4 packages `cmafPackage` and `dashPackage`, and the
//! `streamSelection` every package shares, in their stored form (= the wire form).

use super::{HlsPackage, PlaylistType};
use serde::{Deserialize, Serialize};

/// `streamSelection`: which video renditions an endpoint offers, and in what order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamSelection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_video_bits_per_second: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_video_bits_per_second: Option<u64>,
    #[serde(default)]
    pub stream_order: StreamOrder,
}

/// `streamOrder`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamOrder {
    #[default]
    Original,
    VideoBitrateAscending,
    VideoBitrateDescending,
}

/// Which SCTE-35 messages would become ad markers (`adTriggers`,
/// `adsOnDeliveryRestrictions`). Sluice writes no ad markers yet (it accepts only
/// `adMarkers: NONE` and `periodTriggers: []`), so these change no output; they are kept
/// and echoed so that a MediaPackage configuration round-trips.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AdSelection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ad_triggers: Option<Vec<AdTrigger>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ads_on_delivery_restrictions: Option<AdsOnDeliveryRestrictions>,
}

/// One `adTriggers` entry: a SCTE-35 message type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AdTrigger {
    SpliceInsert,
    Break,
    ProviderAdvertisement,
    DistributorAdvertisement,
    ProviderPlacementOpportunity,
    DistributorPlacementOpportunity,
    ProviderOverlayPlacementOpportunity,
    DistributorOverlayPlacementOpportunity,
}

/// `adsOnDeliveryRestrictions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AdsOnDeliveryRestrictions {
    None,
    Restricted,
    Unrestricted,
    Both,
}

/// An origin endpoint's one package: the output it serves.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Package {
    /// HLS with MPEG-TS segments.
    #[serde(rename = "hlsPackage")]
    Hls(HlsPackage),
    /// HLS with CMAF (fragmented MP4) segments, one or more manifests.
    #[serde(rename = "cmafPackage")]
    Cmaf(CmafPackage),
    /// MPEG-DASH with CMAF segments.
    #[serde(rename = "dashPackage")]
    Dash(DashPackage),
}

/// `cmafPackage`: CMAF fMP4 segments, shared by one or more HLS manifests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CmafPackage {
    #[serde(default = "six")]
    pub segment_duration_seconds: u32,
    /// Segment file name prefix; the channel id when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_selection: Option<StreamSelection>,
    #[serde(default)]
    pub hls_manifests: Vec<CmafHlsManifest>,
    /// Common Encryption of the segments (`cbcs` or `cenc`), keys over SPEKE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<super::CmafEncryption>,
}

/// One entry of `cmafPackage.hlsManifests`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CmafHlsManifest {
    pub id: String,
    #[serde(default = "index")]
    pub manifest_name: String,
    #[serde(default = "sixty")]
    pub playlist_window_seconds: u32,
    #[serde(default)]
    pub program_date_time_interval_seconds: u32,
    #[serde(default)]
    pub playlist_type: PlaylistType,
    /// Adds an I-frame-only playlist per video rendition (`EXT-X-I-FRAME-STREAM-INF`).
    #[serde(default)]
    pub include_iframe_only_stream: bool,
    #[serde(flatten)]
    pub ad_selection: AdSelection,
}

/// `dashPackage`: a live DASH presentation of CMAF segments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DashPackage {
    #[serde(default = "two")]
    pub segment_duration_seconds: u32,
    /// `MPD@timeShiftBufferDepth` and the span of the SegmentTimeline.
    #[serde(default = "sixty")]
    pub manifest_window_seconds: u32,
    #[serde(default = "thirty")]
    pub min_buffer_time_seconds: u32,
    #[serde(default = "fifteen")]
    pub min_update_period_seconds: u32,
    #[serde(default = "twenty_five")]
    pub suggested_presentation_delay_seconds: u32,
    #[serde(default)]
    pub segment_template_format: SegmentTemplateFormat,
    #[serde(default)]
    pub manifest_layout: ManifestLayout,
    #[serde(default)]
    pub profile: DashProfile,
    #[serde(default)]
    pub utc_timing: UtcTiming,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utc_timing_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_selection: Option<StreamSelection>,
    #[serde(flatten)]
    pub ad_selection: AdSelection,
    /// Common Encryption (`cenc`) of the segments, keys over SPEKE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<super::DashEncryption>,
}

/// `segmentTemplateFormat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SegmentTemplateFormat {
    #[default]
    NumberWithTimeline,
    TimeWithTimeline,
    NumberWithDuration,
}

/// `manifestLayout`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ManifestLayout {
    #[default]
    Full,
    Compact,
    DrmTopLevelCompact,
}

/// `profile`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DashProfile {
    #[default]
    None,
    #[serde(rename = "HBBTV_1_5")]
    Hbbtv15,
    Hybridcast,
    #[serde(rename = "DVB_DASH_2014")]
    DvbDash2014,
}

/// `utcTiming`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum UtcTiming {
    #[default]
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "HTTP-HEAD")]
    HttpHead,
    #[serde(rename = "HTTP-ISO")]
    HttpIso,
    #[serde(rename = "HTTP-XSDATE")]
    HttpXsdate,
}

fn two() -> u32 {
    2
}
fn six() -> u32 {
    6
}
fn fifteen() -> u32 {
    15
}
fn twenty_five() -> u32 {
    25
}
fn thirty() -> u32 {
    30
}
fn sixty() -> u32 {
    60
}
fn index() -> String {
    "index".into()
}

#[cfg(test)]
mod tests {
    use super::super::OriginEndpoint;
    use super::*;

    /// An endpoint document as the catalog stored it before `package` was one field: the
    /// package under its MediaPackage name, the other two absent.
    const STORED: &str = r#"{"id":"e","guid":"g","channelId":"c","createdAt":0,"manifestName":"index",
        "dashPackage":{"segmentDurationSeconds":4,"segmentTemplateFormat":"TIME_WITH_TIMELINE"},
        "tags":{},"origination":"ALLOW"}"#;

    #[test]
    fn the_package_is_stored_under_its_mediapackage_name() {
        let endpoint: OriginEndpoint = serde_json::from_str(STORED).unwrap();
        let Package::Dash(dash) = &endpoint.package else {
            panic!("not DASH: {:?}", endpoint.package)
        };
        assert_eq!(dash.segment_duration_seconds, 4);
        assert_eq!(dash.segment_template_format, SegmentTemplateFormat::TimeWithTimeline);
        let again = serde_json::to_value(&endpoint).unwrap();
        let keys: Vec<&str> = again.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(keys.contains(&"dashPackage"), "{keys:?}");
        assert!(
            !keys
                .iter()
                .any(|k| ["package", "hlsPackage", "cmafPackage"].contains(k)),
            "{keys:?}"
        );
        assert_eq!(serde_json::from_value::<OriginEndpoint>(again).unwrap(), endpoint);
    }

    #[test]
    fn an_endpoint_without_a_package_does_not_parse() {
        let without = STORED.replace(r#""dashPackage""#, r#""otherPackage""#);
        assert!(serde_json::from_str::<OriginEndpoint>(&without).is_err());
    }
}
