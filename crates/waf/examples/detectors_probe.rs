//! Development probe: which rules fire on a query value, with and without
//! Palisade's detectors. `cargo run -p palisade-waf --example detectors_probe -- RULES VALUE...`
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = &args[1];
    for detectors in [false, true] {
        let cfg = palisade_waf::WafSettings {
            crs_dir: Some(dir.clone()),
            detectors,
            ..Default::default()
        };
        let waf = palisade_waf::Waf::build(&cfg).expect("loads");
        for v in &args[2..] {
            let enc: String = v
                .bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            let req = palisade_waf::HttpRequest {
                method: b"GET".to_vec(),
                uri: format!("/search?q={enc}").into_bytes(),
                protocol: b"HTTP/1.1".to_vec(),
                headers: vec![
                    (b"Host".to_vec(), b"a.example".to_vec()),
                    (b"User-Agent".to_vec(), b"Mozilla/5.0".to_vec()),
                    (b"Accept".to_vec(), b"*/*".to_vec()),
                ],
                ..Default::default()
            };
            let r = waf.inspect(req);
            let ids: Vec<u32> = r.matched.iter().map(|m| m.id).collect();
            println!(
                "detectors={detectors} blocked={} score={} {ids:?} {v:?}",
                r.blocked, r.inbound_score
            );
        }
    }
}
