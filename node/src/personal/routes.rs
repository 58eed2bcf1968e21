//! `POST` and `GET /v1/shipments/{id}/personal`: a party gives its node a shipment's
//! disclosures, and reads them back (see [`super::auth`] for the signatures).
//!
//! Codes: `personal.signature` and `personal.unsigned` (401), `personal.stale_request` (401),
//! `personal.not_a_party` (403), `shipment.not_found` (404), `personal.erased` (410),
//! `personal.too_many` and the disclosure checks `disclosure.event`, `disclosure.field`,
//! `disclosure.commitment`, `disclosure.value` (422), `personal.unavailable` (503: this node
//! keeps no personal data).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use custody_ledger::model::{MemberId, ShipmentId};
use custody_ledger::store::Store;
use custody_ledger::PublicKey;
use custody_sled::SledStore;
use serde::{Deserialize, Serialize};

use super::auth::{self, DiscloseRequest, SignedRead};
use super::files::FilesError;
use super::parties::Parties;
use super::share::check_against_ledger;
use super::{is_erased, PersonalFiles, PersonalView, DISCLOSURES_MAX};
use crate::api::{blocking, parse_shipment, path_segment, ApiError, ApiState};

/// The answer to a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stored {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// How many disclosures this node now holds for it.
    pub held: usize,
}

fn problem(status: StatusCode, code: &str, field: Option<&str>, detail: String) -> ApiError {
    ApiError::new(status, code, field.map(str::to_owned), detail)
}

fn unavailable() -> ApiError {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "personal.unavailable",
        None,
        "this node keeps no personal data".into(),
    )
}

fn erased(shipment: &ShipmentId) -> ApiError {
    problem(
        StatusCode::GONE,
        "personal.erased",
        None,
        format!(
            "the personal data of shipment {shipment} was erased; the ledger keeps only its \
             commitments"
        ),
    )
}

fn not_a_party(key: &PublicKey, shipment: &ShipmentId) -> ApiError {
    problem(
        StatusCode::FORBIDDEN,
        "personal.not_a_party",
        Some("signer"),
        format!("{key} is not the key or node key of a party to shipment {shipment}"),
    )
}

fn unauthenticated(error: &auth::AuthError) -> ApiError {
    problem(
        StatusCode::UNAUTHORIZED,
        error.code(),
        Some("signature"),
        error.to_string(),
    )
}

fn files_of(state: &ApiState) -> Result<PersonalFiles, ApiError> {
    state.personal.files.clone().ok_or_else(unavailable)
}

/// The shipment's parties, and the member `key` speaks for; 404 or 403 otherwise.
fn party(
    store: &SledStore,
    genesis: &custody_ledger::genesis::Genesis,
    shipment: &ShipmentId,
    key: &PublicKey,
) -> Result<(Parties, MemberId), ApiError> {
    let parties = Parties::of(store, genesis, shipment)?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "shipment.not_found",
            None,
            format!("no shipment {shipment} on the ledger"),
        )
    })?;
    let member = parties
        .admits(key)
        .cloned()
        .ok_or_else(|| not_a_party(key, shipment))?;
    Ok((parties, member))
}

fn ledger_error(error: String) -> ApiError {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "node.unavailable",
        None,
        error,
    )
}

/// `POST /v1/shipments/{id}/personal`.
pub async fn disclose(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Stored>, ApiError> {
    let files = files_of(&state)?;
    let shipment = parse_shipment(&path_segment(path, "id")?)?;
    let body =
        body.map_err(|e| problem(e.status(), "request.body", Some("body"), e.to_string()))?;
    let request: DiscloseRequest = serde_json::from_slice(&body).map_err(|e| {
        problem(
            StatusCode::BAD_REQUEST,
            "request.body",
            Some("body"),
            format!("the body is not a disclosure request: {e}"),
        )
    })?;
    if request.disclosures.len() > DISCLOSURES_MAX {
        return Err(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "personal.too_many",
            Some("disclosures"),
            format!("at most {DISCLOSURES_MAX} disclosures per shipment"),
        ));
    }
    // The signature check and the store's reads run on the blocking pool, never on a tokio
    // worker (ARCHITECTURE.md).
    let (store, genesis) = (state.store.clone(), state.genesis.clone());
    let held = blocking(move || {
        auth::check_write(&shipment, &request).map_err(|e| unauthenticated(&e))?;
        store_disclosures(&store, &genesis, &files, &shipment, request)
    })
    .await??;
    Ok(Json(held))
}

fn store_disclosures(
    store: &SledStore,
    genesis: &custody_ledger::genesis::Genesis,
    files: &PersonalFiles,
    shipment: &ShipmentId,
    request: DiscloseRequest,
) -> Result<Stored, ApiError> {
    party(store, genesis, shipment, &request.signer)?;
    if is_erased(store, shipment).map_err(|e| ledger_error(e.to_string()))? {
        return Err(erased(shipment));
    }
    if let Err(refused) = check_against_ledger(store, shipment, &request.disclosures)? {
        return Err(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            refused.code,
            Some(&format!("disclosures[{}]", refused.index)),
            refused.message,
        ));
    }
    let merged = files.merge(shipment, &request.disclosures, || {
        is_erased(store, shipment)
    });
    match merged {
        Ok(held) => Ok(Stored {
            shipment_id: shipment.clone(),
            held,
        }),
        Err(FilesError::Erased) => Err(erased(shipment)),
        Err(error @ FilesError::TooMany { .. }) => Err(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "personal.too_many",
            Some("disclosures"),
            error.to_string(),
        )),
        Err(error) => Err(ledger_error(error.to_string())),
    }
}

/// `POST /v1/personal/batch`: a peer node's read of many shipments at once. Shipments this
/// node holds nothing of cost a file lookup; the others a party check each, and only those
/// the signer is a party of are answered.
pub async fn read_batch(
    State(state): State<ApiState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<auth::ReadBatchAnswer>, ApiError> {
    let files = files_of(&state)?;
    let body =
        body.map_err(|e| problem(e.status(), "request.body", Some("body"), e.to_string()))?;
    let read: auth::ReadBatch = serde_json::from_slice(&body).map_err(|e| {
        problem(
            StatusCode::BAD_REQUEST,
            "request.body",
            Some("body"),
            format!("the body is not a batch read: {e}"),
        )
    })?;
    if read.shipments.len() > auth::READ_BATCH_SHIPMENTS_MAX {
        return Err(problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "personal.too_many",
            Some("shipments"),
            format!(
                "{} shipments; at most {} per batch read",
                read.shipments.len(),
                auth::READ_BATCH_SHIPMENTS_MAX
            ),
        ));
    }
    let (store, genesis, now_ms) = (state.store.clone(), state.genesis.clone(), auth::now_ms());
    Ok(Json(
        blocking(move || {
            auth::check_read_batch(&read, now_ms).map_err(|e| unauthenticated(&e))?;
            held_for_batch(&store, &genesis, &files, &read)
        })
        .await??,
    ))
}

fn held_for_batch(
    store: &SledStore,
    genesis: &custody_ledger::genesis::Genesis,
    files: &PersonalFiles,
    read: &auth::ReadBatch,
) -> Result<auth::ReadBatchAnswer, ApiError> {
    // The height first: whatever is answered was committed by then.
    let height = store.head()?.map_or(0, |h| h.height);
    let unique: std::collections::BTreeSet<&ShipmentId> = read.shipments.iter().collect();
    let mut shipments = Vec::new();
    for shipment in unique {
        if !files.holds(shipment) {
            continue;
        }
        let Some(parties) = Parties::of(store, genesis, shipment)? else {
            continue;
        };
        if parties.admits(&read.signer).is_none()
            || is_erased(store, shipment).map_err(|e| ledger_error(e.to_string()))?
        {
            continue;
        }
        let disclosures = files
            .read(shipment)
            .map_err(|e| ledger_error(e.to_string()))?;
        if !disclosures.is_empty() {
            shipments.push(PersonalView {
                shipment_id: shipment.clone(),
                disclosures,
            });
        }
    }
    Ok(auth::ReadBatchAnswer { height, shipments })
}

/// The three read headers, or 401 `personal.unsigned`.
fn signed_read(headers: &HeaderMap) -> Result<SignedRead, ApiError> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let read = (|| {
        Some(SignedRead {
            signer: PublicKey::from_hex(get(auth::SIGNER_HEADER)?).ok()?,
            time_ms: get(auth::TIME_HEADER)?.parse().ok()?,
            signature: auth::signature_from_hex(get(auth::SIGNATURE_HEADER)?)?,
        })
    })();
    read.ok_or_else(|| {
        problem(
            StatusCode::UNAUTHORIZED,
            "personal.unsigned",
            Some("headers"),
            "a read needs Custody-Signer (hex key), Custody-Time (unix ms) and \
             Custody-Signature (hex) headers"
                .into(),
        )
    })
}

/// What a read found before any fetch: the disclosures held, and whether to ask the peers.
struct Found {
    disclosures: Vec<custody_ledger::personal::Disclosure>,
    fetch: bool,
}

/// `GET /v1/shipments/{id}/personal`.
pub async fn read(
    State(state): State<ApiState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<PersonalView>, ApiError> {
    let files = files_of(&state)?;
    let shipment = parse_shipment(&path_segment(path, "id")?)?;
    let read = signed_read(&headers)?;
    let now_ms = auth::now_ms();
    let found = {
        let (store, genesis, files, shipment) = (
            state.store.clone(),
            state.genesis.clone(),
            files.clone(),
            shipment.clone(),
        );
        let own = state.personal.node_member.clone();
        blocking(move || {
            auth::check_read(&shipment, &read, now_ms).map_err(|e| unauthenticated(&e))?;
            held_for(&store, &genesis, &files, &shipment, &read, own.as_ref())
        })
        .await??
    };
    let mut disclosures = found.disclosures;
    if found.fetch {
        if let Some(sharing) = &state.personal.sharing {
            // A failed fetch leaves the answer empty, not failed.
            if let Ok(fetched) = sharing.fetch_once(&state.store, &files, &shipment).await {
                if fetched.held > 0 {
                    let (files, wanted) = (files.clone(), shipment.clone());
                    disclosures = blocking(move || files.read(&wanted))
                        .await?
                        .map_err(|e| ledger_error(e.to_string()))?;
                }
            }
        }
    }
    Ok(Json(PersonalView {
        shipment_id: shipment,
        disclosures,
    }))
}

/// The disclosures held for a read by a party. Fetching from the peers is in order only when
/// nothing is held, this node's own member is a party, and the reader is a person rather than
/// another node: nodes answering nodes never fetch onwards, so two nodes holding nothing
/// cannot ask each other in a loop.
fn held_for(
    store: &SledStore,
    genesis: &custody_ledger::genesis::Genesis,
    files: &PersonalFiles,
    shipment: &ShipmentId,
    read: &SignedRead,
    own: Option<&MemberId>,
) -> Result<Found, ApiError> {
    let (parties, _) = party(store, genesis, shipment, &read.signer)?;
    if is_erased(store, shipment).map_err(|e| ledger_error(e.to_string()))? {
        return Err(erased(shipment));
    }
    let disclosures = files
        .read(shipment)
        .map_err(|e| ledger_error(e.to_string()))?;
    let by_node = genesis
        .members
        .iter()
        .any(|m| m.node_key == Some(read.signer));
    let fetch = disclosures.is_empty() && !by_node && own.is_some_and(|m| parties.contains(m));
    Ok(Found { disclosures, fetch })
}
