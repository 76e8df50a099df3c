//! Validation of a package's `encryption` object and its `spekeKeyProvider` (spec:
//! MediaPackage classic `HlsEncryption`, `SpekeKeyProvider`,
//! `EncryptionContractConfiguration`). Refusals are 422 naming the field.

use super::*;
use crate::model::{
    AudioPreset, CmafEncryption, CmafEncryptionMethod, DashEncryption, EncryptionContractConfiguration, HlsEncryption,
    HlsEncryptionMethod, SpekeKeyProvider, VideoPreset,
};

/// The longest key period accepted: a year.
const MAX_ROTATION_SECONDS: u32 = 31_536_000;

use crate::keys::speke::AES_128_SYSTEM_ID;

fn unprocessable(message: String) -> ControlError {
    ControlError::Unprocessable(message)
}

/// Validates `hlsPackage.encryption`; `iframes` is the package's `includeIframeOnlyStream`.
pub(super) fn hls_encryption(value: &Value, iframes: bool) -> Result<HlsEncryption> {
    let path = "hlsPackage.encryption.";
    let Value::Object(map) = value else {
        return Err(unprocessable(format!("{path} must be an object")));
    };
    let mut map = map.clone();
    refuse_unsupported(
        &map,
        path,
        &[
            "encryptionMethod",
            "constantInitializationVector",
            "keyRotationIntervalSeconds",
            "repeatExtXKey",
            "spekeKeyProvider",
        ],
        &[],
    )?;
    let provider = speke_key_provider(path, map.remove("spekeKeyProvider"))?;
    let mut encryption: HlsEncryption = parse(
        path,
        map.into_iter()
            .chain([(
                "spekeKeyProvider".to_owned(),
                serde_json::to_value(&provider).unwrap_or_default(),
            )])
            .collect(),
    )?;
    encryption.speke_key_provider = provider;
    if let Some(iv) = &encryption.constant_initialization_vector {
        constant_iv(&format!("{path}constantInitializationVector"), iv)?;
    }
    rotation(path, encryption.key_rotation_interval_seconds)?;
    let provider = &encryption.speke_key_provider;
    if provider.encryption_contract_configuration.is_some() {
        return Err(unprocessable(format!(
            "{path}spekeKeyProvider.encryptionContractConfiguration (SPEKE v2) is for cmafPackage and dashPackage; \
             hlsPackage uses SPEKE v1"
        )));
    }
    if provider.system_ids.len() != 1 {
        return Err(unprocessable(format!(
            "{path}spekeKeyProvider.systemIds must name exactly one system id for hlsPackage, got {}",
            provider.system_ids.len()
        )));
    }
    let system = provider.system_ids[0].to_ascii_lowercase();
    let sample_aes = encryption.encryption_method == HlsEncryptionMethod::SampleAes;
    if system != AES_128_SYSTEM_ID && !(sample_aes && system == crate::keys::system::FAIRPLAY) {
        return Err(unprocessable(format!(
            "{path}spekeKeyProvider.systemIds {:?}: {} is encrypted for the AES-128 system id {AES_128_SYSTEM_ID}{}",
            provider.system_ids[0],
            if sample_aes { "SAMPLE_AES" } else { "AES_128" },
            if sample_aes {
                format!(
                    " (a key players fetch from the key URI) or FairPlay {}",
                    crate::keys::system::FAIRPLAY
                )
            } else {
                String::new()
            }
        )));
    }
    if iframes {
        return Err(unprocessable(format!(
            "hlsPackage.includeIframeOnlyStream cannot be combined with {} encryption by Sluice yet: \
             an I-frame playlist's byte ranges {}",
            if sample_aes { "SAMPLE_AES" } else { "AES_128" },
            if sample_aes {
                "point into the stored segment, not into the encrypted one, whose packets are written anew"
            } else {
                "cannot be decrypted on their own"
            }
        )));
    }
    Ok(encryption)
}

/// The object under `path` with its `spekeKeyProvider` validated on its own (so that a
/// refusal names the field), parsed as `T`, and the provider.
fn with_provider<T: serde::de::DeserializeOwned>(
    path: &str,
    value: &Value,
    fields: &[&str],
) -> Result<(T, SpekeKeyProvider)> {
    let Value::Object(map) = value else {
        return Err(unprocessable(format!("{path} must be an object")));
    };
    let mut map = map.clone();
    refuse_unsupported(&map, path, fields, &[])?;
    let provider = speke_key_provider(path, map.remove("spekeKeyProvider"))?;
    let encoded = serde_json::to_value(&provider).unwrap_or_default();
    let parsed: T = parse(
        path,
        map.into_iter()
            .chain([("spekeKeyProvider".to_owned(), encoded)])
            .collect(),
    )?;
    Ok((parsed, provider))
}

/// What Common Encryption (CMAF, DASH) asks of a provider: SPEKE v1, or v2 with no key
/// rotation (MediaPackage's rule); DRM system ids (not AES-128's).
fn common_encryption(path: &str, provider: &SpekeKeyProvider, rotation_seconds: u32) -> Result<()> {
    rotation(path, rotation_seconds)?;
    if provider.encryption_contract_configuration.is_some() && rotation_seconds != 0 {
        return Err(unprocessable(format!(
            "{path}keyRotationIntervalSeconds {rotation_seconds}: SPEKE v2 (spekeKeyProvider.\
             encryptionContractConfiguration) takes one key for the whole stream; set 0 (the default is 60)"
        )));
    }
    if let Some(contract) = &provider.encryption_contract_configuration {
        speke_v2_presets(path, contract)?;
    }
    if let Some(i) = provider
        .system_ids
        .iter()
        .position(|id| id.eq_ignore_ascii_case(AES_128_SYSTEM_ID))
    {
        return Err(unprocessable(format!(
            "{path}spekeKeyProvider.systemIds[{i}] {AES_128_SYSTEM_ID} is the AES-128 system id of hlsPackage; \
             Common Encryption names DRM systems (ClearKey, Widevine, PlayReady, FairPlay)"
        )));
    }
    Ok(())
}

/// SPEKE v2 presets Sluice honours: SHARED for both (one key per period for every track).
/// The others give tracks keys of their own (by resolution, by channel count) or leave a
/// kind of track clear, which Sluice does not do yet.
fn speke_v2_presets(path: &str, contract: &EncryptionContractConfiguration) -> Result<()> {
    let field = format!("{path}spekeKeyProvider.encryptionContractConfiguration");
    let wire = |value: serde_json::Value| value.as_str().unwrap_or_default().to_owned();
    if contract.preset_speke20_video != VideoPreset::Shared {
        let value = wire(serde_json::to_value(contract.preset_speke20_video).unwrap_or_default());
        return Err(unprocessable(format!(
            "{field}.presetSpeke20Video {value}: Sluice encrypts every track with one key per period (SHARED); \
             presets with a key per kind of track, or clear tracks, are not supported yet: use SHARED for both"
        )));
    }
    if contract.preset_speke20_audio != AudioPreset::Shared {
        let value = wire(serde_json::to_value(contract.preset_speke20_audio).unwrap_or_default());
        return Err(unprocessable(format!(
            "{field}.presetSpeke20Audio {value}: Sluice encrypts every track with one key per period (SHARED); \
             presets with a key per kind of track, or clear tracks, are not supported yet: use SHARED for both"
        )));
    }
    Ok(())
}

/// Validates `cmafPackage.encryption`; `iframes`: some HLS manifest has I-frame playlists.
pub(super) fn cmaf_encryption(value: &Value, iframes: bool) -> Result<CmafEncryption> {
    let path = "cmafPackage.encryption.";
    let fields = [
        "encryptionMethod",
        "constantInitializationVector",
        "keyRotationIntervalSeconds",
        "spekeKeyProvider",
    ];
    let (mut encryption, provider): (CmafEncryption, _) = with_provider(path, value, &fields)?;
    encryption.speke_key_provider = provider;
    if let Some(iv) = &encryption.constant_initialization_vector {
        constant_iv(&format!("{path}constantInitializationVector"), iv)?;
        if encryption.encryption_method == CmafEncryptionMethod::AesCtr {
            return Err(unprocessable(format!(
                "{path}constantInitializationVector is for SAMPLE_AES (cbcs); AES_CTR (cenc) gives every sample \
                 its own IV, so remove it"
            )));
        }
    }
    common_encryption(
        path,
        &encryption.speke_key_provider,
        encryption.key_rotation_interval_seconds,
    )?;
    if iframes {
        return Err(unprocessable(
            "cmafPackage.hlsManifests[].includeIframeOnlyStream cannot be combined with encryption by Sluice yet"
                .into(),
        ));
    }
    Ok(encryption)
}

/// Validates `dashPackage.encryption` (always `cenc`).
pub(super) fn dash_encryption(value: &Value) -> Result<DashEncryption> {
    let path = "dashPackage.encryption.";
    let fields = ["keyRotationIntervalSeconds", "spekeKeyProvider"];
    let (mut encryption, provider): (DashEncryption, _) = with_provider(path, value, &fields)?;
    encryption.speke_key_provider = provider;
    common_encryption(
        path,
        &encryption.speke_key_provider,
        encryption.key_rotation_interval_seconds,
    )?;
    Ok(encryption)
}

/// A `spekeKeyProvider` object under `path`.
fn speke_key_provider(path: &str, value: Option<Value>) -> Result<SpekeKeyProvider> {
    let path = format!("{path}spekeKeyProvider");
    let Some(Value::Object(map)) = value.filter(|v| !v.is_null()) else {
        return Err(unprocessable(format!("{path} is required and must be an object")));
    };
    refuse_unsupported(
        &map,
        &format!("{path}."),
        &[
            "url",
            "resourceId",
            "roleArn",
            "systemIds",
            "certificateArn",
            "encryptionContractConfiguration",
        ],
        &[],
    )?;
    let provider: SpekeKeyProvider = parse(&path, map)?;
    let url = &provider.url;
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .map(|rest| rest.split(['/', '?']).next().unwrap_or_default());
    if host.is_none_or(str::is_empty) {
        return Err(unprocessable(format!(
            "{path}.url {url:?} must be an http:// or https:// URL of the key provider"
        )));
    }
    if provider.resource_id.is_empty() || provider.resource_id.len() > 256 {
        return Err(unprocessable(format!("{path}.resourceId must be 1 to 256 characters")));
    }
    if !is_role_arn(&provider.role_arn) {
        return Err(unprocessable(format!(
            "{path}.roleArn {:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/name)",
            provider.role_arn
        )));
    }
    for (i, id) in provider.system_ids.iter().enumerate() {
        if !is_uuid(id) {
            return Err(unprocessable(format!(
                "{path}.systemIds[{i}] {id:?} is not a DRM system id (a UUID such as {AES_128_SYSTEM_ID})"
            )));
        }
    }
    if provider.system_ids.is_empty() {
        return Err(unprocessable(format!(
            "{path}.systemIds must name at least one system id"
        )));
    }
    if provider.certificate_arn.is_some() {
        return Err(unprocessable(format!(
            "{path}.certificateArn is not supported by Sluice yet: content key encryption (CPIX DeliveryData) \
             is not implemented; remove it to receive keys in the clear over TLS"
        )));
    }
    Ok(provider)
}

fn constant_iv(path: &str, iv: &str) -> Result<()> {
    if iv.len() == 32 && iv.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(());
    }
    Err(unprocessable(format!(
        "{path} {iv:?} must be 32 hexadecimal digits (128 bits)"
    )))
}

fn rotation(path: &str, seconds: u32) -> Result<()> {
    if seconds <= MAX_ROTATION_SECONDS {
        return Ok(());
    }
    Err(unprocessable(format!(
        "{path}keyRotationIntervalSeconds {seconds} must be between 0 (no rotation) and {MAX_ROTATION_SECONDS}"
    )))
}

fn is_role_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "iam", "", account, resource]
        if !partition.is_empty()
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource.strip_prefix("role/").is_some_and(|name| !name.is_empty()))
}

/// `8-4-4-4-12` hexadecimal digits.
pub(crate) fn is_uuid(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests;
