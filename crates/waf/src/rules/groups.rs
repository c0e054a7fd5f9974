//! Rule groups ([`RuleGroup`]): literal `@rx` and `@pm` links over the same
//! static targets (and transformation chain), checked together by one
//! prefilter, and the benign samples that keep a pattern out of a group.

use super::*;

/// Ordinary request values: a pattern matching any of them is not an
/// "attack" pattern and is always evaluated on its own.
const BENIGN_SAMPLES: &[&str] = &[
    "",
    "a",
    "0",
    "1",
    "running shoes",
    "price_asc",
    "/",
    "/shop/search",
    "search",
    "localhost",
    "shop.example.com",
    "8f14e45fceea167a5a36dedd4bea2543",
    "GA1.2.1234567890.1700000000",
    "lang%3Den%7Ccur%3DEUR",
    "jane.doe@example.com",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "en-US,en;q=0.9,de;q=0.8",
    "gzip, deflate, br",
    "https://shop.example.com/shop/sport",
    "keep-alive",
    "application/x-www-form-urlencoded",
];

/// Ordinary response values (status lines, headers, an HTML page), for
/// patterns over response variables (see [`BENIGN_SAMPLES`]).
const BENIGN_RESPONSE_SAMPLES: &[&str] = &[
    "200",
    "404",
    "HTTP/1.1",
    "HTTP/1.1 200 OK",
    "text/html; charset=utf-8",
    "application/json",
    "no-cache, no-store, must-revalidate",
    "Thu, 01 Jan 2026 00:00:00 GMT",
    "sessionid=8f14e45fceea167a5a36dedd4bea2543; Path=/; HttpOnly; Secure; SameSite=Lax",
    r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Running shoes | Shop</title>
<link rel="stylesheet" href="/static/css/main.css?v=3">
<style>body { margin: 0; font-family: sans-serif; } .price { color: #c00; }</style>
<script src="/static/js/app.js" defer></script>
<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}</script>
</head>
<body class="shop">
<!-- header -->
<nav><a href="/">Home</a> &gt; <a href="/shop/sport">Sport</a></nav>
<h1>Running shoes</h1>
<form action="/shop/search" method="get"><input type="text" name="q" value="running shoes"><button type="submit">Search</button></form>
<ul class="items">
<li><a href="/shop/item/42"><img src="/img/42.jpg" alt="Trail runner 42"> Trail runner 42, size 42</a> <span class="price">89.90&nbsp;EUR</span></li>
<li><a href="/shop/item/43">Road runner, sizes 38-46</a> <span class="price">119.00&nbsp;EUR</span></li>
</ul>
<p>Free shipping from 50 EUR. Questions? Write to <a href="mailto:help@example.com">help@example.com</a>.</p>
<footer>&copy; 2026 Example Shop. All rights reserved.</footer>
</body>
</html>
"#,
];

/// The key of the group a rule link can join: its targets and its
/// transformations. `None` for links whose values change while a phase
/// runs (TX, MATCHED_VAR...), counts, and `multiMatch` (which inspects the
/// values between transformations too).
fn group_key(r: &Rule) -> Option<String> {
    let static_targets = !r.targets.targets.is_empty()
        && r.targets
            .targets
            .iter()
            .all(|t| t.var.is_request_static() && !t.count);
    // Exclusions only shrink what a rule sees: leaving them out of the key
    // lets more rules share a group (a group checks a superset of values).
    (static_targets && !r.multi_match).then(|| format!("{:?}|{:?}", r.targets.targets, r.chain_id))
}

/// Whether a literal `@rx` link is worth a group: its pattern must not
/// match ordinary values, or the group would never be clean.
fn rx_groupable(r: &Rule, re: &regex::bytes::Regex) -> bool {
    // On a clone, which has a pool of search caches of its own, dropped
    // here: a search on `re` itself would leave its caches (a few hundred
    // KiB for a large CRS pattern, 4.7 MiB for CRS v4.28) in `re`'s pool
    // for the life of the rule set, owned by the loading thread, which
    // never inspects a request.
    let re = re.clone();
    if r.negated || BENIGN_SAMPLES.iter().any(|s| re.is_match(s.as_bytes())) {
        return false;
    }
    let response = r.targets.targets.iter().any(|t| t.var.is_response());
    !(response
        && BENIGN_RESPONSE_SAMPLES
            .iter()
            .any(|s| re.is_match(s.as_bytes())))
}

/// Forms the rule groups (see [`RuleGroup`]) and sets [`Rule::group`] and
/// [`Rule::pm_bit`]: literal `@rx` links and `@pm` links (two or more
/// sharing a key) over static targets, in any phase (response variables
/// are fixed once the response headers, then its body, are given: the
/// transaction starts the groups afresh then). Returns the groups and the
/// number of `@pm` bits. Afterwards the `@pm` phrase lists are dropped.
pub(super) fn build_groups(rules: &mut [Rule]) -> (Vec<RuleGroup>, usize) {
    fn links(rules: &mut [Rule], mut f: impl FnMut(&mut Rule)) {
        for head in rules.iter_mut() {
            let mut link = Some(head);
            while let Some(r) = link {
                f(r);
                link = r.chained.as_deref_mut();
            }
        }
    }
    let mut keys: HashMap<String, u32> = HashMap::new();
    let mut rx: Vec<(Vec<String>, Vec<std::sync::Arc<regex::bytes::Regex>>)> = Vec::new();
    let mut pm_count: Vec<usize> = Vec::new();
    let mut group_of = |key: String, rx: &mut Vec<_>, pm_count: &mut Vec<usize>| {
        let n = keys.len() as u32;
        let g = *keys.entry(key).or_insert(n);
        if g as usize == rx.len() {
            rx.push((Vec::new(), Vec::new()));
            pm_count.push(0);
        }
        g
    };
    links(rules, |r| {
        let Some(key) = group_key(r) else {
            return;
        };
        match &r.operator {
            Operator::Rx(re) if rx_groupable(r, re) => {
                let g = group_of(key, &mut rx, &mut pm_count);
                r.group = Some(g);
                rx[g as usize].0.push(re.as_str().to_string());
                rx[g as usize].1.push(re.clone());
            }
            Operator::Pm(p) if !p.phrases.is_empty() => {
                let g = group_of(key, &mut rx, &mut pm_count);
                r.group = Some(g);
                pm_count[g as usize] += 1;
            }
            _ => {}
        }
    });
    // One phrase list alone gains nothing from a set: it stays on its own.
    let mut pm_bits = 0u32;
    let mut phrase_lists: Vec<Vec<(u32, std::sync::Arc<Phrases>)>> = vec![Vec::new(); rx.len()];
    links(rules, |r| {
        if let (Some(g), Operator::Pm(p)) = (r.group, &r.operator) {
            if pm_count[g as usize] < 2 {
                r.group = None;
            } else {
                r.pm_bit = Some(pm_bits);
                phrase_lists[g as usize].push((pm_bits, p.clone()));
                pm_bits += 1;
            }
        }
    });
    let family = crate::lazydfa::new_family();
    let groups: Vec<RuleGroup> = rx
        .into_iter()
        .zip(&phrase_lists)
        .enumerate()
        .map(|(slot, ((patterns, regexes), lists))| {
            let rx = crate::lazydfa::AnySet::new(&patterns, regexes, family, slot);
            let input: Vec<(u32, &[Box<str>])> =
                lists.iter().map(|(b, p)| (*b, &p.phrases[..])).collect();
            RuleGroup {
                rx,
                pm: crate::pmset::PmSet::new(&input),
                pm_bits: lists.iter().map(|(b, _)| *b).collect(),
            }
        })
        .collect();
    drop(phrase_lists);
    links(rules, |r| {
        // A set that did not build: its rules run on their own.
        if let Some(g) = r.group {
            let group = &groups[g as usize];
            let built = match r.pm_bit {
                Some(_) => group.pm.is_some(),
                None => group.rx.is_some(),
            };
            if !built {
                r.group = None;
                r.pm_bit = None;
            }
        }
        if let Operator::Pm(p) = &mut r.operator {
            if let Some(p) = std::sync::Arc::get_mut(p) {
                p.phrases = Vec::new();
            }
        }
    });
    (groups, pm_bits as usize)
}
