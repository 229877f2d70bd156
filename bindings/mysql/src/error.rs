//! mysql_async errors → [`BindingError`], with the server's own code and message.

use bindery_core::BindingError;
use mysql_async::{DriverError, Error};

/// Server error codes that mean the server (not the statement) is the problem: too many
/// connections, shutting down, connection killed, lost, or refused while starting.
const SERVER_UNAVAILABLE: &[u16] = &[
    1040, 1053, 1077, 1152, 1158, 1159, 1160, 1161, 1927, 2002, 2003, 2006, 2013,
];

/// go-sql-driver's format: `Error 1146 (42S02): Table 'test.nope' doesn't exist`.
pub(crate) fn server_text(code: u16, state: &str, message: &str) -> String {
    if state.is_empty() {
        format!("Error {code}: {message}")
    } else {
        format!("Error {code} ({state}): {message}")
    }
}

/// Map an error met while talking to the server at `at` (`host:port`, no credentials).
pub(crate) fn map(e: &Error, at: &str) -> BindingError {
    match e {
        Error::Server(s) => {
            let text = server_text(s.code, &s.state, &s.message);
            if SERVER_UNAVAILABLE.contains(&s.code) {
                BindingError::unavailable(format!("mysql at {at} is unavailable: {text}"))
            } else if matches!(s.code, 1044 | 1045 | 1698) {
                BindingError::rejected(format!("mysql at {at} refused the login: {text}"))
            } else {
                BindingError::rejected(format!("error executing query: {text}"))
            }
        }
        Error::Io(io) => {
            let text = io.to_string();
            if text.to_ascii_lowercase().contains("certificate") {
                BindingError::rejected(format!("mysql at {at} refused the connection: {text}"))
            } else {
                BindingError::unavailable(format!("mysql at {at} is unavailable: {text}"))
            }
        }
        Error::Driver(DriverError::ConnectionClosed) => {
            BindingError::unavailable(format!("mysql at {at} is unavailable: connection closed"))
        }
        Error::Driver(DriverError::PoolDisconnected) => BindingError::closed(),
        Error::Driver(DriverError::StmtParamsMismatch { required, supplied }) => {
            BindingError::invalid_request(format!(
                "the statement takes {required} parameter(s) but params holds {supplied}"
            ))
        }
        Error::Driver(d) => BindingError::internal(format!("error executing query: {d}")),
        Error::Url(u) => BindingError::config("url", format!("invalid DSN: {u}")),
        Error::Other(o) => BindingError::internal(format!("error executing query: {o}")),
    }
}

/// Map an error met while getting a connection: a driver error there means the server and
/// the client could not agree (TLS, authentication plugin), not a broken statement.
pub(crate) fn map_connect(e: &Error, at: &str) -> BindingError {
    match e {
        Error::Driver(DriverError::PoolDisconnected) => BindingError::closed(),
        Error::Driver(d) => {
            BindingError::rejected(format!("mysql at {at} refused the connection: {d}"))
        }
        other => map(other, at),
    }
}
