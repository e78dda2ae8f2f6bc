//! Incidents, their event history and the durable outbox, in the metric store.
//!
//! An incident change and the notifications it calls for are written in one transaction, so a
//! crash can never leave an incident whose alert was not queued (or the reverse).

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

use super::{Store, StoreError, from_ms, ms};
use crate::alert::Notification;
use crate::incident::{Incident, IncidentStatus};

const INCIDENT_COLUMNS: &str = "id, incident_key, member_keys, asset, source, monitor, column_name, severity, status, title, \
     explanation, observed, expected_low, expected_high, score, owner, tier, tags, first_bad_at, detected_at, \
     acknowledged_at, resolved_at, updated_at, healthy_streak, bad_count, last_notified_at, acknowledged_by, resolved_by";

/// Something that happened to an incident (for its timeline).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentEvent {
    pub incident_id: String,
    pub at: DateTime<Utc>,
    /// `opened`, `updated`, `reopened`, `auto_resolved`, `acknowledged`, `resolved`, `expected`,
    /// `false_positive`, `notified`, `muted`.
    pub kind: String,
    pub actor: Option<String>,
    pub note: Option<String>,
    pub detail: Option<String>,
}

/// A queued notification for one channel.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxEntry {
    pub id: String,
    pub incident_id: String,
    pub channel: String,
    pub event: String,
    #[serde(skip)]
    pub notification: Option<Notification>,
    /// `pending`, `delivered`, `gave_up`, `cancelled` (superseded before it was sent).
    pub status: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub remote_id: Option<String>,
}

/// Filters of the incident list.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    pub status: Option<IncidentStatus>,
    pub asset: Option<String>,
    pub owner: Option<String>,
    /// Incidents still bad at or after this time (for downtime over a period).
    pub active_since: Option<DateTime<Utc>>,
    pub limit: usize,
}

fn incident_from_row(r: &AnyRow) -> Result<Incident, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("incident {what}"));
    Ok(Incident {
        id: r.try_get(0)?,
        key: r.try_get(1)?,
        member_keys: serde_json::from_str(&r.try_get::<String, _>(2)?).map_err(|_| corrupt("member keys"))?,
        asset: r.try_get(3)?,
        source: r.try_get(4)?,
        monitor: r.try_get(5)?,
        column: Some(r.try_get::<String, _>(6)?).filter(|c| !c.is_empty()),
        severity: r.try_get::<i64, _>(7)? as u8,
        status: IncidentStatus::parse(&r.try_get::<String, _>(8)?).ok_or_else(|| corrupt("status"))?,
        title: r.try_get(9)?,
        explanation: r.try_get(10)?,
        observed: r.try_get(11)?,
        expected_low: r.try_get(12)?,
        expected_high: r.try_get(13)?,
        score: r.try_get(14)?,
        owner: r.try_get(15)?,
        tier: r.try_get::<Option<i64>, _>(16)?.map(|t| t as u8),
        tags: serde_json::from_str(&r.try_get::<String, _>(17)?).unwrap_or_default(),
        first_bad_at: from_ms(r.try_get(18)?),
        detected_at: from_ms(r.try_get(19)?),
        acknowledged_at: r.try_get::<Option<i64>, _>(20)?.map(from_ms),
        resolved_at: r.try_get::<Option<i64>, _>(21)?.map(from_ms),
        updated_at: from_ms(r.try_get(22)?),
        healthy_streak: r.try_get::<i64, _>(23)? as u32,
        bad_count: r.try_get::<i64, _>(24)? as u32,
        last_notified_at: r.try_get::<Option<i64>, _>(25)?.map(from_ms),
        acknowledged_by: r.try_get(26)?,
        resolved_by: r.try_get(27)?,
    })
}

fn outbox_from_row(r: &AnyRow) -> Result<OutboxEntry, StoreError> {
    Ok(OutboxEntry {
        id: r.try_get(0)?,
        incident_id: r.try_get(1)?,
        channel: r.try_get(2)?,
        event: r.try_get(3)?,
        notification: serde_json::from_str(&r.try_get::<String, _>(4)?).ok(),
        status: r.try_get(5)?,
        attempts: r.try_get::<i64, _>(6)? as u32,
        created_at: from_ms(r.try_get(7)?),
        next_attempt_at: from_ms(r.try_get(8)?),
        delivered_at: r.try_get::<Option<i64>, _>(9)?.map(from_ms),
        last_error: r.try_get(10)?,
        remote_id: r.try_get(11)?,
    })
}

const OUTBOX_COLUMNS: &str = "id, incident_id, channel, event, payload, status, attempts, created_at, next_attempt_at, delivered_at, last_error, remote_id";

impl Store {
    /// The asset's incidents that are active, or were resolved after `resolved_since` (for
    /// flapping).
    pub async fn incidents_of_asset(
        &self,
        asset: &str,
        resolved_since: DateTime<Utc>,
    ) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE asset = $1 AND (status IN ('open', 'acknowledged') OR \
             (status = 'resolved' AND resolved_at >= $2)) ORDER BY detected_at"
        )))
        .bind(asset.to_string())
        .bind(ms(resolved_since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(incident_from_row).collect()
    }

    /// Every open or acknowledged incident, oldest first (root-cause grouping, upstream health).
    pub async fn active_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE status IN ('open', 'acknowledged') ORDER BY detected_at"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(incident_from_row).collect()
    }

    pub async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1")))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(incident_from_row).transpose()
    }

    pub async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE ($1 = '' OR status = $1) AND ($2 = '' OR asset = $2) \
             AND ($3 = '' OR owner = $3) AND (resolved_at IS NULL OR resolved_at >= $4) \
             ORDER BY detected_at DESC LIMIT $5"
        )))
        .bind(filter.status.map(|s| s.as_str()).unwrap_or(""))
        .bind(filter.asset.clone().unwrap_or_default())
        .bind(filter.owner.clone().unwrap_or_default())
        .bind(filter.active_since.map(ms).unwrap_or(i64::MIN))
        .bind(filter.limit.max(1) as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(incident_from_row).collect()
    }

    pub async fn incident_events(&self, id: &str) -> Result<Vec<IncidentEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT incident_id, at, kind, actor, note, detail FROM incident_events WHERE incident_id = $1 ORDER BY at, id",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(IncidentEvent {
                    incident_id: r.try_get(0)?,
                    at: from_ms(r.try_get(1)?),
                    kind: r.try_get(2)?,
                    actor: r.try_get(3)?,
                    note: r.try_get(4)?,
                    detail: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Saves incident changes, their events and the notifications they call for, atomically.
    pub async fn save_incidents(
        &self,
        incidents: &[&Incident],
        events: &[IncidentEvent],
        outbox: &[(Notification, String)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for i in incidents {
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO incidents ({INCIDENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                 $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28) ON CONFLICT (id) DO UPDATE SET \
                 member_keys = excluded.member_keys, severity = excluded.severity, status = excluded.status, \
                 title = excluded.title, explanation = excluded.explanation, observed = excluded.observed, \
                 expected_low = excluded.expected_low, expected_high = excluded.expected_high, score = excluded.score, \
                 acknowledged_at = excluded.acknowledged_at, resolved_at = excluded.resolved_at, updated_at = excluded.updated_at, \
                 healthy_streak = excluded.healthy_streak, bad_count = excluded.bad_count, \
                 last_notified_at = excluded.last_notified_at, acknowledged_by = excluded.acknowledged_by, \
                 resolved_by = excluded.resolved_by"
            )))
            .bind(i.id.clone())
            .bind(i.key.clone())
            .bind(serde_json::to_string(&i.member_keys).unwrap_or_else(|_| "[]".into()))
            .bind(i.asset.clone())
            .bind(i.source.clone())
            .bind(i.monitor.clone())
            .bind(i.column.clone().unwrap_or_default())
            .bind(i64::from(i.severity))
            .bind(i.status.as_str())
            .bind(i.title.clone())
            .bind(i.explanation.clone())
            .bind(i.observed)
            .bind(i.expected_low)
            .bind(i.expected_high)
            .bind(i.score)
            .bind(i.owner.clone())
            .bind(i.tier.map(i64::from))
            .bind(serde_json::to_string(&i.tags).unwrap_or_else(|_| "[]".into()))
            .bind(ms(i.first_bad_at))
            .bind(ms(i.detected_at))
            .bind(i.acknowledged_at.map(ms))
            .bind(i.resolved_at.map(ms))
            .bind(ms(i.updated_at))
            .bind(i64::from(i.healthy_streak))
            .bind(i64::from(i.bad_count))
            .bind(i.last_notified_at.map(ms))
            .bind(i.acknowledged_by.clone())
            .bind(i.resolved_by.clone())
            .execute(&mut *tx)
            .await?;
        }
        for e in events {
            sqlx::query("INSERT INTO incident_events (incident_id, at, kind, actor, note, detail) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(e.incident_id.clone())
                .bind(ms(e.at))
                .bind(e.kind.clone())
                .bind(e.actor.clone())
                .bind(e.note.clone())
                .bind(e.detail.clone())
                .execute(&mut *tx)
                .await?;
        }
        for (n, channel) in outbox {
            sqlx::query(
                "INSERT INTO outbox (id, incident_id, channel, event, payload, status, attempts, created_at, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) ON CONFLICT (id) DO NOTHING",
            )
            .bind(n.id.clone())
            .bind(n.incident.id.clone())
            .bind(channel.clone())
            .bind(n.event.as_str())
            .bind(serde_json::to_string(n).unwrap_or_default())
            .bind(ms(n.created_at))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Pending notifications due at `now`, oldest first.
    pub async fn due_notifications(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
             ORDER BY next_attempt_at, created_at LIMIT $2"
        )))
        .bind(ms(now))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// When the next pending notification is due, if any.
    pub async fn next_notification_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = sqlx::query("SELECT min(next_attempt_at) FROM outbox WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(next.map(from_ms))
    }

    pub async fn notifications(&self, incident_id: Option<&str>) -> Result<Vec<OutboxEntry>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1 = '' OR incident_id = $1) ORDER BY created_at, id"
        )))
        .bind(incident_id.unwrap_or("").to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    pub async fn pending_notifications(&self) -> Result<usize, StoreError> {
        let n: i64 = sqlx::query("SELECT count(*) FROM outbox WHERE status = 'pending'")
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        Ok(n as usize)
    }

    /// Records a delivery of a pending entry. Returns `false` when the entry was no longer
    /// pending: root-cause grouping cancelled it while it was being sent (see
    /// [`Store::mark_delivered_after_cancel`]).
    pub async fn mark_delivered(
        &self,
        id: &str,
        at: DateTime<Utc>,
        attempts: u32,
        remote_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.record_delivery(id, at, attempts, remote_id, "pending", "NULL").await
    }

    /// Records that an entry cancelled while it was in flight was delivered all the same (the
    /// channel has the page): status `delivered`, the cancel reason kept in `last_error`. Returns
    /// whether the entry was in that state, so the caller can follow the page with `resolved`.
    pub async fn mark_delivered_after_cancel(
        &self,
        id: &str,
        at: DateTime<Utc>,
        attempts: u32,
        remote_id: Option<&str>,
    ) -> Result<bool, StoreError> {
        let note = "'delivered while being cancelled: ' || COALESCE(last_error, '')";
        self.record_delivery(id, at, attempts, remote_id, "cancelled", note).await
    }

    /// Marks entry `id` delivered if its status is `from`; `last_error` becomes the SQL
    /// expression `last_error` (a constant of this module). Returns whether a row changed.
    async fn record_delivery(
        &self,
        id: &str,
        at: DateTime<Utc>,
        attempts: u32,
        remote_id: Option<&str>,
        from: &str,
        last_error: &'static str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(AssertSqlSafe(format!(
            "UPDATE outbox SET status = 'delivered', delivered_at = $2, attempts = $3, remote_id = $4, \
             last_error = {last_error} WHERE id = $1 AND status = $5"
        )))
        .bind(id.to_string())
        .bind(ms(at))
        .bind(i64::from(attempts))
        .bind(remote_id.map(String::from))
        .bind(from.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn mark_retry(
        &self,
        id: &str,
        attempts: u32,
        next_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $1 AND status = 'pending'")
            .bind(id.to_string())
            .bind(i64::from(attempts))
            .bind(ms(next_at))
            .bind(error.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Cancels the notifications of an incident still waiting to be sent (root-cause grouping
    /// folded the incident into another); returns how many.
    pub async fn cancel_pending_notifications(&self, incident_id: &str, reason: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "UPDATE outbox SET status = 'cancelled', last_error = $2 WHERE incident_id = $1 AND status = 'pending'",
        )
        .bind(incident_id.to_string())
        .bind(reason.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    pub async fn mark_gave_up(&self, id: &str, attempts: u32, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE outbox SET status = 'gave_up', attempts = $2, last_error = $3 WHERE id = $1 AND status = 'pending'",
        )
        .bind(id.to_string())
        .bind(i64::from(attempts))
        .bind(error.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
