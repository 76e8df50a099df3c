//! The ingest Authorization header (Basic and Digest), as encoders send it: never a
//! panic, and Basic lets in only the endpoint's own username and password.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use sluice::ingest::auth;
use sluice::model::IngestEndpoint;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    let endpoint = IngestEndpoint {
        id: "0123456789abcdef0123456789abcdef".into(),
        username: "user".into(),
        password: "secret".into(),
    };
    let _ = auth::parse_params(header);
    let target = auth::Target {
        path_and_query: "/in/v2/ch/0123456789abcdef0123456789abcdef/channel.m3u8",
        base_path: "/v1",
    };
    for method in ["PUT", "POST"] {
        let result = auth::check(Some(header), method, &target, &endpoint, 1_800_000_000);
        if matches!(result, auth::AuthResult::Ok) {
            let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header, ""));
            if scheme.eq_ignore_ascii_case("basic") {
                let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).unwrap_or_default();
                assert_eq!(decoded, b"user:secret", "Basic accepted other credentials: {header:?}");
            }
        }
    }
});
