//! `palisade waf …`: offline tools for the WAF engine and a CRS directory.

use clap::Subcommand;
use palisade_waf::{benign, conformance, Waf, WafSettings};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum WafCommand {
    /// Replay CRS regression cases (JSON lines) through the engine, request and
    /// response phases (against a built-in albedo-like backend), and report the pass rates.
    Conformance {
        /// The CRS rules directory (or the CRS directory above it).
        #[arg(long)]
        rules: PathBuf,
        /// The cases, one JSON object per line (e.g. crs/cases/crs_cases.jsonl).
        #[arg(long)]
        cases: PathBuf,
        /// Paranoia level to run at (the official suite runs at 4).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=4))]
        pl: u8,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Exit with status 1 when the overall pass rate (block and pass cases)
        /// is below this percentage.
        #[arg(long)]
        min_percent: Option<f64>,
        /// Exit with status 1 when the pass rate of the judged `other` cases
        /// (response phases, log lines) is below this percentage.
        #[arg(long)]
        min_other_percent: Option<f64>,
        /// Extra CRS setting on top of the regression settings, as `name=value`
        /// (e.g. `--tx arg_name_length=100`); repeatable.
        #[arg(long = "tx", value_name = "NAME=VALUE")]
        tx: Vec<String>,
        /// Leave out (and list) rules the engine cannot run, e.g. CRS 3.x's
        /// PCRE-only regexes, instead of refusing the rule set.
        #[arg(long)]
        skip_unsupported: bool,
        /// Run CRS alone, without Palisade's detector rules (9200100-9200400).
        #[arg(long)]
        no_detectors: bool,
        /// Run Palisade's refinements of CRS rules (`[waf] refinements`,
        /// docs/waf.md "Refinements"), which CRS' regression settings leave
        /// out: the refined rules' own cases show what they still catch.
        #[arg(long)]
        refinements: bool,
    },
    /// Propose [[waf.exclusions]] from WAF events: the blocks and would-be
    /// blocks (run `mode = "detect"` on real traffic first), grouped by
    /// rule x host x path x matched variable, with counts, samples and a risk
    /// note each.
    Tune(crate::tune_cmd::TuneArgs),
    /// Show the positive model the edges learned from passed traffic
    /// (`[waf.model]`), merged over every node, through the API: per route,
    /// the methods and content types seen (trusted once enough client
    /// networks sent them) and the shape of each query parameter.
    Model {
        #[command(flatten)]
        api: crate::client::ApiArgs,
        /// How many routes to list (busiest first).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Replay a corpus of benign requests (JSON lines, gzip or plain) through the
    /// engine in block mode, paranoia level 1, inbound threshold 5, and report the
    /// share blocked (false positives): overall, per application, and the rules
    /// behind the blocks.
    Benign {
        /// The CRS rules directory (or the CRS directory above it).
        #[arg(long)]
        rules: PathBuf,
        /// The corpus (e.g. crates/waf/testdata/benign/corpus.jsonl.gz).
        #[arg(long)]
        corpus: PathBuf,
        /// How many of the rules behind the blocks to list.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// List every blocked request with its rules.
        #[arg(long)]
        list_blocked: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Exit with status 1 when the share of requests blocked is above this
        /// percentage.
        #[arg(long)]
        max_percent: Option<f64>,
        /// Run CRS alone, without Palisade's detector rules (9200100-9200400).
        #[arg(long)]
        no_detectors: bool,
    },
    /// Load CRS with default settings: print which CRS (path, version,
    /// digest of its rule files) and how many rules it loaded per phase, or
    /// every error.
    Check {
        /// The CRS rules directory (or the CRS directory above it); without
        /// it, the installed CRS is searched for as `[waf]` without `crs_dir` does.
        #[arg(long)]
        rules: Option<PathBuf>,
        /// Leave out (and list) rules the engine cannot run instead of failing.
        #[arg(long)]
        skip_unsupported: bool,
    },
}

/// Parses `name=value` settings.
fn tx_pairs(items: &[String]) -> Result<Vec<(String, String)>, String> {
    items
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(format!("--tx expects NAME=VALUE, got {kv:?}")),
        })
        .collect()
}

fn print_skipped(waf: &Waf) {
    for s in waf.skipped_rules() {
        eprintln!("skipped: {s}");
    }
}

/// What `waf check` prints about a loaded WAF.
fn check_report(waf: &Waf) -> String {
    let crs = waf.crs();
    let stats = waf.rule_stats();
    let mut s = format!(
        "ok\n  CRS:     {}{}\n  version: {}\n  digest:  {}\n",
        crs.rules_dir,
        if crs.searched {
            " (found by search)"
        } else {
            ""
        },
        crs.version
            .as_deref()
            .unwrap_or("unknown (no ver:'OWASP_CRS/…' in the rules)"),
        crs.digest
    );
    if let Some(setup) = &crs.setup {
        s.push_str(&format!("  setup:   {setup}\n"));
    }
    let phases: Vec<String> = stats
        .per_phase
        .iter()
        .enumerate()
        .map(|(i, n)| format!("phase {} {n}", i + 1))
        .collect();
    s.push_str(&format!(
        "  rules:   {} loaded ({}), {} skipped\n",
        stats.total,
        phases.join(", "),
        waf.skipped_rules().len()
    ));
    if !stats.backtracking.is_empty() {
        let ids: Vec<String> = stats.backtracking.iter().map(u32::to_string).collect();
        s.push_str(&format!(
            "  on the backtracking regex engine (PCRE-only constructs): {}\n",
            ids.join(" ")
        ));
    }
    s
}

pub fn run(command: WafCommand) -> anyhow::Result<i32> {
    match command {
        WafCommand::Model { api, limit } => crate::client::waf_model(api, limit),
        WafCommand::Conformance {
            rules,
            cases,
            pl,
            json,
            min_percent,
            min_other_percent,
            tx,
            skip_unsupported,
            no_detectors,
            refinements,
        } => {
            let mut cfg = conformance::regression_config(&rules, pl);
            cfg.skip_unsupported_rules = skip_unsupported;
            cfg.detectors = !no_detectors;
            cfg.refinements = refinements;
            match tx_pairs(&tx) {
                Ok(pairs) => cfg.tx.extend(pairs),
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(2);
                }
            }
            let waf = match Waf::build(&cfg) {
                Ok(w) => {
                    print_skipped(&w);
                    w
                }
                Err(e) => {
                    eprintln!("{}: {e}", rules.display());
                    return Ok(1);
                }
            };
            let cases = match conformance::load_cases(&cases) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(1);
                }
            };
            let report = conformance::run(&waf, &cases);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render(true));
            }
            let mut status = 0;
            let percent = report.overall.percent();
            if let Some(min) = min_percent.filter(|&min| percent < min) {
                eprintln!("overall pass rate {percent:.2}% is below --min-percent {min}");
                status = 1;
            }
            let other = report.other.percent();
            if let Some(min) = min_other_percent.filter(|&min| other < min) {
                eprintln!("other pass rate {other:.2}% is below --min-other-percent {min}");
                status = 1;
            }
            Ok(status)
        }
        WafCommand::Tune(args) => crate::tune_cmd::run(args),
        WafCommand::Benign {
            rules,
            corpus,
            top,
            list_blocked,
            json,
            max_percent,
            no_detectors,
        } => {
            let mut cfg = benign::measure_settings(&rules);
            cfg.detectors = !no_detectors;
            let waf = match Waf::build(&cfg) {
                Ok(w) => w,
                Err(e) => {
                    eprintln!("{}: {e}", rules.display());
                    return Ok(1);
                }
            };
            let requests = match benign::load_corpus(&corpus) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(1);
                }
            };
            let report = benign::run(&waf, &requests);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render(top, list_blocked));
            }
            let percent = report.overall.percent();
            match max_percent.filter(|&max| percent > max) {
                Some(max) => {
                    eprintln!("benign blocked {percent:.2}% is above --max-percent {max}");
                    Ok(1)
                }
                None => Ok(0),
            }
        }
        WafCommand::Check {
            rules,
            skip_unsupported,
        } => {
            let cfg = WafSettings {
                crs_dir: rules.as_ref().map(|r| r.display().to_string()),
                skip_unsupported_rules: skip_unsupported,
                ..WafSettings::default()
            };
            match Waf::build(&cfg) {
                Ok(waf) => {
                    print_skipped(&waf);
                    print!("{}", check_report(&waf));
                    Ok(0)
                }
                Err(e) => {
                    match &rules {
                        Some(r) => eprintln!("{}: {e}", r.display()),
                        None => eprintln!("{e}"),
                    }
                    Ok(1)
                }
            }
        }
    }
}
