//! tokio-postgres errors → [`BindingError`], with PostgreSQL's own words and SQLSTATE.

use bindery_core::BindingError;
use tokio_postgres::error::{DbError, SqlState};

/// `ERROR: relation "x" does not exist (SQLSTATE 42P01)`, pgx's format, plus PostgreSQL's
/// detail and hint when it gives them.
pub(crate) fn db_error_text(db: &DbError) -> String {
    let mut s = format!(
        "{}: {} (SQLSTATE {})",
        db.severity(),
        db.message(),
        db.code().code()
    );
    if let Some(detail) = db.detail() {
        s.push_str("; DETAIL: ");
        s.push_str(detail);
    }
    if let Some(hint) = db.hint() {
        s.push_str("; HINT: ");
        s.push_str(hint);
    }
    s
}

/// The error and its causes, `: `-joined (tokio-postgres keeps the detail in the sources).
fn chain(e: &tokio_postgres::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}

/// Whether a SQLSTATE says the server (not the statement) is the problem: connection
/// exceptions, shutdown, start-up, too many connections.
fn server_unavailable(code: &SqlState) -> bool {
    let c = code.code();
    c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03" | "57P05" | "53300" | "53000")
}

/// Map an error met while talking to the server at `at` (`host:port`, no credentials).
pub(crate) fn map(e: &tokio_postgres::Error, at: &str) -> BindingError {
    if let Some(db) = e.as_db_error() {
        let text = db_error_text(db);
        let code = db.code();
        if server_unavailable(code) {
            return BindingError::unavailable(format!("postgres at {at} is unavailable: {text}"));
        }
        if *code == SqlState::QUERY_CANCELED {
            return BindingError::timeout(format!("error executing query: {text}"));
        }
        if code.code().starts_with("28") {
            return BindingError::rejected(format!("postgres at {at} refused the login: {text}"));
        }
        return BindingError::rejected(format!("error executing query: {text}"));
    }
    let text = chain(e);
    if e.is_closed()
        || text.starts_with("error connecting to server")
        || text.starts_with("error communicating with the server")
        || text.starts_with("timeout waiting for server")
        || (text.starts_with("error performing TLS handshake") && !text.contains("certificate"))
    {
        return BindingError::unavailable(format!("postgres at {at} is unavailable: {text}"));
    }
    if text.starts_with("error performing TLS handshake")
        || text.starts_with("authentication error")
    {
        return BindingError::rejected(format!("postgres at {at} refused the connection: {text}"));
    }
    if text.starts_with("error serializing parameter") || text.starts_with("expected ") {
        return BindingError::invalid_request(format!("error executing query: {text}"));
    }
    BindingError::internal(format!("error executing query: {text}"))
}

/// Whether a cached prepared statement went stale (the table changed, or the session lost its
/// statements): drop it and prepare again. The statement did not run.
pub(crate) fn stale_statement(e: &tokio_postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => {
            (*db.code() == SqlState::FEATURE_NOT_SUPPORTED
                && db
                    .message()
                    .contains("cached plan must not change result type"))
                || *db.code() == SqlState::INVALID_SQL_STATEMENT_NAME
        }
        None => false,
    }
}
