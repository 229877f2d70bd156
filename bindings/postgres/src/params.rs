//! Request metadata `params` → statement parameters.
//!
//! Every parameter is sent in PostgreSQL's **text** format and bound by the server to the type
//! it inferred for `$n`, so a value is always data, never SQL. The JSON value decides the text:
//!
//! | JSON | text sent |
//! |---|---|
//! | `null` | SQL `NULL` |
//! | string | the string as is (`"42"` works for an `integer`, `"\\x0102"` for a `bytea`) |
//! | number | its literal exactly as written (`12.340000000000000001` keeps every digit) |
//! | `true` / `false` | `true` / `false` |
//! | array, for an array parameter (`int[]`, `text[]`…) | an array literal (`{1,2,NULL}`) |
//! | array or object, otherwise | the JSON text (for `json`/`jsonb` parameters) |

use std::error::Error;

use bindery_core::BindingError;
use bytes::BytesMut;
use serde_json::value::RawValue;
use tokio_postgres::types::{Format, IsNull, Kind, ToSql, Type, to_sql_checked};

/// The request metadata key holding the parameters.
pub(crate) const PARAMS: &str = "params";

/// Parse `params`: absent or empty means none; anything but a JSON array is refused with
/// Dapr's message.
pub(crate) fn parse(value: Option<&String>) -> Result<Vec<Box<RawValue>>, BindingError> {
    match value.map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(Vec::new()),
        Some(v) => serde_json::from_str::<Vec<Box<RawValue>>>(v).map_err(|e| {
            BindingError::invalid_request(format!(
                "invalid metadata property {PARAMS}: failed to unserialize into an array: {e}"
            ))
        }),
    }
}

/// One parameter in text format; `None` is SQL NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TextParam(pub(crate) Option<String>);

impl ToSql for TextParam {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match &self.0 {
            None => Ok(IsNull::Yes),
            Some(s) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// The parameters for a statement whose parameter types are `types`.
pub(crate) fn bind(
    params: &[Box<RawValue>],
    types: &[Type],
) -> Result<Vec<TextParam>, BindingError> {
    if params.len() != types.len() {
        return Err(BindingError::invalid_request(format!(
            "the statement takes {} parameter(s) but params holds {}",
            types.len(),
            params.len()
        )));
    }
    params
        .iter()
        .zip(types)
        .map(|(p, ty)| to_text(p, ty).map(TextParam))
        .collect()
}

/// The text for one JSON value bound to a parameter of type `ty`.
pub(crate) fn to_text(raw: &RawValue, ty: &Type) -> Result<Option<String>, BindingError> {
    let t = raw.get().trim();
    Ok(match t.as_bytes().first() {
        Some(b'n') => None,
        Some(b'"') => Some(unquote(t)?),
        Some(b'[') if is_array(ty) => {
            let mut out = String::new();
            array_literal(t, &mut out)?;
            Some(out)
        }
        _ => Some(t.to_owned()),
    })
}

fn is_array(ty: &Type) -> bool {
    match ty.kind() {
        Kind::Array(_) => true,
        Kind::Domain(base) => is_array(base),
        _ => false,
    }
}

fn unquote(t: &str) -> Result<String, BindingError> {
    serde_json::from_str::<String>(t).map_err(|e| {
        BindingError::invalid_request(format!("invalid metadata property {PARAMS}: {e}"))
    })
}

/// A JSON array as a PostgreSQL array literal, nested arrays as nested dimensions.
fn array_literal(t: &str, out: &mut String) -> Result<(), BindingError> {
    let items: Vec<&RawValue> = serde_json::from_str(t).map_err(|e| {
        BindingError::invalid_request(format!("invalid metadata property {PARAMS}: {e}"))
    })?;
    out.push('{');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let it = item.get().trim();
        match it.as_bytes().first() {
            Some(b'[') => array_literal(it, out)?,
            Some(b'n') => out.push_str("NULL"),
            Some(b'"') => quote_element(&unquote(it)?, out),
            Some(b'{') => quote_element(it, out),
            _ => out.push_str(it),
        }
    }
    out.push('}');
    Ok(())
}

fn quote_element(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}
