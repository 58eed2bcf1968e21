//! The block explorer: a few static files compiled into the node, served next to the API.
//!
//! Every page (`/`, `/search`, `/s/{shipment}`, `/m/{member}`, `/b/{height}`) answers the same
//! HTML shell; its script renders the page from the path and the node's JSON API, and
//! verifies shipment bundles in the browser against a genesis file (`verify.js`, written from
//! `docs/PROTOCOL.md`). Nothing is fetched from any other host, and the content security
//! policy says so to the browser: no inline script or style, no connection but to the node.
//!
//! The files carry no version in their names, so every answer is `Cache-Control: no-cache`
//! with a strong `ETag` (a hash of the bytes): a browser revalidates and gets `304 Not
//! Modified` until the node is upgraded, and never runs a stale script against a newer API.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

/// The policy sent with every explorer answer.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// One compiled-in file.
struct Asset {
    body: &'static str,
    content_type: &'static str,
    /// Computed on first use.
    etag: OnceLock<HeaderValue>,
}

impl Asset {
    const fn new(body: &'static str, content_type: &'static str) -> Self {
        Asset {
            body,
            content_type,
            etag: OnceLock::new(),
        }
    }
}

static SHELL: Asset = Asset::new(
    include_str!("../explorer/index.html"),
    "text/html; charset=utf-8",
);
static APP_JS: Asset = Asset::new(
    include_str!("../explorer/app.js"),
    "text/javascript; charset=utf-8",
);
static VERIFY_JS: Asset = Asset::new(
    include_str!("../explorer/verify.js"),
    "text/javascript; charset=utf-8",
);
static STYLE_CSS: Asset = Asset::new(
    include_str!("../explorer/style.css"),
    "text/css; charset=utf-8",
);

/// A strong validator: the first 16 bytes of the SHA-256 of the body, quoted.
fn etag_of(body: &str) -> HeaderValue {
    let digest = Sha256::digest(body.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex digits are a valid header value")
}

/// The explorer's routes, to merge into the API router. Generic over the state so it merges
/// into any router: the handlers need none.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(shell))
        .route("/search", get(shell))
        .route("/s/{shipment}", get(shell))
        .route("/m/{member}", get(shell))
        .route("/b/{height}", get(shell))
        .route("/explorer/app.js", get(app_js))
        .route("/explorer/verify.js", get(verify_js))
        .route("/explorer/style.css", get(style_css))
}

async fn shell(headers: HeaderMap) -> Response {
    serve(&SHELL, &headers)
}

async fn app_js(headers: HeaderMap) -> Response {
    serve(&APP_JS, &headers)
}

async fn verify_js(headers: HeaderMap) -> Response {
    serve(&VERIFY_JS, &headers)
}

async fn style_css(headers: HeaderMap) -> Response {
    serve(&STYLE_CSS, &headers)
}

/// The file, or `304` when the browser already holds these bytes.
fn serve(asset: &Asset, request: &HeaderMap) -> Response {
    let etag = asset.etag.get_or_init(|| etag_of(asset.body));
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || tag.trim() == etag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut ok = asset.body.into_response();
        ok.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        ok
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::{to_bytes, Body};
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get_path(path: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::get(path);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        router::<()>()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible")
    }

    fn header_of(response: &Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn every_page_answers_the_shell_with_the_policy() {
        for path in [
            "/",
            "/search?q=SSCC",
            "/s/SHP-1",
            "/m/carrier-swift",
            "/b/12",
        ] {
            let response = get_path(path, None).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(
                header_of(&response, header::CONTENT_TYPE),
                "text/html; charset=utf-8"
            );
            assert_eq!(
                header_of(&response, header::CONTENT_SECURITY_POLICY),
                CONTENT_SECURITY_POLICY
            );
            assert_eq!(
                header_of(&response, header::X_CONTENT_TYPE_OPTIONS),
                "nosniff"
            );
            assert_eq!(header_of(&response, header::CACHE_CONTROL), "no-cache");
            let body = to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            let text = String::from_utf8(body.to_vec()).expect("utf-8");
            assert!(text.contains(r#"<main id="page""#), "{path}");
            assert!(text.contains(r#"src="/explorer/app.js""#));
        }
    }

    #[tokio::test]
    async fn assets_have_their_content_types() {
        for (path, kind) in [
            ("/explorer/app.js", "text/javascript; charset=utf-8"),
            ("/explorer/verify.js", "text/javascript; charset=utf-8"),
            ("/explorer/style.css", "text/css; charset=utf-8"),
        ] {
            let response = get_path(path, None).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(header_of(&response, header::CONTENT_TYPE), kind, "{path}");
            assert!(!header_of(&response, header::ETAG).is_empty());
        }
        let missing = get_path("/explorer/nothing.js", None).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_known_etag_answers_not_modified() {
        let first = get_path("/explorer/verify.js", None).await;
        let tag = header_of(&first, header::ETAG).to_owned();
        let again = get_path("/explorer/verify.js", Some(&tag)).await;
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let body = to_bytes(again.into_body(), usize::MAX).await.expect("body");
        assert!(body.is_empty());
        let other = get_path("/explorer/verify.js", Some("\"0000\"")).await;
        assert_eq!(other.status(), StatusCode::OK);
    }

    #[test]
    fn the_shell_has_no_inline_script_or_style() {
        let shell = SHELL.body;
        assert!(!shell.contains("<script>"));
        assert!(!shell.contains("style="));
        assert!(!shell.contains("<style"));
        assert!(!shell.contains("http://") && !shell.contains("https://"));
    }
}
