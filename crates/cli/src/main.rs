//! `palisade` — one binary for every role.

mod attack_mode_cmd;
mod client;
mod control_cmd;
mod edge_cmd;
mod features;
mod import_cmd;
mod listen;
mod origin;
mod policy_cmd;
mod replicas;
mod retention;
mod rollout;
mod rules_dir;
mod runtime;
mod table;
mod tune_cmd;
mod up;
mod up_restore;
mod waf_cmd;

use clap::{Parser, Subcommand};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc settings: freed pages go back to the system within a second, on
/// jemalloc's background thread (off the request path). Request and
/// response bodies held for inspection are large, short-lived allocations;
/// with jemalloc's default 10 s decay their pages would stay resident long
/// after the body is gone, and the process would outgrow its body buffer
/// cap (`--body-buffer-bytes`) under a stream of uploads. A decay of 0
/// (purge on every free) would cost the request path a quarter more CPU
/// (measured: 278 against 209 µs per GET with CRS). `_RJEM_MALLOC_CONF` can
/// still override this.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// `palisade --version`; a binary without NATS says so.
const VERSION: &str = if features::HAS_NATS {
    env!("CARGO_PKG_VERSION")
} else {
    concat!(
        env!("CARGO_PKG_VERSION"),
        " (built without NATS: no `palisade edge`, `palisade control`)"
    )
};

#[derive(Parser)]
#[command(
    name = "palisade",
    version = VERSION,
    about = "Palisade: distributed edge security"
)]
struct Cli {
    /// Log format on standard error.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything on one machine: an edge with the OWASP CRS WAF, and the management API (without --upstream, in front of a built-in demo origin).
    ///
    /// The edge checks every request against the policy (allowlist, decisions,
    /// custom rules, rate limits) and, when the policy file has a `[waf]`
    /// section, the OWASP Core Rule Set WAF (see docs/policy.md). Without
    /// --upstream it protects a built-in demo origin (an HTML page,
    /// /api/status and a /login form) that it starts on a free loopback port.
    /// Every address, the upstreams and the policy (with its WAF rules) are
    /// checked before anything starts.
    Up(Box<up::UpArgs>),
    /// Run the control plane of a cluster (API over NATS JetStream).
    Control(Box<control_cmd::ControlArgs>),
    /// Run an edge node that joins a cluster over NATS JetStream.
    Edge(Box<edge_cmd::EdgeCmdArgs>),
    /// Serve the built-in demo site (HTML page, JSON endpoint, login form).
    DemoOrigin(origin::OriginArgs),
    /// Check policy files (offline) and manage cluster policy versions (through the API).
    Policy {
        #[command(subcommand)]
        command: policy_cmd::PolicyCommand,
    },
    /// Security events stored by the control plane, newest first.
    Events {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(flatten)]
        filter: client::EventArgs,
    },
    /// Nodes of the cluster, through the API.
    Nodes {
        #[command(flatten)]
        api: client::ApiArgs,
    },
    /// Manage decisions through the API.
    Decisions {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(subcommand)]
        command: client::DecisionsCommand,
    },
    /// Under-attack mode per host, on every edge (through the API).
    AttackMode {
        #[command(flatten)]
        api: client::ApiArgs,
        #[command(subcommand)]
        command: attack_mode_cmd::AttackModeCommand,
    },
    /// Check a CRS directory and measure the WAF engine against the CRS regression suite (offline).
    Waf {
        #[command(subcommand)]
        command: waf_cmd::WafCommand,
    },
}

fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PALISADE_LOG").unwrap_or_else(|_| {
        EnvFilter::new("info,pingora_core=warn,pingora_proxy=warn,pingora_load_balancing=warn")
    });
    // Pingora logs through `log`: bridge it (and count malformed requests).
    let _ = palisade_edge::logging::install_log_bridge();
    // Colours only on a terminal, and never with NO_COLOR set (https://no-color.org).
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    if format == "json" {
        let _ = tracing::subscriber::set_global_default(builder.json().finish());
    } else {
        let _ = tracing::subscriber::set_global_default(builder.finish());
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => {
            init_logging(&cli.log_format);
            up::run(*args)
        }
        Command::Control(args) => {
            init_logging(&cli.log_format);
            control_cmd::run(*args)
        }
        Command::Edge(args) => {
            init_logging(&cli.log_format);
            edge_cmd::run(*args)
        }
        Command::DemoOrigin(args) => {
            init_logging(&cli.log_format);
            origin::run(args)
        }
        Command::Policy { command } => policy_cmd::run(command),
        Command::Nodes { api } => client::nodes(api),
        Command::Events { api, filter } => client::events(api, filter),
        Command::Decisions { api, command } => client::run(api, command),
        Command::AttackMode { api, command } => attack_mode_cmd::run(api, command),
        Command::Waf { command } => waf_cmd::run(command),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(1);
        }
    }
}
