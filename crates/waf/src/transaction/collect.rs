//! Collection of a rule target's values from the request, the response
//! and the transaction state, minus the excluded ones.

use super::request::{default_processor, RequestData};
use super::values::{Item, Val};
use super::*;

#[inline]
pub(super) fn excluded(
    list: &TargetList,
    state: &State,
    head: Option<&Rule>,
    var: Var,
    key: &[u8],
) -> bool {
    if list.exclusions.is_empty() && (head.is_none() || state.removed_targets.is_empty()) {
        return false;
    }
    if list
        .exclusions
        .iter()
        .any(|(v, s)| *v == var && s.matches(key))
    {
        return true;
    }
    let Some(head) = head else {
        return false;
    };
    state.removed_targets.iter().any(|(sel, v, s)| {
        *v == var
            && s.matches(key)
            && match sel {
                RuleSel::Id(r) => r.contains(head.id),
                RuleSel::Tag(t) => head.tags.iter().any(|x| x == t),
            }
    })
}

/// Appends the values a target selects.
pub(super) fn collect<'d>(
    data: &'d RequestData,
    state: &State,
    t: &'d Target,
    list: &TargetList,
    head: Option<&Rule>,
    out: &mut Vec<Item<'d>>,
) {
    let start = out.len();
    let var = t.var;
    let kv = |pairs: &'d [(Vec<u8>, Vec<u8>)], names: bool, out: &mut Vec<Item<'d>>| {
        for (k, v) in pairs {
            if !t.selector.matches(k) || excluded(list, state, head, var, k) {
                continue;
            }
            out.push(Item {
                var,
                key: Val::Ref(k.as_slice()),
                value: Val::Ref(if names { k.as_slice() } else { v.as_slice() }),
            });
        }
    };
    let scalar = |value: Val<'d>, out: &mut Vec<Item<'d>>| {
        if !excluded(list, state, head, var, b"") {
            out.push(Item {
                var,
                key: Val::Ref(b""),
                value,
            });
        }
    };
    let body = data.body.as_ref();
    match var {
        Var::Args => {
            kv(&data.args_get, false, out);
            kv(data.args_post(), false, out);
        }
        Var::ArgsNames => {
            kv(&data.args_get, true, out);
            kv(data.args_post(), true, out);
        }
        Var::ArgsGet => kv(&data.args_get, false, out),
        Var::ArgsGetNames => kv(&data.args_get, true, out),
        Var::ArgsPost => kv(data.args_post(), false, out),
        Var::ArgsPostNames => kv(data.args_post(), true, out),
        Var::ArgsCombinedSize => {
            let n: usize = data
                .args_get
                .iter()
                .chain(data.args_post())
                .map(|(k, v)| k.len() + v.len())
                .sum();
            scalar(Val::num(n), out)
        }
        Var::RequestHeaders => kv(&data.req.headers, false, out),
        Var::RequestHeadersNames => kv(&data.req.headers, true, out),
        Var::RequestCookies => kv(&data.cookies, false, out),
        Var::RequestCookiesNames => kv(&data.cookies, true, out),
        Var::RequestFilename => scalar(Val::Ref(&data.path_decoded), out),
        Var::RequestBasename => scalar(Val::Ref(&data.basename), out),
        Var::RequestUri => scalar(Val::Ref(&data.uri_decoded), out),
        Var::RequestUriRaw => scalar(Val::Ref(&data.req.uri), out),
        Var::RequestLine => scalar(Val::Ref(&data.request_line), out),
        Var::RequestMethod => scalar(Val::Ref(&data.req.method), out),
        Var::RequestProtocol => scalar(Val::Ref(&data.req.protocol), out),
        Var::RequestBody => {
            // The URLENCODED and JSON processors (as in Coraza, which the CRS
            // suite runs against) or ctl:forceRequestBodyVariable expose the
            // raw body here; XML and MULTIPART do not.
            let exposed = matches!(
                data.processor,
                Some(Processor::UrlEncoded | Processor::Json)
            );
            if exposed || state.force_body_var {
                scalar(Val::Ref(data.inspected_body()), out)
            }
        }
        Var::RequestBodyLength => scalar(Val::num(data.inspected_body().len()), out),
        Var::QueryString => scalar(Val::Ref(&data.query), out),
        Var::Files | Var::FilesNames | Var::FilesSizes | Var::FilesTmpContent => {
            if let Some(b) = body {
                for f in &b.files {
                    let key = f.name.as_slice();
                    if !t.selector.matches(key) || excluded(list, state, head, var, key) {
                        continue;
                    }
                    let value = match var {
                        Var::Files => Val::Ref(f.filename.as_slice()),
                        Var::FilesNames => Val::Ref(key),
                        Var::FilesSizes => Val::num(f.size),
                        _ => Val::Ref(f.content_in(data.inspected_body())),
                    };
                    out.push(Item {
                        var,
                        key: Val::Ref(key),
                        value,
                    });
                }
            }
        }
        Var::FilesCombinedSize => {
            let n: usize = body
                .map(|b| b.files.iter().map(|f| f.size).sum())
                .unwrap_or(0);
            scalar(Val::num(n), out)
        }
        Var::MultipartPartHeaders => {
            if let Some(b) = body {
                kv(&b.multipart_part_headers, false, out)
            }
        }
        Var::Multipart(m) => {
            let v = body
                .and_then(|b| b.multipart.as_ref())
                .and_then(|f| f.get(m.name()))
                .map(|v| Val::copy(&v.to_bytes()))
                .unwrap_or(Val::Ref(b"0"));
            scalar(v, out)
        }
        Var::Xml => {
            if let Some(x) = body.and_then(|b| b.xml.as_ref()) {
                let attrs = matches!(&t.selector, Selector::XPath(p) if p.contains('@'));
                let list = if attrs { &x.attributes } else { &x.text };
                for v in list {
                    out.push(Item {
                        var,
                        key: Val::Ref(b""),
                        value: Val::Ref(v.as_slice()),
                    });
                }
            }
        }
        Var::Tx if t.tx_key.is_some() => {
            if let Some(key) = t.tx_key.as_deref() {
                // Exclusions compare names case-insensitively.
                let value = match t.tx_slot {
                    Some(slot) => state.tx.get_slot(slot),
                    None => state.tx.get(key),
                };
                if let Some(v) = value {
                    if !excluded(list, state, head, var, key.as_bytes()) {
                        out.push(Item {
                            var,
                            key: Val::Ref(key.as_bytes()),
                            value: Val::copy(v),
                        });
                    }
                }
            }
        }
        Var::Tx => {
            let mut vars: Vec<(&str, &[u8])> = state
                .tx
                .iter()
                .filter(|(k, _)| t.selector.matches(k.as_bytes()))
                .collect();
            vars.sort();
            for (k, v) in vars {
                if excluded(list, state, head, var, k.as_bytes()) {
                    continue;
                }
                out.push(Item {
                    var,
                    key: Val::copy(k.as_bytes()),
                    value: Val::copy(v),
                });
            }
        }
        Var::Ip | Var::Global | Var::Session | Var::User | Var::Resource => {
            if let Some(c) = state.colls.get(&var.name().to_ascii_lowercase()) {
                for (k, v) in c {
                    if t.selector.matches(k.as_bytes()) {
                        out.push(Item {
                            var,
                            key: Val::copy(k.as_bytes()),
                            value: Val::copy(v),
                        });
                    }
                }
            }
        }
        Var::MatchedVar => scalar(Val::copy(&state.matched_var), out),
        Var::MatchedVarName => scalar(Val::copy(&state.matched_var_name), out),
        Var::MatchedVars | Var::MatchedVarsNames => {
            for (name, v) in &state.matched_vars[..state.matched_vars_len] {
                if !t.selector.matches(name.as_bytes()) {
                    continue;
                }
                let value = if var == Var::MatchedVars {
                    Val::copy(v)
                } else {
                    Val::copy(name.as_bytes())
                };
                out.push(Item {
                    var,
                    key: Val::copy(name.as_bytes()),
                    value,
                });
            }
        }
        Var::ReqbodyError => {
            let e = body.is_some_and(|b| b.error.is_some());
            scalar(Val::Ref(if e { b"1" } else { b"0" }), out)
        }
        Var::ReqbodyProcessorError => {
            let e = body.is_some_and(|b| b.error.is_some());
            scalar(Val::Ref(if e { b"1" } else { b"0" }), out)
        }
        Var::ReqbodyErrorMsg => {
            let m = body
                .and_then(|b| b.error.as_ref())
                .map(|e| e.as_bytes())
                .unwrap_or_default();
            scalar(Val::Ref(m), out)
        }
        Var::ReqbodyProcessor => {
            // Before the body is read, this reflects a ctl: choice or the default.
            let p = data
                .processor
                .or(state.body_processor)
                .or_else(|| default_processor(data.header(b"content-type").unwrap_or(b"")));
            // Empty (not absent) without a processor: CRS tests it with `!@rx`.
            let name: &'static [u8] = p.map(|p| p.name().as_bytes()).unwrap_or(b"");
            scalar(Val::Ref(name), out)
        }
        Var::RemoteAddr => scalar(Val::Ref(data.req.remote_addr.as_bytes()), out),
        Var::RemotePort => scalar(Val::num(data.req.remote_port as usize), out),
        Var::ServerName => scalar(Val::Ref(&data.server_name), out),
        Var::UniqueId => scalar(Val::Ref(data.req.unique_id.as_bytes()), out),
        Var::FullRequestLength => {
            let n = data.request_line.len()
                + data
                    .req
                    .headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 4)
                    .sum::<usize>()
                + data.inspected_body().len();
            scalar(Val::num(n), out)
        }
        Var::HighestSeverity => {
            let s = state.highest_severity.unwrap_or(255);
            scalar(Val::num(s as usize), out)
        }
        Var::Duration => scalar(Val::Ref(b"0"), out),
        Var::UrlencodedError => {
            let e = body.is_some_and(|b| b.urlencoded_error);
            scalar(Val::Ref(if e { b"1" } else { b"0" }), out)
        }
        Var::InboundDataError => {
            let e = data.body_over_limit;
            scalar(Val::Ref(if e { b"1" } else { b"0" }), out)
        }
        Var::OutboundDataError => {
            let e = data.resp.body_over_limit;
            scalar(Val::Ref(if e { b"1" } else { b"0" }), out)
        }
        // Response variables exist once the response headers are known.
        Var::ResponseHeaders if data.resp.seen => kv(&data.resp.headers, false, out),
        Var::ResponseHeadersNames if data.resp.seen => kv(&data.resp.headers, true, out),
        Var::ResponseStatus if data.resp.seen => scalar(Val::Ref(&data.resp.status_text), out),
        Var::ResponseProtocol if data.resp.seen => scalar(Val::Ref(&data.resp.protocol), out),
        Var::StatusLine if data.resp.seen => scalar(Val::Ref(&data.resp.status_line), out),
        Var::ResponseContentType if data.resp.seen => {
            if let Some(v) = data.resp.header(b"content-type") {
                scalar(Val::Ref(v), out)
            }
        }
        Var::ResponseContentLength if data.resp.seen => match data.resp.header(b"content-length") {
            Some(v) => scalar(Val::Ref(v), out),
            None if data.resp.body_read => scalar(Val::num(data.resp.body.len()), out),
            None => {}
        },
        Var::ResponseBody if data.resp.body_read => scalar(Val::Ref(&data.resp.body), out),
        // Host variables, and response variables before the response.
        _ => {}
    }
    if t.count {
        let n = out.len() - start;
        out.truncate(start);
        out.push(Item {
            var,
            key: match &t.selector {
                Selector::All => Val::Ref(b""),
                Selector::Key(k) | Selector::XPath(k) => Val::Ref(k.as_bytes()),
                other => Val::Heap(other.text().into_bytes()),
            },
            value: Val::num(n),
        });
    }
}
