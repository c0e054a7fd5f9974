//! `[bots]`: the bot defence's settings — the challenge, bot and anomaly
//! scores, verified crawlers and account protection. The engine is
//! `palisade-bots` (and the edge); this module owns what the policy file
//! says and its validation.
//!
//! ```toml
//! [bots]
//! score = true                 # compute palisade.bot.score / palisade.anomaly.score
//!
//! [bots.challenge]
//! bits = 16                    # proof of work: leading zero bits of SHA-256
//! raise_bits = true            # +2 bits under score 30, +4 under score 10
//! ttl = "1h"                   # how long a clearance is valid
//! challenge_ttl = "5m"         # how long a challenge may take
//! bind_ipv4_prefix = 24        # a clearance is valid from this /24 ...
//! bind_ipv6_prefix = 64        # ... or this /64 only
//! bind_user_agent = true       # ... and with this User-Agent only
//!
//! [[bots.crawlers]]            # see `crawlers`
//! [[bots.logins]]              # see `logins`
//! ```

pub mod crawlers;
pub mod logins;

use crate::duration::parse_duration_ms;
use serde::Deserialize;

/// The compiled `[bots]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct BotsPolicy {
    /// Compute the bot and anomaly scores.
    pub score: bool,
    /// The challenge.
    pub challenge: ChallengeSettings,
    /// Known crawlers to verify.
    pub crawlers: Vec<crawlers::CrawlerSpec>,
    /// Login endpoints to protect.
    pub logins: Vec<logins::LoginSpec>,
}

/// `[bots.challenge]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeSettings {
    /// Leading zero bits the proof of work asks for.
    pub bits: u8,
    /// Ask more of sources with worse scores.
    pub raise_bits: bool,
    /// Clearance lifetime.
    pub ttl_ms: u64,
    /// Challenge lifetime.
    pub challenge_ttl_ms: u64,
    /// IPv4 prefix a clearance is bound to (0: none).
    pub bind_ipv4_prefix: u8,
    /// IPv6 prefix a clearance is bound to (0: none).
    pub bind_ipv6_prefix: u8,
    /// A clearance is bound to the User-Agent.
    pub bind_user_agent: bool,
}

impl Default for ChallengeSettings {
    fn default() -> Self {
        ChallengeSettings {
            bits: 16,
            raise_bits: true,
            ttl_ms: 3_600_000,
            challenge_ttl_ms: 300_000,
            bind_ipv4_prefix: 24,
            bind_ipv6_prefix: 64,
            bind_user_agent: true,
        }
    }
}

impl ChallengeSettings {
    /// The work asked of a client with `score` (`None`: not scored).
    pub fn bits_for(&self, score: Option<u8>) -> u8 {
        let extra = match score {
            Some(s) if self.raise_bits && s < 10 => 4,
            Some(s) if self.raise_bits && s < 30 => 2,
            _ => 0,
        };
        self.bits.saturating_add(extra).min(MAX_BITS)
    }
}

/// The most work a challenge may ask (2^28 hashes: minutes in a browser).
pub const MAX_BITS: u8 = 28;

/// `[bots]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBots {
    #[serde(default)]
    score: Option<bool>,
    #[serde(default)]
    challenge: Option<RawChallenge>,
    #[serde(default)]
    crawlers: Vec<crawlers::CrawlerSpec>,
    #[serde(default)]
    logins: Vec<logins::LoginConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChallenge {
    bits: Option<i64>,
    raise_bits: Option<bool>,
    ttl: Option<String>,
    challenge_ttl: Option<String>,
    bind_ipv4_prefix: Option<i64>,
    bind_ipv6_prefix: Option<i64>,
    bind_user_agent: Option<bool>,
}

impl BotsPolicy {
    /// What a policy that uses `challenge` without a `[bots]` section
    /// gets: the challenge with its defaults, no scores.
    pub fn challenge_only() -> BotsPolicy {
        BotsPolicy {
            score: false,
            challenge: ChallengeSettings::default(),
            crawlers: Vec::new(),
            logins: Vec::new(),
        }
    }
}

impl RawBots {
    /// Compiles the section, reporting every problem (`bots.…: message`).
    pub fn compile(&self) -> Result<BotsPolicy, Vec<String>> {
        let mut errors = Vec::new();
        let mut challenge = ChallengeSettings::default();
        if let Some(c) = &self.challenge {
            let mut int = |name: &str, v: Option<i64>, lo: i64, hi: i64, out: &mut u8| {
                if let Some(v) = v {
                    if (lo..=hi).contains(&v) {
                        *out = v as u8;
                    } else {
                        errors.push(format!(
                            "bots.challenge.{name}: {v} is not between {lo} and {hi}"
                        ));
                    }
                }
            };
            int("bits", c.bits, 8, i64::from(MAX_BITS), &mut challenge.bits);
            int(
                "bind_ipv4_prefix",
                c.bind_ipv4_prefix,
                0,
                32,
                &mut challenge.bind_ipv4_prefix,
            );
            int(
                "bind_ipv6_prefix",
                c.bind_ipv6_prefix,
                0,
                128,
                &mut challenge.bind_ipv6_prefix,
            );
            let mut dur = |name: &str, v: &Option<String>, lo: u64, hi: u64, out: &mut u64| {
                if let Some(v) = v {
                    match parse_duration_ms(v) {
                        Ok(ms) if (lo..=hi).contains(&ms) => *out = ms,
                        Ok(_) => errors.push(format!(
                            "bots.challenge.{name}: `{v}` is out of range ({}s to {}s)",
                            lo / 1000,
                            hi / 1000
                        )),
                        Err(e) => errors.push(format!("bots.challenge.{name}: {e}")),
                    }
                }
            };
            dur(
                "ttl",
                &c.ttl,
                60_000,
                // At most the 7 days old keys verify after a rotation.
                7 * 86_400_000,
                &mut challenge.ttl_ms,
            );
            dur(
                "challenge_ttl",
                &c.challenge_ttl,
                10_000,
                3_600_000,
                &mut challenge.challenge_ttl_ms,
            );
            if let Some(b) = c.raise_bits {
                challenge.raise_bits = b;
            }
            if let Some(b) = c.bind_user_agent {
                challenge.bind_user_agent = b;
            }
        }
        if let Err(e) = crawlers::validate(&self.crawlers) {
            errors.extend(e);
        }
        let logins = match logins::validate_all(&self.logins) {
            Ok(l) => l,
            Err(e) => {
                errors.extend(e);
                Vec::new()
            }
        };
        if errors.is_empty() {
            Ok(BotsPolicy {
                score: self.score.unwrap_or(true),
                challenge,
                crawlers: self.crawlers.clone(),
                logins,
            })
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(src: &str) -> Result<BotsPolicy, Vec<String>> {
        #[derive(Deserialize)]
        struct F {
            bots: RawBots,
        }
        toml::from_str::<F>(src).unwrap().bots.compile()
    }

    #[test]
    fn defaults_and_settings() {
        let b = compile("[bots]\n").unwrap();
        assert!(b.score);
        assert_eq!(b.challenge, ChallengeSettings::default());
        let b = compile(
            "[bots]\nscore = false\n[bots.challenge]\nbits = 12\nttl = \"2h\"\nbind_user_agent = false\n",
        )
        .unwrap();
        assert!(!b.score);
        assert_eq!(
            (
                b.challenge.bits,
                b.challenge.ttl_ms,
                b.challenge.bind_user_agent
            ),
            (12, 7_200_000, false)
        );
        assert_eq!(b.challenge.bits_for(Some(5)), 16);
        assert_eq!(b.challenge.bits_for(Some(20)), 14);
        assert_eq!(b.challenge.bits_for(Some(90)), 12);
        assert_eq!(b.challenge.bits_for(None), 12);
    }

    #[test]
    fn every_problem_is_reported() {
        let errs = compile(
            r#"[bots.challenge]
bits = 40
ttl = "1s"
bind_ipv4_prefix = 33
bind_ipv6_prefix = -1
[[bots.crawlers]]
name = ""
user_agent = "Googlebot"
domains = ["googlebot.com"]
[[bots.logins]]
path = "login"
username_field = ""
"#,
        )
        .unwrap_err();
        for want in [
            "bots.challenge.bits",
            "bots.challenge.ttl",
            "bots.challenge.bind_ipv4_prefix",
            "bots.challenge.bind_ipv6_prefix",
            "bots.crawlers[0]",
            "bots.logins[0]",
        ] {
            assert!(errs.iter().any(|e| e.contains(want)), "{want} in {errs:#?}");
        }
    }
}
