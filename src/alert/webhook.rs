//! Generic webhooks: the documented JSON document of a notification, signed with HMAC-SHA256.
//!
//! # The request
//!
//! `POST <url>` with the body [`webhook_body`]: the [`Notification`] exactly as serde writes it
//! (`id`, `event`, `incident`, `created_at`) plus `"schema": "telltale.notification.v1"`, and the
//! headers
//!
//! | header | value |
//! |---|---|
//! | `Content-Type` | `application/json` |
//! | `User-Agent` | `telltale/<version>` |
//! | `X-Telltale-Event` | `triggered`, `reminder`, `acknowledged` or `resolved` |
//! | `X-Telltale-Delivery` | the notification id: the same on every retry, so receivers can drop duplicates |
//! | `X-Telltale-Timestamp` | Unix seconds when this attempt was sent |
//! | `X-Telltale-Signature` | `sha256=<hex>` (only when a secret is configured) |
//!
//! plus any extra headers configured for the channel.
//!
//! # The signature
//!
//! `X-Telltale-Signature` is `sha256=` followed by the lower-case hex HMAC-SHA256, keyed with the
//! shared secret (its UTF-8 bytes), of the ASCII timestamp exactly as sent in
//! `X-Telltale-Timestamp`, one `.`, and the raw request body bytes:
//!
//! ```text
//! signature = "sha256=" + hex(hmac_sha256(secret, timestamp + "." + body))
//! ```
//!
//! A receiver recomputes it over the body bytes it received (before any JSON parsing), compares in
//! constant time ([`verify_signature`] does both), and rejects timestamps more than a few minutes
//! from its own clock to stop replays. Each retry is signed anew with its own timestamp.
//!
//! The sink never sleeps, retries or rate-limits (the outbox does).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use sha2::Sha256;

use super::http::{self, endpoint_label};
use super::text::{hex, unhex};
use super::{AlertError, AlertSink, Delivery, Notification};
use crate::clock::{SharedClock, SystemClock};
use crate::secret::Secret;

/// The `schema` field of every webhook body.
pub const SCHEMA: &str = "telltale.notification.v1";

pub const EVENT_HEADER: &str = "x-telltale-event";
pub const DELIVERY_HEADER: &str = "x-telltale-delivery";
pub const TIMESTAMP_HEADER: &str = "x-telltale-timestamp";
pub const SIGNATURE_HEADER: &str = "x-telltale-signature";

/// Headers telltale sets itself, which configured extra headers may not replace.
pub const RESERVED_HEADERS: &[&str] = &["content-type", "content-length", "host", "user-agent", "transfer-encoding"];

/// A configured extra header that cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookHeaderError {
    #[error("`{name}` is not a valid HTTP header name")]
    InvalidName { name: String },
    #[error("the value of `{name}` is not a valid HTTP header value (no newlines or control characters)")]
    InvalidValue { name: String },
    #[error("`{name}` is set by telltale and cannot be overridden")]
    Reserved { name: String },
}

/// Checks one extra header; the value is only inspected, never echoed.
pub fn check_header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), WebhookHeaderError> {
    let header = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| WebhookHeaderError::InvalidName { name: name.to_string() })?;
    if RESERVED_HEADERS.contains(&header.as_str()) || header.as_str().starts_with("x-telltale-") {
        return Err(WebhookHeaderError::Reserved { name: name.to_string() });
    }
    let mut value =
        HeaderValue::from_str(value).map_err(|_| WebhookHeaderError::InvalidValue { name: name.to_string() })?;
    // Extra headers often carry tokens: keep them out of `Debug` output.
    value.set_sensitive(true);
    Ok((header, value))
}

/// Delivers the notification document to any HTTP endpoint.
pub struct WebhookSink {
    name: String,
    url: Secret,
    secret: Option<Secret>,
    headers: HeaderMap,
    client: reqwest::Client,
    timeout: Duration,
    clock: SharedClock,
}

impl WebhookSink {
    /// An unsigned webhook with no extra headers; the URL is treated as a credential.
    pub fn new(name: impl Into<String>, url: Secret, client: reqwest::Client, timeout: Duration) -> Self {
        WebhookSink {
            name: name.into(),
            url,
            secret: None,
            headers: HeaderMap::new(),
            client,
            timeout,
            clock: std::sync::Arc::new(SystemClock),
        }
    }

    /// Signs every request with `secret` (see the module docs).
    pub fn with_secret(mut self, secret: Secret) -> Self {
        self.secret = Some(secret);
        self
    }

    /// Adds an extra header to every request.
    pub fn add_header(&mut self, name: &str, value: &Secret) -> Result<(), WebhookHeaderError> {
        let (name, value) = check_header(name, value.expose())?;
        self.headers.insert(name, value);
        Ok(())
    }

    /// Reads `X-Telltale-Timestamp` from `clock` (tests pin it).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }
}

impl fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.keys().map(HeaderName::as_str).collect();
        f.debug_struct("WebhookSink")
            .field("name", &self.name)
            .field("url", &endpoint_label(self.url.expose()))
            .field("signed", &self.secret.is_some())
            .field("headers", &header_names)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[async_trait]
impl AlertSink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, notification: &Notification) -> Result<Delivery, AlertError> {
        let body = webhook_body(notification);
        let timestamp = self.clock.now().timestamp().to_string();
        let mut headers = self.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(super::USER_AGENT));
        headers.insert(EVENT_HEADER, HeaderValue::from_static(notification.event.as_str()));
        let delivery = HeaderValue::from_str(&notification.id).map_err(|_| AlertError::Rejected {
            channel: self.name.clone(),
            status: 0,
            message: "the notification id is not a valid header value".into(),
        })?;
        headers.insert(DELIVERY_HEADER, delivery);
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(&timestamp).expect("digits are a valid header"));
        let mut secrets: Vec<&str> = vec![self.url.expose()];
        secrets.extend(self.headers.values().filter_map(|v| v.to_str().ok()));
        if let Some(secret) = &self.secret {
            let signature = sign(secret.expose(), &timestamp, &body);
            headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&signature).expect("hex is a valid header"));
            secrets.push(secret.expose());
        }
        let response = http::post(&self.client, self.url.expose(), headers, body, self.timeout, &self.name).await?;
        http::classify(&self.name, &response, &secrets, |body| body.trim().to_string())?;
        tracing::debug!(channel = %self.name, notification = %notification.id, "delivered to webhook");
        Ok(Delivery { status: response.status, remote_id: None })
    }
}

/// The request body: the notification plus `"schema": "telltale.notification.v1"`.
pub fn webhook_body(notification: &Notification) -> Vec<u8> {
    let mut document = serde_json::to_value(notification).expect("a notification serializes");
    document["schema"] = serde_json::Value::String(SCHEMA.to_string());
    serde_json::to_vec(&document).expect("a JSON value serializes")
}

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, the `X-Telltale-Signature` value.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!("sha256={}", hex(&mac(secret, timestamp, body).finalize().into_bytes()))
}

/// Whether `header` (an `X-Telltale-Signature` value) signs `timestamp` and `body` with `secret`,
/// compared in constant time. Checking that the timestamp is recent is the caller's job.
pub fn verify_signature(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(digest) = header.trim().strip_prefix("sha256=").and_then(unhex) else { return false };
    mac(secret, timestamp, body).verify_slice(&digest).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::NotificationEvent;
    use crate::alert::example::notification;

    #[test]
    fn signatures_verify_and_detect_tampering() {
        let body = br#"{"id":"n1"}"#;
        let signature = sign("s3cret-s3cret-s3cret", "1787217300", body);
        assert!(signature.starts_with("sha256=") && signature.len() == 7 + 64);
        assert!(verify_signature("s3cret-s3cret-s3cret", "1787217300", body, &signature));
        assert!(verify_signature(
            "s3cret-s3cret-s3cret",
            "1787217300",
            body,
            &signature.to_uppercase().replace("SHA256=", "sha256=")
        ));
        assert!(!verify_signature("s3cret-s3cret-s3cret", "1787217301", body, &signature));
        assert!(!verify_signature("another-secret-here", "1787217300", body, &signature));
        assert!(!verify_signature("s3cret-s3cret-s3cret", "1787217300", br#"{"id":"n2"}"#, &signature));
        assert!(!verify_signature("s3cret-s3cret-s3cret", "1787217300", body, &signature[7..]));
        assert!(!verify_signature("s3cret-s3cret-s3cret", "1787217300", body, "sha256=zz"));
    }

    #[test]
    fn signature_matches_an_independent_computation() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"s3cret-s3cret-s3cret",
        //     b"1787217300.{\"id\":\"n1\"}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign("s3cret-s3cret-s3cret", "1787217300", br#"{"id":"n1"}"#),
            "sha256=512ba320789a686c180dfc5389ca964b943042861f1d7076fef6cb54cd321e47"
        );
    }

    #[test]
    fn the_body_is_the_notification_with_its_schema() {
        let n = notification(NotificationEvent::Triggered);
        let body: serde_json::Value = serde_json::from_slice(&webhook_body(&n)).unwrap();
        assert_eq!(body["schema"], SCHEMA);
        let mut without_schema = body.clone();
        without_schema.as_object_mut().unwrap().remove("schema");
        let back: Notification = serde_json::from_value(without_schema).unwrap();
        assert_eq!(back, n);
        assert_eq!(body["event"], "triggered");
        assert_eq!(body["incident"]["key"], "shop.main.orders/freshness");
    }

    #[test]
    fn extra_headers_are_checked() {
        assert!(check_header("Authorization", "Bearer x").is_ok());
        assert_eq!(check_header("bad header", "x"), Err(WebhookHeaderError::InvalidName { name: "bad header".into() }));
        assert_eq!(check_header("X-Token", "a\nb"), Err(WebhookHeaderError::InvalidValue { name: "X-Token".into() }));
        assert_eq!(
            check_header("Content-Type", "text/plain"),
            Err(WebhookHeaderError::Reserved { name: "Content-Type".into() })
        );
        assert_eq!(
            check_header("X-Telltale-Signature", "x"),
            Err(WebhookHeaderError::Reserved { name: "X-Telltale-Signature".into() })
        );
    }

    #[test]
    fn debug_output_hides_url_secret_and_header_values() {
        let mut sink = WebhookSink::new(
            "hook",
            Secret::new("https://example.com/hooks/TOKEN123"),
            reqwest::Client::new(),
            Duration::from_secs(5),
        )
        .with_secret(Secret::new("shared-secret-value"));
        sink.add_header("Authorization", &Secret::new("Bearer abcdef")).unwrap();
        let debug = format!("{sink:?}");
        for hidden in ["TOKEN123", "shared-secret-value", "abcdef"] {
            assert!(!debug.contains(hidden), "{debug}");
        }
        assert!(debug.contains("authorization"), "{debug}");
    }
}
