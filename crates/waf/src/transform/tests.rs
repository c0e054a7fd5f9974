use super::*;

#[test]
fn trigger_masks_are_sound() {
    // A value without any trigger byte must come back unchanged.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for &(_, t) in NAMES {
        let mask = t.trigger_mask();
        if mask == flags::ALWAYS {
            continue;
        }
        let allowed: Vec<u8> = (0..=255u8)
            .filter(|&b| BYTE_CLASS[b as usize] & mask == 0)
            .collect();
        for _ in 0..300 {
            let len = (next() % 24) as usize;
            let v: Vec<u8> = (0..len)
                .map(|_| allowed[(next() % allowed.len() as u64) as usize])
                .collect();
            assert_eq!(
                t.apply(&v),
                None,
                "{} changed {:?}",
                t.name(),
                String::from_utf8_lossy(&v)
            );
        }
    }
}

/// Output of `t` (the input itself when `apply` says "unchanged"), also
/// checking the `None` ⇔ unchanged contract.
fn run(t: Transform, input: &[u8]) -> Vec<u8> {
    match t.apply(input) {
        Some(v) => {
            assert_ne!(v, input, "{}: Some(..) equal to the input", t.name());
            v
        }
        None => input.to_vec(),
    }
}

fn all_bytes() -> Vec<u8> {
    (0..=255u8).collect()
}

#[test]
fn names_round_trip() {
    for &t in Transform::ALL {
        assert_eq!(Transform::from_name(t.name()), Some(t));
        assert_eq!(
            Transform::from_name(&t.name().to_ascii_lowercase()),
            Some(t)
        );
        assert_eq!(
            Transform::from_name(&t.name().to_ascii_uppercase()),
            Some(t)
        );
    }
    assert_eq!(
        Transform::from_name("base64decode"),
        Some(Transform::Base64Decode)
    );
    assert_eq!(
        Transform::from_name("normalisePath"),
        Some(Transform::NormalizePath)
    );
    assert_eq!(
        Transform::from_name("normalisePathWin"),
        Some(Transform::NormalizePathWin)
    );
    assert_eq!(
        Transform::from_name("utf8toUnicode"),
        Some(Transform::Utf8ToUnicode)
    );
    assert_eq!(Transform::from_name("bogus"), None);
    assert_eq!(Transform::from_name(""), None);
    assert_eq!(Transform::from_name("urlDecodeUniX"), None);
}

/// One vector file per transformation, named by its canonical name.
const VECTOR_FILES: &[(&str, &str)] = &[
    ("none", include_str!("../../testdata/transforms/none.txt")),
    (
        "lowercase",
        include_str!("../../testdata/transforms/lowercase.txt"),
    ),
    (
        "uppercase",
        include_str!("../../testdata/transforms/uppercase.txt"),
    ),
    (
        "urlDecode",
        include_str!("../../testdata/transforms/urlDecode.txt"),
    ),
    (
        "urlDecodeUni",
        include_str!("../../testdata/transforms/urlDecodeUni.txt"),
    ),
    (
        "urlEncode",
        include_str!("../../testdata/transforms/urlEncode.txt"),
    ),
    (
        "htmlEntityDecode",
        include_str!("../../testdata/transforms/htmlEntityDecode.txt"),
    ),
    (
        "jsDecode",
        include_str!("../../testdata/transforms/jsDecode.txt"),
    ),
    (
        "cssDecode",
        include_str!("../../testdata/transforms/cssDecode.txt"),
    ),
    (
        "cmdLine",
        include_str!("../../testdata/transforms/cmdLine.txt"),
    ),
    (
        "utf8toUnicode",
        include_str!("../../testdata/transforms/utf8toUnicode.txt"),
    ),
    (
        "normalizePath",
        include_str!("../../testdata/transforms/normalizePath.txt"),
    ),
    (
        "normalizePathWin",
        include_str!("../../testdata/transforms/normalizePathWin.txt"),
    ),
    (
        "removeNulls",
        include_str!("../../testdata/transforms/removeNulls.txt"),
    ),
    (
        "replaceNulls",
        include_str!("../../testdata/transforms/replaceNulls.txt"),
    ),
    (
        "replaceComments",
        include_str!("../../testdata/transforms/replaceComments.txt"),
    ),
    (
        "removeComments",
        include_str!("../../testdata/transforms/removeComments.txt"),
    ),
    (
        "removeCommentsChar",
        include_str!("../../testdata/transforms/removeCommentsChar.txt"),
    ),
    (
        "base64Decode",
        include_str!("../../testdata/transforms/base64Decode.txt"),
    ),
    (
        "base64DecodeExt",
        include_str!("../../testdata/transforms/base64DecodeExt.txt"),
    ),
    (
        "base64Encode",
        include_str!("../../testdata/transforms/base64Encode.txt"),
    ),
    (
        "hexDecode",
        include_str!("../../testdata/transforms/hexDecode.txt"),
    ),
    (
        "hexEncode",
        include_str!("../../testdata/transforms/hexEncode.txt"),
    ),
    (
        "sqlHexDecode",
        include_str!("../../testdata/transforms/sqlHexDecode.txt"),
    ),
    ("sha1", include_str!("../../testdata/transforms/sha1.txt")),
    ("md5", include_str!("../../testdata/transforms/md5.txt")),
    (
        "length",
        include_str!("../../testdata/transforms/length.txt"),
    ),
    (
        "compressWhitespace",
        include_str!("../../testdata/transforms/compressWhitespace.txt"),
    ),
    (
        "removeWhitespace",
        include_str!("../../testdata/transforms/removeWhitespace.txt"),
    ),
    (
        "escapeSeqDecode",
        include_str!("../../testdata/transforms/escapeSeqDecode.txt"),
    ),
    ("trim", include_str!("../../testdata/transforms/trim.txt")),
    (
        "trimLeft",
        include_str!("../../testdata/transforms/trimLeft.txt"),
    ),
    (
        "trimRight",
        include_str!("../../testdata/transforms/trimRight.txt"),
    ),
    (
        "parityEven7bit",
        include_str!("../../testdata/transforms/parityEven7bit.txt"),
    ),
    (
        "parityOdd7bit",
        include_str!("../../testdata/transforms/parityOdd7bit.txt"),
    ),
    (
        "parityZero7bit",
        include_str!("../../testdata/transforms/parityZero7bit.txt"),
    ),
];

/// Decodes one field of a vector line (`\\`, `\t`, `\n`, `\r`, `\xHH`).
fn unescape(field: &str, at: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'\\') => out.push(b'\\'),
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b'x') => {
                let hex = field.get(i + 2..i + 4).unwrap_or("");
                let v = u8::from_str_radix(hex, 16)
                    .unwrap_or_else(|_| panic!("{at}: bad \\x escape {hex:?}"));
                out.push(v);
                i += 2;
            }
            other => panic!("{at}: bad escape {other:?}"),
        }
        i += 2;
    }
    out
}

/// The vectors of one file: `(line number, input, expected)`.
fn parse_vectors(name: &str, text: &str) -> Vec<(usize, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = format!("testdata/transforms/{name}.txt:{}", n + 1);
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 2, "{at}: want input<TAB>expected");
        out.push((n + 1, unescape(fields[0], &at), unescape(fields[1], &at)));
    }
    out
}

#[test]
fn vectors_from_testdata() {
    let mut total = 0;
    for &(name, text) in VECTOR_FILES {
        let t = Transform::from_name(name)
            .unwrap_or_else(|| panic!("testdata/transforms/{name}.txt: unknown transformation"));
        assert_eq!(t.name(), name, "vector files are named canonically");
        for (line, input, expected) in parse_vectors(name, text) {
            let got = run(t, &input);
            assert_eq!(
                got,
                expected,
                "testdata/transforms/{name}.txt:{line}: t:{name} on {:?}: got {:?}, want {:?}",
                String::from_utf8_lossy(&input),
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected)
            );
            total += 1;
        }
    }
    // 391 vectors moved from the former inline tests, plus 3 for t:none.
    assert!(total >= 394, "only {total} transformation vectors");
}

#[test]
fn every_transformation_has_vectors() {
    for &t in Transform::ALL {
        let text = VECTOR_FILES
            .iter()
            .find(|(name, _)| *name == t.name())
            .map(|&(_, text)| text)
            .unwrap_or_else(|| panic!("no testdata/transforms/{}.txt", t.name()));
        assert!(
            !parse_vectors(t.name(), text).is_empty(),
            "testdata/transforms/{}.txt has no vector",
            t.name()
        );
    }
    assert_eq!(VECTOR_FILES.len(), Transform::ALL.len());
}

/// Deterministic xorshift generator for the robustness tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Bytes that are special to at least one transformation.
const SPECIAL: &[u8] =
    b"%+uUxX0123789aAfFgz&#;\\/.*-<!>=\"'^ \t\n\r\x0b\x00\x80\xa0\xc2\xc3\xe0\xed\xf0\xf5\xff(,";

#[test]
fn never_panics_exhaustive_short() {
    // Every string of 1 to 3 bytes over SPECIAL.
    let first = SPECIAL[0];
    for &a in SPECIAL {
        for &b in SPECIAL {
            for &c in SPECIAL {
                let len = if b == first && c == first {
                    1..=3
                } else if c == first {
                    2..=3
                } else {
                    3..=3
                };
                for l in len {
                    let buf = &[a, b, c][..l];
                    for &t in Transform::ALL {
                        run(t, buf);
                    }
                }
            }
        }
    }
    for &t in Transform::ALL {
        run(t, b"");
        run(t, &all_bytes());
    }
}

#[test]
fn never_panics_random() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut buf = Vec::new();
    for _ in 0..5_000 {
        buf.clear();
        let len = (rng.next() % 48) as usize;
        for _ in 0..len {
            let r = rng.next();
            buf.push(if r & 3 == 0 {
                (r >> 8) as u8
            } else {
                SPECIAL[((r >> 8) % SPECIAL.len() as u64) as usize]
            });
        }
        for &t in Transform::ALL {
            run(t, &buf);
        }
    }
}

#[test]
fn long_inputs_are_linear() {
    // Pathological repetitions; these must finish quickly.
    let inputs: Vec<Vec<u8>> = vec![
        b"&#".repeat(20_000),
        b"../".repeat(20_000),
        b"a/../".repeat(20_000),
        b"/*".repeat(20_000),
        b"\\u12".repeat(20_000),
        b"%u00".repeat(20_000),
        b"&amp".repeat(20_000),
        b"\\".repeat(20_000),
        b"0x4".repeat(20_000),
        b"\xe0\x80".repeat(20_000),
    ];
    for input in &inputs {
        for &t in Transform::ALL {
            let _ = t.apply(input);
        }
    }
}
