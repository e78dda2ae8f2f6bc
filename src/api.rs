//! The HTTP API: health probes and read access to watched assets and their metric history.
//!
//! `router(state)` is a plain function so tests can call it without a socket. Handlers read
//! through the store and the agent's handles; they never query a warehouse.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::measure::{AssetId, MetricKind};
use crate::runtime::Agent;
use crate::store::{AssetRecord, ErrorRecord, StoreError};

mod lineage;

#[derive(Clone)]
pub struct ApiState {
    pub agent: Arc<Agent>,
}

/// The one error type of the API: a status and a message, as JSON.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn bad_request(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into() }
    }
    fn not_found(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into() }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store error in API");
        ApiError { status: StatusCode::SERVICE_UNAVAILABLE, message: "the metric store is unavailable".into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/assets", get(list_assets))
        .route("/api/v1/assets/{asset}", get(asset_detail))
        .route("/api/v1/assets/{asset}/metrics", get(asset_metrics))
        .route("/api/v1/assets/{asset}/verdicts", get(asset_verdicts))
        .route("/api/v1/assets/{asset}/columns/{column}/values", get(column_values))
        .route("/api/v1/assets/{asset}/labels", axum::routing::post(add_label))
        .route("/api/v1/assets/{asset}/health", get(asset_health))
        .route("/api/v1/incidents", get(list_incidents))
        .route("/api/v1/incidents/{id}", get(incident_detail))
        .route("/api/v1/incidents/{id}/{action}", axum::routing::post(incident_action))
        .route("/api/v1/downtime", get(downtime))
        .merge(lineage::routes(state.agent.config.lineage.max_event_bytes))
        .route("/metrics", get(crate::telemetry::http::metrics))
        .with_state(state)
}

async fn readyz(State(state): State<ApiState>) -> Response {
    let store = state.agent.store.ping().await;
    let ready = state.agent.is_ready();
    let body = json!({ "store": store, "first_cycle_complete": ready });
    let status = if store && ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(body)).into_response()
}

#[derive(Serialize)]
struct LatestValue {
    value: f64,
    observed_at: DateTime<Utc>,
}

#[derive(Serialize)]
struct AssetSummary {
    #[serde(flatten)]
    record: AssetRecord,
    /// Newest value per metric, keyed `kind` or `kind:column`.
    latest: BTreeMap<String, LatestValue>,
    last_error: Option<ErrorRecord>,
}

async fn summary(state: &ApiState, record: AssetRecord) -> Result<AssetSummary, ApiError> {
    let latest = state
        .agent
        .store
        .latest(&record.asset)
        .await?
        .into_iter()
        .map(|m| {
            let key = if m.column.is_empty() { m.kind.to_string() } else { format!("{}:{}", m.kind, m.column) };
            (key, LatestValue { value: m.value, observed_at: m.observed_at })
        })
        .collect();
    let last_error = state.agent.store.last_error(&record.asset).await?;
    Ok(AssetSummary { record, latest, last_error })
}

async fn list_assets(State(state): State<ApiState>) -> Result<Json<serde_json::Value>, ApiError> {
    let mut out = Vec::new();
    for record in state.agent.store.assets().await? {
        out.push(summary(&state, record).await?);
    }
    Ok(Json(json!({ "assets": out })))
}

fn parse_asset(raw: &str) -> Result<AssetId, ApiError> {
    raw.parse().map_err(ApiError::bad_request)
}

/// The asset a path names, which must be in the store's asset list (`404` otherwise).
async fn watched_asset(state: &ApiState, raw: &str) -> Result<AssetId, ApiError> {
    let asset = parse_asset(raw)?;
    if state.agent.store.asset(&asset).await?.is_none() {
        return Err(ApiError::not_found(format!("asset `{asset}` is not watched")));
    }
    Ok(asset)
}

async fn asset_detail(
    State(state): State<ApiState>,
    Path(asset): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let asset = parse_asset(&asset)?;
    let record = state
        .agent
        .store
        .asset(&asset)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("asset `{asset}` is not watched")))?;
    let schema = state.agent.store.schema_history(&asset, 20).await?;
    let check = state.agent.check_for(&asset).cloned();
    let summary = summary(&state, record).await?;
    Ok(Json(json!({ "asset": summary, "schema_history": schema, "check": check })))
}

#[derive(Deserialize)]
struct MetricsQuery {
    kind: Option<String>,
    column: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

async fn asset_metrics(
    State(state): State<ApiState>,
    Path(asset): Path<String>,
    Query(q): Query<MetricsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let asset = watched_asset(&state, &asset).await?;
    let kind = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => Some(k.parse::<MetricKind>().map_err(|e| {
            let valid: Vec<&str> = MetricKind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::bad_request(format!("{e}; valid kinds: {}", valid.join(", ")))
        })?),
        None => None,
    };
    let since = match q.since.as_deref() {
        Some(s) => Some(parse_since(s, state.agent.clock.now()).map_err(ApiError::bad_request)?),
        None => None,
    };
    let limit = q.limit.unwrap_or(10_000).min(100_000);
    let history = state.agent.store.history(&asset, kind, q.column.as_deref(), since, limit).await?;
    let points: Vec<_> = history
        .iter()
        .map(|m| json!({ "kind": m.kind, "column": m.column, "value": m.value, "observed_at": m.observed_at, "check": m.check }))
        .collect();
    Ok(Json(json!({ "asset": asset, "measurements": points })))
}

#[derive(Deserialize)]
struct VerdictsQuery {
    since: Option<String>,
    /// Only anomalous points.
    #[serde(default)]
    anomalies: bool,
    limit: Option<usize>,
}

/// Detector verdicts of one asset: expected range, score, anomaly flags and explanations.
async fn asset_verdicts(
    State(state): State<ApiState>,
    Path(asset): Path<String>,
    Query(q): Query<VerdictsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let asset = watched_asset(&state, &asset).await?;
    let since = match q.since.as_deref() {
        Some(s) => Some(parse_since(s, state.agent.clock.now()).map_err(ApiError::bad_request)?),
        None => None,
    };
    let verdicts = state.agent.store.verdicts(&asset, since, q.anomalies, q.limit.unwrap_or(1000).min(100_000)).await?;
    Ok(Json(json!({ "asset": asset, "verdicts": verdicts })))
}

#[derive(Deserialize)]
struct ValuesQuery {
    /// `category_shift` (value frequencies, the default) or `distribution_shift` (samples).
    metric: Option<String>,
    since: Option<String>,
}

/// The value frequencies (or samples) a column's profiles saved, oldest first: what a
/// `category_shift` or `distribution_shift` verdict compared.
async fn column_values(
    State(state): State<ApiState>,
    Path((asset, column)): Path<(String, String)>,
    Query(q): Query<ValuesQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let asset = watched_asset(&state, &asset).await?;
    let kind = match q.metric.as_deref().unwrap_or("category_shift") {
        "category_shift" => MetricKind::CategoryShift,
        "distribution_shift" => MetricKind::DistributionShift,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid `metric` `{other}`; expected `category_shift` or `distribution_shift`"
            )));
        }
    };
    let now = state.agent.clock.now();
    let since = match q.since.as_deref() {
        Some(s) => parse_since(s, now).map_err(ApiError::bad_request)?,
        None => DateTime::<Utc>::MIN_UTC,
    };
    let until = now.max(since) + chrono::Duration::days(1);
    let frames = state.agent.store.value_count_history(&asset, kind, &column, since, until).await?;
    let profiles: Vec<_> = frames
        .iter()
        .map(|(at, counts)| {
            let values: Vec<_> = counts.values.iter().map(|(v, n)| json!({ "value": v, "rows": n })).collect();
            json!({ "observed_at": at, "values": values, "other_rows": counts.rest, "rows": counts.total() })
        })
        .collect();
    Ok(Json(json!({ "asset": asset, "column": column, "metric": kind, "profiles": profiles })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelBody {
    metric: String,
    #[serde(default)]
    column: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    /// `expected` or `confirmed_incident`.
    label: String,
    note: Option<String>,
    by: Option<String>,
}

/// Marks a stretch of one series: `expected` re-baselines, `confirmed_incident` never trains.
async fn add_label(
    State(state): State<ApiState>,
    Path(asset): Path<String>,
    body: Result<Json<LabelBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let asset = parse_asset(&asset)?;
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let kind: MetricKind = body.metric.parse().map_err(ApiError::bad_request)?;
    if !matches!(body.label.as_str(), "expected" | "confirmed_incident") {
        return Err(ApiError::bad_request("`label` must be `expected` or `confirmed_incident`"));
    }
    if body.to <= body.from {
        return Err(ApiError::bad_request("`to` must be after `from`"));
    }
    if state.agent.store.asset(&asset).await?.is_none() {
        return Err(ApiError::not_found(format!("asset `{asset}` is not watched")));
    }
    let record = crate::store::LabelRecord {
        asset: asset.clone(),
        kind,
        column: body.column.clone(),
        starts_at: body.from,
        ends_at: body.to,
        label: body.label,
        note: body.note,
        created_by: body.by,
    };
    state.agent.store.add_label(&record, state.agent.clock.now()).await?;
    // The series' detector is rebuilt with the label on its next point.
    state.agent.detectors.forget(&asset, kind, &body.column);
    Ok((StatusCode::CREATED, Json(json!({ "label": record }))).into_response())
}

#[derive(Deserialize)]
struct HealthQuery {
    #[serde(default)]
    upstream: bool,
}

/// Circuit breaker: 200 for healthy and degraded, 503 for broken, so `curl --fail` gates a job.
async fn asset_health(
    State(state): State<ApiState>,
    Path(asset): Path<String>,
    Query(q): Query<HealthQuery>,
) -> Result<Response, ApiError> {
    let asset = parse_asset(&asset)?;
    let record = state.agent.store.asset(&asset).await?;
    let known = record.is_some() || state.agent.check_for(&asset).is_some();
    let in_graph = q.upstream && state.agent.lineage.graph().find_asset(&asset).is_some();
    if !known && !in_graph {
        return Err(ApiError::not_found(format!("asset `{asset}` is not watched")));
    }
    let brief = |i: &crate::incident::Incident| json!({ "id": i.id, "severity": i.severity_label(), "status": i.status, "title": i.title, "detected_at": i.detected_at });
    let (health, body) = if q.upstream {
        let h = state.agent.upstream_health(&asset).await?;
        let open: Vec<_> = h.own.iter().map(brief).collect();
        let body = json!({
            "asset": asset, "status": h.health.as_str(), "open_incidents": open,
            "upstream_incidents": h.upstream, "in_lineage_graph": h.in_graph, "checked_at": h.checked_at,
        });
        (h.health, body)
    } else {
        let (health, open, checked_at) = asset_health_of(&state.agent, &asset).await?;
        let open: Vec<_> = open.iter().map(brief).collect();
        (health, json!({ "asset": asset, "status": health.as_str(), "open_incidents": open, "checked_at": checked_at }))
    };
    let status =
        if health == crate::incident::Health::Broken { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    Ok((status, Json(body)).into_response())
}

/// Health of one asset from the store: its active incidents and when it was last measured.
pub async fn asset_health_of(
    agent: &crate::runtime::Agent,
    asset: &AssetId,
) -> Result<(crate::incident::Health, Vec<crate::incident::Incident>, Option<DateTime<Utc>>), crate::store::StoreError>
{
    let incidents = agent
        .store
        .incidents(&crate::store::IncidentFilter { asset: Some(asset.to_string()), limit: 1000, ..Default::default() })
        .await?;
    let open: Vec<_> = incidents.into_iter().filter(|i| i.status.is_active()).collect();
    let checked_at = agent.store.latest(asset).await?.iter().map(|m| m.observed_at).max();
    Ok((crate::incident::Health::of(&open), open, checked_at))
}

#[derive(Deserialize)]
struct IncidentsQuery {
    status: Option<String>,
    asset: Option<String>,
    owner: Option<String>,
    limit: Option<usize>,
}

async fn list_incidents(
    State(state): State<ApiState>,
    Query(q): Query<IncidentsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(crate::incident::IncidentStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown status `{s}`; expected open, acknowledged, resolved, expected or false_positive"
            ))
        })?),
        None => None,
    };
    let filter = crate::store::IncidentFilter {
        status,
        asset: q.asset.filter(|a| !a.is_empty()),
        owner: q.owner.filter(|o| !o.is_empty()),
        active_since: None,
        limit: q.limit.unwrap_or(200).min(10_000),
    };
    let incidents = state.agent.store.incidents(&filter).await?;
    Ok(Json(json!({ "incidents": incidents })))
}

async fn incident_detail(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let incident =
        state.agent.store.incident(&id).await?.ok_or_else(|| ApiError::not_found(format!("no incident `{id}`")))?;
    let events = state.agent.store.incident_events(&id).await?;
    let notifications = state.agent.store.notifications(Some(&id)).await?;
    let now = state.agent.clock.now();
    let lineage = state.agent.incident_lineage(&incident);
    Ok(Json(json!({
        "incident": incident,
        "lineage": lineage,
        "time_to_detection_seconds": incident.time_to_detection().num_seconds(),
        "time_to_resolution_seconds": incident.time_to_resolution(now).num_seconds(),
        "events": events,
        "notifications": notifications,
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    note: Option<String>,
    by: Option<String>,
}

async fn incident_action(
    State(state): State<ApiState>,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<ActionBody>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let action = crate::incident::lifecycle::Action::parse(&action).ok_or_else(|| {
        ApiError::not_found(format!("unknown action `{action}`; use acknowledge, resolve, expected or false-positive"))
    })?;
    let body = body.map(|Json(b)| b).unwrap_or_default();
    match state.agent.act_on_incident(&id, action, body.by.as_deref(), body.note.as_deref()).await {
        Ok(Some(incident)) => Ok(Json(json!({ "incident": incident }))),
        Ok(None) => Err(ApiError::not_found(format!("no incident `{id}`"))),
        Err(crate::runtime::IncidentActionError::Invalid(e)) => {
            Err(ApiError { status: StatusCode::CONFLICT, message: e.to_string() })
        }
        Err(crate::runtime::IncidentActionError::Store(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct DowntimeQuery {
    group_by: Option<String>,
    since: Option<String>,
}

/// Data downtime per asset or owner over a period, with TTD, TTR, cost and SLO budgets.
async fn downtime(
    State(state): State<ApiState>,
    Query(q): Query<DowntimeQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::incident::downtime::{GroupBy, downtime};
    let group_by = match q.group_by.as_deref().unwrap_or("asset") {
        "asset" => GroupBy::Asset,
        "owner" => GroupBy::Owner,
        other => return Err(ApiError::bad_request(format!("unknown group_by `{other}`; expected asset or owner"))),
    };
    let now = state.agent.clock.now();
    let since = parse_since(q.since.as_deref().unwrap_or("30d"), now).map_err(ApiError::bad_request)?;
    let filter = crate::store::IncidentFilter { active_since: Some(since), limit: 100_000, ..Default::default() };
    let incidents = state.agent.store.incidents(&filter).await?;
    let checks = &state.agent.checks;
    let rows = downtime(&incidents, group_by, since, now, |asset| {
        asset.parse::<AssetId>().ok().and_then(|a| checks.assets.get(&a)).and_then(|c| c.slo)
    });
    Ok(Json(
        json!({ "since": since, "until": now, "group_by": q.group_by.unwrap_or_else(|| "asset".into()), "rows": rows }),
    ))
}

/// `since` is an RFC 3339 time or a duration back from now (`24h`, `7d`).
fn parse_since(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = text.parse::<DateTime<Utc>>() {
        return Ok(t);
    }
    crate::yaml::parse_duration(text)
        .map(|d| now - chrono::Duration::from_std(d).unwrap_or_default())
        .map_err(|_| format!("invalid `since` `{text}`; expected an RFC 3339 time or a duration such as `24h`"))
}

/// Serves the API until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ApiState,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    // Traced here, around the finished router, so every route is covered whatever its order.
    tokio::spawn(crate::telemetry::metrics::refresh_loop(state.agent.clone(), shutdown.clone()));
    let app = router(state).layer(axum::middleware::from_fn(crate::telemetry::http::trace_requests));
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}
