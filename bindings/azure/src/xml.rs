//! The little XML the storage services speak: escaping text we send, reading what they answer.

/// Escape `s` for XML text content.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Keep CR as a reference so XML parsers do not normalise it away.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// The first character of `s` that XML 1.0 cannot carry at all, if any.
pub(crate) fn first_illegal_char(s: &str) -> Option<char> {
    s.chars().find(|&c| {
        !matches!(c,
            '\u{9}' | '\u{A}' | '\u{D}'
            | '\u{20}'..='\u{D7FF}'
            | '\u{E000}'..='\u{FFFD}'
            | '\u{10000}'..='\u{10FFFF}')
    })
}

/// The text of `node`'s first child element named `name` (empty text counts as `Some("")`).
pub(crate) fn child_text<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|n| n.has_tag_name(name))
        .map(|n| n.text().unwrap_or(""))
}

/// Parse a response body, tolerating a byte-order mark.
pub(crate) fn parse(text: &str) -> Result<roxmltree::Document<'_>, String> {
    roxmltree::Document::parse(text.trim_start_matches('\u{feff}'))
        .map_err(|e| format!("unexpected answer (not XML): {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn escaping_round_trips() {
        let s = "a<b>&\"c'\r\nd";
        let xml = format!("<x>{}</x>", escape(s));
        let doc = roxmltree::Document::parse(&xml).unwrap();
        assert_eq!(doc.root_element().text().unwrap(), s);
    }

    #[test]
    fn illegal_characters_are_found() {
        assert_eq!(first_illegal_char("ok\ttext\n"), None);
        assert_eq!(first_illegal_char("bad\u{0}"), Some('\u{0}'));
        assert_eq!(first_illegal_char("\u{1b}[0m"), Some('\u{1b}'));
        assert_eq!(first_illegal_char("\u{FFFE}"), Some('\u{FFFE}'));
        assert_eq!(first_illegal_char("é✓😀"), None);
    }
}
