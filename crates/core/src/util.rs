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

/// Exponential backoff for redelivery and reconnects: `initial`, doubling up to `max`, with
/// up to 20 % jitter so replicas do not retry in lockstep. [`Backoff::reset`] after a success.
///
/// ```
/// use std::time::Duration;
/// use bindery_core::util::Backoff;
/// let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
/// let first = b.next_delay();
/// assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120));
/// for _ in 0..10 { b.next_delay(); }
/// assert!(b.next_delay() <= Duration::from_millis(1200));
/// b.reset();
/// assert!(b.next_delay() <= Duration::from_millis(120));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: std::time::Duration,
    max: std::time::Duration,
    current: std::time::Duration,
    seed: u64,
}

impl Backoff {
    /// A backoff from `initial` up to `max`.
    pub fn new(initial: std::time::Duration, max: std::time::Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(7)
            | 1;
        Backoff {
            initial,
            max: max.max(initial),
            current: initial,
            seed,
        }
    }

    /// The delay to wait now; the next one will be longer.
    pub fn next_delay(&mut self) -> std::time::Duration {
        // xorshift: cheap jitter, no dependency.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = (self.seed % 41) as f64 / 100.0 - 0.2; // -0.2 ..= +0.2
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        base.mul_f64(1.0 + jitter)
    }

    /// Start again from `initial`.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }

    /// The delay for a failed event: the app's `retry_after` when it gave one (bounded by
    /// `max`), else the next backoff step.
    pub fn delay_for(&mut self, retry_after: Option<std::time::Duration>) -> std::time::Duration {
        match retry_after {
            Some(d) => {
                let _ = self.next_delay();
                d.min(self.max)
            }
            None => self.next_delay(),
        }
    }
}
