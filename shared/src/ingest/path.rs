//! Ingest paths: what a name may be, so the stores can hold it and nothing escapes the
//! ingest folder.

use super::IngestError;

/// Longest ingest path, in bytes.
const MAX_PATH_BYTES: usize = 512;
/// Longest object key (`channel/endpoint/path`), in bytes: S3's limit.
pub(super) const MAX_KEY_BYTES: usize = 1024;
/// Longest file or folder name in an ingest path, in bytes (a file name on most file systems).
const MAX_NAME_BYTES: usize = 255;

/// Rejects paths that could escape the ingest folder.
/// Also refuses names the stores cannot hold (S3 keys are at most 1,024 bytes, file names
/// 255), so the encoder gets a 400 naming the problem rather than a 503 it would retry.
pub(super) fn clean_path(path: &str) -> Result<String, IngestError> {
    if path.chars().any(char::is_control) {
        return Err(IngestError::Invalid(format!(
            "ingest path {path:?} contains a control character (NUL, newline, escape…); use printable file names"
        )));
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(IngestError::Invalid(format!(
            "ingest path is {} bytes long, more than the {MAX_PATH_BYTES} the store can hold; use shorter names",
            path.len()
        )));
    }
    if let Some(long) = path.split('/').find(|p| p.len() > MAX_NAME_BYTES) {
        return Err(IngestError::Invalid(format!(
            "ingest path segment of {} bytes is longer than {MAX_NAME_BYTES} bytes (\"{}…\"); use shorter names",
            long.len(),
            long.chars().take(32).collect::<String>()
        )));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|p| *p == "." || *p == ".." || p.contains('\\')) {
        return Err(IngestError::Invalid(format!(
            "ingest path {path:?} is not a plain relative file path"
        )));
    }
    Ok(parts.join("/"))
}

pub(super) fn extension(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.rsplit_once('.').map_or("", |(_, ext)| ext)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(e: IngestError) -> String {
        match e {
            IngestError::Invalid(m) => m,
            other => panic!("not Invalid: {other:?}"),
        }
    }

    #[test]
    fn paths_cannot_escape() {
        assert!(clean_path("../x.ts").is_err());
        assert!(clean_path("a/./x.ts").is_err());
        assert_eq!(clean_path("a//b.ts").unwrap(), "a/b.ts");
        for bad in ["a/b\0.ts", "a\nfake.ts", "a/\u{1b}[31m.ts", "a\r.ts", "a/\u{7f}.ts"] {
            let e = invalid(clean_path(bad).unwrap_err());
            assert!(e.contains("control character"), "{bad:?}: {e}");
        }
        let long_name = format!("a/{}.ts", "x".repeat(253));
        let e = invalid(clean_path(&long_name).unwrap_err());
        assert!(e.contains("longer than 255 bytes"), "{e}");
        assert!(clean_path(&format!("a/{}.ts", "x".repeat(252))).is_ok());
        let long_path = format!("{}x.ts", "abcdefgh/".repeat(60));
        let e = invalid(clean_path(&long_path).unwrap_err());
        assert!(e.contains("more than the 512"), "{e}");
        assert_eq!(clean_path("360p/segment_00001.ts").unwrap(), "360p/segment_00001.ts");
    }
}
