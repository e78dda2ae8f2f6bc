//! Outcomes → incidents → the durable outbox → channels.
//!
//! `process_outcomes` folds every finished job's outcomes into incidents (dedup, grouping, flap
//! protection, auto-resolve) and queues the notifications they call for in the same transaction.
//! `run_dispatcher` delivers queued notifications: one worker per channel (so a dead channel
//! delays nothing else), each under its channel's rate limit, retrying with backoff as the
//! channel's answers allow, and recording every outcome in the store. After a crash, whatever is
//! still pending is sent on the next start.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Agent, CheckOutcome, Status};
use crate::alert::{AlertSink, NotificationEvent};
use crate::incident::lifecycle::{self, Action, Change, Observation};
use crate::incident::{Incident, routing};
use crate::store::{IncidentEvent, OutboxEntry, StoreError};

impl Agent {
    /// Folds outcomes into incidents and queues their notifications.
    pub async fn process_outcomes(&self, outcomes: &[CheckOutcome]) {
        let mut by_asset: BTreeMap<String, Vec<&CheckOutcome>> = BTreeMap::new();
        for o in outcomes.iter().filter(|o| matches!(o.status, Status::Fail | Status::Pass | Status::Recorded)) {
            if self.check_for(&o.asset).is_some() {
                by_asset.entry(o.asset.to_string()).or_default().push(o);
            }
        }
        if by_asset.is_empty() {
            return;
        }
        // Upstream assets first, so a root cause opens its incident before the problems it causes
        // downstream (measured in the same run) are judged: they join it as symptoms.
        let mut ordered: Vec<(usize, String, Vec<&CheckOutcome>)> = Vec::with_capacity(by_asset.len());
        for (asset, list) in by_asset.iter() {
            let upstream_here = asset.parse::<crate::measure::AssetId>().map_or(0, |id| {
                let upstream = self.lineage.upstream_assets(&id, self.config.lineage.upstream_depth);
                upstream.iter().filter(|u| by_asset.contains_key(u.as_str())).count()
            });
            ordered.push((upstream_here, asset.clone(), list.clone()));
        }
        ordered.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let _guard = self.incident_lock.lock().await;
        for (_, asset, list) in ordered {
            let span = crate::telemetry::spans::incident_update(&asset);
            if let Err(e) = crate::telemetry::spans::in_span(span, self.process_asset(&asset, &list)).await {
                tracing::error!(asset, error = %e, "cannot update incidents");
            }
        }
        self.outbox_ready.notify_one();
    }

    async fn process_asset(&self, asset: &str, outcomes: &[&CheckOutcome]) -> Result<(), StoreError> {
        let now = self.clock.now();
        let policy = &self.config.alerting.policy;
        let flap = chrono::Duration::from_std(policy.flap_window).unwrap_or_default();
        let mut incidents = self.store.incidents_of_asset(asset, now - flap).await?;
        // Root-cause grouping: open incidents upstream of this asset (nearest first).
        incidents.extend(self.upstream_root_causes(asset, now).await?);
        let before = incidents.clone();
        let mut events = Vec::new();
        let mut notify: Vec<(usize, NotificationEvent)> = Vec::new();
        for o in outcomes {
            let obs = self.observation(o, now);
            let change = lifecycle::observe(&mut incidents, &obs, policy, || crate::incident::new_id(now));
            let kind = match &change {
                Change::Opened(_) => "opened",
                Change::Reopened(_) => "reopened",
                Change::Updated(_) => "updated",
                Change::Symptom(_) => "symptom",
                Change::AutoResolved(_) => "auto_resolved",
                Change::Nothing => continue,
            };
            let index = match change {
                Change::Opened(i)
                | Change::Reopened(i)
                | Change::Updated(i)
                | Change::Symptom(i)
                | Change::AutoResolved(i) => i,
                Change::Nothing => continue,
            };
            if matches!(change, Change::Opened(_) | Change::Reopened(_)) {
                self.note_failed_run(&mut incidents[index]);
                // A warning (e.g. a breaking schema change nothing downstream reads) opens at the
                // mildest severity.
                if o.advisory && incidents[index].member_keys.len() == 1 {
                    incidents[index].severity = 4;
                }
            }
            let first_symptom = kind == "symptom"
                && !before.iter().any(|b| b.id == incidents[index].id && b.member_keys.contains(&obs.key()));
            if kind == "symptom" && !first_symptom {
                continue;
            }
            // A still-bad measurement only refreshes the incident: one timeline entry per hour.
            let quiet_update = kind == "updated"
                && before
                    .iter()
                    .any(|b| b.id == incidents[index].id && now - b.updated_at < chrono::Duration::hours(1));
            crate::telemetry::spans::incident_changed(kind, &incidents[index].id, &incidents[index].title);
            if !quiet_update {
                let detail = if first_symptom {
                    let depth = self.config.lineage.upstream_depth;
                    let chain = self.lineage.chain(&incidents[index].asset, asset, depth).unwrap_or_default();
                    format!("{}: {} (downstream: {})", obs.key(), o.message, chain.join(" → "))
                } else {
                    o.message.clone()
                };
                events.push(IncidentEvent {
                    incident_id: incidents[index].id.clone(),
                    at: now,
                    kind: kind.into(),
                    actor: Some("telltale".into()),
                    note: None,
                    detail: Some(detail),
                });
            }
            if let Some(n) = change.notification() {
                notify.push(n);
            }
        }
        // Root-cause grouping the other way round: incidents already open downstream of an asset
        // whose own incident just opened become its symptoms (before its page is queued, so the
        // page lists them).
        let mut absorbed = Vec::new();
        let mut outbox = Vec::new();
        for &(index, event) in &notify {
            if event == NotificationEvent::Triggered {
                let (more, queued) = self.absorb_downstream(&mut incidents[index], now, &mut events).await?;
                absorbed.extend(more);
                outbox.extend(queued);
            }
        }
        for (index, event) in notify {
            outbox.extend(self.queue(&mut incidents[index], event, now, &mut events));
        }
        let mut changed: Vec<&Incident> = incidents.iter().filter(|i| !before.contains(i)).collect();
        changed.extend(absorbed.iter());
        crate::telemetry::spans::current().record("notifications", outbox.len() as u64);
        if changed.is_empty() && events.is_empty() && outbox.is_empty() {
            return Ok(());
        }
        crate::telemetry::metrics::timed_store("save_incidents", self.store.save_incidents(&changed, &events, &outbox))
            .await
    }

    /// The notifications an incident event calls for, one per routed channel (none when muted).
    fn queue(
        &self,
        incident: &mut Incident,
        event: NotificationEvent,
        now: DateTime<Utc>,
        events: &mut Vec<IncidentEvent>,
    ) -> Vec<(crate::alert::Notification, String)> {
        let alerting = &self.config.alerting;
        if let Some(mute) = routing::muted_by(incident, &alerting.mutes, now) {
            events.push(IncidentEvent {
                incident_id: incident.id.clone(),
                at: now,
                kind: "muted".into(),
                actor: Some("telltale".into()),
                note: mute.reason.clone(),
                detail: Some(format!("{} not sent: muted until {}", event.as_str(), mute.until.to_rfc3339())),
            });
            return Vec::new();
        }
        // Blast radius from lineage: how many assets downstream, the key ones with owners, and
        // every owner of a key downstream asset (routes may match on them).
        let mut downstream_owners = Vec::new();
        let impact = incident.asset.parse::<crate::measure::AssetId>().ok().and_then(|asset| {
            let graph = self.lineage.graph();
            let node = graph.find_asset(&asset)?;
            let radius = graph.blast_radius(node, Some(self.config.lineage.upstream_depth));
            for (owner, _, key_assets) in radius.owners(&graph) {
                if key_assets > 0 {
                    downstream_owners.extend(owner.name.iter().chain(owner.email.iter()).cloned());
                    downstream_owners.push(owner.to_string());
                }
            }
            Some(radius.to_alert(&graph, 5))
        });
        let channels = routing::channels_for_with(incident, &downstream_owners, &alerting.routes);
        if channels.is_empty() {
            return Vec::new();
        }
        incident.last_notified_at = Some(now);
        channels
            .into_iter()
            .map(|c| {
                let mut n = incident.notification(event, &c, now, &alerting.links);
                if let Some((count, key_assets)) = &impact {
                    n.incident.downstream_count = *count;
                    n.incident.key_assets = key_assets.clone();
                }
                (n, c)
            })
            .collect()
    }

    /// Active incidents of assets upstream of `asset` detected within `lineage.root_cause_window`,
    /// nearest asset first: the root causes a new problem of `asset` joins as a symptom.
    async fn upstream_root_causes(&self, asset: &str, now: DateTime<Utc>) -> Result<Vec<Incident>, StoreError> {
        let Ok(id) = asset.parse::<crate::measure::AssetId>() else { return Ok(Vec::new()) };
        let upstream = self.lineage.upstream_assets(&id, self.config.lineage.upstream_depth);
        if upstream.is_empty() {
            return Ok(Vec::new());
        }
        let window = chrono::Duration::from_std(self.config.lineage.root_cause_window).unwrap_or_default();
        let active = self.store.active_incidents().await?;
        let mut roots = Vec::new();
        for up in &upstream {
            let key = up.to_string();
            roots.extend(active.iter().filter(|i| i.asset == key && now - i.detected_at <= window).cloned());
        }
        Ok(roots)
    }

    /// Folds active incidents downstream of `root`'s asset (within `lineage.upstream_depth` hops,
    /// detected within `lineage.root_cause_window`) into `root` as symptoms, with the chain. Each
    /// absorbed incident is resolved as "symptom of" the root; its notifications still waiting in
    /// the outbox are cancelled (no second page), and where its page was already delivered a
    /// `resolved` notification saying so is queued for that channel (so a PagerDuty incident
    /// closes instead of staying open). Returns the absorbed incidents and those notifications.
    async fn absorb_downstream(
        &self,
        root: &mut Incident,
        now: DateTime<Utc>,
        events: &mut Vec<IncidentEvent>,
    ) -> Result<(Vec<Incident>, Vec<(crate::alert::Notification, String)>), StoreError> {
        let Ok(root_asset) = root.asset.parse::<crate::measure::AssetId>() else { return Ok(Default::default()) };
        let depth = self.config.lineage.upstream_depth;
        let window = chrono::Duration::from_std(self.config.lineage.root_cause_window).unwrap_or_default();
        let candidates: Vec<Incident> = {
            let active = self.store.active_incidents().await?;
            let graph = self.lineage.graph();
            let Some(root_node) = graph.find_asset(&root_asset) else { return Ok(Default::default()) };
            active
                .into_iter()
                .filter(|d| d.id != root.id && d.asset != root.asset && now - d.detected_at <= window)
                .filter(|d| {
                    d.asset
                        .parse::<crate::measure::AssetId>()
                        .ok()
                        .and_then(|a| graph.find_asset(&a))
                        .is_some_and(|node| graph.is_upstream_of(root_node, node, Some(depth)))
                })
                .collect()
        };
        let mut absorbed = Vec::new();
        let mut queued = Vec::new();
        for mut d in candidates {
            let chain = self.lineage.chain(&root.asset, &d.asset, depth).unwrap_or_default().join(" → ");
            for key in &d.member_keys {
                if !root.member_keys.contains(key) {
                    root.member_keys.push(key.clone());
                }
            }
            root.bad_count += d.bad_count;
            root.explanation = format!("{}\nsymptom downstream: {}", root.explanation, d.title);
            events.push(IncidentEvent {
                incident_id: root.id.clone(),
                at: now,
                kind: "symptom".into(),
                actor: Some("telltale".into()),
                note: None,
                detail: Some(format!(
                    "{}: incident {} (opened {}) grouped under this root cause (downstream: {chain})",
                    d.key,
                    d.id,
                    d.detected_at.format("%Y-%m-%d %H:%M UTC")
                )),
            });
            let reason = format!("symptom of the root-cause incident {} on {}", root.id, root.asset);
            let cancelled = self.store.cancel_pending_notifications(&d.id, &reason).await?;
            let delivered: HashSet<String> = self
                .store
                .notifications(Some(&d.id))
                .await?
                .into_iter()
                .filter(|n| n.status == "delivered" && n.event == NotificationEvent::Triggered.as_str())
                .map(|n| n.channel)
                .collect();
            d.status = crate::incident::IncidentStatus::Resolved;
            d.resolved_at = Some(now);
            d.resolved_by = Some(format!("telltale (symptom of {})", root.id));
            d.updated_at = now;
            d.explanation = format!(
                "{}\nGrouped under the root-cause incident {} on {} upstream ({chain}): {}",
                d.explanation, root.id, root.asset, root.title
            );
            events.push(IncidentEvent {
                incident_id: d.id.clone(),
                at: now,
                kind: "grouped".into(),
                actor: Some("telltale".into()),
                note: None,
                detail: Some(format!(
                    "{reason} ({chain}); {cancelled} pending notification(s) cancelled, {} already-sent page(s) resolved",
                    delivered.len()
                )),
            });
            if !delivered.is_empty() {
                let mut notes = self.queue(&mut d, NotificationEvent::Resolved, now, events);
                notes.retain(|(_, channel)| delivered.contains(channel));
                queued.extend(notes);
            }
            absorbed.push(d);
        }
        Ok((absorbed, queued))
    }

    /// A page that went out while root-cause grouping cancelled it (its incident became a
    /// symptom mid-send): recorded as delivered, and followed by a `resolved` notification on the
    /// same channel saying so, so that the page does not stay open. Runs under the incident lock,
    /// so it never races the grouping, which queues that notification itself for pages it sees
    /// delivered.
    async fn delivered_after_cancel(
        &self,
        entry: &OutboxEntry,
        now: DateTime<Utc>,
        attempts: u32,
        remote_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let _guard = self.incident_lock.lock().await;
        if !self.store.mark_delivered_after_cancel(&entry.id, now, attempts, remote_id).await? {
            return Ok(());
        }
        if entry.event != NotificationEvent::Triggered.as_str() {
            return Ok(());
        }
        let Some(mut incident) = self.store.incident(&entry.incident_id).await? else { return Ok(()) };
        if incident.status != crate::incident::IncidentStatus::Resolved {
            return Ok(());
        }
        let mut events = vec![IncidentEvent {
            incident_id: incident.id.clone(),
            at: now,
            kind: "notified".into(),
            actor: Some("telltale".into()),
            note: None,
            detail: Some(format!(
                "the page to `{}` went out while this incident was being grouped under its root cause; \
                 a resolved notification follows it",
                entry.channel
            )),
        }];
        let mut outbox = self.queue(&mut incident, NotificationEvent::Resolved, now, &mut events);
        outbox.retain(|(_, channel)| *channel == entry.channel);
        tracing::warn!(
            parent: crate::telemetry::spans::parent(),
            incident = incident.id,
            channel = entry.channel,
            "a page was delivered while its incident was grouped under a root cause; resolving it"
        );
        self.store.save_incidents(&[&incident], &events, &outbox).await?;
        self.outbox_ready.notify_one();
        Ok(())
    }

    /// A failed (or aborted) last run of the job writing the incident's asset goes into its
    /// explanation: the likely cause of a freshness or volume problem.
    fn note_failed_run(&self, incident: &mut Incident) {
        let Ok(asset) = incident.asset.parse::<crate::measure::AssetId>() else { return };
        let Some(run) = self.lineage.last_run(&asset) else { return };
        if !matches!(run.state, crate::catalog::RunState::Fail | crate::catalog::RunState::Abort) {
            return;
        }
        let state = if run.state == crate::catalog::RunState::Fail { "failed" } else { "was aborted" };
        let mut line = format!(
            "The job `{}` that writes {} {state} at {} (run {})",
            run.job,
            incident.asset,
            run.at.format("%Y-%m-%d %H:%M UTC"),
            run.run_id
        );
        if let Some(message) = &run.message {
            line.push_str(&format!(": {}", truncate(message, 300)));
        }
        if !incident.explanation.contains(&line) {
            incident.explanation = format!("{}\n{line}.", incident.explanation);
        }
    }

    fn observation(&self, o: &CheckOutcome, now: DateTime<Utc>) -> Observation {
        let check = self.check_for(&o.asset);
        let verdict = o.verdict.as_ref();
        let expected = verdict.and_then(|v| v.expected);
        // For freshness the data went bad when the lag crossed its threshold, not at detection.
        let threshold = expected
            .map(|e| e.high)
            .or_else(|| check.and_then(|c| c.freshness.as_ref()).and_then(|f| f.max_age).map(|m| m.as_secs_f64()));
        let first_bad_at = match (o.monitor.as_str(), o.value, threshold) {
            ("freshness", Some(lag), Some(limit)) if lag > limit => {
                Some(now - chrono::Duration::milliseconds(((lag - limit) * 1000.0) as i64))
            }
            _ => None,
        };
        let subject = o.subject.clone();
        let what = subject.as_deref().map(|s| format!(" {s}")).unwrap_or_default();
        let message = o.message.trim_start_matches("anomaly: ");
        Observation {
            asset: o.asset.to_string(),
            source: o.asset.source().to_string(),
            monitor: o.monitor.clone(),
            column: subject,
            bad: o.status == Status::Fail,
            at: now,
            first_bad_at,
            title: truncate(&format!("{} {}{what}: {message}", o.asset, o.monitor), 200),
            explanation: o.message.clone(),
            observed: o.value,
            expected_low: expected.map(|e| e.low),
            expected_high: expected.map(|e| e.high),
            score: verdict.map(|v| v.score).filter(|s| *s > 0.0),
            owner: check.and_then(|c| c.owner.clone()),
            tier: check.and_then(|c| c.tier),
            tags: check.map(|c| c.tags.clone()).unwrap_or_default(),
        }
    }

    /// A person's action on an incident: acknowledge, resolve, expected, false positive.
    pub async fn act_on_incident(
        &self,
        id: &str,
        action: Action,
        by: Option<&str>,
        note: Option<&str>,
    ) -> Result<Option<Incident>, IncidentActionError> {
        let _guard = self.incident_lock.lock().await;
        let now = self.clock.now();
        let Some(mut incident) = self.store.incident(id).await? else { return Ok(None) };
        let event = lifecycle::act(&mut incident, action, by, now)?;
        let mut events = vec![IncidentEvent {
            incident_id: incident.id.clone(),
            at: now,
            kind: action.as_str().into(),
            actor: by.map(String::from),
            note: note.map(String::from),
            detail: None,
        }];
        let outbox = self.queue(&mut incident, event, now, &mut events);
        self.store.save_incidents(&[&incident], &events, &outbox).await?;
        // Feed the verdict back into detection: expected changes re-baseline, real incidents
        // never train the model.
        if matches!(action, Action::Expected | Action::Resolve)
            && let Ok(asset) = incident.asset.parse::<crate::measure::AssetId>()
            && let Some(kind) = incident_metric(&incident)
        {
            let column = incident_column(&incident);
            let label = crate::store::LabelRecord {
                asset: asset.clone(),
                kind,
                column: column.clone(),
                starts_at: incident.first_bad_at,
                ends_at: incident.resolved_at.unwrap_or(now) + chrono::Duration::seconds(1),
                label: if action == Action::Expected { "expected".into() } else { "confirmed_incident".into() },
                note: note.map(String::from),
                created_by: by.map(String::from),
            };
            self.store.add_label(&label, now).await?;
            self.detectors.forget(&asset, kind, &column);
        }
        self.outbox_ready.notify_one();
        Ok(Some(incident))
    }

    /// Queues reminders for open, unacknowledged incidents whose severity asks for them.
    pub async fn remind(&self) -> Result<usize, StoreError> {
        let _guard = self.incident_lock.lock().await;
        let now = self.clock.now();
        let open = self
            .store
            .incidents(&crate::store::IncidentFilter {
                status: Some(crate::incident::IncidentStatus::Open),
                limit: 10_000,
                ..Default::default()
            })
            .await?;
        let mut queued = 0;
        for mut incident in open {
            if !lifecycle::reminder_due(&incident, &self.config.alerting.policy, now) {
                continue;
            }
            let mut events = Vec::new();
            let outbox = self.queue(&mut incident, NotificationEvent::Reminder, now, &mut events);
            queued += outbox.len();
            incident.last_notified_at = Some(now);
            self.store.save_incidents(&[&incident], &events, &outbox).await?;
        }
        if queued > 0 {
            self.outbox_ready.notify_one();
        }
        Ok(queued)
    }
}

/// The metric an incident's key names, for labels (`asset/column/amount.null_rate` → null_rate).
fn incident_metric(incident: &Incident) -> Option<crate::measure::MetricKind> {
    use crate::measure::MetricKind;
    match (incident.monitor.as_str(), incident.column.as_deref()) {
        ("freshness", _) => Some(MetricKind::FreshnessLag),
        ("volume", Some("rows_added")) => Some(MetricKind::RowsAdded),
        ("volume", _) => Some(MetricKind::RowCount),
        ("custom_sql", Some(_)) => Some(MetricKind::Custom),
        ("column", Some(subject)) => subject.rsplit_once('.').and_then(|(_, m)| m.parse().ok()),
        _ => None,
    }
}

fn incident_column(incident: &Incident) -> String {
    match (incident.monitor.as_str(), incident.column.as_deref()) {
        ("custom_sql", Some(name)) => name.to_string(),
        ("column", Some(subject)) => subject.rsplit_once('.').map(|(c, _)| c.to_string()).unwrap_or_default(),
        _ => String::new(),
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_string() } else { format!("{}…", s.chars().take(max - 1).collect::<String>()) }
}

#[derive(Debug, thiserror::Error)]
pub enum IncidentActionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Invalid(#[from] lifecycle::InvalidTransition),
}

/// A configured channel at run time.
pub struct Channel {
    pub sink: Arc<dyn AlertSink>,
    pub limiter: crate::alert::rate::RateLimiter,
}

/// The runtime objects of the configured channels.
pub fn build_channels(alerting: &crate::config::Alerting) -> HashMap<String, Channel> {
    let client = reqwest::Client::builder()
        .user_agent(concat!("telltale/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default();
    alerting
        .channels
        .iter()
        .map(|(name, config)| {
            let channel = Channel {
                sink: crate::alert::config::build(config, client.clone()),
                limiter: crate::alert::rate::RateLimiter::new(crate::alert::config::rate_limit(config)),
            };
            (name.clone(), channel)
        })
        .collect()
}

/// Delivers queued notifications until `shutdown`; pending ones survive in the store.
pub async fn run_dispatcher(agent: Arc<Agent>, channels: HashMap<String, Channel>, shutdown: CancellationToken) {
    let policy = crate::alert::retry::RetryPolicy::default();
    let mut workers: HashMap<String, mpsc::Sender<OutboxEntry>> = HashMap::new();
    let in_flight: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    // Ids whose outcome a worker has recorded. They leave `in_flight` only after the next outbox
    // read that started after the record, so a read taken before it cannot send them again.
    let settled: Arc<std::sync::Mutex<HashSet<String>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    for (name, channel) in channels {
        let (tx, mut rx) = mpsc::channel::<OutboxEntry>(1024);
        workers.insert(name.clone(), tx);
        let agent = Arc::clone(&agent);
        let settled = Arc::clone(&settled);
        let policy = policy.clone();
        let token = shutdown.clone();
        tasks.spawn(async move {
            loop {
                let entry = tokio::select! {
                    _ = token.cancelled() => break,
                    e = rx.recv() => match e { Some(e) => e, None => break },
                };
                deliver(&agent, &channel, &policy, &entry).await;
                settled.lock().unwrap_or_else(|e| e.into_inner()).insert(entry.id.clone());
                agent.outbox_ready.notify_one();
            }
        });
    }
    loop {
        let done = std::mem::take(&mut *settled.lock().unwrap_or_else(|e| e.into_inner()));
        let now = agent.clock.now();
        let due = crate::telemetry::metrics::timed_store("read_outbox", agent.store.due_notifications(now, 500)).await;
        in_flight.lock().unwrap_or_else(|e| e.into_inner()).retain(|id| !done.contains(id));
        match due {
            Ok(due) => {
                for entry in due {
                    let Some(worker) = workers.get(&entry.channel) else {
                        let _ = agent
                            .store
                            .mark_gave_up(
                                &entry.id,
                                entry.attempts,
                                &format!("channel `{}` is no longer configured", entry.channel),
                            )
                            .await;
                        continue;
                    };
                    if !in_flight.lock().unwrap_or_else(|e| e.into_inner()).insert(entry.id.clone()) {
                        continue;
                    }
                    if worker.try_send(entry.clone()).is_err() {
                        in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&entry.id);
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the outbox"),
        }
        let wait = match agent.store.next_notification_due().await {
            Ok(Some(next)) => (next - agent.clock.now()).to_std().unwrap_or(Duration::ZERO).min(Duration::from_secs(1)),
            _ => Duration::from_secs(1),
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = agent.outbox_ready.notified() => {}
            _ = tokio::time::sleep(agent.clock.real_duration(wait).max(Duration::from_millis(20))) => {}
        }
    }
    tasks.shutdown().await;
}

async fn deliver(agent: &Agent, channel: &Channel, policy: &crate::alert::retry::RetryPolicy, entry: &OutboxEntry) {
    let Some(notification) = &entry.notification else {
        let _ = agent.store.mark_gave_up(&entry.id, entry.attempts, "unreadable notification in the outbox").await;
        return;
    };
    channel.limiter.acquire().await;
    let attempts = entry.attempts + 1;
    let span = crate::telemetry::spans::delivery(
        channel.sink.name(),
        channel.sink.kind(),
        &entry.incident_id,
        &entry.event,
        attempts,
    );
    let started = std::time::Instant::now();
    let result = tracing::Instrument::instrument(channel.sink.send(notification), span.clone()).await;
    let now = agent.clock.now();
    let outcome = match &result {
        Ok(_) => "delivered",
        Err(error) if policy.next_delay(attempts, error, entry.created_at, now).is_some() => "retry",
        Err(_) => "gave_up",
    };
    crate::telemetry::spans::delivered(&span, channel.sink.name(), outcome, started);
    let saved = match result {
        Ok(delivery) => {
            tracing::info!(
                channel = channel.sink.name(),
                incident = entry.incident_id,
                event = entry.event,
                "notification delivered"
            );
            let remote_id = delivery.remote_id.as_deref();
            match agent.store.mark_delivered(&entry.id, now, attempts, remote_id).await {
                Ok(false) => agent.delivered_after_cancel(entry, now, attempts, remote_id).await,
                other => other.map(drop),
            }
        }
        Err(error) => match policy.next_delay(attempts, &error, entry.created_at, now) {
            Some(delay) => {
                tracing::warn!(channel = channel.sink.name(), attempt = attempts, error = %error, "delivery failed; retrying in {delay:?}");
                let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
                agent.store.mark_retry(&entry.id, attempts, next, &error.to_string()).await
            }
            None => {
                tracing::error!(channel = channel.sink.name(), attempt = attempts, error = %error, "delivery failed; giving up");
                agent.store.mark_gave_up(&entry.id, attempts, &error.to_string()).await
            }
        },
    };
    if let Err(e) = saved {
        tracing::error!(error = %e, "cannot record a delivery outcome; it will be retried");
    }
}
