/// The request body (declared or received) is longer than its limit.
pub const BODY_TOO_LARGE: &str = "body_too_large";
/// The decoded body is longer than the limit (a compression bomb, or
/// just a large compressed body).
pub const DECODED_TOO_LARGE: &str = "decoded_too_large";
/// Only the first `limit` bytes of the body were inspected.
pub const BODY_TRUNCATED: &str = "body_truncated";
/// A `Content-Encoding` with `body_content_encoding = "refuse"`.
pub const ENCODING_REFUSED: &str = "encoding_refused";
/// A `Content-Encoding` the engine cannot decode.
pub const ENCODING_UNSUPPORTED: &str = "encoding_unsupported";
/// The compressed body is not valid data of its encoding.
pub const ENCODING_CORRUPT: &str = "encoding_corrupt";
/// Body inspection is switched off (limit 0, responses disabled,
/// `SecResponseBodyAccess Off`).
pub const DISABLED: &str = "disabled";
/// The response's media type is not one of `response_body_mime_types`.
pub const MIME_TYPE: &str = "mime_type";
/// The response has no body (HEAD, 1xx, 204, 304).
pub const NO_BODY: &str = "no_body";
/// The exchange was already blocked.
pub const BLOCKED: &str = "blocked";
