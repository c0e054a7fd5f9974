//! Parsing of action arguments (`phase:`, `severity:`, `setvar:`,
//! `ctl:`, numbers).

use super::*;

pub(super) fn parse_num(v: Option<&String>) -> Result<usize, String> {
    v.and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| format!("expects a number, got {v:?}"))
}

pub(super) fn parse_phase(v: Option<&str>) -> Result<u8, String> {
    match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Some("1") | Some("request_headers") => Ok(1),
        Some("2") | Some("request") => Ok(2),
        Some("3") | Some("response_headers") => Ok(3),
        Some("4") | Some("response") => Ok(4),
        Some("5") | Some("logging") => Ok(5),
        other => Err(format!("bad phase {other:?}")),
    }
}

pub(super) fn parse_severity(s: &str) -> Result<u8, String> {
    Ok(match s.trim().to_ascii_uppercase().as_str() {
        "EMERGENCY" | "0" => 0,
        "ALERT" | "1" => 1,
        "CRITICAL" | "2" => 2,
        "ERROR" | "3" => 3,
        "WARNING" | "4" => 4,
        "NOTICE" | "5" => 5,
        "INFO" | "6" => 6,
        "DEBUG" | "7" => 7,
        other => return Err(format!("bad severity {other:?}")),
    })
}

pub(super) fn parse_setvar(s: &str) -> Result<SetVar, String> {
    let s = s.trim();
    let (delete, s) = match s.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (lhs, op) = if delete {
        (s, SetOp::Delete)
    } else if let Some((l, r)) = s.split_once('=') {
        if let Some(rest) = r.strip_prefix('+') {
            (l, SetOp::Add(MacroText::parse(rest)))
        } else if let Some(rest) = r.strip_prefix('-') {
            (l, SetOp::Sub(MacroText::parse(rest)))
        } else {
            (l, SetOp::Set(MacroText::parse(r)))
        }
    } else {
        (s, SetOp::Set(MacroText::parse("1")))
    };
    let (coll, name) = lhs
        .split_once('.')
        .ok_or_else(|| format!("setvar needs collection.name, got {lhs:?}"))?;
    let coll = coll.trim().to_ascii_lowercase();
    if !matches!(
        coll.as_str(),
        "tx" | "ip" | "global" | "session" | "user" | "resource"
    ) {
        return Err(format!("setvar: unknown collection {coll:?}"));
    }
    Ok(SetVar {
        tx_slot: None,
        collection: coll,
        name: MacroText::parse(&name.trim().to_ascii_lowercase()),
        op,
    })
}

pub(super) fn parse_ctl(s: &str) -> Result<Ctl, String> {
    let (name, value) = s
        .split_once('=')
        .ok_or_else(|| format!("ctl needs name=value, got {s:?}"))?;
    let value = value.trim();
    let target = |v: &str| -> Result<(Var, Selector), String> {
        let list = parse_targets(v)?;
        let t = list
            .targets
            .into_iter()
            .next()
            .ok_or_else(|| format!("ctl: no target in {v:?}"))?;
        Ok((t.var, t.selector))
    };
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "ruleremovebyid" => Ctl::RuleRemoveById(
            value
                .split([' ', ','])
                .filter(|p| !p.is_empty())
                .map(IdRange::parse)
                .collect::<Result<_, _>>()?,
        ),
        "ruleremovebytag" => Ctl::RuleRemoveByTag(value.to_string()),
        "ruleremovetargetbyid" => {
            let (id, t) = value
                .split_once(';')
                .ok_or("ruleRemoveTargetById needs id;TARGET")?;
            let (v, sel) = target(t)?;
            Ctl::RuleRemoveTargetById(IdRange::parse(id)?, v, sel)
        }
        "ruleremovetargetbytag" => {
            let (tag, t) = value
                .split_once(';')
                .ok_or("ruleRemoveTargetByTag needs tag;TARGET")?;
            let (v, sel) = target(t)?;
            Ctl::RuleRemoveTargetByTag(tag.to_string(), v, sel)
        }
        "ruleengine" => Ctl::RuleEngine(match value.to_ascii_lowercase().as_str() {
            "on" => EngineMode::On,
            "off" => EngineMode::Off,
            "detectiononly" => EngineMode::DetectionOnly,
            v => return Err(format!("ctl:ruleEngine: bad value {v:?}")),
        }),
        "requestbodyprocessor" => Ctl::RequestBodyProcessor(
            Processor::from_name(value)
                .ok_or_else(|| format!("unknown body processor {value:?}"))?,
        ),
        "forcerequestbodyvariable" => {
            Ctl::ForceRequestBodyVariable(value.eq_ignore_ascii_case("on"))
        }
        "requestbodyaccess" => Ctl::RequestBodyAccess(value.eq_ignore_ascii_case("on")),
        "auditengine" | "auditlogparts" | "debugloglevel" | "requestbodylimit"
        | "responsebodyaccess" | "hashengine" => Ctl::Ignored,
        other => return Err(format!("unsupported ctl:{other}")),
    })
}
