//! Development shortcut for `palisade waf conformance`:
//! `cargo run --release -p palisade-waf --example conformance -- RULES CASES [PL] [-v]`
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: conformance RULES_DIR CASES_FILE [PL] [-v]");
        std::process::exit(2);
    }
    let pl: u8 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(4);
    let mut cfg = palisade_waf::conformance::regression_config(&PathBuf::from(&args[1]), pl);
    for (i, a) in args.iter().enumerate() {
        if a == "--tx" {
            if let Some((k, v)) = args.get(i + 1).and_then(|kv| kv.split_once('=')) {
                cfg.tx.insert(k.to_string(), v.to_string());
            }
        }
    }
    let t = std::time::Instant::now();
    let waf = match palisade_waf::Waf::build(&cfg) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    eprintln!("loaded {} rules in {:?}", waf.rules().len(), t.elapsed());
    let cases = palisade_waf::conformance::load_cases(&PathBuf::from(&args[2])).unwrap();
    if let Some(pos) = args.iter().position(|a| a == "--case") {
        let id = args.get(pos + 1).cloned().unwrap_or_default();
        for c in cases.iter().filter(|c| c.id == id) {
            let req = palisade_waf::conformance::case_request(c);
            eprintln!("{:?}", String::from_utf8_lossy(&req.uri));
            for (k, v) in &req.headers {
                eprintln!(
                    "  {}: {}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                );
            }
            eprintln!("  body {:?}", String::from_utf8_lossy(&req.body));
            let run = palisade_waf::conformance::run_case(&waf, req);
            if let Some(r) = &run.response {
                eprintln!("response {}", r.status);
                for (k, v) in &r.headers {
                    eprintln!(
                        "  {}: {}",
                        String::from_utf8_lossy(k),
                        String::from_utf8_lossy(v)
                    );
                }
                eprintln!("  body {:?}", String::from_utf8_lossy(&r.body));
            }
            for m in &run.matched {
                eprintln!(
                    "matched {} (phase {}) {} [{}] {}",
                    m.id, m.phase, m.msg, m.matched_var_name, m.logdata
                );
            }
        }
        return;
    }
    let t = std::time::Instant::now();
    let report = palisade_waf::conformance::run(&waf, &cases);
    eprintln!("ran {} cases in {:?}", cases.len(), t.elapsed());
    print!("{}", report.render(args.iter().any(|a| a == "-v")));
}
