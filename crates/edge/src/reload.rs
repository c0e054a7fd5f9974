//! Policy hot reload: on a change of the policy file (watched through its
//! directory, so editors that write a new file and rename it are seen) and on
//! SIGHUP. A new file is compiled first (and its WAF built, when its `[waf]`
//! section changed); only a policy that compiled replaces the running one, in
//! one atomic swap. An invalid file, or one whose WAF rules do not load, keeps
//! the running policy and WAF, logs every error, and counts
//! `palisade_policy_reloads_total{result="invalid"}`. A reload with an
//! unchanged `[waf]` section keeps the running WAF (CRS is not read again).

use crate::state::EdgeState;
use notify::{RecursiveMode, Watcher};
use palisade_policy::Policy;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// Reads and compiles a policy file. The error lists every problem, one per line.
pub fn load_policy_file(path: &Path) -> Result<Policy, String> {
    let src = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Policy::from_toml(&src, &path.display().to_string()).map_err(|e| e.to_string())
}

/// What a reload attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new policy is active.
    Applied { digest: String, rules: usize },
    /// The file did not change.
    Unchanged,
    /// The file is invalid or unreadable, or its WAF does not build; the running policy stays.
    Rejected(String),
}

/// Reloads `path` into `state` if it compiles.
pub fn reload(state: &EdgeState, path: &Path, trigger: &str) -> ReloadOutcome {
    let outcome = match load_policy_file(path) {
        Ok(p) if p.digest == state.policy().digest => ReloadOutcome::Unchanged,
        Ok(p) => {
            let out = ReloadOutcome::Applied {
                digest: p.digest.clone(),
                rules: p.rules.len(),
            };
            match state.set_policy(p) {
                Ok(()) => out,
                Err(e) => ReloadOutcome::Rejected(format!("{}: {e}", path.display())),
            }
        }
        Err(e) => ReloadOutcome::Rejected(e),
    };
    match &outcome {
        ReloadOutcome::Applied { digest, rules } => {
            state
                .metrics
                .policy_reloads
                .with_label_values(&["ok"])
                .inc();
            tracing::info!(trigger, policy = %path.display(), digest, rules, "policy reloaded");
        }
        ReloadOutcome::Unchanged => {
            state
                .metrics
                .policy_reloads
                .with_label_values(&["unchanged"])
                .inc();
        }
        ReloadOutcome::Rejected(errors) => {
            state
                .metrics
                .policy_reloads
                .with_label_values(&["invalid"])
                .inc();
            tracing::error!(trigger, policy = %path.display(), "invalid policy, keeping the running one:\n{errors}");
        }
    }
    outcome
}

/// Logs SIGHUP instead of letting it terminate the process (used when there is no policy file).
pub fn ignore_sighup() -> std::io::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new()
        .name("palisade-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                tracing::info!("SIGHUP received; no policy file to reload");
            }
        })?;
    Ok(())
}

/// Starts the watcher thread: file changes (debounced 100 ms) and SIGHUP trigger [`reload`].
pub fn spawn_watcher(state: Arc<EdgeState>, path: PathBuf) -> std::io::Result<()> {
    let (tx, rx) = mpsc::channel::<&'static str>();

    let sig_tx = tx.clone();
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new()
        .name("palisade-sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                if sig_tx.send("sighup").is_err() {
                    break;
                }
            }
        })?;

    let file_name = path.file_name().map(|n| n.to_os_string());
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let fs_tx = tx;
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            let ours = ev
                .paths
                .iter()
                .any(|p| p.file_name().map(|n| n.to_os_string()) == file_name);
            if ours && !matches!(ev.kind, notify::EventKind::Access(_)) {
                let _ = fs_tx.send("file change");
            }
        }
    })
    .map_err(std::io::Error::other)?;
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(std::io::Error::other)?;

    std::thread::Builder::new()
        .name("palisade-reload".into())
        .spawn(move || {
            let _watcher = watcher; // keep it alive
            while let Ok(trigger) = rx.recv() {
                // Debounce: editors write in several steps.
                std::thread::sleep(Duration::from_millis(100));
                while rx.try_recv().is_ok() {}
                reload(&state, &path, trigger);
            }
        })?;
    Ok(())
}
