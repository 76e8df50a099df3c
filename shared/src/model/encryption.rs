//! Content protection settings of a package (MediaPackage classic `HlsEncryption`,
//! `CmafEncryption`, `DashEncryption`, `SpekeKeyProvider`,
//! `EncryptionContractConfiguration`), in their stored form (= the wire form).

use serde::{Deserialize, Serialize};

/// `hlsPackage.encryption`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HlsEncryption {
    #[serde(default)]
    pub encryption_method: HlsEncryptionMethod,
    /// 32 hex digits; absent: each segment's IV is its media sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant_initialization_vector: Option<String>,
    /// Seconds of media per key; 0 = one key for the whole stream.
    #[serde(default = "sixty")]
    pub key_rotation_interval_seconds: u32,
    /// Writes `EXT-X-KEY` before every segment, not only where the key changes.
    #[serde(default)]
    pub repeat_ext_x_key: bool,
    pub speke_key_provider: SpekeKeyProvider,
}

/// `encryptionMethod` of `hlsPackage`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HlsEncryptionMethod {
    #[default]
    #[serde(rename = "AES_128")]
    Aes128,
    SampleAes,
}

/// `cmafPackage.encryption`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CmafEncryption {
    #[serde(default)]
    pub encryption_method: CmafEncryptionMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constant_initialization_vector: Option<String>,
    #[serde(default = "sixty")]
    pub key_rotation_interval_seconds: u32,
    pub speke_key_provider: SpekeKeyProvider,
}

/// `encryptionMethod` of `cmafPackage`: `cbcs` or `cenc`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CmafEncryptionMethod {
    #[default]
    SampleAes,
    AesCtr,
}

/// `dashPackage.encryption` (always `cenc`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DashEncryption {
    #[serde(default = "sixty")]
    pub key_rotation_interval_seconds: u32,
    pub speke_key_provider: SpekeKeyProvider,
}

/// `spekeKeyProvider`: where the keys come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpekeKeyProvider {
    pub url: String,
    /// CPIX `id` (SPEKE v1) or `contentId` (v2).
    pub resource_id: String,
    /// Assumed to sign the key requests (SigV4, `execute-api`).
    pub role_arn: String,
    pub system_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    /// Present: SPEKE v2 (CPIX 2.3) with these key presets; absent: SPEKE v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_contract_configuration: Option<EncryptionContractConfiguration>,
}

/// `encryptionContractConfiguration` (SPEKE v2 presets).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptionContractConfiguration {
    pub preset_speke20_audio: AudioPreset,
    pub preset_speke20_video: VideoPreset,
}

/// `presetSpeke20Audio`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AudioPreset {
    #[serde(rename = "PRESET-AUDIO-1")]
    Audio1,
    #[serde(rename = "PRESET-AUDIO-2")]
    Audio2,
    #[serde(rename = "PRESET-AUDIO-3")]
    Audio3,
    #[serde(rename = "SHARED")]
    Shared,
    #[serde(rename = "UNENCRYPTED")]
    Unencrypted,
}

/// `presetSpeke20Video`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VideoPreset {
    #[serde(rename = "PRESET-VIDEO-1")]
    Video1,
    #[serde(rename = "PRESET-VIDEO-2")]
    Video2,
    #[serde(rename = "PRESET-VIDEO-3")]
    Video3,
    #[serde(rename = "PRESET-VIDEO-4")]
    Video4,
    #[serde(rename = "PRESET-VIDEO-5")]
    Video5,
    #[serde(rename = "PRESET-VIDEO-6")]
    Video6,
    #[serde(rename = "PRESET-VIDEO-7")]
    Video7,
    #[serde(rename = "PRESET-VIDEO-8")]
    Video8,
    #[serde(rename = "SHARED")]
    Shared,
    #[serde(rename = "UNENCRYPTED")]
    Unencrypted,
}

fn sixty() -> u32 {
    60
}
