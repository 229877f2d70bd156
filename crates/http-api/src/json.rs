//! Re-encoding of the `data` field of an output request as compact JSON text, the way current
//! Dapr does it (Go's `encoding/json`): object keys sorted, `<`, `>`, `&`, U+2028 and U+2029
//! escaped. Integers keep every digit (Go would round those beyond 2^53; bindery does not lose
//! them).

use std::fmt::Write as _;

use std::borrow::Cow;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
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

/// The `data` of an output request, decoded in one pass without copying its strings: like
/// [`Value`], but strings are borrowed from the request body unless they hold escapes, and
/// objects are lists of entries (sorted only when written). [`Data::encode`] gives exactly
/// what [`reencode_json`] gives for the same text.
#[derive(Debug)]
pub(crate) enum Data<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    Array(Vec<Data<'a>>),
    Object(Vec<(Cow<'a, str>, Data<'a>)>),
}

impl Data<'_> {
    /// Compact JSON text, keys sorted (the last of equal keys wins, as in serde_json's map).
    pub(crate) fn encode(&mut self, size_hint: usize) -> Bytes {
        let mut out = String::with_capacity(size_hint + 16);
        self.write(&mut out);
        Bytes::from(out)
    }

    fn write(&mut self, out: &mut String) {
        match self {
            Data::Null => out.push_str("null"),
            Data::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            // Writing into a String cannot fail.
            Data::Number(n) => {
                let _ = write!(out, "{n}");
            }
            Data::String(s) => write_string(out, s),
            Data::Array(items) => {
                out.push('[');
                for (i, item) in items.iter_mut().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Data::Object(entries) => {
                // Stable, so that of equal keys the last one is the one kept.
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                out.push('{');
                let mut first = true;
                for i in 0..entries.len() {
                    if entries
                        .get(i + 1)
                        .is_some_and(|next| next.0 == entries[i].0)
                    {
                        continue;
                    }
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    let (key, value) = &mut entries[i];
                    write_string(out, key);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Data<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DataVisitor(PhantomData))
    }
}

struct DataVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for DataVisitor<'a> {
    type Value = Data<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Data<'a>, E> {
        Ok(Data::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Data<'a>, E> {
        Ok(Data::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Data<'a>, D::Error> {
        Deserialize::deserialize(d)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Data<'a>, E> {
        Ok(Data::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Data<'a>, E> {
        Ok(Data::Number(v.into()))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Data<'a>, E> {
        Ok(Data::Number(v.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Data<'a>, E> {
        // As serde_json's Value: a float JSON cannot hold becomes null.
        Ok(serde_json::Number::from_f64(v).map_or(Data::Null, Data::Number))
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Data<'a>, E> {
        Ok(Data::String(Cow::Borrowed(v)))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Data<'a>, E> {
        Ok(Data::String(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Data<'a>, E> {
        Ok(Data::String(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Data<'a>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Data::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Data<'a>, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some((Key(key), value)) = map.next_entry::<Key<'a>, Data<'a>>()? {
            entries.push((key, value));
        }
        Ok(Data::Object(entries))
    }
}

/// An object key: borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for KeyVisitor<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor(PhantomData))
    }
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // Writing into a String cannot fail.
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
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
            out.push('{');
            // serde_json's map iterates in key order unless its `preserve_order` feature is on;
            // sort only then, so the usual request allocates nothing here.
            if map.keys().is_sorted() {
                write_entries(out, map.iter());
            } else {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                write_entries(out, entries.into_iter());
            }
            out.push('}');
        }
    }
}

fn write_entries<'a>(out: &mut String, entries: impl Iterator<Item = (&'a String, &'a Value)>) {
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, k);
        out.push(':');
        write_value(out, v);
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
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
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

    /// What the output API sends to a binding for `text`.
    fn encode(text: &str) -> String {
        let mut data: Data<'_> = serde_json::from_str(text).unwrap();
        String::from_utf8(data.encode(text.len()).to_vec()).unwrap()
    }

    #[test]
    fn data_encodes_as_the_reencoder_does() {
        for text in [
            r#"{"order":42,"customer":"c-1","items":[{"sku":"A","qty":2},{"qty":1,"sku":"B"}]}"#,
            r#"{"b":{"y":1.50,"x":"<"},"a":[3,2,1],"b":null}"#,
            r#"{"\u0062":1,"a":2,"b":3}"#,
            r#" { "z" : { "b" : 1 , "a" : [ 1 , 2 ] } } "#,
            r#""hello""#,
            "12345678901234567890",
            "123456789012345678901234",
            "-0",
            "[]",
            "{}",
            r#""a\nb\u0041\u2028<>&""#,
        ] {
            let want = reencode_json(&serde_json::from_str(text).unwrap());
            assert_eq!(encode(text), want, "{text}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(serde_json::from_str::<Data<'_>>(&deep).is_err());
    }

    /// Random documents with keys in any order (some repeated), any spacing, escapes, floats
    /// and big integers: [`Data`] always gives what parsing into a [`Value`] and re-encoding gives.
    #[test]
    fn data_agrees_with_reencode_json_on_random_documents() {
        fn pick<'a>(pool: &[&'a str]) -> &'a str {
            pool[rand::random_range(0..pool.len())]
        }
        fn space(out: &mut String) {
            if rand::random_range(0..4) == 0 {
                out.push_str(pick(&[" ", "\n", "\t ", "  "]));
            }
        }
        fn value(out: &mut String, depth: u32) {
            match rand::random_range(0..if depth > 3 { 6 } else { 8 }) {
                0 => out.push_str(pick(&["null", "true", "false"])),
                1 => out.push_str(&rand::random_range(-1_000_000i64..1_000_000).to_string()),
                2 => out.push_str(pick(&[
                    "1.50",
                    "2e3",
                    "-0",
                    "0.1",
                    "123456789012345678901",
                    "-7",
                ])),
                3 => out.push_str(&rand::random::<u64>().to_string()),
                4 | 5 => out.push_str(pick(&[
                    r#""a""#,
                    r#""x y""#,
                    r#""<&>""#,
                    r#""é""#,
                    r#""line\n""#,
                    r#""\u0041""#,
                    "\"\u{2028}\"",
                    r#""q\"""#,
                    r#""""#,
                    r#""\/""#,
                ])),
                6 => {
                    out.push('[');
                    for i in 0..rand::random_range(0..4) {
                        if i > 0 {
                            out.push(',');
                        }
                        space(out);
                        value(out, depth + 1);
                        space(out);
                    }
                    out.push(']');
                }
                _ => {
                    out.push('{');
                    for i in 0..rand::random_range(0..5) {
                        if i > 0 {
                            out.push(',');
                        }
                        space(out);
                        out.push_str(pick(&[
                            r#""b""#,
                            r#""a""#,
                            r#""c""#,
                            r#""aa""#,
                            r#""B""#,
                            r#""<""#,
                            r#""é""#,
                            r#""""#,
                            r#""\u0061""#,
                        ]));
                        space(out);
                        out.push(':');
                        space(out);
                        value(out, depth + 1);
                        space(out);
                    }
                    out.push('}');
                }
            }
        }
        for _ in 0..5000 {
            let mut text = String::new();
            value(&mut text, 0);
            let want = reencode_json(&serde_json::from_str(&text).unwrap());
            assert_eq!(encode(&text), want, "{text}");
        }
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
