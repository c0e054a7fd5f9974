//! `t:parityEven7bit`, `t:parityOdd7bit` and `t:parityZero7bit`.

use super::bytes::changed;

#[derive(Clone, Copy)]
pub(super) enum Parity {
    Even,
    Odd,
    Zero,
}

/// `t:parityEven7bit` / `t:parityOdd7bit` / `t:parityZero7bit`. As in
/// ModSecurity, the parity is computed over all 8 bits of the byte and then
/// bit 7 is set or cleared.
pub(super) fn parity(input: &[u8], kind: Parity) -> Option<Vec<u8>> {
    let out: Vec<u8> = input
        .iter()
        .map(|&x| {
            let odd = x.count_ones() % 2 == 1;
            let set_high = match kind {
                Parity::Even => odd,
                Parity::Odd => !odd,
                Parity::Zero => false,
            };
            if set_high {
                x | 0x80
            } else {
                x & 0x7f
            }
        })
        .collect();
    changed(input, out)
}
