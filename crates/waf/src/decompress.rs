//! Decoding `Content-Encoding`d bodies for inspection: gzip (`x-gzip`),
//! deflate (zlib-wrapped, and raw deflate as browsers accept it) and brotli,
//! stacked up to [`MAX_LAYERS`] deep (`Content-Encoding: gzip, br` is decoded
//! br first, then gzip).
//!
//! Owns: the codings a header names ([`parse_codings`]) and streaming
//! decoders whose output is capped at a limit ([`decode`], [`decompress`]).
//! The layers are chained through small fixed buffers and decoding stops as
//! soon as the output passes the limit, so a "zip bomb" costs at most the
//! limit in output memory and the work needed to produce it: never the size
//! it would expand to. Brotli may additionally allocate its sliding window
//! (at most 16 MiB, RFC 7932's largest; large-window brotli is refused).
//!
//! Must not: panic on any input, allocate output past the limit, or use C
//! code (miniz_oxide and brotli-decompressor are pure Rust).
//!
//! Strictness: a stream cut short, a checksum that does not match, or bytes
//! after the end of the stream are [`DecompressError::Corrupt`] — unless the
//! caller says the input itself was cut (a body prefix), in which case the
//! stream stopping early is expected and what was decoded is returned.

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// How many encodings may be stacked in one `Content-Encoding`.
pub const MAX_LAYERS: usize = 2;

/// Size of the buffers between layers.
const STAGE_BUF: usize = 16 * 1024;
/// Output is produced in steps of at most this much.
const OUT_STEP: usize = 64 * 1024;

/// One content coding the engine can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` / `x-gzip` (RFC 1952, several members allowed).
    Gzip,
    /// `deflate`: zlib (RFC 1950), or a raw deflate stream (RFC 1951).
    Deflate,
    /// `br` (RFC 7932).
    Brotli,
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    /// A coding other than gzip, x-gzip, deflate, br and identity, or more
    /// than [`MAX_LAYERS`] of them.
    #[error("unsupported content encoding")]
    Unsupported,
    /// The decoded body is longer than the limit.
    #[error("decoded body longer than the limit")]
    TooLarge,
    /// Not a valid stream of the coding (or cut short).
    #[error("corrupt compressed data")]
    Corrupt,
}

/// The codings of a `Content-Encoding` header, in the order they were
/// applied (header order), `identity` left out. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Codings {
    list: [Option<Coding>; MAX_LAYERS],
}

impl Codings {
    /// No coding (identity).
    pub fn is_empty(&self) -> bool {
        self.list[0].is_none()
    }

    /// The codings in the order they were applied.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = Coding> + '_ {
        self.list.iter().flatten().copied()
    }

    /// How many layers.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    fn push(&mut self, c: Coding) -> Result<(), DecompressError> {
        match self.list.iter_mut().find(|s| s.is_none()) {
            Some(slot) => {
                *slot = Some(c);
                Ok(())
            }
            None => Err(DecompressError::Unsupported),
        }
    }
}

/// Parses a `Content-Encoding` value (several headers joined with `,`).
/// Names are case-insensitive; empty items and `identity` are skipped.
pub fn parse_codings(value: &[u8]) -> Result<Codings, DecompressError> {
    let mut out = Codings::default();
    for item in value.split(|&b| b == b',') {
        let item = item.trim_ascii();
        let coding = if item.is_empty() || item.eq_ignore_ascii_case(b"identity") {
            continue;
        } else if item.eq_ignore_ascii_case(b"gzip") || item.eq_ignore_ascii_case(b"x-gzip") {
            Coding::Gzip
        } else if item.eq_ignore_ascii_case(b"deflate") {
            Coding::Deflate
        } else if item.eq_ignore_ascii_case(b"br") {
            Coding::Brotli
        } else {
            return Err(DecompressError::Unsupported);
        };
        out.push(coding)?;
    }
    Ok(out)
}

/// The result of [`decode`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The decoded bytes: at most the limit.
    pub data: Vec<u8>,
    /// The decoded body is longer than the limit: `data` is its first
    /// `limit` bytes.
    pub over_limit: bool,
    /// The input was cut (see [`decode`]) before the stream ended: `data` is
    /// what its prefix decodes to.
    pub unfinished: bool,
}

/// Decodes `input` (encoded with `codings`, in header order) into at most
/// `limit` bytes. `input_complete`: false when `input` is only the first
/// part of the body, so that a stream ending early is not an error.
///
/// Errors: [`DecompressError::Corrupt`] for invalid data (or, when
/// `input_complete`, a stream cut short or followed by other bytes).
/// Passing the limit is not an error here: see [`Decoded::over_limit`].
pub fn decode(
    input: &[u8],
    codings: &Codings,
    limit: usize,
    input_complete: bool,
) -> Result<Decoded, DecompressError> {
    // Decoded in reverse order of application.
    let mut stages: Vec<Stage> = codings.iter().rev().map(Stage::new).collect();
    let mut rest = input;
    let mut out: Vec<u8> = Vec::new();
    let finish = |out: Vec<u8>, unfinished: bool| -> Result<Decoded, DecompressError> {
        if unfinished && input_complete {
            return Err(DecompressError::Corrupt);
        }
        Ok(Decoded {
            data: out,
            over_limit: false,
            unfinished,
        })
    };
    loop {
        if out.len() >= limit {
            // Anything more is over the limit: look for one byte.
            let mut probe = [0u8; 1];
            return match pull(&mut stages, &mut rest, &mut probe)? {
                Pull::Data(_) => Ok(Decoded {
                    data: out,
                    over_limit: true,
                    unfinished: false,
                }),
                Pull::End => finish(out, false),
                Pull::Unfinished => finish(out, true),
            };
        }
        let start = out.len();
        let room = (limit - start).min(OUT_STEP);
        if out.capacity() < start + room {
            // Grow geometrically, but never past the limit.
            let target = (out.capacity().saturating_mul(2))
                .max(start + room)
                .min(limit);
            out.reserve_exact(target - start);
        }
        out.resize(start + room, 0);
        match pull(&mut stages, &mut rest, &mut out[start..])? {
            Pull::Data(n) => out.truncate(start + n),
            Pull::End => {
                out.truncate(start);
                return finish(out, false);
            }
            Pull::Unfinished => {
                out.truncate(start);
                return finish(out, true);
            }
        }
    }
}

/// Decodes a whole body into at most `limit` bytes:
/// [`DecompressError::TooLarge`] when it is longer.
pub fn decompress(
    input: &[u8],
    codings: &Codings,
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let d = decode(input, codings, limit, true)?;
    if d.over_limit {
        Err(DecompressError::TooLarge)
    } else {
        Ok(d.data)
    }
}

/// What one pull produced.
enum Pull {
    /// This many bytes were written.
    Data(usize),
    /// The stream ended (and nothing followed it).
    End,
    /// The input ran out before the stream ended.
    Unfinished,
}

/// One decoding layer and the buffer it reads from.
struct Stage {
    decoder: Decoder,
    buf: Vec<u8>,
    r: usize,
    w: usize,
    upstream_done: bool,
    done: bool,
}

impl Stage {
    fn new(c: Coding) -> Stage {
        Stage {
            decoder: match c {
                Coding::Gzip => Decoder::Gzip(Box::new(Gzip::new())),
                Coding::Deflate => Decoder::Deflate(None),
                Coding::Brotli => Decoder::Brotli(Box::new(BrotliState::new_strict(
                    StandardAlloc::default(),
                    StandardAlloc::default(),
                    StandardAlloc::default(),
                ))),
            },
            buf: Vec::new(),
            r: 0,
            w: 0,
            upstream_done: false,
            done: false,
        }
    }
}

/// Fills `out` from the last stage, which reads from the ones before it;
/// with no stage, copies the input.
fn pull(stages: &mut [Stage], input: &mut &[u8], out: &mut [u8]) -> Result<Pull, DecompressError> {
    let Some((last, upstream)) = stages.split_last_mut() else {
        if input.is_empty() {
            return Ok(Pull::End);
        }
        let n = input.len().min(out.len());
        out[..n].copy_from_slice(&input[..n]);
        *input = &input[n..];
        return Ok(Pull::Data(n));
    };
    loop {
        if last.done {
            // The stream ended: anything after it is not part of it.
            if last.r < last.w {
                return Err(DecompressError::Corrupt);
            }
            if !last.upstream_done {
                let mut probe = [0u8; 1];
                match pull(upstream, input, &mut probe)? {
                    Pull::Data(_) => return Err(DecompressError::Corrupt),
                    Pull::End | Pull::Unfinished => last.upstream_done = true,
                }
            }
            return Ok(Pull::End);
        }
        let p = last
            .decoder
            .step(&last.buf[last.r..last.w], out, last.upstream_done)?;
        last.r += p.consumed;
        last.done = p.done;
        if p.produced > 0 {
            return Ok(Pull::Data(p.produced));
        }
        if p.done || p.consumed > 0 {
            continue;
        }
        // No progress: the decoder needs more input.
        if last.upstream_done {
            return Ok(Pull::Unfinished);
        }
        if last.buf.is_empty() {
            last.buf = vec![0; STAGE_BUF];
        }
        last.buf.copy_within(last.r..last.w, 0);
        last.w -= last.r;
        last.r = 0;
        if last.w == last.buf.len() {
            // A decoder that cannot use a full buffer (none of ours).
            return Err(DecompressError::Corrupt);
        }
        match pull(upstream, input, &mut last.buf[last.w..])? {
            Pull::Data(n) => last.w += n,
            Pull::End | Pull::Unfinished => last.upstream_done = true,
        }
    }
}

/// What one decoder step did.
struct Progress {
    consumed: usize,
    produced: usize,
    /// The stream (every gzip member) ended.
    done: bool,
}

enum Decoder {
    Gzip(Box<Gzip>),
    /// Format chosen from the first two bytes.
    Deflate(Option<Box<InflateState>>),
    Brotli(Box<BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>>),
}

impl Decoder {
    /// Decodes from `input` into `out` (not empty). `end`: nothing follows
    /// `input`.
    fn step(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        end: bool,
    ) -> Result<Progress, DecompressError> {
        match self {
            Decoder::Gzip(g) => g.step(input, out, end),
            Decoder::Deflate(state) => {
                let st = match state {
                    Some(st) => st,
                    None => {
                        if input.len() < 2 && !end {
                            return Ok(Progress {
                                consumed: 0,
                                produced: 0,
                                done: false,
                            });
                        }
                        let format = if input.len() >= 2 && is_zlib_header(input[0], input[1]) {
                            DataFormat::Zlib
                        } else {
                            DataFormat::Raw
                        };
                        state.insert(InflateState::new_boxed(format))
                    }
                };
                inflate_step(st, input, out)
            }
            Decoder::Brotli(state) => {
                let mut avail_in = input.len();
                let mut in_off = 0;
                let mut avail_out = out.len();
                let mut out_off = 0;
                let mut total = 0;
                let r = BrotliDecompressStream(
                    &mut avail_in,
                    &mut in_off,
                    input,
                    &mut avail_out,
                    &mut out_off,
                    out,
                    &mut total,
                    state,
                );
                let done = match r {
                    BrotliResult::ResultSuccess => true,
                    BrotliResult::NeedsMoreInput | BrotliResult::NeedsMoreOutput => false,
                    BrotliResult::ResultFailure => return Err(DecompressError::Corrupt),
                };
                Ok(Progress {
                    consumed: in_off.min(input.len()),
                    produced: out_off.min(out.len()),
                    done,
                })
            }
        }
    }
}

/// RFC 1950: CM 8, a window of at most 32 KiB, the check bits, no preset
/// dictionary.
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0F == 8
        && cmf >> 4 <= 7
        && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
        && flg & 0x20 == 0
}

fn inflate_step(
    st: &mut InflateState,
    input: &[u8],
    out: &mut [u8],
) -> Result<Progress, DecompressError> {
    let r = inflate(st, input, out, MZFlush::None);
    let done = match r.status {
        Ok(MZStatus::StreamEnd) => true,
        Ok(_) | Err(MZError::Buf) => false,
        Err(_) => return Err(DecompressError::Corrupt),
    };
    Ok(Progress {
        consumed: r.bytes_consumed.min(input.len()),
        produced: r.bytes_written.min(out.len()),
        done,
    })
}

/// Where a gzip decoder is in its member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GzPart {
    /// The fixed 10-byte header.
    Header,
    /// `FEXTRA`'s two length bytes.
    ExtraLen,
    /// `FEXTRA` data still to skip.
    Extra(usize),
    /// `FNAME`, up to its NUL.
    Name,
    /// `FCOMMENT`, up to its NUL.
    Comment,
    /// `FHCRC` bytes still to skip.
    HeaderCrc(usize),
    Body,
    /// CRC-32 and ISIZE.
    Trailer,
    /// After a member: another one, or the end.
    MemberEnd,
}

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;

/// A gzip stream (RFC 1952), member after member.
struct Gzip {
    part: GzPart,
    /// Header or trailer bytes collected so far.
    fixed: [u8; 10],
    fixed_len: usize,
    flags: u8,
    inflate: Box<InflateState>,
    crc: crc32fast::Hasher,
    size: u32,
}

impl Gzip {
    fn new() -> Gzip {
        Gzip {
            part: GzPart::Header,
            fixed: [0; 10],
            fixed_len: 0,
            flags: 0,
            inflate: InflateState::new_boxed(DataFormat::Raw),
            crc: crc32fast::Hasher::new(),
            size: 0,
        }
    }

    /// Collects up to `want` fixed bytes; true once there are `want`.
    fn collect(&mut self, input: &[u8], used: &mut usize, want: usize) -> bool {
        let n = (want - self.fixed_len).min(input.len() - *used);
        self.fixed[self.fixed_len..self.fixed_len + n].copy_from_slice(&input[*used..*used + n]);
        self.fixed_len += n;
        *used += n;
        self.fixed_len == want
    }

    /// The first optional header part after `after`, or the body.
    fn next_part(&self, after: GzPart) -> GzPart {
        let order = [
            (GzPart::ExtraLen, FEXTRA),
            (GzPart::Name, FNAME),
            (GzPart::Comment, FCOMMENT),
            (GzPart::HeaderCrc(2), FHCRC),
        ];
        let start = match after {
            GzPart::Header => 0,
            GzPart::ExtraLen | GzPart::Extra(_) => 1,
            GzPart::Name => 2,
            GzPart::Comment => 3,
            _ => 4,
        };
        order[start..]
            .iter()
            .find(|(_, f)| self.flags & f != 0)
            .map(|(p, _)| *p)
            .unwrap_or(GzPart::Body)
    }

    fn step(
        &mut self,
        input: &[u8],
        out: &mut [u8],
        end: bool,
    ) -> Result<Progress, DecompressError> {
        let mut used = 0usize;
        let progress = |used: usize, produced: usize, done: bool| {
            Ok(Progress {
                consumed: used,
                produced,
                done,
            })
        };
        loop {
            match self.part {
                GzPart::Header => {
                    if !self.collect(input, &mut used, 10) {
                        return progress(used, 0, false);
                    }
                    let h = self.fixed;
                    if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 || h[3] & 0xE0 != 0 {
                        return Err(DecompressError::Corrupt);
                    }
                    self.flags = h[3];
                    self.fixed_len = 0;
                    self.part = self.next_part(GzPart::Header);
                }
                GzPart::ExtraLen => {
                    if !self.collect(input, &mut used, 2) {
                        return progress(used, 0, false);
                    }
                    let n = usize::from(u16::from_le_bytes([self.fixed[0], self.fixed[1]]));
                    self.fixed_len = 0;
                    self.part = GzPart::Extra(n);
                }
                GzPart::Extra(n) | GzPart::HeaderCrc(n) => {
                    let k = n.min(input.len() - used);
                    used += k;
                    if k < n {
                        self.part = match self.part {
                            GzPart::Extra(_) => GzPart::Extra(n - k),
                            _ => GzPart::HeaderCrc(n - k),
                        };
                        return progress(used, 0, false);
                    }
                    self.part = self.next_part(self.part);
                }
                GzPart::Name | GzPart::Comment => match memchr::memchr(0, &input[used..]) {
                    Some(i) => {
                        used += i + 1;
                        self.part = self.next_part(self.part);
                    }
                    None => return progress(input.len(), 0, false),
                },
                GzPart::Body => {
                    let p = inflate_step(&mut self.inflate, &input[used..], out)?;
                    used += p.consumed;
                    self.crc.update(&out[..p.produced]);
                    self.size = self.size.wrapping_add(p.produced as u32);
                    if p.done {
                        self.part = GzPart::Trailer;
                        self.fixed_len = 0;
                    }
                    if p.produced > 0 || !p.done {
                        return progress(used, p.produced, false);
                    }
                }
                GzPart::Trailer => {
                    if !self.collect(input, &mut used, 8) {
                        return progress(used, 0, false);
                    }
                    let f = self.fixed;
                    let crc = u32::from_le_bytes([f[0], f[1], f[2], f[3]]);
                    let size = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
                    let sum = std::mem::replace(&mut self.crc, crc32fast::Hasher::new()).finalize();
                    if crc != sum || size != self.size {
                        return Err(DecompressError::Corrupt);
                    }
                    self.part = GzPart::MemberEnd;
                }
                GzPart::MemberEnd => {
                    if used < input.len() {
                        // Another member (anything else is not gzip).
                        if input[used] != 0x1f {
                            return Err(DecompressError::Corrupt);
                        }
                        self.part = GzPart::Header;
                        self.fixed_len = 0;
                        self.size = 0;
                        self.inflate.reset(DataFormat::Raw);
                        continue;
                    }
                    return progress(used, 0, end);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn codings(s: &str) -> Codings {
        parse_codings(s.as_bytes()).unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        miniz_oxide::deflate::compress_to_vec_zlib(data, 6)
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        miniz_oxide::deflate::compress_to_vec(data, 6)
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        out.extend(raw_deflate(data));
        let mut h = crc32fast::Hasher::new();
        h.update(data);
        out.extend(h.finalize().to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out
    }

    fn brotli(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(data).unwrap();
        }
        out
    }

    const TEXT: &[u8] = b"q=1' OR '1'='1&comment=<script>alert(1)</script>&pad=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    #[test]
    fn coding_lists() {
        assert!(codings("").is_empty());
        assert!(codings("identity").is_empty());
        assert_eq!(
            codings("gzip").iter().collect::<Vec<_>>(),
            vec![Coding::Gzip]
        );
        assert_eq!(
            codings(" X-GZip , identity, BR").iter().collect::<Vec<_>>(),
            vec![Coding::Gzip, Coding::Brotli]
        );
        assert_eq!(codings("deflate,").len(), 1);
        for bad in [
            "zstd",
            "compress",
            "gzip, zstd",
            "gzip, gzip, gzip",
            "gzip;q=1",
        ] {
            assert_eq!(
                parse_codings(bad.as_bytes()),
                Err(DecompressError::Unsupported),
                "{bad}"
            );
        }
    }

    #[test]
    fn each_coding_round_trips() {
        let lim = 1 << 20;
        assert_eq!(
            decompress(&gzip(TEXT), &codings("gzip"), lim).unwrap(),
            TEXT
        );
        assert_eq!(
            decompress(&gzip(TEXT), &codings("x-gzip"), lim).unwrap(),
            TEXT
        );
        assert_eq!(
            decompress(&zlib(TEXT), &codings("deflate"), lim).unwrap(),
            TEXT
        );
        assert_eq!(
            decompress(&raw_deflate(TEXT), &codings("deflate"), lim).unwrap(),
            TEXT
        );
        assert_eq!(
            decompress(&brotli(TEXT), &codings("br"), lim).unwrap(),
            TEXT
        );
        // Empty bodies of every coding.
        assert_eq!(decompress(&gzip(b""), &codings("gzip"), lim).unwrap(), b"");
        assert_eq!(decompress(&brotli(b""), &codings("br"), lim).unwrap(), b"");
        // Two gzip members are one body.
        let mut two = gzip(b"abc");
        two.extend(gzip(b"def"));
        assert_eq!(decompress(&two, &codings("gzip"), lim).unwrap(), b"abcdef");
        // A header with every optional field.
        let mut g = vec![
            0x1f,
            0x8b,
            8,
            FEXTRA | FNAME | FCOMMENT | FHCRC,
            0,
            0,
            0,
            0,
            0,
            3,
        ];
        g.extend([3, 0, 1, 2, 3]);
        g.extend(b"name.txt\0comment\0");
        g.extend([0xAB, 0xCD]);
        g.extend(&gzip(TEXT)[10..]);
        assert_eq!(decompress(&g, &codings("gzip"), lim).unwrap(), TEXT);
    }

    #[test]
    fn stacked_codings_are_undone_in_reverse_order() {
        let lim = 1 << 20;
        // Content-Encoding: gzip, br — gzip applied first, then br.
        let body = brotli(&gzip(TEXT));
        assert_eq!(decompress(&body, &codings("gzip, br"), lim).unwrap(), TEXT);
        assert_eq!(
            decompress(&body, &codings("br, gzip"), lim),
            Err(DecompressError::Corrupt)
        );
        let body = gzip(&zlib(TEXT));
        assert_eq!(
            decompress(&body, &codings("deflate, gzip"), lim).unwrap(),
            TEXT
        );
        // Large enough to cross the buffers between layers several times.
        let big: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let body = gzip(&brotli(&big));
        assert_eq!(
            decompress(&body, &codings("br, gzip"), 4 << 20).unwrap(),
            big
        );
    }

    #[test]
    fn output_is_capped_at_the_limit() {
        let data = vec![b'x'; 10_000];
        for (c, body) in [
            ("gzip", gzip(&data)),
            ("deflate", zlib(&data)),
            ("br", brotli(&data)),
        ] {
            let cs = codings(c);
            assert_eq!(decompress(&body, &cs, 10_000).unwrap().len(), 10_000, "{c}");
            assert_eq!(
                decompress(&body, &cs, 9_999),
                Err(DecompressError::TooLarge),
                "{c}"
            );
            let d = decode(&body, &cs, 100, true).unwrap();
            assert!(d.over_limit && !d.unfinished, "{c}");
            assert_eq!(d.data, &data[..100]);
            assert!(d.data.capacity() <= 100);
            assert_eq!(decompress(&body, &cs, 0), Err(DecompressError::TooLarge));
        }
    }

    #[test]
    fn a_bomb_costs_the_limit() {
        // 1 GiB of zeros: 1024 gzip members of 1 MiB each (about 1 MiB in all).
        let member = gzip(&vec![0u8; 1 << 20]);
        let bomb: Vec<u8> = member
            .iter()
            .copied()
            .cycle()
            .take(member.len() * 1024)
            .collect();
        assert!(bomb.len() < 2 << 20);
        let t = std::time::Instant::now();
        assert_eq!(
            decompress(&bomb, &codings("gzip"), 1 << 20),
            Err(DecompressError::TooLarge)
        );
        let d = decode(&bomb, &codings("gzip"), 1 << 20, true).unwrap();
        assert!(d.over_limit && d.data.len() == 1 << 20 && d.data.capacity() <= 1 << 20);
        // A bomb inside a bomb.
        let nested = gzip(&member);
        assert_eq!(
            decompress(&nested, &codings("gzip, gzip"), 4096),
            Err(DecompressError::TooLarge)
        );
        let br = brotli(&vec![0u8; 64 << 20]);
        assert!(br.len() < 64 << 10);
        assert_eq!(
            decompress(&br, &codings("br"), 1 << 20),
            Err(DecompressError::TooLarge)
        );
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn corrupt_and_cut_streams() {
        let lim = 1 << 20;
        let corrupt = DecompressError::Corrupt;
        for (c, body) in [
            ("gzip", gzip(TEXT)),
            ("deflate", zlib(TEXT)),
            ("br", brotli(TEXT)),
        ] {
            let cs = codings(c);
            // Cut short: corrupt as a whole body, a prefix when the input was cut.
            let cut = &body[..body.len() / 2];
            assert_eq!(decompress(cut, &cs, lim), Err(corrupt), "{c}");
            let d = decode(cut, &cs, lim, false).unwrap();
            assert!(d.unfinished && !d.over_limit, "{c}");
            assert!(TEXT.starts_with(&d.data), "{c}");
            // Bytes after the end of the stream.
            let mut trailing = body.clone();
            trailing.extend_from_slice(b"GARBAGE");
            assert_eq!(decompress(&trailing, &cs, lim), Err(corrupt), "{c}");
            // Not this coding at all.
            assert_eq!(
                decompress(b"plain text, not compressed", &cs, lim),
                Err(corrupt),
                "{c}"
            );
            assert_eq!(decompress(b"", &cs, lim), Err(corrupt), "{c}");
        }
        // Gzip checksums and header checks.
        let mut bad_crc = gzip(TEXT);
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert_eq!(decompress(&bad_crc, &codings("gzip"), lim), Err(corrupt));
        let mut bad_size = gzip(TEXT);
        bad_size[n - 1] ^= 1;
        assert_eq!(decompress(&bad_size, &codings("gzip"), lim), Err(corrupt));
        let mut bad_flags = gzip(TEXT);
        bad_flags[3] = 0x80;
        assert_eq!(decompress(&bad_flags, &codings("gzip"), lim), Err(corrupt));
        let mut bad_adler = zlib(TEXT);
        let n = bad_adler.len();
        bad_adler[n - 1] ^= 1;
        assert_eq!(
            decompress(&bad_adler, &codings("deflate"), lim),
            Err(corrupt)
        );
        // Every prefix and every single-byte change: an answer, never a panic.
        for body in [gzip(TEXT), zlib(TEXT), brotli(TEXT), brotli(&gzip(TEXT))] {
            for cs in [
                codings("gzip"),
                codings("deflate"),
                codings("br"),
                codings("gzip, br"),
            ] {
                for i in 0..body.len() {
                    let _ = decode(&body[..i], &cs, 64, false);
                    let mut m = body.clone();
                    m[i] = m[i].wrapping_add(0x55);
                    let _ = decode(&m, &cs, 64, true);
                }
            }
        }
    }
}
