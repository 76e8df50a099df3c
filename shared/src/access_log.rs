//! Access logs in MediaPackage v1's format: one JSON object per ingest or playback request
//! of a channel whose `ingressAccessLogs` / `egressAccessLogs` are on (ConfigureLogs), with
//! MediaPackage's field names (`timestamp`, `clientIp`, `processingTime`, `statusCode`,
//! `receivedBytes`, `sentBytes`, `method`, `request`, `protocol`, `userAgent`, `account`,
//! `channelId`, `channelArn`, `domainName`, `requestId`, `endpointId`, `endpointArn`) and
//! `logGroupName`, the group ConfigureLogs named.
//!
//! Lines go to standard output: in Lambda they land in the function's own log group (a
//! Lambda cannot choose another), where `filter logGroupName = "…"` in Logs Insights
//! selects them; `sluice-local` prints them with its other output.

use crate::model::Channel;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// MediaPackage truncates the user agent at 8 KB.
const MAX_USER_AGENT: usize = 8 * 1024;

/// How long playback trusts a channel's log settings before reading them again.
const SETTINGS_TTL: Duration = Duration::from_secs(5);

/// One request, as the access log records it.
pub struct Entry<'a> {
    pub log_group: &'a str,
    pub at: crate::time::UnixMillis,
    /// Seconds from the request to the response head.
    pub processing_seconds: f64,
    pub client_ip: Option<std::net::IpAddr>,
    pub status: u16,
    pub received_bytes: u64,
    pub sent_bytes: u64,
    pub method: &'a str,
    /// The full request URL, with scheme, host, port and query.
    pub request: String,
    pub protocol: &'a str,
    pub user_agent: &'a str,
    pub account: &'a str,
    pub channel_id: &'a str,
    pub channel_arn: &'a str,
    pub domain_name: &'a str,
    pub request_id: &'a str,
    pub endpoint_id: &'a str,
    pub endpoint_arn: &'a str,
}

impl Entry<'_> {
    pub fn to_json(&self) -> Value {
        let mut agent = self.user_agent;
        if agent.len() > MAX_USER_AGENT {
            let mut end = MAX_USER_AGENT;
            while !agent.is_char_boundary(end) {
                end -= 1;
            }
            agent = &agent[..end];
        }
        let at = self
            .at
            .to_datetime()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        json!({
            "logGroupName": self.log_group,
            "timestamp": at,
            "clientIp": self.client_ip.map_or("-".to_owned(), |ip| ip.to_string()),
            "processingTime": self.processing_seconds,
            "statusCode": self.status.to_string(),
            "receivedBytes": self.received_bytes,
            "sentBytes": self.sent_bytes,
            "method": self.method,
            "request": self.request,
            "protocol": self.protocol,
            "userAgent": agent,
            "account": self.account,
            "channelId": self.channel_id,
            "channelArn": self.channel_arn,
            "domainName": if self.domain_name.is_empty() { "-" } else { self.domain_name },
            "requestId": self.request_id,
            "endpointId": self.endpoint_id,
            "endpointArn": self.endpoint_arn,
        })
    }

    /// Writes the entry as one line on standard output.
    pub fn write(&self) {
        use std::io::Write;
        let line = self.to_json().to_string();
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// The full URL of a request as the client addressed it.
pub fn request_url(headers: &http::HeaderMap, uri: &http::Uri) -> String {
    let host = headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("-");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("http");
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{scheme}://{host}{path}")
}

/// The client's address: the last `X-Forwarded-For` entry (the address the nearest proxy
/// saw, as API Gateway and CloudFront append it), else the connection's peer.
pub fn client_ip(headers: &http::HeaderMap, peer: Option<std::net::IpAddr>) -> Option<std::net::IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .last()
        .and_then(|v| v.trim().parse().ok())
        .or(peer)
}

/// The user agent header, or `-`.
pub fn user_agent(headers: &http::HeaderMap) -> &str {
    headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
}

/// The HTTP version as access logs spell it.
pub fn protocol(version: http::Version) -> &'static str {
    match version {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Channels' egress log settings, read at most every few seconds per channel: playback
/// otherwise never reads the channel document.
#[derive(Default)]
pub struct EgressSettings {
    /// Channel id → (read at, (log group, channel ARN) if egress logs are on).
    cache: Mutex<HashMap<String, CachedSettings>>,
}

type CachedSettings = (Instant, Option<(String, String)>);

impl EgressSettings {
    /// The egress log group and the channel's ARN, if egress logs are on.
    pub async fn of(&self, app: &crate::app::PlaybackServices, channel_id: &str) -> Option<(String, String)> {
        if let Some((at, settings)) = self.cache.lock().expect("settings lock").get(channel_id) {
            if at.elapsed() < SETTINGS_TTL {
                return settings.clone();
            }
        }
        let channel: Option<Channel> = crate::catalog::Catalog(app.stores.index.as_ref())
            .channel(channel_id)
            .await
            .ok()
            .flatten();
        let settings = channel.and_then(|c| {
            let arn = c.arn(&app.config.region, &app.config.account_id);
            Some((c.egress_log_group?, arn))
        });
        self.cache
            .lock()
            .expect("settings lock")
            .insert(channel_id.to_owned(), (Instant::now(), settings.clone()));
        settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_has_mediapackage_fields_and_truncates_the_user_agent() {
        let agent = "é".repeat(5000);
        let entry = Entry {
            log_group: "/aws/MediaPackage/EgressAccessLogs",
            at: crate::time::UnixMillis(1_700_000_000_123),
            processing_seconds: 0.004,
            client_ip: Some("192.0.2.7".parse().unwrap()),
            status: 200,
            received_bytes: 0,
            sent_bytes: 1234,
            method: "GET",
            request: "https://example.com:443/out/v1/e/index.m3u8?start=1".into(),
            protocol: "HTTP/1.1",
            user_agent: &agent,
            account: "000000000000",
            channel_id: "c",
            channel_arn: "arn:aws:mediapackage:us-east-1:000000000000:channels/x",
            domain_name: "",
            request_id: "r",
            endpoint_id: "e",
            endpoint_arn: "arn:aws:mediapackage:us-east-1:000000000000:origin_endpoints/y",
        };
        let v = entry.to_json();
        assert_eq!(v["timestamp"], "2023-11-14T22:13:20.123000Z");
        assert_eq!(v["statusCode"], "200");
        assert_eq!(v["clientIp"], "192.0.2.7");
        assert_eq!(v["domainName"], "-");
        let ua = v["userAgent"].as_str().unwrap();
        assert!(ua.len() <= MAX_USER_AGENT && ua.len() > MAX_USER_AGENT - 2 && ua.chars().all(|c| c == 'é'));
    }
}
