//! Who may play an endpoint (MediaPackage v1 access control), checked before anything is
//! read: `origination: DENY` refuses everyone, `whitelist` refuses addresses outside its
//! IPv4 CIDR blocks, `authorization` refuses requests without the CDN's shared secret in
//! `X-MediaPackage-CDNIdentifier` (current or previous version of the secret). Every
//! refusal is 403 with the reason; a secret that cannot be read also refuses (fail closed).

use super::reply::*;
use crate::app::PlaybackServices;
use crate::model::{OriginEndpoint, Origination};
use http::HeaderMap;
use std::net::{IpAddr, Ipv4Addr};

/// The CDN identifier header (v1).
pub const CDN_IDENTIFIER: &str = "x-mediapackage-cdnidentifier";

/// What access control looks at in a request.
pub struct Viewer {
    pub cdn_identifier: Option<String>,
    pub ip: Option<Ipv4Addr>,
}

impl Viewer {
    /// From the request: the client address is the connection's peer, or behind CloudFront
    /// (`from_forwarded_for`) the last `X-Forwarded-For` entry, the address CloudFront saw
    /// (earlier entries are whatever the client sent).
    pub fn of(headers: &HeaderMap, peer: Option<IpAddr>, from_forwarded_for: bool) -> Viewer {
        let ip = if from_forwarded_for {
            crate::access_log::client_ip(headers, None)
        } else {
            peer
        };
        let ip = ip.and_then(|ip| match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        });
        Viewer {
            cdn_identifier: headers
                .get(CDN_IDENTIFIER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            ip,
        }
    }
}

fn forbidden(message: String) -> PlaybackError {
    PlaybackError::Forbidden(message)
}

/// Refuses the request unless the endpoint's access settings allow `viewer`.
pub(crate) async fn check(
    app: &PlaybackServices,
    endpoint: &OriginEndpoint,
    viewer: &Viewer,
) -> Result<(), PlaybackError> {
    if endpoint.origination == Origination::Deny {
        return Err(forbidden(format!(
            "origin endpoint {:?} does not allow playback (origination is DENY)",
            endpoint.id
        )));
    }
    if !endpoint.whitelist.is_empty() {
        let allowed = viewer.ip.is_some_and(|ip| {
            endpoint
                .whitelist
                .iter()
                .filter_map(|c| crate::model::parse_cidr(c))
                .any(|(network, mask)| u32::from(ip) & mask == network)
        });
        if !allowed {
            let who = viewer.ip.map_or("an unknown address".to_owned(), |ip| ip.to_string());
            return Err(forbidden(format!(
                "{who} is not in the whitelist of origin endpoint {:?}",
                endpoint.id
            )));
        }
    }
    if let Some(auth) = &endpoint.authorization {
        let Some(sent) = &viewer.cdn_identifier else {
            return Err(forbidden(format!(
                "origin endpoint {:?} needs the X-MediaPackage-CDNIdentifier header (CDN authorization)",
                endpoint.id
            )));
        };
        let accepted = match app.secrets.cdn_identifiers(&auth.cdn_identifier_secret).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(endpoint = %endpoint.id, error = %e, "CDN identifier secret unreadable");
                return Err(forbidden(format!(
                    "the CDN identifier of origin endpoint {:?} could not be checked",
                    endpoint.id
                )));
            }
        };
        use subtle::ConstantTimeEq;
        if !accepted
            .iter()
            .any(|id| bool::from(id.as_bytes().ct_eq(sent.as_bytes())))
        {
            return Err(forbidden(
                "X-MediaPackage-CDNIdentifier does not match the endpoint's secret".into(),
            ));
        }
    }
    Ok(())
}
