//! The WebSocket handshake of the sync endpoint (RFC 6455, section 4.2):
//! check that a request asks for an upgrade, answer `101 Switching
//! Protocols`, and turn the upgraded connection into a WebSocket.
//!
//! Done here rather than with axum's `WebSocketUpgrade`, whose task keeps
//! its configuration, callback and protocol next to the connection's future
//! for the connection's whole life: the relay's task is its own future
//! alone (see docs/performance.md, "One keepalive for all connections").

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// A connection after the handshake.
pub(crate) type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Read buffer of a WebSocket connection, and the most read from the socket
/// at once. tungstenite zero-fills it on the first read, so every idle
/// connection holds it (`map-load --scenario idle`, 1,000 connections:
/// 18.1 MiB with 4 KiB, 15.1 MiB with 1 KiB; later, with smaller connection
/// futures, 10.5-10.6 MiB with 1 KiB and 9.9-10.2 MiB with 512 bytes, and
/// converge no slower). A frame larger than this still arrives whole (the
/// buffer grows to the frame), in reads of at most this size.
const READ_BUFFER_BYTES: usize = 512;

/// A request that asked for a WebSocket, checked.
pub(crate) struct Upgrade {
    /// Resolves to the connection once hyper has sent the 101 response.
    pub(crate) on_upgrade: OnUpgrade,
    accept: HeaderValue,
}

/// Why a request is not an upgrade: the status and what to tell the client.
pub(crate) type Refusal = (StatusCode, &'static str);

/// Check that `request` is a WebSocket upgrade (version 13) that hyper can
/// hand over; otherwise what is wrong with it.
pub(crate) fn check(request: &mut Request) -> Result<Upgrade, Refusal> {
    if request.method() != Method::GET {
        return Err((
            StatusCode::METHOD_NOT_ALLOWED,
            "a WebSocket upgrade must be a GET request",
        ));
    }
    let headers = request.headers();
    if !has_token(headers, header::CONNECTION, "upgrade") {
        return Err((
            StatusCode::BAD_REQUEST,
            "the Connection header does not say 'upgrade': connect with a WebSocket client",
        ));
    }
    if !has_token(headers, header::UPGRADE, "websocket") {
        return Err((
            StatusCode::BAD_REQUEST,
            "the Upgrade header does not say 'websocket': connect with a WebSocket client",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err((
            StatusCode::BAD_REQUEST,
            "unsupported WebSocket version: this relay speaks version 13",
        ));
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "the Sec-WebSocket-Key header is missing",
        ));
    };
    let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|_| (StatusCode::BAD_REQUEST, "invalid Sec-WebSocket-Key header"))?;
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded to a WebSocket",
        ));
    };
    Ok(Upgrade { on_upgrade, accept })
}

impl Upgrade {
    /// The `101 Switching Protocols` answer.
    pub(crate) fn switching_protocols(&self) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept.clone());
        response
    }
}

/// The WebSocket, once hyper has switched protocols; `None` if the
/// connection ended first.
pub(crate) async fn socket(on_upgrade: OnUpgrade, max_message_size: usize) -> Option<Socket> {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::debug!(error = %e, "websocket upgrade failed");
            return None;
        }
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
        // Not tungstenite's default 128 KiB: see READ_BUFFER_BYTES.
        .read_buffer_size(READ_BUFFER_BYTES);
    Some(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await)
}

/// Whether the comma-separated header `name` holds `token` (ignoring case).
fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use axum::extract::Request;
    use axum::http::{StatusCode, header};

    use super::check;

    fn upgrade_request_version(version: &str) -> axum::http::request::Builder {
        Request::builder()
            .uri("/sync")
            .header(header::CONNECTION, "keep-alive, Upgrade")
            .header(header::UPGRADE, "WebSocket")
            .header(header::SEC_WEBSOCKET_VERSION, version)
            .header(header::SEC_WEBSOCKET_KEY, "dGhlIHNhbXBsZSBub25jZQ==")
    }

    fn upgrade_request() -> axum::http::request::Builder {
        upgrade_request_version("13")
    }

    fn status(request: axum::http::request::Builder) -> StatusCode {
        let mut request = request.body(axum::body::Body::empty()).expect("request");
        match check(&mut request) {
            Ok(_) => StatusCode::SWITCHING_PROTOCOLS,
            Err((status, _)) => status,
        }
    }

    /// Each missing or wrong part of the handshake gets its own answer;
    /// without hyper's upgrade state (not served by hyper) it is 426.
    #[test]
    fn a_request_that_is_not_an_upgrade_is_refused() {
        assert_eq!(
            status(upgrade_request().method("POST")),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert_eq!(
            status(upgrade_request_version("8")),
            StatusCode::BAD_REQUEST
        );
        let no_key = Request::builder()
            .uri("/sync")
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_VERSION, "13");
        assert_eq!(status(no_key), StatusCode::BAD_REQUEST);
        let plain = Request::builder().uri("/sync");
        assert_eq!(status(plain), StatusCode::BAD_REQUEST);
        assert_eq!(status(upgrade_request()), StatusCode::UPGRADE_REQUIRED);
    }

    /// The accept key of RFC 6455's own example.
    #[test]
    fn the_accept_key_is_the_rfc_example() {
        assert_eq!(
            super::derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
