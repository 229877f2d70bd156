//! Circuit breakers with the semantics of Dapr's (sony/gobreaker): closed → open when the `trip`
//! expression over the counts holds; open → half-open after `timeout`; half-open lets
//! `maxRequests` calls through and closes after that many successes, or opens again on a failure.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The counters a `trip` expression can read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Calls let through in this generation.
    pub requests: u64,
    /// Successful calls.
    pub total_successes: u64,
    /// Failed calls.
    pub total_failures: u64,
    /// Successes in a row.
    pub consecutive_successes: u64,
    /// Failures in a row.
    pub consecutive_failures: u64,
}

impl Counts {
    fn get(&self, name: &str) -> Option<u64> {
        Some(match name {
            "requests" => self.requests,
            "totalSuccesses" => self.total_successes,
            "totalFailures" => self.total_failures,
            "consecutiveSuccesses" => self.consecutive_successes,
            "consecutiveFailures" => self.consecutive_failures,
            _ => return None,
        })
    }
}

/// A parsed `trip` expression: comparisons of the counters with integers, combined with `&&`,
/// `||`, `!` and parentheses (the subset of CEL Dapr's docs use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trip {
    /// `a OP b`.
    Compare(Operand, Op, Operand),
    /// `a && b`.
    And(Box<Trip>, Box<Trip>),
    /// `a || b`.
    Or(Box<Trip>, Box<Trip>),
    /// `!a`.
    Not(Box<Trip>),
    /// `true` / `false`.
    Literal(bool),
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A counter name.
    Counter(String),
    /// An integer.
    Number(u64),
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

const COUNTERS: [&str; 5] = [
    "requests",
    "totalSuccesses",
    "totalFailures",
    "consecutiveSuccesses",
    "consecutiveFailures",
];

impl Trip {
    /// Parse `expr`, e.g. `consecutiveFailures > 5 || totalFailures >= 10`.
    pub fn parse(expr: &str) -> Result<Trip, String> {
        let tokens = tokenize(expr)?;
        let mut p = Parser { tokens, pos: 0 };
        let t = p.or()?;
        if p.pos != p.tokens.len() {
            return Err(format!(
                "unexpected {:?} in trip expression {expr:?}",
                p.tokens[p.pos]
            ));
        }
        Ok(t)
    }

    /// Evaluate against `counts`.
    pub fn eval(&self, c: &Counts) -> bool {
        match self {
            Trip::Literal(b) => *b,
            Trip::Not(t) => !t.eval(c),
            Trip::And(a, b) => a.eval(c) && b.eval(c),
            Trip::Or(a, b) => a.eval(c) || b.eval(c),
            Trip::Compare(a, op, b) => {
                let v = |o: &Operand| match o {
                    Operand::Number(n) => *n,
                    Operand::Counter(name) => c.get(name).unwrap_or(0),
                };
                let (a, b) = (v(a), v(b));
                match op {
                    Op::Gt => a > b,
                    Op::Ge => a >= b,
                    Op::Lt => a < b,
                    Op::Le => a <= b,
                    Op::Eq => a == b,
                    Op::Ne => a != b,
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Number(u64),
    Op(Op),
    And,
    Or,
    Not,
    Open,
    Close,
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let two = b.get(i..i + 2);
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push(Token::Open);
                i += 1;
            }
            b')' => {
                out.push(Token::Close);
                i += 1;
            }
            _ if two == Some(b"&&") => {
                out.push(Token::And);
                i += 2;
            }
            _ if two == Some(b"||") => {
                out.push(Token::Or);
                i += 2;
            }
            _ if two == Some(b">=") => {
                out.push(Token::Op(Op::Ge));
                i += 2;
            }
            _ if two == Some(b"<=") => {
                out.push(Token::Op(Op::Le));
                i += 2;
            }
            _ if two == Some(b"==") => {
                out.push(Token::Op(Op::Eq));
                i += 2;
            }
            _ if two == Some(b"!=") => {
                out.push(Token::Op(Op::Ne));
                i += 2;
            }
            b'>' => {
                out.push(Token::Op(Op::Gt));
                i += 1;
            }
            b'<' => {
                out.push(Token::Op(Op::Lt));
                i += 1;
            }
            b'!' => {
                out.push(Token::Not);
                i += 1;
            }
            b'0'..=b'9' => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let n = s[start..i]
                    .parse()
                    .map_err(|_| format!("number too large in trip expression {s:?}"))?;
                out.push(Token::Number(n));
            }
            c if c.is_ascii_alphabetic() => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                out.push(Token::Ident(s[start..i].to_owned()));
            }
            _ => {
                return Err(format!(
                    "unexpected character {:?} in trip expression {s:?}",
                    c as char
                ));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn or(&mut self) -> Result<Trip, String> {
        let mut left = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.pos += 1;
            left = Trip::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Trip, String> {
        let mut left = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.pos += 1;
            left = Trip::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Trip, String> {
        match self.peek() {
            Some(Token::Not) => {
                self.pos += 1;
                Ok(Trip::Not(Box::new(self.unary()?)))
            }
            Some(Token::Open) => {
                self.pos += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err("missing ) in trip expression".into());
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(Token::Ident(id)) if id == "true" || id == "false" => {
                let b = id == "true";
                self.pos += 1;
                Ok(Trip::Literal(b))
            }
            _ => {
                let a = self.operand()?;
                let op = match self.peek() {
                    Some(Token::Op(op)) => *op,
                    other => return Err(format!("expected a comparison, found {other:?}")),
                };
                self.pos += 1;
                let b = self.operand()?;
                Ok(Trip::Compare(a, op, b))
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.tokens.get(self.pos).cloned() {
            Some(Token::Number(n)) => {
                self.pos += 1;
                Ok(Operand::Number(n))
            }
            Some(Token::Ident(id)) if COUNTERS.contains(&id.as_str()) => {
                self.pos += 1;
                Ok(Operand::Counter(id))
            }
            Some(Token::Ident(id)) => Err(format!(
                "unknown counter {id:?} in trip expression (known: {})",
                COUNTERS.join(", ")
            )),
            other => Err(format!("expected a counter or a number, found {other:?}")),
        }
    }
}

/// The state of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through.
    Closed,
    /// Calls are refused until the timeout passes.
    Open,
    /// A few calls go through to test the backend.
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    state: State,
    counts: Counts,
    /// Closed: when the counts reset (interval > 0). Open: when it turns half-open.
    expiry: Option<Instant>,
}

/// One circuit breaker instance (per policy and component).
#[derive(Debug)]
pub struct Breaker {
    name: String,
    max_requests: u64,
    interval: Duration,
    timeout: Duration,
    trip: Trip,
    inner: Mutex<Inner>,
}

/// Why the breaker refused a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

impl Breaker {
    /// A closed breaker.
    pub fn new(
        name: String,
        max_requests: u64,
        interval: Duration,
        timeout: Duration,
        trip: Trip,
    ) -> Self {
        let expiry = (!interval.is_zero()).then(|| Instant::now() + interval);
        Breaker {
            name,
            max_requests: max_requests.max(1),
            interval,
            timeout: if timeout.is_zero() {
                Duration::from_secs(60)
            } else {
                timeout
            },
            trip,
            inner: Mutex::new(Inner {
                state: State::Closed,
                counts: Counts::default(),
                expiry,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current state (after applying any timeout that has passed).
    pub fn state(&self) -> State {
        let mut g = self.lock();
        self.advance(&mut g, Instant::now());
        g.state
    }

    fn set_state(&self, g: &mut Inner, state: State, now: Instant) {
        if g.state != state {
            tracing::info!(breaker = %self.name, from = ?g.state, to = ?state, "circuit breaker changed state");
        }
        g.state = state;
        g.counts = Counts::default();
        g.expiry = match state {
            State::Closed => (!self.interval.is_zero()).then(|| now + self.interval),
            State::Open => Some(now + self.timeout),
            State::HalfOpen => None,
        };
    }

    fn advance(&self, g: &mut Inner, now: Instant) {
        match g.state {
            State::Closed => {
                if g.expiry.is_some_and(|e| now >= e) {
                    self.set_state(g, State::Closed, now);
                }
            }
            State::Open => {
                if g.expiry.is_some_and(|e| now >= e) {
                    self.set_state(g, State::HalfOpen, now);
                }
            }
            State::HalfOpen => {}
        }
    }

    /// Ask to make a call. `Err` when the breaker is open or half-open with enough calls out.
    pub fn before(&self) -> Result<(), Refused> {
        let mut g = self.lock();
        let now = Instant::now();
        self.advance(&mut g, now);
        match g.state {
            State::Open => return Err(Refused(format!("circuit breaker {} is open", self.name))),
            State::HalfOpen if g.counts.requests >= self.max_requests => {
                return Err(Refused(format!(
                    "circuit breaker {} is half-open and has too many requests",
                    self.name
                )));
            }
            _ => {}
        }
        g.counts.requests += 1;
        Ok(())
    }

    /// Report the result of a call allowed by [`Breaker::before`].
    pub fn after(&self, success: bool) {
        let mut g = self.lock();
        let now = Instant::now();
        self.advance(&mut g, now);
        if success {
            g.counts.total_successes += 1;
            g.counts.consecutive_successes += 1;
            g.counts.consecutive_failures = 0;
            if g.state == State::HalfOpen && g.counts.consecutive_successes >= self.max_requests {
                self.set_state(&mut g, State::Closed, now);
            }
        } else {
            g.counts.total_failures += 1;
            g.counts.consecutive_failures += 1;
            g.counts.consecutive_successes = 0;
            match g.state {
                State::Closed if self.trip.eval(&g.counts) => {
                    self.set_state(&mut g, State::Open, now)
                }
                State::HalfOpen => self.set_state(&mut g, State::Open, now),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trip_expressions_parse_and_evaluate() {
        let t = Trip::parse("consecutiveFailures > 5").unwrap();
        let mut c = Counts {
            consecutive_failures: 5,
            ..Default::default()
        };
        assert!(!t.eval(&c));
        c.consecutive_failures = 6;
        assert!(t.eval(&c));
        let t =
            Trip::parse("(totalFailures >= 3 && requests > 10) || !(consecutiveSuccesses < 100)")
                .unwrap();
        assert!(t.eval(&Counts {
            total_failures: 3,
            requests: 11,
            ..Default::default()
        }));
        assert!(!t.eval(&Counts::default()));
        assert!(Trip::parse("consecutiveFailure > 5").is_err());
        assert!(Trip::parse("consecutiveFailures >").is_err());
        assert!(Trip::parse("consecutiveFailures > 5 )").is_err());
        assert!(Trip::parse("a; drop").is_err());
    }

    #[test]
    fn breaker_opens_half_opens_and_closes() {
        let b = Breaker::new(
            "cb".into(),
            1,
            Duration::ZERO,
            Duration::from_millis(50),
            Trip::parse("consecutiveFailures > 1").unwrap(),
        );
        for _ in 0..2 {
            b.before().unwrap();
            b.after(false);
        }
        assert_eq!(b.state(), State::Open);
        assert!(b.before().is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.state(), State::HalfOpen);
        b.before().unwrap();
        assert!(b.before().is_err(), "half-open lets maxRequests through");
        b.after(true);
        assert_eq!(b.state(), State::Closed);
        // A failure in half-open opens it again.
        for _ in 0..2 {
            b.before().unwrap();
            b.after(false);
        }
        std::thread::sleep(Duration::from_millis(60));
        b.before().unwrap();
        b.after(false);
        assert_eq!(b.state(), State::Open);
    }

    #[test]
    fn interval_resets_closed_counts() {
        let b = Breaker::new(
            "cb".into(),
            1,
            Duration::from_millis(30),
            Duration::from_secs(60),
            Trip::parse("totalFailures > 1").unwrap(),
        );
        b.before().unwrap();
        b.after(false);
        std::thread::sleep(Duration::from_millis(40));
        b.before().unwrap();
        b.after(false);
        assert_eq!(b.state(), State::Closed, "the first failure was forgotten");
    }
}
