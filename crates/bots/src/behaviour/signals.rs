//! What one request says by itself: the client key, the user agent's class,
//! the header facts the edge reads, and the route the request belongs to.

use palisade_policy::learn::stable_hash;
use std::net::IpAddr;

/// Who a client is, as a 64-bit hash the edge computes once per request.
///
/// Keys of different kinds never collide by construction (each kind hashes
/// a different tag). The hash is [`stable_hash`], the same on every node, so
/// that the fleet agrees on keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientKey(pub u64);

impl ClientKey {
    fn tagged(tag: u8, bytes: &[u8]) -> ClientKey {
        let mut buf = [0u8; 17];
        buf[0] = tag;
        let n = bytes.len().min(16);
        buf[1..1 + n].copy_from_slice(&bytes[..n]);
        ClientKey(stable_hash(&buf[..1 + n]))
    }

    /// A client by its address. IPv6 addresses are keyed by their /64: a
    /// host usually holds a whole /64, and rotating inside it must not make
    /// a fresh client.
    pub fn ip(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey::tagged(4, &v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::tagged(4, &v4.octets()),
                None => ClientKey::tagged(6, &v6.octets()[..8]),
            },
        }
    }

    /// A client by the id of the clearance it holds (any length; hashed).
    pub fn clearance(id: &[u8]) -> ClientKey {
        ClientKey::tagged(b'c', &stable_hash(id).to_le_bytes())
    }

    /// A client by a fingerprint (for example a JA4 string combined with the
    /// address's network by the edge).
    pub fn fingerprint(fp: &[u8]) -> ClientKey {
        ClientKey::tagged(b'f', &stable_hash(fp).to_le_bytes())
    }
}

/// What the user agent header claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UaClass {
    /// No user agent (or only blanks).
    #[default]
    Empty,
    /// An HTTP library or command-line tool (curl, python-requests, Go,
    /// wget, okhttp, Java, libwww-perl, Scrapy, axios, node-fetch, …).
    Library,
    /// A headless or driven browser that says so (HeadlessChrome,
    /// PhantomJS, Puppeteer, Playwright, Selenium markers).
    Headless,
    /// A self-declared crawler or bot ("…bot/", "crawler", "spider",
    /// "+http"); unverified: [`RequestSignals::verified_crawler`] says
    /// whether the edge verified it.
    DeclaredBot,
    /// Chrome, Edge, Opera, Brave, Samsung Internet … (Chromium based).
    Chromium,
    /// Firefox.
    Firefox,
    /// Safari.
    Safari,
    /// Another browser-looking agent (Mozilla/… with a layout engine).
    OtherBrowser,
    /// Anything else (an app's own agent, an unknown tool).
    Other,
}

impl UaClass {
    /// Whether the agent claims to be a browser.
    pub fn is_browser(self) -> bool {
        matches!(
            self,
            UaClass::Chromium | UaClass::Firefox | UaClass::Safari | UaClass::OtherBrowser
        )
    }

    /// Whether the agent says by itself that it is automated.
    pub fn is_automation(self) -> bool {
        matches!(self, UaClass::Library | UaClass::Headless)
    }
}

/// Product tokens (the part before the first `/`, ` ` or `(`) of libraries
/// and tools, lowercase. A token starting with one of these is a library.
const LIBRARIES: &[&[u8]] = &[
    b"curl",
    b"wget",
    b"python-requests",
    b"python-urllib",
    b"python-httpx",
    b"python",
    b"aiohttp",
    b"httpx",
    b"go-http-client",
    b"okhttp",
    b"java",
    b"apache-httpclient",
    b"libwww-perl",
    b"lwp::",
    b"scrapy",
    b"axios",
    b"node-fetch",
    b"node",
    b"undici",
    b"got",
    b"httpie",
    b"postmanruntime",
    b"insomnia",
    b"guzzlehttp",
    b"php",
    b"ruby",
    b"faraday",
    b"rest-client",
    b"reqwest",
    b"hyper",
    b"dart",
    b"libcurl",
    b"powershell",
    b"winhttp",
    b"http.rb",
    b"mechanize",
    b"httpclient",
    b"colly",
];

// Markers found in one pass over the agent (flags below).
const HEADLESS: u8 = 1;
const BOT: u8 = 2;
const CHROMIUM: u8 = 4;
const FIREFOX: u8 = 8;
const SAFARI: u8 = 16;
const VERSION: u8 = 32;
const ENGINE: u8 = 64;

type Markers = &'static [(&'static [u8], u8)];

/// The markers (lowercase) that start with byte `c` (lowercase).
fn markers(c: u8) -> Markers {
    match c {
        b'h' => &[(b"headless", HEADLESS)],
        b'p' => &[
            (b"phantomjs", HEADLESS),
            (b"puppeteer", HEADLESS),
            (b"playwright", HEADLESS),
            (b"presto", ENGINE),
        ],
        b's' => &[
            (b"selenium", HEADLESS),
            (b"slimerjs", HEADLESS),
            (b"spider", BOT),
            (b"safari/", SAFARI),
        ],
        b'w' => &[(b"webdriver", HEADLESS)],
        b'b' => &[
            (b"bot/", BOT),
            (b"bot;", BOT),
            (b"bot)", BOT),
            (b"bot ", BOT),
        ],
        b'c' => &[
            (b"crawler", BOT),
            (b"chrome/", CHROMIUM),
            (b"chromium/", CHROMIUM),
            (b"crios/", CHROMIUM),
        ],
        b'+' => &[(b"+http", BOT)],
        b'e' => &[(b"edg/", CHROMIUM)],
        b'o' => &[(b"opr/", CHROMIUM)],
        b'f' => &[(b"firefox/", FIREFOX), (b"fxios/", FIREFOX)],
        b'v' => &[(b"version/", VERSION)],
        b'g' => &[(b"gecko", ENGINE)],
        b'a' => &[(b"applewebkit", ENGINE)],
        b't' => &[(b"trident", ENGINE)],
        _ => &[],
    }
}

/// The markers `b` contains, ignoring ASCII case: one pass, each position
/// checked only against the markers starting with its byte.
fn scan(b: &[u8]) -> u8 {
    let mut flags = 0;
    for i in 0..b.len() {
        for (m, f) in markers(b[i].to_ascii_lowercase()) {
            if flags & f == 0 && b.len() - i >= m.len() && b[i..i + m.len()].eq_ignore_ascii_case(m)
            {
                flags |= f;
            }
        }
    }
    flags
}

/// Classifies a user agent. Allocation free; one pass over the header.
pub fn ua_class(ua: &str) -> UaClass {
    let b = ua.trim_ascii().as_bytes();
    if b.is_empty() {
        return UaClass::Empty;
    }
    let flags = scan(b);
    if flags & HEADLESS != 0 {
        return UaClass::Headless;
    }
    let mozilla = b.len() >= 8 && b[..8].eq_ignore_ascii_case(b"mozilla/");
    if !mozilla {
        let end = b
            .iter()
            .position(|&c| c == b'/' || c == b' ' || c == b'(')
            .unwrap_or(b.len());
        let product = &b[..end];
        let library = LIBRARIES
            .iter()
            .any(|l| product.len() >= l.len() && product[..l.len()].eq_ignore_ascii_case(l));
        if library {
            return UaClass::Library;
        }
    }
    if flags & BOT != 0 {
        return UaClass::DeclaredBot;
    }
    if !mozilla {
        return UaClass::Other;
    }
    if flags & CHROMIUM != 0 {
        UaClass::Chromium
    } else if flags & FIREFOX != 0 {
        UaClass::Firefox
    } else if flags & (SAFARI | VERSION) == SAFARI | VERSION {
        UaClass::Safari
    } else if flags & ENGINE != 0 {
        UaClass::OtherBrowser
    } else {
        UaClass::Other
    }
}

/// What the edge read from one request's headers (and what it already
/// verified). `Default` is the neutral value of each fact except the
/// headers' presence (all false: a request without them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestSignals {
    /// [`ua_class`] of the User-Agent header.
    pub ua: UaClass,
    /// An `Accept-Language` header is present.
    pub accept_language: bool,
    /// Any `Sec-Fetch-*` header is present.
    pub sec_fetch: bool,
    /// A `Sec-CH-UA` header is present (Chromium browsers send it).
    pub sec_ch_ua: bool,
    /// An `Accept-Encoding` header is present.
    pub accept_encoding: bool,
    /// The header fingerprint (names, order, case) is not what the claimed
    /// browser sends (the fingerprint module decides; false when unknown).
    pub fingerprint_mismatch: bool,
    /// The client holds a valid clearance (it solved a challenge).
    pub cleared: bool,
    /// The client is a verified crawler (reverse DNS or published ranges).
    pub verified_crawler: bool,
}

/// A route: host, method and the first path segment(s), normalized and
/// hashed. Routes are what baselines are kept for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RouteKey(pub u64);

/// Longest host kept in a route key (DNS names are at most 253 bytes).
pub const MAX_HOST_LEN: usize = 253;
/// Longest path segment kept in a route key.
pub const MAX_SEGMENT_LEN: usize = 48;

const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
];

/// Segments after which the next one is part of the route too (`/api/users`,
/// `/v2/orders`): on their own they say too little.
fn is_prefix_segment(s: &[u8]) -> bool {
    let short_version =
        s.len() <= 3 && s.first() == Some(&b'v') && s[1..].iter().all(u8::is_ascii_digit);
    short_version
        || [
            b"api".as_slice(),
            b"rest",
            b"graphql",
            b"wp-json",
            b"static",
            b"assets",
        ]
        .iter()
        .any(|p| s.eq_ignore_ascii_case(p))
}

/// A segment that names one item rather than a route (`12345`, a UUID, a
/// long hex or base64 id): it is replaced by `:id`.
fn is_id_segment(s: &[u8]) -> bool {
    let digits = s.iter().filter(|c| c.is_ascii_digit()).count();
    if s.is_empty() {
        return false;
    }
    digits == s.len()
        || (s.len() >= 16 && s.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-'))
        || (s.len() >= 8 && digits * 2 >= s.len())
}

impl RouteKey {
    /// The route of a request. `host` may carry a port (dropped); `path`
    /// may carry a query (dropped). Hosts are lowercased and cut to
    /// [`MAX_HOST_LEN`] bytes, segments to [`MAX_SEGMENT_LEN`]; unknown
    /// methods are one route, `OTHER`. Allocation free.
    pub fn new(host: &str, method: &str, path: &str) -> RouteKey {
        let mut buf = [0u8; MAX_HOST_LEN + 16 + 2 * (MAX_SEGMENT_LEN + 1)];
        let mut n = 0;
        let host = host.as_bytes();
        let host = &host[..host.iter().position(|&c| c == b':').unwrap_or(host.len())];
        for &c in host.iter().take(MAX_HOST_LEN) {
            buf[n] = c.to_ascii_lowercase();
            n += 1;
        }
        buf[n] = b' ';
        n += 1;
        let m = METHODS
            .iter()
            .find(|m| m.eq_ignore_ascii_case(method))
            .copied()
            .unwrap_or("OTHER");
        buf[n..n + m.len()].copy_from_slice(m.as_bytes());
        n += m.len();
        let path = path.as_bytes();
        let path = &path[..path
            .iter()
            .position(|&c| c == b'?' || c == b'#')
            .unwrap_or(path.len())];
        let mut segments = path.split(|&c| c == b'/').filter(|s| !s.is_empty());
        for i in 0..2 {
            let Some(seg) = segments.next() else { break };
            buf[n] = b'/';
            n += 1;
            if is_id_segment(seg) {
                buf[n..n + 3].copy_from_slice(b":id");
                n += 3;
            } else {
                for &c in seg.iter().take(MAX_SEGMENT_LEN) {
                    buf[n] = c.to_ascii_lowercase();
                    n += 1;
                }
            }
            if i == 0 && !is_prefix_segment(seg) {
                break;
            }
        }
        RouteKey(stable_hash(&buf[..n]))
    }
}
