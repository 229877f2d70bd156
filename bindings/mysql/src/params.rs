//! Request metadata `params` → values for the `?` placeholders, bound by the server in a
//! prepared statement (never pasted into the SQL).
//!
//! | JSON | MySQL value |
//! |---|---|
//! | `null` | `NULL` |
//! | string | string |
//! | integer | signed (or unsigned, past `i64`) integer |
//! | other number | `DOUBLE` when that keeps it exactly, else its literal as a string (MySQL converts it, e.g. into a `DECIMAL` column, without losing digits) |
//! | `true` / `false` | `1` / `0` |
//! | array, object | its JSON text as a string (for `JSON` columns) |

use bindery_core::BindingError;
use mysql_async::Value;
use serde_json::value::RawValue;

/// The request metadata key holding the parameters.
pub(crate) const PARAMS: &str = "params";

/// Parse `params`: absent or empty means none; anything but a JSON array is refused with
/// Dapr's message.
pub(crate) fn parse(value: Option<&String>) -> Result<Vec<Value>, BindingError> {
    let Some(v) = value.map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return Ok(Vec::new());
    };
    let raw = serde_json::from_str::<Vec<Box<RawValue>>>(v).map_err(|e| {
        BindingError::invalid_request(format!(
            "invalid metadata property {PARAMS}: failed to unserialize into an array: {e}"
        ))
    })?;
    raw.iter().map(|r| to_value(r)).collect()
}

/// One JSON value as a MySQL value.
pub(crate) fn to_value(raw: &RawValue) -> Result<Value, BindingError> {
    let t = raw.get().trim();
    Ok(match t.as_bytes().first() {
        Some(b'n') => Value::NULL,
        Some(b't') => Value::Int(1),
        Some(b'f') => Value::Int(0),
        Some(b'"') => Value::Bytes(
            serde_json::from_str::<String>(t)
                .map_err(|e| {
                    BindingError::invalid_request(format!(
                        "invalid metadata property {PARAMS}: {e}"
                    ))
                })?
                .into_bytes(),
        ),
        Some(b'[' | b'{') => Value::Bytes(t.as_bytes().to_vec()),
        _ => {
            if let Ok(i) = t.parse::<i64>() {
                Value::Int(i)
            } else if let Ok(u) = t.parse::<u64>() {
                Value::UInt(u)
            } else {
                match t.parse::<f64>() {
                    Ok(f) if f.is_finite() && f.to_string() == t => Value::Double(f),
                    _ => Value::Bytes(t.as_bytes().to_vec()),
                }
            }
        }
    })
}
