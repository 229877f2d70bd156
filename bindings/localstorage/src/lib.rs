//! `bindings.localstorage`: an output binding that keeps files under a root folder.
//!
//! Component metadata:
//!
//! | name | | |
//! |---|---|---|
//! | `rootPath` | required | the folder the files live in |
//!
//! `rootPath` is made absolute against the working directory, cleaned, and its symlinks are
//! resolved. It must not be, or be under, `/proc`, `/sys`, `/boot` or `/var/run/secrets` (nor
//! where those resolve to, e.g. `/run/secrets`), and must not be a file. It is created (like
//! `mkdir -p`) when the component starts.
//!
//! Operations, with the request metadata `fileName` (a path relative to `rootPath`):
//!
//! * `create`: writes the data to `fileName` (a fresh UUID when absent), creating parent
//!   folders and replacing an existing file. Answers `{"fileName":"<path relative to rootPath>"}`.
//! * `get`: answers the file's bytes; a missing file is `file not found: <absolute path>`.
//! * `delete`: removes the file; answers nothing (HTTP 204).
//! * `list`: answers a JSON array of the absolute paths of every regular file under `fileName`
//!   (or under `rootPath` when absent), recursively, in lexical order; `null` when there is none.
//!   A `fileName` that is not a folder is an error.
//!
//! `fileName` cannot leave `rootPath`: an absolute name, `..` climbing above the root, or a
//! path through a symlink that points outside the root (or nowhere) is refused with an
//! invalid-request error naming the `fileName`. Dapr instead clamps such names into the root.
//!
//! ## What `create` writes
//!
//! Over HTTP the runtime hands bindings the request's `data` as JSON text, so a string arrives
//! with its quotes. `create` first removes them: when the data is a JSON string, its content is
//! written. Then, as Dapr does, **data that is valid base64 is decoded** and the decoded bytes
//! are written. Dapr applies this to anything Go's decoder accepts, which catches plain text by
//! accident (`abcd` is stored as three binary bytes). bindery keeps the rule for compatibility
//! (apps send binary files this way) but narrows it to *standard, padded* base64 (RFC 4648
//! alphabet with `+` and `/`, length a multiple of four, `=` padding, no line breaks, canonical
//! trailing bits). Text that is not exactly that is written as it is. Text that is exactly that
//! (`abcd`, `test`, `1234`) is still decoded; to store such text verbatim, send it base64-encoded.
//!
//! ```
//! let mut registry = bindery_core::Registry::new();
//! bindery_binding_localstorage::register(&mut registry);
//! let factory = registry.get("bindings.localstorage").unwrap();
//! let md = bindery_core::Metadata::from_pairs([("rootPath", "/tmp/files")]);
//! assert!(factory.validate(&md).is_ok());
//! let md = bindery_core::Metadata::from_pairs([("rootPath", "/proc/self")]);
//! assert!(factory.validate(&md).is_err());
//! ```

mod paths;

use std::borrow::Cow;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use bindery_core::util::unquote_json_string;
use bindery_core::{
    BindingError, BindingFactory, BindingSpec, ComponentContext, Direction, InvokeRequest,
    InvokeResponse, Metadata, MetadataField, OutputBinding, Registry, async_trait,
};
use bytes::Bytes;
use tracing::debug;

use crate::paths::{Confined, absolute_clean, confine, is_disallowed, resolve_root};

/// The request metadata key naming the file.
pub const FILE_NAME_KEY: &str = "fileName";

const OPERATIONS: &[&str] = &["create", "get", "list", "delete"];

static METADATA: &[MetadataField] = &[MetadataField::required(
    "rootPath",
    "the folder the files are kept in; created when missing",
)];

static SPEC: BindingSpec = BindingSpec {
    type_name: "bindings.localstorage",
    aliases: &[],
    direction: Direction::Output,
    operations: OPERATIONS,
    metadata: METADATA,
    summary: "Creates, reads, lists and deletes files under a root folder",
};

/// Add `bindings.localstorage` to `registry`.
pub fn register(registry: &mut Registry) {
    registry.register(LocalStorageFactory);
}

/// Builds `bindings.localstorage` output bindings.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalStorageFactory;

/// `rootPath` as written, checked lexically (no I/O).
fn parse_root(md: &Metadata) -> Result<String, Vec<BindingError>> {
    let r = md.reader();
    let root = r.required("rootPath", "property rootPath must not be empty");
    if !root.is_empty() {
        match absolute_clean(&root) {
            Ok(abs) => {
                let roots: Vec<PathBuf> =
                    paths::DISALLOWED_ROOTS.iter().map(PathBuf::from).collect();
                if is_disallowed(&abs, &roots) {
                    r.error("rootPath", disallowed_message(&abs));
                }
            }
            Err(e) => r.error(
                "rootPath",
                format!("failed to obtain current working directory: {e}"),
            ),
        }
    }
    r.finish()?;
    Ok(root)
}

fn disallowed_message(path: &Path) -> String {
    format!(
        "property rootPath points to a disallowed location: {} (not allowed: {})",
        path.display(),
        paths::DISALLOWED_ROOTS.join(", ")
    )
}

#[async_trait]
impl BindingFactory for LocalStorageFactory {
    fn spec(&self) -> &'static BindingSpec {
        &SPEC
    }

    fn validate(&self, metadata: &Metadata) -> Result<(), Vec<BindingError>> {
        parse_root(metadata).map(|_| ())
    }

    async fn build_output(
        &self,
        ctx: &ComponentContext,
    ) -> Result<Box<dyn OutputBinding>, BindingError> {
        let raw = parse_root(&ctx.metadata).map_err(|errs| {
            errs.into_iter()
                .next()
                .unwrap_or_else(|| BindingError::config("rootPath", "invalid rootPath"))
        })?;
        let root = blocking(move || prepare_root(&raw)).await?;
        debug!(binding = %ctx.name, root = %root.display(), "local storage ready");
        ctx.health.connected();
        Ok(Box::new(LocalStorage {
            root: Arc::new(root),
            closed: AtomicBool::new(false),
        }))
    }
}

/// Resolve, check and create the root; answer its canonical path.
fn prepare_root(raw: &str) -> Result<PathBuf, BindingError> {
    let resolved = resolve_root(raw)?;
    let disallowed = paths::disallowed_roots_resolved();
    if is_disallowed(&resolved, &disallowed) {
        return Err(BindingError::config(
            "rootPath",
            disallowed_message(&resolved),
        ));
    }
    std::fs::create_dir_all(&resolved).map_err(|e| {
        BindingError::config(
            "rootPath",
            format!(
                "unable to create directory specified by 'rootPath' {}: {e}",
                resolved.display()
            ),
        )
    })?;
    let root = std::fs::canonicalize(&resolved).map_err(|e| {
        BindingError::config(
            "rootPath",
            format!("failed to evaluate symlinks in rootPath: {e}"),
        )
    })?;
    // Something may have been swapped in between the checks and the creation.
    if is_disallowed(&root, &disallowed) {
        return Err(BindingError::config("rootPath", disallowed_message(&root)));
    }
    if !root.is_dir() {
        return Err(BindingError::config(
            "rootPath",
            format!(
                "property rootPath represents a file and not a directory: {}",
                root.display()
            ),
        ));
    }
    Ok(root)
}

/// Run a short synchronous file-system step off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BindingError> + Send + 'static,
) -> Result<T, BindingError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BindingError::internal(format!("file system task failed: {e}")))?
}

/// A running `bindings.localstorage` component.
struct LocalStorage {
    /// Canonical, existing directory.
    root: Arc<PathBuf>,
    closed: AtomicBool,
}

impl LocalStorage {
    /// Confine `file_name` under the root (symlink checks touch the disk, so off the workers).
    async fn confine(&self, file_name: &str) -> Result<Confined, BindingError> {
        let root = Arc::clone(&self.root);
        let name = file_name.to_owned();
        blocking(move || confine(&root, &name)).await
    }

    /// Like [`LocalStorage::confine`], but the name must designate something below the root.
    async fn confine_file(&self, file_name: Option<&str>) -> Result<Confined, BindingError> {
        let Some(name) = file_name.filter(|n| !n.is_empty()) else {
            return Err(BindingError::invalid_request(
                "required metadata fileName is missing",
            ));
        };
        let c = self.confine(name).await?;
        if c.rel.is_empty() {
            return Err(BindingError::invalid_request(format!(
                "invalid fileName {name:?}: it names rootPath itself, not a file"
            )));
        }
        Ok(c)
    }

    async fn create(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        let name = match req.metadata.get(FILE_NAME_KEY).filter(|n| !n.is_empty()) {
            Some(n) => n.clone(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let target = self.confine_file(Some(&name)).await?;
        let data = decode_data(&req.data);
        if let Some(parent) = target.abs.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                io_error(
                    &format!("error creating directory {}", parent.display()),
                    &e,
                )
            })?;
        }
        let len = data.len();
        tokio::fs::write(&target.abs, data)
            .await
            .map_err(|e| io_error(&format!("error writing file {}", target.abs.display()), &e))?;
        debug!(file = %target.abs.display(), bytes = len, "wrote file");
        let body = serde_json::json!({ "fileName": target.rel }).to_string();
        Ok(Some(InvokeResponse::data(body)))
    }

    async fn get(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        let target = self
            .confine_file(req.metadata.get(FILE_NAME_KEY).map(String::as_str))
            .await?;
        match tokio::fs::read(&target.abs).await {
            Ok(bytes) => Ok(Some(InvokeResponse::data(bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(BindingError::not_found(format!(
                "file not found: {}",
                target.abs.display()
            ))),
            Err(e) => Err(io_error(
                &format!("error reading file {}", target.abs.display()),
                &e,
            )),
        }
    }

    async fn delete(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        let target = self
            .confine_file(req.metadata.get(FILE_NAME_KEY).map(String::as_str))
            .await?;
        match tokio::fs::remove_file(&target.abs).await {
            Ok(()) => {
                debug!(file = %target.abs.display(), "removed file");
                Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(BindingError::not_found(format!(
                "file not found: {}",
                target.abs.display()
            ))),
            Err(e) => Err(io_error(
                &format!("error deleting file {}", target.abs.display()),
                &e,
            )),
        }
    }

    async fn list(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        let name = req
            .metadata
            .get(FILE_NAME_KEY)
            .map(String::as_str)
            .unwrap_or("");
        let target = self.confine(name).await?;
        let meta = tokio::fs::metadata(&target.abs).await.map_err(|e| {
            let context = format!("error getting stats for path {}", target.abs.display());
            io_error(&context, &e)
        })?;
        if !meta.is_dir() {
            return Err(BindingError::invalid_request(format!(
                "unable to list files as the file specified is not a directory: {}",
                target.abs.display()
            )));
        }
        let files = walk(&target.abs).await.map_err(|e| {
            io_error(
                &format!(
                    "error listing files in the directory {}",
                    target.abs.display()
                ),
                &e,
            )
        })?;
        let body = if files.is_empty() {
            "null".to_owned()
        } else {
            serde_json::Value::from(files).to_string()
        };
        Ok(Some(InvokeResponse::data(body)))
    }
}

#[async_trait]
impl OutputBinding for LocalStorage {
    fn operations(&self) -> &[&'static str] {
        OPERATIONS
    }

    async fn invoke(&self, req: InvokeRequest) -> Result<Option<InvokeResponse>, BindingError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(BindingError::closed());
        }
        match req.operation.as_str() {
            "create" => self.create(req).await,
            "get" => self.get(req).await,
            "delete" => self.delete(req).await,
            "list" => self.list(req).await,
            other => Err(BindingError::unsupported(format!(
                "unsupported operation {other}"
            ))),
        }
    }
    async fn close(&self) -> Result<(), BindingError> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

/// What `create` writes: a JSON string unquoted, then standard padded base64 decoded.
/// Shares `data`'s buffer when nothing changes, so the common case copies nothing (and
/// `tokio::fs::write` takes `Bytes` without copying either).
fn decode_data(data: &Bytes) -> Bytes {
    let text = match unquote_json_string(data) {
        Cow::Borrowed(_) => data.clone(),
        Cow::Owned(unquoted) => Bytes::from(unquoted),
    };
    if !is_padded_base64_shape(&text) {
        return text;
    }
    // STANDARD: the `+/` alphabet, `=` padding required, canonical trailing bits, no
    // whitespace. Narrower than Go's StdEncoding on purpose; see the crate docs.
    match base64::engine::general_purpose::STANDARD.decode(&text) {
        Ok(decoded) => Bytes::from(decoded),
        Err(_) => text,
    }
}

/// A cheap scan before decoding, so large payloads that are not base64 cost no allocation:
/// non-empty, a multiple of four long, the standard alphabet, at most two `=` at the end.
fn is_padded_base64_shape(text: &[u8]) -> bool {
    if text.is_empty() || !text.len().is_multiple_of(4) {
        return false;
    }
    let body = text
        .strip_suffix(b"==")
        .or_else(|| text.strip_suffix(b"="))
        .unwrap_or(text);
    body.iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// Every regular file under `dir`, recursively, depth first in lexical order (as Go's
/// `filepath.Walk`). Symlinks are neither listed nor followed.
async fn walk(dir: &Path) -> io::Result<Vec<String>> {
    let mut files = Vec::new();
    // A stack of folders still to read, each with its remaining entries in reverse order so
    // that `pop` yields them in lexical order.
    let mut stack: Vec<Vec<(PathBuf, std::fs::FileType)>> = vec![read_sorted(dir).await?];
    while let Some(entries) = stack.last_mut() {
        let Some((path, kind)) = entries.pop() else {
            stack.pop();
            continue;
        };
        if kind.is_dir() {
            stack.push(read_sorted(&path).await?);
        } else if kind.is_file() {
            files.push(path.to_string_lossy().into_owned());
        }
    }
    Ok(files)
}

/// The entries of `dir`, sorted by name, reversed.
async fn read_sorted(dir: &Path) -> io::Result<Vec<(PathBuf, std::fs::FileType)>> {
    let mut rd = tokio::fs::read_dir(dir).await?;
    let mut entries = Vec::new();
    while let Some(e) = rd.next_entry().await? {
        entries.push((e.path(), e.file_type().await?));
    }
    entries.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(entries)
}

/// An I/O failure, kind chosen by cause, with `context` (paths only, never file contents).
fn io_error(context: &str, e: &io::Error) -> BindingError {
    let message = format!("{context}: {e}");
    match e.kind() {
        io::ErrorKind::NotFound => BindingError::not_found(message),
        io::ErrorKind::IsADirectory
        | io::ErrorKind::NotADirectory
        | io::ErrorKind::AlreadyExists
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::InvalidFilename => BindingError::invalid_request(message),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
            BindingError::rejected(message)
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            BindingError::unavailable(message)
        }
        _ => BindingError::internal(message),
    }
}

#[cfg(test)]
mod tests;
