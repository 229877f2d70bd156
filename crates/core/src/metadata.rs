use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::BindingError;

/// Component metadata: the `spec.metadata` items of a component, secrets already resolved.
///
/// Names are matched case-insensitively, as Dapr's metadata decoder does. The original spelling
/// is kept for messages and for bindings that pass metadata through.
///
/// ```
/// use bindery_core::Metadata;
/// let md = Metadata::from_pairs([("redisHost", "localhost:6379"), ("enableTLS", "yes")]);
/// assert_eq!(md.get("REDISHOST"), Some("localhost:6379"));
/// let r = md.reader();
/// assert!(r.bool("enableTLS", false));
/// assert!(r.finish().is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    // lower-cased name -> (name as written, value)
    items: BTreeMap<String, (String, String)>,
}

impl Metadata {
    /// Empty metadata.
    pub fn new() -> Self {
        Self::default()
    }

    /// Build from `(name, value)` pairs; a later duplicate replaces an earlier one.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut md = Metadata::new();
        for (k, v) in pairs {
            md.insert(k, v);
        }
        md
    }

    /// Set `name` to `value`.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.items
            .insert(name.to_ascii_lowercase(), (name, value.into()));
    }

    /// The value of `name` (any case), even when empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.items
            .get(&name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` (any case) is present.
    pub fn contains(&self, name: &str) -> bool {
        self.items.contains_key(&name.to_ascii_lowercase())
    }

    /// Iterate `(name as written, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.items.values().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no items.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// A reader that decodes typed values and collects every problem it meets.
    pub fn reader(&self) -> MetadataReader<'_> {
        MetadataReader {
            md: self,
            errors: RefCell::new(Vec::new()),
        }
    }
}

/// Decodes typed values out of [`Metadata`] with Dapr's rules, collecting every problem so that
/// all of them can be reported together. Each accessor returns a usable default on error, so
/// parsing goes on; [`MetadataReader::finish`] tells whether anything was wrong.
#[derive(Debug)]
pub struct MetadataReader<'a> {
    md: &'a Metadata,
    errors: RefCell<Vec<BindingError>>,
}

impl MetadataReader<'_> {
    fn record(&self, err: BindingError) {
        self.errors.borrow_mut().push(err);
    }

    /// Record a problem found by the binding's own checks.
    pub fn error(&self, field: &str, message: impl Into<String>) {
        self.record(BindingError::config(field, message));
    }

    /// The first of `names` (aliases, any case) that is present and not blank.
    pub fn string_any(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|n| {
            self.md
                .get(n)
                .filter(|v| !v.trim().is_empty())
                .map(str::to_owned)
        })
    }

    /// `name` when present and not blank.
    pub fn string(&self, name: &str) -> Option<String> {
        self.string_any(&[name])
    }

    /// `name`, or `default` when absent or blank.
    pub fn string_or(&self, name: &str, default: &str) -> String {
        self.string(name).unwrap_or_else(|| default.to_owned())
    }

    /// A required value; records `message` when absent or blank.
    pub fn required(&self, name: &str, message: &str) -> String {
        self.required_any(&[name], message)
    }

    /// A required value under any of `names`; records `message` against the first name.
    pub fn required_any(&self, names: &[&str], message: &str) -> String {
        match self.string_any(names) {
            Some(v) => v,
            None => {
                self.error(names.first().copied().unwrap_or(""), message);
                String::new()
            }
        }
    }

    /// A truthy boolean (`y`, `yes`, `true`, `t`, `on`, `1` and their negatives).
    pub fn bool(&self, name: &str, default: bool) -> bool {
        self.opt_bool(name).unwrap_or(default)
    }

    /// A truthy boolean when present.
    pub fn opt_bool(&self, name: &str) -> Option<bool> {
        let v = self.string(name)?;
        match parse_truthy(&v) {
            Some(b) => Some(b),
            None => {
                self.error(
                    name,
                    format!("invalid value for {name}: {v:?} is not a boolean"),
                );
                None
            }
        }
    }

    /// A duration in Go syntax (`1h30m`, `300ms`) or a plain integer of seconds.
    pub fn duration(&self, name: &str, default: Duration) -> Duration {
        self.opt_duration_any(&[name]).unwrap_or(default)
    }

    /// A duration under any of `names`, when present.
    pub fn opt_duration_any(&self, names: &[&str]) -> Option<Duration> {
        let name = names.iter().find(|n| self.string(n).is_some()).copied()?;
        let v = self.string(name)?;
        match parse_duration(&v, Duration::from_secs(1)) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(name, format!("invalid value for {name}: {e}"));
                None
            }
        }
    }

    /// A duration where a plain integer counts `unit`s (Dapr uses milliseconds for some fields).
    pub fn duration_with_unit(&self, name: &str, unit: Duration, default: Duration) -> Duration {
        let Some(v) = self.string(name) else {
            return default;
        };
        parse_duration(&v, unit).unwrap_or_else(|e| {
            self.error(name, format!("invalid value for {name}: {e}"));
            default
        })
    }

    /// An integer of type `T`.
    pub fn int<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.opt_int(name).unwrap_or(default)
    }

    /// An integer of type `T` when present.
    pub fn opt_int<T: std::str::FromStr>(&self, name: &str) -> Option<T> {
        let v = self.string(name)?;
        match v.trim().parse::<T>() {
            Ok(n) => Some(n),
            Err(_) => {
                self.error(
                    name,
                    format!(
                        "invalid value for {name}: {v:?} is not an integer in range for {}",
                        std::any::type_name::<T>()
                    ),
                );
                None
            }
        }
    }

    /// A byte size as a quantity (`4Mi`, `100Ki`, `1G`, `2048`).
    pub fn quantity(&self, name: &str, default: u64) -> u64 {
        let Some(v) = self.string(name) else {
            return default;
        };
        parse_quantity(&v).unwrap_or_else(|e| {
            self.error(name, format!("invalid value for {name}: {e}"));
            default
        })
    }

    /// The underlying metadata.
    pub fn metadata(&self) -> &Metadata {
        self.md
    }

    /// Every problem recorded, or `Ok` when there was none.
    pub fn finish(self) -> Result<(), Vec<BindingError>> {
        let errors = self.errors.into_inner();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Dapr's truthy booleans: `y`, `yes`, `true`, `t`, `on`, `1` and `n`, `no`, `false`, `f`,
/// `off`, `0`, any case.
///
/// ```
/// assert_eq!(bindery_core::parse_truthy("ON"), Some(true));
/// assert_eq!(bindery_core::parse_truthy("0"), Some(false));
/// assert_eq!(bindery_core::parse_truthy("maybe"), None);
/// ```
pub fn parse_truthy(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" | "true" | "t" | "on" | "1" => Some(true),
        "n" | "no" | "false" | "f" | "off" | "0" => Some(false),
        _ => None,
    }
}

/// Parse a Go duration (`1h30m`, `1.5s`, `300ms`, `10us`, `0`), or a plain non-negative integer
/// counting `unit`s. Negative durations are refused.
///
/// ```
/// use std::time::Duration;
/// use bindery_core::parse_duration;
/// let s = Duration::from_secs(1);
/// assert_eq!(parse_duration("1h30m", s).unwrap(), Duration::from_secs(5400));
/// assert_eq!(parse_duration("1.5s", s).unwrap(), Duration::from_millis(1500));
/// assert_eq!(parse_duration("15", s).unwrap(), Duration::from_secs(15));
/// assert_eq!(parse_duration("15", Duration::from_millis(1)).unwrap(), Duration::from_millis(15));
/// assert!(parse_duration("5 parsecs", s).is_err());
/// ```
pub fn parse_duration(value: &str, unit: Duration) -> Result<Duration, String> {
    let s = value.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(n) = s.parse::<u64>() {
        return unit
            .checked_mul(u32::try_from(n).map_err(|_| format!("duration {s:?} is too large"))?)
            .ok_or_else(|| format!("duration {s:?} is too large"));
    }
    let body = s.strip_prefix('+').unwrap_or(s);
    if body.starts_with('-') {
        return Err(format!("duration {s:?} is negative"));
    }
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    let bad = || format!("{s:?} is not a duration (use e.g. 5s, 300ms, 1h30m)");
    let mut total_ns: f64 = 0.0;
    let mut rest = body;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total_ns += number * scale;
        rest = &rest[unit_len..];
    }
    if !total_ns.is_finite() || total_ns > u64::MAX as f64 {
        return Err(format!("duration {s:?} is too large"));
    }
    Ok(Duration::from_nanos(total_ns.round() as u64))
}

/// Parse a Kubernetes-style quantity of bytes: `4Mi`, `100Ki`, `1Gi`, `4M`, `1.5k`, `2048`.
///
/// ```
/// use bindery_core::parse_quantity;
/// assert_eq!(parse_quantity("4Mi").unwrap(), 4 * 1024 * 1024);
/// assert_eq!(parse_quantity("1k").unwrap(), 1000);
/// assert_eq!(parse_quantity("2048").unwrap(), 2048);
/// assert!(parse_quantity("4 lbs").is_err());
/// ```
pub fn parse_quantity(value: &str) -> Result<u64, String> {
    let s = value.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let bad = || format!("{s:?} is not a size (use e.g. 4Mi, 512Ki, 1048576)");
    if num.is_empty() {
        return Err(bad());
    }
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        _ => return Err(bad()),
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes > u64::MAX as f64 {
        return Err(format!("size {s:?} is too large"));
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_collects_every_problem() {
        let md = Metadata::from_pairs([("a", "notbool"), ("b", "xyz"), ("c", "1q")]);
        let r = md.reader();
        assert!(!r.bool("a", false));
        assert_eq!(
            r.duration("b", Duration::from_secs(3)),
            Duration::from_secs(3)
        );
        assert_eq!(r.int::<u32>("c", 7), 7);
        let _ = r.required("missing", "missing is required");
        let errs = r.finish().unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field().unwrap().to_owned()).collect();
        assert_eq!(fields, ["a", "b", "c", "missing"]);
    }

    #[test]
    fn blank_values_count_as_absent() {
        let md = Metadata::from_pairs([("x", "  ")]);
        let r = md.reader();
        assert_eq!(r.string("x"), None);
        assert_eq!(r.string_or("x", "d"), "d");
    }

    #[test]
    fn aliases_take_the_first_present() {
        let md = Metadata::from_pairs([("storageAccount", "acct")]);
        let r = md.reader();
        assert_eq!(
            r.string_any(&["accountName", "storageAccount"]).as_deref(),
            Some("acct")
        );
    }

    #[test]
    fn durations_follow_go() {
        let s = Duration::from_secs(1);
        assert_eq!(
            parse_duration("2h45m30.5s", s).unwrap(),
            Duration::from_millis(9_930_500)
        );
        assert_eq!(
            parse_duration("10µs", s).unwrap(),
            Duration::from_micros(10)
        );
        assert!(parse_duration("-5s", s).is_err());
        assert!(parse_duration("5", s).is_ok());
        assert!(parse_duration("s", s).is_err());
        assert!(parse_duration("1x", s).is_err());
        assert!(parse_duration("99999999999999999999h", s).is_err());
    }
}
