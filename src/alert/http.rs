//! The HTTP exchange every channel shares: one POST with a deadline, and the classification of
//! what came back into [`AlertError`] for the retry policy.
//!
//! Classification: 2xx is delivered; 429 is [`AlertError::RateLimited`] with the `Retry-After`
//! header (seconds or an HTTP date); 5xx, timeouts and connection errors are
//! [`AlertError::Transient`]; every other status is [`AlertError::Rejected`] and is never retried.
//! Nothing here may leak a secret: request URLs are stripped from transport errors, response
//! bodies are cut short and scrubbed of the channel's secrets before they become messages.

use std::time::Duration;

use chrono::DateTime;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

use super::AlertError;
use super::text::{one_line, truncate};
use crate::secret::REDACTED;

/// How much of a response body is kept (enough for any error message).
const MAX_BODY_BYTES: usize = 16 * 1024;

/// How much of a response body goes into an error message.
const MAX_MESSAGE_CHARS: usize = 300;

/// What came back from the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpResponse {
    pub status: u16,
    pub retry_after: Option<Duration>,
    /// At most [`MAX_BODY_BYTES`] of the body, lossily decoded.
    pub body: String,
}

/// POSTs `body` with `headers`, failing after `timeout` (connection, request and response body).
pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    body: Vec<u8>,
    timeout: Duration,
    channel: &str,
) -> Result<HttpResponse, AlertError> {
    let span = crate::telemetry::http::client_span("POST", url, &endpoint_label(url), channel);
    let mut headers = headers;
    crate::telemetry::http::inject(&span, &mut headers);
    let result =
        tracing::Instrument::instrument(exchange(client, url, headers, body, timeout, channel), span.clone()).await;
    match &result {
        Ok(r) => crate::telemetry::http::record_response(&span, Some(r.status), None),
        // Only the transport fails here; statuses are classified by the caller.
        Err(_) => crate::telemetry::http::record_response(&span, None, Some("transport")),
    }
    result
}

async fn exchange(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    body: Vec<u8>,
    timeout: Duration,
    channel: &str,
) -> Result<HttpResponse, AlertError> {
    let request = client.post(url).headers(headers).body(body).timeout(timeout);
    let mut response = request.send().await.map_err(|e| transport_error(channel, e, timeout))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, response.headers().get(reqwest::header::DATE)));
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY_BYTES - bytes.len();
                bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if bytes.len() >= MAX_BODY_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            // The status is what counts; a body cut off after a 2xx still means delivered.
            Err(e) if (200..300).contains(&status) => {
                tracing::debug!(channel, error = %e.without_url(), "response body unreadable after success");
                break;
            }
            Err(e) => return Err(transport_error(channel, e, timeout)),
        }
    }
    Ok(HttpResponse { status, retry_after, body: String::from_utf8_lossy(&bytes).into_owned() })
}

/// `Retry-After: 120` or `Retry-After: Wed, 21 Oct 2026 07:28:00 GMT` (measured against the
/// response's own `Date` header, so that no local clock is read; without one the date is ignored).
pub(crate) fn parse_retry_after(value: &str, date: Option<&HeaderValue>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?;
    let now = DateTime::parse_from_rfc2822(date?.to_str().ok()?.trim()).ok()?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Classifies a response: `Ok` for 2xx, else the error the retry policy acts on. `describe` turns
/// the body into a message (Slack sends a plain code, PagerDuty JSON).
pub(crate) fn classify(
    channel: &str,
    response: &HttpResponse,
    secrets: &[&str],
    describe: impl Fn(&str) -> String,
) -> Result<(), AlertError> {
    let status = response.status;
    let message = || {
        let text = scrub(&describe(&response.body), secrets);
        let text = truncate(&one_line(&text), MAX_MESSAGE_CHARS);
        if text.is_empty() { "no response body".to_string() } else { text }
    };
    match status {
        200..=299 => Ok(()),
        429 => Err(AlertError::RateLimited { channel: channel.to_string(), retry_after: response.retry_after }),
        500..=599 => Err(AlertError::Transient {
            channel: channel.to_string(),
            message: format!("HTTP {status}: {}", message()),
        }),
        _ => Err(AlertError::Rejected { channel: channel.to_string(), status, message: message() }),
    }
}

/// A transport failure as a retryable error whose message names no URL.
pub(crate) fn transport_error(channel: &str, error: reqwest::Error, timeout: Duration) -> AlertError {
    let message = if error.is_timeout() {
        format!("no response within {}s", timeout.as_secs_f64())
    } else {
        let error = error.without_url();
        let mut text = if error.is_connect() { "cannot connect".to_string() } else { error.to_string() };
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            // hyper's wrapper ("client error (Connect)") says nothing the next cause does not.
            if !text.contains(&cause_text) && !cause_text.starts_with("client error (") {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        text
    };
    AlertError::Transient { channel: channel.to_string(), message: truncate(&message, MAX_MESSAGE_CHARS) }
}

/// Replaces every occurrence of a secret (routing key, URL token) with `**redacted**`.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, REDACTED);
    }
    out
}

/// A URL safe to print: scheme, host and port; user info is dropped, and the path (which carries
/// the token of Slack, Teams and most chat webhooks) and the query become `**redacted**`.
pub(crate) fn endpoint_label(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.host_str().is_some() => {
            let host = parsed.host_str().unwrap_or_default();
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            let hidden = parsed.path() != "/" || parsed.query().is_some();
            let tail = if hidden { format!("/{REDACTED}") } else { String::new() };
            format!("{}://{host}{port}{tail}", parsed.scheme())
        }
        _ => REDACTED.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse { status, retry_after: Some(Duration::from_secs(3)), body: body.to_string() }
    }

    #[test]
    fn statuses_are_classified_for_the_retry_policy() {
        let plain = |b: &str| b.to_string();
        assert!(classify("c", &response(200, "ok"), &[], plain).is_ok());
        assert!(classify("c", &response(202, ""), &[], plain).is_ok());
        assert_eq!(
            classify("c", &response(429, ""), &[], plain),
            Err(AlertError::RateLimited { channel: "c".into(), retry_after: Some(Duration::from_secs(3)) })
        );
        assert_eq!(
            classify("c", &response(503, "rollup_error"), &[], plain),
            Err(AlertError::Transient { channel: "c".into(), message: "HTTP 503: rollup_error".into() })
        );
        for status in [400, 403, 404, 410, 301] {
            let err = classify("c", &response(status, "channel_not_found"), &[], plain).unwrap_err();
            assert_eq!(err, AlertError::Rejected { channel: "c".into(), status, message: "channel_not_found".into() });
        }
        let err = classify("c", &response(400, ""), &[], plain).unwrap_err();
        assert!(err.to_string().ends_with("no response body"), "{err}");
    }

    #[test]
    fn error_messages_never_repeat_a_secret() {
        let err = classify("c", &response(400, "bad key 0123456789abcdef"), &["0123456789abcdef"], |b| b.into());
        assert_eq!(err.unwrap_err().to_string(), "c rejected the notification (HTTP 400): bad key **redacted**");
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        assert_eq!(parse_retry_after("1", None), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 120 ", None), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("1.5", None), Some(Duration::from_millis(1500)));
        let date = HeaderValue::from_static("Wed, 21 Oct 2026 07:28:00 GMT");
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:30:00 GMT", Some(&date)), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:20:00 GMT", Some(&date)), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2026 07:30:00 GMT", None), None);
        assert_eq!(parse_retry_after("soon", None), None);
    }

    #[test]
    fn endpoints_print_without_their_token() {
        assert_eq!(
            endpoint_label("https://hooks.slack.com/services/T0/B0/XyZ"),
            "https://hooks.slack.com/**redacted**"
        );
        assert_eq!(endpoint_label("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(endpoint_label("https://user:pw@example.com/x?token=1"), "https://example.com/**redacted**");
        assert_eq!(endpoint_label("not a url"), "**redacted**");
    }
}
