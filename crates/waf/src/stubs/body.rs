use crate::variables::MultipartVar;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processor {
    UrlEncoded,
    Multipart,
    Json,
    Xml,
}
impl Processor {
    pub fn from_name(n: &str) -> Option<Processor> {
        match n.to_ascii_uppercase().as_str() {
            "URLENCODED" => Some(Processor::UrlEncoded),
            "MULTIPART" => Some(Processor::Multipart),
            "JSON" => Some(Processor::Json),
            "XML" => Some(Processor::Xml),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Processor::UrlEncoded => "URLENCODED",
            Processor::Multipart => "MULTIPART",
            Processor::Json => "JSON",
            Processor::Xml => "XML",
        }
    }
}
pub struct BodyLimits {
    pub max_body_bytes: usize,
    pub max_args: usize,
    pub max_json_depth: usize,
}
#[derive(Debug, Default)]
pub struct FilePart {
    pub name: Vec<u8>,
    pub filename: Vec<u8>,
    pub size: usize,
    pub content: Vec<u8>,
}
#[derive(Debug, Default)]
pub struct MultipartFlags {}
impl MultipartFlags {
    pub fn get(&self, _m: MultipartVar) -> i64 {
        0
    }
}
#[derive(Debug, Default)]
pub struct XmlDoc {
    pub text: Vec<Vec<u8>>,
    pub attributes: Vec<Vec<u8>>,
}
#[derive(Debug, Default)]
pub struct ParsedBody {
    pub args: Vec<(Vec<u8>, Vec<u8>)>,
    pub files: Vec<FilePart>,
    pub multipart_part_headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub multipart: Option<MultipartFlags>,
    pub xml: Option<XmlDoc>,
    pub error: Option<String>,
}
pub fn parse(p: Processor, _ct: &[u8], body: &[u8], _l: &BodyLimits) -> ParsedBody {
    let mut b = ParsedBody::default();
    if p == Processor::UrlEncoded {
        parse_urlencoded(body, &mut b.args);
    }
    b
}
pub fn parse_urlencoded(input: &[u8], out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
    for piece in input.split(|&c| c == b'&') {
        if piece.is_empty() {
            continue;
        }
        let (k, v) = match piece.iter().position(|&c| c == b'=') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &b""[..]),
        };
        let d = |x: &[u8]| {
            let y: Vec<u8> = x
                .iter()
                .map(|&c| if c == b'+' { b' ' } else { c })
                .collect();
            crate::transaction::percent_decode(&y)
        };
        out.push((d(k), d(v)));
    }
}
