//! XSS detection: a port of libinjection's `libinjection_xss`.
//!
//! The input is tokenized with libinjection's small HTML5 tokenizer, starting
//! in five states (text, and inside an unquoted, `'`, `"` or `` ` `` quoted
//! attribute value); it is XSS when a token is a dangerous tag, attribute,
//! URL scheme, comment form or doctype.
//!
//! The port keeps the C code's decisions and quirks (NUL bytes ignored in
//! names, `0xFF` read as end of input where the C code compares a signed
//! `char` with EOF, ...). No allocation, no `unsafe`.
//!
//! Derived from libinjection (Copyright (c) 2012-2016, Nick Galbreath;
//! Copyright 2021 LibInjection), BSD-3-Clause; see `sqli_data.rs` for the
//! license text.

/// JavaScript event names: an attribute `on<name>...` is always dangerous.
/// Mostly from WebKit's `EventNames.h`, as listed by libinjection.
#[rustfmt::skip]
static EVENT_NAMES: &[&[u8]] = &[
    b"ABORT", b"ACTIVATE", b"ACTIVE", b"ADDSOURCEBUFFER", b"ADDSTREAM", b"ADDTRACK", b"AFTERPRINT",
    b"ANIMATIONCANCEL", b"ANIMATIONEND", b"ANIMATIONITERATION", b"ANIMATIONSTART", b"AUDIOEND",
    b"AUDIOPROCESS", b"AUDIOSTART", b"AUTOCOMPLETE", b"AUTOCOMPLETEERROR", b"BEFOREACTIVATE",
    b"BEFORECOPY", b"BEFORECUT", b"BEFOREINPUT", b"BEFORELOAD", b"BEFOREPASTE", b"BEFOREPRINT",
    b"BEFOREUNLOAD", b"BEGINEVENT", b"BLOCKED", b"BLUR", b"BOUNDARY", b"BUFFEREDAMOUNTLOW",
    b"CACHED", b"CANCEL", b"CANPLAY", b"CANPLAYTHROUGH", b"CHANGE", b"CHARGINGCHANGE",
    b"CHARGINGTIMECHANGE", b"CHECKING", b"CLICK", b"CLOSE", b"COMPLETE", b"COMPOSITIONEND",
    b"COMPOSITIONSTART", b"COMPOSITIONUPDATE", b"CONNECT", b"CONNECTING", b"CONNECTIONSTATECHANGE",
    b"CONTEXTMENU", b"CONTROLLERCHANGE", b"COPY", b"CUECHANGE", b"CUT", b"DATAAVAILABLE",
    b"DATACHANNEL", b"DBLCLICK", b"DEVICECHANGE", b"DEVICEMOTION", b"DEVICEORIENTATION",
    b"DISCHARGINGTIMECHANGE", b"DISCONNECT", b"DOMACTIVATE", b"DOMCHARACTERDATAMODIFIED",
    b"DOMCONTENTLOADED", b"DOMFOCUSIN", b"DOMFOCUSOUT", b"DOMNODEINSERTED",
    b"DOMNODEINSERTEDINTODOCUMENT", b"DOMNODEREMOVED", b"DOMNODEREMOVEDFROMDOCUMENT",
    b"DOMSUBTREEMODIFIED", b"DOWNLOADING", b"DRAG", b"DRAGEND", b"DRAGENTER", b"DRAGLEAVE",
    b"DRAGOVER", b"DRAGSTART", b"DROP", b"DURATIONCHANGE", b"EMPTIED", b"ENCRYPTED", b"END",
    b"ENDED", b"ENDEVENT", b"ENTER", b"ENTERPICTUREINPICTURE", b"ERROR", b"EXIT", b"FETCH",
    b"FINISH", b"FOCUS", b"FOCUSIN", b"FOCUSOUT", b"FORMCHANGE", b"FORMINPUT", b"GAMEPADCONNECTED",
    b"GAMEPADDISCONNECTED", b"GESTURECHANGE", b"GESTUREEND", b"GESTURESCROLLEND",
    b"GESTURESCROLLSTART", b"GESTURESCROLLUPDATE", b"GESTURESTART", b"GESTURETAP",
    b"GESTURETAPDOWN", b"GOTPOINTERCAPTURE", b"HASHCHANGE", b"ICECANDIDATE", b"ICECANDIDATEERROR",
    b"ICECONNECTIONSTATECHANGE", b"ICEGATHERINGSTATECHANGE", b"INACTIVE", b"INPUT",
    b"INPUTSOURCESCHANGE", b"INSTALL", b"INVALID", b"KEYDOWN", b"KEYPRESS", b"KEYSTATUSESCHANGE",
    b"KEYUP", b"LANGUAGECHANGE", b"LEAVEPICTUREINPICTURE", b"LEVELCHANGE", b"LOAD", b"LOADEDDATA",
    b"LOADEDMETADATA", b"LOADEND", b"LOADING", b"LOADINGDONE", b"LOADINGERROR", b"LOADSTART",
    b"LOSTPOINTERCAPTURE", b"MARK", b"MERCHANTVALIDATION", b"MESSAGE", b"MESSAGEERROR",
    b"MOUSEDOWN", b"MOUSEENTER", b"MOUSELEAVE", b"MOUSEMOVE", b"MOUSEOUT", b"MOUSEOVER",
    b"MOUSEUP", b"MOUSEWHEEL", b"MUTE", b"NEGOTIATIONNEEDED", b"NEXTTRACK", b"NOMATCH",
    b"NOUPDATE", b"OBSOLETE", b"OFFLINE", b"ONLINE", b"OPEN", b"ORIENTATIONCHANGE",
    b"OVERCONSTRAINED", b"OVERFLOWCHANGED", b"PAGEHIDE", b"PAGESHOW", b"PASTE", b"PAUSE",
    b"PAYERDETAILCHANGE", b"PAYMENTAUTHORIZED", b"PAYMENTMETHODCHANGE", b"PAYMENTMETHODSELECTED",
    b"PLAY", b"PLAYING", b"POINTERCANCEL", b"POINTERDOWN", b"POINTERENTER", b"POINTERLEAVE",
    b"POINTERLOCKCHANGE", b"POINTERLOCKERROR", b"POINTERMOVE", b"POINTEROUT", b"POINTEROVER",
    b"POINTERUP", b"POPSTATE", b"PREVIOUSTRACK", b"PROCESSORERROR", b"PROGRESS", b"PROPERTYCHANGE",
    b"RATECHANGE", b"READYSTATECHANGE", b"REJECTIONHANDLED", b"REMOVE", b"REMOVESOURCEBUFFER",
    b"REMOVESTREAM", b"REMOVETRACK", b"RESET", b"RESIZE", b"RESOURCETIMINGBUFFERFULL", b"RESULT",
    b"RESUME", b"SCROLL", b"SEARCH", b"SECURITYPOLICYVIOLATION", b"SEEKED", b"SEEKING", b"SELECT",
    b"SELECTEND", b"SELECTIONCHANGE", b"SELECTSTART", b"SHIPPINGADDRESSCHANGE",
    b"SHIPPINGCONTACTSELECTED", b"SHIPPINGMETHODSELECTED", b"SHIPPINGOPTIONCHANGE", b"SHOW",
    b"SIGNALINGSTATECHANGE", b"SLOTCHANGE", b"SOUNDEND", b"SOUNDSTART", b"SOURCECLOSE",
    b"SOURCEENDED", b"SOURCEOPEN", b"SPEECHEND", b"SPEECHSTART", b"SQUEEZE", b"SQUEEZEEND",
    b"SQUEEZESTART", b"STALLED", b"START", b"STARTED", b"STATECHANGE", b"STOP", b"STORAGE",
    b"SUBMIT", b"SUCCESS", b"SUSPEND", b"TEXTINPUT", b"TIMEOUT", b"TIMEUPDATE", b"TOGGLE",
    b"TONECHANGE", b"TOUCHCANCEL", b"TOUCHEND", b"TOUCHFORCECHANGE", b"TOUCHMOVE", b"TOUCHSTART",
    b"TRACK", b"TRANSITIONCANCEL", b"TRANSITIONEND", b"TRANSITIONRUN", b"TRANSITIONSTART",
    b"UNCAPTUREDERROR", b"UNHANDLEDREJECTION", b"UNLOAD", b"UNMUTE", b"UPDATE", b"UPDATEEND",
    b"UPDATEFOUND", b"UPDATEREADY", b"UPDATESTART", b"UPGRADENEEDED", b"VALIDATEMERCHANT",
    b"VERSIONCHANGE", b"VISIBILITYCHANGE", b"VOLUMECHANGE", b"WAITING", b"WAITINGFORKEY",
    b"WEBGLCONTEXTCHANGED", b"WEBGLCONTEXTCREATIONERROR", b"WEBGLCONTEXTLOST",
    b"WEBGLCONTEXTRESTORED", b"WEBKITANIMATIONEND", b"WEBKITANIMATIONITERATION",
    b"WEBKITANIMATIONSTART", b"WEBKITBEFORETEXTINSERTED", b"WEBKITBEGINFULLSCREEN",
    b"WEBKITCURRENTPLAYBACKTARGETISWIRELESSCHANGED", b"WEBKITENDFULLSCREEN",
    b"WEBKITFULLSCREENCHANGE", b"WEBKITFULLSCREENERROR", b"WEBKITKEYADDED", b"WEBKITKEYERROR",
    b"WEBKITKEYMESSAGE", b"WEBKITMOUSEFORCECHANGED", b"WEBKITMOUSEFORCEDOWN",
    b"WEBKITMOUSEFORCEUP", b"WEBKITMOUSEFORCEWILLBEGIN", b"WEBKITNEEDKEY",
    b"WEBKITNETWORKINFOCHANGE", b"WEBKITPLAYBACKTARGETAVAILABILITYCHANGED",
    b"WEBKITPRESENTATIONMODECHANGED", b"WEBKITREGIONOVERSETCHANGE", b"WEBKITREMOVESOURCEBUFFER",
    b"WEBKITSOURCECLOSE", b"WEBKITSOURCEENDED", b"WEBKITSOURCEOPEN", b"WEBKITSPEECHCHANGE",
    b"WEBKITTRANSITIONEND", b"WEBKITWILLREVEALBOTTOM", b"WEBKITWILLREVEALLEFT",
    b"WEBKITWILLREVEALRIGHT", b"WEBKITWILLREVEALTOP", b"WHEEL", b"WRITE", b"WRITEEND",
    b"WRITESTART", b"ZOOM",
];

/// How an attribute's value is dangerous.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Attr {
    None,
    /// Always dangerous.
    Black,
    /// The value is a URL: dangerous with a `javascript:`-like scheme.
    Url,
    /// The value is CSS.
    Style,
    /// The value names another attribute (SVG `attributeName`).
    Indirect,
}

static BLACK_ATTRS: &[(&[u8], Attr)] = &[
    (b"ACTION", Attr::Url),             // form
    (b"ATTRIBUTENAME", Attr::Indirect), // SVG
    (b"BY", Attr::Url),                 // SVG
    (b"BACKGROUND", Attr::Url),         // IE6, O11
    (b"DATAFORMATAS", Attr::Black),     // IE
    (b"DATASRC", Attr::Black),          // IE
    (b"DYNSRC", Attr::Url),             // obsolete img attribute
    (b"FILTER", Attr::Style),           // Opera, SVG inline style
    (b"FORMACTION", Attr::Url),         // HTML 5
    (b"FOLDER", Attr::Url),             // A tags, IE only
    (b"FROM", Attr::Url),               // SVG
    (b"HANDLER", Attr::Url),            // SVG Tiny, Opera
    (b"HREF", Attr::Url),
    (b"LOWSRC", Attr::Url), // obsolete img attribute
    (b"POSTER", Attr::Url), // Opera 10, 11
    (b"SRC", Attr::Url),
    (b"STYLE", Attr::Style),
    (b"TO", Attr::Url),     // SVG
    (b"VALUES", Attr::Url), // SVG
    (b"XLINK:HREF", Attr::Url),
];

static BLACK_TAGS: &[&[u8]] = &[
    b"APPLET",
    b"BASE",
    b"COMMENT", // IE, html5sec.org #38
    b"EMBED",
    b"FRAME",
    b"FRAMESET",
    b"HANDLER", // Opera SVG, effectively a script tag
    b"IFRAME",
    b"IMPORT",
    b"ISINDEX",
    b"LINK",
    b"LISTENER",
    b"META",
    b"NOSCRIPT",
    b"OBJECT",
    b"SCRIPT",
    b"STYLE",
    b"VMLFRAME",
    b"XML",
    b"XSS",
];

/// Does `s` equal the upper-case `name`, ignoring ASCII case and NUL bytes
/// in `s`? (C: `cstrcasecmp_with_null(name, s, len) == 0`.)
fn eq_ignoring_nul(name: &[u8], s: &[u8]) -> bool {
    // Skipping NULs only makes `s` shorter.
    if s.len() == name.len() {
        return s.eq_ignore_ascii_case(name);
    }
    if s.len() < name.len() || !s.contains(&0) {
        return false;
    }
    let mut chars = s.iter().filter(|&&b| b != 0).map(u8::to_ascii_uppercase);
    name.iter().all(|&n| chars.next() == Some(n)) && chars.next().is_none()
}

fn is_black_tag(s: &[u8]) -> bool {
    if s.len() < 3 {
        return false;
    }
    if BLACK_TAGS.iter().any(|tag| eq_ignoring_nul(tag, s)) {
        return true;
    }
    // Anything SVG or XSL(T).
    s[..3].eq_ignore_ascii_case(b"svg") || s[..3].eq_ignore_ascii_case(b"xsl")
}

fn is_black_attr(s: &[u8]) -> Attr {
    if s.len() < 2 {
        return Attr::None;
    }
    if s.len() >= 5 {
        // JavaScript on* event handlers; the name only has to be a prefix.
        if s[..2].eq_ignore_ascii_case(b"on") {
            let rest = &s[2..];
            let first = rest[0].to_ascii_uppercase();
            let hit = EVENT_NAMES.iter().any(|name| {
                name[0] == first
                    && rest.len() >= name.len()
                    && rest[..name.len()].eq_ignore_ascii_case(name)
            });
            if hit {
                return Attr::Black;
            }
        }
        // XMLNS and XLINK can create arbitrary tags.
        if eq_ignoring_nul(b"XMLNS", &s[..5]) || eq_ignoring_nul(b"XLINK", &s[..5]) {
            return Attr::Black;
        }
    }
    BLACK_ATTRS
        .iter()
        .find(|(name, _)| eq_ignoring_nul(name, s))
        .map_or(Attr::None, |&(_, attr)| attr)
}

fn hex_value(ch: u8) -> Option<u32> {
    (ch as char).to_digit(16)
}

/// Decodes one possibly HTML-encoded (`&#65;`, `&#x41;`) character at the
/// start of `src`; returns it and the number of bytes used.
fn html_decode_char_at(src: &[u8]) -> (u32, usize) {
    let len = src.len();
    let at = |i: usize| src.get(i).copied().unwrap_or(0);
    if len == 0 {
        return (0, 0);
    }
    if src[0] != b'&' || len < 2 {
        return (u32::from(src[0]), 1);
    }
    if src[1] != b'#' {
        // Named entities are not decoded.
        return (u32::from(b'&'), 1);
    }
    let hex = at(2) == b'x' || at(2) == b'X';
    let (radix, first) = if hex {
        (16, hex_value(at(3)))
    } else {
        (10, (at(2) as char).to_digit(10))
    };
    let Some(mut val) = first else {
        return (u32::from(b'&'), 1);
    };
    let mut i = if hex { 4 } else { 3 };
    while i < len {
        let ch = src[i];
        if ch == b';' {
            return (val, i + 1);
        }
        let Some(d) = (ch as char).to_digit(radix) else {
            return (val, i);
        };
        val = val * radix + d;
        if val > 0x0010_00FF {
            return (u32::from(b'&'), 1);
        }
        i += 1;
    }
    (val, i)
}

/// Does the HTML-encoded `s` start with the upper-case `prefix`, ignoring
/// case, leading whitespace/control characters, NULs and newlines?
fn htmlencode_starts_with(prefix: &[u8], mut s: &[u8]) -> bool {
    let mut want = prefix.iter();
    let mut first = true;
    let mut next = want.next();
    while !s.is_empty() {
        let Some(&expected) = next else {
            return true;
        };
        let (cb, consumed) = html_decode_char_at(s);
        s = s.get(consumed..).unwrap_or_default();
        if first && cb <= 32 {
            continue;
        }
        first = false;
        if cb == 0 || cb == 10 {
            continue;
        }
        let cb = if (u32::from(b'a')..=u32::from(b'z')).contains(&cb) {
            cb - 0x20
        } else {
            cb
        };
        // C compares after a cast to `char`: only the low byte counts.
        if expected != cb as u8 {
            return false;
        }
        next = want.next();
    }
    next.is_none()
}

fn is_black_url(s: &[u8]) -> bool {
    // Skip whitespace, control and non-ASCII bytes.
    let start = s.iter().position(|&b| b > 32 && b < 127).unwrap_or(s.len());
    let s = &s[start..];
    [&b"DATA"[..], b"VIEW-SOURCE", b"JAVA", b"VBSCRIPT"]
        .iter()
        .any(|scheme| htmlencode_starts_with(scheme, s))
}

/// Is `s` XSS when parsed from the given initial state?
fn is_xss(s: &[u8], start: Start) -> bool {
    let mut h5 = Html5::new(s, start);
    let mut attr = Attr::None;
    while h5.next() {
        let tok = h5.token();
        if h5.token_type != TokenType::AttrValue {
            attr = Attr::None;
        }
        match h5.token_type {
            TokenType::Doctype => return true,
            TokenType::TagNameOpen if is_black_tag(tok) => return true,
            TokenType::AttrName => attr = is_black_attr(tok),
            TokenType::AttrValue => {
                match attr {
                    Attr::None => {}
                    Attr::Black | Attr::Style => return true,
                    Attr::Url => {
                        if is_black_url(tok) {
                            return true;
                        }
                    }
                    Attr::Indirect => {
                        if is_black_attr(tok) != Attr::None {
                            return true;
                        }
                    }
                }
                attr = Attr::None;
            }
            TokenType::TagComment => {
                // IE uses '`' as a tag end.
                if memchr::memchr(b'`', tok).is_some() {
                    return true;
                }
                // IE conditional comments, XML.
                if tok.len() > 3
                    && ((tok[0] == b'[' && tok[1..3].eq_ignore_ascii_case(b"if"))
                        || tok[..3].eq_ignore_ascii_case(b"xml"))
                {
                    return true;
                }
                // IE <?import pseudo-tag, XML entity definitions.
                if tok.len() > 5
                    && (eq_ignoring_nul(b"IMPORT", &tok[..6])
                        || eq_ignoring_nul(b"ENTITY", &tok[..6]))
                {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// libinjection's `libinjection_xss`.
pub(super) fn detect(input: &[u8]) -> bool {
    [
        Start::Data,
        Start::ValueNoQuote,
        Start::ValueSingleQuote,
        Start::ValueDoubleQuote,
        Start::ValueBackQuote,
    ]
    .into_iter()
    .any(|start| is_xss(input, start))
}

/// Where the tokenizer starts.
#[derive(Clone, Copy)]
enum Start {
    Data,
    ValueNoQuote,
    ValueSingleQuote,
    ValueDoubleQuote,
    ValueBackQuote,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum TokenType {
    DataText,
    TagNameOpen,
    TagNameClose,
    TagNameSelfClose,
    TagClose,
    AttrName,
    AttrValue,
    TagComment,
    Doctype,
}

/// Tokenizer states that `next` can resume from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Eof,
    Data,
    TagOpen,
    TagNameClose,
    BeforeAttributeName,
    AfterAttributeName,
    BeforeAttributeValue,
    AttributeValueSingleQuote,
    AttributeValueDoubleQuote,
    AttributeValueBackQuote,
    AfterAttributeValueQuoted,
    SelfClosingStartTag,
}

/// C's `h5_skip_white` returns the byte as a signed `char`, so 0xFF reads
/// as end of input.
const CHAR_EOF: i32 = -1;

/// HTML whitespace as libinjection sees it (NUL included).
fn h5_is_white(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0)
}

/// libinjection's HTML5 tokenizer (`libinjection_html5.c`).
struct Html5<'a> {
    s: &'a [u8],
    pos: usize,
    is_close: bool,
    state: State,
    token_start: usize,
    token_len: usize,
    token_type: TokenType,
}

impl<'a> Html5<'a> {
    fn new(s: &'a [u8], start: Start) -> Self {
        let state = match start {
            Start::Data => State::Data,
            Start::ValueNoQuote => State::BeforeAttributeName,
            Start::ValueSingleQuote => State::AttributeValueSingleQuote,
            Start::ValueDoubleQuote => State::AttributeValueDoubleQuote,
            Start::ValueBackQuote => State::AttributeValueBackQuote,
        };
        Html5 {
            s,
            pos: 0,
            is_close: false,
            state,
            token_start: 0,
            token_len: 0,
            token_type: TokenType::DataText,
        }
    }

    fn token(&self) -> &'a [u8] {
        let s = self.s;
        s.get(self.token_start..self.token_start + self.token_len)
            .unwrap_or_default()
    }

    fn len(&self) -> usize {
        self.s.len()
    }

    fn set_token(&mut self, ty: TokenType, start: usize, len: usize) {
        self.token_type = ty;
        self.token_start = start;
        self.token_len = len;
    }

    /// Next token; false at the end.
    fn next(&mut self) -> bool {
        match self.state {
            State::Eof => false,
            State::Data => self.data(),
            State::TagOpen => self.tag_open(),
            State::TagNameClose => self.tag_name_close(),
            State::BeforeAttributeName => self.before_attribute_name(),
            State::AfterAttributeName => self.after_attribute_name(),
            State::BeforeAttributeValue => self.before_attribute_value(),
            State::AttributeValueSingleQuote => self.attribute_value_quote(b'\''),
            State::AttributeValueDoubleQuote => self.attribute_value_quote(b'"'),
            State::AttributeValueBackQuote => self.attribute_value_quote(b'`'),
            State::AfterAttributeValueQuoted => self.after_attribute_value_quoted(),
            State::SelfClosingStartTag => self.self_closing_start_tag(),
        }
    }

    fn skip_white(&mut self) -> i32 {
        while let Some(&ch) = self.s.get(self.pos) {
            match ch {
                0x00 | 0x20 | 0x09 | 0x0a | 0x0b | 0x0c | 0x0d => self.pos += 1,
                _ => return i32::from(ch as i8),
            }
        }
        CHAR_EOF
    }

    fn data(&mut self) -> bool {
        let pos = self.pos;
        match memchr::memchr(b'<', &self.s[pos..]) {
            None => {
                self.set_token(TokenType::DataText, pos, self.len() - pos);
                self.state = State::Eof;
                self.token_len != 0
            }
            Some(i) => {
                self.set_token(TokenType::DataText, pos, i);
                self.pos = pos + i + 1;
                self.state = State::TagOpen;
                if i == 0 {
                    return self.tag_open();
                }
                true
            }
        }
    }

    fn tag_open(&mut self) -> bool {
        let Some(&ch) = self.s.get(self.pos) else {
            return false;
        };
        match ch {
            b'!' => {
                self.pos += 1;
                self.markup_declaration_open()
            }
            b'/' => {
                self.pos += 1;
                self.is_close = true;
                self.end_tag_open()
            }
            b'?' => {
                self.pos += 1;
                self.bogus_comment()
            }
            b'%' => {
                // Not in the spec: IE <= 9 and old Safari comments.
                self.pos += 1;
                self.bogus_comment2()
            }
            // NUL: an IE-ism, ignored.
            b'a'..=b'z' | b'A'..=b'Z' | 0 => self.tag_name(),
            _ => {
                if self.pos == 0 {
                    return self.data();
                }
                self.set_token(TokenType::DataText, self.pos - 1, 1);
                self.state = State::Data;
                true
            }
        }
    }

    fn end_tag_open(&mut self) -> bool {
        let Some(&ch) = self.s.get(self.pos) else {
            return false;
        };
        match ch {
            b'>' => self.data(),
            b'a'..=b'z' | b'A'..=b'Z' => self.tag_name(),
            _ => {
                self.is_close = false;
                self.bogus_comment()
            }
        }
    }

    fn tag_name_close(&mut self) -> bool {
        self.is_close = false;
        self.set_token(TokenType::TagNameClose, self.pos, 1);
        self.pos += 1;
        self.state = if self.pos < self.len() {
            State::Data
        } else {
            State::Eof
        };
        true
    }

    fn tag_name(&mut self) -> bool {
        let start = self.pos;
        let mut pos = start;
        while let Some(&ch) = self.s.get(pos) {
            if ch == 0 {
                // Old browsers ignore NULs in tag names.
                pos += 1;
            } else if h5_is_white(ch) {
                self.set_token(TokenType::TagNameOpen, start, pos - start);
                self.pos = pos + 1;
                self.state = State::BeforeAttributeName;
                return true;
            } else if ch == b'/' {
                self.set_token(TokenType::TagNameOpen, start, pos - start);
                self.pos = pos + 1;
                self.state = State::SelfClosingStartTag;
                return true;
            } else if ch == b'>' {
                if self.is_close {
                    self.set_token(TokenType::TagClose, start, pos - start);
                    self.pos = pos + 1;
                    self.is_close = false;
                    self.state = State::Data;
                } else {
                    self.set_token(TokenType::TagNameOpen, start, pos - start);
                    self.pos = pos;
                    self.state = State::TagNameClose;
                }
                return true;
            } else {
                pos += 1;
            }
        }
        self.set_token(TokenType::TagNameOpen, start, self.len() - start);
        self.state = State::Eof;
        true
    }

    fn before_attribute_name(&mut self) -> bool {
        loop {
            match self.skip_white() {
                CHAR_EOF => return false,
                0x2f => {
                    // '/': loop here rather than recurse through the
                    // self-closing state (C: manual tail call).
                    self.pos += 1;
                    if self.pos < self.len() && self.s[self.pos] != b'>' {
                        continue;
                    }
                    return self.self_closing_start_tag();
                }
                0x3e => {
                    // '>'
                    self.state = State::Data;
                    self.set_token(TokenType::TagNameClose, self.pos, 1);
                    self.pos += 1;
                    return true;
                }
                _ => return self.attribute_name(),
            }
        }
    }

    fn attribute_name(&mut self) -> bool {
        let start = self.pos;
        let mut pos = start + 1;
        while let Some(&ch) = self.s.get(pos) {
            let next = if h5_is_white(ch) {
                Some((State::AfterAttributeName, pos + 1))
            } else if ch == b'/' {
                Some((State::SelfClosingStartTag, pos + 1))
            } else if ch == b'=' {
                Some((State::BeforeAttributeValue, pos + 1))
            } else if ch == b'>' {
                Some((State::TagNameClose, pos))
            } else {
                None
            };
            if let Some((state, next_pos)) = next {
                self.set_token(TokenType::AttrName, start, pos - start);
                self.state = state;
                self.pos = next_pos;
                return true;
            }
            pos += 1;
        }
        let len = self.len();
        self.set_token(TokenType::AttrName, start, len.saturating_sub(start));
        self.state = State::Eof;
        self.pos = len;
        true
    }

    fn after_attribute_name(&mut self) -> bool {
        match self.skip_white() {
            CHAR_EOF => false,
            0x2f => {
                // '/'
                self.pos += 1;
                self.self_closing_start_tag()
            }
            0x3d => {
                // '='
                self.pos += 1;
                self.before_attribute_value()
            }
            0x3e => self.tag_name_close(), // '>'
            _ => self.attribute_name(),
        }
    }

    fn before_attribute_value(&mut self) -> bool {
        match self.skip_white() {
            CHAR_EOF => {
                self.state = State::Eof;
                false
            }
            0x22 => self.attribute_value_quote(b'"'),
            0x27 => self.attribute_value_quote(b'\''),
            0x60 => self.attribute_value_quote(b'`'), // IE
            _ => self.attribute_value_no_quote(),
        }
    }

    fn attribute_value_quote(&mut self, quote: u8) -> bool {
        // Skip the opening quote, unless we started inside the value.
        if self.pos > 0 {
            self.pos += 1;
        }
        let pos = self.pos.min(self.len());
        match memchr::memchr(quote, &self.s[pos..]) {
            None => {
                self.set_token(TokenType::AttrValue, pos, self.len() - pos);
                self.state = State::Eof;
            }
            Some(i) => {
                self.set_token(TokenType::AttrValue, pos, i);
                self.state = State::AfterAttributeValueQuoted;
                self.pos = pos + i + 1;
            }
        }
        true
    }

    fn attribute_value_no_quote(&mut self) -> bool {
        let start = self.pos;
        let mut pos = start;
        while let Some(&ch) = self.s.get(pos) {
            if h5_is_white(ch) {
                self.set_token(TokenType::AttrValue, start, pos - start);
                self.pos = pos + 1;
                self.state = State::BeforeAttributeName;
                return true;
            } else if ch == b'>' {
                self.set_token(TokenType::AttrValue, start, pos - start);
                self.pos = pos;
                self.state = State::TagNameClose;
                return true;
            }
            pos += 1;
        }
        self.state = State::Eof;
        self.set_token(TokenType::AttrValue, start, self.len() - start);
        true
    }

    fn after_attribute_value_quoted(&mut self) -> bool {
        let Some(&ch) = self.s.get(self.pos) else {
            return false;
        };
        if h5_is_white(ch) {
            self.pos += 1;
            self.before_attribute_name()
        } else if ch == b'/' {
            self.pos += 1;
            self.self_closing_start_tag()
        } else if ch == b'>' {
            self.set_token(TokenType::TagNameClose, self.pos, 1);
            self.pos += 1;
            self.state = State::Data;
            true
        } else {
            self.before_attribute_name()
        }
    }

    fn self_closing_start_tag(&mut self) -> bool {
        let Some(&ch) = self.s.get(self.pos) else {
            return false;
        };
        if ch == b'>' {
            self.set_token(TokenType::TagNameSelfClose, self.pos.saturating_sub(1), 2);
            self.state = State::Data;
            self.pos += 1;
            true
        } else {
            self.before_attribute_name()
        }
    }

    fn bogus_comment(&mut self) -> bool {
        let pos = self.pos;
        match memchr::memchr(b'>', &self.s[pos..]) {
            None => {
                self.set_token(TokenType::TagComment, pos, self.len() - pos);
                self.pos = self.len();
                self.state = State::Eof;
            }
            Some(i) => {
                self.set_token(TokenType::TagComment, pos, i);
                self.pos = pos + i + 1;
                self.state = State::Data;
            }
        }
        true
    }

    /// `<% ... %>` comments.
    fn bogus_comment2(&mut self) -> bool {
        let start = self.pos;
        let len = self.len();
        let mut pos = start;
        loop {
            let idx = memchr::memchr(b'%', &self.s[pos..]).map(|i| pos + i);
            match idx {
                Some(i) if i + 1 < len => {
                    if self.s[i + 1] != b'>' {
                        pos = i + 1;
                        continue;
                    }
                    self.set_token(TokenType::TagComment, start, i - start);
                    self.pos = i + 2;
                    self.state = State::Data;
                    return true;
                }
                _ => {
                    self.set_token(TokenType::TagComment, start, len - start);
                    self.pos = len;
                    self.state = State::Eof;
                    return true;
                }
            }
        }
    }

    fn markup_declaration_open(&mut self) -> bool {
        let rest = &self.s[self.pos..];
        if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"DOCTYPE") {
            self.doctype()
        } else if rest.starts_with(b"[CDATA[") {
            self.pos += 7;
            self.cdata()
        } else if rest.starts_with(b"--") {
            self.pos += 2;
            self.comment()
        } else {
            self.bogus_comment()
        }
    }

    /// `<!-- ... -->` (or `--!>`), NULs allowed between the dashes.
    fn comment(&mut self) -> bool {
        let start = self.pos;
        let s = self.s;
        let len = s.len();
        let mut pos = start;
        loop {
            let idx = memchr::memchr(b'-', &s[pos..]).map(|i| pos + i);
            let Some(i) = idx.filter(|&i| i + 3 <= len) else {
                return self.comment_to_eof(start);
            };
            let mut offset = 1;
            while i + offset < len && s[i + offset] == 0 {
                offset += 1;
            }
            if i + offset == len {
                return self.comment_to_eof(start);
            }
            let ch = s[i + offset];
            if ch != b'-' && ch != b'!' {
                pos = i + 1;
                continue;
            }
            offset += 1;
            if i + offset == len {
                return self.comment_to_eof(start);
            }
            if s[i + offset] != b'>' {
                pos = i + 1;
                continue;
            }
            offset += 1;
            self.set_token(TokenType::TagComment, start, i - start);
            self.pos = i + offset;
            self.state = State::Data;
            return true;
        }
    }

    fn comment_to_eof(&mut self, start: usize) -> bool {
        self.state = State::Eof;
        self.set_token(TokenType::TagComment, start, self.len() - start);
        true
    }

    fn cdata(&mut self) -> bool {
        let start = self.pos;
        let s = self.s;
        let len = s.len();
        let mut pos = start;
        loop {
            let idx = memchr::memchr(b']', &s[pos.min(len)..]).map(|i| pos + i);
            match idx {
                Some(i) if i + 3 <= len => {
                    if s[i + 1] == b']' && s[i + 2] == b'>' {
                        self.state = State::Data;
                        self.set_token(TokenType::DataText, start, i - start);
                        self.pos = i + 3;
                        return true;
                    }
                    pos = i + 1;
                }
                _ => {
                    self.state = State::Eof;
                    self.set_token(TokenType::DataText, start, len - start);
                    return true;
                }
            }
        }
    }

    fn doctype(&mut self) -> bool {
        let start = self.pos;
        match memchr::memchr(b'>', &self.s[start..]) {
            None => {
                self.state = State::Eof;
                self.set_token(TokenType::Doctype, start, self.len() - start);
            }
            Some(i) => {
                self.state = State::Data;
                self.set_token(TokenType::Doctype, start, i);
                self.pos = start + i + 1;
            }
        }
        true
    }
}
