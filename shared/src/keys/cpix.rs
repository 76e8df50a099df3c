//! CPIX documents as SPEKE exchanges them: SPEKE v1 (CPIX 2.0, the document's `id`) and
//! SPEKE v2 (CPIX 2.3, `contentId` and `version`). One [`Document`] is both the request
//! (no key values) and the response (the same document with them); [`Document::parse`]
//! reads either, [`Document::to_xml`] writes either. Used by the key-provider client and
//! by the reference key server.
//!
//! Hand-written over `quick-xml` events: the documents are small and flat, and no crate
//! models CPIX.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use quick_xml::escape::escape;
use std::fmt::Write;

pub const CPIX_NS: &str = "urn:dashif:org:cpix";
pub const PSKC_NS: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
pub const SPEKE_NS: &str = "urn:aws:amazon:com:speke";

/// Which SPEKE contract a document follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpekeVersion {
    /// SPEKE v1: CPIX 2.0, `CPIX@id`, one key.
    V1,
    /// SPEKE v2: CPIX 2.3, `CPIX@contentId`, `CPIX@version="2.3"`, `X-Speke-Version: 2.0`.
    V2,
}

/// A key id: 16 bytes, written as a UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kid(pub [u8; 16]);

impl Kid {
    pub fn parse(text: &str) -> Option<Kid> {
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 || text.len() != 36 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Kid(out))
    }

    /// 32 hex digits without hyphens (`cenc:default_KID` uses the UUID form instead).
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Display for Kid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = self.hex();
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

/// `cpix:ContentKey`.
#[derive(Clone, Debug, PartialEq)]
pub struct ContentKey {
    pub kid: Kid,
    /// `commonEncryptionScheme` (SPEKE v2): `cenc`, `cbcs`, `cbc1` or `cens`.
    pub scheme: Option<String>,
    pub explicit_iv: Option<[u8; 16]>,
    /// The key (`Data/pskc:Secret/pskc:PlainValue`); absent in a request.
    pub secret: Option<[u8; 16]>,
}

/// `cpix:DRMSystem`: what one DRM system needs for one key. Every value is base64 text
/// as it travels; absent in a request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DrmSystem {
    pub kid: Option<Kid>,
    pub system_id: String,
    pub pssh: Option<String>,
    pub content_protection_data: Option<String>,
    /// SPEKE v1: the `EXT-X-KEY` URI.
    pub uri_ext_x_key: Option<String>,
    pub key_format: Option<String>,
    pub key_format_versions: Option<String>,
    pub protection_header: Option<String>,
    /// SPEKE v2: `HLSSignalingData playlist="media"` (an `EXT-X-KEY` line).
    pub hls_media: Option<String>,
    /// SPEKE v2: `HLSSignalingData playlist="master"` (an `EXT-X-SESSION-KEY` line).
    pub hls_master: Option<String>,
}

/// `cpix:ContentKeyPeriod`.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyPeriod {
    pub id: String,
    pub index: u64,
}

/// `cpix:ContentKeyUsageRule`: which tracks and periods a key is for. Filters keep their
/// attributes as given.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UsageRule {
    pub kid: Option<Kid>,
    pub intended_track_type: Option<String>,
    pub period_ids: Vec<String>,
    pub video_filter: Option<Vec<(String, String)>>,
    pub audio_filter: Option<Vec<(String, String)>>,
}

/// A CPIX document.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    pub version: SpekeVersion,
    /// `CPIX@id` (v1) or `CPIX@contentId` (v2): the endpoint's `resourceId`.
    pub content_id: String,
    pub keys: Vec<ContentKey>,
    pub drm_systems: Vec<DrmSystem>,
    pub periods: Vec<KeyPeriod>,
    pub usage_rules: Vec<UsageRule>,
}

/// Why a CPIX document was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("CPIX document: {0}")]
pub struct CpixError(pub String);

fn err(message: impl Into<String>) -> CpixError {
    CpixError(message.into())
}

impl Document {
    /// Writes the document: a request when no key has a secret (every data element empty,
    /// as SPEKE asks), a response otherwise (only the values present).
    pub fn to_xml(&self) -> String {
        let response = self.keys.iter().any(|k| k.secret.is_some());
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let content = escape(self.content_id.as_str());
        match self.version {
            SpekeVersion::V1 => {
                let _ = write!(
                    x,
                    "<cpix:CPIX id=\"{content}\" xmlns:cpix=\"{CPIX_NS}\" xmlns:pskc=\"{PSKC_NS}\" xmlns:speke=\"{SPEKE_NS}\">"
                );
            }
            SpekeVersion::V2 => {
                let _ = write!(
                    x,
                    "<cpix:CPIX contentId=\"{content}\" version=\"2.3\" xmlns:cpix=\"{CPIX_NS}\" xmlns:pskc=\"{PSKC_NS}\">"
                );
            }
        }
        x.push_str("<cpix:ContentKeyList>");
        for key in &self.keys {
            let _ = write!(x, "<cpix:ContentKey kid=\"{}\"", key.kid);
            if let Some(scheme) = &key.scheme {
                let _ = write!(x, " commonEncryptionScheme=\"{}\"", escape(scheme.as_str()));
            }
            if let Some(iv) = &key.explicit_iv {
                let _ = write!(x, " explicitIV=\"{}\"", BASE64.encode(iv));
            }
            match &key.secret {
                Some(secret) => {
                    let _ = write!(
                        x,
                        "><cpix:Data><pskc:Secret><pskc:PlainValue>{}</pskc:PlainValue></pskc:Secret></cpix:Data></cpix:ContentKey>",
                        BASE64.encode(secret)
                    );
                }
                None => x.push_str("/>"),
            }
        }
        x.push_str("</cpix:ContentKeyList><cpix:DRMSystemList>");
        for drm in &self.drm_systems {
            x.push_str("<cpix:DRMSystem");
            if let Some(kid) = drm.kid {
                let _ = write!(x, " kid=\"{kid}\"");
            }
            let _ = write!(x, " systemId=\"{}\">", escape(drm.system_id.as_str()));
            let element = |x: &mut String, name: &str, attrs: &str, value: &Option<String>| match value {
                Some(v) => {
                    let _ = write!(x, "<{name}{attrs}>{}</{name}>", escape(v.as_str()));
                }
                None if !response => {
                    let _ = write!(x, "<{name}{attrs}/>");
                }
                None => {}
            };
            match self.version {
                SpekeVersion::V1 => {
                    element(&mut x, "cpix:ContentProtectionData", "", &drm.content_protection_data);
                    element(&mut x, "speke:KeyFormat", "", &drm.key_format);
                    element(&mut x, "speke:KeyFormatVersions", "", &drm.key_format_versions);
                    element(&mut x, "speke:ProtectionHeader", "", &drm.protection_header);
                    element(&mut x, "cpix:PSSH", "", &drm.pssh);
                    element(&mut x, "cpix:URIExtXKey", "", &drm.uri_ext_x_key);
                }
                SpekeVersion::V2 => {
                    element(&mut x, "cpix:PSSH", "", &drm.pssh);
                    element(&mut x, "cpix:ContentProtectionData", "", &drm.content_protection_data);
                    element(&mut x, "cpix:HLSSignalingData", " playlist=\"media\"", &drm.hls_media);
                    element(&mut x, "cpix:HLSSignalingData", " playlist=\"master\"", &drm.hls_master);
                }
            }
            x.push_str("</cpix:DRMSystem>");
        }
        x.push_str("</cpix:DRMSystemList>");
        if !self.periods.is_empty() {
            x.push_str("<cpix:ContentKeyPeriodList>");
            for p in &self.periods {
                let _ = write!(
                    x,
                    "<cpix:ContentKeyPeriod id=\"{}\" index=\"{}\"/>",
                    escape(p.id.as_str()),
                    p.index
                );
            }
            x.push_str("</cpix:ContentKeyPeriodList>");
        }
        if !self.usage_rules.is_empty() {
            x.push_str("<cpix:ContentKeyUsageRuleList>");
            for rule in &self.usage_rules {
                x.push_str("<cpix:ContentKeyUsageRule");
                if let Some(kid) = rule.kid {
                    let _ = write!(x, " kid=\"{kid}\"");
                }
                if let Some(track) = &rule.intended_track_type {
                    let _ = write!(x, " intendedTrackType=\"{}\"", escape(track.as_str()));
                }
                x.push('>');
                for id in &rule.period_ids {
                    let _ = write!(x, "<cpix:KeyPeriodFilter periodId=\"{}\"/>", escape(id.as_str()));
                }
                for (name, filter) in [("VideoFilter", &rule.video_filter), ("AudioFilter", &rule.audio_filter)] {
                    if let Some(attrs) = filter {
                        let _ = write!(x, "<cpix:{name}");
                        for (k, v) in attrs {
                            let _ = write!(x, " {}=\"{}\"", k, escape(v.as_str()));
                        }
                        x.push_str("/>");
                    }
                }
                x.push_str("</cpix:ContentKeyUsageRule>");
            }
            x.push_str("</cpix:ContentKeyUsageRuleList>");
        }
        x.push_str("</cpix:CPIX>");
        x
    }

    /// Reads a request or a response. Elements are matched by local name, so any
    /// namespace prefixes work; unknown elements are skipped.
    pub fn parse(xml: &str) -> Result<Document, CpixError> {
        let root = tree(xml)?;
        if root.name != "CPIX" {
            return Err(err(format!("the root element is {:?}, not CPIX", root.name)));
        }
        let (version, content_id) = match (root.attr("contentId"), root.attr("id")) {
            (Some(content), _) => {
                let version = root.attr("version").unwrap_or("2.3");
                if !version.starts_with("2.") {
                    return Err(err(format!("unsupported CPIX@version {version:?}")));
                }
                (SpekeVersion::V2, content.to_owned())
            }
            (None, Some(id)) => (SpekeVersion::V1, id.to_owned()),
            (None, None) => return Err(err("missing CPIX@contentId (SPEKE v2) or CPIX@id (SPEKE v1)")),
        };
        let kid = |e: &Node, required: bool| -> Result<Option<Kid>, CpixError> {
            match e.attr("kid") {
                Some(text) => Kid::parse(text)
                    .map(Some)
                    .ok_or_else(|| err(format!("{}@kid {text:?} is not a UUID", e.name))),
                None if required => Err(err(format!("missing {}@kid", e.name))),
                None => Ok(None),
            }
        };
        let mut doc = Document {
            version,
            content_id,
            keys: Vec::new(),
            drm_systems: Vec::new(),
            periods: Vec::new(),
            usage_rules: Vec::new(),
        };
        for e in root
            .children_named("ContentKeyList")
            .flat_map(|l| l.children_named("ContentKey"))
        {
            let secret = e
                .find(&["Data", "Secret", "PlainValue"])
                .map(|v| sixteen(&v.text, "ContentKey PlainValue"))
                .transpose()?;
            let explicit_iv = e
                .attr("explicitIV")
                .map(|v| sixteen(v, "ContentKey@explicitIV"))
                .transpose()?;
            doc.keys.push(ContentKey {
                kid: kid(e, true)?.unwrap_or(Kid([0; 16])),
                scheme: e.attr("commonEncryptionScheme").map(str::to_owned),
                explicit_iv,
                secret,
            });
        }
        if doc.keys.is_empty() {
            return Err(err("no ContentKeyList/ContentKey"));
        }
        for e in root
            .children_named("DRMSystemList")
            .flat_map(|l| l.children_named("DRMSystem"))
        {
            let text = |name: &str| {
                e.children_named(name)
                    .next()
                    .map(|c| c.text.clone())
                    .filter(|t| !t.is_empty())
            };
            let signalling = |playlist: &str| {
                e.children_named("HLSSignalingData")
                    .find(|c| c.attr("playlist").unwrap_or("media") == playlist)
                    .map(|c| c.text.clone())
                    .filter(|t| !t.is_empty())
            };
            doc.drm_systems.push(DrmSystem {
                kid: kid(e, false)?,
                system_id: e
                    .attr("systemId")
                    .ok_or_else(|| err("missing DRMSystem@systemId"))?
                    .to_ascii_lowercase(),
                pssh: text("PSSH"),
                content_protection_data: text("ContentProtectionData"),
                uri_ext_x_key: text("URIExtXKey"),
                key_format: text("KeyFormat"),
                key_format_versions: text("KeyFormatVersions"),
                protection_header: text("ProtectionHeader"),
                hls_media: signalling("media"),
                hls_master: signalling("master"),
            });
        }
        for e in root
            .children_named("ContentKeyPeriodList")
            .flat_map(|l| l.children_named("ContentKeyPeriod"))
        {
            let index = e.attr("index").ok_or_else(|| err("missing ContentKeyPeriod@index"))?;
            doc.periods.push(KeyPeriod {
                id: e.attr("id").unwrap_or_default().to_owned(),
                index: index
                    .parse()
                    .map_err(|_| err(format!("ContentKeyPeriod@index {index:?} is not a number")))?,
            });
        }
        for e in root
            .children_named("ContentKeyUsageRuleList")
            .flat_map(|l| l.children_named("ContentKeyUsageRule"))
        {
            let filter = |name: &str| e.children_named(name).next().map(|f| f.attrs.clone());
            doc.usage_rules.push(UsageRule {
                kid: kid(e, false)?,
                intended_track_type: e.attr("intendedTrackType").map(str::to_owned),
                period_ids: e
                    .children_named("KeyPeriodFilter")
                    .filter_map(|f| f.attr("periodId").map(str::to_owned))
                    .collect(),
                video_filter: filter("VideoFilter"),
                audio_filter: filter("AudioFilter"),
            });
        }
        Ok(doc)
    }

    /// The key with `kid`.
    pub fn key(&self, kid: Kid) -> Option<&ContentKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The DRM system entry of `system_id` for `kid` (or for no particular key).
    pub fn drm_system(&self, kid: Kid, system_id: &str) -> Option<&DrmSystem> {
        self.drm_systems
            .iter()
            .find(|d| d.system_id.eq_ignore_ascii_case(system_id) && d.kid.is_none_or(|k| k == kid))
    }
}

/// Decodes base64 text that must be 16 bytes.
fn sixteen(text: &str, what: &str) -> Result<[u8; 16], CpixError> {
    let bytes = BASE64
        .decode(text.trim())
        .map_err(|e| err(format!("{what} is not base64: {e}")))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| err(format!("{what} is {} bytes, not 16", b.len())))
}

/// Decodes base64 text as UTF-8 (URIExtXKey, HLSSignalingData, KeyFormat).
pub fn base64_text(text: &str) -> Option<String> {
    String::from_utf8(BASE64.decode(text.trim()).ok()?).ok()
}

mod xml;

use xml::{tree, Node};

#[cfg(test)]
mod tests;
