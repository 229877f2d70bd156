//! PostgreSQL values (binary wire format) → JSON text.
//!
//! | PostgreSQL | JSON |
//! |---|---|
//! | `smallint`, `integer`, `bigint`, `oid` | number |
//! | `numeric` | **string** with every digit (`"12.3400"`), `"NaN"`, `"Infinity"`, `"-Infinity"` |
//! | `real`, `double precision` | number; `"NaN"`, `"Infinity"`, `"-Infinity"` as strings |
//! | `boolean` | `true` / `false` |
//! | `text`, `varchar`, `char(n)`, `name`, `"char"`, `xml`, `unknown`, enums | string |
//! | `bytea` | base64 string (standard alphabet, padded) |
//! | `json`, `jsonb` | the JSON value itself |
//! | `uuid` | string, lower-case hyphenated |
//! | `timestamp`, `timestamptz` | RFC 3339 string in UTC (`2024-05-01T12:30:00.5Z`); `"infinity"`, `"-infinity"` |
//! | `date` | `"2024-05-01"`; `"infinity"`, `"-infinity"` |
//! | `time` | `"12:30:00.5"` |
//! | `timetz` | `"12:30:00+02"` |
//! | `interval` | ISO 8601 duration as PostgreSQL's `iso_8601` style writes it (`"P1Y2M3DT4H5M6.5S"`) |
//! | arrays of the above (any number of dimensions) | nested JSON arrays |
//! | domains | as their base type |
//! | `NULL` | `null` |
//! | any other type | its text form, as PostgreSQL prints it (a string) |

use std::fmt::Write as _;

use base64::Engine as _;
use tokio_postgres::types::{Kind, Type};

use bindery_core::time::civil_from_days;

/// How to turn one column's bytes into JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoder {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Numeric,
    Text,
    Char,
    Bytea,
    Json,
    Jsonb,
    Uuid,
    Timestamp,
    Date,
    Time,
    Timetz,
    Interval,
    Array(Box<Decoder>),
    /// A type bindery cannot decode from its binary form (used only when the query could not
    /// be rewritten to ask for text): UTF-8 bytes as a string, anything else base64.
    Opaque,
}

/// One value that could not be decoded.
pub(crate) type DecodeError = String;

impl Decoder {
    /// The decoder for `ty`, or `None` when bindery must ask PostgreSQL for the text form.
    pub(crate) fn for_type(ty: &Type) -> Option<Decoder> {
        let d = match *ty {
            Type::BOOL => Decoder::Bool,
            Type::INT2 => Decoder::Int2,
            Type::INT4 => Decoder::Int4,
            Type::INT8 => Decoder::Int8,
            Type::OID => Decoder::Oid,
            Type::FLOAT4 => Decoder::Float4,
            Type::FLOAT8 => Decoder::Float8,
            Type::NUMERIC => Decoder::Numeric,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::XML => {
                Decoder::Text
            }
            Type::CHAR => Decoder::Char,
            Type::BYTEA => Decoder::Bytea,
            Type::JSON => Decoder::Json,
            Type::JSONB => Decoder::Jsonb,
            Type::UUID => Decoder::Uuid,
            Type::TIMESTAMP | Type::TIMESTAMPTZ => Decoder::Timestamp,
            Type::DATE => Decoder::Date,
            Type::TIME => Decoder::Time,
            Type::TIMETZ => Decoder::Timetz,
            Type::INTERVAL => Decoder::Interval,
            _ => match ty.kind() {
                Kind::Domain(base) => return Decoder::for_type(base),
                // An enum's binary form is its label.
                Kind::Enum(_) => Decoder::Text,
                Kind::Array(elem) => Decoder::Array(Box::new(Decoder::for_type(elem)?)),
                _ => return None,
            },
        };
        Some(d)
    }

    /// Append the JSON for `raw` (`None` = SQL NULL) to `out`.
    pub(crate) fn write(&self, raw: Option<&[u8]>, out: &mut String) -> Result<(), DecodeError> {
        let Some(raw) = raw else {
            out.push_str("null");
            return Ok(());
        };
        match self {
            Decoder::Bool => out.push_str(if fixed::<1>(raw)?[0] != 0 {
                "true"
            } else {
                "false"
            }),
            Decoder::Int2 => {
                let _ = write!(out, "{}", i16::from_be_bytes(fixed(raw)?));
            }
            Decoder::Int4 => {
                let _ = write!(out, "{}", i32::from_be_bytes(fixed(raw)?));
            }
            Decoder::Int8 => {
                let _ = write!(out, "{}", i64::from_be_bytes(fixed(raw)?));
            }
            Decoder::Oid => {
                let _ = write!(out, "{}", u32::from_be_bytes(fixed(raw)?));
            }
            Decoder::Float4 => {
                let f = f32::from_be_bytes(fixed(raw)?);
                write_float(f64::from(f), Some(f), out);
            }
            Decoder::Float8 => write_float(f64::from_be_bytes(fixed(raw)?), None, out),
            Decoder::Numeric => write_string(&numeric_text(raw)?, out),
            Decoder::Text => write_string(utf8(raw)?, out),
            Decoder::Char => {
                let b = fixed::<1>(raw)?[0];
                let s = if b == 0 {
                    String::new()
                } else {
                    char::from(b).to_string()
                };
                write_string(&s, out);
            }
            Decoder::Bytea => {
                out.push('"');
                base64::engine::general_purpose::STANDARD.encode_string(raw, out);
                out.push('"');
            }
            Decoder::Json => out.push_str(utf8(raw)?.trim()),
            Decoder::Jsonb => match raw.split_first() {
                Some((1, text)) => out.push_str(utf8(text)?.trim()),
                _ => return Err("unknown jsonb version".into()),
            },
            Decoder::Uuid => {
                let b: [u8; 16] = fixed(raw)?;
                out.push('"');
                for (i, byte) in b.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        out.push('-');
                    }
                    let _ = write!(out, "{byte:02x}");
                }
                out.push('"');
            }
            Decoder::Timestamp => {
                write_string(&timestamp_text(i64::from_be_bytes(fixed(raw)?)), out)
            }
            Decoder::Date => write_string(&date_text(i32::from_be_bytes(fixed(raw)?)), out),
            Decoder::Time => write_string(&time_text(i64::from_be_bytes(fixed(raw)?)), out),
            Decoder::Timetz => {
                let b: [u8; 12] = fixed(raw)?;
                let micros = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                let zone = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
                let mut s = time_text(micros);
                // PostgreSQL stores the zone as seconds *west* of UTC.
                push_offset(-i64::from(zone), &mut s);
                write_string(&s, out);
            }
            Decoder::Interval => {
                let b: [u8; 16] = fixed(raw)?;
                let micros = i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                let days = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
                let months = i32::from_be_bytes([b[12], b[13], b[14], b[15]]);
                write_string(&interval_iso8601(months, days, micros), out);
            }
            Decoder::Array(elem) => write_array(elem, raw, out)?,
            Decoder::Opaque => match std::str::from_utf8(raw) {
                Ok(s) => write_string(s, out),
                Err(_) => Decoder::Bytea.write(Some(raw), out)?,
            },
        }
        Ok(())
    }
}

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], DecodeError> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()))
}

fn utf8(raw: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(raw).map_err(|_| "text is not valid UTF-8".to_owned())
}

pub(crate) fn write_string(s: &str, out: &mut String) {
    // Serialising a &str into a String cannot fail.
    if let Ok(json) = serde_json::to_string(s) {
        out.push_str(&json);
    }
}

fn write_float(v: f64, single: Option<f32>, out: &mut String) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else {
        // The shortest text that reads back as the same value (a real keeps its own digits).
        let text = match single {
            Some(f) => serde_json::to_string(&f),
            None => serde_json::to_string(&v),
        };
        if let Ok(t) = text {
            out.push_str(&t);
        }
    }
}

/// `numeric`'s binary form: ndigits, weight, sign, dscale, then base-10000 digits.
pub(crate) fn numeric_text(raw: &[u8]) -> Result<String, DecodeError> {
    if raw.len() < 8 {
        return Err("numeric value too short".into());
    }
    let word = |i: usize| u16::from_be_bytes([raw[i], raw[i + 1]]);
    let ndigits = usize::from(word(0));
    let weight = i64::from(word(2) as i16);
    let sign = word(4);
    let dscale = usize::from(word(6));
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        0x0000 | 0x4000 => {}
        _ => return Err("invalid numeric sign".into()),
    }
    if raw.len() != 8 + 2 * ndigits {
        return Err("numeric value has the wrong length".into());
    }
    let digit = |i: i64| -> u16 {
        if i >= 0 && (i as usize) < ndigits {
            word(8 + 2 * i as usize)
        } else {
            0
        }
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            if i == 0 {
                let _ = write!(s, "{}", digit(i));
            } else {
                let _ = write!(s, "{:04}", digit(i));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::with_capacity(dscale + 4);
        let mut i = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(i));
            i += 1;
        }
        frac.truncate(dscale);
        s.push('.');
        s.push_str(&frac);
    }
    Ok(s)
}

/// Days between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;

fn push_date(days_since_2000: i64, s: &mut String) {
    let (y, m, d) = civil_from_days(days_since_2000 + PG_EPOCH_DAYS);
    if y < 0 {
        let _ = write!(s, "-{:04}-{m:02}-{d:02}", -y);
    } else {
        let _ = write!(s, "{y:04}-{m:02}-{d:02}");
    }
}

/// `HH:MM:SS` and a fraction without trailing zeros.
fn push_clock(micros_of_day: i64, s: &mut String) {
    let secs = micros_of_day / 1_000_000;
    let frac = micros_of_day % 1_000_000;
    let _ = write!(
        s,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    push_fraction(frac, s);
}

fn push_fraction(micros: i64, s: &mut String) {
    if micros != 0 {
        let digits = format!("{micros:06}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
}

pub(crate) fn date_text(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        d => {
            let mut s = String::with_capacity(10);
            push_date(i64::from(d), &mut s);
            s
        }
    }
}

pub(crate) fn timestamp_text(micros: i64) -> String {
    match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        m => {
            let days = m.div_euclid(86_400_000_000);
            let of_day = m.rem_euclid(86_400_000_000);
            let mut s = String::with_capacity(27);
            push_date(days, &mut s);
            s.push('T');
            push_clock(of_day, &mut s);
            s.push('Z');
            s
        }
    }
}

pub(crate) fn time_text(micros: i64) -> String {
    let mut s = String::with_capacity(15);
    push_clock(micros, &mut s);
    s
}

/// `+HH`, `+HH:MM` or `+HH:MM:SS`, as PostgreSQL prints a zone.
fn push_offset(east_secs: i64, s: &mut String) {
    let sign = if east_secs < 0 { '-' } else { '+' };
    let a = east_secs.abs();
    let (h, m, sec) = (a / 3600, a / 60 % 60, a % 60);
    let _ = write!(s, "{sign}{h:02}");
    if m != 0 || sec != 0 {
        let _ = write!(s, ":{m:02}");
    }
    if sec != 0 {
        let _ = write!(s, ":{sec:02}");
    }
}

/// PostgreSQL's `IntervalStyle = iso_8601` output.
pub(crate) fn interval_iso8601(months: i32, days: i32, micros: i64) -> String {
    let (year, mon) = (months / 12, months % 12);
    let hour = micros / 3_600_000_000;
    let rest = micros % 3_600_000_000;
    let min = rest / 60_000_000;
    let rest = rest % 60_000_000;
    let (sec, fsec) = (rest / 1_000_000, rest % 1_000_000);
    if year == 0 && mon == 0 && days == 0 && hour == 0 && min == 0 && sec == 0 && fsec == 0 {
        return "PT0S".into();
    }
    let mut s = String::from("P");
    let part = |s: &mut String, v: i64, unit: char| {
        if v != 0 {
            let _ = write!(s, "{v}{unit}");
        }
    };
    part(&mut s, i64::from(year), 'Y');
    part(&mut s, i64::from(mon), 'M');
    part(&mut s, i64::from(days), 'D');
    if hour != 0 || min != 0 || sec != 0 || fsec != 0 {
        s.push('T');
    }
    part(&mut s, hour, 'H');
    part(&mut s, min, 'M');
    if sec != 0 || fsec != 0 {
        if sec < 0 || fsec < 0 {
            s.push('-');
        }
        let _ = write!(s, "{}", sec.abs());
        push_fraction(fsec.abs(), &mut s);
        s.push('S');
    }
    s
}

/// An array: ndim, has-nulls flag, element type, (length, lower bound) per dimension, then
/// each element as (length or -1, bytes). Lower bounds are dropped: JSON arrays start at 0.
fn write_array(elem: &Decoder, raw: &[u8], out: &mut String) -> Result<(), DecodeError> {
    let mut buf = raw;
    let mut take = |n: usize| -> Result<&[u8], DecodeError> {
        if buf.len() < n {
            return Err("array value too short".into());
        }
        let (head, tail) = buf.split_at(n);
        buf = tail;
        Ok(head)
    };
    let i32_at = |b: &[u8]| i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let ndim = i32_at(take(4)?);
    let _flags = take(4)?;
    let _elem_oid = take(4)?;
    if ndim <= 0 {
        out.push_str("[]");
        return Ok(());
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    for _ in 0..ndim {
        let len = i32_at(take(8)?);
        dims.push(usize::try_from(len).map_err(|_| "negative array length".to_owned())?);
    }
    let total: usize = dims.iter().product();
    let mut elems: Vec<Option<&[u8]>> = Vec::with_capacity(total);
    for _ in 0..total {
        let len = i32_at(take(4)?);
        if len < 0 {
            elems.push(None);
        } else {
            elems.push(Some(take(len as usize)?));
        }
    }
    let mut it = elems.into_iter();
    write_dims(elem, &dims, &mut it, out)
}

fn write_dims<'a>(
    elem: &Decoder,
    dims: &[usize],
    it: &mut impl Iterator<Item = Option<&'a [u8]>>,
    out: &mut String,
) -> Result<(), DecodeError> {
    out.push('[');
    for i in 0..dims[0] {
        if i > 0 {
            out.push(',');
        }
        if dims.len() > 1 {
            write_dims(elem, &dims[1..], it, out)?;
        } else {
            let v = it
                .next()
                .ok_or_else(|| "array value too short".to_owned())?;
            elem.write(v, out)?;
        }
    }
    out.push(']');
    Ok(())
}
