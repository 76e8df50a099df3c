//! How encoders name things: a rendition's id from its file paths.

/// Stable rendition id from an encoder file path: folder plus file stem without its
/// trailing counter (`360p/seg_00012.ts` → `360p-seg`, `channel_1_00001.ts` → `channel_1`).
pub fn rendition_id(path: &str) -> String {
    let (dir, file) = path.rsplit_once('/').unwrap_or(("", path));
    let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
    let prefix = stem
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .trim_end_matches(['_', '-', '.']);
    let joined = [dir, prefix]
        .iter()
        .filter(|s| !s.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("-");
    let id: String = joined
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if id.is_empty() {
        "default".into()
    } else {
        id
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendition_ids_follow_encoder_naming() {
        assert_eq!(rendition_id("360p/seg_00012.ts"), "360p-seg");
        assert_eq!(rendition_id("channel_1_00001.ts"), "channel_1");
        assert_eq!(rendition_id("channel-high-00230.ts"), "channel-high");
        assert_eq!(rendition_id("720p/00001.ts"), "720p");
        assert_eq!(rendition_id("00001.ts"), "default");
        assert_eq!(rendition_id("a b/x.y_1.ts"), "a-b-x-y");
    }
}
