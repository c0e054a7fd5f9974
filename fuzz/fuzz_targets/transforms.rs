//! Fuzzes every transformation (`t:`) on arbitrary bytes: never panics, and
//! a transformation never changes a value that has none of the bytes its
//! trigger mask names (the engine skips such chains without running them,
//! so a wrong mask would hide a value from the rules).
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_waf::transform::{byte_flags, flags, Transform};

fuzz_target!(|data: &[u8]| {
    let present = byte_flags(data);
    for &t in Transform::ALL {
        let out = t.apply(data);
        // As the engine does: an `ALWAYS` mask always runs the chain.
        let mask = t.trigger_mask();
        if mask != flags::ALWAYS && present & mask == 0 {
            assert!(
                out.as_deref().is_none_or(|o| o == data),
                "{} changed a value it has no trigger for",
                t.name()
            );
        }
        // Chains apply transformations to each other's output.
        if let Some(o) = &out {
            let _ = Transform::ALL[o.len() % Transform::ALL.len()].apply(o);
        }
    }
});
