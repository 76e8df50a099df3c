//! Validation of a package's `encryption` object and its `spekeKeyProvider` (spec:
//! MediaPackage classic `HlsEncryption`, `SpekeKeyProvider`,
//! `EncryptionContractConfiguration`). Refusals are 422 naming the field.

use super::*;
use crate::model::{
    CmafEncryption, CmafEncryptionMethod, DashEncryption, HlsEncryption, HlsEncryptionMethod, SpekeKeyProvider,
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

/// What Common Encryption (CMAF, DASH) asks of a provider: SPEKE v1, DRM system ids (not
/// AES-128's); `rotating`: whether the package can rotate keys.
fn common_encryption(path: &str, provider: &SpekeKeyProvider, rotation_seconds: u32, rotating: bool) -> Result<()> {
    rotation(path, rotation_seconds)?;
    if rotation_seconds != 0 && !rotating {
        return Err(unprocessable(format!(
            "{path}keyRotationIntervalSeconds {rotation_seconds}: key rotation of DASH segments is not \
             supported by Sluice yet; set 0 (one key for the whole stream)"
        )));
    }
    if provider.encryption_contract_configuration.is_some() {
        return Err(unprocessable(format!(
            "{path}spekeKeyProvider.encryptionContractConfiguration (SPEKE v2) is not supported by Sluice yet; \
             omit it to use SPEKE v1 with one key for every track"
        )));
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
        true,
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
        false,
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
mod tests {
    use super::*;

    fn hls(encryption: Value) -> Result<HlsEncryption> {
        hls_encryption(&encryption, false)
    }

    fn provider() -> Value {
        json!({"url": "https://keys.example.com/speke/v1", "resourceId": "live-1",
               "roleArn": "arn:aws:iam::123456789012:role/speke", "systemIds": [AES_128_SYSTEM_ID]})
    }

    fn refusal(encryption: Value) -> String {
        match hls(encryption) {
            Err(ControlError::Unprocessable(m)) => m,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_mediapackages() {
        let e = hls(json!({"spekeKeyProvider": provider()})).unwrap();
        assert_eq!(e.encryption_method, HlsEncryptionMethod::Aes128);
        assert_eq!(e.key_rotation_interval_seconds, 60);
        assert!(!e.repeat_ext_x_key);
        assert_eq!(e.constant_initialization_vector, None);
    }

    #[test]
    fn refusals_name_the_field() {
        assert!(refusal(json!({})).contains("hlsPackage.encryption.spekeKeyProvider is required"));
        let mut p = provider();
        p["roleArn"] = json!("role");
        assert!(refusal(json!({"spekeKeyProvider": p})).contains("spekeKeyProvider.roleArn"));
        let mut p = provider();
        p["systemIds"] = json!(["widevine"]);
        assert!(refusal(json!({"spekeKeyProvider": p})).contains("systemIds[0]"));
        let mut p = provider();
        p["url"] = json!("ftp://keys");
        assert!(refusal(json!({"spekeKeyProvider": p})).contains("spekeKeyProvider.url"));
        let mut p = provider();
        p["certificateArn"] = json!("arn:aws:acm:us-east-1:123456789012:certificate/abc");
        assert!(refusal(json!({"spekeKeyProvider": p})).contains("certificateArn is not supported"));
        let iv = refusal(json!({"spekeKeyProvider": provider(), "constantInitializationVector": "00ff"}));
        assert!(iv.contains("constantInitializationVector"), "{iv}");
        let rotation = refusal(json!({"spekeKeyProvider": provider(), "keyRotationIntervalSeconds": -1}));
        assert!(rotation.contains("keyRotationIntervalSeconds"), "{rotation}");
        let unknown = refusal(json!({"spekeKeyProvider": provider(), "keyFormat": "identity"}));
        assert!(unknown.contains("hlsPackage.encryption.keyFormat"), "{unknown}");
        let method = refusal(json!({"spekeKeyProvider": provider(), "encryptionMethod": "AES_256"}));
        assert!(method.contains("encryptionMethod"), "{method}");
    }

    #[test]
    fn iframe_playlists_are_refused_with_aes_128() {
        let e = hls_encryption(&json!({"spekeKeyProvider": provider()}), true);
        assert!(matches!(e, Err(ControlError::Unprocessable(m)) if m.contains("includeIframeOnlyStream")));
    }

    #[test]
    fn sample_aes_takes_the_aes_128_or_fairplay_system_id() {
        let sample_aes = |system: &str| {
            let mut p = provider();
            p["systemIds"] = json!([system]);
            hls_encryption(&json!({"spekeKeyProvider": p, "encryptionMethod": "SAMPLE_AES"}), false)
        };
        let e = sample_aes(AES_128_SYSTEM_ID).unwrap();
        assert_eq!(e.encryption_method, HlsEncryptionMethod::SampleAes);
        assert!(sample_aes(crate::keys::system::FAIRPLAY).is_ok());
        let mut p = provider();
        p["systemIds"] = json!([crate::keys::system::WIDEVINE]);
        let widevine = refusal(json!({"spekeKeyProvider": p, "encryptionMethod": "SAMPLE_AES"}));
        assert!(
            widevine.contains("SAMPLE_AES is encrypted for the AES-128 system id"),
            "{widevine}"
        );
        let mut p = provider();
        p["systemIds"] = json!([crate::keys::system::FAIRPLAY]);
        assert!(refusal(json!({"spekeKeyProvider": p})).contains("AES_128 is encrypted"));
        let iframes = hls_encryption(
            &json!({"spekeKeyProvider": provider(), "encryptionMethod": "SAMPLE_AES"}),
            true,
        );
        assert!(matches!(iframes, Err(ControlError::Unprocessable(m)) if m.contains("SAMPLE_AES encryption")));
    }

    fn common(system: &str) -> Value {
        let mut p = provider();
        p["systemIds"] = json!([system]);
        json!({"keyRotationIntervalSeconds": 0, "spekeKeyProvider": p})
    }

    fn refused(result: Result<impl std::fmt::Debug>) -> String {
        match result {
            Err(ControlError::Unprocessable(m)) => m,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn cmaf_and_dash_encryption_are_validated() {
        let clearkey = crate::keys::system::CLEARKEY;
        let e = cmaf_encryption(&common(clearkey), false).unwrap();
        assert_eq!(e.encryption_method, CmafEncryptionMethod::SampleAes);
        assert_eq!(
            dash_encryption(&common(clearkey))
                .unwrap()
                .key_rotation_interval_seconds,
            0
        );
        let mut rotating = common(clearkey);
        rotating.as_object_mut().unwrap().remove("keyRotationIntervalSeconds");
        assert!(refused(dash_encryption(&rotating)).contains("dashPackage.encryption.keyRotationIntervalSeconds 60"));
        assert_eq!(
            cmaf_encryption(&rotating, false).unwrap().key_rotation_interval_seconds,
            60
        );
        assert!(refused(cmaf_encryption(&common(AES_128_SYSTEM_ID), false)).contains("systemIds[0]"));
        let mut ctr_iv = common(clearkey);
        ctr_iv["encryptionMethod"] = json!("AES_CTR");
        ctr_iv["constantInitializationVector"] = json!("00112233445566778899aabbccddeeff");
        assert!(refused(cmaf_encryption(&ctr_iv, false)).contains("constantInitializationVector is for SAMPLE_AES"));
        let mut v2 = common(clearkey);
        v2["spekeKeyProvider"]["encryptionContractConfiguration"] =
            json!({"presetSpeke20Audio": "SHARED", "presetSpeke20Video": "SHARED"});
        assert!(refused(dash_encryption(&v2)).contains("encryptionContractConfiguration"));
        assert!(refused(cmaf_encryption(&common(clearkey), true)).contains("includeIframeOnlyStream"));
        let mut unknown = common(clearkey);
        unknown["encryptionMethod"] = json!("AES_CTR");
        assert!(refused(dash_encryption(&unknown)).contains("dashPackage.encryption.encryptionMethod"));
    }

    #[test]
    fn role_arns_and_uuids() {
        assert!(is_role_arn("arn:aws:iam::123456789012:role/speke"));
        assert!(is_role_arn("arn:aws-cn:iam::123456789012:role/path/speke"));
        assert!(!is_role_arn("arn:aws:iam::123456789012:user/speke"));
        assert!(!is_role_arn("arn:aws:iam::1234:role/speke"));
        assert!(is_uuid(AES_128_SYSTEM_ID));
        assert!(!is_uuid("81376844f976481ea84ecc25d39b0b33"));
    }
}
