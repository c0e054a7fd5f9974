//! The values a rule inspects ([`Item`]s): borrowed from the request, the
//! response or the rule set, or small inline copies.

use super::*;

/// Bytes of an [`Item`]: borrowed from the request, the response or the
/// rule set, or a copy (inline when short: reading a TX variable, a count
/// or a flag allocates nothing).
pub(super) enum Val<'d> {
    Ref(&'d [u8]),
    Inline(u8, [u8; INLINE]),
    Heap(Vec<u8>),
}

const INLINE: usize = 30;

impl<'d> Val<'d> {
    pub(super) fn copy(b: &[u8]) -> Val<'d> {
        if b.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..b.len()].copy_from_slice(b);
            Val::Inline(b.len() as u8, buf)
        } else {
            Val::Heap(b.to_vec())
        }
    }

    pub(super) fn num(n: usize) -> Val<'d> {
        let mut buf = [0u8; 20];
        let text = fmt_u64(n as u64, &mut buf);
        Val::copy(text)
    }

    /// Borrowed from data that lives as long as the transaction's values.
    pub(super) fn is_ref(&self) -> bool {
        matches!(self, Val::Ref(_))
    }
}

impl std::ops::Deref for Val<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Val::Ref(b) => b,
            Val::Inline(n, buf) => &buf[..*n as usize],
            Val::Heap(v) => v,
        }
    }
}

/// `n` in decimal, written at the end of `buf`.
fn fmt_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Appends `n` in decimal.
pub(super) fn push_i64(out: &mut Vec<u8>, n: i64) {
    if n < 0 {
        out.push(b'-');
    }
    let mut buf = [0u8; 20];
    out.extend_from_slice(fmt_u64(n.unsigned_abs(), &mut buf));
}

/// One value selected by a target: its variable name and its bytes.
pub(super) struct Item<'d> {
    pub(super) var: Var,
    pub(super) key: Val<'d>,
    pub(super) value: Val<'d>,
}

impl Item<'_> {
    /// `VAR` or `VAR:key` (the key read as UTF-8, lossily).
    pub(super) fn write_name(&self, out: &mut String) {
        out.clear();
        out.push_str(self.var.name());
        if !self.key.is_empty() {
            out.push(':');
            match std::str::from_utf8(&self.key) {
                Ok(key) => out.push_str(key),
                Err(_) => out.push_str(&String::from_utf8_lossy(&self.key)),
            }
        }
    }
}
