//! Where lake files live: a local directory or an S3-compatible bucket behind one `ObjectStore`,
//! and what storage errors mean for telltale (unreachable, permission, missing file, bad data).
//!
//! Stores are built lazily per scheme and bucket (an Iceberg catalog may point at several) and
//! registered with the source's DataFusion runtime, so the same connections serve metadata reads
//! and data scans.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnv;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use crate::config::S3Options;
use crate::source::SourceError;

/// One store and the URL DataFusion knows it by (`file://` or `s3://bucket`).
#[derive(Clone, Debug)]
pub(crate) struct Store {
    pub url: String,
    pub store: Arc<dyn ObjectStore>,
}

/// A location inside a store.
#[derive(Clone, Debug)]
pub(crate) struct Location {
    pub store: Store,
    pub path: ObjPath,
}

impl Location {
    pub fn child(&self, part: &str) -> Location {
        Location { store: self.store.clone(), path: join(&self.path, part) }
    }
    /// `s3://bucket/key` or `/abs/path`, for messages.
    pub fn display(&self) -> String {
        display(&self.store.url, &self.path)
    }
}

pub(crate) fn display(store_url: &str, path: &ObjPath) -> String {
    if store_url == "file://" { format!("/{path}") } else { format!("{store_url}/{path}") }
}

/// `a/b` + `c/d` without doubled or leading slashes.
pub(crate) fn join(base: &ObjPath, rest: &str) -> ObjPath {
    let rest = rest.trim_matches('/');
    if base.as_ref().is_empty() {
        ObjPath::from(rest)
    } else if rest.is_empty() {
        base.clone()
    } else {
        ObjPath::from(format!("{base}/{rest}"))
    }
}

/// The stores of one source, built on first use.
pub(crate) struct Stores {
    source_name: String,
    s3: S3Options,
    timeout: Duration,
    connect_timeout: Duration,
    runtime: Arc<RuntimeEnv>,
    built: Mutex<HashMap<String, Store>>,
}

impl Stores {
    pub fn new(
        source_name: &str,
        s3: S3Options,
        timeout: Duration,
        connect_timeout: Duration,
        runtime: Arc<RuntimeEnv>,
    ) -> Self {
        Stores {
            source_name: source_name.to_string(),
            s3,
            timeout,
            connect_timeout,
            runtime,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// `/abs/dir`, `file:///abs/dir` or `s3://bucket/prefix` → its store and path.
    pub fn locate(&self, url: &str) -> Result<Location, SourceError> {
        let (key, path) = if let Some(rest) = url.strip_prefix("s3://").or_else(|| url.strip_prefix("s3a://")) {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            (format!("s3://{bucket}"), prefix.to_string())
        } else {
            let path = url.strip_prefix("file://").unwrap_or(url);
            if !path.starts_with('/') {
                return Err(SourceError::Unsupported(format!(
                    "source `{}`: `{url}` is neither an absolute path nor `s3://bucket/prefix`",
                    self.source_name
                )));
            }
            ("file://".to_string(), path.to_string())
        };
        let store = self.store(&key)?;
        let path = ObjPath::from(percent_decode(path.trim_matches('/')).as_str());
        Ok(Location { store, path })
    }

    fn store(&self, key: &str) -> Result<Store, SourceError> {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = built.get(key) {
            return Ok(s.clone());
        }
        let store: Arc<dyn ObjectStore> = if key == "file://" {
            Arc::new(LocalFileSystem::new())
        } else {
            let bucket = key.trim_start_matches("s3://");
            let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
            if let Some(endpoint) = &self.s3.endpoint {
                b = b.with_endpoint(endpoint.clone());
            }
            b = b.with_region(self.s3.region.clone().unwrap_or_else(|| {
                std::env::var("AWS_REGION")
                    .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                    .unwrap_or_else(|_| "us-east-1".into())
            }));
            if let (Some(id), Some(secret)) = (&self.s3.access_key_id, &self.s3.secret_access_key) {
                b = b.with_access_key_id(id.expose()).with_secret_access_key(secret.expose());
            }
            if let Some(token) = &self.s3.session_token {
                b = b.with_token(token.expose());
            }
            b = b
                .with_virtual_hosted_style_request(!self.s3.path_style)
                .with_allow_http(self.s3.allow_http)
                .with_retry(RetryConfig {
                    backoff: BackoffConfig {
                        init_backoff: Duration::from_millis(100),
                        max_backoff: Duration::from_secs(2),
                        base: 2.0,
                    },
                    max_retries: 2,
                    retry_timeout: self.timeout,
                })
                .with_client_options(
                    ClientOptions::new()
                        .with_timeout(self.timeout)
                        .with_connect_timeout(self.connect_timeout)
                        .with_allow_http(self.s3.allow_http),
                );
            Arc::new(b.build().map_err(|e| {
                SourceError::Unsupported(format!("source `{}`: cannot configure S3: {e}", self.source_name))
            })?)
        };
        let url = ObjectStoreUrl::parse(key)
            .map_err(|e| SourceError::Unsupported(format!("source `{}`: {key}: {e}", self.source_name)))?;
        self.runtime.register_object_store(url.as_ref(), store.clone());
        let s = Store { url: key.to_string(), store };
        built.insert(key.to_string(), s.clone());
        Ok(s)
    }
}

/// `%20` and friends in URLs and partition directories written by other tools.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The whole chain of an error, for messages and classification.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = s.source();
    }
    text
}

fn looks_unreachable(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "error sending request",
        "connection refused",
        "connect error",
        "tcp connect",
        "dns error",
        "timed out",
        "connection reset",
        "broken pipe",
        "unexpected eof",
        "connection closed",
        "incomplete message",
    ]
    .iter()
    .any(|p| t.contains(p))
}

/// A storage failure while reading `what` (a table, a log, a file).
pub(crate) fn store_error(source_name: &str, what: &str, e: object_store::Error) -> SourceError {
    let source_name = source_name.to_string();
    match &e {
        object_store::Error::NotFound { path, .. } => {
            SourceError::Query { source_name, message: format!("{what}: `{path}` does not exist") }
        }
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            SourceError::PermissionDenied { source_name, message: format!("{what}: {}", chain(&e)) }
        }
        _ => {
            let message = format!("{what}: {}", chain(&e));
            if looks_unreachable(&message) {
                SourceError::Unreachable { source_name, message }
            } else {
                SourceError::Query { source_name, message }
            }
        }
    }
}

/// A failure reading or querying data files (parquet, arrow, DataFusion).
pub(crate) fn data_error(source_name: &str, what: &str, e: &(dyn std::error::Error + 'static)) -> SourceError {
    let source_name = source_name.to_string();
    let text = chain(e);
    if looks_unreachable(&text) {
        return SourceError::Unreachable { source_name, message: format!("{what}: {text}") };
    }
    let lower = text.to_ascii_lowercase();
    let hint = if lower.contains("resources exhausted") || lower.contains("memory") && lower.contains("limit") {
        "; raise the source's `memory_limit`, or narrow the check with `where` (partition filters) or `sample`"
    } else {
        ""
    };
    SourceError::Query { source_name, message: format!("{what}: {text}{hint}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_join_without_double_slashes() {
        assert_eq!(join(&ObjPath::from("a/b"), "/c/"), ObjPath::from("a/b/c"));
        assert_eq!(join(&ObjPath::from(""), "c"), ObjPath::from("c"));
        assert_eq!(percent_decode("a%20b/c%3D1"), "a b/c=1");
    }
}
