//! Tagging by ARN: TagResource, UntagResource, ListTagsForResource. An ARN index
//! (`arn` / `{arn}` → the resource's partition and id) is written when a channel or
//! origin endpoint is created and removed when it is deleted.

use super::*;
use std::collections::BTreeMap;

use crate::store::keys::ARNS;
/// MediaPackage's tag limits (per resource).
const MAX_TAGS: usize = 50;

#[derive(serde::Serialize, serde::Deserialize)]
struct ArnTarget {
    pk: String,
    id: String,
}

/// Records that `arn` names the catalog document `pk`/`id`.
pub(super) async fn remember_arn(app: &ControlServices, arn: &str, pk: &str, id: &str) -> Result<()> {
    let target = ArnTarget {
        pk: pk.to_owned(),
        id: id.to_owned(),
    };
    Ok(Catalog(app.stores.index.as_ref())
        .put(ARNS, arn, &target, Condition::Always)
        .await?)
}

/// Forgets an ARN (its resource was deleted).
pub(super) async fn forget_arn(app: &ControlServices, arn: &str) -> Result<()> {
    app.stores.index.delete_doc(ARNS, arn).await?;
    Ok(())
}

/// The resource document an ARN names, as JSON, with where it lives.
async fn resource(app: &ControlServices, arn: &str) -> Result<(ArnTarget, Map<String, Value>)> {
    let catalog = Catalog(app.stores.index.as_ref());
    let target: ArnTarget = catalog
        .get(ARNS, arn)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("no channel or origin endpoint has the ARN {arn:?}")))?;
    let doc: Map<String, Value> = catalog
        .get(&target.pk, &target.id)
        .await?
        .ok_or_else(|| ControlError::NotFound(format!("the resource of {arn:?} was deleted")))?;
    Ok((target, doc))
}

fn tags_of(doc: &Map<String, Value>) -> BTreeMap<String, String> {
    doc.get("tags")
        .and_then(|t| serde_json::from_value(t.clone()).ok())
        .unwrap_or_default()
}

async fn store_tags(
    app: &ControlServices,
    target: &ArnTarget,
    mut doc: Map<String, Value>,
    tags: BTreeMap<String, String>,
) -> Result<()> {
    doc.insert("tags".into(), json!(tags));
    replace_existing(app, &target.pk, &target.id, &doc, "resource").await
}

/// Checks tags against MediaPackage's limits: at most 50, keys 1–128 characters without
/// the reserved `aws:` prefix, values up to 256 characters.
pub(super) fn check_tags(tags: &BTreeMap<String, String>) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(ControlError::Unprocessable(format!(
            "{} tags: a resource takes at most {MAX_TAGS}",
            tags.len()
        )));
    }
    for (key, value) in tags {
        if key.is_empty() || key.chars().count() > 128 {
            return Err(ControlError::Unprocessable(format!(
                "tag key {key:?} must be 1 to 128 characters"
            )));
        }
        if key.to_ascii_lowercase().starts_with("aws:") {
            return Err(ControlError::Unprocessable(format!(
                "tag key {key:?}: the aws: prefix is reserved"
            )));
        }
        if value.chars().count() > 256 {
            return Err(ControlError::Unprocessable(format!(
                "tag {key:?}: values are at most 256 characters"
            )));
        }
    }
    Ok(())
}

pub(super) async fn list_tags(State(app): State<ControlServices>, Path(arn): Path<String>) -> Result<Json<Value>> {
    let (_, doc) = resource(&app, &arn).await?;
    Ok(Json(json!({ "tags": tags_of(&doc) })))
}

pub(super) async fn tag_resource(
    State(app): State<ControlServices>,
    Path(arn): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    let map = body_object(&body)?;
    refuse_unsupported(&map, "", &["tags"], &[])?;
    let new: BTreeMap<String, String> = match map.get("tags") {
        Some(t) => serde_json::from_value(t.clone())
            .map_err(|e| ControlError::Unprocessable(format!("tags must map strings to strings: {e}")))?,
        None => return Err(ControlError::Unprocessable("tags is required".into())),
    };
    let (target, doc) = resource(&app, &arn).await?;
    let mut tags = tags_of(&doc);
    tags.extend(new);
    check_tags(&tags)?;
    store_tags(&app, &target, doc, tags).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn untag_resource(
    State(app): State<ControlServices>,
    Path(arn): Path<String>,
    uri: axum::http::Uri,
) -> Result<Response> {
    let keys: Vec<String> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "tagKeys")
        .map(|(_, v)| v.into_owned())
        .collect();
    if keys.is_empty() {
        return Err(ControlError::Unprocessable("tagKeys is required".into()));
    }
    let (target, doc) = resource(&app, &arn).await?;
    let mut tags = tags_of(&doc);
    for key in &keys {
        tags.remove(key);
    }
    store_tags(&app, &target, doc, tags).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
