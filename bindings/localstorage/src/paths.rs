//! `rootPath` checks and the confinement of `fileName` under it.

use std::io;
use std::path::{Component, Path, PathBuf};

use bindery_core::BindingError;

/// Where a root folder must never be: kernel interfaces, boot files and mounted secrets.
pub(crate) const DISALLOWED_ROOTS: &[&str] = &["/proc", "/sys", "/boot", "/var/run/secrets"];

/// `path` made absolute against the working directory and cleaned lexically (`.` dropped, `..`
/// taking off the previous component), as Go's `filepath.Clean` + `filepath.Join(cwd, ..)`.
/// No file system access beyond reading the working directory.
pub(crate) fn absolute_clean(path: &str) -> io::Result<PathBuf> {
    let abs = std::path::absolute(path)?;
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// Whether `path` is one of `roots` or lies under one of them.
pub(crate) fn is_disallowed(path: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|r| path.starts_with(r))
}

/// The disallowed roots as written and, where they are symlinks (`/var/run` → `/run`), as
/// resolved, so that a root path reaching them through another name is refused too.
pub(crate) fn disallowed_roots_resolved() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = DISALLOWED_ROOTS.iter().map(PathBuf::from).collect();
    for r in DISALLOWED_ROOTS {
        if let Ok(resolved) = std::fs::canonicalize(r)
            && !roots.contains(&resolved)
        {
            roots.push(resolved);
        }
        // A secrets mount may not exist yet while its parent is a symlink (`/var/run`).
        let p = Path::new(r);
        if let (Some(parent), Some(name)) = (p.parent(), p.file_name())
            && let Ok(parent) = std::fs::canonicalize(parent)
        {
            let candidate = parent.join(name);
            if !roots.contains(&candidate) {
                roots.push(candidate);
            }
        }
    }
    roots
}

/// `rootPath` resolved as Dapr does: absolute, cleaned, symlinks of its longest existing
/// prefix resolved. Refuses an existing file (or a file on the way to it).
pub(crate) fn resolve_root(raw: &str) -> Result<PathBuf, BindingError> {
    let abs = absolute_clean(raw).map_err(|e| {
        BindingError::config(
            "rootPath",
            format!("failed to obtain current working directory: {e}"),
        )
    })?;
    let mut existing = abs.clone();
    loop {
        match std::fs::metadata(&existing) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(BindingError::config(
                    "rootPath",
                    format!(
                        "property rootPath represents a file and not a directory: {}",
                        existing.display()
                    ),
                ));
            }
            // A file on the way (`file/below`) shows up as ENOTDIR; walking up finds the file.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                if !existing.pop() {
                    break;
                }
            }
            Err(e) => {
                return Err(BindingError::config(
                    "rootPath",
                    format!("error getting stat for path {}: {e}", existing.display()),
                ));
            }
        }
    }
    let resolved = std::fs::canonicalize(&existing).map_err(|e| {
        BindingError::config(
            "rootPath",
            format!("failed to evaluate symlinks in rootPath: {e}"),
        )
    })?;
    let rest = abs.strip_prefix(&existing).unwrap_or(Path::new(""));
    Ok(resolved.join(rest))
}

/// A `fileName` confined to the root: the path to use and its cleaned relative form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Confined {
    /// The absolute path, with symlinks inside the root resolved.
    pub(crate) abs: PathBuf,
    /// The path relative to the root, `/`-separated; empty for the root itself.
    pub(crate) rel: String,
}

fn outside(file_name: &str, why: &str) -> BindingError {
    BindingError::invalid_request(format!("invalid fileName {file_name:?}: {why}"))
}

/// Join `file_name` under `root` (a canonical directory) so that nothing escapes it: absolute
/// names, `..` climbing above the root and symlinks pointing outside are refused.
///
/// Symlinks are checked component by component up to the first one that does not exist yet
/// (what follows will be created by the binding itself). A dangling symlink is refused, since
/// writing through it would create its target wherever it points.
pub(crate) fn confine(root: &Path, file_name: &str) -> Result<Confined, BindingError> {
    if file_name.contains('\0') {
        return Err(outside(file_name, "it contains a NUL byte"));
    }
    if file_name.starts_with('/') {
        return Err(outside(
            file_name,
            "absolute paths are not allowed; give a path relative to rootPath",
        ));
    }
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in Path::new(file_name).components() {
        match c {
            Component::Normal(n) => parts.push(n),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(outside(file_name, "it points outside rootPath"));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(outside(
                    file_name,
                    "absolute paths are not allowed; give a path relative to rootPath",
                ));
            }
        }
    }
    let rel = parts
        .iter()
        .map(|p| p.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");

    let mut cur = root.to_path_buf();
    let mut rest = parts.iter();
    for part in rest.by_ref() {
        cur.push(part);
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(&cur) {
                Ok(target) if target.starts_with(root) => cur = target,
                Ok(_) => {
                    return Err(outside(
                        file_name,
                        "it goes through a symlink that points outside rootPath",
                    ));
                }
                Err(_) => {
                    return Err(outside(
                        file_name,
                        "it goes through a symlink whose target does not exist",
                    ));
                }
            },
            Ok(_) => {}
            // Not there yet (or not reachable): nothing below it can be a symlink of anyone
            // else's making; the operation reports its own error if it cannot proceed.
            Err(_) => break,
        }
    }
    for part in rest {
        cur.push(part);
    }
    Ok(Confined { abs: cur, rel })
}
