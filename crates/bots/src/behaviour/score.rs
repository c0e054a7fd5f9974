//! The bot score: static request signals first, then behaviour once there is
//! evidence. Integer points, documented in the module docs' table.

use super::reasons::Reasons;
use super::signals::{RequestSignals, UaClass};
use super::stats::{Features, MIN_REQUESTS};

/// The two scores and why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scores {
    /// 1 = surely automated … 99 = surely human.
    pub bot: u8,
    /// 0 = typical of the route's clients … 99 = far from them.
    pub anomaly: u8,
    /// Why (see [`Reasons`]).
    pub reasons: Reasons,
}

/// The score a client starts from, by what its request says.
pub fn static_score(s: &RequestSignals) -> (i32, Reasons) {
    let mut r = Reasons::empty();
    let base = match s.ua {
        UaClass::Library => {
            r |= Reasons::LIBRARY_UA;
            2
        }
        UaClass::Headless => {
            r |= Reasons::HEADLESS_UA;
            2
        }
        UaClass::Empty => {
            r |= Reasons::EMPTY_UA;
            5
        }
        UaClass::DeclaredBot => {
            r |= Reasons::DECLARED_BOT;
            5
        }
        UaClass::Other => {
            r |= Reasons::UNKNOWN_UA;
            25
        }
        UaClass::Chromium | UaClass::Firefox | UaClass::Safari | UaClass::OtherBrowser => {
            let mut b = 90;
            let mut lack = |has: bool, points: i32, why: Reasons| {
                if !has {
                    b -= points;
                    r |= why;
                }
            };
            lack(s.accept_language, 20, Reasons::NO_ACCEPT_LANGUAGE);
            lack(s.sec_fetch, 20, Reasons::NO_SEC_FETCH);
            lack(
                s.ua != UaClass::Chromium || s.sec_ch_ua,
                10,
                Reasons::NO_CLIENT_HINTS,
            );
            lack(s.accept_encoding, 15, Reasons::NO_ACCEPT_ENCODING);
            lack(!s.fingerprint_mismatch, 45, Reasons::FINGERPRINT_MISMATCH);
            b.max(5)
        }
    };
    // A clearance proves a challenge was solved (a JavaScript engine ran),
    // not that a person is there: it lifts the start, except for agents that
    // say they are automated.
    if s.cleared && !s.ua.is_automation() && s.ua != UaClass::DeclaredBot {
        r |= Reasons::CLEARED;
        return (base.max(80), r);
    }
    (base, r)
}

/// Points behaviour adds (negative: automated) and why, once the client made
/// at least [`MIN_REQUESTS`] requests.
pub fn behaviour_points(f: &Features) -> (i32, Reasons) {
    let mut p = 0;
    let mut r = Reasons::empty();
    if f.requests < MIN_REQUESTS {
        return (0, r);
    }
    if let Some(cv) = f.timing_cv {
        if cv < 0.1 {
            p -= 40;
            r |= Reasons::REGULAR_TIMING;
        } else if cv < 0.25 {
            p -= 20;
            r |= Reasons::REGULAR_TIMING;
        } else if cv > 1.0 {
            p += 5;
        }
    }
    if f.html >= 8 && f.assets.saturating_mul(10) < f.html {
        p -= if f.assets == 0 { 25 } else { 10 };
        r |= Reasons::NO_ASSETS;
    }
    if let Some(d) = f.diversity {
        if f.requests >= 16 && d > 0.9 {
            p -= 10;
            r |= Reasons::HIGH_PATH_DIVERSITY;
        }
    }
    if let Some(e) = f.error_ratio {
        if e > 0.5 {
            p -= 25;
            r |= Reasons::HIGH_ERROR_RATIO;
        } else if e > 0.25 {
            p -= 10;
            r |= Reasons::HIGH_ERROR_RATIO;
        }
    }
    if let Some(c) = f.cookie_ratio {
        if c < 0.1 {
            p -= 25;
            r |= Reasons::NO_COOKIE_CONTINUITY;
        } else if c < 0.5 {
            p -= 10;
            r |= Reasons::NO_COOKIE_CONTINUITY;
        } else if c > 0.9 {
            p += 5;
        }
    }
    if f.page_rate > 600.0 {
        p -= 30;
        r |= Reasons::HIGH_RATE;
    } else if f.page_rate > 120.0 {
        p -= 15;
        r |= Reasons::HIGH_RATE;
    }
    (p, r)
}

/// The bot score of a request with `signals` from a client whose behaviour
/// has `features` (combined local and fleet evidence, if any).
pub fn bot_score(signals: &RequestSignals, features: Option<&Features>) -> (u8, Reasons) {
    let (base, mut r) = static_score(signals);
    let (points, why) = features.map(behaviour_points).unwrap_or_default();
    r |= why;
    let mut score = (base + points).clamp(1, 99);
    // What the agent says of itself is not outweighed by good behaviour.
    if !signals.ua.is_browser() && signals.ua != UaClass::Other {
        score = score.min(base);
    }
    if signals.verified_crawler {
        r |= Reasons::VERIFIED_CRAWLER;
        score = 1;
    }
    (score as u8, r)
}
