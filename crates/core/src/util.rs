//! Small helpers several binding families share.

use std::borrow::Cow;

/// Undo the HTTP API's JSON re-encoding for bindings that store text: when `data` is a JSON
/// string (`"hello"`), return its content (`hello`); otherwise return `data` unchanged.
///
/// ```
/// use bindery_core::util::unquote_json_string;
/// assert_eq!(unquote_json_string(br#""a\nb""#).as_ref(), b"a\nb");
/// assert_eq!(unquote_json_string(br#"{"a":1}"#).as_ref(), br#"{"a":1}"#);
/// assert_eq!(unquote_json_string(b"plain").as_ref(), b"plain");
/// ```
pub fn unquote_json_string(data: &[u8]) -> Cow<'_, [u8]> {
    if data.len() >= 2
        && data[0] == b'"'
        && data[data.len() - 1] == b'"'
        && let Ok(s) = serde_json::from_slice::<String>(data)
    {
        return Cow::Owned(s.into_bytes());
    }
    Cow::Borrowed(data)
}
