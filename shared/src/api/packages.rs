//! Validation and wire rendering of `cmafPackage`, `dashPackage` and `streamSelection`
//! (spec: MediaPackage classic `CmafPackageCreateOrUpdateParameters`, `DashPackage`,
//! `StreamSelection`). Values Sluice cannot honour yet are refused with 422 naming the field.

use super::*;
use crate::model::{
    AdSelection, CmafHlsManifest, CmafPackage, DashPackage, SegmentTemplateFormat, StreamSelection, UtcTiming,
};

/// Validates a `streamSelection` object under `path`.
fn stream_selection(path: &str, value: Option<&Value>) -> Result<Option<StreamSelection>> {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Value::Object(map) = value else {
        return Err(ControlError::Unprocessable(format!(
            "{path}streamSelection must be an object"
        )));
    };
    let selection: StreamSelection = parse(&format!("{path}streamSelection"), map.clone())?;
    if let (Some(min), Some(max)) = (selection.min_video_bits_per_second, selection.max_video_bits_per_second) {
        if min > max {
            return Err(ControlError::Unprocessable(format!(
                "{path}streamSelection.minVideoBitsPerSecond {min} is above maxVideoBitsPerSecond {max}"
            )));
        }
    }
    Ok(Some(selection))
}

fn in_range(path: &str, field: &str, value: u32, range: std::ops::RangeInclusive<u32>) -> Result<()> {
    if range.contains(&value) {
        return Ok(());
    }
    Err(ControlError::Unprocessable(format!(
        "{path}{field} {value} must be between {} and {}",
        range.start(),
        range.end()
    )))
}

/// `hlsPackage.streamSelection`.
pub(super) fn hls_stream_selection(map: &Map<String, Value>) -> Result<Option<StreamSelection>> {
    stream_selection("hlsPackage.", map.get("streamSelection"))
}

/// Validates a `cmafPackage` request object.
pub(super) fn cmaf_package(mut map: Map<String, Value>) -> Result<CmafPackage> {
    refuse_unsupported(
        &map,
        "cmafPackage.",
        &[
            "segmentDurationSeconds",
            "segmentPrefix",
            "streamSelection",
            "hlsManifests",
            "encryption",
        ],
        &[],
    )?;
    let selection = stream_selection("cmafPackage.", map.get("streamSelection"))?;
    map.remove("streamSelection");
    let encryption = map.remove("encryption").filter(|v| !v.is_null());
    let manifests = match map.remove("hlsManifests") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ControlError::Unprocessable(
                "cmafPackage.hlsManifests must be a list".into(),
            ))
        }
    };
    let mut package: CmafPackage = parse("cmafPackage", map)?;
    package.stream_selection = selection;
    for (i, item) in manifests.into_iter().enumerate() {
        let path = format!("cmafPackage.hlsManifests[{i}].");
        let Value::Object(item) = item else {
            return Err(ControlError::Unprocessable(format!("{path} must be an object")));
        };
        refuse_unsupported(
            &item,
            &path,
            &[
                "id",
                "manifestName",
                "playlistWindowSeconds",
                "programDateTimeIntervalSeconds",
                "playlistType",
                "includeIframeOnlyStream",
                "adTriggers",
                "adsOnDeliveryRestrictions",
            ],
            &[("adMarkers", json!("NONE"))],
        )?;
        let mut item = item;
        let ad_selection = take_ad_selection(&path, &mut item)?;
        let mut manifest: CmafHlsManifest = parse(&path, item)?;
        manifest.ad_selection = ad_selection;
        check_id(&format!("{path}id"), &manifest.id)?;
        check_id(&format!("{path}manifestName"), &manifest.manifest_name)?;
        in_range(
            &path,
            "playlistWindowSeconds",
            manifest.playlist_window_seconds,
            5..=86_400,
        )?;
        in_range(
            &path,
            "programDateTimeIntervalSeconds",
            manifest.program_date_time_interval_seconds,
            0..=3600,
        )?;
        if package.hls_manifests.iter().any(|m| m.id == manifest.id) {
            return Err(ControlError::Unprocessable(format!(
                "{path}id {:?} is used twice; HLS manifest ids are unique within an endpoint",
                manifest.id
            )));
        }
        package.hls_manifests.push(manifest);
    }
    if package.hls_manifests.is_empty() {
        return Err(ControlError::Unprocessable(
            "cmafPackage.hlsManifests needs at least one HLS manifest (id, manifestName)".into(),
        ));
    }
    let iframes = package.hls_manifests.iter().any(|m| m.include_iframe_only_stream);
    package.encryption = encryption
        .map(|e| super::encryption::cmaf_encryption(&e, iframes))
        .transpose()?;
    in_range(
        "cmafPackage.",
        "segmentDurationSeconds",
        package.segment_duration_seconds,
        1..=30,
    )?;
    if let Some(prefix) = &package.segment_prefix {
        check_id("cmafPackage.segmentPrefix", prefix)?;
    }
    Ok(package)
}

/// Validates a `dashPackage` request object. `previous` is the stored package on update
/// (`NUMBER_WITH_DURATION` is chosen at create time only and fixes the segment duration).
pub(super) fn dash_package(mut map: Map<String, Value>, previous: Option<&DashPackage>) -> Result<DashPackage> {
    refuse_unsupported(
        &map,
        "dashPackage.",
        &[
            "segmentDurationSeconds",
            "manifestWindowSeconds",
            "minBufferTimeSeconds",
            "minUpdatePeriodSeconds",
            "suggestedPresentationDelaySeconds",
            "segmentTemplateFormat",
            "manifestLayout",
            "profile",
            "utcTiming",
            "utcTimingUri",
            "streamSelection",
            "adTriggers",
            "adsOnDeliveryRestrictions",
            "encryption",
        ],
        &[("periodTriggers", json!([])), ("includeIframeOnlyStream", json!(false))],
    )?;
    let selection = stream_selection("dashPackage.", map.get("streamSelection"))?;
    map.remove("streamSelection");
    let encryption = map.remove("encryption").filter(|v| !v.is_null());
    let ad_selection = take_ad_selection("dashPackage.", &mut map)?;
    let mut package: DashPackage = parse("dashPackage", map)?;
    package.stream_selection = selection;
    package.ad_selection = ad_selection;
    package.encryption = encryption.map(|e| super::encryption::dash_encryption(&e)).transpose()?;
    let rotating = package
        .encryption
        .as_ref()
        .map_or(0, |e| e.key_rotation_interval_seconds);
    if rotating != 0 && package.segment_template_format == SegmentTemplateFormat::NumberWithDuration {
        return Err(ControlError::Unprocessable(format!(
            "dashPackage.encryption.keyRotationIntervalSeconds {rotating}: key rotation starts a new Period at \
             each key change, which segmentTemplateFormat NUMBER_WITH_DURATION cannot have (as with \
             periodTriggers); use NUMBER_WITH_TIMELINE or TIME_WITH_TIMELINE, or set 0 (the default is 60)"
        )));
    }
    in_range(
        "dashPackage.",
        "segmentDurationSeconds",
        package.segment_duration_seconds,
        1..=30,
    )?;
    in_range(
        "dashPackage.",
        "manifestWindowSeconds",
        package.manifest_window_seconds,
        5..=86_400,
    )?;
    in_range(
        "dashPackage.",
        "minBufferTimeSeconds",
        package.min_buffer_time_seconds,
        0..=3600,
    )?;
    in_range(
        "dashPackage.",
        "minUpdatePeriodSeconds",
        package.min_update_period_seconds,
        0..=3600,
    )?;
    in_range(
        "dashPackage.",
        "suggestedPresentationDelaySeconds",
        package.suggested_presentation_delay_seconds,
        0..=3600,
    )?;
    if package.manifest_layout == crate::model::ManifestLayout::DrmTopLevelCompact {
        return Err(ControlError::Unprocessable(
            "dashPackage.manifestLayout DRM_TOP_LEVEL_COMPACT is not supported by Sluice yet (ContentProtection is written in each AdaptationSet); use FULL or COMPACT".into(),
        ));
    }
    if package.profile == crate::model::DashProfile::Hybridcast {
        return Err(ControlError::Unprocessable(
            "dashPackage.profile HYBRIDCAST is not supported by Sluice yet; use NONE, HBBTV_1_5 or DVB_DASH_2014"
                .into(),
        ));
    }
    if package.utc_timing != UtcTiming::None && package.utc_timing_uri.as_deref().is_some_and(str::is_empty) {
        return Err(ControlError::Unprocessable(
            "dashPackage.utcTimingUri is empty; omit it to use Sluice's own time source".into(),
        ));
    }
    if let Some(previous) = previous {
        let was = previous.segment_template_format == SegmentTemplateFormat::NumberWithDuration;
        let is = package.segment_template_format == SegmentTemplateFormat::NumberWithDuration;
        if was != is {
            return Err(ControlError::Unprocessable(
                "dashPackage.segmentTemplateFormat NUMBER_WITH_DURATION can only be chosen when the endpoint is created"
                    .into(),
            ));
        }
        if was && previous.segment_duration_seconds != package.segment_duration_seconds {
            return Err(ControlError::Unprocessable(
                "dashPackage.segmentDurationSeconds cannot change with segmentTemplateFormat NUMBER_WITH_DURATION"
                    .into(),
            ));
        }
    }
    Ok(package)
}

/// `cmafPackage` on the wire, with each HLS manifest's playback URL.
pub(super) fn cmaf_json(base: &str, endpoint_id: &str, package: &CmafPackage) -> Value {
    let mut v = serde_json::to_value(package).unwrap_or_default();
    if let Some(Value::Array(manifests)) = v.get_mut("hlsManifests") {
        for (m, manifest) in manifests.iter_mut().zip(&package.hls_manifests) {
            m["url"] = json!(format!(
                "{base}/out/v1/{endpoint_id}/{}/{}.m3u8",
                manifest.id, manifest.manifest_name
            ));
            m["adMarkers"] = json!("NONE");
        }
    }
    v
}

/// Takes `adTriggers` and `adsOnDeliveryRestrictions` out of a package object and
/// validates them on their own, so that a refusal names the field (a flattened struct
/// would lose the path).
pub(super) fn take_ad_selection(path: &str, map: &mut Map<String, Value>) -> Result<AdSelection> {
    let mut ads = Map::new();
    for key in ["adTriggers", "adsOnDeliveryRestrictions"] {
        if let Some(value) = map.remove(key) {
            ads.insert(key.to_owned(), value);
        }
    }
    parse(path, ads)
}

/// `adTriggers` and `adsOnDeliveryRestrictions` as they were given (absent when they were not).
pub(super) fn echo_ad_selection(package: &mut Value, ads: &AdSelection) {
    if let (Value::Object(out), Ok(Value::Object(given))) = (package, serde_json::to_value(ads)) {
        out.extend(given);
    }
}

/// `dashPackage` on the wire.
pub(super) fn dash_json(package: &DashPackage) -> Value {
    let mut v = serde_json::to_value(package).unwrap_or_default();
    v["periodTriggers"] = json!([]);
    v["includeIframeOnlyStream"] = json!(false);
    v
}
