//! Endpoint access control on the wire: `authorization` (CDN identifier secret),
//! `whitelist` (IPv4 CIDR blocks) and `origination` (ALLOW or DENY), validated with 422
//! naming the field. Playback enforces them (`origin::access`).

use super::*;
use crate::model::{CdnAuthorization, Origination};

/// The access settings of an endpoint.
pub(super) struct Access {
    pub authorization: Option<CdnAuthorization>,
    pub whitelist: Vec<String>,
    pub origination: Origination,
}

impl Access {
    pub fn of(endpoint: &OriginEndpoint) -> Access {
        Access {
            authorization: endpoint.authorization.clone(),
            whitelist: endpoint.whitelist.clone(),
            origination: endpoint.origination,
        }
    }

    pub fn none() -> Access {
        Access {
            authorization: None,
            whitelist: Vec::new(),
            origination: Origination::Allow,
        }
    }
}

/// Reads the three keys from a request body; absent keys keep `current`.
pub(super) fn access(map: &Map<String, Value>, current: Access) -> Result<Access> {
    let mut out = current;
    match map.get("authorization") {
        None => {}
        Some(Value::Null) => out.authorization = None,
        Some(Value::Object(a)) => {
            let field = |key: &str| a.get(key).and_then(Value::as_str).filter(|s| !s.is_empty());
            let secret = field("cdnIdentifierSecret").ok_or_else(|| {
                ControlError::Unprocessable(
                    "authorization.cdnIdentifierSecret is required (a Secrets Manager secret ARN)".into(),
                )
            })?;
            if !(secret.starts_with("arn:") && secret.contains(":secretsmanager:") && secret.contains(":secret:")) {
                return Err(ControlError::Unprocessable(format!(
                    "authorization.cdnIdentifierSecret {secret:?} is not a Secrets Manager secret ARN"
                )));
            }
            let role = field("secretsRoleArn").ok_or_else(|| {
                ControlError::Unprocessable("authorization.secretsRoleArn is required (an IAM role ARN)".into())
            })?;
            if !(role.starts_with("arn:") && role.contains(":iam::") && role.contains(":role/")) {
                return Err(ControlError::Unprocessable(format!(
                    "authorization.secretsRoleArn {role:?} is not an IAM role ARN"
                )));
            }
            out.authorization = Some(CdnAuthorization {
                cdn_identifier_secret: secret.to_owned(),
                secrets_role_arn: role.to_owned(),
            });
        }
        Some(_) => return Err(ControlError::Unprocessable("authorization must be an object".into())),
    }
    match map.get("whitelist") {
        None => {}
        Some(Value::Null) => out.whitelist.clear(),
        Some(Value::Array(items)) => {
            let mut list = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let cidr = item.as_str().filter(|c| parse_cidr(c).is_some()).ok_or_else(|| {
                    ControlError::Unprocessable(format!(
                        "whitelist[{i}] {item} is not an IPv4 CIDR block such as 203.0.113.0/24"
                    ))
                })?;
                list.push(cidr.to_owned());
            }
            out.whitelist = list;
        }
        Some(_) => {
            return Err(ControlError::Unprocessable(
                "whitelist must be a list of IPv4 CIDR blocks".into(),
            ))
        }
    }
    match map.get("origination") {
        None => {}
        Some(Value::String(s)) if s == "ALLOW" => out.origination = Origination::Allow,
        Some(Value::String(s)) if s == "DENY" => out.origination = Origination::Deny,
        Some(other) => {
            return Err(ControlError::Unprocessable(format!(
                "origination {other} must be ALLOW or DENY"
            )))
        }
    }
    Ok(out)
}

/// The wire form of the three settings, for Describe/List responses.
pub(super) fn access_json(endpoint: &OriginEndpoint, v: &mut Value) {
    v["origination"] = json!(endpoint.origination);
    v["whitelist"] = json!(endpoint.whitelist);
    if let Some(a) = &endpoint.authorization {
        v["authorization"] = json!(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_as_network_and_mask() {
        assert_eq!(parse_cidr("10.0.0.0/8"), Some((0x0a00_0000, 0xff00_0000)));
        assert_eq!(parse_cidr("10.1.2.3/8"), Some((0x0a00_0000, 0xff00_0000)));
        assert_eq!(parse_cidr("192.0.2.1"), Some((0xc000_0201, u32::MAX)));
        assert_eq!(parse_cidr("0.0.0.0/0"), Some((0, 0)));
        assert_eq!(parse_cidr("10.0.0.0/33"), None);
        assert_eq!(parse_cidr("2001:db8::/32"), None);
        assert_eq!(parse_cidr("ten/8"), None);
    }
}
