//! The OpenAPI 3.1 document of the HTTP API, which the node serves at `/openapi.json`.
//!
//! The document is built in code. Its schemas come from the types the handlers serialize: the
//! ledger's view, bundle, block, state, genesis and model types derive `utoipa::ToSchema` under
//! the ledger's `openapi` feature, so a field added to one of them appears here without an
//! edit. The paths, parameters and answers are written out below, one operation per endpoint
//! of DESIGN.md's "Interfaces". [`ROUTES`] lists the operations so that a test beside the
//! router can check that the router and the document name the same endpoints.

use custody_ledger::bundle::{Bundle, Checkpoint};
use custody_ledger::codec::EVENT_SIZE_BYTES_MAX;
use custody_ledger::genesis::Genesis;
use custody_ledger::model::SignedEvent;
use custody_ledger::state::ShipmentState;
use custody_ledger::view::{
    Accepted, BatchOutcome, BlockView, ConsistencyView, EventEntry, EventView, MemberView,
    NetworkView, NodeHealth, Page, Problem, Quote, QuoteRequest, Receipt, ShipmentList, Status,
};
use custody_ledger::{Digest, PublicKey};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, Parameter, ParameterBuilder, ParameterIn,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    ArrayBuilder, Components, ComponentsBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat,
    Type,
};
use utoipa::openapi::tag::{Tag, TagBuilder};
use utoipa::openapi::{
    Content, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required,
    Response, ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

use crate::api::{BODY_SIZE_BYTES_MAX, COMMIT_WAIT_MS_MAX, PAGE_ITEMS_DEFAULT, PAGE_ITEMS_MAX};
use crate::batch::{BATCH_BODY_BYTES_MAX, BATCH_EVENTS_MAX};
use crate::browse::{
    ACTIVITY_LOOKBACK_BLOCKS, RATE_MINUTES, RECENT_BLOCKS_MAX, SEARCH_TERM_LEN_MAX,
    SHIPMENTS_EXAMINED_MAX, SHIPMENT_PAGE_DEFAULT, SHIPMENT_PAGE_MAX,
};
use crate::http::{HEADERS_COUNT_MAX, HEADER_SECTION_BYTES_MAX, URI_LEN_MAX};

/// Every documented operation as (HTTP method, path in axum 0.8 syntax), in the router's order.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/events"),
    ("POST", "/v1/events/batch"),
    ("GET", "/v1/events/{id}"),
    ("POST", "/v1/quote"),
    ("GET", "/v1/shipments"),
    ("GET", "/v1/shipments/{id}"),
    ("GET", "/v1/shipments/{id}/events"),
    ("GET", "/v1/shipments/{id}/bundle"),
    ("GET", "/v1/shipments/{id}/personal"),
    ("POST", "/v1/shipments/{id}/personal"),
    ("POST", "/v1/personal/batch"),
    ("GET", "/v1/members"),
    ("GET", "/v1/members/{id}"),
    ("GET", "/v1/members/{key}/events"),
    ("GET", "/v1/blocks/head"),
    ("GET", "/v1/blocks/{height}"),
    ("GET", "/v1/log/checkpoint"),
    ("GET", "/v1/log/consistency"),
    ("GET", "/v1/network"),
    ("GET", "/v1/genesis"),
    ("GET", "/v1/status"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("POST", "/epcis/capture"),
    ("GET", "/epcis/capture/{id}"),
    ("GET", "/epcis/context/custody.jsonld"),
    ("GET", "/epcis/events"),
    ("GET", "/epcis/events/{eventID}"),
    ("GET", "/epcis/eventTypes"),
    ("GET", "/epcis/eventTypes/{eventType}/events"),
    ("GET", "/epcis/bizSteps"),
    ("GET", "/epcis/bizSteps/{bizStep}/events"),
    ("GET", "/epcis/dispositions"),
    ("GET", "/epcis/dispositions/{disposition}/events"),
    ("GET", "/epcis/epcs/{epc}/events"),
    ("GET", "/epcis/readPoints/{readPoint}/events"),
    ("GET", "/epcis/bizLocations/{bizLocation}/events"),
    ("GET", "/epcis/queries/{name}/subscriptions"),
    ("POST", "/epcis/queries/{name}/subscriptions"),
    ("GET", "/epcis/queries/{name}/subscriptions/{id}"),
    ("DELETE", "/epcis/queries/{name}/subscriptions/{id}"),
];

/// The component name of `Page<EventEntry>`, in utoipa's convention for generic instances.
pub const EVENT_PAGE_SCHEMA: &str = "Page_EventEntry";

const JSON: &str = "application/json";
const PROBLEM_JSON: &str = "application/problem+json";
const OCTET_STREAM: &str = "application/octet-stream";
const TEXT: &str = "text/plain";
/// What `/metrics` answers with: the OpenMetrics text format, which Prometheus scrapes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0";

const API_DESCRIPTION: &str = "\
The HTTP API of a Custody node: submit signed custody events, read shipments, members, blocks \
and the verifiable log, and fetch self-contained provenance bundles.

JSON conventions (docs/PROTOCOL.md §2.5): digests, keys and signatures are lowercase hex; \
times are RFC 3339 in UTC with milliseconds; canonical bytes are standard base64 with \
padding; amounts are integers in minor units of their currency, never floats. Enumerations \
with data are externally tagged: `{\"ShipmentRegistered\": {...}}`. An absent optional value \
is written as `null`, except `next` of a page and `field` of a problem, which are left out.

Every error is an RFC 9457 problem (`application/problem+json`) with a stable `code`: a \
ledger or contract rejection code, or an API code such as `request.path`. Malformed input \
gets a 4xx; `503` means the node itself could not answer. Lists are paged oldest first: pass \
a page's `next` as `?after=` to get the following page. The shipment list is the exception: it is in shipment id order, and a page's `next_cursor` is passed as `?cursor=`.";

/// The OpenAPI document of the node's HTTP API.
pub fn document() -> OpenApi {
    let mut paths = Paths::new();
    for (method, path, mut operation) in operations()
        .into_iter()
        .chain(epcis_query())
        .chain(epcis_subscriptions())
        .chain(personal_operations())
    {
        // The request head's limits apply to every route (`http::limits`).
        for (status, response) in head_limit_responses() {
            operation
                .responses
                .responses
                .insert(status.to_owned(), response.into());
        }
        paths.add_path_operation(path, vec![method], operation);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Custody node API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(API_DESCRIPTION))
                .license(Some(
                    LicenseBuilder::new()
                        .name("Apache-2.0")
                        .identifier(Some("Apache-2.0"))
                        .build(),
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components()))
        .tags(Some(tags()))
        .build()
}

/// The component schemas: every type an answer or request names, with the types they contain.
fn components() -> Components {
    ComponentsBuilder::new()
        .schemas_from_iter(schemas())
        .build()
}

/// Every named schema, with repetitions (a type reached along two ways appears twice).
fn schemas() -> Vec<(String, RefOr<Schema>)> {
    let mut schemas = Vec::new();
    add::<SignedEvent>(&mut schemas);
    add::<Accepted>(&mut schemas);
    add::<BatchOutcome>(&mut schemas);
    add::<Receipt>(&mut schemas);
    add::<EventView>(&mut schemas);
    add::<EventEntry>(&mut schemas);
    add::<ShipmentState>(&mut schemas);
    add::<Bundle>(&mut schemas);
    add::<Checkpoint>(&mut schemas);
    add::<MemberView>(&mut schemas);
    add::<BlockView>(&mut schemas);
    add::<ConsistencyView>(&mut schemas);
    add::<ShipmentList>(&mut schemas);
    add::<NetworkView>(&mut schemas);
    add::<Status>(&mut schemas);
    add::<NodeHealth>(&mut schemas);
    add::<Problem>(&mut schemas);
    add::<QuoteRequest>(&mut schemas);
    add::<Quote>(&mut schemas);
    // Not served by the API, but what a bundle or chain is verified against offline.
    add::<Genesis>(&mut schemas);
    schemas.push((
        EVENT_PAGE_SCHEMA.to_owned(),
        <Page<EventEntry> as PartialSchema>::schema(),
    ));
    <Page<EventEntry> as ToSchema>::schemas(&mut schemas);
    schemas
}

/// Adds `T`'s schema under its name, and the schemas it refers to.
fn add<T: ToSchema>(schemas: &mut Vec<(String, RefOr<Schema>)>) {
    schemas.push((T::name().into_owned(), T::schema()));
    T::schemas(schemas);
}

fn tags() -> Vec<Tag> {
    [
        ("events", "Submitting and reading signed custody events."),
        (
            "shipments",
            "Shipments: current state, history and provenance bundles.",
        ),
        (
            "members",
            "Member organisations and the events they signed.",
        ),
        (
            "quotes",
            "Landed-cost quotes: duty, tax and regime for a draft shipment.",
        ),
        ("blocks", "Committed blocks with their commit certificates."),
        (
            "log",
            "The verifiable log: checkpoints and consistency proofs.",
        ),
        (
            "node",
            "This node: status, health, metrics and this document.",
        ),
        ("epcis", "The EPCIS 2.0 REST binding under /epcis."),
    ]
    .into_iter()
    .map(|(name, description)| {
        TagBuilder::new()
            .name(name)
            .description(Some(description))
            .build()
    })
    .collect()
}

/// Every operation with its method and path; [`ROUTES`] lists the same pairs.
fn operations() -> Vec<(HttpMethod, &'static str, Operation)> {
    let unavailable = || problem("The node could not read its ledger (`node.unavailable`).");
    let bad_path = |what: &str| problem(&format!("{what} (`request.path`)."));
    vec![
        (HttpMethod::Post, "/v1/events", submit_event()),
        (HttpMethod::Post, "/v1/events/batch", submit_batch()),
        (
            HttpMethod::Get,
            "/v1/events/{id}",
            operation(
                "getEvent",
                "events",
                "A committed event, where it is, and its proof to the head",
                "The signed event, the block that committed it and its place in the log, with \
                 a receipt whose inclusion proof leads to the log root of the current head.",
            )
            .parameter(path_param("id", "The event id.", ref_of::<Digest>()))
            .response(
                "200",
                json_response::<EventView>("The event and its proof."),
            )
            .response("400", bad_path("The id is not 64 hex digits"))
            .response(
                "404",
                problem("No committed event has this id (`event.not_found`)."),
            )
            .response("503", unavailable())
            .build(),
        ),
        (HttpMethod::Post, "/v1/quote", quote()),
        (HttpMethod::Get, "/v1/shipments", list_shipments()),
        (
            HttpMethod::Get,
            "/v1/shipments/{id}",
            operation(
                "getShipment",
                "shipments",
                "A shipment's current state",
                "Everything the ledger knows about the shipment as of the head: status, \
                 custodian, pending handoff, customs declaration, returns.",
            )
            .parameter(shipment_param())
            .response(
                "200",
                json_response::<ShipmentState>("The shipment's state."),
            )
            .response("400", bad_path(SHIPMENT_ID_MALFORMED))
            .response("404", shipment_not_found())
            .response("503", unavailable())
            .build(),
        ),
        (
            HttpMethod::Get,
            "/v1/shipments/{id}/events",
            operation(
                "listShipmentEvents",
                "shipments",
                "A shipment's history",
                "The committed events about the shipment, in log order, one page at a time.",
            )
            .parameter(shipment_param())
            .parameters(Some(paging_params()))
            .response("200", event_page_response())
            .response(
                "400",
                problem(
                    "The id is malformed (`request.path`), or a query parameter is unknown or \
                     out of range (`request.query`).",
                ),
            )
            .response("404", shipment_not_found())
            .response("503", unavailable())
            .build(),
        ),
        (
            HttpMethod::Get,
            "/v1/shipments/{id}/bundle",
            operation(
                "getShipmentBundle",
                "shipments",
                "A shipment's provenance bundle",
                "Every event of the shipment in canonical bytes, each with its inclusion proof \
                 to the head's checkpoint: verifiable offline with nothing but the genesis file \
                 (docs/PROTOCOL.md §14).",
            )
            .parameter(shipment_param())
            .response("200", json_response::<Bundle>("The bundle."))
            .response("400", bad_path(SHIPMENT_ID_MALFORMED))
            .response("404", shipment_not_found())
            .response("503", unavailable())
            .build(),
        ),
        (
            HttpMethod::Get,
            "/v1/members",
            operation(
                "listMembers",
                "members",
                "The members",
                "The genesis members as the ledger knows them now, then the members admitted \
                 later, by id.",
            )
            .response(
                "200",
                ResponseBuilder::new()
                    .description("Every member.")
                    .content(
                        JSON,
                        Content::new(Some(ArrayBuilder::new().items(ref_of::<MemberView>()))),
                    )
                    .build(),
            )
            .response("503", unavailable())
            .build(),
        ),
        (
            HttpMethod::Get,
            "/v1/members/{id}",
            operation(
                "getMember",
                "members",
                "One member",
                "The member with this id, as `GET /v1/members` lists it.",
            )
            .parameter(path_param(
                "id",
                "The member id.",
                ref_of::<custody_ledger::model::MemberId>(),
            ))
            .response("200", json_response::<MemberView>("The member."))
            .response(
                "400",
                bad_path("The id is not 1 to 64 characters from A-Z a-z 0-9 . _ - :"),
            )
            .response(
                "404",
                problem("No member has this id (`member.not_found`)."),
            )
            .response("503", unavailable())
            .build(),
        ),
        (
            HttpMethod::Get,
            "/v1/members/{key}/events",
            operation(
                "listMemberEvents",
                "members",
                "Events signed by a key",
                "The committed events signed with the key, in log order, one page at a time. \
                 A key that signed nothing has an empty page.",
            )
            .parameter(path_param(
                "key",
                "The signer's public key.",
                ref_of::<PublicKey>(),
            ))
            .parameters(Some(paging_params()))
            .response("200", event_page_response())
            .response(
                "400",
                problem(
                    "The key is not 64 hex digits (`request.path`), or a query parameter is \
                     unknown or out of range (`request.query`).",
                ),
            )
            .response("503", unavailable())
            .build(),
        ),
        (
            HttpMethod::Get,
            "/v1/blocks/head",
            operation(
                "getHeadBlock",
                "blocks",
                "The latest committed block",
                "The head block: header, hash, commit certificate and its events' canonical \
                 bytes.",
            )
            .response("200", json_response::<BlockView>("The head block."))
            .response("404", block_not_found())
            .response("503", unavailable())
            .build(),
        ),
        (
            HttpMethod::Get,
            "/v1/blocks/{height}",
            operation(
                "getBlock",
                "blocks",
                "A committed block",
                "The block at a height: header, hash, commit certificate and its events' \
                 canonical bytes, which is what `custody verify chain` replays.",
            )
            .parameter(path_param(
                "height",
                "The block height; heights start at 1.",
                u64::schema(),
            ))
            .response("200", json_response::<BlockView>("The block."))
            .response("400", bad_path("The height is not a non-negative integer"))
            .response("404", block_not_found())
            .response("503", unavailable())
            .build(),
        ),
        (
            HttpMethod::Get,
            "/v1/log/checkpoint",
            operation(
                "getCheckpoint",
                "log",
                "The latest checkpoint",
                "The head's header, in canonical bytes and readable, with its commit \
                 certificate: what inclusion and consistency proofs are anchored to.",
            )
            .response("200", json_response::<Checkpoint>("The checkpoint."))
            .response("404", block_not_found())
            .response("503", unavailable())
            .build(),
        ),
        (
            HttpMethod::Get,
            "/v1/log/consistency",
            operation(
                "getConsistencyProof",
                "log",
                "A consistency proof between two log sizes",
                "The RFC 6962 proof that the log of `to` events extends the log of `from` \
                 events: nothing committed by the smaller log was rewritten.",
            )
            .parameter(log_size_param(
                "from",
                "The older log size, at least 1 and at most `to`.",
            ))
            .parameter(log_size_param(
                "to",
                "The newer log size, at most the head's log size.",
            ))
            .response(
                "200",
                json_response::<ConsistencyView>("Both roots and the proof."),
            )
            .response(
                "400",
                problem(
                    "A parameter is missing, unknown or not an integer (`request.query`), or \
                     the sizes are not `1 <= from <= to <= log size` (`log.bad_range`).",
                ),
            )
            .response("503", unavailable())
            .build(),
        ),
        (HttpMethod::Get, "/v1/network", network()),
        (
            HttpMethod::Get,
            "/v1/genesis",
            operation(
                "getGenesis",
                "node",
                "The genesis document",
                "The genesis document in its JSON form (docs/PROTOCOL.md §9.3): what `custody \
                 verify bundle --genesis` reads. A verifier that trusts this node may take it \
                 from here; one that does not compares its hash with the one it holds.",
            )
            .response("200", json_response::<Genesis>("The genesis document."))
            .build(),
        ),
        (
            HttpMethod::Get,
            "/v1/status",
            operation(
                "getStatus",
                "node",
                "This node's view of the ledger",
                "The chain id and genesis hash, this node's key and role, the head and log, \
                 the number of events waiting in the mempool, and the node's health with the \
                 reasons when it is unhealthy.",
            )
            .response("200", json_response::<Status>("The status."))
            .response("503", unavailable())
            .build(),
        ),
        (
            HttpMethod::Get,
            "/healthz",
            operation(
                "health",
                "node",
                "Liveness",
                "Answers `ok` when the node can read its ledger, every critical task \
                 (consensus host and engine, gossip, HTTP) runs, and the node keeps up: it is \
                 unhealthy (503, `node.unhealthy`) when it has not committed for 15 s while \
                 `f + 1` validators are at least two heights ahead. `/v1/status` says why.",
            )
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The node is up.")
                    .content(
                        TEXT,
                        Content::new(Some(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .enum_values(Some(["ok"])),
                        )),
                    )
                    .build(),
            )
            .response(
                "503",
                problem(
                    "The node is unhealthy (`node.unhealthy`, the detail names every problem) \
                     or could not read its ledger (`node.unavailable`).",
                ),
            )
            .build(),
        ),
        (
            HttpMethod::Get,
            "/metrics",
            operation(
                "metrics",
                "node",
                "Metrics for Prometheus",
                "Counters, gauges and latency histograms in the OpenMetrics text format, which \
                 Prometheus scrapes.",
            )
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The metrics.")
                    .content(
                        OPENMETRICS,
                        Content::new(Some(ObjectBuilder::new().schema_type(Type::String))),
                    )
                    .build(),
            )
            .response("503", unavailable())
            .build(),
        ),
        (
            HttpMethod::Get,
            "/openapi.json",
            operation(
                "openapi",
                "node",
                "This document",
                "The OpenAPI document of this API.",
            )
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The OpenAPI document.")
                    .content(
                        JSON,
                        Content::new(Some(ObjectBuilder::new().schema_type(Type::Object))),
                    )
                    .build(),
            )
            .build(),
        ),
        (HttpMethod::Post, "/epcis/capture", epcis_capture()),
        (
            HttpMethod::Get,
            "/epcis/capture/{id}",
            operation(
                "getEpcisCaptureJob",
                "epcis",
                "An EPCIS capture job",
                "The job of a capture made through this node's gateway (`captureID`, \
                 `createdAt`, `finishedAt`, `running`, `success`, `captureErrorBehaviour`, \
                 `errors` per event, and `custody:events`, the admitted events' Custody ids). \
                 Jobs are kept in memory, the latest 1000. Needs the gateway's bearer token.",
            )
            .parameter(path_param(
                "id",
                "The captureID, from the capture's Location header.",
                RefOr::T(String::schema().into()),
            ))
            .response("200", capture_job_response("The capture job."))
            .response(
                "401",
                problem("No or a wrong bearer token (`epcis.unauthorized`)."),
            )
            .response(
                "403",
                problem("This node is not a capture gateway (`epcis.gateway_not_configured`)."),
            )
            .response(
                "404",
                problem("No such job, or no longer kept (`epcis.no_such_resource`)."),
            )
            .build(),
        ),
    ]
}

/// The EPCIS 2.0 query operations (`crate::epcis::query`, docs/EPCIS.md).
fn epcis_query() -> Vec<(HttpMethod, &'static str, Operation)> {
    use crate::epcis::query::{PER_PAGE_DEFAULT, PER_PAGE_MAX, SCAN_BUDGET};
    let document = || {
        ResponseBuilder::new()
            .description(
                "An EPCISQueryDocument (`application/ld+json`, or `application/json` when the \
                 Accept header asks for it) valid against GS1's EPCIS 2.0 JSON Schema, events \
                 in log order; `Link: <...>; rel=\"next\"` when there is a next page. Every \
                 answer carries GS1-EPCIS-Version/-Min/-Max and GS1-CBV-Version/-Min/-Max \
                 2.0.0.",
            )
            .content(
                "application/ld+json",
                Content::new(Some(ObjectBuilder::new().schema_type(Type::Object))),
            )
            .build()
    };
    let collection = || {
        ResponseBuilder::new()
            .description("`{\"type\": \"Collection\", \"member\": [names]}`.")
            .content(
                "application/ld+json",
                Content::new(Some(ObjectBuilder::new().schema_type(Type::Object))),
            )
            .build()
    };
    let bad_query = || {
        problem(
            "A query parameter is unknown, unsupported, repeated or malformed \
             (`epcis.query_parameter`, title QueryParameterException).",
        )
    };
    let text = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(description))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    };
    let filters =
        || {
            let list = "one or more values separated by `|`";
            vec![
            text("eventType", &format!("Event types, {list} (Custody writes ObjectEvent).")),
            text("GE_eventTime", "Events that happened at or after this date-time."),
            text("LT_eventTime", "Events that happened before this date-time."),
            text("GE_recordTime", "Events recorded (block time) at or after this date-time."),
            text("LT_recordTime", "Events recorded (block time) before this date-time."),
            text("EQ_bizStep", &format!("Business steps, {list}: CBV short names or URIs.")),
            text("EQ_disposition", &format!("Dispositions, {list}.")),
            text("MATCH_epc", &format!("EPCs in epcList, {list}; EPC URNs or Digital Link.")),
            text("MATCH_anyEPC", &format!("EPCs in any EPC field, {list}.")),
            text("EQ_bizLocation", &format!("bizLocation ids, {list}.")),
            text("EQ_readPoint", &format!("readPoint ids, {list}.")),
            text("EQ_eventID", &format!("EPCIS eventIDs, {list}.")),
            text(
                "EQ_bizTransaction_{type}",
                "A business transaction of this type (`inv`, `rma`, or a URI, percent-encoded) \
                 with one of these ids.",
            ),
            text(
                "perPage",
                &format!("Events per page, 1 to {PER_PAGE_MAX}; {PER_PAGE_DEFAULT} by default."),
            ),
            text(
                "nextPageToken",
                &format!(
                    "The opaque token of the `Link` header. A page reads at most {SCAN_BUDGET} \
                     log entries, so a page may be short and still have a next one."
                ),
            ),
        ]
        };
    let string = || {
        RefOr::T(Schema::Object(
            ObjectBuilder::new().schema_type(Type::String).build(),
        ))
    };
    let events_op = |id: &str, summary: &str, param: Option<(&str, &str)>| {
        let mut op = operation(
            id,
            "epcis",
            summary,
            "A SimpleEventQuery over the committed events that have an EPCIS form, in log \
             order (docs/EPCIS.md). The path value, percent-encoded, is the filter it names.",
        )
        .parameters(Some(filters()))
        .response("200", document())
        .response("400", bad_query());
        if let Some((name, description)) = param {
            op = op.parameter(path_param(name, description, string()));
        }
        op.response(
            "503",
            problem("The node could not read its ledger (`node.unavailable`)."),
        )
        .build()
    };
    let list_op = |id: &str, summary: &str| {
        operation(id, "epcis", summary, summary)
            .response("200", collection())
            .response("400", bad_query())
            .build()
    };
    vec![
        (
            HttpMethod::Get,
            "/epcis/context/custody.jsonld",
            operation(
                "epcisCustodyContext",
                "epcis",
                "The Custody JSON-LD context",
                "The `custody` prefix and terms of the Custody vocabulary (docs/EPCIS.md).",
            )
            .response(
                "200",
                ResponseBuilder::new()
                    .description("The context document.")
                    .content(
                        "application/ld+json",
                        Content::new(Some(ObjectBuilder::new().schema_type(Type::Object))),
                    )
                    .build(),
            )
            .build(),
        ),
        (
            HttpMethod::Get,
            "/epcis/events",
            events_op("epcisEvents", "EPCIS events matching a query", None),
        ),
        (
            HttpMethod::Get,
            "/epcis/events/{eventID}",
            operation(
                "epcisEvent",
                "epcis",
                "One EPCIS event by its eventID",
                "The event `urn:custody:event:{64 hex}` in an EPCISQueryDocument.",
            )
            .parameter(path_param(
                "eventID",
                "The EPCIS eventID, percent-encoded.",
                string(),
            ))
            .response("200", document())
            .response("400", bad_query())
            .response(
                "404",
                problem("No such event (`epcis.no_such_resource`, NoSuchResourceException)."),
            )
            .build(),
        ),
        (
            HttpMethod::Get,
            "/epcis/eventTypes",
            list_op("epcisEventTypes", "The event types Custody writes"),
        ),
        (
            HttpMethod::Get,
            "/epcis/eventTypes/{eventType}/events",
            events_op(
                "epcisEventTypeEvents",
                "Events of one type",
                Some(("eventType", "An EPCIS event type.")),
            ),
        ),
        (
            HttpMethod::Get,
            "/epcis/bizSteps",
            list_op("epcisBizSteps", "The business steps events may carry"),
        ),
        (
            HttpMethod::Get,
            "/epcis/bizSteps/{bizStep}/events",
            events_op(
                "epcisBizStepEvents",
                "Events of one business step",
                Some(("bizStep", "A CBV short name or a URI.")),
            ),
        ),
        (
            HttpMethod::Get,
            "/epcis/dispositions",
            list_op("epcisDispositions", "The dispositions events may carry"),
        ),
        (
            HttpMethod::Get,
            "/epcis/dispositions/{disposition}/events",
            events_op(
                "epcisDispositionEvents",
                "Events leaving goods in one disposition",
                Some(("disposition", "A CBV short name or a URI.")),
            ),
        ),
        (
            HttpMethod::Get,
            "/epcis/epcs/{epc}/events",
            events_op(
                "epcisEpcEvents",
                "Events about one EPC",
                Some(("epc", "An EPC: a Digital Link URI or an EPC URN.")),
            ),
        ),
        (
            HttpMethod::Get,
            "/epcis/readPoints/{readPoint}/events",
            events_op(
                "epcisReadPointEvents",
                "Events read at one read point",
                Some(("readPoint", "A read point id (`urn:custody:locode:DEHAM`).")),
            ),
        ),
        (
            HttpMethod::Get,
            "/epcis/bizLocations/{bizLocation}/events",
            events_op(
                "epcisBizLocationEvents",
                "Events at one business location",
                Some(("bizLocation", "A business location id.")),
            ),
        ),
    ]
}

fn capture_job_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            JSON,
            Content::new(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some(
                        "captureID, createdAt, finishedAt, running, success, \
                         captureErrorBehaviour, errors (index, eventID, code, field, detail), \
                         custody:events (index, eventId, kind).",
                    )),
            )),
        )
        .build()
}

/// The EPCIS webhook subscription operations (`crate::epcis::subscriptions`, docs/EPCIS.md).
/// `GET` and `POST /v1/shipments/{id}/personal`: a shipment's off-ledger personal data
/// (`crate::personal`; the signed bytes are documented in `personal::auth`).
fn personal_operations() -> Vec<(HttpMethod, &'static str, Operation)> {
    use crate::personal::auth::{READ_BATCH_SHIPMENTS_MAX, READ_SKEW_MS_MAX};
    use crate::personal::DISCLOSURES_MAX;
    let path = "/v1/shipments/{id}/personal";
    let object = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                JSON,
                Content::new(Some(ObjectBuilder::new().schema_type(Type::Object))),
            )
            .build()
    };
    let json_body = |description: &str| {
        RequestBodyBuilder::new()
            .description(Some(description))
            .content(
                JSON,
                Content::new(Some(ObjectBuilder::new().schema_type(Type::Object))),
            )
            .required(Some(Required::True))
            .build()
    };
    let header = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(RefOr::T(Schema::Object(
                ObjectBuilder::new().schema_type(Type::String).build(),
            ))))
            .build()
    };
    let refusals = |op: OperationBuilder| {
        op.response(
            "401",
            problem(
                "Unsigned (`personal.unsigned`), a bad signature (`personal.signature`) or, for \
                 a read, a time too far from the node's clock (`personal.stale_request`).",
            ),
        )
        .response(
            "403",
            problem("The signer is not a party's key or node key (`personal.not_a_party`)."),
        )
        .response("404", shipment_not_found())
        .response(
            "410",
            problem("The shipment's personal data was erased (`personal.erased`)."),
        )
        .response(
            "503",
            problem("This node keeps no personal data (`personal.unavailable`)."),
        )
    };
    vec![
        (
            HttpMethod::Get,
            path,
            refusals(
                operation(
                    "getShipmentPersonal",
                    "shipments",
                    "A shipment's off-ledger personal data (parties only)",
                    &format!(
                        "`{{\"shipment_id\", \"disclosures\": [{{\"event_id\", \"field\", \
                         \"value\", \"salt\"}}]}}`: the values behind the commitments of the \
                         shipment's events, as this node holds them. A signed read: \
                         `Custody-Signature` is the signer's ed25519 signature over \
                         `\"custody/personal-read/v1\" || utf8(id) || 0x00 || time (u64 \
                         big-endian)`, refused more than {READ_SKEW_MS_MAX} ms from the node's \
                         clock. Never gossiped; erased by a `PersonalDataErased` event."
                    ),
                )
                .parameter(shipment_param())
                .parameter(header(
                    "Custody-Signer",
                    "The signer's key (hex): a party member's event key or node key.",
                ))
                .parameter(header(
                    "Custody-Time",
                    "When it was signed, in Unix milliseconds.",
                ))
                .parameter(header("Custody-Signature", "The signature (hex).")),
            )
            .response("200", object("The disclosures held."))
            .build(),
        ),
        (
            HttpMethod::Post,
            path,
            refusals(
                operation(
                    "discloseShipmentPersonal",
                    "shipments",
                    "Give a node a shipment's personal data (parties only)",
                    &format!(
                        "Body: `{{\"disclosures\": [...], \"signer\", \"signature\"}}`, at most \
                         {DISCLOSURES_MAX} disclosures; the signature is over \
                         `\"custody/personal-request/v1\" || utf8(id) || 0x00 || SHA-256(per \
                         disclosure: event_id || utf8(field) || 0x00 || u32be(value length) || \
                         value || salt)`. Each disclosure must open its committed event's \
                         commitment. Kept off the ledger, merged by (event, field); answers \
                         `{{\"shipment_id\", \"held\"}}`."
                    ),
                )
                .parameter(shipment_param())
                .request_body(Some(json_body("disclosures, signer and signature.")))
                .response(
                    "400",
                    problem("The body is not a disclosure request (`request.body`)."),
                )
                .response(
                    "422",
                    problem(
                        "A disclosure does not open its commitment (`disclosure.event`, \
                         `disclosure.field`, `disclosure.commitment`, `disclosure.value`) or \
                         there are too many (`personal.too_many`).",
                    ),
                ),
            )
            .response("200", object("How many disclosures the node holds."))
            .build(),
        ),
        (
            HttpMethod::Post,
            "/v1/personal/batch",
            operation(
                "readPersonalBatch",
                "shipments",
                "Many shipments' personal data at once (a party's node asking its peers)",
                &format!(
                    "Body: `{{\"shipments\": [id, ...], \"signer\", \"time_ms\", \
                     \"signature\"}}`, at most {READ_BATCH_SHIPMENTS_MAX} shipments; the \
                     signature is over `\"custody/personal-read-batch/v1\" || time_ms (u64 \
                     big-endian) || per shipment, in body order: utf8(id) || 0x00`, refused \
                     more than {READ_SKEW_MS_MAX} ms from the node's clock. Answers \
                     `{{\"height\", \"shipments\": [{{\"shipment_id\", \"disclosures\"}}]}}`: \
                     the node's committed height and what it holds of those shipments the \
                     signer is a party of (event key or node key); others are left out."
                ),
            )
            .request_body(Some(json_body("shipments, signer, time and signature.")))
            .response(
                "200",
                object("The node's height and the disclosures it may give."),
            )
            .response(
                "400",
                problem("The body is not a batch read (`request.body`)."),
            )
            .response(
                "401",
                problem(
                    "A bad signature (`personal.signature`) or a time too far from the \
                     node's clock (`personal.stale_request`).",
                ),
            )
            .response(
                "422",
                problem("Too many shipments (`personal.too_many`, field `shipments`)."),
            )
            .response(
                "503",
                problem("This node keeps no personal data (`personal.unavailable`)."),
            )
            .build(),
        ),
    ]
}

fn epcis_subscriptions() -> Vec<(HttpMethod, &'static str, Operation)> {
    use crate::epcis::subscriptions::{Backoff, PUSH_EVENTS_MAX, SUBSCRIPTIONS_FILE};
    let backoff = Backoff::default();
    let string = || {
        RefOr::T(Schema::Object(
            ObjectBuilder::new().schema_type(Type::String).build(),
        ))
    };
    let name = || {
        path_param(
            "name",
            "A label the client chooses; Custody keeps no named queries (the query is the \
             subscription's `query`).",
            string(),
        )
    };
    let id = || path_param("id", "The subscriptionID.", string());
    let object = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                JSON,
                Content::new(Some(ObjectBuilder::new().schema_type(Type::Object))),
            )
            .build()
    };
    let missing = || problem("No such subscription of this query (`epcis.no_such_resource`).");
    let path = "/epcis/queries/{name}/subscriptions";
    let one = "/epcis/queries/{name}/subscriptions/{id}";
    vec![
        (
            HttpMethod::Get,
            path,
            operation(
                "epcisSubscriptions",
                "epcis",
                "The subscriptions of a query",
                "`{\"subscriptions\": [...]}`: each with `subscriptionID`, `queryName`, \
                 `createdAt`, `dest` and `query` (never the `signatureToken`).",
            )
            .parameter(name())
            .response("200", object("The subscriptions."))
            .build(),
        ),
        (
            HttpMethod::Post,
            path,
            operation(
                "epcisSubscribe",
                "epcis",
                "Subscribe a webhook to a query",
                &format!(
                    "Body: `{{\"dest\": \"http(s)://...\", \"signatureToken\": \"...\", \
                     \"query\": {{...}}}}`, `query` holding the `GET /epcis/events` filters \
                     (no paging). After each committed block, the events after the \
                     subscription's cursor that match are POSTed to `dest` as an \
                     `EPCISQueryDocument` (at most {PUSH_EVENTS_MAX} per push) with \
                     `GS1-Signature: sha256=<lowercase hex HMAC-SHA256(signatureToken, body)>`. \
                     At least once: the cursor advances after a 2xx only; failures are retried \
                     after {:?}, doubling to {:?}. Kept in `{SUBSCRIPTIONS_FILE}` in the data \
                     directory. Answers 201 with the subscription and its `Location`.",
                    backoff.first, backoff.max
                ),
            )
            .parameter(name())
            .request_body(Some(
                RequestBodyBuilder::new()
                    .description(Some("dest, signatureToken and query."))
                    .content(
                        JSON,
                        Content::new(Some(ObjectBuilder::new().schema_type(Type::Object))),
                    )
                    .required(Some(Required::True))
                    .build(),
            ))
            .response("201", object("The subscription."))
            .response(
                "400",
                problem(
                    "A bad `dest` (`epcis.invalid_uri`), a missing `signatureToken` or an \
                     unsupported field (`epcis.subscription_controls`), or a bad query \
                     parameter (`epcis.query_parameter`); `field` names it.",
                ),
            )
            .build(),
        ),
        (
            HttpMethod::Get,
            one,
            operation(
                "epcisSubscription",
                "epcis",
                "A subscription",
                "The subscription (never its `signatureToken`).",
            )
            .parameter(name())
            .parameter(id())
            .response("200", object("The subscription."))
            .response("404", missing())
            .build(),
        ),
        (
            HttpMethod::Delete,
            one,
            operation(
                "epcisUnsubscribe",
                "epcis",
                "Delete a subscription",
                "Stops the pushes; answers 204.",
            )
            .parameter(name())
            .parameter(id())
            .response(
                "204",
                ResponseBuilder::new().description("Deleted.").build(),
            )
            .response("404", missing())
            .build(),
        ),
    ]
}

/// `POST /epcis/capture`.
fn epcis_capture() -> Operation {
    use crate::epcis::capture::{CAPTURE_EVENTS_MAX, CAPTURE_FILE_SIZE_BYTES_MAX};
    operation(
        "epcisCapture",
        "epcis",
        "Capture an EPCISDocument through this node's gateway",
        &format!(
            "For systems that cannot sign: on a node configured as its organisation's gateway \
             (`[epcis_gateway]`), each event is mapped to a Custody event (docs/EPCIS.md), \
             signed with the member's key and submitted as `POST /v1/events` does. Needs \
             `Authorization: Bearer <token>`. `GS1-Capture-Error-Behaviour`: `rollback` (the \
             default; nothing is submitted if any event would be refused) or `proceed`. At most \
             {CAPTURE_EVENTS_MAX} events and {CAPTURE_FILE_SIZE_BYTES_MAX} bytes, advertised in \
             `GS1-EPCIS-Capture-Limit` and `GS1-EPCIS-Capture-File-Size-Limit`. The job has \
             run when the 202 is sent; its `Location` is `/epcis/capture/{{id}}`."
        ),
    )
    .request_body(Some(
        RequestBodyBuilder::new()
            .description(Some("An EPCIS 2.0 EPCISDocument (JSON-LD)."))
            .content(
                JSON,
                Content::new(Some(ObjectBuilder::new().schema_type(Type::Object))),
            )
            .required(Some(Required::True))
            .build(),
    ))
    .response(
        "202",
        capture_job_response("The capture job, finished; see its `success` and `errors`."),
    )
    .response(
        "400",
        problem("Not JSON, not an EPCISDocument, or not valid EPCIS 2.0 (`epcis.validation`)."),
    )
    .response(
        "401",
        problem("No or a wrong bearer token (`epcis.unauthorized`)."),
    )
    .response(
        "403",
        problem("This node is not a capture gateway (`epcis.gateway_not_configured`)."),
    )
    .response(
        "413",
        problem(
            "More events or bytes than the limits (`epcis.capture_limit`, \
             `epcis.capture_too_large`).",
        ),
    )
    .build()
}

/// `POST /v1/events`.
fn submit_event() -> Operation {
    let wait_s = COMMIT_WAIT_MS_MAX / 1000;
    let canonical_bytes = ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .content_media_type(OCTET_STREAM)
        .description(Some(
            "The canonical bytes of a SignedEvent (docs/PROTOCOL.md §2.4 and §4.1).",
        ));
    let retry_after = HeaderBuilder::new()
        .schema(u64::schema())
        .description(Some(
            "With `mempool.full` or `mempool.signer_quota`: seconds to wait before submitting again.",
        ))
        .build();
    operation(
        "submitEvent",
        "events",
        "Submit a signed event",
        &format!(
            "Checks the event as a block will (shape, signature, membership, rules, state \
             machine) and puts it in the mempool, from which it is gossiped to the other nodes \
             and proposed. Submitting an event that is already waiting answers as the first \
             submission did. With `?wait=commit` the answer waits up to {wait_s} s for the \
             block that commits the event. The body is at most {BODY_SIZE_BYTES_MAX} bytes; \
             without a `Content-Type` it is read as JSON."
        ),
    )
    .parameter(
        ParameterBuilder::new()
            .name("wait")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(format!(
                "`commit`: answer with the receipt once the event is committed, or with `202` \
                 after {wait_s} s."
            )))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["commit"])),
            ))
            .build(),
    )
    .request_body(Some(
        RequestBodyBuilder::new()
            .description(Some("The signed event, as JSON or as its canonical bytes."))
            .required(Some(Required::True))
            .content(JSON, Content::new(Some(ref_of::<SignedEvent>())))
            .content(OCTET_STREAM, Content::new(Some(canonical_bytes)))
            .build(),
    ))
    .response(
        "200",
        json_response::<Receipt>(
            "With `wait=commit`: the event is committed; its receipt, with the inclusion proof \
             to the committing block's log root.",
        ),
    )
    .response(
        "202",
        json_response::<Accepted>(&format!(
            "The event waits in the mempool for a block (with `wait=commit`: it was not \
             committed within {wait_s} s)."
        )),
    )
    .response(
        "400",
        problem(
            "The JSON is not a signed event (`event.malformed`), the body could not be read \
             (`request.body`), or a query parameter is unknown or has an unsupported value \
             (`request.query`).",
        ),
    )
    .response(
        "409",
        problem("The event is already on the ledger (`event.duplicate`)."),
    )
    .response(
        "413",
        problem(&format!(
            "The body is larger than {BODY_SIZE_BYTES_MAX} bytes (`request.body`), the \
             event's canonical encoding is larger than {EVENT_SIZE_BYTES_MAX} bytes, in JSON \
             or binary (`event.too_large`), or larger than the mempool admits \
             (`mempool.too_large`)."
        )),
    )
    .response(
        "415",
        problem(
            "The body is neither `application/json` nor `application/octet-stream` \
             (`request.media_type`).",
        ),
    )
    .response(
        "422",
        problem(
            "The event is invalid: the code is the ledger's or a rule module's rejection code \
             and `field` names the offending field. Canonical bytes that do not decode are \
             refused here too.",
        ),
    )
    .response(
        "429",
        ResponseBuilder::new()
            .description(
                "The signer already has its share of the mempool waiting \
                 (`mempool.signer_quota`, with `Retry-After`): one member's flood must not \
                 starve the others. Retry after some of its events commit.",
            )
            .content(PROBLEM_JSON, Content::new(Some(ref_of::<Problem>())))
            .header("Retry-After", retry_after.clone())
            .build(),
    )
    .response(
        "503",
        ResponseBuilder::new()
            .description(
                "The mempool is full (`mempool.full`, with `Retry-After`), or the node could not \
                 read its ledger (`node.unavailable`).",
            )
            .content(PROBLEM_JSON, Content::new(Some(ref_of::<Problem>())))
            .header("Retry-After", retry_after)
            .build(),
    )
    .build()
}

/// `POST /v1/events/batch`.
fn submit_batch() -> Operation {
    let wait_s = COMMIT_WAIT_MS_MAX / 1000;
    let concatenated = ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .content_media_type(OCTET_STREAM)
        .description(Some(
            "The canonical bytes of each SignedEvent (docs/PROTOCOL.md §2.4 and §4.1), one \
             after another with nothing between them.",
        ));
    let events = ArrayBuilder::new()
        .items(ref_of::<SignedEvent>())
        .min_items(Some(1))
        .max_items(Some(BATCH_EVENTS_MAX));
    let retry_after = HeaderBuilder::new()
        .schema(u64::schema())
        .description(Some(
            "When an event was refused with `mempool.full` or `mempool.signer_quota`: seconds \
             to wait before submitting the refused events again.",
        ))
        .build();
    operation(
        "submitEventBatch",
        "events",
        "Submit many signed events",
        &format!(
            "Each event is checked and admitted exactly as `POST /v1/events` would, in the \
             batch's order: each is judged after the batch's earlier accepted events, so a \
             batch may hold a handoff proposal and then its acceptance. One event's refusal \
             never refuses the others. At most {BATCH_EVENTS_MAX} events and \
             {BATCH_BODY_BYTES_MAX} bytes; without a `Content-Type` the body is read as JSON. \
             The answer has one result per element, in order: `accepted` (in the mempool; an \
             event that was already waiting there is `accepted`, as `POST /v1/events` answers \
             it), `duplicate` (already on the ledger, or the same event earlier in the batch) \
             or `refused` with the `code`, `field` and `detail` the single endpoint would \
             answer (`event.malformed` for a JSON element that is not a signed event, whose \
             `event_id` is then `null`). When the mempool is full or the signer reaches its \
             quota, that event and every later one are refused (`mempool.full`, \
             `mempool.signer_quota`) and the answer carries `Retry-After`. With \
             `?wait=commit` the answer waits up to {wait_s} s for every accepted event to \
             commit; each committed event, duplicates included, then has its `receipt`, and \
             one not committed in time stays `accepted` without one."
        ),
    )
    .parameter(
        ParameterBuilder::new()
            .name("wait")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(format!(
                "`commit`: answer once every accepted event is committed, or after {wait_s} s."
            )))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["commit"])),
            ))
            .build(),
    )
    .request_body(Some(
        RequestBodyBuilder::new()
            .description(Some(
                "The signed events, as a JSON array or as concatenated canonical bytes.",
            ))
            .required(Some(Required::True))
            .content(JSON, Content::new(Some(events)))
            .content(OCTET_STREAM, Content::new(Some(concatenated)))
            .build(),
    ))
    .response(
        "200",
        ResponseBuilder::new()
            .description("What became of each event, in the batch's order, and the counts.")
            .content(JSON, Content::new(Some(ref_of::<BatchOutcome>())))
            .header("Retry-After", retry_after)
            .build(),
    )
    .response(
        "400",
        problem(
            "Nothing was admitted: the JSON body is not an array (`request.body`), the batch \
             is empty (`batch.empty`), the canonical bytes do not split into events \
             (`batch.framing`, the detail names the event and byte where they stop), or a \
             query parameter is unknown or has an unsupported value (`request.query`).",
        ),
    )
    .response(
        "413",
        problem(&format!(
            "Nothing was admitted: the body is larger than {BATCH_BODY_BYTES_MAX} bytes \
             (`request.body`) or holds more than {BATCH_EVENTS_MAX} events (`batch.too_many`)."
        )),
    )
    .response(
        "415",
        problem(
            "The body is neither `application/json` nor `application/octet-stream` \
             (`request.media_type`).",
        ),
    )
    .build()
}

/// `POST /v1/quote`.
fn quote() -> Operation {
    operation(
        "quoteLandedCost",
        "quotes",
        "Quote the landed cost of a draft shipment",
        &format!(
            "Prices a shipment before it exists, with the rule code that judges declarations:              customs value and basis, the low-value regime that applies and why (the value              compared, the thresholds, the legal source), duty and import VAT/GST per line and              in total, who pays under the Incoterm, the landed cost, the reference data read              (table ids, effective dates, publishing event ids) and the rules version. The              reference data is the version in force at `at` (past or future; the node's clock              without it); the rules version is the one in force at the next height. A              declaration of the same shipment at `at` stating the quoted figures is accepted.              Nothing is written. At most {} lines; the body is at most {BODY_SIZE_BYTES_MAX}              bytes.",
            crate::quote::QUOTE_LINES_MAX
        ),
    )
    .request_body(Some(
        RequestBodyBuilder::new()
            .description(Some("The draft shipment."))
            .required(Some(Required::True))
            .content(JSON, Content::new(Some(ref_of::<QuoteRequest>())))
            .build(),
    ))
    .response("200", json_response::<Quote>("The quote."))
    .response(
        "400",
        problem(
            "The body is not a draft: malformed JSON, a value of the wrong type or form, a              missing or unknown field (`quote.malformed`, `field` names it), a body that              could not be read (`request.body`), or a query parameter (`request.query`).",
        ),
    )
    .response(
        "413",
        problem(&format!(
            "The body is larger than {BODY_SIZE_BYTES_MAX} bytes (`request.body`)."
        )),
    )
    .response(
        "415",
        problem("The body is not `application/json` (`request.media_type`)."),
    )
    .response(
        "422",
        problem(
            "The rules refuse the draft: the code is the rule module's (`hs.unknown`,              `duty.no_rate`, `valuation.exchange_rate`, `id.ioss`, …) or              `quote.lines`, and `field` names the draft's field (`lines[0].hs_code`).",
        ),
    )
    .response(
        "503",
        problem("The node could not read its ledger (`node.unavailable`)."),
    )
    .build()
}

/// `GET /v1/shipments`.
fn list_shipments() -> Operation {
    let member = || ref_of::<custody_ledger::model::MemberId>();
    let text = |pattern: Option<&str>| {
        let mut schema = ObjectBuilder::new().schema_type(Type::String);
        if let Some(pattern) = pattern {
            schema = schema.pattern(Some(pattern));
        }
        RefOr::T(Schema::Object(schema.build()))
    };
    let time = "^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{3})?Z)?$";
    operation(
        "listShipments",
        "shipments",
        "Find shipments",
        &format!(
            "Shipments in id order, one page at a time, found by a search term and narrowed by \
             filters; every filter given must hold. `q` is matched exactly (after trimming \
             white space) against the shipment id, the SSCC of any parcel registered, the \
             number of any transport document of a handoff proposal (air waybill, bill of \
             lading, ...) and the invoice number; a term that matches nothing gives an empty \
             list, not 404. Search terms and the seller, custodian, destination and status \
             filters are served by indexes written with each block; the time range is checked \
             on the candidates. A request examines at most {SHIPMENTS_EXAMINED_MAX} shipments: \
             a page may then end short, even empty, with a `next_cursor` to continue from. \
             A store written by a node from before these indexes has none for its earlier \
             blocks."
        ),
    )
    .parameter(query_param(
        "q",
        &format!(
            "Search term: a shipment id, SSCC, transport document number or invoice number; \
             1 to {SEARCH_TERM_LEN_MAX} bytes without control characters."
        ),
        text(None),
    ))
    .parameter(query_param(
        "status",
        "Only shipments with this status.",
        ref_of::<custody_ledger::state::ShipmentStatus>(),
    ))
    .parameter(query_param(
        "seller",
        "Only shipments this member registered.",
        member(),
    ))
    .parameter(query_param(
        "custodian",
        "Only shipments this member holds now.",
        member(),
    ))
    .parameter(query_param(
        "destination",
        "Only shipments bound for this country.",
        ref_of::<custody_ledger::model::CountryCode>(),
    ))
    .parameter(query_param(
        "from",
        "Only shipments registered in a block at or after this time: RFC 3339 in UTC \
         (`2026-11-01T09:30:00Z`, `2026-11-01T09:30:00.250Z`) or a date (midnight UTC).",
        text(Some(time)),
    ))
    .parameter(query_param(
        "to",
        "Only shipments registered in a block before this time (exclusive), in the form of \
         `from`; after `from` when both are given.",
        text(Some(time)),
    ))
    .parameter(query_param(
        "cursor",
        "The `next_cursor` of the previous page, with the same filters; without it, the first \
         page. Opaque.",
        text(None),
    ))
    .parameter(query_param(
        "limit",
        "The most shipments in the page.",
        RefOr::T(Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
                .minimum(Some(1))
                .maximum(Some(SHIPMENT_PAGE_MAX))
                .default(Some(SHIPMENT_PAGE_DEFAULT.into()))
                .build(),
        )),
    ))
    .response(
        "200",
        json_response::<ShipmentList>("One page of shipments, in id order."),
    )
    .response(
        "400",
        problem(
            "A query parameter is unknown, malformed or out of range; `field` names it \
             (`request.query`).",
        ),
    )
    .response(
        "503",
        problem("The node could not read its ledger (`node.unavailable`)."),
    )
    .build()
}

/// `GET /v1/network`.
fn network() -> Operation {
    operation(
        "getNetwork",
        "node",
        "The network at a glance",
        &format!(
            "The chain id, genesis hash and head; each genesis validator with the latest of \
             the last {ACTIVITY_LOOKBACK_BLOCKS} blocks it proposed (from the headers) and \
             signed (from the commit certificates), `null` when none; the last \
             {RECENT_BLOCKS_MAX} blocks, newest first; the events committed in each of the \
             last {RATE_MINUTES} minutes of block time up to the head's (before the first \
             block, up to the genesis time), oldest first, from per-minute counts kept as \
             blocks are appended (a store from before them counts nothing for its earlier \
             blocks); and this node's health as `/v1/status` reports it."
        ),
    )
    .response("200", json_response::<NetworkView>("The network."))
    .response(
        "503",
        problem("The node could not read its ledger (`node.unavailable`)."),
    )
    .build()
}

fn query_param(name: &str, description: &str, schema: RefOr<Schema>) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn operation(id: &str, tag: &str, summary: &str, description: &str) -> OperationBuilder {
    OperationBuilder::new()
        .operation_id(Some(id))
        .tag(tag)
        .summary(Some(summary))
        .description(Some(description))
}

/// A reference to the component schema of `T`.
fn ref_of<T: ToSchema>() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(T::name()))
}

fn json_response<T: ToSchema>(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(JSON, Content::new(Some(ref_of::<T>())))
        .build()
}

fn problem(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, Content::new(Some(ref_of::<Problem>())))
        .build()
}

/// The 400 answer's description for a shipment id that no event could carry.
const SHIPMENT_ID_MALFORMED: &str =
    "The id is not 1 to 64 characters from A-Z a-z 0-9 . _ - :, as every shipment id is";

/// What every operation may answer when the request head is over the API's limits.
fn head_limit_responses() -> [(&'static str, Response); 2] {
    [
        (
            "414",
            problem(&format!(
                "The request target (path and query) is longer than {URI_LEN_MAX} bytes \
                 (`request.uri`)."
            )),
        ),
        (
            "431",
            problem(&format!(
                "The header section has more than {HEADERS_COUNT_MAX} fields or more than \
                 {HEADER_SECTION_BYTES_MAX} bytes (`request.headers`)."
            )),
        ),
    ]
}

fn shipment_not_found() -> Response {
    problem("No committed event names this shipment (`shipment.not_found`).")
}

fn block_not_found() -> Response {
    problem("No block is committed at this height, or none yet (`block.not_found`).")
}

fn event_page_response() -> Response {
    ResponseBuilder::new()
        .description("One page of events, oldest first.")
        .content(
            JSON,
            Content::new(Some(RefOr::Ref(Ref::from_schema_name(EVENT_PAGE_SCHEMA)))),
        )
        .build()
}

fn path_param(name: &str, description: &str, schema: RefOr<Schema>) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

fn shipment_param() -> Parameter {
    path_param(
        "id",
        "The shipment id, percent-encoded.",
        ref_of::<custody_ledger::model::ShipmentId>(),
    )
}

/// `?after=` and `?limit=`.
fn paging_params() -> Vec<Parameter> {
    vec![
        ParameterBuilder::new()
            .name("after")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some(
                "The `next` of the previous page; without it, the first page. The cursor is \
                 opaque: today a log index in decimal.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^[0-9]{1,20}$")),
            ))
            .build(),
        ParameterBuilder::new()
            .name("limit")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some("The most items in the page."))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
                    .minimum(Some(1))
                    .maximum(Some(PAGE_ITEMS_MAX))
                    .default(Some(PAGE_ITEMS_DEFAULT.into())),
            ))
            .build(),
    ]
}

fn log_size_param(name: &str, description: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1)),
        ))
        .build()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use custody_contracts::load::sample_tables;
    use custody_ledger::event::EncodedEvent;
    use custody_ledger::model::{
        CustomsRegime, DocumentAttested, EventKind, ExchangeRate, Member, MemberId,
        MembershipChange, MembershipChanged, Role, ShipmentId,
    };
    use custody_ledger::state::MemberStatus;
    use custody_ledger::store::{MemoryStore, Store};
    use custody_ledger::testkit::{eur, TestNet, GENESIS_TIME};
    use serde_json::Value;

    use super::*;

    fn document_json() -> Value {
        let text = document().to_json().expect("the document serializes");
        serde_json::from_str(&text).expect("the document is JSON")
    }

    /// The component schema named `name`.
    fn component<'a>(doc: &'a Value, name: &str) -> &'a Value {
        let schema = &doc["components"]["schemas"][name];
        assert!(schema.is_object(), "no component schema {name}");
        schema
    }

    #[test]
    fn the_document_is_openapi_3_json() {
        let doc = document_json();
        let version = doc["openapi"].as_str().expect("an openapi version");
        assert!(version.starts_with("3."), "openapi {version}");
        assert_eq!(doc["info"]["title"], "Custody node API");
        assert!(doc["paths"].is_object());
    }

    #[test]
    fn every_route_is_an_operation_and_nothing_else_is() {
        let doc = document_json();
        let mut seen = std::collections::BTreeSet::new();
        for (method, path) in ROUTES {
            assert!(seen.insert((method, path)), "{method} {path} listed twice");
            let operation = &doc["paths"][path][method.to_lowercase()];
            assert!(operation.is_object(), "{method} {path} is not documented");
            assert!(operation["operationId"].is_string(), "{method} {path}");
            // A success answer: 200, 201 for a subscription, 202 for a capture (the job is
            // its answer), 204 for a deletion.
            assert!(
                ["200", "201", "202", "204"]
                    .iter()
                    .any(|code| operation["responses"][code].is_object()),
                "{method} {path}"
            );
            // Every `{name}` of the template is a required path parameter.
            let declared: Vec<&str> = operation["parameters"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p["in"] == "path" && p["required"] == true)
                        .filter_map(|p| p["name"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            let in_template: Vec<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            assert_eq!(declared, in_template, "path parameters of {path}");
        }
        let operations: usize = doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .map(|item| item.as_object().expect("path item").len())
            .sum();
        assert_eq!(operations, ROUTES.len(), "an operation missing from ROUTES");
        let ops = operations_of(&doc);
        let ids: std::collections::BTreeSet<&str> = ops
            .iter()
            .map(|op| op["operationId"].as_str().expect("operationId"))
            .collect();
        assert_eq!(ids.len(), ROUTES.len(), "operation ids are unique");
    }

    fn operations_of(doc: &Value) -> Vec<&Value> {
        doc["paths"]
            .as_object()
            .expect("paths")
            .values()
            .flat_map(|item| item.as_object().expect("path item").values())
            .collect()
    }

    #[test]
    fn regression_issue_11_every_operation_documents_the_request_head_limits() {
        let doc = document_json();
        for operation in operations_of(&doc) {
            for (status, code) in [("414", "request.uri"), ("431", "request.headers")] {
                let description = operation["responses"][status]["description"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{status} of {}", operation["operationId"]));
                assert!(description.contains(code), "{description}");
            }
        }
    }

    #[test]
    fn errors_are_problems_and_submission_takes_json_and_bytes() {
        let doc = document_json();
        for operation in operations_of(&doc) {
            for (status, response) in operation["responses"].as_object().expect("responses") {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"][PROBLEM_JSON]["schema"]["$ref"],
                        "#/components/schemas/Problem",
                        "{} {status}",
                        operation["operationId"]
                    );
                }
            }
        }
        let submit = &doc["paths"]["/v1/events"]["post"];
        let body = &submit["requestBody"]["content"];
        assert_eq!(
            body[JSON]["schema"]["$ref"],
            "#/components/schemas/SignedEvent"
        );
        assert_eq!(body[OCTET_STREAM]["schema"]["format"], "binary");
        for status in [
            "200", "202", "400", "409", "413", "415", "422", "429", "503",
        ] {
            assert!(submit["responses"][status].is_object(), "POST {status}");
        }
        assert_eq!(
            submit["responses"]["202"]["content"][JSON]["schema"]["$ref"],
            "#/components/schemas/Accepted"
        );
        assert_eq!(submit["parameters"][0]["name"], "wait");
        let consistency = &doc["paths"]["/v1/log/consistency"]["get"]["parameters"];
        let names: Vec<&str> = consistency
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["from", "to"]);
    }

    #[test]
    fn the_components_hold_the_api_types_and_every_reference_resolves() {
        let doc = document_json();
        for name in [
            "SignedEvent",
            "Event",
            "EventKind",
            "Receipt",
            "Accepted",
            "EventView",
            EVENT_PAGE_SCHEMA,
            "ShipmentState",
            "Bundle",
            "Checkpoint",
            "BundleEvent",
            "BlockHeader",
            "CommitCertificate",
            "MemberView",
            "BlockView",
            "ConsistencyView",
            "ShipmentList",
            "ShipmentSummary",
            "NetworkView",
            "ValidatorActivity",
            "RecentBlock",
            "MinuteCount",
            "Status",
            "Problem",
            "Genesis",
            "Digest",
            "PublicKey",
            "Signature",
            "Timestamp",
            "Incoterm",
        ] {
            component(&doc, name);
        }
        let mut references = Vec::new();
        collect_refs(&doc, &mut references);
        assert!(
            references.len() > 50,
            "the document refers to its components"
        );
        for reference in references {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected reference {reference}"));
            component(&doc, name);
        }
    }

    fn collect_refs(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    out.push(reference.clone());
                }
                map.values().for_each(|v| collect_refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn no_two_types_share_a_schema_name() {
        let mut by_name: BTreeMap<String, Value> = BTreeMap::new();
        for (name, schema) in schemas() {
            let schema = serde_json::to_value(schema).expect("schema");
            if let Some(earlier) = by_name.insert(name.clone(), schema.clone()) {
                assert_eq!(earlier, schema, "two different schemas named {name}");
            }
        }
    }

    #[test]
    fn the_hand_written_json_forms_have_their_schemas() {
        let doc = document_json();
        assert_eq!(component(&doc, "Digest")["pattern"], "^[0-9a-fA-F]{64}$");
        assert_eq!(component(&doc, "PublicKey")["maxLength"], 64);
        assert_eq!(component(&doc, "Signature")["minLength"], 128);
        assert_eq!(component(&doc, "Timestamp")["format"], "date-time");
        assert_eq!(component(&doc, "CountryCode")["pattern"], "^[A-Z]{2}$");
        assert_eq!(component(&doc, "ShipmentId")["type"], "string");
        let incoterms = component(&doc, "Incoterm")["enum"]
            .as_array()
            .expect("Incoterm is an enumeration")
            .len();
        assert_eq!(incoterms, 11);
        let bytes = &component(&doc, "BundleEvent")["properties"]["bytes"];
        assert_eq!(bytes["type"], "string");
        assert_eq!(bytes["contentEncoding"], "base64");
        assert_eq!(component(&doc, "Bundle")["additionalProperties"], false);
        let events = &component(&doc, "BlockView")["properties"]["events"];
        assert_eq!(events["items"]["contentEncoding"], "base64");
        let problem = component(&doc, "Problem");
        assert!(
            problem["properties"]["type"].is_object(),
            "`kind` is `type`"
        );
        assert!(!required(problem).contains(&"field"));
    }

    fn required(schema: &Value) -> Vec<&str> {
        schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// Checks that `value` has the shape `schema` describes, as far as serde decides it:
    /// types and nullability, object keys (every key a property, every required property
    /// present), enumerations, string lengths, and exactly one matching `oneOf` branch.
    /// Returns the JSON path of the first mismatch.
    fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/components/schemas/");
            return conforms(doc, component(doc, name), value, at);
        }
        if let Some(branches) = schema["oneOf"].as_array() {
            let matching = branches
                .iter()
                .filter(|b| conforms(doc, b, value, at).is_ok())
                .count();
            return match matching {
                1 => Ok(()),
                n => Err(format!("{at}: {n} oneOf branches match {value}")),
            };
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let type_ok = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_u64() || value.is_i64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        };
        if !types.is_empty() && !types.iter().any(|t| type_ok(t)) {
            return Err(format!("{at}: {value} is not of type {types:?}"));
        }
        if let Some(allowed) = schema["enum"].as_array() {
            if !allowed.contains(value) {
                return Err(format!("{at}: {value} is not one of {allowed:?}"));
            }
        }
        if let Some(text) = value.as_str() {
            let length = text.chars().count() as u64;
            if schema["minLength"].as_u64().is_some_and(|min| length < min)
                || schema["maxLength"].as_u64().is_some_and(|max| length > max)
            {
                return Err(format!("{at}: {text:?} has the wrong length"));
            }
        }
        if let Some(minimum) = schema["minimum"].as_i64() {
            if value.as_i64().is_some_and(|v| v < minimum) {
                return Err(format!("{at}: {value} is below {minimum}"));
            }
        }
        if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
            for (i, item) in items.iter().enumerate() {
                conforms(doc, schema, item, &format!("{at}[{i}]"))?;
            }
        }
        if let Some(object) = value.as_object() {
            let properties = schema["properties"].as_object();
            for (key, item) in object {
                let Some(property) = properties.and_then(|p| p.get(key)) else {
                    return Err(format!("{at}: key {key:?} is not a property of the schema"));
                };
                conforms(doc, property, item, &format!("{at}.{key}"))?;
            }
            for key in required(schema) {
                if !object.contains_key(key) {
                    return Err(format!("{at}: required key {key:?} is missing"));
                }
            }
        }
        Ok(())
    }

    /// Serializes `value` and checks it against the component schema `name`.
    fn check<T: serde::Serialize>(doc: &Value, name: &str, value: &T) {
        let json = serde_json::to_value(value).expect("serializes");
        if let Err(mismatch) = conforms(doc, component(doc, name), &json, name) {
            panic!("the JSON of {name} drifted from its schema: {mismatch}");
        }
    }

    /// The check above is not vacuous: it notices an undocumented key, a missing required
    /// key, a wrongly tagged enumeration and a hex string of the wrong length.
    #[test]
    fn the_drift_check_notices_drift() {
        let doc = document_json();
        let net = TestNet::new();
        let event = serde_json::to_value(net.lifecycle("OA-1")[0].event()).expect("event");
        let schema = component(&doc, "SignedEvent");
        assert_eq!(conforms(&doc, schema, &event, "SignedEvent"), Ok(()));

        let mut extra = event.clone();
        extra["surprise"] = Value::Bool(true);
        let mut missing = event.clone();
        missing.as_object_mut().expect("object").remove("signer");
        let mut tagged = event.clone();
        let kind = tagged["event"]["kind"]["ShipmentRegistered"].take();
        tagged["event"]["kind"] = serde_json::json!({ "type": "ShipmentRegistered", "data": kind });
        let mut short = event.clone();
        short["signature"] = Value::String("ab".repeat(32));
        for (what, bad) in [
            ("extra", extra),
            ("missing", missing),
            ("tagged", tagged),
            ("short", short),
        ] {
            assert!(
                conforms(&doc, schema, &bad, "SignedEvent").is_err(),
                "{what} was not noticed"
            );
        }
    }

    /// Every top-level key of a real value's JSON is a property of its schema, and every
    /// required property is there.
    #[test]
    fn a_real_status_and_receipt_have_exactly_the_documented_keys() {
        let doc = document_json();
        let net = TestNet::new();
        let status = Status {
            chain_id: net.genesis.chain_id.clone(),
            genesis_hash: net.genesis_hash(),
            node_key: net.validator_keys()[0].public(),
            validator: true,
            height: 0,
            head_hash: net.genesis_hash(),
            log_size: 0,
            log_root: custody_ledger::merkle::empty_root(),
            mempool_size: 0,
            health: crate::health::Health::new(4, 0, std::time::Instant::now())
                .report(std::time::Instant::now()),
        };
        let json = serde_json::to_value(&status).expect("status");
        let properties = component(&doc, "Status")["properties"]
            .as_object()
            .expect("Status has properties");
        let keys: Vec<&String> = json.as_object().expect("an object").keys().collect();
        for key in &keys {
            assert!(
                properties.contains_key(*key),
                "Status.{key} is undocumented"
            );
        }
        assert_eq!(
            keys.len(),
            properties.len(),
            "a documented key is never written"
        );
        check(&doc, "Status", &status);
    }

    /// Real values of every type the API answers with, built from a committed history, have
    /// the shape their schemas describe, down to the leaves.
    #[test]
    fn real_answers_match_their_schemas() {
        let doc = document_json();
        let net = TestNet::new();
        let store = MemoryStore::new(net.genesis_hash());
        let lifecycle = net.lifecycle("OA-1");
        let partial = net.lifecycle("OA-2");
        let events: Vec<EncodedEvent> = lifecycle.iter().chain(&partial[..2]).cloned().collect();
        let built = net.commit(&store, events, GENESIS_TIME).expect("commit");
        assert!(built.rejected.is_empty(), "{:?}", built.rejected);
        let head = store.head().expect("store").expect("a block");

        for event in lifecycle.iter().chain(&partial[..2]) {
            check(&doc, "SignedEvent", &event.event());
        }
        for id in ["OA-1", "OA-2"] {
            let shipment = store
                .shipment(&ShipmentId::new(id))
                .expect("store")
                .expect("shipment");
            check(&doc, "ShipmentState", &shipment);
        }
        let bundle = custody_ledger::bundle::build(&store, &net.genesis, &ShipmentId::new("OA-1"))
            .expect("store")
            .expect("bundle");
        check(&doc, "Bundle", &bundle);
        check(&doc, "Checkpoint", &bundle.checkpoint);
        check(&doc, "Genesis", &net.genesis);
        let summaries: Vec<_> = ["OA-1", "OA-2"]
            .into_iter()
            .map(|id| {
                let shipment = store
                    .shipment(&ShipmentId::new(id))
                    .expect("store")
                    .expect("shipment");
                crate::browse::summary(&store, shipment).expect("summary")
            })
            .collect();
        for next_cursor in [None, Some("OA-2".to_owned())] {
            let list = ShipmentList {
                shipments: summaries.clone(),
                next_cursor,
            };
            check(&doc, "ShipmentList", &list);
        }
        let health = || {
            crate::health::Health::new(4, 0, std::time::Instant::now())
                .report(std::time::Instant::now())
        };
        let network = crate::browse::network_view(&store, &net.genesis, health()).expect("network");
        assert!(network.validators[0].last_signed_height.is_some());
        check(&doc, "NetworkView", &network);
        // Before the first block: no head time, no activity.
        let empty = MemoryStore::new(net.genesis_hash());
        let network = crate::browse::network_view(&empty, &net.genesis, health()).expect("network");
        assert_eq!(network.head_time, None);
        check(&doc, "NetworkView", &network);

        let first = &lifecycle[0];
        let stored = store.event(&first.id()).expect("store").expect("event");
        let receipt = Receipt {
            event_id: first.id(),
            height: head.height,
            block_hash: head.block_hash,
            recorded_at: GENESIS_TIME,
            log_index: stored.location.log_index,
            log_size: head.log_size,
            log_root: head.log_root,
            entry: store.log_entry(&first.id()).expect("store").expect("entry"),
            inclusion_proof: store
                .inclusion_proof(stored.location.log_index, head.log_size)
                .expect("proof"),
        };
        check(&doc, "Receipt", &receipt);
        let entry = EventEntry {
            event_id: first.id(),
            height: stored.location.height,
            log_index: stored.location.log_index,
            recorded_at: GENESIS_TIME,
            event: stored.event.event().clone(),
        };
        check(
            &doc,
            "EventView",
            &EventView {
                event_id: first.id(),
                height: stored.location.height,
                index_in_block: stored.location.index_in_block,
                log_index: stored.location.log_index,
                recorded_at: GENESIS_TIME,
                event: stored.event.event().clone(),
                receipt,
            },
        );
        for next in [None, Some("3".to_owned())] {
            let page = Page {
                items: vec![entry.clone()],
                next,
            };
            check(&doc, EVENT_PAGE_SCHEMA, &page);
        }
        check(
            &doc,
            "Accepted",
            &Accepted {
                event_id: first.id(),
                status: "pending".into(),
            },
        );

        let block = store.block(head.height).expect("store").expect("block");
        check(
            &doc,
            "BlockView",
            &BlockView {
                hash: block.hash(),
                certificate: store
                    .certificate(head.height)
                    .expect("store")
                    .expect("certificate"),
                event_ids: block.events.iter().map(|e| e.id()).collect(),
                events: block
                    .events
                    .iter()
                    .map(|e| STANDARD.encode(e.bytes()))
                    .collect(),
                header: block.header,
            },
        );
        check(
            &doc,
            "ConsistencyView",
            &ConsistencyView {
                from: 1,
                to: head.log_size,
                from_root: store.log_root(1).expect("root"),
                to_root: head.log_root,
                proof: store.consistency_proof(1, head.log_size).expect("proof"),
            },
        );
        for member in &net.genesis.members {
            check(
                &doc,
                "MemberView",
                &MemberView {
                    id: member.id.clone(),
                    name: member.name.clone(),
                    roles: member.roles.clone(),
                    key: member.key,
                    retired_keys: vec![member.key],
                    status: MemberStatus::Revoked,
                    node_key: member.node_key,
                    voting_power: member.voting_power,
                },
            );
        }
        for field in [None, Some("event.kind".to_owned())] {
            check(
                &doc,
                "Problem",
                &Problem {
                    kind: "urn:custody:problem:event.malformed".into(),
                    title: "Bad Request".into(),
                    status: 400,
                    detail: "the body is not a signed event".into(),
                    code: "event.malformed".into(),
                    field,
                },
            );
        }
    }

    /// The event kinds and enumeration forms the lifecycle does not reach: reference data
    /// (every duty rate form), membership changes, attestations and the other customs regimes.
    #[test]
    fn every_event_kind_matches_its_schema() {
        let doc = document_json();
        let net = TestNet::new();
        let mut kinds: Vec<EventKind> = sample_tables(GENESIS_TIME)
            .into_iter()
            .map(EventKind::ReferenceDataPublished)
            .collect();
        let key = net.key("seller-acme").public();
        let member = MemberId::new("newcomer");
        for change in [
            MembershipChange::Admit {
                member: Member {
                    id: member.clone(),
                    name: "Newcomer Ltd".into(),
                    roles: vec![Role::Carrier, Role::CustomsBroker],
                    key,
                },
            },
            MembershipChange::RotateKey {
                member: member.clone(),
                new_key: key,
            },
            MembershipChange::Revoke {
                member,
                reason: "left".into(),
            },
            MembershipChange::ScheduleRules {
                activation: custody_ledger::model::RulesActivation {
                    version: 2,
                    from_height: 1_000,
                },
            },
        ] {
            kinds.push(EventKind::MembershipChanged(MembershipChanged {
                change,
                approvals: vec![custody_ledger::model::Approval {
                    admin: key,
                    signature: custody_ledger::Signature([7; 64]),
                }],
            }));
        }
        kinds.push(EventKind::DocumentAttested(DocumentAttested {
            shipment_id: ShipmentId::new("OA-1"),
            document_type: "certificate_of_origin".into(),
            document_hash: Digest::sha256(b"certificate"),
            reference: "COO-1".into(),
        }));
        // A tracking scan, with and without its optional GLN, limits and parcels.
        let scan = custody_ledger::testkit::tracking_scan("OA-1", "DEHAM");
        let mut bare = scan.clone();
        bare.parcels.clear();
        bare.read_point_gln = None;
        bare.sensor_readings[0].min_milli = None;
        bare.sensor_readings[0].max_milli = None;
        bare.sensor_readings[0].value_milli = -18_500;
        bare.exception = true;
        kinds.push(EventKind::TrackingScanRecorded(scan));
        kinds.push(EventKind::TrackingScanRecorded(bare));
        // A buyer with every commitment, and the erasure event.
        let mut registration = custody_ledger::testkit::registration("OA-1", "CN", "FR");
        registration.invoice.buyer.address_commitment = Some(Digest::sha256(b"address"));
        registration.invoice.buyer.personal_id_commitment = Some(Digest::sha256(b"id"));
        kinds.push(EventKind::ShipmentRegistered(registration));
        kinds.push(EventKind::PersonalDataErased(
            custody_ledger::model::PersonalDataErased {
                shipment_id: ShipmentId::new("OA-1"),
            },
        ));
        let declared = net.declare("OA-1", "FR", 300, 5_060);
        for regime in [
            CustomsRegime::DeMinimisRelief,
            CustomsRegime::TaxCollectedAtSale {
                registration_id: "IM2500000001".into(),
            },
        ] {
            let EventKind::CustomsDeclared(mut declaration) = declared.event().event.kind.clone()
            else {
                panic!("a declaration");
            };
            declaration.regime = regime;
            declaration.exchange_rate = Some(ExchangeRate {
                from: eur(),
                to: eur(),
                numerator: 1,
                denominator: 1,
            });
            kinds.push(EventKind::CustomsDeclared(declaration));
        }
        let mut names = std::collections::BTreeSet::new();
        for kind in kinds {
            names.insert(kind.name());
            let event = net.sign("admin-1", kind);
            check(&doc, "SignedEvent", &event.event());
        }
        assert!(names.len() >= 4, "{names:?}");
    }
}
