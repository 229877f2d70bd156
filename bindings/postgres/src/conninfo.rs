//! libpq connection strings: the `key=value` form and the `postgres://` URL form.
//!
//! Both parse into the same ordered list of `(key, value)` pairs, keys lower-cased and
//! `database` folded into `dbname` (pgx accepts both). Error messages never repeat values: a
//! password with a stray quote must not end up in a log line.

use percent_encoding::percent_decode_str;

/// A parsed connection string: `(key, value)` pairs in the order written; a later duplicate
/// replaces an earlier one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ConnInfo {
    pairs: Vec<(String, String)>,
}

impl ConnInfo {
    /// Parse either form. An empty string gives no pairs.
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        let trimmed = s.trim();
        if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
            parse_url(trimmed)
        } else {
            parse_key_values(trimmed)
        }
    }

    /// Set `key` (normalised) to `value`, replacing an earlier value.
    pub(crate) fn set(&mut self, key: &str, value: impl Into<String>) {
        let key = normalise_key(key);
        let value = value.into();
        if let Some(slot) = self.pairs.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.pairs.push((key, value));
        }
    }

    /// The value of `key` (normalised).
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        let key = normalise_key(key);
        self.pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn normalise_key(key: &str) -> String {
    let key = key.trim().to_ascii_lowercase();
    if key == "database" {
        "dbname".to_owned()
    } else {
        key
    }
}

/// `key=value key2='quoted \' value'`, spaces allowed around `=`.
fn parse_key_values(s: &str) -> Result<ConnInfo, String> {
    let mut info = ConnInfo::default();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let key_start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' {
            i += 1;
        }
        let key: String = chars[key_start..i].iter().collect();
        skip_ws(&mut i);
        if i >= chars.len() || chars[i] != '=' {
            return Err(format!(
                "invalid connection string: expected key=value at character {}",
                key_start + 1
            ));
        }
        if key.is_empty() {
            return Err(format!(
                "invalid connection string: a value without a key at character {}",
                key_start + 1
            ));
        }
        i += 1; // '='
        skip_ws(&mut i);
        let mut value = String::new();
        if i < chars.len() && chars[i] == '\'' {
            i += 1;
            let mut closed = false;
            while i < chars.len() {
                match chars[i] {
                    '\\' if i + 1 < chars.len() => {
                        value.push(chars[i + 1]);
                        i += 2;
                    }
                    '\'' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
            if !closed {
                return Err(format!(
                    "invalid connection string: unterminated quoted value for {key}"
                ));
            }
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    value.push(chars[i + 1]);
                    i += 2;
                } else {
                    value.push(chars[i]);
                    i += 1;
                }
            }
        }
        info.set(&key, value);
    }
    Ok(info)
}

fn decode(part: &str, what: &str) -> Result<String, String> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            format!("invalid connection string: the {what} is not valid UTF-8 once decoded")
        })
}

/// `postgres[ql]://[user[:password]@][host[:port][,host[:port]...]][/dbname][?key=value&...]`.
fn parse_url(s: &str) -> Result<ConnInfo, String> {
    let mut info = ConnInfo::default();
    let rest = s
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| "invalid connection string: not a postgres:// URL".to_owned())?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    // The user info ends at the last '@', so a password may contain '@' when not encoded.
    let hosts = match authority.rfind('@') {
        Some(i) => {
            let userinfo = &authority[..i];
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    if !user.is_empty() {
                        info.set("user", decode(user, "user name")?);
                    }
                    info.set("password", decode(password, "password")?);
                }
                None if !userinfo.is_empty() => info.set("user", decode(userinfo, "user name")?),
                None => {}
            }
            &authority[i + 1..]
        }
        None => authority,
    };
    if !hosts.is_empty() {
        let mut host_list = Vec::new();
        let mut port_list = Vec::new();
        for spec in hosts.split(',') {
            let (host, port) = split_host_port(spec)?;
            host_list.push(decode(host, "host")?);
            port_list.push(port.map(str::to_owned));
        }
        if host_list.iter().any(|h| !h.is_empty()) {
            info.set("host", host_list.join(","));
        }
        if port_list.iter().any(Option::is_some) {
            // A host without a port gets the default, as libpq does.
            let ports: Vec<String> = port_list
                .into_iter()
                .map(|p| p.unwrap_or_else(|| "5432".to_owned()))
                .collect();
            info.set("port", ports.join(","));
        }
    }
    if let Some(db) = path.filter(|p| !p.is_empty()) {
        info.set("dbname", decode(db, "database name")?);
    }
    if let Some(query) = query {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                "invalid connection string: a URL parameter without '='".to_owned()
            })?;
            let k = decode(&k.replace('+', " "), "parameter name")?;
            let v = decode(&v.replace('+', " "), "parameter value")?;
            info.set(&k, v);
        }
    }
    Ok(info)
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(spec: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = spec.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| "invalid connection string: unterminated [IPv6] host".to_owned())?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        return match after.strip_prefix(':') {
            Some(port) if !port.is_empty() => Ok((host, Some(port))),
            Some(_) => Ok((host, None)),
            None if after.is_empty() => Ok((host, None)),
            None => Err("invalid connection string: unexpected text after [IPv6] host".to_owned()),
        };
    }
    match spec.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() => Ok((host, Some(port))),
        Some((host, _)) => Ok((host, None)),
        None => Ok((spec, None)),
    }
}
