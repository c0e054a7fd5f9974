//! Why a score is what it is: a small set of flags events can carry.

use std::ops::{BitOr, BitOrAssign};

/// A set of reasons (a 32-bit flag set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Reasons(u32);

macro_rules! reasons {
    ($($(#[$doc:meta])* $name:ident = $bit:expr, $label:expr;)*) => {
        impl Reasons {
            $($(#[$doc])* pub const $name: Reasons = Reasons(1 << $bit);)*
            const ALL: &'static [(Reasons, &'static str)] = &[$((Reasons::$name, $label)),*];
        }
    };
}

reasons! {
    /// The user agent is an HTTP library or tool.
    LIBRARY_UA = 0, "library_ua";
    /// The user agent is a headless or driven browser.
    HEADLESS_UA = 1, "headless_ua";
    /// No user agent.
    EMPTY_UA = 2, "empty_ua";
    /// A self-declared crawler the edge did not verify.
    DECLARED_BOT = 3, "declared_bot";
    /// A user agent that is neither a browser nor a known tool.
    UNKNOWN_UA = 4, "unknown_ua";
    /// A browser without Accept-Language.
    NO_ACCEPT_LANGUAGE = 5, "no_accept_language";
    /// A browser without Sec-Fetch-* headers.
    NO_SEC_FETCH = 6, "no_sec_fetch";
    /// A Chromium browser without Sec-CH-UA.
    NO_CLIENT_HINTS = 7, "no_client_hints";
    /// A browser without Accept-Encoding.
    NO_ACCEPT_ENCODING = 8, "no_accept_encoding";
    /// The header fingerprint is not the claimed browser's.
    FINGERPRINT_MISMATCH = 9, "fingerprint_mismatch";
    /// Requests come at regular intervals (a timer).
    REGULAR_TIMING = 10, "regular_timing";
    /// Many HTML pages, (almost) no assets.
    NO_ASSETS = 11, "no_assets";
    /// Nearly every page requested is a new one (a crawl).
    HIGH_PATH_DIVERSITY = 12, "high_path_diversity";
    /// Many responses are errors.
    HIGH_ERROR_RATIO = 13, "high_error_ratio";
    /// Cookies given are not sent back.
    NO_COOKIE_CONTINUITY = 14, "no_cookie_continuity";
    /// Pages are requested faster than people read.
    HIGH_RATE = 15, "high_rate";
    /// The client holds a clearance (raised the score).
    CLEARED = 16, "cleared";
    /// A verified crawler (scored 1 on purpose: allow it by this flag).
    VERIFIED_CRAWLER = 17, "verified_crawler";
    /// Other nodes' view of the client contributed.
    FLEET_EVIDENCE = 18, "fleet_evidence";
    /// Page rate far from the route's baseline.
    UNUSUAL_RATE = 19, "unusual_rate";
    /// Error ratio far from the route's baseline.
    UNUSUAL_ERRORS = 20, "unusual_errors";
    /// Asset ratio far from the route's baseline.
    UNUSUAL_ASSETS = 21, "unusual_assets";
    /// Path diversity far from the route's baseline.
    UNUSUAL_PATHS = 22, "unusual_paths";
    /// Timing regularity far from the route's baseline.
    UNUSUAL_TIMING = 23, "unusual_timing";
}

impl Reasons {
    /// No reason.
    pub const fn empty() -> Reasons {
        Reasons(0)
    }

    /// The raw bits (stable: bit numbers never change meaning).
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// The set of `bits` (unknown bits dropped).
    pub fn from_bits(bits: u32) -> Reasons {
        let known = Reasons::ALL.iter().fold(0, |a, (r, _)| a | r.0);
        Reasons(bits & known)
    }

    /// Whether every reason of `other` is in `self`.
    pub const fn contains(self, other: Reasons) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// Whether there is no reason.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The reasons' names (snake case), in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Reasons::ALL
            .iter()
            .filter(move |(r, _)| self.0 & r.0 != 0)
            .map(|(_, n)| *n)
    }
}

impl BitOr for Reasons {
    type Output = Reasons;
    fn bitor(self, o: Reasons) -> Reasons {
        Reasons(self.0 | o.0)
    }
}

impl BitOrAssign for Reasons {
    fn bitor_assign(&mut self, o: Reasons) {
        self.0 |= o.0;
    }
}
