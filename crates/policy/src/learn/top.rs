//! The most frequent values of one field (methods, content types, parameter
//! names), each with its count and the distinct sources that sent it, in a
//! table of at most `cap` entries.
//!
//! When the table is full a new value replaces the one sent by the fewest
//! sources (then the least frequent): values many networks send stay, and a
//! flood of distinct junk values, each new one sent by one source, cycles
//! through one slot without pushing them out. The newcomer starts afresh
//! (count 1, its own source), so it never inherits the trust of what it
//! replaced.

use super::kmv::Kmv;
use super::Mergeable;
use serde::{Deserialize, Serialize};

/// One value and what is known of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueStat {
    /// The value (already normalized by the caller).
    pub value: String,
    /// Requests that carried it (since it last entered the table).
    pub count: u64,
    /// Distinct sources (client networks) that sent it.
    pub sources: Kmv,
}

/// The table. `cap` travels with it so that a merge keeps the tighter cap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopValues {
    entries: Vec<ValueStat>,
    /// Values that replaced another one (how much the table churns).
    pub replaced: u64,
    cap: u16,
}

/// Longest value kept; longer ones are cut (at a character boundary).
pub const MAX_VALUE_LEN: usize = 128;

/// `v`, cut to [`MAX_VALUE_LEN`] bytes at a character boundary.
pub(crate) fn clip(v: &str) -> &str {
    if v.len() <= MAX_VALUE_LEN {
        return v;
    }
    let mut end = MAX_VALUE_LEN;
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    &v[..end]
}

impl TopValues {
    /// An empty table of at most `cap` values (1 to 1024).
    pub fn new(cap: usize) -> TopValues {
        TopValues {
            entries: Vec::new(),
            replaced: 0,
            cap: cap.clamp(1, 1024) as u16,
        }
    }

    fn cap(&self) -> usize {
        usize::from(self.cap.max(1))
    }

    /// Counts one request that carried `value`, sent by `source` (a hash).
    pub fn observe(&mut self, value: &str, source: u64) {
        let value = clip(value);
        if let Some(e) = self.entries.iter_mut().find(|e| e.value == value) {
            e.count += 1;
            e.sources.insert(source);
            return;
        }
        let mut sources = Kmv::default();
        sources.insert(source);
        if self.entries.len() < self.cap() {
            self.entries.push(ValueStat {
                value: value.to_string(),
                count: 1,
                sources,
            });
            return;
        }
        // The newcomer takes the slot of the least supported value.
        if let Some(min) = self
            .entries
            .iter_mut()
            .min_by_key(|e| (e.sources.estimate(), e.count))
        {
            *min = ValueStat {
                value: value.to_string(),
                count: 1,
                sources,
            };
            self.replaced += 1;
        }
    }

    /// The values (most frequent first once merged or sanitized).
    pub fn values(&self) -> impl Iterator<Item = &ValueStat> {
        self.entries.iter()
    }

    /// How many values the table holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry of `value`.
    pub fn get(&self, value: &str) -> Option<&ValueStat> {
        self.entries.iter().find(|e| e.value == value)
    }

    /// Orders by count (then value, so that every node orders alike) and
    /// applies the cap; also fixes sketches of a state from another node.
    pub fn sanitize(&mut self) {
        for e in &mut self.entries {
            e.sources.sanitize();
            if e.value.len() > MAX_VALUE_LEN {
                e.value = clip(&e.value).to_string();
            }
        }
        self.entries
            .sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        self.entries.dedup_by(|b, a| {
            if a.value == b.value {
                a.count += b.count;
                a.sources.merge(&b.sources);
                true
            } else {
                false
            }
        });
        self.entries.truncate(self.cap());
    }
}

impl Mergeable for TopValues {
    fn merge(&mut self, other: &Self) {
        if self.cap == 0 || (other.cap != 0 && other.cap < self.cap) {
            self.cap = other.cap;
        }
        for o in &other.entries {
            match self.entries.iter_mut().find(|e| e.value == o.value) {
                Some(e) => {
                    e.count += o.count;
                    e.sources.merge(&o.sources);
                }
                None => self.entries.push(o.clone()),
            }
        }
        self.replaced += other.replaced;
        self.sanitize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(t: &TopValues) -> Vec<(&str, u64)> {
        let mut v: Vec<_> = t.values().map(|e| (e.value.as_str(), e.count)).collect();
        v.sort();
        v
    }

    #[test]
    fn counts_values_and_their_sources() {
        let mut t = TopValues::new(4);
        for s in 0..5 {
            t.observe("GET", s);
        }
        t.observe("POST", 1);
        t.observe("POST", 1);
        assert_eq!(counts(&t), vec![("GET", 5), ("POST", 2)]);
        assert_eq!(t.get("GET").unwrap().sources.estimate(), 5);
        assert_eq!(t.get("POST").unwrap().sources.estimate(), 1);
    }

    #[test]
    fn a_flood_of_junk_values_does_not_push_out_the_frequent_ones() {
        let mut t = TopValues::new(3);
        for _ in 0..100 {
            t.observe("application/json", 1);
            t.observe("text/plain", 2);
        }
        for i in 0..1000 {
            t.observe(&format!("junk/{i}"), 3);
        }
        assert_eq!(t.len(), 3);
        assert_eq!(t.get("application/json").unwrap().count, 100);
        assert_eq!(t.get("text/plain").unwrap().count, 100);
        assert_eq!(t.replaced, 999);
        // The newcomer does not inherit the sources of what it replaced.
        let junk = t.values().find(|e| e.value.starts_with("junk/")).unwrap();
        assert_eq!(junk.sources.estimate(), 1);
    }

    #[test]
    fn merge_sums_and_keeps_the_cap() {
        let mut a = TopValues::new(2);
        a.observe("GET", 1);
        a.observe("GET", 2);
        a.observe("PUT", 1);
        let mut b = TopValues::new(2);
        b.observe("GET", 3);
        b.observe("POST", 3);
        b.observe("POST", 4);
        b.observe("POST", 5);
        let mut ab = a.clone();
        ab.merge(&b);
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ab, ba);
        assert_eq!(counts(&ab), vec![("GET", 3), ("POST", 3)]);
        assert_eq!(ab.get("GET").unwrap().sources.estimate(), 3);
    }

    #[test]
    fn long_values_are_cut_at_a_character_boundary() {
        let mut t = TopValues::new(2);
        let v = "é".repeat(100);
        t.observe(&v, 1);
        let kept = &t.values().next().unwrap().value;
        assert!(kept.len() <= MAX_VALUE_LEN && v.starts_with(kept.as_str()));
    }
}
