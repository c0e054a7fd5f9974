//! The phrases of several `@pm` / `@pmFromFile` rules that inspect the same
//! values (same targets, same transformations) as one set: one pass over a
//! value tells which of the rules can match it.
//!
//! CRS' response rules run seven phrase lists over `RESPONSE_BODY` (4,000
//! phrases, 80 KB); an Aho-Corasick automaton per list costs seven passes,
//! and one automaton for all of them is still slow on text (it walks a
//! large trie for every byte). Instead, every other position of the value
//! is looked up by its next 3 or 4 bytes (ASCII case folded) in a bit table
//! of the phrases' first bytes (taken at offsets 0 and 1, so that a phrase
//! starting at an odd position is seen from the even one after it); only
//! where the table says a phrase may start is the phrase trie walked,
//! anchored there, to find the phrases that really start at that position.
//! On ordinary text that is a few instructions per byte and a short walk
//! every few dozen bytes.
//!
//! The answer is exact (a rule's bit is set if and only if one of its
//! phrases occurs in the value, ASCII case-insensitively, as `@pm`
//! matches): a rule whose bit is clear cannot match the value, and a rule
//! whose bit is set is evaluated with its own automaton (which also gives
//! the phrase for `capture`).

use aho_corasick::automaton::Automaton;
use aho_corasick::nfa::contiguous::NFA;
use aho_corasick::{Anchored, MatchKind};

/// Folds ASCII upper case onto lower case in each byte (and some other
/// bytes onto each other: the table only has to never miss a phrase).
const FOLD: u32 = 0x2020_2020;
const HASH: u32 = 0x9E37_79B1;
/// The bit table: 2^16 bits (8 KiB), indexed by the top 16 bits of a hash.
const TABLE_WORDS: usize = 1 << 10;

/// Phrase lists of several rules as one set (see the module documentation).
#[derive(Debug)]
pub struct PmSet {
    /// Bit per hash of `width` bytes of a phrase at offsets `0..stride` (folded).
    table: Box<[u64; TABLE_WORDS]>,
    /// Bit per first two bytes of a phrase (folded; one byte: all pairs it
    /// starts): where none starts, the trie is not walked.
    starts: Box<[u64; TABLE_WORDS]>,
    /// How many bytes a position is looked up by (1 to 4).
    width: usize,
    /// Every how many positions a lookup is made (1 or 2): a phrase is then
    /// seen at the first looked-up position from its start.
    stride: usize,
    /// Every distinct phrase (ASCII case-insensitive), searched anchored.
    trie: NFA,
    /// Per phrase: the range of `owner_bits` holding its owners' bits.
    owners: Vec<(u32, u32)>,
    owner_bits: Vec<u32>,
}

impl PmSet {
    /// Builds the set from `(bit, phrases)` per rule; `None` without
    /// phrases or if the trie cannot be built.
    pub fn new(lists: &[(u32, &[Box<str>])]) -> Option<PmSet> {
        // Phrases are told apart as `@pm` compares them: ASCII case-insensitively.
        let mut index: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        let mut phrases: Vec<&[u8]> = Vec::new();
        let mut owned: Vec<Vec<u32>> = Vec::new();
        for (bit, list) in lists {
            for p in list.iter().map(|p| p.as_bytes()).filter(|p| !p.is_empty()) {
                let i = *index.entry(p.to_ascii_lowercase()).or_insert_with(|| {
                    phrases.push(p);
                    owned.push(Vec::new());
                    phrases.len() - 1
                });
                if !owned[i].contains(bit) {
                    owned[i].push(*bit);
                }
            }
        }
        let shortest = phrases.iter().map(|p| p.len()).min()?;
        // Every other position by 4 bytes when every phrase has 4 bytes;
        // else every position, by as many bytes as the shortest phrase has.
        let (stride, width) = if shortest >= 4 { (2, 4) } else { (1, shortest) };
        let mut starts = Box::new([0u64; TABLE_WORDS]);
        for p in &phrases {
            let pairs: Vec<u32> = match p {
                [a, b, ..] => vec![pair(*a, *b)],
                [a] => (0..=255u8).map(|b| pair(*a, b)).collect(),
                [] => Vec::new(),
            };
            for k in pairs {
                starts[k as usize >> 6] |= 1 << (k & 63);
            }
        }
        let mut table = Box::new([0u64; TABLE_WORDS]);
        let mut set = |w: u32| {
            let h = hash(w, width);
            table[h >> 6] |= 1 << (h & 63);
        };
        for p in &phrases {
            for offset in 0..stride {
                match p.get(offset..offset + width) {
                    Some(bytes) => set(word(bytes)),
                    // A 4-byte phrase seen from its second byte: the
                    // lookup reads one byte past it, whatever it is.
                    None => {
                        let head = word(&p[offset..]);
                        for b in 0..=255u32 {
                            set(head | b << 24);
                        }
                    }
                }
            }
        }
        let trie = NFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&phrases)
            .ok()?;
        let mut owners = Vec::with_capacity(owned.len());
        let mut owner_bits = Vec::new();
        for o in owned {
            owners.push((owner_bits.len() as u32, o.len() as u32));
            owner_bits.extend(o);
        }
        Some(PmSet {
            table,
            starts,
            width,
            stride,
            trie,
            owners,
            owner_bits,
        })
    }

    /// Sets in `bits` the bit of every rule with a phrase in `value`.
    /// `pending`: how many of the set's rules still have their bit clear;
    /// the scan stops when none is left. Returns the new count.
    pub fn scan(&self, value: &[u8], bits: &mut [u64], mut pending: usize) -> usize {
        let (width, stride) = (self.width, self.stride);
        if value.len() < width || pending == 0 {
            return pending;
        }
        let table: &[u64; TABLE_WORDS] = &self.table;
        let mask = u32::MAX >> (32 - 8 * width);
        let mut at = 0;
        // Whole 4-byte loads while they fit, then the last positions.
        while at + 4 <= value.len() {
            let w = match value[at..at + 4].try_into() {
                Ok(w) => u32::from_le_bytes(w),
                Err(_) => break,
            };
            let h = hash(w & mask, width);
            if table[h >> 6] & (1 << (h & 63)) != 0 {
                pending = self.candidates(value, at, bits, pending);
                if pending == 0 {
                    return 0;
                }
            }
            at += stride;
        }
        while at + width <= value.len() {
            let h = hash(word(&value[at..at + width]), width);
            if table[h >> 6] & (1 << (h & 63)) != 0 {
                pending = self.candidates(value, at, bits, pending);
                if pending == 0 {
                    return 0;
                }
            }
            at += stride;
        }
        if stride > 1 {
            // A 4-byte phrase ending the value at an odd start is seen from
            // no lookup (it would read past the end): walk the last starts.
            for start in value.len().saturating_sub(4)..value.len() {
                pending = self.walk(value, start, bits, pending);
            }
        }
        pending
    }

    /// The phrases starting where a looked-up position `at` may be in one:
    /// at `at`, or at `at - 1` with a stride of 2.
    fn candidates(&self, value: &[u8], at: usize, bits: &mut [u64], mut pending: usize) -> usize {
        for start in (at + 1).saturating_sub(self.stride)..=at {
            pending = self.walk(value, start, bits, pending);
        }
        pending
    }

    /// Walks the trie from `start`: every phrase that starts there.
    fn walk(&self, value: &[u8], start: usize, bits: &mut [u64], mut pending: usize) -> usize {
        if let [a, b, ..] = value[start..] {
            let k = pair(a, b);
            if self.starts[k as usize >> 6] & (1 << (k & 63)) == 0 {
                return pending;
            }
        }
        let trie = &self.trie;
        let Ok(mut sid) = trie.start_state(Anchored::Yes) else {
            return pending;
        };
        for (len, &b) in value[start..].iter().enumerate() {
            sid = trie.next_state(Anchored::Yes, sid, b);
            if !trie.is_special(sid) {
                continue;
            }
            if trie.is_dead(sid) {
                break;
            }
            if !trie.is_match(sid) {
                continue;
            }
            for k in 0..trie.match_len(sid) {
                let pid = trie.match_pattern(sid, k);
                // A state also reports the phrases that end here but
                // started later (suffixes): only those starting at `start`.
                if trie.pattern_len(pid) != len + 1 {
                    continue;
                }
                let (at, n) = self.owners[pid.as_usize()];
                for &bit in &self.owner_bits[at as usize..(at + n) as usize] {
                    let (w, m) = (bit as usize / 64, 1u64 << (bit % 64));
                    if bits[w] & m == 0 {
                        bits[w] |= m;
                        pending = pending.saturating_sub(1);
                    }
                }
            }
        }
        pending
    }

    /// Heap bytes held.
    pub fn memory_usage(&self) -> usize {
        2 * TABLE_WORDS * 8
            + self.trie.memory_usage()
            + self.owners.len() * 8
            + self.owner_bits.len() * 4
    }
}

/// Two bytes, case folded, as a table index.
#[inline(always)]
fn pair(a: u8, b: u8) -> u32 {
    (a as u32 | (b as u32) << 8) | 0x2020
}

/// Up to 4 bytes as a little-endian word.
fn word(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .enumerate()
        .fold(0, |w, (k, &b)| w | (b as u32) << (8 * k))
}

/// The table bit of `width` bytes (as a word): case folded, hashed, top 16 bits.
#[inline(always)]
fn hash(word: u32, width: usize) -> usize {
    let fold = FOLD >> (32 - 8 * width);
    ((word | fold).wrapping_mul(HASH) >> 16) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::AhoCorasickBuilder;

    fn lists(raw: &[&[&str]]) -> Vec<Vec<Box<str>>> {
        raw.iter()
            .map(|l| l.iter().map(|p| Box::from(*p)).collect())
            .collect()
    }

    fn scan(set: &PmSet, value: &[u8], rules: usize) -> Vec<u32> {
        let mut bits = vec![0u64; 1];
        set.scan(value, &mut bits, rules);
        (0..64).filter(|b| bits[0] & (1 << b) != 0).collect()
    }

    #[test]
    fn tells_which_lists_occur() {
        let l = lists(&[
            &["SQL syntax", "ORA-", "mysql_fetch"],
            &["<?php", "Fatal error"],
            &["ORA-"],
        ]);
        let input: Vec<(u32, &[Box<str>])> = vec![(0, &l[0]), (1, &l[1]), (5, &l[2])];
        let set = PmSet::new(&input).unwrap();
        assert_eq!(scan(&set, b"", 3), Vec::<u32>::new());
        assert_eq!(scan(&set, b"nothing to see here", 3), Vec::<u32>::new());
        assert_eq!(scan(&set, b"x ora-01756 y", 3), vec![0, 5]);
        assert_eq!(scan(&set, b"<?PHP echo", 3), vec![1]);
        assert_eq!(
            scan(&set, b"FATAL ERROR: ... You have an sql SYNTAX", 3),
            vec![0, 1]
        );
        // Phrases at the very start and the very end.
        assert_eq!(scan(&set, b"ORA-", 3), vec![0, 5]);
        assert_eq!(scan(&set, b"..mysql_fetch", 3), vec![0]);
        assert_eq!(scan(&set, b"mysql_fetc", 3), Vec::<u32>::new());
    }

    #[test]
    fn short_phrases() {
        let l = lists(&[&["br", "gzip"], &["x"]]);
        let set = PmSet::new(&[(0, &l[0][..]), (1, &l[1][..])]).unwrap();
        assert_eq!(scan(&set, b"BR", 2), vec![0]);
        assert_eq!(scan(&set, b"deflate", 2), Vec::<u32>::new());
        assert_eq!(scan(&set, b"x", 2), vec![1]);
        assert_eq!(scan(&set, b"Gzip, x", 2), vec![0, 1]);
    }

    #[test]
    fn agrees_with_aho_corasick() {
        // Phrases sharing prefixes and suffixes, some case variants, and
        // non-ASCII bytes; values built from pieces of them.
        let l = lists(&[
            &["abcd", "bcd", "Cannot redeclare", "été"],
            &["cannot", "xyz_1", "ÉTÉ"],
            &["d", "redeclared"],
        ]);
        let input: Vec<(u32, &[Box<str>])> = l
            .iter()
            .enumerate()
            .map(|(i, l)| (i as u32, &l[..]))
            .collect();
        let set = PmSet::new(&input).unwrap();
        let acs: Vec<_> = l
            .iter()
            .map(|l| {
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .build(l.iter().map(|p| p.as_bytes()))
                    .unwrap()
            })
            .collect();
        let pieces: [&[u8]; 9] = [
            b"ab",
            b"cd",
            b"CANNOT re",
            b"declare",
            b"\xc3\xa9t\xc3\xa9",
            b"xyz",
            b"_1",
            b" ",
            b"\xc3\x89",
        ];
        let mut seed = 1u64;
        for _ in 0..5000 {
            let mut v = Vec::new();
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            for k in 0..(seed >> 60) {
                v.extend_from_slice(pieces[((seed >> (4 * k)) % 9) as usize]);
            }
            let expected: Vec<u32> = (0..3).filter(|&i| acs[i as usize].is_match(&v)).collect();
            assert_eq!(
                scan(&set, &v, 3),
                expected,
                "{:?}",
                String::from_utf8_lossy(&v)
            );
        }
    }

    #[test]
    fn every_start_position() {
        // Lookups every other position: phrases at odd and even starts, at
        // the end, of the shortest length, in any case.
        let l = lists(&[&["ORA-", "Fatal error"], &["<?php"]]);
        let set = PmSet::new(&[(0, &l[0][..]), (1, &l[1][..])]).unwrap();
        for pad in 0..9 {
            for (phrase, bit) in [("ora-", 0u32), ("FATAL ERROR", 0), ("<?Php", 1)] {
                for tail in ["", "x", "xy", "xyz"] {
                    let v = format!("{}{phrase}{tail}", "-".repeat(pad));
                    assert_eq!(scan(&set, v.as_bytes(), 2), vec![bit], "{v:?}");
                }
            }
            let v = format!("{}or a- fatal", " ".repeat(pad));
            assert_eq!(scan(&set, v.as_bytes(), 2), Vec::<u32>::new(), "{v:?}");
        }
    }

    #[test]
    fn stops_when_every_rule_matched() {
        let l = lists(&[&["aaa"]]);
        let set = PmSet::new(&[(3, &l[0][..])]).unwrap();
        let mut bits = [0u64];
        assert_eq!(set.scan(b"xaaax", &mut bits, 1), 0);
        assert_eq!(bits[0], 1 << 3);
        // Nothing pending: nothing scanned.
        let mut none = [0u64];
        assert_eq!(set.scan(b"aaa", &mut none, 0), 0);
        assert_eq!(none[0], 0);
    }
}
