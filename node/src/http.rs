//! Serving the HTTP API over TCP: hyper's connection settings, the API's limits on the request
//! target and the header section (answered with problems, like every other error), and
//! graceful shutdown.
//!
//! Two layers of limits, on purpose. hyper parses the request head before any of our code
//! runs, and answers what it refuses with a bare status and no body. So hyper's limits are
//! set well above the API's ([`HYPER_BUF_BYTES_MAX`], [`HYPER_HEADERS_COUNT_MAX`], and hyper's
//! fixed 65,534-byte request target), and [`limits`], installed by [`crate::api::app`],
//! refuses what exceeds the API's own limits ([`URI_LEN_MAX`], [`HEADER_SECTION_BYTES_MAX`],
//! [`HEADERS_COUNT_MAX`]) with a 414 or 431 problem and a stable code. Only a request beyond
//! hyper's limits still gets hyper's bare answer, and the connection is closed.

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::api::ApiError;

/// Longest request target (path and query) the API reads: RFC 9110 §4.1 recommends at least
/// 8,000 octets; the longest real one (a 64-byte shipment id and paging) is under 200.
pub const URI_LEN_MAX: usize = 8 * 1024;
/// Largest header section the API reads, counting each field as `name: value` and its line
/// end. Real clients send well under 2 KiB.
pub const HEADER_SECTION_BYTES_MAX: usize = 32 * 1024;
/// Most header fields the API reads (each value of a repeated field counts): hyper's default.
pub const HEADERS_COUNT_MAX: usize = 100;
/// hyper's read buffer for an HTTP/1 connection, so the largest request head (request line
/// and header section) that reaches [`limits`]; above it hyper answers a bare 431. Also the
/// HTTP/2 header list limit (`SETTINGS_MAX_HEADER_LIST_SIZE`). hyper's default is 408 KiB.
pub const HYPER_BUF_BYTES_MAX: usize = 256 * 1024;
/// Most header fields hyper parses in an HTTP/1 request; above it hyper answers a bare 431.
pub const HYPER_HEADERS_COUNT_MAX: usize = 1_000;
/// How long a client may take to send a request head.
const HEADER_READ_TIMEOUT_MS: u64 = 30_000;
/// How long to wait before accepting again after an accept error that is not about one
/// connection (out of file descriptors, say), as axum and hyper 0.14 did.
const ACCEPT_ERROR_PAUSE_MS: u64 = 1_000;

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets every
/// request in flight finish (idle connections are closed at once) and returns.
///
/// What `axum::serve(listener, app).with_graceful_shutdown(shutdown)` does, with hyper's
/// limits raised as the module documentation says. HTTP/1.1 and HTTP/2 (prior knowledge);
/// no upgrades. Errors of one connection end that connection only; the result is always `Ok`,
/// the `io::Result` is kept for the caller's sake.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(HYPER_BUF_BYTES_MAX)
        .max_headers(HYPER_HEADERS_COUNT_MAX)
        // A client that opens a connection and trickles its headers holds a task and a
        // buffer; hyper enforces the bound only with a timer.
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(HEADER_READ_TIMEOUT_MS));
    builder
        .http2()
        .max_header_list_size(u32::try_from(HYPER_BUF_BYTES_MAX).unwrap_or(u32::MAX));
    let connections = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _remote)) => stream,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    tracing::error!(%error, "accepting an HTTP connection failed");
                    let pause = tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS));
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = pause => continue,
                    }
                }
            },
        };
        let connection = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()))
            .into_owned();
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

/// An accept error about one connection, which the next accept does not repeat.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Middleware: a request target longer than [`URI_LEN_MAX`] gets 414 `request.uri`; a header
/// section with more than [`HEADERS_COUNT_MAX`] fields or more than
/// [`HEADER_SECTION_BYTES_MAX`] bytes gets 431 `request.headers`. Both are problems.
pub async fn limits(request: Request, next: Next) -> Response {
    match check_limits(request.uri(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

fn check_limits(uri: &Uri, headers: &HeaderMap) -> Result<(), ApiError> {
    let target_len = uri.path_and_query().map_or(0, |p| p.as_str().len());
    if target_len > URI_LEN_MAX {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "request.uri",
            Some("uri".into()),
            format!("the request target has {target_len} bytes; at most {URI_LEN_MAX} are read"),
        ));
    }
    if headers.len() > HEADERS_COUNT_MAX {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request.headers",
            Some("headers".into()),
            format!(
                "the request has {} header fields; at most {HEADERS_COUNT_MAX} are read",
                headers.len()
            ),
        ));
    }
    // `name: value` and CRLF per field.
    let section_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if section_bytes > HEADER_SECTION_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request.headers",
            Some("headers".into()),
            format!(
                "the header section has {section_bytes} bytes; at most \
                 {HEADER_SECTION_BYTES_MAX} are read"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn refused(uri: &Uri, headers: &HeaderMap) -> Option<StatusCode> {
        check_limits(uri, headers)
            .err()
            .map(|e| e.into_response().status())
    }

    #[test]
    fn each_limit_is_inclusive_and_one_more_is_refused() {
        let of_len =
            |len: usize| -> Uri { format!("/{}", "a".repeat(len - 1)).parse().expect("uri") };
        let none = HeaderMap::new();
        assert_eq!(refused(&of_len(URI_LEN_MAX), &none), None);
        assert_eq!(
            refused(&of_len(URI_LEN_MAX + 1), &none),
            Some(StatusCode::URI_TOO_LONG)
        );

        let root: Uri = "/".parse().expect("uri");
        // One field of exactly the limit: `x: `, the value, CRLF.
        let value = "v".repeat(HEADER_SECTION_BYTES_MAX - 5);
        let mut headers = HeaderMap::new();
        headers.insert("x", HeaderValue::from_str(&value).expect("value"));
        assert_eq!(refused(&root, &headers), None);
        headers.insert(
            "x",
            HeaderValue::from_str(&format!("{value}v")).expect("value"),
        );
        assert_eq!(
            refused(&root, &headers),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );

        let mut many = HeaderMap::new();
        for _ in 0..HEADERS_COUNT_MAX {
            many.append("x", HeaderValue::from_static("1"));
        }
        assert_eq!(refused(&root, &many), None);
        many.append("x", HeaderValue::from_static("1"));
        assert_eq!(
            refused(&root, &many),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
    }
}
