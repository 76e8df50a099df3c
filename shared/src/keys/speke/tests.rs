//! SPEKE v2 requests and answers, checked against the CPIX 2.3 layout that the SPEKE v2
//! API documents (one `ContentKeyUsageRule` for every track with the SHARED presets,
//! `HLSSignalingData` carrying whole `EXT-X-KEY` lines).

use super::*;
use crate::keys::system::{CLEARKEY, FAIRPLAY};
use crate::model::{AudioPreset, EncryptionContractConfiguration, SpekeKeyProvider, VideoPreset};
use base64::Engine;

fn provider(v2: bool, systems: &[&str]) -> SpekeKeyProvider {
    SpekeKeyProvider {
        url: "https://keys.example.com/speke".into(),
        resource_id: "live-1".into(),
        role_arn: "arn:aws:iam::123456789012:role/k".into(),
        system_ids: systems.iter().map(|s| s.to_string()).collect(),
        certificate_arn: None,
        encryption_contract_configuration: v2.then_some(EncryptionContractConfiguration {
            preset_speke20_audio: AudioPreset::Shared,
            preset_speke20_video: VideoPreset::Shared,
        }),
    }
}

fn request(provider: &SpekeKeyProvider) -> KeyRequest<'_> {
    KeyRequest {
        provider,
        scheme: Some("cbcs"),
        kid: crate::keys::kid_for("live-1", None, 7),
        period: 7,
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn a_v2_request_asks_one_key_for_every_track_in_the_scheme() {
    let p = provider(true, &[CLEARKEY]);
    let xml = v2_request(&request(&p)).to_xml();
    let doc = Document::parse(&xml).unwrap();
    assert_eq!(doc.version, SpekeVersion::V2);
    assert!(xml.contains("contentId=\"live-1\" version=\"2.3\""), "{xml}");
    assert_eq!(doc.keys.len(), 1);
    assert_eq!(doc.keys[0].scheme.as_deref(), Some("cbcs"));
    let rule = &doc.usage_rules[0];
    assert_eq!(rule.intended_track_type.as_deref(), Some("ALL"));
    assert_eq!(
        (rule.video_filter.as_deref(), rule.audio_filter.as_deref()),
        (Some(&[][..]), Some(&[][..]))
    );
    assert_eq!(doc.periods[0].index, 7, "the key period, for rotation");
    // CPIX 2.3's DRMSystem asks for PSSH, ContentProtectionData and both HLS signalling entries.
    assert!(xml.contains("<cpix:HLSSignalingData playlist=\"media\"/>"), "{xml}");
    assert!(!xml.contains("URIExtXKey"), "a SPEKE v1 element: {xml}");
}

#[test]
fn a_v2_answer_gives_the_key_uri_and_format_of_its_ext_x_key_line() {
    let p = provider(true, &[FAIRPLAY]);
    let r = request(&p);
    let mut doc = v2_request(&r);
    doc.keys[0].secret = Some([5; 16]);
    doc.drm_systems[0].hls_media = Some(b64(
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://abc\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\"",
    ));
    let key = key_from_response(&r, &doc.to_xml()).unwrap();
    assert_eq!(key.key, [5; 16]);
    assert_eq!(key.key_uri.as_deref(), Some("skd://abc"));
    assert_eq!(key.key_format.as_deref(), Some("com.apple.streamingkeydelivery"));
    assert_eq!(key.key_format_versions.as_deref(), Some("1"));
    assert_eq!(key.systems[0].key_uri.as_deref(), Some("skd://abc"));

    doc.drm_systems[0].hls_media = Some(b64("#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://abc\""));
    let err = key_from_response(&r, &doc.to_xml()).unwrap_err().to_string();
    assert!(err.contains("is not one #EXT-X-KEY tag"), "{err}");
    doc.drm_systems[0].hls_media = Some(b64("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://a\"\n#EXT-X-ENDLIST"));
    assert!(
        key_from_response(&r, &doc.to_xml()).is_err(),
        "a second line is never taken"
    );
    // FairPlay with no HLSSignalingData: no key URI for the playlist, so no key at all
    // (a playlist without EXT-X-KEY would look clear to players).
    doc.drm_systems[0].hls_media = None;
    let err = key_from_response(&r, &doc.to_xml()).unwrap_err().to_string();
    assert!(err.contains("no key URI for FairPlay"), "{err}");
}

#[test]
fn a_speke_v2_request_answered_in_cpix_2_0_is_refused() {
    let v2 = provider(true, &[CLEARKEY]);
    let mut v1_doc = v1_request(&request(&v2));
    v1_doc.keys[0].secret = Some([5; 16]);
    let err = key_from_response(&request(&v2), &v1_doc.to_xml())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SPEKE v2 (CPIX 2.3) request was answered with a CPIX 2.0 document"),
        "{err}"
    );
    let v1 = provider(false, &[CLEARKEY]);
    assert!(key_from_response(&request(&v1), &v1_doc.to_xml()).is_ok());
}
