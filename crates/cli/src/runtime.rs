//! Background services of the binary (API, demo origin, mesh sync) each run on
//! a named thread with a small tokio runtime of their own, beside Pingora's.

use std::future::Future;

/// Runs the future made by `make` on a new thread `name` with its own runtime:
/// current-thread when `workers` is None, else multi-thread with that many workers.
pub fn spawn_runtime_thread<F, Fut>(
    name: &str,
    workers: Option<usize>,
    make: F,
) -> std::io::Result<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let label = name.to_string();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let built = match workers {
                None => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build(),
                Some(n) => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(n.max(1))
                    .enable_all()
                    .build(),
            };
            match built {
                Ok(rt) => rt.block_on(make()),
                Err(e) => tracing::error!(error = %e, thread = %label, "cannot start a runtime"),
            }
        })?;
    Ok(())
}
