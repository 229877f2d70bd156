//! `bindings.cron`: an input binding that fires an event on a schedule.
//!
//! Component metadata:
//!
//! | name | | |
//! |---|---|---|
//! | `schedule` | required | a cron expression: five fields (`*/5 * * * *`), six with leading seconds (`*/15 * * * * *`), a descriptor (`@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`), or `@every <Go duration>` (`@every 15s`, `@every 1h30m`) |
//!
//! The schedule is read in the process's local time zone (`TZ`, else `/etc/localtime`), as Dapr
//! does. Each tick delivers an event with empty data and the metadata
//!
//! * `timeZone`: the zone's name as Go prints it (`Local` when it comes from `/etc/localtime`,
//!   the value of `TZ` otherwise);
//! * `readTimeUTC`: the time of the tick in Go's `time.Time.String()` form, e.g.
//!   `2020-09-26 17:57:14.123456789 +0000 UTC`.
//!
//! Differences from Dapr, all deliberate:
//!
//! * Ticks are delivered one at a time and each delivery is awaited (that is the backpressure).
//!   Ticks that fall due while a delivery is still running are skipped, not queued; `@every`
//!   keeps its original cadence.
//! * A failed delivery is logged and the schedule goes on; there is nothing to redeliver.
//! * robfig's `TZ=`/`CRON_TZ=` prefix inside `schedule` is not supported (it needs a time zone
//!   database); it is refused as an invalid schedule rather than silently ignored.
//! * The expression is parsed by `croner`, which also accepts a few Quartz extensions (`L`,
//!   `W`, `#`) that robfig refuses.
//!
//! ```
//! let mut registry = bindery_core::Registry::new();
//! bindery_binding_cron::register(&mut registry);
//! let factory = registry.get("bindings.cron").unwrap();
//! let md = bindery_core::Metadata::from_pairs([("schedule", "@every 15s")]);
//! assert!(factory.validate(&md).is_ok());
//! let bad = bindery_core::Metadata::from_pairs([("schedule", "61 * * * *")]);
//! assert!(factory.validate(&bad).is_err());
//! ```

mod schedule;

use std::sync::Arc;

use bindery_core::{
    BindingError, BindingFactory, BindingHealth, BindingSpec, CancellationToken, ComponentContext,
    Direction, EventSink, InputBinding, InputEvent, Metadata, MetadataField, Outcome, Registry,
    async_trait,
};
use chrono::{DateTime, Local, Utc};
use tracing::{debug, warn};

use crate::schedule::{Schedule, go_time_string_utc, local_zone_name};

/// Event metadata key holding the schedule's time zone name.
pub const TIME_ZONE_KEY: &str = "timeZone";
/// Event metadata key holding the tick time in Go's `time.Time.String()` form.
pub const READ_TIME_UTC_KEY: &str = "readTimeUTC";

static METADATA: &[MetadataField] = &[MetadataField::required(
    "schedule",
    "cron expression (5 or 6 fields), @descriptor, or @every <duration>",
)];

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.cron",
    aliases: &[],
    direction: Direction::Input,
    operations: &[],
    metadata: METADATA,
    summary: "Fires an event with empty data on a cron schedule",
};

/// Add `bindings.cron` to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(CronFactory);
}

/// Builds `bindings.cron` input bindings.
#[derive(Debug, Clone, Copy, Default)]
pub struct CronFactory;

/// The checked component configuration.
struct CronConfig {
    expression: String,
    schedule: Schedule,
}

impl CronConfig {
    fn parse(md: &Metadata) -> Result<Self, Vec<BindingError>> {
        let r = md.reader();
        let expression = r.required("schedule", "schedule not set");
        let schedule = if expression.is_empty() {
            None
        } else {
            match Schedule::parse(&expression) {
                Ok(s) => Some(s),
                Err(e) => {
                    r.error(
                        "schedule",
                        format!("invalid schedule format '{expression}': {e}"),
                    );
                    None
                }
            }
        };
        r.finish()?;
        match schedule {
            Some(schedule) => Ok(CronConfig {
                expression,
                schedule,
            }),
            // finish() reported the missing value already; this keeps the types honest.
            None => Err(vec![BindingError::config("schedule", "schedule not set")]),
        }
    }
}

/// Fold a list of configuration problems into one error for the build phase.
fn join_errors(mut errors: Vec<BindingError>) -> BindingError {
    if errors.len() == 1
        && let Some(e) = errors.pop()
    {
        return e;
    }
    let field = errors.first().and_then(|e| e.field()).unwrap_or("schedule");
    let message = errors
        .iter()
        .map(|e| e.message().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    BindingError::config(field.to_owned(), message)
}

#[async_trait]
impl BindingFactory for CronFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        CronConfig::parse(metadata).map(|_| ())
    }

    async fn build_input(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn InputBinding>, BindingError> {
        let config = CronConfig::parse(&ctx.metadata).map_err(join_errors)?;
        Ok(Box::new(CronBinding {
            name: ctx.name.clone(),
            config: Arc::new(config),
            health: ctx.health.clone(),
            closed: CancellationToken::new(),
        }))
    }
}

/// A running `bindings.cron` component.
struct CronBinding {
    name: String,
    config: Arc<CronConfig>,
    health: BindingHealth,
    closed: CancellationToken,
}

#[async_trait]
impl InputBinding for CronBinding {
    async fn read(&self, sink: EventSink, shutdown: CancellationToken) -> Result<(), BindingError> {
        if self.closed.is_cancelled() {
            return Err(BindingError::closed());
        }
        tokio::select! {
            res = run_schedule(&self.name, &self.config, &self.health, &sink, &shutdown) => res,
            // `close` is meant for after reading stopped; should it come first, stop anyway.
            _ = self.closed.cancelled() => Ok(()),
        }
    }

    async fn close(&self) -> Result<(), BindingError> {
        self.closed.cancel();
        Ok(())
    }
}

/// Fire ticks until `stop` is cancelled or the runtime says it is draining.
async fn run_schedule(
    name: &str,
    config: &CronConfig,
    health: &BindingHealth,
    sink: &EventSink,
    stop: &CancellationToken,
) -> Result<(), BindingError> {
    let zone = local_zone_name(std::env::var("TZ").ok().as_deref());
    health.connected();
    debug!(binding = %name, schedule = %config.expression, time_zone = %zone, "cron schedule started");
    let mut last: Option<DateTime<Local>> = None;
    loop {
        let now = Local::now();
        let Some(next) = config.schedule.next_tick(last.as_ref(), &now) else {
            warn!(binding = %name, schedule = %config.expression, "schedule has no future tick; waiting for shutdown");
            stop.cancelled().await;
            return Ok(());
        };
        if !sleep_until_wall(&next, stop).await {
            return Ok(());
        }
        last = Some(next);
        health.event_received();
        let event = InputEvent::default()
            .with_metadata(TIME_ZONE_KEY, zone.clone())
            .with_metadata(READ_TIME_UTC_KEY, go_time_string_utc(&Utc::now()));
        // An in-flight delivery is finished even when shutdown arrives meanwhile: the runtime
        // drains in-flight events, and its handler answers `Closed` once draining.
        match sink.deliver(event).await {
            Outcome::Closed => {
                debug!(binding = %name, "runtime is draining; cron schedule stops");
                return Ok(());
            }
            Outcome::Failed { reason, .. } => {
                warn!(binding = %name, error = %reason, "cron event was not accepted; the schedule goes on");
            }
            Outcome::Accepted | Outcome::Dropped | Outcome::DeadLettered => {}
        }
        if stop.is_cancelled() {
            return Ok(());
        }
    }
}

/// Sleep until the wall clock reaches `when`. Returns `false` when `stop` fired first.
async fn sleep_until_wall(when: &DateTime<Local>, stop: &CancellationToken) -> bool {
    loop {
        let remaining = when.signed_duration_since(Local::now());
        let Ok(wait) = remaining.to_std() else {
            // Already due (to_std refuses negative spans).
            return !stop.is_cancelled();
        };
        if wait.is_zero() {
            return !stop.is_cancelled();
        }
        tokio::select! {
            _ = stop.cancelled() => return false,
            // The monotonic timer and the wall clock can disagree by a little; loop re-checks.
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests;
