//! Hot reload: watch the resources paths and apply added, changed and removed component and
//! resiliency files while bindery runs. An invalid edit is reported and leaves the running
//! version in place.

use std::sync::Arc;
use std::time::Duration;

use bindery_core::Registry;
use notify::{RecursiveMode, Watcher};
use tokio_util::sync::CancellationToken;

use crate::loader::{LoadOptions, load};
use crate::runtime::Runtime;

/// How long the files must be quiet before a reload: editors write in several steps.
const SETTLE: Duration = Duration::from_millis(300);

/// Watch `options.paths` until `stop` fires, reloading on every change. Returns an error when
/// the paths cannot be watched at all.
pub async fn watch(
    runtime: Arc<Runtime>,
    options: LoadOptions,
    registry: Registry,
    stop: CancellationToken,
) -> Result<(), String> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(e) = event
            && !e.kind.is_access()
        {
            let _ = tx.send(());
        }
    })
    .map_err(|e| format!("cannot watch the resources paths: {e}"))?;
    for path in &options.paths {
        watcher
            .watch(path, RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", path.display()))?;
    }
    tracing::info!(paths = ?options.paths, "watching the resources paths for changes");
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            got = rx.recv() => if got.is_none() { return Ok(()) },
        }
        // Let the burst of events of one edit settle.
        loop {
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep(SETTLE) => break,
                _ = rx.recv() => {}
            }
        }
        match load(&options, &registry) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    tracing::warn!("{w}");
                }
                runtime.reload(loaded).await;
            }
            Err(issues) => {
                for issue in &issues {
                    tracing::error!("{issue}");
                }
                tracing::error!(
                    problems = issues.len(),
                    "the changed resources are invalid; keeping the running components"
                );
            }
        }
    }
}
