//! The staged-ingest authorizer: API Gateway's Lambda REQUEST authorizer in front of its
//! S3 integration (template.yaml, `StagedIngest=Enabled`), the path for segments larger
//! than a Lambda request can carry.
//!
//! It checks an upload's credentials as the ingest function does (Basic, or Digest made
//! with the deployment's fixed nonce, [`auth::check_with_fixed_nonce`]) and answers an IAM
//! policy for this one request: Allow, or Deny, which the template's gateway response turns
//! into 401 with the fixed Digest challenge. A request without `Authorization` gets the
//! same 401, from API Gateway (the header is the identity source) or from a Deny here.
//! Nothing is written; authorizer caching is off, since a Digest response names one
//! request. The Digest `uri` is checked against the path the event says was requested,
//! so the function needs no URL of the API it guards.

use crate::app::IngestServices;
use crate::catalog::Catalog;
use crate::ingest::auth;
use crate::store::StoreError;
use crate::time::UnixMillis;
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};

/// What API Gateway sends the authorizer.
pub type AuthorizerRequest = ApiGatewayCustomAuthorizerRequestTypeRequest;
/// What the authorizer answers: a policy, and `context.message` saying why.
pub type AuthorizerResponse = ApiGatewayCustomAuthorizerResponse<serde_json::Value>;

/// Allow or Deny for `request`. A store error is an error (API Gateway answers 500, and
/// the encoder retries), never a Deny.
pub async fn authorize(app: &IngestServices, request: AuthorizerRequest) -> Result<AuthorizerResponse, StoreError> {
    let method_arn = request.method_arn.clone().unwrap_or_default();
    let (principal, verdict) = match decide(app, &request).await? {
        Ok(principal) => (principal, Ok(())),
        Err(reason) => ("anonymous".to_owned(), Err(reason)),
    };
    let path = request.path.as_deref().unwrap_or("");
    match &verdict {
        Ok(()) => tracing::debug!(principal = %principal, path = %path, "staged upload allowed"),
        Err(reason) => tracing::warn!(path = %path, reason = %reason, "staged upload denied"),
    }
    Ok(response(principal, &method_arn, verdict))
}

/// The `{channel}/{ingest endpoint}` whose credentials the request carries, or why not.
async fn decide(app: &IngestServices, request: &AuthorizerRequest) -> Result<Result<String, String>, StoreError> {
    let method = request.http_method.as_ref().map_or("", |m| m.as_str());
    if !matches!(method, "PUT" | "POST") {
        return Ok(Err(format!("{method} is not a staged upload; only PUT and POST are")));
    }
    let path = request.path.as_deref().unwrap_or("");
    // The channel and ingest endpoint the S3 integration's key is made of (its path
    // parameters), else read from the resource path.
    let parameter = |name: &str| request.path_parameters.get(name).map(String::as_str);
    let named = parameter("channel")
        .zip(parameter("ingest"))
        .or_else(|| ingest_target(path));
    let Some((channel_id, ingest_id)) = named else {
        return Ok(Err(format!(
            "{path:?} names no ingest endpoint: use /in/v2/{{channel}}/{{ingest endpoint}}/{{file}}"
        )));
    };
    let Some(channel) = Catalog(app.stores.index.as_ref()).channel(channel_id).await? else {
        return Ok(Err(format!("no channel {channel_id:?}")));
    };
    let Some(endpoint) = channel.ingest_endpoint(ingest_id) else {
        return Ok(Err(format!(
            "channel {channel_id:?} has no ingest endpoint {ingest_id:?}"
        )));
    };
    // A Digest `uri` names what the encoder requested: the request context's path (stage,
    // or a custom domain's base path, included), else the stage and the resource path.
    // Both sides are compared percent-decoded as well (`auth::Target`).
    let stage = request
        .request_context
        .stage
        .as_deref()
        .map(|s| format!("/{s}"))
        .unwrap_or_default();
    let target = match request.request_context.path.as_deref() {
        Some(requested) => auth::Target {
            path_and_query: requested,
            base_path: "",
        },
        None => auth::Target {
            path_and_query: path,
            base_path: &stage,
        },
    };
    let authorization = request
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let now = UnixMillis::now().as_secs();
    let nonce = &app.config.staged_digest_nonce;
    Ok(
        match auth::check_with_fixed_nonce(authorization, method, &target, endpoint, now, nonce) {
            auth::AuthResult::Ok => Ok(format!("{channel_id}/{ingest_id}")),
            auth::AuthResult::Denied | auth::AuthResult::Stale => Err(
                "wrong ingest credentials: use the username and password of this ingest endpoint from DescribeChannel"
                    .into(),
            ),
        },
    )
}

/// Channel and ingest endpoint of `/in/v2/{channel}/{ingest}/{file…}` (API Gateway gives
/// the resource path without its stage).
fn ingest_target(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/in/v2/")?;
    let mut parts = rest.splitn(3, '/');
    let (channel, ingest, file) = (parts.next()?, parts.next()?, parts.next()?);
    (!channel.is_empty() && !ingest.is_empty() && !file.is_empty()).then_some((channel, ingest))
}

fn response(principal: String, method_arn: &str, verdict: Result<(), String>) -> AuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".into()];
    statement.resource = vec![method_arn.to_owned()];
    statement.effect = if verdict.is_ok() {
        IamPolicyEffect::Allow
    } else {
        IamPolicyEffect::Deny
    };
    let mut policy = ApiGatewayCustomAuthorizerPolicy::default();
    policy.version = Some("2012-10-17".into());
    policy.statement = vec![statement];
    let mut response = AuthorizerResponse::default();
    response.principal_id = Some(principal);
    response.policy_document = policy;
    response.context = serde_json::json!({ "message": verdict.err().unwrap_or_default() });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ingest_target_is_read_from_the_resource_path() {
        assert_eq!(ingest_target("/in/v2/ch/ie/live/a.ts"), Some(("ch", "ie")));
        assert_eq!(ingest_target("/in/v2/ch/ie/"), None);
        assert_eq!(ingest_target("/in/v2/ch"), None);
        assert_eq!(ingest_target("/v1/in/v2/ch/ie/a.ts"), None);
    }

    #[test]
    fn the_policy_names_only_this_method() {
        let arn = "arn:aws:execute-api:us-east-1:123456789012:abc/v1/PUT/in/v2/ch/ie/a.ts";
        let allow = serde_json::to_value(response("ch/ie".into(), arn, Ok(()))).unwrap();
        assert_eq!(allow["policyDocument"]["Statement"][0]["Effect"], "Allow");
        assert_eq!(allow["policyDocument"]["Statement"][0]["Resource"][0], arn);
        assert_eq!(allow["principalId"], "ch/ie");
        let deny = serde_json::to_value(response("anonymous".into(), arn, Err("why".into()))).unwrap();
        assert_eq!(deny["policyDocument"]["Statement"][0]["Effect"], "Deny");
        assert_eq!(deny["context"]["message"], "why");
    }
}
