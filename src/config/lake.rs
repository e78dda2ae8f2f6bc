//! The lake part of a source in `telltale.yaml`: where the files are (local path or `s3://`),
//! how to reach S3-compatible storage, the file format, an Iceberg SQL catalog and the DataFusion
//! memory limit. Pure decoding and validation; opening stores is `source::lake`'s business.

use std::path::Path;

use crate::secret::Secret;
use crate::yaml::{self, Decoder, MapReader};

pub const FILE_FORMATS: &[&str] = &["parquet", "csv", "ndjson"];

/// A data file format of a `files` source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Parquet,
    Csv,
    Ndjson,
}

impl FileFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv => "csv",
            FileFormat::Ndjson => "ndjson",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s {
            "parquet" => Some(FileFormat::Parquet),
            "csv" => Some(FileFormat::Csv),
            "ndjson" => Some(FileFormat::Ndjson),
            _ => None,
        }
    }
    /// The format a file name says it has (`.parquet`, `.csv`, `.ndjson`/`.jsonl`/`.json`).
    pub fn from_path(path: &str) -> Option<Self> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".parquet") || lower.ends_with(".parq") {
            Some(FileFormat::Parquet)
        } else if lower.ends_with(".csv") {
            Some(FileFormat::Csv)
        } else if lower.ends_with(".ndjson") || lower.ends_with(".jsonl") || lower.ends_with(".json") {
            Some(FileFormat::Ndjson)
        } else {
            None
        }
    }
}

/// `s3:` of a lake source. Every field falls back to the usual `AWS_*` environment variables.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// `http://127.0.0.1:9000` for MinIO-like servers; AWS when absent.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    /// Path-style requests (`endpoint/bucket/key`), which MinIO-like servers need.
    pub path_style: bool,
    /// Plain HTTP to the endpoint (loopback test servers).
    pub allow_http: bool,
}

/// Settings of a `files`, `delta` or `iceberg` source.
#[derive(Debug, Clone)]
pub struct LakeOptions {
    /// `files` only: the data file format; by default each file's extension decides.
    pub format: Option<FileFormat>,
    /// `files` only, CSV: whether the first line names the columns (default true).
    pub csv_header: bool,
    pub s3: S3Options,
    /// Iceberg only: a SQL catalog as pyiceberg writes it (`sqlite:///path/catalog.db`).
    pub catalog: Option<Secret>,
    /// Iceberg only: the `catalog_name` rows of the SQL catalog to read (default `default`).
    pub catalog_name: String,
    /// DataFusion's memory pool for profiles: a query that needs more fails with a clear error.
    pub memory_limit: u64,
    /// Profiles read only the files (Delta versions, Iceberg snapshots) added since the previous
    /// profile of the table, instead of every file.
    pub profile_new_files_only: bool,
}

impl Default for LakeOptions {
    fn default() -> Self {
        LakeOptions {
            format: None,
            csv_header: true,
            s3: S3Options::default(),
            catalog: None,
            catalog_name: "default".into(),
            memory_limit: 1 << 30,
            profile_new_files_only: false,
        }
    }
}

/// Whether `url` names a place a lake source can read: a local path, `file://` or `s3://`.
pub(super) fn check_url(url: &str) -> Result<(), String> {
    if let Some(rest) = url.strip_prefix("s3://") {
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("`{url}` names no bucket; expected `s3://bucket/prefix`"));
        }
        return Ok(());
    }
    if let Some((scheme, _)) = url.split_once("://")
        && scheme != "file"
    {
        return Err(format!(
            "unsupported storage `{scheme}://`; expected a local path, `file:///path` or `s3://bucket/prefix`"
        ));
    }
    Ok(())
}

/// A local path relative to the config file's directory becomes absolute; `s3://` is kept.
pub(super) fn resolve_url(url: &str, base_dir: &Path) -> String {
    if url.starts_with("s3://") {
        return url.trim_end_matches('/').to_string();
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    let path = Path::new(path);
    let absolute =
        if path.is_absolute() || base_dir.as_os_str().is_empty() { path.to_path_buf() } else { base_dir.join(path) };
    absolute.display().to_string().trim_end_matches('/').to_string()
}

fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

/// Reads the lake keys of one source mapping; `kind` is `files`, `delta` or `iceberg`.
pub(super) fn decode(
    d: &mut Decoder,
    map: &mut MapReader<'_>,
    kind: &str,
    base_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> LakeOptions {
    let mut out = LakeOptions::default();
    if kind == "files" {
        if let Some(n) = map.get("format") {
            let p = map.path_of("format");
            out.format = d.one_of(n, &p, "file format", FILE_FORMATS).and_then(|f| FileFormat::parse(&f));
        }
        if let Some(n) = map.get("csv_header") {
            out.csv_header = d.bool(n, &map.path_of("csv_header")).unwrap_or(true);
        }
    }
    if kind == "iceberg" {
        if let Some(n) = map.get("catalog") {
            let p = map.path_of("catalog");
            if let Some(url) = super::expanded(d, n, &p, env) {
                if url.starts_with("sqlite:") {
                    out.catalog = Some(Secret::new(super::resolve_sqlite_url(&url, base_dir)));
                } else {
                    d.error(
                        n.mark,
                        &p,
                        format!(
                            "unsupported catalog `{}`; expected a pyiceberg SQL catalog `sqlite:///path/catalog.db` (or no `catalog` for a filesystem layout)",
                            crate::secret::redact_url(&url)
                        ),
                    );
                }
            }
        }
        if let Some(n) = map.get("catalog_name") {
            out.catalog_name = d.text(n, &map.path_of("catalog_name")).unwrap_or_else(|| "default".into());
        }
    }
    if let Some(n) = map.get("memory_limit") {
        let p = map.path_of("memory_limit");
        match d.text(n, &p).map(|t| parse_size(&t)) {
            Some(Some(bytes)) if bytes >= 16 << 20 => out.memory_limit = bytes,
            Some(_) => d.error(n.mark, &p, "expected a size of at least `16MiB`, such as `512MiB` or `2GiB`"),
            None => {}
        }
    }
    if let Some(n) = map.get("profile_new_files_only") {
        out.profile_new_files_only = d.bool(n, &map.path_of("profile_new_files_only")).unwrap_or(false);
    }
    if let Some(node) = map.get("s3") {
        let path = map.path_of("s3");
        if let Some(mut s3) = d.map(node, &path) {
            let text = |d: &mut Decoder, s3: &mut MapReader<'_>, key: &'static str| {
                let p = yaml::join(&path, key);
                s3.get(key).and_then(|n| super::expanded(d, n, &p, env))
            };
            out.s3.endpoint = text(d, &mut s3, "endpoint");
            if let Some(e) = &out.s3.endpoint
                && !(e.starts_with("http://") || e.starts_with("https://"))
            {
                d.error(
                    node.mark,
                    &yaml::join(&path, "endpoint"),
                    format!("`{e}` is not an endpoint URL; expected `https://host` or `http://host:port`"),
                );
            }
            out.s3.region = text(d, &mut s3, "region");
            out.s3.access_key_id = text(d, &mut s3, "access_key_id").map(Secret::new);
            out.s3.secret_access_key = text(d, &mut s3, "secret_access_key").map(Secret::new);
            out.s3.session_token = text(d, &mut s3, "session_token").map(Secret::new);
            if let Some(n) = s3.get("path_style") {
                out.s3.path_style = d.bool(n, &yaml::join(&path, "path_style")).unwrap_or(false);
            }
            if let Some(n) = s3.get("allow_http") {
                out.s3.allow_http = d.bool(n, &yaml::join(&path, "allow_http")).unwrap_or(false);
            }
            if out.s3.access_key_id.is_some() != out.s3.secret_access_key.is_some() {
                d.error(
                    node.mark,
                    &path,
                    "set both `access_key_id` and `secret_access_key`, or neither (then AWS_* variables apply)",
                );
            }
            s3.finish(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lake_keys_are_validated_with_positions() {
        let text = "version: 1\nsources:\n  l:\n    kind: files\n    url: gs://b/x\n    format: parquett\n    memory_limit: 1MiB\n    s3:\n      endpoint: minio:9000\n      access_key_id: k\n  d:\n    kind: delta\n    url: lake\n    format: csv\n  i:\n    kind: iceberg\n    url: s3://wh\n    catalog: postgres://x\n";
        let err = crate::config::Config::parse(Path::new("telltale.yaml"), text, |_| None).unwrap_err();
        insta::assert_snapshot!(err.to_string(), @r"
        telltale.yaml:5:10: sources.l.url: unsupported storage `gs://`; expected a local path, `file:///path` or `s3://bucket/prefix`
        telltale.yaml:6:13: sources.l.format: unknown file format `parquett` (did you mean `parquet`?); expected one of: parquet, csv, ndjson
        telltale.yaml:7:19: sources.l.memory_limit: expected a size of at least `16MiB`, such as `512MiB` or `2GiB`
        telltale.yaml:9:7: sources.l.s3.endpoint: `minio:9000` is not an endpoint URL; expected `https://host` or `http://host:port`
        telltale.yaml:9:7: sources.l.s3: set both `access_key_id` and `secret_access_key`, or neither (then AWS_* variables apply)
        telltale.yaml:14:5: sources.d.format: unknown key `format`; valid keys here: connect_timeout, exclude, include, kind, max_connections, memory_limit, profile_new_files_only, s3, schedule, schemas, statement_timeout, url
        telltale.yaml:18:14: sources.i.catalog: unsupported catalog `postgres://x`; expected a pyiceberg SQL catalog `sqlite:///path/catalog.db` (or no `catalog` for a filesystem layout)
        ");
        let ok = crate::config::Config::parse(
            Path::new("/etc/tt/telltale.yaml"),
            "version: 1\nsources:\n  l:\n    kind: files\n    url: lake\n    memory_limit: 512MiB\n",
            |_| None,
        )
        .unwrap();
        let lake = ok.sources["l"].lake.as_ref().unwrap();
        assert_eq!(lake.memory_limit, 512 << 20);
        assert_eq!(ok.sources["l"].url.expose(), "/etc/tt/lake");
    }

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("2GB"), Some(2_000_000_000));
        assert_eq!(parse_size("64"), Some(64));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn urls_resolve_against_the_config_directory() {
        assert_eq!(resolve_url("lake/", Path::new("/etc/tt")), "/etc/tt/lake");
        assert_eq!(resolve_url("file:///data/lake", Path::new("/etc/tt")), "/data/lake");
        assert_eq!(resolve_url("s3://b/p/", Path::new("/etc/tt")), "s3://b/p");
        assert!(check_url("gs://b").is_err());
        assert!(check_url("s3:///x").is_err());
    }
}
