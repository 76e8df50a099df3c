use super::*;

const KID: &str = "2f0e77a0-5c9e-4b5e-9c3c-6ad2e1f40b11";
const AES: &str = "81376844-f976-481e-a84e-cc25d39b0b33";

/// A SPEKE v1 request laid out as the SPEKE v1 API documents it (pretty-printed, empty
/// data elements, one key period and its usage rule), with its own ids.
const V1_REQUEST: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<cpix:CPIX id="live-1 &amp; co" xmlns:cpix="urn:dashif:org:cpix"
    xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:speke="urn:aws:amazon:com:speke">
    <cpix:ContentKeyList>
        <cpix:ContentKey kid="2f0e77a0-5c9e-4b5e-9c3c-6ad2e1f40b11"></cpix:ContentKey>
    </cpix:ContentKeyList>
    <cpix:DRMSystemList>
        <cpix:DRMSystem kid="2f0e77a0-5c9e-4b5e-9c3c-6ad2e1f40b11" systemId="81376844-F976-481E-A84E-CC25D39B0B33">
            <cpix:ContentProtectionData />
            <speke:KeyFormat />
            <speke:KeyFormatVersions />
            <speke:ProtectionHeader />
            <cpix:PSSH />
            <cpix:URIExtXKey />
        </cpix:DRMSystem>
    </cpix:DRMSystemList>
    <cpix:ContentKeyPeriodList>
        <cpix:ContentKeyPeriod id="keyPeriod_2f0e77a0" index="11425"/>
    </cpix:ContentKeyPeriodList>
    <cpix:ContentKeyUsageRuleList>
        <cpix:ContentKeyUsageRule kid="2f0e77a0-5c9e-4b5e-9c3c-6ad2e1f40b11">
            <cpix:KeyPeriodFilter periodId="keyPeriod_2f0e77a0"/>
        </cpix:ContentKeyUsageRule>
    </cpix:ContentKeyUsageRuleList>
</cpix:CPIX>"#;

fn kid() -> Kid {
    Kid::parse(KID).unwrap()
}

fn v1_request() -> Document {
    Document {
        version: SpekeVersion::V1,
        content_id: "live-1".into(),
        keys: vec![ContentKey {
            kid: kid(),
            scheme: None,
            explicit_iv: None,
            secret: None,
        }],
        drm_systems: vec![DrmSystem {
            kid: Some(kid()),
            system_id: AES.into(),
            ..DrmSystem::default()
        }],
        periods: vec![KeyPeriod {
            id: format!("keyPeriod_{KID}"),
            index: 7,
        }],
        usage_rules: vec![UsageRule {
            kid: Some(kid()),
            period_ids: vec![format!("keyPeriod_{KID}")],
            ..UsageRule::default()
        }],
    }
}

#[test]
fn a_documented_v1_request_parses() {
    let doc = Document::parse(V1_REQUEST).unwrap();
    assert_eq!(doc.version, SpekeVersion::V1);
    assert_eq!(doc.content_id, "live-1 & co");
    assert_eq!(doc.keys.len(), 1);
    assert_eq!(doc.keys[0].kid, kid());
    assert_eq!(doc.keys[0].secret, None);
    assert_eq!(doc.drm_systems[0].system_id, AES, "system ids compare in lower case");
    assert_eq!(doc.drm_systems[0].uri_ext_x_key, None, "an empty element is no value");
    assert_eq!(
        doc.periods,
        vec![KeyPeriod {
            id: "keyPeriod_2f0e77a0".into(),
            index: 11425
        }]
    );
    assert_eq!(doc.usage_rules[0].period_ids, ["keyPeriod_2f0e77a0"]);
}

/// The elements and attributes the CPIX 2.0 schema and the SPEKE v1 contract require of a
/// request, found in what Sluice sends.
#[test]
fn a_v1_request_has_the_required_elements() {
    let xml = v1_request().to_xml();
    let root = tree(&xml).unwrap();
    assert_eq!(root.name, "CPIX");
    assert_eq!(root.attr("id"), Some("live-1"));
    for ns in [CPIX_NS, PSKC_NS, SPEKE_NS] {
        assert!(xml.contains(&format!("\"{ns}\"")), "{ns} not declared: {xml}");
    }
    let key = root.find(&["ContentKeyList", "ContentKey"]).unwrap();
    assert_eq!(key.attr("kid"), Some(KID));
    let drm = root.find(&["DRMSystemList", "DRMSystem"]).unwrap();
    assert_eq!((drm.attr("kid"), drm.attr("systemId")), (Some(KID), Some(AES)));
    let children: Vec<&str> = drm.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        children,
        [
            "ContentProtectionData",
            "KeyFormat",
            "KeyFormatVersions",
            "ProtectionHeader",
            "PSSH",
            "URIExtXKey"
        ]
    );
    let period = root.find(&["ContentKeyPeriodList", "ContentKeyPeriod"]).unwrap();
    assert_eq!(period.attr("index"), Some("7"));
    let rule = root.find(&["ContentKeyUsageRuleList", "ContentKeyUsageRule"]).unwrap();
    assert_eq!(rule.attr("kid"), Some(KID));
    let filter = rule.find(&["KeyPeriodFilter"]).unwrap();
    assert_eq!(filter.attr("periodId"), period.attr("id"));
    assert_eq!(Document::parse(&xml).unwrap(), v1_request());
}

#[test]
fn a_v1_response_round_trips_with_its_values() {
    let mut doc = v1_request();
    doc.keys[0].secret = Some(*b"0123456789abcdef");
    doc.keys[0].explicit_iv = Some([7; 16]);
    doc.drm_systems[0].uri_ext_x_key = Some(BASE64.encode("https://keys.example.com/k?a=1&b=2"));
    let xml = doc.to_xml();
    assert!(
        xml.contains("<pskc:PlainValue>MDEyMzQ1Njc4OWFiY2RlZg==</pskc:PlainValue>"),
        "{xml}"
    );
    assert!(
        !xml.contains("<cpix:PSSH/>"),
        "a response leaves out what it has no value for: {xml}"
    );
    let again = Document::parse(&xml).unwrap();
    assert_eq!(again, doc);
    let uri = again
        .drm_system(kid(), AES)
        .and_then(|d| d.uri_ext_x_key.as_deref())
        .and_then(base64_text);
    assert_eq!(uri.as_deref(), Some("https://keys.example.com/k?a=1&b=2"));
}

/// SPEKE v2: `contentId`, `version="2.3"` and each key's `commonEncryptionScheme`; the
/// DRM system asks for PSSH, ContentProtectionData and both HLS signalling entries.
#[test]
fn a_v2_request_has_the_required_elements() {
    let mut doc = v1_request();
    doc.version = SpekeVersion::V2;
    doc.keys[0].scheme = Some("cbcs".into());
    doc.periods.clear();
    doc.usage_rules = vec![UsageRule {
        kid: Some(kid()),
        intended_track_type: Some("VIDEO".into()),
        video_filter: Some(Vec::new()),
        ..UsageRule::default()
    }];
    let xml = doc.to_xml();
    let root = tree(&xml).unwrap();
    assert_eq!(
        (root.attr("contentId"), root.attr("version")),
        (Some("live-1"), Some("2.3"))
    );
    assert_eq!(root.attr("id"), None);
    let key = root.find(&["ContentKeyList", "ContentKey"]).unwrap();
    assert_eq!(key.attr("commonEncryptionScheme"), Some("cbcs"));
    let drm = root.find(&["DRMSystemList", "DRMSystem"]).unwrap();
    let playlists: Vec<Option<&str>> = drm
        .children_named("HLSSignalingData")
        .map(|c| c.attr("playlist"))
        .collect();
    assert_eq!(playlists, [Some("media"), Some("master")]);
    assert!(drm.find(&["PSSH"]).is_some() && drm.find(&["ContentProtectionData"]).is_some());
    let rule = root.find(&["ContentKeyUsageRuleList", "ContentKeyUsageRule"]).unwrap();
    assert_eq!(rule.attr("intendedTrackType"), Some("VIDEO"));
    assert!(rule.find(&["VideoFilter"]).is_some());
    assert_eq!(Document::parse(&xml).unwrap(), doc);
}

#[test]
fn bad_documents_are_refused_with_the_reason() {
    let no_id = V1_REQUEST.replace("id=\"live-1 &amp; co\"", "");
    assert!(Document::parse(&no_id).unwrap_err().0.contains("CPIX@contentId"));
    let bad_kid = V1_REQUEST.replace(
        "ContentKey kid=\"2f0e77a0-5c9e-4b5e-9c3c-6ad2e1f40b11\"",
        "ContentKey kid=\"x\"",
    );
    assert!(Document::parse(&bad_kid).unwrap_err().0.contains("ContentKey@kid"));
    let mut doc = v1_request();
    doc.keys[0].secret = Some([1; 16]);
    let short = doc
        .to_xml()
        .replace(&BASE64.encode([1u8; 16]), &BASE64.encode([1u8; 15]));
    assert!(Document::parse(&short).unwrap_err().0.contains("15 bytes"));
    assert!(Document::parse("<cpix:CPIX id=\"a\">").is_err());
    let v3 = "<CPIX contentId=\"a\" version=\"3.0\"><ContentKeyList/></CPIX>";
    assert!(Document::parse(v3).unwrap_err().0.contains("version"));
}

#[test]
fn kids_are_uuids() {
    assert_eq!(kid().to_string(), KID);
    assert_eq!(kid().hex(), KID.replace('-', ""));
    assert_eq!(Kid::parse(&KID.replace('-', "")), None);
}
