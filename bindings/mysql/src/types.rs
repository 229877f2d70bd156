//! MySQL/MariaDB column values → JSON, the same for the text protocol (a call without
//! `params`) and the binary protocol (prepared statements, a call with `params`).
//!
//! | MySQL | JSON |
//! |---|---|
//! | `TINYINT` (and `BOOL` = `TINYINT(1)`), `SMALLINT`, `MEDIUMINT`, `INT`, `BIGINT` (signed and unsigned), `YEAR` | number |
//! | `DECIMAL` | **string** with every digit (`"12.30"`) |
//! | `FLOAT`, `DOUBLE` | number |
//! | `BIT(n)` | number (the bits as an unsigned integer) |
//! | `CHAR`, `VARCHAR`, `TEXT` (all sizes), `ENUM`, `SET` (`"a,b"`) | string |
//! | `BINARY`, `VARBINARY`, `BLOB` (all sizes), `GEOMETRY` | base64 string (standard alphabet, padded) |
//! | `JSON` (MySQL) | the JSON value itself; MariaDB's `JSON` is a `LONGTEXT` alias, so a string holding the JSON text |
//! | `DATE` | `"2024-05-01"` |
//! | `DATETIME`, `TIMESTAMP` | RFC 3339 as UTC (`"2024-05-01T12:30:00.5Z"`), as Dapr's `parseTime=true` with `loc=UTC` writes them |
//! | `TIME` | MySQL's text (`"-838:59:59"`, `"12:30:00.500"` for `TIME(3)`) |
//! | zero dates (`0000-00-00`) | MySQL's text, as a string |
//! | `NULL` | the column is left out of the row object |

use std::fmt::Write as _;

use base64::Engine as _;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::{Column, Value};

/// The binary character set's number: a string column with it holds bytes, not text.
const BINARY_CHARSET: u16 = 63;

/// How a column's values become JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    Float,
    Decimal,
    Bit,
    Text,
    Binary,
    Json,
    Date,
    DateTime,
    /// `TIME` with this many fractional digits.
    Time(u8),
}

impl Kind {
    /// The mapping for `col`.
    pub(crate) fn of(col: &Column) -> Kind {
        use ColumnType::*;
        let flags = col.flags();
        match col.column_type() {
            MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG | MYSQL_TYPE_YEAR => Kind::Int,
            MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => Kind::Float,
            MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => Kind::Decimal,
            MYSQL_TYPE_BIT => Kind::Bit,
            MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => Kind::Date,
            MYSQL_TYPE_DATETIME
            | MYSQL_TYPE_DATETIME2
            | MYSQL_TYPE_TIMESTAMP
            | MYSQL_TYPE_TIMESTAMP2 => Kind::DateTime,
            MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => Kind::Time(col.decimals().min(6)),
            MYSQL_TYPE_JSON => Kind::Json,
            MYSQL_TYPE_VARCHAR
            | MYSQL_TYPE_VAR_STRING
            | MYSQL_TYPE_STRING
            | MYSQL_TYPE_TINY_BLOB
            | MYSQL_TYPE_MEDIUM_BLOB
            | MYSQL_TYPE_LONG_BLOB
            | MYSQL_TYPE_BLOB
            | MYSQL_TYPE_ENUM
            | MYSQL_TYPE_SET => {
                if col.character_set() == BINARY_CHARSET
                    && !flags.intersects(ColumnFlags::ENUM_FLAG | ColumnFlags::SET_FLAG)
                {
                    Kind::Binary
                } else {
                    Kind::Text
                }
            }
            MYSQL_TYPE_NULL => Kind::Text,
            _ => Kind::Binary,
        }
    }
}

/// Why a value could not be written.
pub(crate) type DecodeError = String;

fn ascii(b: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(b).map_err(|_| "not valid text".to_owned())
}

pub(crate) fn write_string(s: &str, out: &mut String) {
    // Serialising a &str into a String cannot fail.
    if let Ok(json) = serde_json::to_string(s) {
        out.push_str(&json);
    }
}

fn write_base64(b: &[u8], out: &mut String) {
    out.push('"');
    base64::engine::general_purpose::STANDARD.encode_string(b, out);
    out.push('"');
}

fn write_f64(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else if let Ok(t) = serde_json::to_string(&v) {
        out.push_str(&t);
    }
}

fn fraction(micros: u32, digits: Option<u8>, s: &mut String) {
    match digits {
        // As many digits as the column declares (MySQL's text form).
        Some(0) => {}
        Some(n) => {
            let all = format!("{micros:06}");
            s.push('.');
            s.push_str(&all[..usize::from(n)]);
        }
        // Trailing zeros dropped (Go's RFC3339Nano).
        None => {
            if micros != 0 {
                let all = format!("{micros:06}");
                s.push('.');
                s.push_str(all.trim_end_matches('0'));
            }
        }
    }
}

/// `2024-05-01 12:30:00.500000` (MySQL's text) → `2024-05-01T12:30:00.5Z`.
fn datetime_from_text(t: &str) -> String {
    if t.starts_with("0000-00-00") {
        return t.to_owned();
    }
    let (date, time) = t.split_once(' ').unwrap_or((t, "00:00:00"));
    let (clock, frac) = match time.split_once('.') {
        Some((c, f)) => (c, f.trim_end_matches('0')),
        None => (time, ""),
    };
    if frac.is_empty() {
        format!("{date}T{clock}Z")
    } else {
        format!("{date}T{clock}.{frac}Z")
    }
}

/// Append the JSON for a non-NULL `v` of a column of kind `kind`.
pub(crate) fn write(kind: Kind, v: &Value, out: &mut String) -> Result<(), DecodeError> {
    match (kind, v) {
        (_, Value::NULL) => out.push_str("null"),
        (_, Value::Int(i)) => {
            let _ = write!(out, "{i}");
        }
        (_, Value::UInt(u)) => {
            let _ = write!(out, "{u}");
        }
        (_, Value::Float(f)) => {
            if f.is_finite() {
                if let Ok(t) = serde_json::to_string(f) {
                    out.push_str(&t);
                }
            } else {
                write_f64(f64::from(*f), out);
            }
        }
        (_, Value::Double(d)) => write_f64(*d, out),
        (Kind::Int, Value::Bytes(b)) => {
            let t = ascii(b)?;
            if t.parse::<i64>().is_ok() || t.parse::<u64>().is_ok() {
                out.push_str(t);
            } else {
                return Err(format!("{t:?} is not an integer"));
            }
        }
        (Kind::Float, Value::Bytes(b)) => {
            let t = ascii(b)?;
            write_f64(
                t.parse::<f64>()
                    .map_err(|_| format!("{t:?} is not a number"))?,
                out,
            );
        }
        (Kind::Decimal, Value::Bytes(b)) => write_string(ascii(b)?, out),
        (Kind::Bit, Value::Bytes(b)) => {
            if b.len() > 8 {
                return Err("BIT value longer than 64 bits".into());
            }
            let n = b
                .iter()
                .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
            let _ = write!(out, "{n}");
        }
        (Kind::Text, Value::Bytes(b)) => match std::str::from_utf8(b) {
            Ok(s) => write_string(s, out),
            Err(_) => write_base64(b, out),
        },
        (Kind::Json, Value::Bytes(b)) => {
            let t = ascii(b)?;
            if serde_json::from_str::<&serde_json::value::RawValue>(t).is_ok() {
                out.push_str(t.trim());
            } else {
                write_string(t, out);
            }
        }
        (Kind::Date | Kind::Time(_), Value::Bytes(b)) => write_string(ascii(b)?, out),
        (Kind::DateTime, Value::Bytes(b)) => write_string(&datetime_from_text(ascii(b)?), out),
        (Kind::Binary, Value::Bytes(b)) => write_base64(b, out),
        (Kind::Date, Value::Date(y, m, d, ..)) => {
            write_string(&format!("{y:04}-{m:02}-{d:02}"), out);
        }
        (_, Value::Date(y, mo, d, h, mi, s, us)) => {
            if *y == 0 && *mo == 0 && *d == 0 {
                write_string("0000-00-00 00:00:00", out);
            } else {
                let mut t = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
                fraction(*us, None, &mut t);
                t.push('Z');
                write_string(&t, out);
            }
        }
        (kind, Value::Time(neg, days, h, m, s, us)) => {
            let digits = match kind {
                Kind::Time(n) => n,
                _ => 6,
            };
            let hours = u64::from(*days) * 24 + u64::from(*h);
            let mut t = format!("{}{hours:02}:{m:02}:{s:02}", if *neg { "-" } else { "" });
            fraction(*us, Some(digits), &mut t);
            write_string(&t, out);
        }
    }
    Ok(())
}
