//! Line numbers for problems: the line of its file a field such as `spec.metadata.url` is on.
//!
//! The trees the loader checks carry no positions, so a document with problems is parsed a
//! second time into a [`Node`] tree that keeps the line of every key and item. A field that is
//! not in the document (a missing `spec.type`) is placed on the deepest part of its path that
//! is, and a problem about the document as a whole on its first line.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::manifest::{Document, parse_options};
use super::{ConfigIssue, Source};

/// Set the line of every issue in `issues` that is about one of `docs` and has none yet.
pub(super) fn assign_lines(issues: &mut [ConfigIssue], docs: &[Document]) {
    let by_source: HashMap<&Source, &Document> = docs.iter().map(|d| (&d.source, d)).collect();
    // Parsed once per document, and only for documents with problems.
    let mut trees: HashMap<&Source, Option<Spanned<Node>>> = HashMap::new();
    for issue in issues.iter_mut().filter(|i| i.line.is_none()) {
        let (Some(file), Some(document)) = (&issue.file, issue.document) else {
            continue;
        };
        let key = Source {
            file: file.clone(),
            document,
        };
        let Some((source, doc)) = by_source.get_key_value(&key) else {
            continue;
        };
        let tree = trees.entry(source).or_insert_with(|| parse(&doc.text));
        let relative = tree
            .as_ref()
            .and_then(|t| line_of(t, issue.field.as_deref().unwrap_or_default()));
        issue.line = Some(match relative {
            Some(l) => doc.line + l - 1,
            None => doc.line,
        });
    }
}

fn parse(text: &str) -> Option<Spanned<Node>> {
    serde_saphyr::from_str_with_options::<Spanned<Node>>(text, parse_options()).ok()
}

/// The line (from 1, within the document) of `field` in `root`: the line of the deepest key or
/// item of the path that the document has.
fn line_of(root: &Spanned<Node>, field: &str) -> Option<usize> {
    let segments = segments(field);
    let mut node = root;
    let mut line = line_at(&root.referenced);
    let mut rest = segments.as_slice();
    while let Some(first) = rest.first() {
        let found = match (&node.value, first) {
            (Node::Map(entries), Segment::Key(_)) => find_key(entries, rest),
            (Node::Seq(items), Segment::Key(_)) => find_named_item(items, rest),
            (Node::Seq(items), Segment::Index(i)) => items
                .get(*i)
                .map(|item| (line_at(&item.referenced), item, 1)),
            _ => None,
        };
        let Some((at, next, used)) = found else { break };
        if at.is_some() {
            line = at;
        }
        node = next;
        rest = &rest[used..];
    }
    line
}

fn line_at(location: &serde_saphyr::Location) -> Option<usize> {
    usize::try_from(location.line()).ok().filter(|l| *l > 0)
}

/// One step of a field path: `spec`, `metadata`, `[3]`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// `spec.metadata[2].name` as `spec`, `metadata`, `[2]`, `name`.
fn segments(field: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in field.split('.').filter(|p| !p.is_empty()) {
        let (key, mut indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key));
        }
        while let Some(end) = indexes.find(']') {
            if let Ok(i) = indexes[1..end].parse() {
                out.push(Segment::Index(i));
            }
            indexes = &indexes[end + 1..];
        }
    }
    out
}

/// The keys that `rest` starts with, joined back with dots: `a`, then `a.b`, ... (a key or a
/// metadata name may itself hold dots).
fn joined_prefixes<'a>(rest: &[Segment<'a>]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut joined = String::new();
    for (i, s) in rest.iter().enumerate() {
        let Segment::Key(k) = s else { break };
        if i > 0 {
            joined.push('.');
        }
        joined.push_str(k);
        out.push((joined.clone(), i + 1));
    }
    out
}

type Found<'n> = (Option<usize>, &'n Spanned<Node>, usize);

/// The entry of a mapping named by the start of `rest` (exact spelling first, then any case).
fn find_key<'n>(
    entries: &'n [(Spanned<String>, Spanned<Node>)],
    rest: &[Segment<'_>],
) -> Option<Found<'n>> {
    for (name, used) in joined_prefixes(rest) {
        let hit = entries.iter().find(|(k, _)| k.value == name).or_else(|| {
            entries
                .iter()
                .find(|(k, _)| k.value.eq_ignore_ascii_case(&name))
        });
        if let Some((k, v)) = hit {
            return Some((
                line_at(&k.referenced).or_else(|| line_at(&v.referenced)),
                v,
                used,
            ));
        }
    }
    None
}

/// The item of a list whose `name` is the start of `rest`, as in `spec.metadata.<name>`.
fn find_named_item<'n>(items: &'n [Spanned<Node>], rest: &[Segment<'_>]) -> Option<Found<'n>> {
    for (name, used) in joined_prefixes(rest) {
        let named = |item: &Spanned<Node>, exact: bool| match &item.value {
            Node::Map(entries) => entries.iter().any(|(k, v)| {
                k.value.eq_ignore_ascii_case("name")
                    && matches!(&v.value, Node::Scalar(Some(n))
                        if if exact { *n == name } else { n.eq_ignore_ascii_case(&name) })
            }),
            _ => false,
        };
        let hit = items
            .iter()
            .find(|item| named(item, true))
            .or_else(|| items.iter().find(|item| named(item, false)));
        if let Some(item) = hit {
            return Some((line_at(&item.referenced), item, used));
        }
    }
    None
}

/// A YAML node, each key and item with its position.
#[derive(Debug)]
enum Node {
    /// A scalar in its text form; `None` for null.
    Scalar(Option<String>),
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML node")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(Some(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(Some(v.to_string())))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(Some(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(Some(v.to_string())))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Scalar(Some(v.to_owned())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar(None))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            let key = Spanned::new(key.value.0, key.referenced, key.defined);
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

/// A mapping key in its text form; a list or mapping used as a key becomes "".
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Node::deserialize(deserializer)? {
            Node::Scalar(text) => Ok(Key(text.unwrap_or_default())),
            Node::Map(_) | Node::Seq(_) => Ok(Key(String::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, field: &str) -> Option<usize> {
        let tree = parse(text).expect("parses");
        line_of(&tree, field)
    }

    const DOC: &str = "# a comment\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: files\nspec:\n  type: bindings.localstorage\n  metadata:\n    - name: rootPath\n      value: /tmp\n    - name: a.b\n      secretKeyRef:\n        name: s\nscopes: [one, two]\n";

    #[test]
    fn fields_are_found_by_path() {
        assert_eq!(at(DOC, "apiVersion"), Some(2));
        assert_eq!(at(DOC, "metadata.name"), Some(5));
        assert_eq!(at(DOC, "spec.type"), Some(7));
        assert_eq!(at(DOC, "spec.metadata.rootPath"), Some(9));
        assert_eq!(at(DOC, "spec.metadata.ROOTPATH"), Some(9));
        assert_eq!(at(DOC, "spec.metadata[1].name"), Some(11));
        assert_eq!(at(DOC, "spec.metadata.a.b.secretKeyRef"), Some(12));
        assert_eq!(at(DOC, "scopes[1]"), Some(14));
    }

    #[test]
    fn missing_fields_fall_back_to_the_deepest_part_found() {
        assert_eq!(at(DOC, "spec.metadata.schedule"), Some(8));
        assert_eq!(at(DOC, "spec.initTimeout"), Some(6));
        assert_eq!(at(DOC, "auth.secretStore"), Some(2));
        assert_eq!(at(DOC, ""), Some(2));
    }

    #[test]
    fn issues_get_the_line_of_their_field_in_the_file() {
        use super::super::issues::Report;
        use super::super::{component, manifest};

        let text = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: a\nspec:\n  type: bindings.x\n---\n# second\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: b\nspec:\n  typo: 1\n---\nkey: [unclosed\n";
        let mut report = Report::default();
        let mut docs = Vec::new();
        let file = std::path::Path::new("f.yaml");
        manifest::parse_documents(file, text, &mut report, &mut docs);
        for doc in &docs {
            if manifest::kind(doc, &mut report).is_some() {
                let _ = component::parse(doc, &mut report);
            }
        }
        assign_lines(&mut report.errors, &docs);
        assign_lines(&mut report.warnings, &docs);
        let line = |issues: &[ConfigIssue], field: Option<&str>, document: usize| {
            issues
                .iter()
                .find(|i| i.field.as_deref() == field && i.document == Some(document))
                .unwrap_or_else(|| panic!("no issue {field:?} in document {document}: {issues:?}"))
                .line
        };
        assert_eq!(line(&report.warnings, Some("spec.typo"), 2), Some(14));
        assert_eq!(line(&report.errors, Some("spec.type"), 2), Some(13));
        assert_eq!(line(&report.errors, None, 3), Some(16));
    }

    #[test]
    fn segments_split_keys_and_indexes() {
        assert_eq!(
            segments("spec.metadata[2].name"),
            [
                Segment::Key("spec"),
                Segment::Key("metadata"),
                Segment::Index(2),
                Segment::Key("name")
            ]
        );
        assert_eq!(
            segments("scopes[0]"),
            [Segment::Key("scopes"), Segment::Index(0)]
        );
    }
}
