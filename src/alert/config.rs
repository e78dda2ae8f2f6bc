//! Alert channels in `telltale.yaml`: decoding, validation and building the sinks.
//!
//! A channel is a mapping tagged by `kind:` (`slack`, `pagerduty`, `webhook`). [`decode_channel`]
//! is called by the top-level config decoder for each entry of `channels:` and reports every
//! problem through the shared [`Decoder`] with file:line:column; it never connects to anything
//! (reachability is `telltale validate --connect`'s business). Webhook URLs, routing keys, signing
//! secrets and extra header values are [`Secret`]s: they come from `${ENV}`, print as
//! `**redacted**`, and no error message repeats them. [`build`] turns a channel into its
//! [`AlertSink`], [`rate_limit`] says how fast it may send.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::AlertSink;
use super::pagerduty::{self, PagerDutySink};
use super::rate::RateLimit;
use super::slack::SlackSink;
use super::text::hex;
use super::webhook::{WebhookSink, check_header};
use crate::secret::{Secret, expand_env};
use crate::yaml::{self, Decoder, Mark, Node};

/// The `kind:` values a channel may have.
pub const CHANNEL_KINDS: &[&str] = &["slack", "pagerduty", "webhook"];

/// Default deadline of one delivery request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_TIMEOUT: Duration = Duration::from_millis(100);
const MAX_TIMEOUT: Duration = Duration::from_secs(120);
/// Shortest accepted webhook signing secret.
pub const MIN_SECRET_CHARS: usize = 16;
/// Highest accepted `rate` of a webhook, in messages per second.
pub const MAX_WEBHOOK_RATE: f64 = 1000.0;

/// One configured alert channel.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelConfig {
    Slack(SlackConfig),
    PagerDuty(PagerDutyConfig),
    Webhook(WebhookConfig),
}

/// `kind: slack` — a Slack incoming webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackConfig {
    pub name: String,
    /// `webhook_url`: the `https://hooks.slack.com/services/…` URL Slack generated for the
    /// channel; a credential, so write it as `${SLACK_WEBHOOK_URL}`.
    pub webhook_url: Secret,
    /// `timeout`: deadline of each request (default `10s`).
    pub timeout: Duration,
    /// Where the channel was declared.
    pub mark: Mark,
}

/// `kind: pagerduty` — a PagerDuty Events API v2 integration.
#[derive(Debug, Clone, PartialEq)]
pub struct PagerDutyConfig {
    pub name: String,
    /// `routing_key`: the 32-character integration key of an "Events API v2" integration on a
    /// PagerDuty service; a credential, so write it as `${PAGERDUTY_ROUTING_KEY}`.
    pub routing_key: Secret,
    /// `url`: the events endpoint (default `https://events.pagerduty.com/v2/enqueue`; EU accounts
    /// use `https://events.eu.pagerduty.com/v2/enqueue`).
    pub url: String,
    /// `timeout`: deadline of each request (default `10s`).
    pub timeout: Duration,
    pub mark: Mark,
}

/// `kind: webhook` — any HTTP endpoint receiving the signed notification document.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    pub name: String,
    /// `url`: where to POST; treated as a credential (many webhook URLs carry a token).
    pub url: Secret,
    /// `secret`: signs every request with HMAC-SHA256 (`X-Telltale-Signature`); at least 16
    /// characters. Optional, recommended.
    pub secret: Option<Secret>,
    /// `headers`: extra request headers, e.g. `Authorization: "Bearer ${HOOK_TOKEN}"`; values are
    /// treated as credentials.
    pub headers: Vec<(String, Secret)>,
    /// `timeout`: deadline of each request (default `10s`).
    pub timeout: Duration,
    /// `rate`: at most this many messages per second (default: unlimited).
    pub rate: Option<f64>,
    pub mark: Mark,
}

impl ChannelConfig {
    pub fn name(&self) -> &str {
        match self {
            ChannelConfig::Slack(c) => &c.name,
            ChannelConfig::PagerDuty(c) => &c.name,
            ChannelConfig::Webhook(c) => &c.name,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ChannelConfig::Slack(_) => "slack",
            ChannelConfig::PagerDuty(_) => "pagerduty",
            ChannelConfig::Webhook(_) => "webhook",
        }
    }

    pub fn timeout(&self) -> Duration {
        match self {
            ChannelConfig::Slack(c) => c.timeout,
            ChannelConfig::PagerDuty(c) => c.timeout,
            ChannelConfig::Webhook(c) => c.timeout,
        }
    }

    pub fn mark(&self) -> Mark {
        match self {
            ChannelConfig::Slack(c) => c.mark,
            ChannelConfig::PagerDuty(c) => c.mark,
            ChannelConfig::Webhook(c) => c.mark,
        }
    }

    /// What the receiver rate-limits by (the webhook URL, the routing key), as a printable
    /// digest: channels with equal keys must share one [`super::rate::RateLimiter`].
    pub fn rate_key(&self) -> String {
        let identity = match self {
            ChannelConfig::Slack(c) => c.webhook_url.expose(),
            ChannelConfig::PagerDuty(c) => c.routing_key.expose(),
            ChannelConfig::Webhook(c) => c.url.expose(),
        };
        format!("{}:{}", self.kind(), &hex(&Sha256::digest(identity.as_bytes()))[..16])
    }
}

/// Decodes the channel `name` at `path` (e.g. `channels.oncall`); `env` resolves `${NAME}`.
/// Problems go to `d`; `None` when the channel is unusable.
pub fn decode_channel(
    d: &mut Decoder,
    name: &str,
    node: &Node,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<ChannelConfig> {
    let mut map = d.map(node, path)?;
    let kind = map
        .require(d, "kind", "the channel type: one of slack, pagerduty, webhook")
        .and_then(|n| d.one_of(n, &yaml::join(path, "kind"), "channel kind", CHANNEL_KINDS))?;
    let channel = match kind.as_str() {
        "slack" => {
            let url = map
                .require(d, "webhook_url", "the incoming webhook URL Slack generated, e.g. `${SLACK_WEBHOOK_URL}`")
                .and_then(|n| secret_url(d, n, &yaml::join(path, "webhook_url"), env, false));
            let timeout = decode_timeout(d, map.get("timeout"), path);
            map.finish(d);
            ChannelConfig::Slack(SlackConfig {
                name: name.to_string(),
                webhook_url: url?,
                timeout: timeout?,
                mark: node.mark,
            })
        }
        "pagerduty" => {
            let routing_key = map
                .require(
                    d,
                    "routing_key",
                    "the integration key of an Events API v2 integration, e.g. `${PAGERDUTY_ROUTING_KEY}`",
                )
                .and_then(|n| routing_key(d, n, &yaml::join(path, "routing_key"), env));
            let url = match map.get("url") {
                Some(n) => {
                    let p = yaml::join(path, "url");
                    d.text(n, &p).and_then(|u| checked_url(d, n, &p, &u, false).then_some(u))
                }
                None => Some(pagerduty::DEFAULT_EVENTS_URL.to_string()),
            };
            let timeout = decode_timeout(d, map.get("timeout"), path);
            map.finish(d);
            ChannelConfig::PagerDuty(PagerDutyConfig {
                name: name.to_string(),
                routing_key: routing_key?,
                url: url?,
                timeout: timeout?,
                mark: node.mark,
            })
        }
        _ => {
            let url = map
                .require(d, "url", "the URL to POST notifications to")
                .and_then(|n| secret_url(d, n, &yaml::join(path, "url"), env, true));
            let secret = match map.get("secret") {
                Some(n) => {
                    let p = yaml::join(path, "secret");
                    match expanded(d, n, &p, env) {
                        Some(s) if s.chars().count() >= MIN_SECRET_CHARS => Some(Some(Secret::new(s))),
                        Some(_) => {
                            d.error(
                                n.mark,
                                &p,
                                format!(
                                    "the signing secret is too short; use at least {MIN_SECRET_CHARS} random \
                                     characters (e.g. `openssl rand -hex 32`)"
                                ),
                            );
                            None
                        }
                        None => None,
                    }
                }
                None => Some(None),
            };
            let headers = match map.get("headers") {
                Some(n) => headers(d, n, &yaml::join(path, "headers"), env),
                None => Some(Vec::new()),
            };
            let rate = match map.get("rate") {
                Some(n) => decode_rate(d, n, &yaml::join(path, "rate")).map(Some),
                None => Some(None),
            };
            let timeout = decode_timeout(d, map.get("timeout"), path);
            map.finish(d);
            ChannelConfig::Webhook(WebhookConfig {
                name: name.to_string(),
                url: url?,
                secret: secret?,
                headers: headers?,
                timeout: timeout?,
                rate: rate?,
                mark: node.mark,
            })
        }
    };
    Some(channel)
}

/// The sink delivering to `config`, sending through `client` (one client for all channels keeps
/// connections pooled; give it no global timeout, each channel has its own).
pub fn build(config: &ChannelConfig, client: reqwest::Client) -> Arc<dyn AlertSink> {
    match config {
        ChannelConfig::Slack(c) => Arc::new(SlackSink::new(&c.name, c.webhook_url.clone(), client, c.timeout)),
        ChannelConfig::PagerDuty(c) => {
            Arc::new(PagerDutySink::new(&c.name, c.routing_key.clone(), client, c.timeout).with_events_url(&c.url))
        }
        ChannelConfig::Webhook(c) => {
            let mut sink = WebhookSink::new(&c.name, c.url.clone(), client, c.timeout);
            if let Some(secret) = &c.secret {
                sink = sink.with_secret(secret.clone());
            }
            for (name, value) in &c.headers {
                // Validated by `decode_channel`; a header built by hand that fails is left out, loudly.
                if let Err(e) = sink.add_header(name, value) {
                    tracing::error!(channel = %c.name, error = %e, "extra header left out");
                }
            }
            Arc::new(sink)
        }
    }
}

/// How fast `config` may send: Slack 1/s (bursts of 3), PagerDuty 120/min, webhooks `rate`.
pub fn rate_limit(config: &ChannelConfig) -> RateLimit {
    match config {
        ChannelConfig::Slack(_) => RateLimit::SLACK,
        ChannelConfig::PagerDuty(_) => RateLimit::PAGERDUTY,
        ChannelConfig::Webhook(c) => c.rate.map_or(RateLimit::Unlimited, RateLimit::per_second),
    }
}

/// `rate:` of a webhook, in messages per second.
fn decode_rate(d: &mut Decoder, node: &Node, path: &str) -> Option<f64> {
    let rate = d.float(node, path)?;
    if rate <= 0.0 || rate > MAX_WEBHOOK_RATE {
        d.error(
            node.mark,
            path,
            format!(
                "expected messages per second above 0 and at most {MAX_WEBHOOK_RATE}, e.g. `1` or `0.5`; \
                 leave `rate` out for no limit"
            ),
        );
        return None;
    }
    Some(rate)
}

/// `timeout:`, from 100 ms to 2 min; [`DEFAULT_TIMEOUT`] when absent.
fn decode_timeout(d: &mut Decoder, node: Option<&Node>, path: &str) -> Option<Duration> {
    let Some(node) = node else { return Some(DEFAULT_TIMEOUT) };
    let p = yaml::join(path, "timeout");
    let timeout = d.duration(node, &p)?;
    if !(MIN_TIMEOUT..=MAX_TIMEOUT).contains(&timeout) {
        d.error(node.mark, &p, "timeout must be from `100ms` to `2m`: one slow channel must not hold up the sender");
        return None;
    }
    Some(timeout)
}

fn expanded(d: &mut Decoder, node: &Node, path: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let raw = d.text(node, path)?;
    match expand_env(&raw, env) {
        Ok(s) if s.trim().is_empty() => {
            d.error(node.mark, path, "the value is empty after `${…}` expansion; set the environment variable");
            None
        }
        Ok(s) => Some(s),
        Err(missing) => {
            for name in missing {
                d.error(node.mark, path, format!("environment variable `{name}` is not set"));
            }
            None
        }
    }
}

/// A credential URL: checked, but never repeated in a message.
fn secret_url(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    plain_http: bool,
) -> Option<Secret> {
    let url = expanded(d, node, path, env)?;
    checked_url(d, node, path, url.trim(), plain_http).then(|| Secret::new(url.trim()))
}

/// Reports a URL that is not `https://host…` (`http://` is accepted on loopback, or everywhere
/// when `plain_http`). The message does not include the URL, which may be a credential.
fn checked_url(d: &mut Decoder, node: &Node, path: &str, url: &str, plain_http: bool) -> bool {
    let parsed = match reqwest::Url::parse(url) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => u,
        _ => {
            d.error(node.mark, path, "expected an absolute URL such as `https://host/path`");
            return false;
        }
    };
    let loopback = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match parsed.scheme() {
        "https" => true,
        "http" if plain_http || loopback => true,
        "http" => {
            d.error(
                node.mark,
                path,
                "expected an `https://` URL: plain `http://` would send the alert and its credentials unencrypted",
            );
            false
        }
        other => {
            d.error(node.mark, path, format!("unsupported URL scheme `{other}`; expected `https://`"));
            false
        }
    }
}

fn routing_key(d: &mut Decoder, node: &Node, path: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<Secret> {
    let key = expanded(d, node, path, env)?;
    let key = key.trim();
    let length = key.chars().count();
    if length != pagerduty::limits::ROUTING_KEY_CHARS {
        d.error(
            node.mark,
            path,
            format!(
                "expected the 32-character integration key of an Events API v2 integration, found {length} characters"
            ),
        );
        return None;
    }
    if !key.chars().all(|c| c.is_ascii_alphanumeric()) {
        d.error(node.mark, path, "expected an integration key of letters and digits only");
        return None;
    }
    Some(Secret::new(key))
}

fn headers(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<Vec<(String, Secret)>> {
    let mut map = d.map(node, path)?;
    let mut out = Vec::new();
    let mut ok = true;
    for (key, value) in map.entries() {
        let Some(name) = key.as_scalar() else { continue };
        let p = yaml::join(path, name);
        let Some(value) = expanded(d, value, &p, env) else {
            ok = false;
            continue;
        };
        match check_header(name, &value) {
            Ok(_) => out.push((name.to_string(), Secret::new(value))),
            Err(e) => {
                d.error(key.mark, &p, e.to_string());
                ok = false;
            }
        }
    }
    map.finish(d);
    ok.then_some(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use super::*;
    use crate::yaml::Value;

    fn env(name: &str) -> Option<String> {
        match name {
            "SLACK_URL" => Some("https://hooks.slack.com/services/T0/B0/SLACKTOKEN".into()),
            "PD_KEY" => Some("0123456789abcdef0123456789abcdef".into()),
            "SHORT_KEY" => Some("R0UTINGKEY12".into()),
            "HOOK_SECRET" => Some("hook-secret-0123456789".into()),
            "HOOK_TOKEN" => Some("tok-abcdef".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    /// Decodes `channels:` of a document the way the top-level config does.
    fn decode(text: &str) -> (BTreeMap<String, ChannelConfig>, String) {
        let root = yaml::parse(Path::new("telltale.yaml"), text).unwrap();
        let mut d = Decoder::new(Path::new("telltale.yaml"));
        let mut top = d.map(&root, "").unwrap();
        let channels = top.get("channels").unwrap();
        let mut out = BTreeMap::new();
        let mut cmap = d.map(channels, "channels").unwrap();
        for (key, value) in cmap.entries() {
            let name = key.as_scalar().unwrap();
            if let Some(c) = decode_channel(&mut d, name, value, &yaml::join("channels", name), &env) {
                out.insert(name.to_string(), c);
            }
        }
        (out, d.finish().to_string())
    }

    #[test]
    fn valid_channels_decode_with_defaults() {
        let (channels, problems) = decode(
            "channels:
  team-slack:
    kind: slack
    webhook_url: ${SLACK_URL}
  oncall:
    kind: pagerduty
    routing_key: ${PD_KEY}
    timeout: 5s
  eu:
    kind: pagerduty
    routing_key: ${PD_KEY}
    url: https://events.eu.pagerduty.com/v2/enqueue
  hook:
    kind: webhook
    url: http://alerts.internal:9000/telltale
    secret: ${HOOK_SECRET}
    headers:
      Authorization: Bearer ${HOOK_TOKEN}
    rate: 2
",
        );
        assert_eq!(problems, "");
        let ChannelConfig::Slack(slack) = &channels["team-slack"] else { panic!() };
        assert_eq!(slack.webhook_url.expose(), "https://hooks.slack.com/services/T0/B0/SLACKTOKEN");
        assert_eq!(slack.timeout, DEFAULT_TIMEOUT);
        let ChannelConfig::PagerDuty(pd) = &channels["oncall"] else { panic!() };
        assert_eq!(pd.url, pagerduty::DEFAULT_EVENTS_URL);
        assert_eq!(pd.timeout, Duration::from_secs(5));
        let ChannelConfig::PagerDuty(eu) = &channels["eu"] else { panic!() };
        assert_eq!(eu.url, pagerduty::EU_EVENTS_URL);
        let ChannelConfig::Webhook(hook) = &channels["hook"] else { panic!() };
        assert_eq!(hook.headers[0].0, "Authorization");
        assert_eq!(hook.headers[0].1.expose(), "Bearer tok-abcdef");
        assert_eq!(rate_limit(&channels["hook"]), RateLimit::Limited { per_second: 2.0, burst: 1 });
        assert_eq!(rate_limit(&channels["team-slack"]), RateLimit::SLACK);
        assert_eq!(rate_limit(&channels["oncall"]), RateLimit::PAGERDUTY);
        // Two PagerDuty channels with one routing key share a rate limit.
        assert_eq!(channels["oncall"].rate_key(), channels["eu"].rate_key());
        assert_ne!(channels["oncall"].rate_key(), channels["team-slack"].rate_key());
        for (name, channel) in &channels {
            let sink = build(channel, reqwest::Client::new());
            assert_eq!(sink.name(), name);
            assert_eq!(sink.kind(), channel.kind());
        }
        let debug = format!("{channels:?}");
        for secret in ["SLACKTOKEN", "0123456789abcdef", "hook-secret", "tok-abcdef"] {
            assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        }
    }

    #[test]
    fn every_mistake_is_reported_at_once_without_secrets() {
        let (channels, problems) = decode(
            "channels:
  oncall:
    kind: pagerduty
    routing_key: ${SHORT_KEY}
    url: ftp://events.example.com/v2/enqueue
  team:
    kind: slak
    webhook_url: https://hooks.slack.com/services/T0/B0/LITERALTOKEN
  data:
    kind: slack
    webhook_url: ${MISSING}
    timout: 5s
  plain:
    kind: slack
    webhook_url: http://hooks.slack.com/services/T0/B0/PLAINTOKEN
    timeout: 10m
  hook:
    kind: webhook
    url: not a url
    secret: short
    headers:
      Content-Type: text/plain
      bad header: x
      X-Token: ${EMPTY}
    rate: -1
  nothing:
    webhook_url: ${SLACK_URL}
  list: [slack]
",
        );
        assert!(channels.is_empty(), "{channels:?}");
        insta::assert_snapshot!(problems, @r#"
            telltale.yaml:4:18: channels.oncall.routing_key: expected the 32-character integration key of an Events API v2 integration, found 12 characters
            telltale.yaml:5:10: channels.oncall.url: unsupported URL scheme `ftp`; expected `https://`
            telltale.yaml:7:11: channels.team.kind: unknown channel kind `slak` (did you mean `slack`?); expected one of: slack, pagerduty, webhook
            telltale.yaml:11:18: channels.data.webhook_url: environment variable `MISSING` is not set
            telltale.yaml:12:5: channels.data.timout: unknown key `timout` (did you mean `timeout`?); valid keys here: kind, timeout, webhook_url
            telltale.yaml:15:18: channels.plain.webhook_url: expected an `https://` URL: plain `http://` would send the alert and its credentials unencrypted
            telltale.yaml:16:14: channels.plain.timeout: timeout must be from `100ms` to `2m`: one slow channel must not hold up the sender
            telltale.yaml:19:10: channels.hook.url: expected an absolute URL such as `https://host/path`
            telltale.yaml:20:13: channels.hook.secret: the signing secret is too short; use at least 16 random characters (e.g. `openssl rand -hex 32`)
            telltale.yaml:22:7: channels.hook.headers.Content-Type: `Content-Type` is set by telltale and cannot be overridden
            telltale.yaml:23:7: channels.hook.headers.bad header: `bad header` is not a valid HTTP header name
            telltale.yaml:24:16: channels.hook.headers.X-Token: the value is empty after `${…}` expansion; set the environment variable
            telltale.yaml:25:11: channels.hook.rate: expected messages per second above 0 and at most 1000, e.g. `1` or `0.5`; leave `rate` out for no limit
            telltale.yaml:27:5: channels.nothing: missing `kind`: expected the channel type: one of slack, pagerduty, webhook
            telltale.yaml:28:9: channels.list: expected a mapping, found a list
        "#);
        for secret in ["R0UTINGKEY12", "LITERALTOKEN", "PLAINTOKEN", "SLACKTOKEN"] {
            assert!(!problems.contains(secret), "{secret} leaked");
        }
    }

    #[test]
    fn header_values_may_come_from_the_environment() {
        let root = yaml::parse(
            Path::new("t.yaml"),
            "kind: webhook\nurl: https://x.example/h\nheaders: {X-Token: \"${HOOK_TOKEN}\"}\n",
        )
        .unwrap();
        let mut d = Decoder::new(Path::new("t.yaml"));
        let channel = decode_channel(&mut d, "h", &root, "channels.h", &env).unwrap();
        assert!(d.finish().is_empty());
        let ChannelConfig::Webhook(hook) = channel else { panic!() };
        assert_eq!(hook.headers, vec![("X-Token".to_string(), Secret::new("tok-abcdef"))]);
        assert!(matches!(root.value, Value::Map(_)));
    }
}
