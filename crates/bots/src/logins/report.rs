//! Failure reports and their encoding for the mesh.
//!
//! A batch (all integers big-endian):
//!
//! ```text
//! u8   version (1)
//! u16  node count, then per node: u8 length (1..=64), UTF-8 bytes
//! u16  report count (0..=4096), then per report:
//!      u16 node index, u64 time_ms, u8 flags (bit 0: IPv6, bit 1: ASN present),
//!      4 or 16 address bytes, [u32 ASN], 16 user-hash bytes, u16 login index
//! ```
//!
//! A report from one node over IPv4 with an ASN is 37 bytes (49 over IPv6),
//! after the node table (its names once per batch). Decoding refuses
//! batches over [`MAX_BATCH_BYTES`] or [`MAX_REPORTS`], unknown flags,
//! indexes out of range, short reads and trailing bytes; no length read from
//! the input is used before it is checked against what is left.

use super::extract::UserHash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most reports in a batch.
pub const MAX_REPORTS: usize = 4096;
/// Largest encoded batch.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;
/// Longest node id.
pub const MAX_NODE: usize = 64;
const VERSION: u8 = 1;
const FLAG_V6: u8 = 1;
const FLAG_ASN: u8 = 2;

/// One failed login, as broadcast through the mesh. No username: only its
/// keyed hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FailureReport {
    /// The node that saw the failure (1 to [`MAX_NODE`] bytes).
    pub node: String,
    /// When, by that node's clock (ms since the Unix epoch).
    pub time_ms: u64,
    /// The client address.
    pub ip: IpAddr,
    /// The client's AS, when known.
    pub asn: Option<u32>,
    /// The keyed hash of the username tried.
    pub user: UserHash,
    /// The login endpoint (index in the policy's `[[bots.logins]]`).
    pub login: u16,
}

impl FailureReport {
    /// Whether the report can be encoded (its node id is 1 to 64 bytes).
    pub fn is_valid(&self) -> bool {
        !self.node.is_empty() && self.node.len() <= MAX_NODE
    }

    fn encoded_len(&self) -> usize {
        let ip = if matches!(self.ip, IpAddr::V6(_)) {
            16
        } else {
            4
        };
        2 + 8 + 1 + ip + if self.asn.is_some() { 4 } else { 0 } + 16 + 2
    }
}

/// Why a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Over [`MAX_BATCH_BYTES`].
    #[error("batch of {0} bytes is over the limit")]
    TooLarge(usize),
    /// Over [`MAX_REPORTS`] reports or nodes.
    #[error("batch announces {0} entries, over the limit")]
    TooMany(usize),
    /// Ends in the middle of a field.
    #[error("batch is truncated")]
    Truncated,
    /// Unknown version byte.
    #[error("unknown batch version {0}")]
    Version(u8),
    /// A node id that is empty, too long or not UTF-8.
    #[error("invalid node id")]
    Node,
    /// A report names a node the table does not have.
    #[error("node index {0} out of range")]
    NodeIndex(u16),
    /// Unknown flag bits.
    #[error("unknown flags {0:#04x}")]
    Flags(u8),
    /// Bytes after the last report.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Encodes the reports that fit one batch: the first ones, up to
/// [`MAX_REPORTS`] and [`MAX_BATCH_BYTES`]; reports with an invalid node id
/// are skipped. [`encode_batches`] encodes them all.
pub fn encode(reports: &[FailureReport]) -> Vec<u8> {
    encode_some(reports).0
}

/// Encodes every (valid) report, in as many batches as needed.
pub fn encode_batches(reports: &[FailureReport]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = reports;
    while !rest.is_empty() {
        let (bytes, used) = encode_some(rest);
        out.push(bytes);
        rest = rest.get(used.max(1)..).unwrap_or(&[]);
    }
    out.retain(|b| b.len() > 5);
    out
}

/// One batch from the start of `reports`, and how many reports it used up
/// (encoded or skipped).
fn encode_some(reports: &[FailureReport]) -> (Vec<u8>, usize) {
    let mut nodes: Vec<&str> = Vec::new();
    let mut chosen: Vec<(u16, &FailureReport)> = Vec::new();
    let mut size = 1 + 2 + 2;
    let mut used = 0;
    for r in reports {
        if chosen.len() == MAX_REPORTS {
            break;
        }
        if !r.is_valid() {
            used += 1;
            continue;
        }
        let known = nodes.iter().position(|n| *n == r.node);
        let extra = r.encoded_len() + if known.is_none() { 1 + r.node.len() } else { 0 };
        if size + extra > MAX_BATCH_BYTES {
            break;
        }
        size += extra;
        let idx = known.unwrap_or_else(|| {
            nodes.push(&r.node);
            nodes.len() - 1
        });
        // At most MAX_REPORTS nodes: the index fits a u16.
        chosen.push((idx as u16, r));
        used += 1;
    }
    let mut out = Vec::with_capacity(size);
    out.push(VERSION);
    out.extend_from_slice(&(nodes.len() as u16).to_be_bytes());
    for n in &nodes {
        out.push(n.len() as u8);
        out.extend_from_slice(n.as_bytes());
    }
    out.extend_from_slice(&(chosen.len() as u16).to_be_bytes());
    for (idx, r) in chosen {
        out.extend_from_slice(&idx.to_be_bytes());
        out.extend_from_slice(&r.time_ms.to_be_bytes());
        let mut flags = 0;
        if r.ip.is_ipv6() {
            flags |= FLAG_V6;
        }
        if r.asn.is_some() {
            flags |= FLAG_ASN;
        }
        out.push(flags);
        match r.ip {
            IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
            IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
        }
        if let Some(asn) = r.asn {
            out.extend_from_slice(&asn.to_be_bytes());
        }
        out.extend_from_slice(&r.user.0);
        out.extend_from_slice(&r.login.to_be_bytes());
    }
    (out, used)
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ReportError> {
        if self.b.len() < n {
            return Err(ReportError::Truncated);
        }
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ReportError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, ReportError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, ReportError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
}

/// Decodes a batch; refuses anything malformed or over the limits.
pub fn decode(bytes: &[u8]) -> Result<Vec<FailureReport>, ReportError> {
    if bytes.len() > MAX_BATCH_BYTES {
        return Err(ReportError::TooLarge(bytes.len()));
    }
    let mut r = Reader { b: bytes };
    let version = r.u8()?;
    if version != VERSION {
        return Err(ReportError::Version(version));
    }
    let node_count = r.u16()? as usize;
    if node_count > MAX_REPORTS {
        return Err(ReportError::TooMany(node_count));
    }
    // Each node takes at least 2 bytes: a count beyond what is left is a lie.
    if node_count * 2 > r.b.len() {
        return Err(ReportError::Truncated);
    }
    let mut nodes = Vec::with_capacity(node_count);
    for _ in 0..node_count {
        let len = r.u8()? as usize;
        if len == 0 || len > MAX_NODE {
            return Err(ReportError::Node);
        }
        let name = std::str::from_utf8(r.take(len)?).map_err(|_| ReportError::Node)?;
        nodes.push(name);
    }
    let count = r.u16()? as usize;
    if count > MAX_REPORTS {
        return Err(ReportError::TooMany(count));
    }
    // The smallest report is 33 bytes.
    if count * 33 > r.b.len() {
        return Err(ReportError::Truncated);
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let idx = r.u16()?;
        let node = *nodes.get(idx as usize).ok_or(ReportError::NodeIndex(idx))?;
        let time_ms = u64::from_be_bytes(r.array()?);
        let flags = r.u8()?;
        if flags & !(FLAG_V6 | FLAG_ASN) != 0 {
            return Err(ReportError::Flags(flags));
        }
        let ip = if flags & FLAG_V6 != 0 {
            IpAddr::V6(Ipv6Addr::from(r.array::<16>()?))
        } else {
            IpAddr::V4(Ipv4Addr::from(r.array::<4>()?))
        };
        let asn = if flags & FLAG_ASN != 0 {
            Some(u32::from_be_bytes(r.array()?))
        } else {
            None
        };
        let user = UserHash(r.array()?);
        let login = r.u16()?;
        out.push(FailureReport {
            node: node.to_owned(),
            time_ms,
            ip,
            asn,
            user,
            login,
        });
    }
    if !r.b.is_empty() {
        return Err(ReportError::Trailing(r.b.len()));
    }
    Ok(out)
}

/// Queues a node's failure reports and hands them out as encoded batches
/// every `interval_ms` (the edge calls [`ReportBatcher::take_due`] from a
/// timer). Bounded: past `max_pending` reports, new ones are dropped and
/// counted.
#[derive(Debug)]
pub struct ReportBatcher {
    pending: Vec<FailureReport>,
    max_pending: usize,
    interval_ms: u64,
    last_ms: u64,
    dropped: u64,
}

impl ReportBatcher {
    /// A batcher sending every `interval_ms` (e.g. 100), holding at most
    /// `max_pending` reports.
    pub fn new(interval_ms: u64, max_pending: usize) -> Self {
        ReportBatcher {
            pending: Vec::new(),
            max_pending,
            interval_ms,
            last_ms: 0,
            dropped: 0,
        }
    }

    /// Queues a report; false (and counted as dropped) when the queue is
    /// full or the report's node id is invalid.
    pub fn push(&mut self, report: FailureReport) -> bool {
        if self.pending.len() >= self.max_pending || !report.is_valid() {
            self.dropped += 1;
            return false;
        }
        self.pending.push(report);
        true
    }

    /// The batches to send now: none before `interval_ms` has passed since
    /// the last send, or when nothing is queued.
    pub fn take_due(&mut self, now_ms: u64) -> Vec<Vec<u8>> {
        if self.pending.is_empty() || now_ms < self.last_ms.saturating_add(self.interval_ms) {
            return Vec::new();
        }
        self.last_ms = now_ms;
        self.take_all()
    }

    /// Every queued report, encoded now (e.g. at shutdown).
    pub fn take_all(&mut self) -> Vec<Vec<u8>> {
        let out = encode_batches(&self.pending);
        self.pending.clear();
        out
    }

    /// Reports queued.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Reports dropped since the start.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(node: &str, i: u32, v6: bool, asn: Option<u32>) -> FailureReport {
        FailureReport {
            node: node.into(),
            time_ms: 1_800_000_000_000 + u64::from(i),
            ip: if v6 {
                IpAddr::V6(Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0,
                    0,
                    0,
                    0,
                    (i >> 16) as u16,
                    i as u16,
                ))
            } else {
                IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i))
            },
            asn,
            user: UserHash([i as u8; 16]),
            login: (i % 3) as u16,
        }
    }

    #[test]
    fn round_trip_and_size() {
        let reports = vec![
            r("edge-fra-1", 1, false, Some(64496)),
            r("edge-fra-1", 2, true, None),
            r("edge-ams-2", 3, false, None),
            r("edge-fra-1", 4, true, Some(u32::MAX)),
        ];
        let bytes = encode(&reports);
        assert_eq!(decode(&bytes).unwrap(), reports);
        // Header 5, two node names once each, then 37 + 33 + 45 + 49.
        assert_eq!(bytes.len(), 5 + 11 + 11 + 37 + 45 + 33 + 49);
        let one_node: Vec<_> = (0..100)
            .map(|i| r("edge-fra-1", i, false, Some(1)))
            .collect();
        assert_eq!(encode(&one_node).len(), 5 + 11 + 100 * 37);
        assert_eq!(decode(&encode(&[])).unwrap(), vec![]);
    }

    #[test]
    fn big_lists_are_split_and_bad_nodes_skipped() {
        let mut reports: Vec<_> = (0..10_000).map(|i| r("n", i, i % 2 == 0, None)).collect();
        reports[5].node = String::new();
        reports[6].node = "x".repeat(MAX_NODE + 1);
        let batches = encode_batches(&reports);
        assert_eq!(batches.len(), 3);
        let mut back = Vec::new();
        for b in &batches {
            assert!(b.len() <= MAX_BATCH_BYTES);
            back.extend(decode(b).unwrap());
        }
        reports.retain(FailureReport::is_valid);
        assert_eq!(back, reports);
        assert_eq!(decode(&encode(&reports)).unwrap().len(), MAX_REPORTS);
        // Many long node names: the byte limit cuts the batch first.
        let wide: Vec<_> = (0..MAX_REPORTS as u32)
            .map(|i| r(&format!("{i:064}"), i, true, Some(i)))
            .collect();
        let batches = encode_batches(&wide);
        assert_eq!(batches.len(), 2);
        assert!(batches.iter().all(|b| b.len() <= MAX_BATCH_BYTES));
        let n: usize = batches.iter().map(|b| decode(b).unwrap().len()).sum();
        assert_eq!(n, MAX_REPORTS);
    }

    #[test]
    fn garbage_never_panics() {
        let good = encode(
            &(0..50)
                .map(|i| r("n1", i, i % 3 == 0, Some(i)))
                .collect::<Vec<_>>(),
        );
        for n in 0..good.len() {
            assert!(decode(&good[..n]).is_err(), "truncated at {n}");
        }
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(decode(&longer), Err(ReportError::Trailing(1)));
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let mut b = good.clone();
            for _ in 0..=next() % 4 {
                let i = next() as usize % b.len();
                b[i] ^= 1 << (next() % 8);
            }
            let _ = decode(&b);
            let len = next() as usize % 300;
            let mut junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if let Some(v) = junk.first_mut() {
                *v = VERSION;
            }
            let _ = decode(&junk);
        }
        // Announced counts larger than the body are refused before allocating.
        assert_eq!(decode(&[1, 0x10, 0x00]), Err(ReportError::Truncated));
        assert_eq!(decode(&[1, 0xff, 0xff]), Err(ReportError::TooMany(65_535)));
        assert_eq!(decode(&[1, 0, 0, 0x10, 0x00]), Err(ReportError::Truncated));
        assert_eq!(decode(&[2, 0, 0, 0, 0]), Err(ReportError::Version(2)));
        assert_eq!(decode(&[1, 0, 1, 0, 0, 0]), Err(ReportError::Node));
        assert_eq!(
            decode(&[1, 0, 1, 2, 0xff, 0xfe, 0, 0]),
            Err(ReportError::Node)
        );
        let big = vec![1u8; MAX_BATCH_BYTES + 1];
        assert_eq!(
            decode(&big),
            Err(ReportError::TooLarge(MAX_BATCH_BYTES + 1))
        );
        let mut flags = encode(&[r("n", 1, false, None)]);
        flags[5 + 2 + 2 + 8] = 0x80;
        assert_eq!(decode(&flags), Err(ReportError::Flags(0x80)));
        let mut idx = encode(&[r("n", 1, false, None)]);
        idx[5 + 2 + 1] = 9;
        assert_eq!(decode(&idx), Err(ReportError::NodeIndex(9)));
    }

    #[test]
    fn the_batcher_sends_on_its_interval_and_stays_bounded() {
        let mut b = ReportBatcher::new(100, 3);
        assert!(b.take_due(1_000).is_empty(), "nothing queued");
        for i in 0..5 {
            b.push(r("n1", i, false, None));
        }
        assert!(!b.push(r("", 9, false, None)));
        assert_eq!((b.pending(), b.dropped()), (3, 3));
        let sent = b.take_due(1_000);
        assert_eq!(sent.len(), 1);
        assert_eq!(decode(&sent[0]).unwrap().len(), 3);
        b.push(r("n1", 7, false, None));
        assert!(b.take_due(1_050).is_empty(), "too soon");
        assert_eq!(b.take_due(1_100).len(), 1);
        b.push(r("n1", 8, false, None));
        assert_eq!(b.take_all().len(), 1);
        assert_eq!(b.pending(), 0);
    }
}
