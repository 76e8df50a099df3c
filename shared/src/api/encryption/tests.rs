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
    // DASH rotates keys too (a Period per key), by default every 60 s as MediaPackage.
    assert_eq!(dash_encryption(&rotating).unwrap().key_rotation_interval_seconds, 60);
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
    let shared = dash_encryption(&v2).unwrap().speke_key_provider;
    assert!(
        shared.encryption_contract_configuration.is_some(),
        "SPEKE v2, SHARED: taken"
    );
    // SPEKE v2 takes no key rotation (MediaPackage's rule), the default 60 s included.
    let mut v2_rotating = v2.clone();
    v2_rotating
        .as_object_mut()
        .unwrap()
        .remove("keyRotationIntervalSeconds");
    for refusal in [
        refused(dash_encryption(&v2_rotating)),
        refused(cmaf_encryption(&v2_rotating, false)),
    ] {
        assert!(refusal.contains("keyRotationIntervalSeconds 60: SPEKE v2"), "{refusal}");
    }
    v2["spekeKeyProvider"]["encryptionContractConfiguration"]["presetSpeke20Video"] = json!("PRESET-VIDEO-2");
    assert!(refused(cmaf_encryption(&v2, false)).contains("presetSpeke20Video PRESET-VIDEO-2"));
    v2["spekeKeyProvider"]["encryptionContractConfiguration"] =
        json!({"presetSpeke20Audio": "UNENCRYPTED", "presetSpeke20Video": "SHARED"});
    assert!(refused(dash_encryption(&v2)).contains("presetSpeke20Audio UNENCRYPTED"));
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
