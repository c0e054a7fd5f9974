//! Rule targets: which variables (collections and their members) a rule
//! inspects, as written in the first argument of `SecRule`.
//!
//! `ARGS|!ARGS:password|&REQUEST_HEADERS:Host|REQUEST_COOKIES:/^_ga/|XML:/*`

use regex::bytes::Regex;

/// A variable or collection the engine knows how to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Var {
    Args,
    ArgsNames,
    ArgsGet,
    ArgsGetNames,
    ArgsPost,
    ArgsPostNames,
    ArgsCombinedSize,
    RequestHeaders,
    RequestHeadersNames,
    RequestCookies,
    RequestCookiesNames,
    RequestFilename,
    RequestBasename,
    RequestUri,
    RequestUriRaw,
    RequestLine,
    RequestMethod,
    RequestProtocol,
    RequestBody,
    RequestBodyLength,
    QueryString,
    Files,
    FilesNames,
    FilesSizes,
    FilesCombinedSize,
    FilesTmpContent,
    MultipartPartHeaders,
    /// One of the scalar `MULTIPART_*` flags; the name is in the selector slot.
    Multipart(MultipartVar),
    Xml,
    Tx,
    MatchedVar,
    MatchedVarName,
    MatchedVars,
    MatchedVarsNames,
    ReqbodyError,
    ReqbodyErrorMsg,
    ReqbodyProcessor,
    ReqbodyProcessorError,
    RemoteAddr,
    RemotePort,
    ServerName,
    UniqueId,
    ResponseBody,
    ResponseHeaders,
    ResponseHeadersNames,
    ResponseStatus,
    ResponseProtocol,
    ResponseContentType,
    ResponseContentLength,
    Duration,
    Env,
    Geo,
    Ip,
    Global,
    Session,
    User,
    Resource,
    Rule,
    Time,
    WebserverErrorLog,
    HighestSeverity,
    StatusLine,
    FullRequest,
    FullRequestLength,
    InboundDataError,
    OutboundDataError,
    AuthType,
    UrlencodedError,
}

/// Scalar multipart flags ModSecurity exposes as variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MultipartVar {
    StrictError,
    UnmatchedBoundary,
    BoundaryQuoted,
    BoundaryWhitespace,
    DataBefore,
    DataAfter,
    HeaderFolding,
    LfLine,
    MissingSemicolon,
    InvalidQuoting,
    InvalidPart,
    InvalidHeaderFolding,
    FileLimitExceeded,
    CrlfLfLines,
    Filename,
    Name,
}

impl Var {
    /// Parses a collection name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Var> {
        use Var::*;
        let upper = name.to_ascii_uppercase();
        Some(match upper.as_str() {
            "ARGS" => Args,
            "ARGS_NAMES" => ArgsNames,
            "ARGS_GET" => ArgsGet,
            "ARGS_GET_NAMES" => ArgsGetNames,
            "ARGS_POST" => ArgsPost,
            "ARGS_POST_NAMES" => ArgsPostNames,
            "ARGS_COMBINED_SIZE" => ArgsCombinedSize,
            "REQUEST_HEADERS" => RequestHeaders,
            "REQUEST_HEADERS_NAMES" => RequestHeadersNames,
            "REQUEST_COOKIES" => RequestCookies,
            "REQUEST_COOKIES_NAMES" => RequestCookiesNames,
            "REQUEST_FILENAME" => RequestFilename,
            "REQUEST_BASENAME" => RequestBasename,
            "REQUEST_URI" => RequestUri,
            "REQUEST_URI_RAW" => RequestUriRaw,
            "REQUEST_LINE" => RequestLine,
            "REQUEST_METHOD" => RequestMethod,
            "REQUEST_PROTOCOL" => RequestProtocol,
            "REQUEST_BODY" => RequestBody,
            "REQUEST_BODY_LENGTH" => RequestBodyLength,
            "QUERY_STRING" => QueryString,
            "FILES" => Files,
            "FILES_NAMES" => FilesNames,
            "FILES_SIZES" => FilesSizes,
            "FILES_COMBINED_SIZE" => FilesCombinedSize,
            "FILES_TMP_CONTENT" => FilesTmpContent,
            "MULTIPART_PART_HEADERS" => MultipartPartHeaders,
            "MULTIPART_STRICT_ERROR" => Multipart(MultipartVar::StrictError),
            "MULTIPART_UNMATCHED_BOUNDARY" => Multipart(MultipartVar::UnmatchedBoundary),
            "MULTIPART_BOUNDARY_QUOTED" => Multipart(MultipartVar::BoundaryQuoted),
            "MULTIPART_BOUNDARY_WHITESPACE" => Multipart(MultipartVar::BoundaryWhitespace),
            "MULTIPART_DATA_BEFORE" => Multipart(MultipartVar::DataBefore),
            "MULTIPART_DATA_AFTER" => Multipart(MultipartVar::DataAfter),
            "MULTIPART_HEADER_FOLDING" => Multipart(MultipartVar::HeaderFolding),
            "MULTIPART_LF_LINE" => Multipart(MultipartVar::LfLine),
            "MULTIPART_MISSING_SEMICOLON" => Multipart(MultipartVar::MissingSemicolon),
            "MULTIPART_INVALID_QUOTING" => Multipart(MultipartVar::InvalidQuoting),
            "MULTIPART_INVALID_PART" => Multipart(MultipartVar::InvalidPart),
            "MULTIPART_INVALID_HEADER_FOLDING" => Multipart(MultipartVar::InvalidHeaderFolding),
            "MULTIPART_FILE_LIMIT_EXCEEDED" => Multipart(MultipartVar::FileLimitExceeded),
            "MULTIPART_CRLF_LF_LINES" => Multipart(MultipartVar::CrlfLfLines),
            "MULTIPART_FILENAME" => Multipart(MultipartVar::Filename),
            "MULTIPART_NAME" => Multipart(MultipartVar::Name),
            "XML" => Xml,
            "TX" => Tx,
            "MATCHED_VAR" => MatchedVar,
            "MATCHED_VAR_NAME" => MatchedVarName,
            "MATCHED_VARS" => MatchedVars,
            "MATCHED_VARS_NAMES" => MatchedVarsNames,
            "REQBODY_ERROR" => ReqbodyError,
            "REQBODY_ERROR_MSG" => ReqbodyErrorMsg,
            "REQBODY_PROCESSOR" => ReqbodyProcessor,
            "REQBODY_PROCESSOR_ERROR" => ReqbodyProcessorError,
            "REMOTE_ADDR" => RemoteAddr,
            "REMOTE_PORT" => RemotePort,
            "SERVER_NAME" => ServerName,
            "UNIQUE_ID" => UniqueId,
            "RESPONSE_BODY" => ResponseBody,
            "RESPONSE_HEADERS" => ResponseHeaders,
            "RESPONSE_HEADERS_NAMES" => ResponseHeadersNames,
            "RESPONSE_STATUS" => ResponseStatus,
            "RESPONSE_PROTOCOL" => ResponseProtocol,
            "RESPONSE_CONTENT_TYPE" => ResponseContentType,
            "RESPONSE_CONTENT_LENGTH" => ResponseContentLength,
            "DURATION" => Duration,
            "ENV" => Env,
            "GEO" => Geo,
            "IP" => Ip,
            "GLOBAL" => Global,
            "SESSION" => Session,
            "USER" => User,
            "RESOURCE" => Resource,
            "RULE" => Rule,
            "TIME" => Time,
            "WEBSERVER_ERROR_LOG" => WebserverErrorLog,
            "HIGHEST_SEVERITY" => HighestSeverity,
            "STATUS_LINE" => StatusLine,
            "FULL_REQUEST" => FullRequest,
            "FULL_REQUEST_LENGTH" => FullRequestLength,
            "INBOUND_DATA_ERROR" => InboundDataError,
            "OUTBOUND_DATA_ERROR" => OutboundDataError,
            "AUTH_TYPE" => AuthType,
            "URLENCODED_ERROR" => UrlencodedError,
            _ => return None,
        })
    }

    /// The canonical upper-case name, as used in `MATCHED_VAR_NAME`.
    pub fn name(self) -> &'static str {
        use Var::*;
        match self {
            Args => "ARGS",
            ArgsNames => "ARGS_NAMES",
            ArgsGet => "ARGS_GET",
            ArgsGetNames => "ARGS_GET_NAMES",
            ArgsPost => "ARGS_POST",
            ArgsPostNames => "ARGS_POST_NAMES",
            ArgsCombinedSize => "ARGS_COMBINED_SIZE",
            RequestHeaders => "REQUEST_HEADERS",
            RequestHeadersNames => "REQUEST_HEADERS_NAMES",
            RequestCookies => "REQUEST_COOKIES",
            RequestCookiesNames => "REQUEST_COOKIES_NAMES",
            RequestFilename => "REQUEST_FILENAME",
            RequestBasename => "REQUEST_BASENAME",
            RequestUri => "REQUEST_URI",
            RequestUriRaw => "REQUEST_URI_RAW",
            RequestLine => "REQUEST_LINE",
            RequestMethod => "REQUEST_METHOD",
            RequestProtocol => "REQUEST_PROTOCOL",
            RequestBody => "REQUEST_BODY",
            RequestBodyLength => "REQUEST_BODY_LENGTH",
            QueryString => "QUERY_STRING",
            Files => "FILES",
            FilesNames => "FILES_NAMES",
            FilesSizes => "FILES_SIZES",
            FilesCombinedSize => "FILES_COMBINED_SIZE",
            FilesTmpContent => "FILES_TMP_CONTENT",
            MultipartPartHeaders => "MULTIPART_PART_HEADERS",
            Multipart(m) => m.name(),
            Xml => "XML",
            Tx => "TX",
            MatchedVar => "MATCHED_VAR",
            MatchedVarName => "MATCHED_VAR_NAME",
            MatchedVars => "MATCHED_VARS",
            MatchedVarsNames => "MATCHED_VARS_NAMES",
            ReqbodyError => "REQBODY_ERROR",
            ReqbodyErrorMsg => "REQBODY_ERROR_MSG",
            ReqbodyProcessor => "REQBODY_PROCESSOR",
            ReqbodyProcessorError => "REQBODY_PROCESSOR_ERROR",
            RemoteAddr => "REMOTE_ADDR",
            RemotePort => "REMOTE_PORT",
            ServerName => "SERVER_NAME",
            UniqueId => "UNIQUE_ID",
            ResponseBody => "RESPONSE_BODY",
            ResponseHeaders => "RESPONSE_HEADERS",
            ResponseHeadersNames => "RESPONSE_HEADERS_NAMES",
            ResponseStatus => "RESPONSE_STATUS",
            ResponseProtocol => "RESPONSE_PROTOCOL",
            ResponseContentType => "RESPONSE_CONTENT_TYPE",
            ResponseContentLength => "RESPONSE_CONTENT_LENGTH",
            Duration => "DURATION",
            Env => "ENV",
            Geo => "GEO",
            Ip => "IP",
            Global => "GLOBAL",
            Session => "SESSION",
            User => "USER",
            Resource => "RESOURCE",
            Rule => "RULE",
            Time => "TIME",
            WebserverErrorLog => "WEBSERVER_ERROR_LOG",
            HighestSeverity => "HIGHEST_SEVERITY",
            StatusLine => "STATUS_LINE",
            FullRequest => "FULL_REQUEST",
            FullRequestLength => "FULL_REQUEST_LENGTH",
            InboundDataError => "INBOUND_DATA_ERROR",
            OutboundDataError => "OUTBOUND_DATA_ERROR",
            AuthType => "AUTH_TYPE",
            UrlencodedError => "URLENCODED_ERROR",
        }
    }

    /// True for the variables of the response (phases 3 and 4).
    pub fn is_response(self) -> bool {
        matches!(
            self,
            Var::ResponseBody
                | Var::ResponseHeaders
                | Var::ResponseHeadersNames
                | Var::ResponseStatus
                | Var::ResponseProtocol
                | Var::ResponseContentType
                | Var::ResponseContentLength
                | Var::StatusLine
                | Var::OutboundDataError
        )
    }

    /// True for variables whose values a target selects from the request
    /// and response data alone (never from the transaction's state, which
    /// rules change while a phase runs): what such a target list selects
    /// is the same for every rule of a phase (see
    /// [`crate::rules::Rule::item_lists`]).
    pub fn is_data_only(self) -> bool {
        matches!(
            self,
            Var::Args
                | Var::ArgsNames
                | Var::ArgsGet
                | Var::ArgsGetNames
                | Var::ArgsPost
                | Var::ArgsPostNames
                | Var::ArgsCombinedSize
                | Var::RequestHeaders
                | Var::RequestHeadersNames
                | Var::RequestCookies
                | Var::RequestCookiesNames
                | Var::RequestFilename
                | Var::RequestBasename
                | Var::RequestUri
                | Var::RequestUriRaw
                | Var::RequestLine
                | Var::RequestMethod
                | Var::RequestProtocol
                | Var::QueryString
                | Var::Files
                | Var::FilesNames
                | Var::FilesSizes
                | Var::FilesCombinedSize
                | Var::MultipartPartHeaders
                | Var::Xml
                | Var::ResponseHeaders
                | Var::ResponseHeadersNames
        )
    }

    /// True for variables whose value is fixed once the request (headers and
    /// body) is parsed, or once the response headers, then its body, are
    /// given, so transformation results can be cached (until the values
    /// are replaced).
    pub fn is_request_static(self) -> bool {
        !matches!(
            self,
            Var::Tx
                | Var::MatchedVar
                | Var::MatchedVarName
                | Var::MatchedVars
                | Var::MatchedVarsNames
                | Var::Ip
                | Var::Global
                | Var::Session
                | Var::User
                | Var::Resource
                | Var::Rule
                | Var::Duration
                | Var::Time
                | Var::HighestSeverity
        )
    }
}

impl MultipartVar {
    pub fn name(self) -> &'static str {
        use MultipartVar::*;
        match self {
            StrictError => "MULTIPART_STRICT_ERROR",
            UnmatchedBoundary => "MULTIPART_UNMATCHED_BOUNDARY",
            BoundaryQuoted => "MULTIPART_BOUNDARY_QUOTED",
            BoundaryWhitespace => "MULTIPART_BOUNDARY_WHITESPACE",
            DataBefore => "MULTIPART_DATA_BEFORE",
            DataAfter => "MULTIPART_DATA_AFTER",
            HeaderFolding => "MULTIPART_HEADER_FOLDING",
            LfLine => "MULTIPART_LF_LINE",
            MissingSemicolon => "MULTIPART_MISSING_SEMICOLON",
            InvalidQuoting => "MULTIPART_INVALID_QUOTING",
            InvalidPart => "MULTIPART_INVALID_PART",
            InvalidHeaderFolding => "MULTIPART_INVALID_HEADER_FOLDING",
            FileLimitExceeded => "MULTIPART_FILE_LIMIT_EXCEEDED",
            CrlfLfLines => "MULTIPART_CRLF_LF_LINES",
            Filename => "MULTIPART_FILENAME",
            Name => "MULTIPART_NAME",
        }
    }
}

/// Which members of a collection a target selects.
#[derive(Debug, Clone)]
pub enum Selector {
    /// The whole collection.
    All,
    /// One member by name (compared case-insensitively).
    Key(String),
    /// Members whose name matches (case-insensitively).
    Regex(Regex),
    /// An XPath expression for `XML` (`/*` text, `//@*` attributes).
    XPath(String),
}

impl Selector {
    pub fn matches(&self, key: &[u8]) -> bool {
        match self {
            Selector::All => true,
            Selector::Key(k) => k.as_bytes().eq_ignore_ascii_case(key),
            Selector::Regex(r) => r.is_match(key),
            Selector::XPath(_) => true,
        }
    }

    /// Text form, as written (for messages and exclusion matching).
    pub fn text(&self) -> String {
        match self {
            Selector::All => String::new(),
            Selector::Key(k) => k.clone(),
            Selector::Regex(r) => format!("/{}/", r.as_str().trim_start_matches("(?i)")),
            Selector::XPath(x) => x.clone(),
        }
    }
}

/// One element of a rule's target list.
#[derive(Debug, Clone)]
pub struct Target {
    pub var: Var,
    pub selector: Selector,
    /// `&VAR`: the number of selected members instead of their values.
    pub count: bool,
    /// For `TX:key`: the key in lower case, as TX variables are stored.
    pub tx_key: Option<Box<str>>,
    /// For `TX:key`: the key's number (set when the rule set is compiled,
    /// see [`crate::txvars`]).
    pub tx_slot: Option<u32>,
}

impl Target {
    pub fn new(var: Var, selector: Selector, count: bool) -> Target {
        let tx_key = match (&selector, var) {
            (Selector::Key(k), Var::Tx) => Some(k.to_ascii_lowercase().into_boxed_str()),
            _ => None,
        };
        Target {
            var,
            selector,
            count,
            tx_key,
            tx_slot: None,
        }
    }
}

/// A parsed target list: what to inspect and what to leave out.
#[derive(Debug, Clone, Default)]
pub struct TargetList {
    pub targets: Vec<Target>,
    /// `!VAR:key` exclusions.
    pub exclusions: Vec<(Var, Selector)>,
}

/// Parses `ARGS|!ARGS:x|&TX:y|REQUEST_COOKIES:/re/`.
pub fn parse_targets(text: &str) -> Result<TargetList, String> {
    let mut list = TargetList::default();
    for piece in split_targets(text)? {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let (negate, rest) = match piece.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, piece),
        };
        let (count, rest) = match rest.strip_prefix('&') {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let (name, sel) = match rest.split_once(':') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        let var =
            Var::from_name(name.trim()).ok_or_else(|| format!("unknown variable {name:?}"))?;
        let selector = match sel {
            None => Selector::All,
            Some(s) => parse_selector(var, s)?,
        };
        if negate {
            if count {
                return Err(format!("cannot both exclude and count: {piece:?}"));
            }
            list.exclusions.push((var, selector));
        } else {
            list.targets.push(Target::new(var, selector, count));
        }
    }
    Ok(list)
}

fn parse_selector(var: Var, s: &str) -> Result<Selector, String> {
    let s = s.trim();
    let s = if s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'') {
        &s[1..s.len() - 1]
    } else {
        s
    };
    if var == Var::Xml {
        return Ok(Selector::XPath(s.to_string()));
    }
    if s.len() >= 2 && s.starts_with('/') && s.ends_with('/') {
        let pat = &s[1..s.len() - 1];
        let re = regex::bytes::RegexBuilder::new(&format!("(?i){pat}"))
            .unicode(false)
            .build()
            .map_err(|e| format!("bad selector regex /{pat}/: {e}"))?;
        return Ok(Selector::Regex(re));
    }
    Ok(Selector::Key(s.to_string()))
}

/// Splits on `|`, keeping `|` inside `/regex/` selectors and quotes.
fn split_targets(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_regex = false;
    let mut in_quote = false;
    let mut prev = '\0';
    let mut after_colon = false;
    for c in text.chars() {
        match c {
            '\'' if !in_regex => in_quote = !in_quote,
            '/' if after_colon
                && !in_quote
                && cur.ends_with(':')
                && !cur
                    .trim_start_matches(['!', '&'])
                    .to_ascii_uppercase()
                    .starts_with("XML:") =>
            {
                in_regex = true
            }
            '/' if in_regex && prev != '\\' => in_regex = false,
            '|' if !in_regex && !in_quote => {
                out.push(std::mem::take(&mut cur));
                after_colon = false;
                prev = c;
                continue;
            }
            ':' if !in_regex && !in_quote => after_colon = true,
            _ => {}
        }
        cur.push(c);
        prev = c;
    }
    if in_quote {
        return Err("unterminated quote in target list".into());
    }
    out.push(cur);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_exclusions_counts_and_regexes() {
        let x = parse_targets("XML:/*|XML://@*|ARGS").unwrap();
        assert_eq!(x.targets.len(), 3);
        assert!(matches!(&x.targets[1].selector, Selector::XPath(p) if p == "//@*"));
        let l = parse_targets("ARGS|!ARGS:pass|&TX:x|REQUEST_COOKIES:/^(a|b)_/|XML:/*").unwrap();
        assert_eq!(l.targets.len(), 4);
        assert_eq!(l.exclusions.len(), 1);
        assert!(l.targets[1].count);
        match &l.targets[2].selector {
            Selector::Regex(r) => {
                assert!(r.is_match(b"A_x"));
                assert!(!r.is_match(b"c_x"));
            }
            s => panic!("{s:?}"),
        }
        assert!(matches!(&l.targets[3].selector, Selector::XPath(x) if x == "/*"));
        assert!(parse_targets("NOPE").is_err());
    }
}
