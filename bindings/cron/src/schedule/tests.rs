use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc, Weekday};

use super::*;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, ms: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap() + chrono::TimeDelta::milliseconds(ms.into())
}

fn next(expr: &str, after: DateTime<Utc>) -> DateTime<Utc> {
    Schedule::parse(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .next_after(&after)
        .unwrap_or_else(|| panic!("{expr} has no next tick"))
}

#[test]
fn five_fields_have_minute_resolution() {
    let t = at(2024, 5, 10, 12, 3, 10, 0);
    assert_eq!(next("*/5 * * * *", t), at(2024, 5, 10, 12, 5, 0, 0));
    assert_eq!(next("0 * * * *", t), at(2024, 5, 10, 13, 0, 0, 0));
    assert_eq!(next("30 2 * * *", t), at(2024, 5, 11, 2, 30, 0, 0));
}

#[test]
fn six_fields_lead_with_seconds() {
    let t = at(2024, 5, 10, 12, 0, 7, 500);
    assert_eq!(next("*/15 * * * * *", t), at(2024, 5, 10, 12, 0, 15, 0));
    assert_eq!(next("15 * * * * *", t), at(2024, 5, 10, 12, 0, 15, 0));
    assert_eq!(next("0 30 * * * *", t), at(2024, 5, 10, 12, 30, 0, 0));
    // robfig's "N/step": from N to the end of the range.
    assert_eq!(next("5/15 * * * * *", t), at(2024, 5, 10, 12, 0, 20, 0));
}

#[test]
fn names_and_question_marks_are_understood() {
    // 2024-05-10 is a Friday.
    let t = at(2024, 5, 10, 12, 0, 0, 0);
    let mon = next("0 0 * * MON", t);
    assert_eq!(mon.weekday(), Weekday::Mon);
    assert_eq!(mon, at(2024, 5, 13, 0, 0, 0, 0));
    assert_eq!(next("0 0 1 JAN ?", t), at(2025, 1, 1, 0, 0, 0, 0));
    assert_eq!(next("0 0 ? * 7", t).weekday(), Weekday::Sun);
}

#[test]
fn day_of_month_and_day_of_week_are_ored_when_both_set() {
    // The 13th of the month or any Friday; from Sat 2024-05-11 the 13th (Monday) comes first.
    let t = at(2024, 5, 11, 0, 0, 0, 0);
    assert_eq!(next("0 0 13 * 5", t), at(2024, 5, 13, 0, 0, 0, 0));
    let t = at(2024, 5, 14, 0, 0, 0, 0);
    assert_eq!(next("0 0 13 * 5", t), at(2024, 5, 17, 0, 0, 0, 0));
}

#[test]
fn descriptors_match_robfig() {
    let t = at(2024, 5, 10, 12, 30, 0, 0);
    assert_eq!(next("@hourly", t), at(2024, 5, 10, 13, 0, 0, 0));
    assert_eq!(next("@daily", t), at(2024, 5, 11, 0, 0, 0, 0));
    assert_eq!(next("@midnight", t), at(2024, 5, 11, 0, 0, 0, 0));
    let weekly = next("@weekly", t);
    assert_eq!(weekly, at(2024, 5, 12, 0, 0, 0, 0));
    assert_eq!(weekly.weekday(), Weekday::Sun);
    assert_eq!(next("@monthly", t), at(2024, 6, 1, 0, 0, 0, 0));
    assert_eq!(next("@yearly", t), at(2025, 1, 1, 0, 0, 0, 0));
    assert_eq!(next("@annually", t), at(2025, 1, 1, 0, 0, 0, 0));
    assert_eq!(next("@DAILY", t), at(2024, 5, 11, 0, 0, 0, 0));
}

#[test]
fn every_takes_go_durations_in_whole_seconds() {
    let parse = |s: &str| Schedule::parse(s).unwrap();
    assert_eq!(
        parse("@every 15s"),
        Schedule::Every(Duration::from_secs(15))
    );
    assert_eq!(
        parse("@every 1h30m"),
        Schedule::Every(Duration::from_secs(5400))
    );
    assert_eq!(
        parse("@every 2m30.9s"),
        Schedule::Every(Duration::from_secs(150))
    );
    // Below a second rounds up to one, as robfig does.
    assert_eq!(
        parse("@every 500ms"),
        Schedule::Every(Duration::from_secs(1))
    );
    assert_eq!(parse("@every 0"), Schedule::Every(Duration::from_secs(1)));
    let t = at(2024, 5, 10, 12, 0, 0, 700);
    assert_eq!(next("@every 1h30m", t), at(2024, 5, 10, 13, 30, 0, 0));
    assert_eq!(next("@every 1s", t), at(2024, 5, 10, 12, 0, 1, 0));
}

#[test]
fn invalid_expressions_are_refused() {
    for bad in [
        "",
        "   ",
        "* * * *",
        "* * * * * * *",
        "61 * * * *",
        "* 25 * * *",
        "* * 32 * *",
        "* * * 13 *",
        "* * * * 8",
        "a b c d e",
        "@fortnightly",
        "@daily extra",
        "@every",
        "@every 15",
        "@every fifteen",
        "@every -5s",
        "@every 1s 2s",
        "TZ=UTC * * * * *",
        "CRON_TZ=Europe/Berlin 0 0 * * *",
    ] {
        assert!(Schedule::parse(bad).is_err(), "{bad:?} should be refused");
    }
    let e = Schedule::parse("* * * *").unwrap_err();
    assert_eq!(e, "expected 5 to 6 fields, found 4: * * * *");
    let e = Schedule::parse("@fortnightly").unwrap_err();
    assert_eq!(e, "unrecognized descriptor: @fortnightly");
}

#[test]
fn an_impossible_date_never_fires() {
    let s = Schedule::parse("0 0 30 2 *").unwrap();
    assert_eq!(s.next_after(&at(2024, 1, 1, 0, 0, 0, 0)), None);
}

#[test]
fn every_keeps_its_cadence_and_skips_missed_ticks() {
    let s = Schedule::parse("@every 1s").unwrap();
    let last = at(2024, 5, 10, 10, 0, 0, 0);
    // Delivery was quick.
    assert_eq!(
        s.next_tick(Some(&last), &at(2024, 5, 10, 10, 0, 0, 200)),
        Some(at(2024, 5, 10, 10, 0, 1, 0))
    );
    // Delivery took 5.5 s: ticks at :01..:05 are skipped, not queued.
    assert_eq!(
        s.next_tick(Some(&last), &at(2024, 5, 10, 10, 0, 5, 500)),
        Some(at(2024, 5, 10, 10, 0, 6, 0))
    );
    let s = Schedule::parse("@every 2s").unwrap();
    // Exactly on a tick: that tick is past, the next one is 2 s away.
    assert_eq!(
        s.next_tick(Some(&last), &at(2024, 5, 10, 10, 0, 4, 0)),
        Some(at(2024, 5, 10, 10, 0, 6, 0))
    );
    // First tick: from now.
    assert_eq!(
        s.next_tick(None, &at(2024, 5, 10, 10, 0, 4, 300)),
        Some(at(2024, 5, 10, 10, 0, 6, 0))
    );
}

#[test]
fn cron_never_fires_a_tick_twice_nor_queues_missed_ones() {
    let s = Schedule::parse("* * * * *").unwrap();
    let last = at(2024, 5, 10, 12, 0, 0, 0);
    // The timer woke a hair early: the tick just fired must not come again.
    assert_eq!(
        s.next_tick(Some(&last), &at(2024, 5, 10, 11, 59, 59, 999)),
        Some(at(2024, 5, 10, 12, 1, 0, 0))
    );
    // A slow delivery: 12:01..12:03 are skipped.
    assert_eq!(
        s.next_tick(Some(&last), &at(2024, 5, 10, 12, 3, 30, 0)),
        Some(at(2024, 5, 10, 12, 4, 0, 0))
    );
}

#[test]
fn read_time_has_go_shape() {
    let t = Utc.with_ymd_and_hms(2020, 9, 26, 17, 57, 14).unwrap()
        + chrono::TimeDelta::nanoseconds(123_456_789);
    assert_eq!(
        go_time_string_utc(&t),
        "2020-09-26 17:57:14.123456789 +0000 UTC"
    );
    let t = Utc.with_ymd_and_hms(2020, 9, 26, 17, 57, 14).unwrap()
        + chrono::TimeDelta::milliseconds(120);
    assert_eq!(go_time_string_utc(&t), "2020-09-26 17:57:14.12 +0000 UTC");
    let t = Utc.with_ymd_and_hms(2020, 1, 2, 3, 4, 5).unwrap();
    assert_eq!(go_time_string_utc(&t), "2020-01-02 03:04:05 +0000 UTC");
    assert_eq!(t.second(), 5);
}

#[test]
fn zone_names_follow_go() {
    assert_eq!(local_zone_name(None), "Local");
    assert_eq!(local_zone_name(Some("")), "UTC");
    assert_eq!(local_zone_name(Some("UTC")), "UTC");
    assert_eq!(local_zone_name(Some(":UTC")), "UTC");
    assert_eq!(local_zone_name(Some("Europe/Berlin")), "Europe/Berlin");
    assert_eq!(
        local_zone_name(Some(":America/New_York")),
        "America/New_York"
    );
    assert_eq!(local_zone_name(Some("/etc/localtime")), "Local");
}
