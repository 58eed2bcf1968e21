//! The EPCIS 2.0 REST binding under `/epcis` (DESIGN.md decision 12, docs/EPCIS.md).
//!
//! - `GET /epcis/context/custody.jsonld`: the Custody JSON-LD context.
//! - [`query`]: `GET /epcis/events` and `/epcis/events/{eventID}`, the per-resource paths
//!   (`/epcis/eventTypes`, `/epcis/bizSteps/{bizStep}/events`, ...), answered with
//!   `EPCISQueryDocument`s built by `custody_epcis` from committed events, read in log order in
//!   bounded scans.
//! - `capture`: `POST /epcis/capture` and its jobs (the capture gateway).
//!
//! - [`subscriptions`]: webhook subscriptions under `/epcis/queries/{name}/subscriptions`.
//!
//! Every answer from here carries the `GS1-EPCIS-*` and `GS1-CBV-*` version headers. Errors
//! are the API's RFC 9457 problems whose `title` is the EPCIS exception name
//! (`QueryParameterException`, `NoSuchResourceException`, ...).

pub mod capture;
pub mod query;
pub mod subscriptions;

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;

use crate::api::{ApiError, ApiState};

/// The EPCIS version served (and the only one: min = max).
pub const EPCIS_VERSION: &str = "2.0.0";
/// The CBV version the events use.
pub const CBV_VERSION: &str = "2.0.0";

/// The EPCIS routes, relative to `/epcis` (the API nests them there). Add a module's routes
/// with one `.merge(module::routes())` line.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/context/custody.jsonld", read_only(get(context)))
        .merge(query::routes())
        .merge(capture::routes())
        .merge(subscriptions::routes())
        .fallback(no_such_resource_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(versions))
}

/// A GET route that also answers `OPTIONS` with what it allows.
pub(crate) fn read_only(route: MethodRouter<ApiState>) -> MethodRouter<ApiState> {
    route.options(|| async { allow("GET, HEAD, OPTIONS") })
}

/// The answer to `OPTIONS`: 204 with `Allow` (the version headers are added to every answer).
pub(crate) fn allow(methods: &'static str) -> Response {
    (
        StatusCode::NO_CONTENT,
        [(header::ALLOW, HeaderValue::from_static(methods))],
    )
        .into_response()
}

const VERSION_HEADERS: [(&str, &str); 6] = [
    ("gs1-epcis-version", EPCIS_VERSION),
    ("gs1-epcis-min", EPCIS_VERSION),
    ("gs1-epcis-max", EPCIS_VERSION),
    ("gs1-cbv-version", CBV_VERSION),
    ("gs1-cbv-min", CBV_VERSION),
    ("gs1-cbv-max", CBV_VERSION),
];

/// Adds the version headers to every EPCIS answer, errors included; refuses a request that
/// asks for an EPCIS version this node does not serve.
async fn versions(request: Request, next: Next) -> Response {
    let asked = request
        .headers()
        .get("gs1-epcis-version")
        .map(|v| v.to_str().unwrap_or("").to_owned());
    let mut response = match asked {
        Some(version) if !matches!(version.as_str(), "2.0.0" | "2.0") => ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "epcis.version",
            Some("GS1-EPCIS-Version".into()),
            format!("EPCIS version {version:?} is not served; this node serves {EPCIS_VERSION}"),
        )
        .with_title("VersionNotSupportedException")
        .into_response(),
        _ => next.run(request).await,
    };
    add_version_headers(response.headers_mut());
    response
}

/// The `GS1-EPCIS-*` and `GS1-CBV-*` headers (also sent with subscription pushes).
pub(crate) fn add_version_headers(headers: &mut HeaderMap) {
    for (name, value) in VERSION_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
}

/// `GET /epcis/context/custody.jsonld`.
async fn context(method: Method) -> Response {
    let body = if method == Method::HEAD {
        ""
    } else {
        custody_epcis::vocab::CONTEXT_JSON
    };
    ([(header::CONTENT_TYPE, "application/ld+json")], body).into_response()
}

/// A 400 `QueryParameterException` naming the parameter.
pub(crate) fn query_parameter(field: &str, detail: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "epcis.query_parameter",
        Some(field.to_owned()),
        detail,
    )
    .with_title("QueryParameterException")
}

/// A 404 `NoSuchResourceException`.
pub(crate) fn no_such_resource(detail: String) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "epcis.no_such_resource",
        None,
        detail,
    )
    .with_title("NoSuchResourceException")
}

/// A 500 `ImplementationException`: the node could not write an event it holds.
pub(crate) fn implementation(detail: String) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "epcis.implementation",
        None,
        detail,
    )
    .with_title("ImplementationException")
}

async fn no_such_resource_route() -> ApiError {
    no_such_resource("no such EPCIS resource; see /openapi.json".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "request.method",
        None,
        "this EPCIS endpoint does not take that method; send OPTIONS to see which it takes".into(),
    )
}
