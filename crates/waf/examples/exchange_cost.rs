//! What a loaded CRS and one exchange cost, counted rather than timed (for
//! A/B comparisons on a noisy machine):
//!
//! `cargo run --release -p palisade-waf --example exchange_cost -- [SCENARIO] [N]`
//!
//! Prints the heap the rule set holds once loaded (bytes still allocated,
//! counted by a wrapping global allocator), the process' RSS, and for
//! `SCENARIO` (`get`, `post`, `attack`, `html600`, `html4k`, `exreq`: the
//! request part of `html600` alone, `none`) the
//! allocations and bytes allocated per iteration over `N` iterations
//! (default 1000). `getvar` and `postvar` are `get` and `post` with values
//! that differ in every request (query and form values, cookies: the worst
//! case for the value memo, which `get` and `post` favour by repeating
//! theirs), and `PALISADE_WAF_MEMO=0` turns the memo off. For instruction counts, run it under callgrind with
//! collection limited to the loop:
//!
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*run_scenario*' \
//!    target/release/examples/exchange_cost html600 200`
//!
//! (`--toggle-collect='*respond*'` counts the response phases 3 to 5 alone).
//!
//! CRS comes from `PALISADE_CRS_DIR`, else `../shared/crs/rules`, else
//! Debian's `/usr/share/modsecurity-crs/rules`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use palisade_waf::{BodyPush, Exchange, HttpRequest, ResponseBodyPlan, Waf, WafSettings};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn crs_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [
        std::env::var_os("PALISADE_CRS_DIR").map(PathBuf::from),
        Some(root.join("../shared/crs/rules")),
        Some(PathBuf::from("/usr/share/modsecurity-crs/rules")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_dir())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn headers(extra: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut h: Vec<(&str, &str)> = vec![
        ("Host", "shop.example.com"),
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"),
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
        ("Accept-Language", "en-US,en;q=0.9,de;q=0.8"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Referer", "https://shop.example.com/shop/sport"),
        ("Cookie", "sessionid=8f14e45fceea167a5a36dedd4bea2543; csrftoken=Xy7pQ2mN9vL4kR8s; prefs=lang%3Den%7Ccur%3DEUR; _ga=GA1.2.1234567890.1700000000"),
    ];
    h.extend_from_slice(extra);
    h.into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

/// The requests and pages of `benches/engine.rs`.
fn benign_get() -> HttpRequest {
    HttpRequest {
        method: b"GET".to_vec(),
        uri: b"/shop/search?q=running+shoes&category=sport&page=2&sort=price_asc".to_vec(),
        protocol: b"HTTP/1.1".to_vec(),
        headers: headers(&[]),
        body: Vec::new(),
        remote_addr: "203.0.113.9".into(),
        remote_port: 51000,
        unique_id: "bench".into(),
    }
}

fn form_post() -> HttpRequest {
    let mut body = String::from("name=Jane+Doe&email=jane.doe%40example.com&street=12+Market+Street&city=Springfield&zip=12345&country=US&phone=%2B1+555+0100&subject=Order+question&comment=");
    while body.len() < 1024 {
        body.push_str("Hello%2C+I+would+like+to+know+when+my+order+will+ship.+Thanks+a+lot+");
    }
    body.truncate(1024);
    let len = body.len().to_string();
    HttpRequest {
        method: b"POST".to_vec(),
        uri: b"/shop/contact".to_vec(),
        protocol: b"HTTP/1.1".to_vec(),
        headers: headers(&[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", &len),
        ]),
        body: body.into_bytes(),
        remote_addr: "203.0.113.9".into(),
        remote_port: 51000,
        unique_id: "bench".into(),
    }
}

fn page_of(len: usize) -> String {
    let mut page =
        String::from("<!DOCTYPE html><html><head><title>Running shoes</title></head><body><ul>");
    while page.len() < len {
        page.push_str("<li><a href=\"/shop/item/42\">Trail runner 42, size 42, 89.90 EUR</a></li>");
    }
    page.truncate(len);
    page
}

fn exchange(waf: &Waf, req: HttpRequest, page: &str) -> bool {
    let mut ex = waf.begin(req);
    ex.request_headers();
    ex.finish_request_body();
    respond(&mut ex, page)
}

/// The response part of [`exchange`] (phases 3 to 5), apart for callgrind:
/// `--toggle-collect='*respond*'`.
#[inline(never)]
fn respond(ex: &mut Exchange, page: &str) -> bool {
    let html = vec![
        (
            b"Content-Type".to_vec(),
            b"text/html; charset=utf-8".to_vec(),
        ),
        (
            b"Content-Length".to_vec(),
            page.len().to_string().into_bytes(),
        ),
        (b"Cache-Control".to_vec(), b"no-cache".to_vec()),
    ];
    let (_, plan) = ex.response_headers(200, b"HTTP/1.1", html);
    if let ResponseBodyPlan::Inspect { .. } = plan {
        for c in page.as_bytes().chunks(1024) {
            if ex.push_response_body(c) != BodyPush::Continue {
                break;
            }
        }
    }
    let v = ex.finish_response_body();
    ex.logging();
    v.blocked
}

/// A pseudo-random token for request `i` (differs in every request).
fn token(i: usize, salt: u64) -> String {
    let mut x = (i as u64 ^ salt).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 32;
    format!("{x:016x}")
}

/// [`benign_get`] with query values and cookies of its own.
fn varied_get(i: usize) -> HttpRequest {
    let mut r = benign_get();
    let words = [
        "running", "trail", "boots", "red", "size", "kids", "sale", "new",
    ];
    r.uri = format!(
        "/shop/search?q={}+{}+{}&category=sport{}&page={}&sort=price_asc&ref={}",
        words[i % 8],
        words[(i / 8) % 8],
        i,
        i % 13,
        i % 50,
        token(i, 1)
    )
    .into_bytes();
    let cookie = format!(
        "sessionid={}{}; csrftoken={}; prefs=lang%3Den%7Ccur%3DEUR%7Cv{}; _ga=GA1.2.{}.{}",
        token(i, 2),
        token(i, 3),
        token(i, 4),
        i,
        1_000_000_000 + i,
        1_700_000_000 + i
    );
    for (k, v) in r.headers.iter_mut() {
        if k.eq_ignore_ascii_case(b"cookie") {
            *v = cookie.clone().into_bytes();
        }
    }
    r
}

/// [`form_post`] with form values and cookies of its own.
fn varied_post(i: usize) -> HttpRequest {
    let mut r = form_post();
    let mut body = format!(
        "name=Jane+Doe+{i}&email=jane.{i}%40example.com&street={}+Market+Street&city=Springfield&zip={}&country=US&phone=%2B1+555+{}&subject=Order+question+{}&comment=",
        i % 997,
        10_000 + i % 89_999,
        i % 10_000,
        token(i, 5)
    );
    while body.len() < 1024 {
        body.push_str("Hello%2C+I+would+like+to+know+when+order+");
        body.push_str(&token(i + body.len(), 6));
        body.push_str("+will+ship.+Thanks+");
    }
    body.truncate(1024);
    let len = body.len().to_string();
    let get = varied_get(i);
    for (k, v) in r.headers.iter_mut() {
        if k.eq_ignore_ascii_case(b"content-length") {
            *v = len.clone().into_bytes();
        }
    }
    r.headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case(b"cookie"));
    r.headers.extend(
        get.headers
            .into_iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(b"cookie")),
    );
    r.body = body.into_bytes();
    r
}

#[inline(never)]
fn run_scenario(waf: &Waf, scenario: &str, n: usize) -> usize {
    let get = benign_get();
    let post = form_post();
    let mut attack = benign_get();
    attack.uri =
        b"/shop/search?q=1%27+OR+%271%27%3D%271&x=%3Cscript%3Ealert(1)%3C%2Fscript%3E".to_vec();
    let p600 = page_of(600);
    let p4k = page_of(4096);
    let mut blocked = 0;
    // Requests of the varied scenarios are made before the loop.
    let varied: Vec<HttpRequest> = match scenario {
        "getvar" => (0..n).map(|i| varied_get(i + n)).collect(),
        "postvar" => (0..n).map(|i| varied_post(i + n)).collect(),
        _ => Vec::new(),
    };
    let mut varied = varied.into_iter();
    for _ in 0..n {
        let b = match scenario {
            "getvar" | "postvar" => varied.next().is_some_and(|r| waf.inspect(r).blocked),
            "get" => waf.inspect(get.clone()).blocked,
            "post" => waf.inspect(post.clone()).blocked,
            "attack" => waf.inspect(attack.clone()).blocked,
            "exreq" => {
                let mut ex = waf.begin(get.clone());
                ex.request_headers();
                ex.finish_request_body().blocked
            }
            "html600" => exchange(waf, get.clone(), &p600),
            "html4k" => exchange(waf, get.clone(), &p4k),
            _ => false,
        };
        blocked += b as usize;
    }
    blocked
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scenario = args.get(1).map(String::as_str).unwrap_or("none");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let Some(dir) = crs_dir() else {
        eprintln!("no CRS directory found; set PALISADE_CRS_DIR");
        std::process::exit(2);
    };
    let mut cfg = WafSettings {
        crs_dir: Some(dir.display().to_string()),
        ..WafSettings::default()
    };
    let rss0 = rss_kib();
    let live0 = LIVE.load(Ordering::Relaxed);
    let mut waf = match Waf::build(&cfg) {
        Ok(w) => w,
        Err(_) => {
            cfg.skip_unsupported_rules = true;
            Waf::build(&cfg).expect("CRS loads")
        }
    };
    if std::env::var("PALISADE_WAF_MEMO").as_deref() == Ok("0") {
        waf.set_value_memo(0);
    }
    let live1 = LIVE.load(Ordering::Relaxed);
    println!(
        "rule set: {} rules, heap {:.2} MiB, RSS +{:.2} MiB (total {:.2} MiB)",
        waf.rules().len(),
        (live1 - live0) as f64 / (1 << 20) as f64,
        (rss_kib().saturating_sub(rss0)) as f64 / 1024.0,
        rss_kib() as f64 / 1024.0,
    );
    // One warm-up run (lazy DFA caches, thread-locals), then the count.
    run_scenario(&waf, scenario, 1);
    let (a0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    let t = std::time::Instant::now();
    let blocked = run_scenario(&waf, scenario, n);
    let elapsed = t.elapsed();
    if n > 0 && scenario != "none" {
        let allocs = ALLOCS.load(Ordering::Relaxed) - a0;
        let bytes = BYTES.load(Ordering::Relaxed) - b0;
        println!(
            "{scenario}: {:.1} µs, {:.1} allocations, {:.0} bytes allocated per iteration ({blocked} of {n} blocked)",
            elapsed.as_secs_f64() * 1e6 / n as f64,
            allocs as f64 / n as f64,
            bytes as f64 / n as f64,
        );
    }
    let m = palisade_waf::memo::stats();
    println!(
        "value memo: {} hits, {} misses, {} evictions",
        m.hits, m.misses, m.evictions
    );
    println!("lazy DFA give-ups: {}", palisade_waf::lazydfa::giveups());
    println!(
        "heap after: {:.2} MiB (thread caches included), RSS {:.2} MiB",
        (LIVE.load(Ordering::Relaxed) - live0) as f64 / (1 << 20) as f64,
        rss_kib() as f64 / 1024.0
    );
}
