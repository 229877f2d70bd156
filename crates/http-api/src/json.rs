//! Re-encoding of the `data` field of an output request as compact JSON text, the way current
//! Dapr does it (Go's `encoding/json`): object keys sorted, `<`, `>`, `&`, U+2028 and U+2029
//! escaped. Integers keep every digit (Go would round those beyond 2^53; bindery does not lose
//! them).

use serde_json::Value;

/// Write `value` as compact JSON the way Dapr hands `data` to a binding.
///
/// ```
/// let v: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":"<x&y>"}"#).unwrap();
/// assert_eq!(bindery_http::reencode_json(&v), r#"{"a":"\u003cx\u0026y\u003e","b":1}"#);
/// assert_eq!(bindery_http::reencode_json(&serde_json::json!("hello")), r#""hello""#);
/// ```
pub fn reencode_json(value: &Value) -> String {
    let mut out = String::with_capacity(64);
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn re(s: &str) -> String {
        reencode_json(&serde_json::from_str(s).unwrap())
    }

    #[test]
    fn matches_go_encoding() {
        assert_eq!(
            re(r#" { "z" : [1, 2.5, null], "a": {"y":true,"x":false} } "#),
            r#"{"a":{"x":false,"y":true},"z":[1,2.5,null]}"#
        );
        assert_eq!(re(r#""line\nbreak\u0001""#), r#""line\nbreak\u0001""#);
        assert_eq!(re(r#""\u2028""#), r#""\u2028""#);
        assert_eq!(re("12345678901234567890"), "12345678901234567890");
        assert_eq!(re(r#""日本""#), r#""日本""#);
    }
}
