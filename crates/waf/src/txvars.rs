//! The TX collection of a transaction, with the variables the rules name
//! literally (`TX:blocking_paranoia_level`, `%{tx.inbound_anomaly_score}`,
//! `setvar:tx.anomaly_score=+5`: nearly all of CRS') numbered when the rule
//! set is loaded, so that rules read and write them by number instead of
//! hashing their names; names built at run time (`setvar:tx.%{...}`) go to a
//! map beside them.

use std::collections::HashMap;
use std::sync::Arc;

use crate::prefilter::SeededBuild;

/// TX variable names numbered at load (lower case, as TX names are stored).
#[derive(Debug, Default)]
pub struct TxNames {
    names: Vec<Box<str>>,
    index: HashMap<Box<str>, u32, SeededBuild>,
}

impl TxNames {
    /// The number of `name` (lower case), given one if it has none yet.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&slot) = self.index.get(name) {
            return slot;
        }
        let slot = self.names.len() as u32;
        self.names.push(name.into());
        self.index.insert(name.into(), slot);
        slot
    }

    /// The number of `name`, if it has one.
    pub fn slot(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// The TX variables of one transaction (names in lower case).
#[derive(Debug, Default)]
pub struct TxVars {
    names: Arc<TxNames>,
    /// Values of the numbered variables.
    slots: Vec<Option<Vec<u8>>>,
    /// Variables whose names were not known at load.
    other: HashMap<String, Vec<u8>, SeededBuild>,
}

impl TxVars {
    pub fn new(names: Arc<TxNames>) -> TxVars {
        TxVars {
            slots: vec![None; names.len()],
            names,
            other: HashMap::default(),
        }
    }

    /// The value of `name` (lower case).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        match self.names.slot(name) {
            Some(slot) => self.get_slot(slot),
            None => self.other.get(name).map(Vec::as_slice),
        }
    }

    /// The value of a numbered variable.
    pub fn get_slot(&self, slot: u32) -> Option<&[u8]> {
        self.slots.get(slot as usize)?.as_deref()
    }

    /// Sets `name` (lower case), reusing its buffer.
    pub fn set(&mut self, name: &str, value: &[u8]) {
        match self.names.slot(name) {
            Some(slot) => self.set_slot(slot, value),
            None => match self.other.get_mut(name) {
                Some(v) => {
                    v.clear();
                    v.extend_from_slice(value);
                }
                None => {
                    self.other.insert(name.to_string(), value.to_vec());
                }
            },
        }
    }

    /// Sets a numbered variable, reusing its buffer.
    pub fn set_slot(&mut self, slot: u32, value: &[u8]) {
        if let Some(entry) = self.slots.get_mut(slot as usize) {
            match entry {
                Some(v) => {
                    v.clear();
                    v.extend_from_slice(value);
                }
                None => *entry = Some(value.to_vec()),
            }
        }
    }

    /// Deletes `name` (lower case).
    pub fn remove(&mut self, name: &str) {
        match self.names.slot(name) {
            Some(slot) => self.remove_slot(slot),
            None => {
                self.other.remove(name);
            }
        }
    }

    /// Deletes a numbered variable.
    pub fn remove_slot(&mut self, slot: u32) {
        if let Some(entry) = self.slots.get_mut(slot as usize) {
            *entry = None;
        }
    }

    /// Every variable, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.slots
            .iter()
            .zip(&self.names.names)
            .filter_map(|(v, name)| v.as_deref().map(|v| (&**name, v)))
            .chain(self.other.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
    }

    /// How many variables are set.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|v| v.is_some()).count() + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_and_other_names_behave_alike() {
        let mut names = TxNames::default();
        let a = names.intern("anomaly_score");
        assert_eq!(names.intern("anomaly_score"), a);
        let mut tx = TxVars::new(Arc::new(names));
        assert_eq!(tx.get("anomaly_score"), None);
        tx.set("anomaly_score", b"5");
        assert_eq!(tx.get_slot(a), Some(&b"5"[..]));
        tx.set_slot(a, b"10");
        assert_eq!(tx.get("anomaly_score"), Some(&b"10"[..]));
        tx.set("paramcounter_x", b"1");
        assert_eq!(tx.get("paramcounter_x"), Some(&b"1"[..]));
        let mut all: Vec<(&str, &[u8])> = tx.iter().collect();
        all.sort();
        assert_eq!(
            all,
            vec![("anomaly_score", &b"10"[..]), ("paramcounter_x", &b"1"[..])]
        );
        assert_eq!(tx.len(), 2);
        tx.remove("anomaly_score");
        tx.remove("paramcounter_x");
        assert!(tx.is_empty());
        // A set without numbered names (a default transaction state).
        let mut bare = TxVars::default();
        bare.set("x", b"1");
        assert_eq!(bare.get("x"), Some(&b"1"[..]));
    }
}
