//! The reference key server as a Lambda behind a function URL (the template's optional
//! `ReferenceKeyServer`): SPEKE v1 and v2, AES-128 key URLs and a ClearKey license
//! endpoint, keys derived from `SLUICE_KEY_SERVER_SECRET`. Key URLs name the host the
//! request came to. For trying DRM flows, never for protecting content.

use lambda_http::{run, tracing, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing::init_default_subscriber();
    let secret = std::env::var("SLUICE_KEY_SERVER_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or("SLUICE_KEY_SERVER_SECRET must be set (ReferenceKeyServerSecret)")?;
    if secret.len() < 16 {
        tracing::warn!("SLUICE_KEY_SERVER_SECRET is shorter than 16 characters: its keys are easy to guess");
    }
    run(sluice_keyserver::routes(&secret, None)).await
}
