//! Cron expressions with robfig/cron v3 semantics, as Dapr parses them.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, TimeDelta, TimeZone};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed `schedule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Schedule {
    /// A cron expression (five or six fields, or a descriptor such as `@daily`).
    Cron(Box<Cron>),
    /// `@every <duration>`: a fixed delay of whole seconds, at least one.
    Every(Duration),
}

impl Schedule {
    /// Parse `expr` the way robfig/cron v3 does with `SecondOptional | Minute | Hour | Dom |
    /// Month | Dow | Descriptor`: five or six fields (the sixth, leading, one is seconds),
    /// `@yearly`, `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`, or
    /// `@every <Go duration>`.
    pub(crate) fn parse(expr: &str) -> Result<Self, String> {
        let expr = expr.trim();
        if expr.is_empty() {
            return Err("empty spec string".into());
        }
        if let Some(descriptor) = expr.strip_prefix('@') {
            return Self::parse_descriptor(descriptor);
        }
        let fields = expr.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(format!("expected 5 to 6 fields, found {fields}: {expr}"));
        }
        Self::parse_fields(expr)
    }

    fn parse_descriptor(descriptor: &str) -> Result<Self, String> {
        let mut words = descriptor.split_whitespace();
        let name = words.next().unwrap_or_default().to_ascii_lowercase();
        let rest: Vec<&str> = words.collect();
        if name == "every" {
            return match rest.as_slice() {
                [d] => Self::parse_every(d),
                _ => Err(format!("failed to parse duration @{descriptor}")),
            };
        }
        if !rest.is_empty() {
            return Err(format!("unrecognized descriptor: @{descriptor}"));
        }
        // Six-field forms, so seconds are explicit and fire at :00.
        let fields = match name.as_str() {
            "yearly" | "annually" => "0 0 0 1 1 *",
            "monthly" => "0 0 0 1 * *",
            "weekly" => "0 0 0 * * 0",
            "daily" | "midnight" => "0 0 0 * * *",
            "hourly" => "0 0 * * * *",
            _ => return Err(format!("unrecognized descriptor: @{descriptor}")),
        };
        Self::parse_fields(fields)
    }

    fn parse_every(text: &str) -> Result<Self, String> {
        // Go's time.ParseDuration wants a unit on anything but "0"; parse_duration would read a
        // bare number as seconds, which robfig refuses.
        if text != "0" && text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "failed to parse duration @every {text}: missing unit"
            ));
        }
        let d = bindery_core::parse_duration(text, Duration::from_secs(1))
            .map_err(|e| format!("failed to parse duration @every {text}: {e}"))?;
        // robfig rounds the delay down to whole seconds, with one second at least.
        let secs = d.as_secs().max(1);
        Ok(Schedule::Every(Duration::from_secs(secs)))
    }

    fn parse_fields(fields: &str) -> Result<Self, String> {
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            // robfig reads `5/15` as "from 5 to the end, every 15".
            .sloppy_ranges(true)
            .build();
        parser
            .parse(fields)
            .map(|c| Schedule::Cron(Box::new(c)))
            .map_err(|e| e.to_string())
    }

    /// The first tick strictly after `after`, or `None` when the expression never fires again
    /// (e.g. `0 0 30 2 *`).
    pub(crate) fn next_after<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        match self {
            Schedule::Cron(cron) => cron.find_next_occurrence(after, false).ok(),
            Schedule::Every(delay) => {
                let delay = TimeDelta::from_std(*delay).ok()?;
                after.clone().trunc_subsecs(0).checked_add_signed(delay)
            }
        }
    }

    /// The tick to wait for next. `last` is the tick fired before (if any), `now` the current
    /// time. Ticks that passed while the previous delivery was running are skipped, not queued:
    /// the result is always after `now`. `@every` keeps its cadence from the first tick.
    pub(crate) fn next_tick<Tz: TimeZone>(
        &self,
        last: Option<&DateTime<Tz>>,
        now: &DateTime<Tz>,
    ) -> Option<DateTime<Tz>> {
        match (self, last) {
            (Schedule::Every(delay), Some(last)) => {
                let step = TimeDelta::from_std(*delay).ok()?;
                let mut next = last.clone().checked_add_signed(step)?;
                if next <= *now {
                    // Jump over every missed tick at once.
                    let behind = now.clone().signed_duration_since(next.clone());
                    let step_ns = step.num_nanoseconds()?.max(1);
                    let skipped = behind.num_nanoseconds()? / step_ns + 1;
                    let skip = TimeDelta::try_seconds(step.num_seconds().checked_mul(skipped)?)?;
                    next = next.checked_add_signed(skip)?;
                }
                Some(next)
            }
            (Schedule::Every(_), None) => self.next_after(now),
            (Schedule::Cron(_), last) => {
                // A tick fired early by a coarse timer must not fire twice: search after
                // whichever is later.
                let base = match last {
                    Some(l) if *l > *now => l.clone(),
                    _ => now.clone(),
                };
                self.next_after(&base)
            }
        }
    }
}

/// Go's `time.Time.String()` for a UTC time: `2020-09-26 17:57:14.123456789 +0000 UTC`, with
/// trailing zeros of the fraction dropped (and the dot too when it is zero).
pub(crate) fn go_time_string_utc(t: &DateTime<chrono::Utc>) -> String {
    use chrono::Timelike;
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    // A leap second is stored as nanos >= 1e9; Go has no such thing, fold it in.
    let nanos = t.nanosecond() % 1_000_000_000;
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// The name of the process's local time zone as Go's `time.Local.String()` gives it: `Local`
/// when `TZ` is unset (the zone comes from `/etc/localtime`), `UTC` when it is empty or `UTC`,
/// otherwise the zone named by `TZ` (without a leading `:`).
pub(crate) fn local_zone_name(tz: Option<&str>) -> String {
    match tz {
        None => "Local".to_owned(),
        Some(tz) => {
            let tz = tz.strip_prefix(':').unwrap_or(tz);
            match tz {
                "" | "UTC" => "UTC".to_owned(),
                "/etc/localtime" => "Local".to_owned(),
                other => other.to_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests;
