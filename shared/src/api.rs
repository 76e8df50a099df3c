//! Control plane: the MediaPackage classic REST API (restJson1, camelCase keys), so
//! `boto3.client("mediapackage", endpoint_url=...)` and `aws mediapackage --endpoint-url`
//! work unchanged: all 19 operations of the classic API. Settings Sluice does not
//! implement yet are refused with 422 naming the field, never silently ignored; harvest
//! jobs are validated and recorded but cannot run yet (see `harvest`).

use crate::app::ControlServices;
use crate::catalog::{Catalog, CHANNELS, ENDPOINTS};
use crate::config::Config;
use crate::http::ControlError;
use crate::model::{Channel, HlsPackage, IngestEndpoint, OriginEndpoint, Package, PlaylistType};
use crate::store::{Condition, StoreError};
use crate::time::UnixMillis;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

mod access;
mod channels;
mod encryption;
mod endpoints;
pub mod guard;
mod harvest;
mod packages;
pub mod sigv4;
mod tags;

pub use crate::model::parse_cidr;
use base64::Engine;
use channels::*;
pub use channels::{channel_arn, channel_json};
use endpoints::*;
pub use endpoints::{endpoint_arn, endpoint_json};
use harvest::*;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tags::*;

/// The control routes.
pub fn router(app: ControlServices) -> Router {
    use axum::routing::put;
    let router = Router::new()
        .route("/channels", get(list_channels).post(create_channel))
        .route(
            "/channels/{id}",
            get(describe_channel).delete(delete_channel).put(update_channel),
        )
        .route("/channels/{id}/credentials", put(rotate_channel_credentials))
        .route(
            "/channels/{id}/ingest_endpoints/{ingest}/credentials",
            put(rotate_ingest_credentials),
        )
        .route("/channels/{id}/configure_logs", put(configure_logs))
        .route("/origin_endpoints", get(list_endpoints).post(create_endpoint))
        .route(
            "/origin_endpoints/{id}",
            get(describe_endpoint).delete(delete_endpoint).put(update_endpoint),
        )
        .route("/tags/{arn}", get(list_tags).post(tag_resource).delete(untag_resource))
        .route("/harvest_jobs", get(list_harvest_jobs).post(create_harvest_job))
        .route("/harvest_jobs/{id}", get(describe_harvest_job));
    let verifier = sigv4::Verifier::from_config(&app.config);
    let hosts = guard::Hosts::from_config(&app.config);
    // Outermost first: Host (direct connections only), SigV4 (when configured), JSON bodies.
    let router = router
        .with_state(app)
        .layer(axum::middleware::from_fn(guard::json_bodies_only));
    let router = match verifier {
        Some(verifier) => router.layer(axum::middleware::from_fn_with_state(verifier, sigv4::verify)),
        None => router,
    };
    router.layer(axum::middleware::from_fn_with_state(hosts, guard::known_host))
}

type Result<T> = std::result::Result<T, ControlError>;

use crate::model::random_hex;

/// Ids: letters, digits, `_` and `-`, 1–256 characters (MediaPackage's rule).
fn check_id(what: &str, id: &str) -> Result<()> {
    let ok = !id.is_empty() && id.len() <= 256 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ControlError::Unprocessable(format!(
            "{what} {id:?} is invalid: use 1 to 256 letters, digits, underscores or hyphens"
        )))
    }
}

fn body_object(body: &[u8]) -> Result<Map<String, Value>> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ControlError::Unprocessable("request body must be a JSON object".into())),
        Err(e) => Err(ControlError::Unprocessable(format!(
            "request body is not valid JSON: {e}"
        ))),
    }
}

/// Refuses keys Sluice does not implement yet, unless they carry the no-op value.
fn refuse_unsupported(map: &Map<String, Value>, path: &str, supported: &[&str], noop: &[(&str, Value)]) -> Result<()> {
    for (key, value) in map {
        if supported.contains(&key.as_str()) || value.is_null() {
            continue;
        }
        if noop.iter().any(|(k, v)| k == key && v == value) {
            continue;
        }
        let accepted = noop.iter().find(|(k, _)| k == key).map_or(String::new(), |(_, v)| {
            format!(" (Sluice accepts only {v}, which changes no output)")
        });
        return Err(ControlError::Unprocessable(format!(
            "{path}{key} {value} is not supported by Sluice yet{accepted}"
        )));
    }
    Ok(())
}

/// Deserializes one wire object; a refusal names the offending field as `what.field`.
fn parse<T: serde::de::DeserializeOwned>(what: &str, map: Map<String, Value>) -> Result<T> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let field = e.path().to_string();
        let what = what.trim_end_matches('.');
        let message = if field == "." {
            format!("{what}: {}", e.inner())
        } else {
            format!("{what}.{field}: {}", e.inner())
        };
        ControlError::Unprocessable(message)
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    max_results: Option<usize>,
    next_token: Option<String>,
    channel_id: Option<String>,
}

/// Opaque, tamper-safe pagination tokens: `{base64url(last id)}.{base64url(mac)}` where the
/// MAC is HMAC-SHA256 over the list's name and the last id, keyed by a secret generated
/// once per deployment and kept in the catalog (so every Lambda instance accepts it).
struct Pages {
    key: Vec<u8>,
    list: &'static str,
}

impl Pages {
    async fn new(app: &ControlServices, list: &'static str) -> Result<Pages> {
        let catalog = Catalog(app.stores.index.as_ref());
        let key: String = match catalog.get("secret", "pagination").await? {
            Some(key) => key,
            None => {
                let fresh = format!("{}{}", random_hex(), random_hex());
                match catalog.put("secret", "pagination", &fresh, Condition::IfAbsent).await {
                    Err(StoreError::ConditionFailed) => catalog
                        .get("secret", "pagination")
                        .await?
                        .ok_or_else(|| ControlError::Internal("pagination secret vanished".into()))?,
                    other => {
                        other?;
                        fresh
                    }
                }
            }
        };
        Ok(Pages {
            key: key.into_bytes(),
            list,
        })
    }

    fn mac(&self, last: &str) -> Vec<u8> {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(self.list.as_bytes());
        mac.update(&[0]);
        mac.update(last.as_bytes());
        mac.finalize().into_bytes()[..16].to_vec()
    }

    fn encode(&self, last: &str) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}", b64.encode(last), b64.encode(self.mac(last)))
    }

    /// The last id a token names; a token this API did not issue for this list is a 422.
    fn decode(&self, token: Option<&str>) -> Result<Option<String>> {
        let Some(token) = token else { return Ok(None) };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let invalid = || ControlError::Unprocessable("nextToken is not a token this API returned for this list".into());
        let (last, mac) = token.split_once('.').ok_or_else(invalid)?;
        let last = String::from_utf8(b64.decode(last).map_err(|_| invalid())?).map_err(|_| invalid())?;
        let mac = b64.decode(mac).map_err(|_| invalid())?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            mac.as_slice(),
            self.mac(&last).as_slice(),
        )) {
            return Err(invalid());
        }
        Ok(Some(last))
    }

    /// A list response: the first `limit` of `items` (fetched with one extra to know
    /// whether more follow) under `key`, and a `nextToken` when more follow.
    fn page_json<T>(&self, key: &str, items: &[T], limit: usize, render: impl Fn(&T) -> (String, Value)) -> Value {
        let rendered: Vec<(String, Value)> = items.iter().take(limit).map(render).collect();
        let mut v = json!({ key: rendered.iter().map(|(_, json)| json).collect::<Vec<_>>() });
        if items.len() > limit {
            if let Some((last, _)) = rendered.last() {
                v["nextToken"] = json!(self.encode(last));
            }
        }
        v
    }
}

/// Replaces a catalog document that must still exist (404 if it was deleted meanwhile).
async fn replace_existing<T: serde::Serialize>(
    app: &ControlServices,
    pk: &str,
    id: &str,
    value: &T,
    what: &str,
) -> Result<()> {
    match Catalog(app.stores.index.as_ref())
        .put(pk, id, value, Condition::IfPresent)
        .await
    {
        Err(StoreError::ConditionFailed) => Err(ControlError::NotFound(format!("{what} {id:?} was deleted meanwhile"))),
        other => Ok(other?),
    }
}

/// Writes a new catalog document; an existing id is a clear 422.
async fn create_unique<T: serde::Serialize>(
    app: &ControlServices,
    pk: &str,
    id: &str,
    value: &T,
    what: &str,
) -> Result<()> {
    match Catalog(app.stores.index.as_ref())
        .put(pk, id, value, Condition::IfAbsent)
        .await
    {
        Err(StoreError::ConditionFailed) => Err(ControlError::Unprocessable(format!(
            "{what} {id:?} already exists; choose another id"
        ))),
        other => Ok(other?),
    }
}

fn page_size(max_results: Option<usize>) -> Result<usize> {
    match max_results {
        None => Ok(1000),
        Some(n @ 1..=1000) => Ok(n),
        Some(n) => Err(ControlError::Unprocessable(format!(
            "maxResults {n} must be between 1 and 1000"
        ))),
    }
}
