//! Secrets in configuration: `${ENV_VAR}` expansion and values that never print.
//!
//! A [`Secret`] shows as `**redacted**` in `Debug` and `Display`; connection URLs print with their
//! password replaced ([`redact_url`]) so logs, errors and the API can name a source safely.

use std::fmt;

pub const REDACTED: &str = "**redacted**";

/// A value that must not appear in logs, errors or API output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The real value, for the one place that needs it (a connection, a request).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// `scheme://user:password@host/db` → `scheme://user:**redacted**@host/db`; query parameters that
/// look like credentials are redacted too.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..].find(['/', '?']).map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let user = userinfo[..colon].to_string();
                out.replace_range(rest_start..rest_start + at, &format!("{user}:{REDACTED}"));
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if is_secret_key(k) => format!("{k}={REDACTED}"),
                _ => pair.to_string(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "key", "sslpassword"].iter().any(|s| k.contains(s))
}

/// Replaces `${NAME}` with the environment variable `NAME` (`$${` writes a literal `${`).
/// Returns the names that were not set.
pub fn expand_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(stripped) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = stripped;
        } else if let Some(stripped) = after.strip_prefix("${") {
            match stripped.find('}') {
                Some(end) => {
                    let name = &stripped[..end];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => missing.push(name.to_string()),
                    }
                    rest = &stripped[end + 1..];
                }
                None => {
                    out.push_str(after);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    if missing.is_empty() { Ok(out) } else { Err(missing) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "**redacted** **redacted**");
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redact_url("postgres://app:s3cr%40t@db:5432/x?sslmode=require&password=p"),
            "postgres://app:**redacted**@db:5432/x?sslmode=require&password=**redacted**"
        );
        assert_eq!(redact_url("sqlite://data/shop.db"), "sqlite://data/shop.db");
        assert_eq!(redact_url("mysql://root@h/db"), "mysql://root@h/db");
    }

    #[test]
    fn env_expansion_reports_missing_names() {
        let env = |k: &str| (k == "PW").then(|| "pw".to_string());
        assert_eq!(expand_env("a:${PW}@h", env).unwrap(), "a:pw@h");
        assert_eq!(expand_env("cost $5 $${X}", env).unwrap(), "cost $5 ${X}");
        assert_eq!(expand_env("${A}${B}", env).unwrap_err(), vec!["A", "B"]);
    }
}
