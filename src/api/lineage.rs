//! Lineage over HTTP: the OpenLineage HTTP transport endpoint (`POST /api/v1/lineage`, and
//! `/api/v1/lineage/batch`), the graph around an asset (`GET /api/v1/lineage/graph`) and the blast
//! radius of an asset (`GET /api/v1/assets/{asset}/impact`).
//!
//! The ingest endpoint never trusts a body: the size is capped before and after gzip, a bearer
//! token is checked when `lineage.api_key` is set, and a malformed event is a 400 that names the
//! field. Parsing and merging run on the blocking pool, so a 10 MB event never stalls the API.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sha2::Digest;

use super::{ApiError, ApiState};
use crate::catalog::Direction;

/// The lineage routes, with the body limit `lineage.max_event_size` on the ingest endpoints.
pub fn routes(max_body: usize) -> Router<ApiState> {
    // The extractor's limit is the compressed size; the decompressed size is checked in `body`.
    let limit = axum::extract::DefaultBodyLimit::max(max_body);
    Router::new()
        .route("/api/v1/lineage", axum::routing::post(post_event).layer(limit))
        .route("/api/v1/lineage/batch", axum::routing::post(post_batch).layer(limit))
        .route("/api/v1/lineage/graph", axum::routing::get(graph))
        .route("/api/v1/assets/{asset}/impact", axum::routing::get(impact))
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError { status, message: message.into() }
}

fn too_large(max: usize) -> ApiError {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the event is larger than {max} bytes (lineage.max_event_size); split it or raise the limit"),
    )
}

/// Checks the bearer token when one is configured (constant-time comparison of digests).
fn authorize(state: &ApiState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(expected) = &state.agent.config.lineage.api_key else { return Ok(()) };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let ok =
        given.is_some_and(|g| sha2::Sha256::digest(g.as_bytes()) == sha2::Sha256::digest(expected.expose().as_bytes()));
    if ok {
        return Ok(());
    }
    let message =
        if given.is_some() { "invalid bearer token" } else { "missing bearer token (Authorization: Bearer …)" };
    Err(Box::new(
        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], Json(json!({ "error": message })))
            .into_response(),
    ))
}

/// The request body, gunzipped when `Content-Encoding: gzip`, at most `max` bytes either way.
fn body(headers: &HeaderMap, raw: Bytes, max: usize) -> Result<Bytes, ApiError> {
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("identity");
    match encoding.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => Ok(raw),
        "gzip" | "x-gzip" => {
            let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(max));
            let read = flate2::read::GzDecoder::new(&raw[..]).take(max as u64 + 1).read_to_end(&mut out);
            match read {
                Ok(n) if n > max => Err(too_large(max)),
                Ok(_) => Ok(Bytes::from(out)),
                Err(e) => Err(error(StatusCode::BAD_REQUEST, format!("the body is not valid gzip: {e}"))),
            }
        }
        other => Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported Content-Encoding `{other}`; send the event as is or gzip-compressed"),
        )),
    }
}

type RawBody = Result<Bytes, axum::extract::rejection::BytesRejection>;

/// The authorized, size-checked, inflated body of an ingest request, or the answer refusing it.
fn accept(state: &ApiState, headers: &HeaderMap, raw: RawBody) -> Result<Bytes, Box<Response>> {
    authorize(state, headers)?;
    let max = state.agent.config.lineage.max_event_bytes;
    let refuse = |e: ApiError| Box::new(e.into_response());
    let raw = raw.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => refuse(too_large(max)),
        status => refuse(error(status, e.body_text())),
    })?;
    body(headers, raw, max).map_err(refuse)
}

/// `POST /api/v1/lineage`: one OpenLineage RunEvent, DatasetEvent or JobEvent.
async fn post_event(State(state): State<ApiState>, headers: HeaderMap, raw: RawBody) -> Response {
    let bytes = match accept(&state, &headers, raw) {
        Ok(b) => b,
        Err(refused) => return *refused,
    };
    let agent = std::sync::Arc::clone(&state.agent);
    let merged = tokio::task::spawn_blocking(move || {
        let event = crate::catalog::openlineage::parse_event(&bytes)
            .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?;
        agent
            .lineage
            .ingest(&event, agent.clock.now())
            .map_err(|e| error(StatusCode::INSUFFICIENT_STORAGE, e.to_string()))
    })
    .await;
    let ingested = |outcome: &str, n: usize| {
        for _ in 0..n {
            crate::telemetry::metrics::lineage_event_ingested(outcome);
        }
    };
    match merged {
        Ok(Ok(ingest)) => {
            ingested("accepted", 1);
            (StatusCode::CREATED, Json(json!({ "ingested": ingest }))).into_response()
        }
        Ok(Err(e)) => {
            ingested("rejected", 1);
            e.into_response()
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("ingest failed: {e}")).into_response(),
    }
}

/// `POST /api/v1/lineage/batch`: a JSON array of events, each validated on its own; valid ones
/// are merged. 201 when all were, 400 with per-event errors (`[3].run.runId …`) otherwise.
async fn post_batch(State(state): State<ApiState>, headers: HeaderMap, raw: RawBody) -> Response {
    let bytes = match accept(&state, &headers, raw) {
        Ok(b) => b,
        Err(refused) => return *refused,
    };
    let agent = std::sync::Arc::clone(&state.agent);
    let merged = tokio::task::spawn_blocking(move || {
        let events = crate::catalog::openlineage::parse_batch(&bytes)
            .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?;
        let now = agent.clock.now();
        let mut accepted = 0usize;
        let mut errors = Vec::new();
        for (i, event) in events.into_iter().enumerate() {
            match event
                .map_err(|e| e.to_string())
                .and_then(|e| agent.lineage.ingest(&e, now).map_err(|e| e.to_string()))
            {
                Ok(_) => accepted += 1,
                Err(e) => errors.push(json!({ "index": i, "error": e })),
            }
        }
        Ok::<_, ApiError>((accepted, errors))
    })
    .await;
    if let Ok(Ok((accepted, errors))) = &merged {
        for (outcome, n) in [("accepted", *accepted), ("rejected", errors.len())] {
            for _ in 0..n {
                crate::telemetry::metrics::lineage_event_ingested(outcome);
            }
        }
    }
    match merged {
        Ok(Ok((accepted, errors))) if errors.is_empty() => {
            (StatusCode::CREATED, Json(json!({ "accepted": accepted }))).into_response()
        }
        Ok(Ok((accepted, errors))) => {
            let first = errors[0]["error"].as_str().unwrap_or_default().to_string();
            let body = json!({ "error": first, "accepted": accepted, "errors": errors });
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
        Ok(Err(e)) => e.into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("ingest failed: {e}")).into_response(),
    }
}

#[derive(Deserialize)]
struct GraphQuery {
    asset: Option<String>,
    depth: Option<u32>,
    direction: Option<String>,
}

/// `GET /api/v1/lineage/graph?asset=&depth=&direction=`: nodes and edges around an asset.
async fn graph(State(state): State<ApiState>, Query(q): Query<GraphQuery>) -> Result<Response, ApiError> {
    let asset = q.asset.filter(|a| !a.is_empty()).ok_or_else(|| {
        ApiError::bad_request("`asset` is required: a telltale asset (`source.schema.table`), a dbt unique_id or an OpenLineage `namespace/name`")
    })?;
    let direction = match q.direction.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => d.parse::<Direction>().map_err(ApiError::bad_request)?,
        None => Direction::Both,
    };
    let graph = state.agent.lineage.graph();
    let node =
        graph.resolve(&asset).ok_or_else(|| ApiError::not_found(format!("`{asset}` is not in the lineage graph")))?;
    let sub = graph.neighbourhood(node, q.depth, direction);
    let body = json!({ "asset": asset, "root": graph.asset(node).key, "nodes": sub.nodes, "edges": sub.edges });
    Ok(Json(body).into_response())
}

#[derive(Deserialize)]
struct ImpactQuery {
    depth: Option<u32>,
    limit: Option<usize>,
}

/// `GET /api/v1/assets/{asset}/impact?depth=&limit=`: the blast radius grouped by kind.
async fn impact(
    State(state): State<ApiState>,
    Path(asset): Path<String>,
    Query(q): Query<ImpactQuery>,
) -> Result<Json<crate::runtime::ImpactReport>, ApiError> {
    state
        .agent
        .lineage
        .impact(&asset, q.depth, q.limit)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("`{asset}` is not in the lineage graph")))
}
