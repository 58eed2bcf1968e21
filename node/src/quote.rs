//! `POST /v1/quote`: the landed cost of a draft shipment, before it exists.
//!
//! A quote runs the same rule code a declaration is judged by. The draft becomes the
//! registration and the declaration a seller and a broker would sign: the registration is
//! checked as a block would check it (the invoice, the seller's registrations, the HS codes
//! against the nomenclature in force), and [`custody_contracts::customs::assess`] computes
//! every amount a correct declaration must state under the regime that applies. So a
//! declaration of the same shipment at the same time, stating the quoted figures, is accepted,
//! and one stating any of them one minor unit off is refused.
//!
//! **The time.** The reference data is the version of each table in force at the draft's
//! `at` (past or future), or at the node's clock without it: tables published on the ledger
//! with a later effective date are used once that date is reached. The rules version is the
//! one in force at the next height (the genesis schedule and any later `ScheduleRules`
//! change the node knows of), whatever `at` says: a quote tells what a declaration submitted
//! now would be judged by, with the tables of the date asked.
//!
//! **The regime** is chosen as a broker would: tax collected at the sale when the seller has
//! a registration the jurisdiction's low-value rule accepts and the goods are within its
//! ceiling; otherwise duty relief when the goods are within its threshold; otherwise a full
//! declaration. Each choice is confirmed by the rules, never assumed.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use custody_contracts::customs::{self, Assessment};
use custody_contracts::reference::{tariff_table_id, DE_MINIMIS_TABLE, HS_TABLE};
use custody_contracts::{documents, money, regimes, ContractRules, Ctx, ReferenceBook};
use custody_ledger::model::*;
use custody_ledger::reject::Rejection;
use custody_ledger::state::{BlockContext, ShipmentState, ShipmentStatus, State as LedgerState};
use custody_ledger::store::Store;
use custody_ledger::view::{
    Quote, QuoteLine, QuoteLineAmounts, QuotePayer, QuoteReference, QuoteRegime, QuoteRequest,
    QuoteValuation,
};
use custody_ledger::{Digest, Timestamp};

use crate::api::{only_params, query_pairs, ApiError, ApiState, QueryPairs, BODY_SIZE_BYTES_MAX};

/// Most lines in a draft: as many as an invoice of a shipment on the ledger sensibly has.
pub const QUOTE_LINES_MAX: usize = 1_000;

/// Stable codes of the quote endpoint (rule codes pass through as they are).
pub mod codes {
    /// The body is not a draft: malformed JSON, a wrong type, a missing or unknown field.
    pub const MALFORMED: &str = "quote.malformed";
    /// The draft has no lines, or more than the endpoint takes.
    pub const LINES: &str = "quote.lines";
}

/// An SSCC for the draft's one notional parcel (a valid check digit; never on the ledger).
const DRAFT_SSCC: &str = "106141411234567897";
/// Path prefixes of the notional registration and declaration, mapped back to the draft.
const REGISTRATION: &str = "draft";
const DECLARATION: &str = "declaration";

/// Why a draft could not be quoted: a problem naming the draft's field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuoteError {
    /// The HTTP status: 400 for a body that is not a draft, 422 for a draft the rules refuse.
    pub status: u16,
    /// The stable code.
    pub code: String,
    /// The draft's field at fault, as a dotted path (`lines[0].hs_code`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl QuoteError {
    fn malformed(field: impl Into<String>, message: impl Into<String>) -> QuoteError {
        QuoteError {
            status: 400,
            code: codes::MALFORMED.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// A rule's rejection of the notional registration or declaration, on the draft's field.
    fn refused(rejection: Rejection, draft: &QuoteRequest) -> QuoteError {
        QuoteError {
            status: 422,
            code: rejection.code.as_str().into(),
            field: draft_field(&rejection, draft),
            message: rejection.message,
        }
    }
}

impl From<QuoteError> for ApiError {
    fn from(e: QuoteError) -> ApiError {
        ApiError::new(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            &e.code,
            Some(e.field),
            e.message,
        )
    }
}

/// Reads a draft from JSON, naming the field of any type error, missing or unknown field.
pub fn parse_draft(body: &[u8]) -> Result<QuoteRequest, QuoteError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let draft: QuoteRequest = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.to_string();
        // A missing or unknown field is reported at its parent: name the field itself.
        let named = ["missing field `", "unknown field `"]
            .iter()
            .find_map(|p| message.strip_prefix(p))
            .and_then(|rest| rest.split_once('`'))
            .map(|(name, _)| name.to_owned());
        let field = match (path.as_str(), named) {
            ("." | "?" | "", Some(name)) => name,
            ("." | "?" | "", None) => "body".to_owned(),
            // An unknown field's path already ends with it.
            (path, Some(name)) if path.ends_with(&format!(".{name}")) || path == name => {
                path.to_owned()
            }
            (parent, Some(name)) => format!("{parent}.{name}"),
            (parent, None) => parent.to_owned(),
        };
        QuoteError::malformed(field, format!("the body is not a draft shipment: {inner}"))
    })?;
    deserializer
        .end()
        .map_err(|e| QuoteError::malformed("body", format!("trailing characters: {e}")))?;
    Ok(draft)
}

/// The notional registration of the draft: its lines numbered from 1, packed in one parcel.
fn registration(draft: &QuoteRequest) -> Result<ShipmentRegistered, QuoteError> {
    if draft.lines.is_empty() || draft.lines.len() > QUOTE_LINES_MAX {
        return Err(QuoteError {
            status: 422,
            code: codes::LINES.into(),
            field: "lines".into(),
            message: format!(
                "a draft has 1 to {QUOTE_LINES_MAX} lines, not {}",
                draft.lines.len()
            ),
        });
    }
    let mut total: u128 = 0;
    let mut weight: u128 = 0;
    let mut lines = Vec::with_capacity(draft.lines.len());
    for (i, l) in draft.lines.iter().enumerate() {
        total += u128::from(l.quantity) * u128::from(l.unit_value_minor);
        weight += u128::from(l.net_weight_grams);
        lines.push(InvoiceLine {
            line_no: line_no(i),
            description: l.description.clone(),
            hs_code: l.hs_code.clone(),
            gtin: None,
            quantity: l.quantity,
            unit: l.unit.clone(),
            unit_value_minor: l.unit_value_minor,
            net_weight_grams: l.net_weight_grams,
            origin_country: l.origin_country,
        });
    }
    let too_large = |field: &str| QuoteError {
        status: 422,
        code: money::codes::OVERFLOW.as_str().into(),
        field: field.into(),
        message: "the amounts are too large to compute exactly in minor units".into(),
    };
    let total_minor = u64::try_from(total).map_err(|_| too_large("lines"))?;
    let gross_weight_grams = u64::try_from(weight).map_err(|_| too_large("lines"))?;
    let party = |name: &str, country: CountryCode, tax_ids: Vec<TaxId>| Party {
        name: name.into(),
        country,
        tax_ids,
    };
    Ok(ShipmentRegistered {
        shipment_id: ShipmentId::new("quote"),
        parcels: vec![Parcel {
            sscc: DRAFT_SSCC.into(),
            gross_weight_grams,
        }],
        origin: draft.origin,
        destination: draft.destination,
        incoterm: draft.incoterm,
        incoterm_place: "quote".into(),
        invoice: CommercialInvoice {
            number: "quote".into(),
            issued_at: Timestamp(0),
            currency: draft.currency,
            seller: party("seller", draft.origin, draft.seller_registrations.clone()),
            // A quote names no person: the buyer's commitments are placeholders, and a buyer
            // without business registrations is a private buyer, as the rules read it.
            buyer: Buyer {
                name_commitment: Digest::ZERO,
                address_commitment: None,
                country: draft.destination,
                tax_ids: Vec::new(),
                personal_id_commitment: None,
            },
            lines,
            total_minor,
            freight_minor: draft.freight_minor,
            insurance_minor: draft.insurance_minor,
        },
        packing_list: PackingList {
            lines: draft
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| PackingLine {
                    sscc: DRAFT_SSCC.into(),
                    invoice_line: line_no(i),
                    quantity: l.quantity,
                })
                .collect(),
        },
    })
}

fn line_no(index: usize) -> u32 {
    u32::try_from(index + 1).expect("at most QUOTE_LINES_MAX lines")
}

/// The shipment as the ledger would hold it right after the registration.
fn shipment(r: &ShipmentRegistered, at: Timestamp) -> ShipmentState {
    let seller = MemberId::new("quote-seller");
    let none = Digest::sha256(b"quote");
    ShipmentState {
        shipment_id: r.shipment_id.clone(),
        status: ShipmentStatus::Registered,
        seller: seller.clone(),
        custodian: seller,
        origin: r.origin,
        destination: r.destination,
        incoterm: r.incoterm,
        registered_event: none,
        registered_at: at,
        updated_at: at,
        last_place: None,
        pending_handoff: None,
        declaration: None,
        released_in: Vec::new(),
        invoice: r.invoice.clone(),
        arrived_in_destination: false,
        returns: Vec::new(),
        event_count: 1,
        last_event: none,
        personal_erased: false,
        head_entry: None,
    }
}

/// The currency a jurisdiction declares in: its tariff's, else its low-value rule's, else the
/// invoice's (the rules then refuse the declaration, naming what is missing).
fn customs_currency(
    book: &ReferenceBook,
    at: Timestamp,
    draft: &QuoteRequest,
    rule: Option<&DeMinimisRule>,
) -> CurrencyCode {
    if let Some(t) = book.tariff(draft.destination, at) {
        return t.currency;
    }
    rule.map_or(draft.currency, |rule| rule.currency)
}

/// The notional declaration under `regime`, its amounts left for the assessment.
fn declaration(
    draft: &QuoteRequest,
    currency: CurrencyCode,
    regime: CustomsRegime,
) -> CustomsDeclared {
    CustomsDeclared {
        shipment_id: ShipmentId::new("quote"),
        declaration_ref: "quote".into(),
        jurisdiction: draft.destination,
        transport_mode: draft.transport_mode,
        currency,
        valuation_basis: customs::valuation_basis(draft.destination).unwrap_or(ValuationBasis::CIF),
        customs_value_minor: 0,
        freight_minor: 0,
        insurance_minor: 0,
        exchange_rate: draft.exchange_rate,
        regime,
        lines: draft
            .lines
            .iter()
            .enumerate()
            .map(|(i, l)| DeclarationLine {
                invoice_line: line_no(i),
                hs_code: l.tariff_code.clone().unwrap_or_else(|| l.hs_code.clone()),
                customs_value_minor: 0,
                duty_minor: 0,
                tax_minor: 0,
            })
            .collect(),
        duty_total_minor: 0,
        tax_total_minor: 0,
    }
}

/// The low-value rule that applies to the draft, found by the customs module's own lookup
/// for the rules version.
fn applicable_rule<'b>(
    rules_version: u32,
    book: &'b ReferenceBook,
    at: Timestamp,
    draft: &QuoteRequest,
    goods_origins: &[CountryCode],
) -> Option<&'b DeMinimisRule> {
    let consignment = regimes::Consignment {
        jurisdiction: draft.destination,
        dispatch: draft.origin,
        goods_origins,
        transport_mode: draft.transport_mode,
    };
    regimes::applicable_under(rules_version, book.de_minimis(at)?, &consignment)
}

/// Whether a rejection only says that another regime applies.
fn other_regime_applies(r: &Rejection) -> bool {
    [
        customs::codes::REGIME_NOT_ELIGIBLE,
        customs::codes::REGIME_RELIEF_APPLIES,
        customs::codes::TAX_REGISTRATION_MISSING,
    ]
    .contains(&r.code)
}

/// Quotes a draft at `at` against the reference data in `rules`.
pub fn quote(
    rules: &ContractRules,
    at: Timestamp,
    rules_version: u32,
    draft: &QuoteRequest,
) -> Result<Quote, QuoteError> {
    let book = &rules.book;
    let reg = registration(draft)?;
    // The registration, checked as a block at `at` would check it.
    let state = LedgerState::new("quote", 1);
    let ctx = Ctx {
        state: &state,
        book,
        block: BlockContext {
            height: 0,
            time: at,
        },
        rules_version,
    };
    documents::check_registration(&ctx, &reg, REGISTRATION)
        .map_err(|r| QuoteError::refused(r, draft))?;
    let shipment = shipment(&reg, at);

    // The regimes a broker would try, most favourable to the buyer first.
    let goods_origins: Vec<CountryCode> = draft.lines.iter().map(|l| l.origin_country).collect();
    let rule = applicable_rule(rules_version, book, at, draft, &goods_origins);
    let currency = customs_currency(book, at, draft, rule);
    let mut candidates: Vec<CustomsRegime> = draft
        .seller_registrations
        .iter()
        .filter(|id| rule.is_some_and(|r| r.collected_at_sale_schemes.contains(&id.scheme)))
        .map(|id| CustomsRegime::TaxCollectedAtSale {
            registration_id: id.value.clone(),
        })
        .collect();
    candidates.push(CustomsRegime::DeMinimisRelief);
    candidates.push(CustomsRegime::Full);
    let mut last = None;
    let mut chosen = None;
    for regime in candidates {
        let decl = declaration(draft, currency, regime);
        match customs::assess(rules_version, book, at, &shipment, &decl, DECLARATION) {
            Ok(a) => {
                chosen = Some((decl, a));
                break;
            }
            Err(r) if other_regime_applies(&r) => last = Some(r),
            Err(r) => return Err(QuoteError::refused(r, draft)),
        }
    }
    let Some((decl, a)) = chosen else {
        // A full declaration is refused only for the regime when relief applies, and relief
        // is then accepted; reaching here means the rules refused every regime.
        let r = last.expect("at least one regime was tried");
        return Err(QuoteError::refused(r, draft));
    };
    answer(rules, at, rules_version, draft, decl, a, rule)
}

#[allow(clippy::too_many_arguments)]
fn answer(
    rules: &ContractRules,
    at: Timestamp,
    rules_version: u32,
    draft: &QuoteRequest,
    decl: CustomsDeclared,
    a: Assessment,
    rule: Option<&DeMinimisRule>,
) -> Result<Quote, QuoteError> {
    let book = &rules.book;
    let j = draft.destination;
    let basis = decl.valuation_basis;
    let adjustment = if a.freight_minor == 0 && a.insurance_minor == 0 {
        "none"
    } else if basis == ValuationBasis::CIF {
        "added"
    } else {
        "deducted"
    };
    let explanation = match basis {
        ValuationBasis::CIF => format!(
            "{j} values goods CIF: transport and insurance to the border are part of the \
             customs value, added when the Incoterm ({:?}) leaves them out of the price",
            draft.incoterm
        ),
        ValuationBasis::FOB => format!(
            "{j} values goods FOB: separately stated international transport and insurance \
             are deducted when the Incoterm ({:?}) includes them in the price",
            draft.incoterm
        ),
    };
    let tax_at_sale = matches!(decl.regime, CustomsRegime::TaxCollectedAtSale { .. });
    let reason = match (&decl.regime, rule) {
        (_, None) => format!(
            "no low-value rule applies in {j} to goods from {} at {}: a full declaration, \
             duty and tax from the tariff",
            draft.origin,
            at.to_rfc3339()
        ),
        (CustomsRegime::Full, Some(r)) => format!(
            "goods worth {} {} are above {j}'s duty threshold of {}: a full declaration",
            a.intrinsic_value_minor,
            decl.currency,
            limit(r.duty_free_max_minor)
        ),
        (CustomsRegime::DeMinimisRelief, Some(r)) => format!(
            "goods worth {} {} are within {j}'s duty threshold of {}{}",
            a.intrinsic_value_minor,
            decl.currency,
            limit(r.duty_free_max_minor),
            if a.tax_total_minor == 0 {
                " and its tax threshold: no duty or tax at the border".to_owned()
            } else {
                format!(
                    "; import tax is due (tax threshold {})",
                    limit(r.tax_free_max_minor)
                )
            }
        ),
        (CustomsRegime::TaxCollectedAtSale { registration_id }, Some(r)) => format!(
            "goods worth {} {} are within {j}'s ceiling of {} for tax collected at the sale, \
             and the seller is registered ({registration_id}): the seller charges the tax at \
             checkout",
            a.intrinsic_value_minor,
            decl.currency,
            limit(r.collected_at_sale_max_minor)
        ),
    };
    let ddp = draft.incoterm == Incoterm::DDP;
    let buyer_pays_carriage = matches!(
        draft.incoterm,
        Incoterm::EXW | Incoterm::FCA | Incoterm::FAS | Incoterm::FOB
    );
    let payer = QuotePayer {
        incoterm: draft.incoterm,
        duty_and_tax: if ddp { "seller" } else { "buyer" }.into(),
        transport: if buyer_pays_carriage {
            "buyer"
        } else {
            "seller"
        }
        .into(),
        tax_collected_at_sale: tax_at_sale,
        explanation: format!(
            "Under {:?} the {} pays the import duty and tax{}, and the {} pays the main \
             carriage (Incoterms 2020){}",
            draft.incoterm,
            if ddp { "seller" } else { "buyer, as importer," },
            if ddp { " (delivered duty paid)" } else { "" },
            if buyer_pays_carriage {
                "buyer"
            } else {
                "seller"
            },
            if tax_at_sale {
                "; the import VAT/GST is charged by the seller at checkout instead of at the border"
            } else {
                ""
            }
        ),
    };

    // Landed cost: the goods and all stated transport and insurance, converted, with the
    // duty and the tax assessed.
    let rate = decl.exchange_rate.unwrap_or(ExchangeRate {
        from: draft.currency,
        to: decl.currency,
        numerator: 1,
        denominator: 1,
    });
    let minor = |c: CurrencyCode| {
        custody_contracts::identifiers::check_currency("currency", c)
            .map_err(|r| QuoteError::refused(r, draft))
    };
    let (from_units, to_units) = (minor(draft.currency)?, minor(decl.currency)?);
    let converted = |field: &str, amount: u64| {
        money::convert(field, amount, &rate, from_units, to_units)
            .map_err(|r| QuoteError::refused(r, draft))
    };
    let freight = converted("freight_minor", draft.freight_minor)?;
    let insurance = converted("insurance_minor", draft.insurance_minor)?;
    let landed = [
        a.intrinsic_value_minor,
        freight,
        insurance,
        a.duty_total_minor,
        a.tax_total_minor,
    ]
    .iter()
    .map(|v| u128::from(*v))
    .sum::<u128>();
    let landed_cost_minor =
        money::to_minor("lines", Some(landed)).map_err(|r| QuoteError::refused(r, draft))?;

    // The tables read: the nomenclature, the low-value rules, the tariff.
    let mut reference_data = Vec::new();
    for table in [
        HS_TABLE.to_owned(),
        DE_MINIMIS_TABLE.to_owned(),
        tariff_table_id(j),
    ] {
        if let Some((effective_from, version)) = in_force_with_date(book, &table, at) {
            reference_data.push(QuoteReference {
                table_id: table,
                effective_from,
                event_id: version,
            });
        }
    }

    Ok(Quote {
        at,
        rules_version,
        jurisdiction: j,
        transport_mode: draft.transport_mode,
        currency: decl.currency,
        exchange_rate: decl.exchange_rate,
        valuation: QuoteValuation {
            basis,
            intrinsic_value_minor: a.intrinsic_value_minor,
            freight_minor: a.freight_minor,
            insurance_minor: a.insurance_minor,
            adjustment: adjustment.into(),
            customs_value_minor: a.customs_value_minor,
            explanation,
        },
        regime: QuoteRegime {
            regime: decl.regime.clone(),
            compared_minor: a.intrinsic_value_minor,
            duty_free_max_minor: rule.and_then(|r| r.duty_free_max_minor),
            tax_free_max_minor: rule.and_then(|r| r.tax_free_max_minor),
            collected_at_sale_max_minor: rule.and_then(|r| r.collected_at_sale_max_minor),
            source: rule.map(|r| r.source.clone()),
            reason,
        },
        lines: decl
            .lines
            .iter()
            .zip(&a.lines)
            .map(|(d, l)| QuoteLineAmounts {
                line_no: d.invoice_line,
                tariff_code: d.hs_code.clone(),
                customs_value_minor: l.customs_value_minor,
                duty_minor: l.duty_minor,
                tax_minor: l.tax_minor,
            })
            .collect(),
        duty_total_minor: a.duty_total_minor,
        tax_total_minor: a.tax_total_minor,
        payer,
        landed_cost_minor,
        reference_data,
    })
}

fn limit(max: Option<u64>) -> String {
    max.map_or_else(|| "none".to_owned(), |m| m.to_string())
}

/// The version of a table in force at `at`, with its effective date and publishing event.
fn in_force_with_date(
    book: &ReferenceBook,
    table: &str,
    at: Timestamp,
) -> Option<(Timestamp, EventId)> {
    book.in_force_dated(table, at)
        .map(|(from, version)| (from, version.event))
}

/// The draft's field for a rule's field on the notional registration or declaration.
fn draft_field(r: &Rejection, draft: &QuoteRequest) -> String {
    let field = r.field.as_str();
    if let Some(rest) = field.strip_prefix(REGISTRATION) {
        let rest = rest.trim_start_matches('.');
        if let Some(rest) = rest.strip_prefix("invoice.seller.tax_ids") {
            return format!("seller_registrations{rest}");
        }
        if let Some(rest) = rest.strip_prefix("invoice.") {
            return match rest {
                "total_minor" => "lines".into(),
                other => other.into(),
            };
        }
        if rest.starts_with("parcels") || rest.starts_with("packing_list") {
            return "lines".into();
        }
        return rest.into();
    }
    if let Some(rest) = field.strip_prefix(DECLARATION) {
        let rest = rest.trim_start_matches('.');
        if rest.starts_with("jurisdiction") || rest.starts_with("valuation_basis") {
            return "destination".into();
        }
        if rest.starts_with("regime") {
            return "seller_registrations".into();
        }
        if rest.starts_with("customs_value_minor")
            || rest.starts_with("duty_total_minor")
            || rest.starts_with("tax_total_minor")
        {
            return "lines".into();
        }
        if let Some(line) = rest.strip_prefix("lines[") {
            let (index, name) = line.split_once(']').unwrap_or((line, ""));
            let name = name.trim_start_matches('.');
            let given = |i: &str| {
                i.parse::<usize>()
                    .ok()
                    .and_then(|i| draft.lines.get(i))
                    .is_some_and(|l: &QuoteLine| l.tariff_code.is_some())
            };
            let name = match name {
                "hs_code" if given(index) => "tariff_code",
                "hs_code" => "hs_code",
                "customs_value_minor" => "unit_value_minor",
                "duty_minor" if r.code == customs::codes::DUTY_UNIT => "unit",
                "duty_minor" | "tax_minor" if given(index) => "tariff_code",
                "duty_minor" | "tax_minor" => "hs_code",
                other => other,
            };
            return format!("lines[{index}].{name}");
        }
        return rest.into();
    }
    field.into()
}

/// `POST /v1/quote`.
pub async fn post_quote(
    State(state): State<ApiState>,
    query: QueryPairs,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Quote>, ApiError> {
    let body = body.map_err(|e| {
        ApiError::new(
            e.status(),
            "request.body",
            Some("body".into()),
            format!("{e} (at most {BODY_SIZE_BYTES_MAX} bytes)"),
        )
    })?;
    let pairs = query_pairs(query)?;
    only_params(&pairs, &[])?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if !content_type.starts_with("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "request.media_type",
            Some("content-type".into()),
            format!("{content_type} is not accepted; send application/json"),
        ));
    }
    let draft = parse_draft(&body)?;
    let at = draft.at.unwrap_or_else(crate::clock::now);
    let rules = state
        .rules
        .read()
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "node.unavailable",
                None,
                "the rules are being updated by a failed writer".into(),
            )
        })?
        .clone();
    let (store, genesis) = (state.store.clone(), state.genesis.clone());
    let quote = crate::api::blocking(move || -> Result<Quote, ApiError> {
        let rules_version = next_rules_version(store.as_ref(), &genesis)?;
        Ok(quote(&rules, at, rules_version, &draft)?)
    })
    .await??;
    Ok(Json(quote))
}

/// The rules version in force at the height after the head: the genesis schedule with the
/// `ScheduleRules` changes committed so far.
fn next_rules_version<S: Store + ?Sized>(
    store: &S,
    genesis: &custody_ledger::genesis::Genesis,
) -> Result<u32, ApiError> {
    let next = store.head()?.map_or(1, |h| h.height + 1);
    Ok(store.load_base_state(genesis)?.rules_version_at(next))
}
