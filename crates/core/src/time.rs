//! Go's time formats, which Dapr's response metadata uses: `time.RFC3339Nano` and
//! `time.Duration.String()`, and the civil calendar under them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `2006-01-02T15:04:05.999999999Z` in UTC, trailing zeros of the fraction dropped (Go's
/// `RFC3339Nano`).
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::new(1_600_000_000, 120_000_000);
/// assert_eq!(bindery_core::time::rfc3339_nano(t), "2020-09-13T12:26:40.12Z");
/// ```
pub fn rfc3339_nano(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let of_day = secs.rem_euclid(86_400);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60
    );
    let nanos = since.subsec_nanos();
    if nanos != 0 {
        let digits = format!("{nanos:09}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Days since 1970-01-01 → (year, month, day), for any `i64` (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Go's `Duration.String()`: `0s`, `850ns`, `294µs`, `1.2ms`, `1.5s`, `2m3.25s`, `1h0m0s`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(bindery_core::time::go_duration(Duration::from_micros(1_200)), "1.2ms");
/// ```
pub fn go_duration(d: Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".into();
    }
    if n < 1_000 {
        return format!("{n}ns");
    }
    if n < 1_000_000 {
        return format!("{}µs", frac(n, 3));
    }
    if n < 1_000_000_000 {
        return format!("{}ms", frac(n, 6));
    }
    let secs = n / 1_000_000_000;
    let sub = n % 1_000_000_000;
    let mut s = String::new();
    let (h, m, sec) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        s.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        s.push_str(&format!("{m}m"));
    }
    s.push_str(&frac(u128::from(sec as u64) * 1_000_000_000 + sub, 9));
    s.push('s');
    s
}

/// `v / 10^prec` with the fraction's trailing zeros (and a bare point) dropped.
fn frac(v: u128, prec: u32) -> String {
    let unit = 10u128.pow(prec);
    let whole = v / unit;
    let f = v % unit;
    if f == 0 {
        return whole.to_string();
    }
    let digits = format!("{f:0width$}", width = prec as usize);
    format!("{whole}.{}", digits.trim_end_matches('0'))
}
