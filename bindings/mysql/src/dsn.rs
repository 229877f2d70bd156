//! Data source names: go-sql-driver's `user:pass@tcp(host:3306)/db?k=v` form (what Dapr
//! users write) and `mysql://user:pass@host:3306/db?k=v` URLs. Both give a [`Dsn`]; the
//! parameters follow go-sql-driver's meaning in both forms.
//!
//! Error messages never repeat the string: it may hold a password.

use percent_encoding::percent_decode_str;

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Address {
    /// `host`, `port`.
    Tcp(String, u16),
    /// A Unix socket path.
    Unix(String),
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(h, p) if h.contains(':') => write!(f, "[{h}]:{p}"),
            Address::Tcp(h, p) => write!(f, "{h}:{p}"),
            Address::Unix(path) => f.write_str(path),
        }
    }
}

/// A parsed DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dsn {
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    pub(crate) address: Address,
    pub(crate) database: Option<String>,
    /// `key=value` parameters, unescaped, in order.
    pub(crate) params: Vec<(String, String)>,
}

const DEFAULT_PORT: u16 = 3306;

impl Dsn {
    /// Parse either form.
    pub(crate) fn parse(s: &str) -> Result<Dsn, String> {
        let s = s.trim();
        if let Some(rest) = s
            .strip_prefix("mysql://")
            .or_else(|| s.strip_prefix("mariadb://"))
        {
            parse_url(rest)
        } else {
            parse_go(s)
        }
    }
}

fn unescape(s: &str, what: &str) -> Result<String, String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| format!("invalid DSN: the {what} is not valid UTF-8 once decoded"))
}

fn parse_params(query: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| "invalid DSN: a parameter without '='".to_owned())?;
        // go-sql-driver uses url.QueryUnescape: '+' is a space.
        let v = unescape(&v.replace('+', " "), "parameter value")?;
        if let Some(slot) = out.iter_mut().find(|(key, _)| key == k) {
            slot.1 = v;
        } else {
            out.push((k.to_owned(), v));
        }
    }
    Ok(out)
}

fn tcp(addr: &str) -> Result<Address, String> {
    if addr.is_empty() {
        return Ok(Address::Tcp("127.0.0.1".into(), DEFAULT_PORT));
    }
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| "invalid DSN: unterminated [IPv6] address".to_owned())?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err("invalid DSN: unexpected text after [IPv6] address".into()),
        };
        (&rest[..end], port)
    } else {
        match addr.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (addr, None),
        }
    };
    let port = match port {
        None | Some("") => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| "invalid DSN: the port is not a number".to_owned())?,
    };
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    Ok(Address::Tcp(host.to_owned(), port))
}

/// `[user[:password]@][net[(addr)]]/dbname[?params]`, split as go-sql-driver's `ParseDSN`
/// does: the last '/' ends the address, the last '@' before it ends the user info, the first
/// ':' in that splits user and password (so a password may hold ':' and '@').
fn parse_go(s: &str) -> Result<Dsn, String> {
    let slash = s.rfind('/').ok_or_else(|| {
        "invalid DSN: missing the slash separating the database name (user:pass@tcp(host:3306)/db)"
            .to_owned()
    })?;
    let (left, right) = (&s[..slash], &s[slash + 1..]);
    let (userinfo, netaddr) = match left.rfind('@') {
        Some(at) => (Some(&left[..at]), &left[at + 1..]),
        None => (None, left),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (Some(user.to_owned()), Some(pass.to_owned())),
            None => (Some(u.to_owned()), None),
        },
    };
    let (net, addr) = match netaddr.find('(') {
        Some(open) => {
            let inner = netaddr[open + 1..].strip_suffix(')').ok_or_else(|| {
                "invalid DSN: the network address is not terminated (missing closing brace)"
                    .to_owned()
            })?;
            (&netaddr[..open], inner)
        }
        None => (netaddr, ""),
    };
    let address = match net {
        "" | "tcp" | "tcp4" | "tcp6" => tcp(addr)?,
        "unix" => Address::Unix(if addr.is_empty() {
            "/tmp/mysql.sock".to_owned()
        } else {
            addr.to_owned()
        }),
        _ => return Err("invalid DSN: the network must be tcp or unix".into()),
    };
    let (db, query) = match right.split_once('?') {
        Some((db, q)) => (db, Some(q)),
        None => (right, None),
    };
    Ok(Dsn {
        user: user.filter(|u| !u.is_empty()),
        password,
        address,
        database: Some(unescape(db, "database name")?).filter(|d| !d.is_empty()),
        params: match query {
            Some(q) => parse_params(q)?,
            None => Vec::new(),
        },
    })
}

/// `user:pass@host:port/db?params` (after `mysql://`), components percent-encoded.
fn parse_url(rest: &str) -> Result<Dsn, String> {
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, db) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let (user, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (
                Some(unescape(user, "user name")?),
                Some(unescape(pass, "password")?),
            ),
            None => (Some(unescape(u, "user name")?), None),
        },
    };
    Ok(Dsn {
        user: user.filter(|u| !u.is_empty()),
        password,
        address: tcp(&unescape(hostport, "host")?)?,
        database: match db {
            Some(d) if !d.is_empty() => Some(unescape(d, "database name")?),
            _ => None,
        },
        params: match query {
            Some(q) => parse_params(q)?,
            None => Vec::new(),
        },
    })
}
