//! Retention schedules and the sweeper.
//!
//! A schedule is a maximum age for the events of one environment or one purpose, written
//! `environment:demo=30d`, `purpose:advertising=90d` or, for a purpose, just `analytics=400d`
//! (units `d`, `h`, `m`, `s`), given with `--retention` (repeatable, or comma-separated in
//! `CONSENTRY_RETENTION`) and in a `--retention-file` (one per line, `#` comments). An event's
//! age is counted from when the collector received it (its own clock, never the sender's). Every
//! schedule that applies to an event may delete it, so the shortest one wins. The sweeper
//! deletes expired events, then expired exports, in batches (each its own write, so ingestion
//! goes on in between), and records every sweep in the audit log and the metrics.

use crate::audit::{NewAuditEntry, SYSTEM_ACTOR};
use crate::metrics::Metrics;
use crate::store::retention::Scope;
use crate::store::{Store, StoreError};
use serde::Serialize;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// Events deleted per write.
pub const SWEEP_BATCH: u32 = 500;

/// One schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// What it applies to.
    pub scope: Scope,
    /// The oldest an event may be, in milliseconds.
    pub max_age_ms: i64,
}

/// A schedule text that does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRule(pub String);

impl fmt::Display for BadRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a retention schedule: write purpose:NAME=AGE, environment:NAME=AGE or \
             NAME=AGE (a purpose), AGE as 400d, 12h, 30m or 10s",
            self.0
        )
    }
}

impl std::error::Error for BadRule {}

impl std::str::FromStr for Rule {
    type Err = BadRule;

    fn from_str(text: &str) -> Result<Rule, BadRule> {
        let bad = || BadRule(text.to_owned());
        let (target, age) = text.trim().split_once('=').ok_or_else(bad)?;
        let target = target.trim();
        let scope = match target.split_once(':') {
            Some(("environment", name)) if !name.is_empty() => Scope::Environment(name.to_owned()),
            Some(("purpose", name)) if consentry_core::purpose::is_valid_name(name) => {
                Scope::Purpose(name.to_owned())
            }
            None if consentry_core::purpose::is_valid_name(target) => {
                Scope::Purpose(target.to_owned())
            }
            _ => return Err(bad()),
        };
        let age = age.trim();
        let (number, unit) = age.split_at(age.len().saturating_sub(1));
        let n: i64 = number.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
        let unit_ms = match unit {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1000,
            _ => return Err(bad()),
        };
        Ok(Rule {
            scope,
            max_age_ms: n.checked_mul(unit_ms).ok_or_else(bad)?,
        })
    }
}

/// Every schedule, and how often to sweep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionConfig {
    /// The schedules (none: events are kept until erased).
    pub rules: Vec<Rule>,
    /// Time between background sweeps.
    pub sweep_interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            rules: Vec::new(),
            sweep_interval: Duration::from_secs(3600),
        }
    }
}

/// The schedules of a retention file: one per line, blank lines and `#` comments ignored.
pub fn read_file(path: &Path) -> Result<Vec<Rule>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| (i, line.split('#').next().unwrap_or_default().trim()))
        .filter(|(_, line)| !line.is_empty())
        .map(|(i, line)| {
            line.parse::<Rule>()
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// What one sweep deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Events past a schedule.
    pub events: u64,
    /// Exports past their 7 days (files removed).
    pub exports: u64,
}

/// Runs one sweep at `now_ms`: every schedule in batches, then expired exports; audited and
/// counted, also when it fails part-way (what its committed batches deleted is gone).
pub async fn sweep(
    store: &Store,
    metrics: &Metrics,
    rules: &[Rule],
    now_ms: i64,
) -> Result<Swept, StoreError> {
    let mut swept = Swept::default();
    let result = sweep_into(store, rules, now_ms, &mut swept).await;
    metrics
        .retention_deleted
        .with_label_values(&["events"])
        .inc_by(swept.events);
    metrics
        .retention_deleted
        .with_label_values(&["exports"])
        .inc_by(swept.exports);
    metrics.retention_sweeps.inc();
    let deleted = format!("events={} exports={}", swept.events, swept.exports);
    let outcome = match &result {
        Ok(()) => deleted,
        Err(e) => format!("failed after {deleted}: {e}"),
    };
    let recorded = store
        .audit(NewAuditEntry {
            at_ms: now_ms,
            actor: SYSTEM_ACTOR.to_owned(),
            role: SYSTEM_ACTOR.to_owned(),
            action: "retention.sweep".to_owned(),
            target: format!("schedules={}", rules.len()),
            outcome,
        })
        .await;
    result?;
    recorded?;
    Ok(swept)
}

/// The sweep's deletions, added to `swept` as each batch commits.
async fn sweep_into(
    store: &Store,
    rules: &[Rule],
    now_ms: i64,
    swept: &mut Swept,
) -> Result<(), StoreError> {
    for rule in rules {
        let cutoff = now_ms.saturating_sub(rule.max_age_ms);
        loop {
            let n = store
                .retention_step(rule.scope.clone(), cutoff, SWEEP_BATCH)
                .await?;
            swept.events += n;
            if n < u64::from(SWEEP_BATCH) {
                break;
            }
            // Lets other work reach the store thread between batches.
            tokio::task::yield_now().await;
        }
    }
    loop {
        let n = store.expire_exports(now_ms, SWEEP_BATCH).await? as u64;
        swept.exports += n;
        if n < u64::from(SWEEP_BATCH) {
            break;
        }
    }
    Ok(())
}

/// Sweeps every `sweep_interval` until shutdown begins.
pub async fn run(app: std::sync::Arc<crate::api::App>) {
    let mut stopping = app.stopping.clone();
    let retention = &app.rights.settings.retention;
    loop {
        tokio::select! {
            () = tokio::time::sleep(retention.sweep_interval) => {}
            _ = stopping.changed() => return,
        }
        if *stopping.borrow() {
            return;
        }
        let now = app.rights.clock.now_ms();
        if let Err(e) = sweep(&app.store, &app.metrics, &retention.rules, now).await {
            tracing::error!(error = %e, "retention sweep failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_parse_and_bad_ones_are_named() {
        let day = 86_400_000;
        for (text, scope, age) in [
            (
                "analytics=400d",
                Scope::Purpose("analytics".into()),
                400 * day,
            ),
            (
                "purpose:advertising=90d",
                Scope::Purpose("advertising".into()),
                90 * day,
            ),
            (
                "environment:staging=12h",
                Scope::Environment("staging".into()),
                12 * 3_600_000,
            ),
            (
                " analytics = 10s ",
                Scope::Purpose("analytics".into()),
                10_000,
            ),
        ] {
            assert_eq!(
                text.parse::<Rule>(),
                Ok(Rule {
                    scope,
                    max_age_ms: age
                }),
                "{text}"
            );
        }
        for text in [
            "analytics",
            "analytics=0d",
            "analytics=5w",
            "Ads=1d",
            "color:x=1d",
            "=1d",
        ] {
            assert!(text.parse::<Rule>().is_err(), "{text}");
        }
    }

    #[test]
    fn a_retention_file_has_one_schedule_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("retention.conf");
        std::fs::write(
            &path,
            "# schedules\nanalytics=400d\n\nadvertising=90d # ads\n",
        )
        .unwrap();
        assert_eq!(read_file(&path).unwrap().len(), 2);
        std::fs::write(&path, "analytics=400d\nnonsense\n").unwrap();
        assert!(read_file(&path).unwrap_err().contains("line 2"));
    }
}
