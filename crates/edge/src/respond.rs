//! The one place that turns a verdict or an error into a synthetic response.
//! Every answer the edge writes itself carries `X-Request-Id`, `Cache-Control:
//! no-store` and a short plain-text body saying what happened. (The only
//! other thing the edge writes itself is an interim `100 Continue`, also here.)

use bytes::Bytes;
use pingora_http::ResponseHeader;
use pingora_proxy::Session;

/// The body text for a status the edge answers itself.
pub fn body_for(status: u16) -> &'static str {
    match status {
        400 => "400 Bad Request: the request is malformed.\n",
        403 => "403 Forbidden: this request was blocked by Palisade.\n",
        408 => "408 Request Timeout: the request body did not arrive in time.\n",
        413 => "413 Content Too Large: the request body exceeds the limit.\n",
        414 => "414 URI Too Long: the request target exceeds the limit.\n",
        429 => "429 Too Many Requests: rate limit exceeded, retry later.\n",
        431 => "431 Request Header Fields Too Large: too many or too large headers.\n",
        502 => "502 Bad Gateway: the upstream failed to answer.\n",
        503 => "503 Service Unavailable: no healthy upstream.\n",
        504 => "504 Gateway Timeout: the upstream did not answer in time.\n",
        s if (400..500).contains(&s) => "Request blocked by Palisade.\n",
        _ => "The request could not be served.\n",
    }
}

/// Writes a complete synthetic response.
pub async fn send(
    session: &mut Session,
    status: u16,
    retry_after_secs: Option<u64>,
    request_id: &str,
    close: bool,
) -> pingora_core::Result<()> {
    let body = body_for(status);
    let mut resp = ResponseHeader::build(status, Some(6))?;
    resp.insert_header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    resp.insert_header(http::header::CACHE_CONTROL, "no-store")?;
    resp.insert_header(crate::proxy::X_REQUEST_ID, request_id)?;
    if let Some(secs) = retry_after_secs {
        resp.insert_header(http::header::RETRY_AFTER, secs)?;
    }
    if close {
        resp.insert_header(http::header::CONNECTION, "close")?;
        session.set_keepalive(None);
    }
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from_static(body.as_bytes())), true)
        .await?;
    Ok(())
}

/// Tells an HTTP/1.1 client that sent `Expect: 100-continue` to send its body
/// (the edge reads it for the WAF before choosing an upstream).
pub async fn send_continue(session: &mut Session) -> pingora_core::Result<()> {
    let resp = ResponseHeader::build(100, Some(0))?;
    session.write_response_header(Box::new(resp), false).await
}
