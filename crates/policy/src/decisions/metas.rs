//! Interned (reason, origin) pairs of a [`super::DecisionSet`]: an imported
//! list of a million entries shares one pair, reference-counted.

use ahash::RandomState;
use hashbrown::HashTable;

use super::DecisionError;

#[derive(Clone)]
struct Meta {
    reason: Box<str>,
    origin: Box<str>,
    refs: u32,
}

/// Interned (reason, origin) pairs, reference-counted by the entries using them.
#[derive(Clone, Default)]
pub(super) struct Metas {
    slots: Vec<Option<Meta>>,
    free: Vec<u32>,
    index: HashTable<u32>,
}

fn meta_hash(h: &RandomState, reason: &str, origin: &str) -> u64 {
    h.hash_one((reason, origin))
}

impl Metas {
    pub(super) fn get(&self, i: u32) -> (&str, &str) {
        match self.slots.get(i as usize) {
            Some(Some(m)) => (&m.reason, &m.origin),
            _ => ("", ""),
        }
    }

    pub(super) fn intern(
        &mut self,
        h: &RandomState,
        reason: &str,
        origin: &str,
    ) -> Result<u32, DecisionError> {
        let hash = meta_hash(h, reason, origin);
        let slots = &mut self.slots;
        let found = self.index.find(hash, |&i| {
            matches!(slots.get(i as usize), Some(Some(m)) if &*m.reason == reason && &*m.origin == origin)
        });
        if let Some(&i) = found {
            if let Some(Some(m)) = slots.get_mut(i as usize) {
                m.refs = m.refs.saturating_add(1);
            }
            return Ok(i);
        }
        let meta = Meta {
            reason: reason.into(),
            origin: origin.into(),
            refs: 1,
        };
        let i = match self.free.pop() {
            Some(i) => {
                if let Some(s) = slots.get_mut(i as usize) {
                    *s = Some(meta);
                }
                i
            }
            None => {
                let i = u32::try_from(slots.len()).map_err(|_| DecisionError::Full)?;
                slots.push(Some(meta));
                i
            }
        };
        let slots = &self.slots;
        self.index
            .insert_unique(hash, i, |&j| match slots.get(j as usize) {
                Some(Some(m)) => meta_hash(h, &m.reason, &m.origin),
                _ => 0,
            });
        Ok(i)
    }

    pub(super) fn release(&mut self, h: &RandomState, i: u32) {
        let Some(Some(m)) = self.slots.get_mut(i as usize) else {
            return;
        };
        m.refs = m.refs.saturating_sub(1);
        if m.refs > 0 {
            return;
        }
        let hash = meta_hash(h, &m.reason, &m.origin);
        if let Ok(e) = self.index.find_entry(hash, |&j| j == i) {
            e.remove();
        }
        if let Some(s) = self.slots.get_mut(i as usize) {
            *s = None;
        }
        self.free.push(i);
    }

    pub(super) fn len(&self) -> usize {
        self.index.len()
    }
}
