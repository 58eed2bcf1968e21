//! EPCIS 2.0 webhook subscriptions (`/epcis/queries/{name}/subscriptions`, docs/EPCIS.md).
//!
//! A subscription is a query (the `GET /epcis/events` filters, without paging) and a `dest`
//! URL. `{name}` is a label the client chooses: Custody keeps no named queries, the query is
//! the body's `query`. After each committed block the delivery task ([`spawn_delivery`]) reads
//! the log after each subscription's cursor (the log index after the last entry delivered),
//! and POSTs the matching events, at most [`PUSH_EVENTS_MAX`] per push, as an
//! `EPCISQueryDocument` signed with `GS1-Signature: sha256=<hex HMAC-SHA256(signatureToken,
//! body)>`. Delivery is at least once: the cursor advances only after a 2xx answer; a failed
//! push is retried with exponential back-off. Subscriptions and cursors are kept in
//! `epcis-subscriptions.json` in the node's data directory, written atomically.

use std::collections::BTreeMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use custody_ledger::genesis::Genesis;
use custody_ledger::store::Store;
use custody_sled::SledStore;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, warn};

use super::query::{parse, scan, Paging, SCAN_BUDGET};
use super::{add_version_headers, allow, no_such_resource, query_parameter};
use crate::api::{blocking, ApiError, ApiState};
use crate::clock::now;

/// The file, in the data directory, that keeps the subscriptions and their cursors.
pub const SUBSCRIPTIONS_FILE: &str = "epcis-subscriptions.json";
/// Most events in one push; the rest go in the next.
pub const PUSH_EVENTS_MAX: usize = 100;
/// How long one push may take.
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// Most pushes under way at once.
pub const PUSHES_CONCURRENT: usize = 8;
/// Most subscriptions a node keeps.
pub const SUBSCRIPTIONS_MAX: usize = 1_000;
/// Longest `signatureToken`.
pub const SIGNATURE_TOKEN_LEN_MAX: usize = 1_024;
/// Longest `dest`.
pub const DEST_LEN_MAX: usize = 2_048;
/// The header carrying a push's signature.
pub const SIGNATURE_HEADER: &str = "GS1-Signature";

/// How long to wait before retrying a failed push: `first`, doubling up to `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 s doubling to 60 s.
    fn default() -> Backoff {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

/// A subscription as it is kept.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscription {
    #[serde(rename = "subscriptionID")]
    id: String,
    query_name: String,
    dest: String,
    signature_token: String,
    query: BTreeMap<String, String>,
    created_at: String,
    /// The log index after the last entry delivered (or read past without a match).
    cursor: u64,
}

impl Subscription {
    /// What the API shows: everything but the token and the cursor.
    fn view(&self) -> Value {
        json!({
            "subscriptionID": self.id,
            "queryName": self.query_name,
            "createdAt": self.created_at,
            "dest": self.dest,
            "query": self.query,
        })
    }

    fn pairs(&self) -> Vec<(String, String)> {
        self.query
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

#[derive(Default, Serialize, Deserialize)]
struct SubscriptionsFile {
    subscriptions: Vec<Subscription>,
}

/// A node's subscriptions, kept in memory and, when the node has a data directory, in
/// [`SUBSCRIPTIONS_FILE`] there.
pub struct Subscriptions {
    path: Option<PathBuf>,
    backoff: Backoff,
    all: Mutex<BTreeMap<String, Subscription>>,
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriptions")
            .field("path", &self.path)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl Default for Subscriptions {
    /// Subscriptions kept in memory only, with the default back-off.
    fn default() -> Subscriptions {
        Subscriptions {
            path: None,
            backoff: Backoff::default(),
            all: Mutex::new(BTreeMap::new()),
        }
    }
}

fn invalid_data(path: &FsPath, detail: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{}: {detail}", path.display()),
    )
}

impl Subscriptions {
    /// The subscriptions kept in `data_dir` (none yet if the file is absent).
    pub fn open(data_dir: &FsPath, backoff: Backoff) -> std::io::Result<Arc<Subscriptions>> {
        let path = data_dir.join(SUBSCRIPTIONS_FILE);
        let mut all = BTreeMap::new();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let file: SubscriptionsFile =
                    serde_json::from_slice(&bytes).map_err(|e| invalid_data(&path, e))?;
                for subscription in file.subscriptions {
                    parse(&subscription.pairs(), false).map_err(|e| {
                        invalid_data(
                            &path,
                            format!("subscription {}: {}", subscription.id, e.problem().detail),
                        )
                    })?;
                    all.insert(subscription.id.clone(), subscription);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Arc::new(Subscriptions {
            path: Some(path),
            backoff,
            all: Mutex::new(all),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Subscription>> {
        self.all.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `all` to the file: a temporary file, synced, renamed over the old one.
    fn save(&self, all: &BTreeMap<String, Subscription>) -> std::io::Result<()> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let file = SubscriptionsFile {
            subscriptions: all.values().cloned().collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| invalid_data(path, e))?;
        let temp = path.with_extension("json.tmp");
        {
            use std::io::Write as _;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut out = options.open(&temp)?;
            out.write_all(&bytes)?;
            out.sync_all()?;
        }
        std::fs::rename(&temp, path)
    }

    fn add(&self, subscription: Subscription) -> Result<Value, ApiError> {
        let mut all = self.lock();
        if all.len() >= SUBSCRIPTIONS_MAX {
            return Err(controls(
                "subscriptionID",
                format!("this node keeps at most {SUBSCRIPTIONS_MAX} subscriptions"),
            ));
        }
        let view = subscription.view();
        all.insert(subscription.id.clone(), subscription);
        self.save(&all).map_err(|e| {
            super::implementation(format!("the subscriptions could not be saved: {e}"))
        })?;
        Ok(view)
    }

    fn list(&self, name: &str) -> Vec<Value> {
        self.lock()
            .values()
            .filter(|s| s.query_name == name)
            .map(Subscription::view)
            .collect()
    }

    fn get(&self, name: &str, id: &str) -> Option<Value> {
        self.lock()
            .get(id)
            .filter(|s| s.query_name == name)
            .map(Subscription::view)
    }

    fn delete(&self, name: &str, id: &str) -> Result<bool, ApiError> {
        let mut all = self.lock();
        if all.get(id).is_none_or(|s| s.query_name != name) {
            return Ok(false);
        }
        all.remove(id);
        self.save(&all).map_err(|e| {
            super::implementation(format!("the subscriptions could not be saved: {e}"))
        })?;
        Ok(true)
    }

    /// Moves a subscription's cursor on (never back); writes the file if `persist`.
    fn advance(&self, id: &str, cursor: u64, persist: bool) {
        let mut all = self.lock();
        let Some(subscription) = all.get_mut(id) else {
            return;
        };
        if subscription.cursor >= cursor {
            return;
        }
        subscription.cursor = cursor;
        if persist {
            if let Err(e) = self.save(&all) {
                warn!(error = %e, "the EPCIS subscriptions could not be saved");
            }
        }
    }

    fn snapshot(&self) -> Vec<Subscription> {
        self.lock().values().cloned().collect()
    }
}

/// A 400 `SubscriptionControlsException` naming `field`.
fn controls(field: &str, detail: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "epcis.subscription_controls",
        Some(field.to_owned()),
        detail,
    )
    .with_title("SubscriptionControlsException")
}

/// A 400 `InvalidURIException` for `dest`.
fn invalid_dest(detail: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "epcis.invalid_uri",
        Some("dest".to_owned()),
        detail,
    )
    .with_title("InvalidURIException")
}

fn check_dest(dest: &str) -> Result<(), ApiError> {
    if dest.len() > DEST_LEN_MAX {
        return Err(invalid_dest(format!(
            "dest is longer than {DEST_LEN_MAX} characters"
        )));
    }
    let url = reqwest::Url::parse(dest)
        .map_err(|e| invalid_dest(format!("dest {dest:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(invalid_dest(format!(
            "dest must be an http:// or https:// URL with a host, not {dest:?}"
        )));
    }
    Ok(())
}

/// The body's `query`: parameter names to a string, or to a list of strings (joined by `|`).
fn query_of(value: Option<&Value>) -> Result<BTreeMap<String, String>, ApiError> {
    let mut query = BTreeMap::new();
    let Some(value) = value else {
        return Ok(query);
    };
    let Value::Object(map) = value else {
        return Err(query_parameter(
            "query",
            "query must be an object of EPCIS query parameters".into(),
        ));
    };
    for (name, value) in map {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => {
                let strings: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
                strings
                    .ok_or_else(|| {
                        query_parameter(name, format!("{name} must be a string or strings"))
                    })?
                    .join("|")
            }
            _ => {
                return Err(query_parameter(
                    name,
                    format!("{name} must be a string or strings"),
                ))
            }
        };
        query.insert(name.clone(), text);
    }
    let pairs: Vec<(String, String)> = query.clone().into_iter().collect();
    parse(&pairs, false)?;
    Ok(query)
}

fn name_of(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let name = path
        .map(|Path(name)| name)
        .map_err(|e| no_such_resource(format!("malformed query name: {e}")))?;
    if name.is_empty() || name.len() > 256 {
        return Err(no_such_resource(
            "a query name has 1 to 256 characters".into(),
        ));
    }
    Ok(name)
}

fn location(name: &str, id: &str) -> String {
    format!(
        "/epcis/queries/{}/subscriptions/{id}",
        custody_epcis::vocab::percent_encode(name)
    )
}

/// `POST /epcis/queries/{name}/subscriptions`.
async fn create(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let name = name_of(path)?;
    let body = body.map_err(|e| controls("body", format!("unreadable body: {e}")))?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| controls("body", format!("the body is not JSON: {e}")))?;
    let Value::Object(fields) = &body else {
        return Err(controls("body", "the body must be a JSON object".into()));
    };
    if let Some(unknown) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "dest" | "signatureToken" | "query"))
    {
        return Err(controls(
            unknown,
            format!(
                "{unknown} is not supported: a subscription has dest, signatureToken and query, \
                 and is pushed after each block that commits matching events"
            ),
        ));
    }
    let dest = fields
        .get("dest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_dest("dest, the URL to push to, is required".into()))?;
    check_dest(dest)?;
    let token = fields
        .get("signatureToken")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            controls(
                "signatureToken",
                "signatureToken, the key the pushes are signed with, is required".into(),
            )
        })?;
    if token.len() > SIGNATURE_TOKEN_LEN_MAX {
        return Err(controls(
            "signatureToken",
            format!("signatureToken is longer than {SIGNATURE_TOKEN_LEN_MAX} bytes"),
        ));
    }
    let query = query_of(fields.get("query"))?;
    let store = state.store.clone();
    let cursor = blocking(move || store.head())
        .await??
        .map_or(0, |h| h.log_size);
    let id = hex::encode(rand::random::<[u8; 16]>());
    let subscription = Subscription {
        id: id.clone(),
        query_name: name.clone(),
        dest: dest.to_owned(),
        signature_token: token.to_owned(),
        query,
        created_at: now().to_rfc3339(),
        cursor,
    };
    let subscriptions = state.epcis_subscriptions.clone();
    let view = blocking(move || subscriptions.add(subscription)).await??;
    let mut response = (StatusCode::CREATED, Json(view)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location(&name, &id)) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// `GET /epcis/queries/{name}/subscriptions`.
async fn list(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = name_of(path)?;
    Ok(Json(json!({ "subscriptions": state.epcis_subscriptions.list(&name) })).into_response())
}

fn ids_of(
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<(String, String), ApiError> {
    path.map(|Path(ids)| ids)
        .map_err(|e| no_such_resource(format!("malformed path: {e}")))
}

fn no_such_subscription(name: &str, id: &str) -> ApiError {
    no_such_resource(format!("no subscription {id:?} of the query {name:?}"))
}

/// `GET /epcis/queries/{name}/subscriptions/{id}`.
async fn one(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (name, id) = ids_of(path)?;
    match state.epcis_subscriptions.get(&name, &id) {
        Some(view) => Ok(Json(view).into_response()),
        None => Err(no_such_subscription(&name, &id)),
    }
}

/// `DELETE /epcis/queries/{name}/subscriptions/{id}`.
async fn remove(
    State(state): State<ApiState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (name, id) = ids_of(path)?;
    let subscriptions = state.epcis_subscriptions.clone();
    let (n, i) = (name.clone(), id.clone());
    if blocking(move || subscriptions.delete(&n, &i)).await?? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(no_such_subscription(&name, &id))
    }
}

/// The subscription routes, relative to `/epcis`.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/queries/{name}/subscriptions",
            get(list)
                .post(create)
                .options(|| async { allow("GET, HEAD, POST, OPTIONS") }),
        )
        .route(
            "/queries/{name}/subscriptions/{id}",
            get(one)
                .delete(remove)
                .options(|| async { allow("GET, HEAD, DELETE, OPTIONS") }),
        )
}

/// `sha256=<lowercase hex HMAC-SHA256(token, body)>`, the `GS1-Signature` of a push.
pub fn signature(token: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Starts the task that pushes to the subscriptions of `state`, with the back-off they were
/// opened with. It runs until every sender of `state.committed` is gone.
pub fn spawn_delivery(state: &ApiState) -> tokio::task::JoinHandle<()> {
    let delivery = Delivery {
        store: state.store.clone(),
        genesis: state.genesis.clone(),
        subscriptions: state.epcis_subscriptions.clone(),
        client: reqwest::Client::builder()
            .timeout(PUSH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client builds"),
        retries: BTreeMap::new(),
    };
    let commits = state.committed.subscribe();
    tokio::spawn(delivery.run(commits))
}

struct Delivery {
    store: Arc<SledStore>,
    genesis: Arc<Genesis>,
    subscriptions: Arc<Subscriptions>,
    client: reqwest::Client,
    /// Per failing subscription: the current wait and when to try again.
    retries: BTreeMap<String, (Duration, Instant)>,
}

impl Delivery {
    async fn run(
        mut self,
        mut commits: tokio::sync::broadcast::Receiver<crate::consensus::host::Committed>,
    ) {
        loop {
            self.deliver_all().await;
            let due = self.retries.values().map(|(_, at)| *at).min();
            let retry = async {
                match due {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                commit = commits.recv() => {
                    if let Err(RecvError::Closed) = commit {
                        return;
                    }
                }
                () = retry => {}
            }
        }
    }

    /// Delivers to every subscription not waiting for a retry, [`PUSHES_CONCURRENT`] at a
    /// time, so that a slow receiver does not hold the others up.
    async fn deliver_all(&mut self) {
        use futures::StreamExt as _;
        let live = self.subscriptions.snapshot();
        self.retries
            .retain(|id, _| live.iter().any(|s| &s.id == id));
        let now = Instant::now();
        let due: Vec<Subscription> = live
            .into_iter()
            .filter(|s| self.retries.get(&s.id).is_none_or(|(_, at)| *at <= now))
            .collect();
        let this = &*self;
        let results: Vec<(String, bool)> = futures::stream::iter(due)
            .map(|subscription| async move {
                let id = subscription.id.clone();
                (id, this.deliver(subscription).await)
            })
            .buffer_unordered(PUSHES_CONCURRENT)
            .collect()
            .await;
        let backoff = self.subscriptions.backoff;
        for (id, delivered) in results {
            if delivered {
                self.retries.remove(&id);
            } else {
                let wait = self
                    .retries
                    .get(&id)
                    .map_or(backoff.first, |(wait, _)| (*wait * 2).min(backoff.max));
                debug!(subscription = %id, ?wait, "EPCIS push failed; retrying later");
                self.retries.insert(id, (wait, Instant::now() + wait));
            }
        }
    }

    /// Pushes everything after the cursor, a page at a time; false if a push failed.
    async fn deliver(&self, subscription: Subscription) -> bool {
        let Ok((filter, _)) = parse(&subscription.pairs(), false) else {
            return false;
        };
        let mut cursor = subscription.cursor;
        loop {
            let (store, genesis, filter) =
                (self.store.clone(), self.genesis.clone(), filter.clone());
            let page = Paging {
                start: cursor,
                per_page: PUSH_EVENTS_MAX,
            };
            let found =
                match blocking(move || scan(&store, &genesis, &filter, page, SCAN_BUDGET)).await {
                    Ok(Ok(found)) => found,
                    Ok(Err(e)) | Err(e) => {
                        warn!(detail = %e.problem().detail, "EPCIS subscription scan failed");
                        return false;
                    }
                };
            let delivered = !found.events.is_empty();
            if delivered {
                if let Err(e) = self.push(&subscription, found.events).await {
                    warn!(subscription = %subscription.id, dest = %subscription.dest, error = %e,
                        "EPCIS push failed");
                    return false;
                }
            }
            // Only what was delivered is written down; a cursor moved past non-matching
            // entries alone is kept in memory (a restart reads them again, finding nothing).
            self.subscriptions
                .advance(&subscription.id, found.read_to, delivered);
            cursor = found.read_to;
            if found.next.is_none() {
                return true;
            }
        }
    }

    async fn push(&self, subscription: &Subscription, events: Vec<Value>) -> Result<(), String> {
        let mut document = custody_epcis::DocumentBuilder::new(now())
            .events(events)
            .query_document(&subscription.query_name);
        document["epcisBody"]["queryResults"]["subscriptionID"] = json!(subscription.id);
        let body = serde_json::to_vec(&document).map_err(|e| e.to_string())?;
        let mut headers = axum::http::HeaderMap::new();
        add_version_headers(&mut headers);
        let response = self
            .client
            .post(&subscription.dest)
            .headers(headers)
            .header(header::CONTENT_TYPE, "application/ld+json")
            .header(
                SIGNATURE_HEADER,
                signature(&subscription.signature_token, &body),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {}", response.status()))
        }
    }
}
