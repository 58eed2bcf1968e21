//! The data model: custody events and their typed payloads.
//!
//! Serde derives serve two formats at once. The canonical binary form (see [`crate::codec`])
//! is what is hashed, signed and stored; JSON is what people read and the API speaks. The
//! types therefore avoid serde features bincode cannot express (internally tagged enums,
//! flattening, skipped fields) and hash maps (whose order is not deterministic).
//!
//! Payloads are checked here only for *shape*: lengths, counts and character sets, so that
//! no event can carry unbounded data. Whether a country code exists, a check digit is right
//! or a duty adds up is for the rule modules in `custody-contracts`.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::Digest;
use crate::keys::{PublicKey, Signature};
use crate::time::Timestamp;

/// The id of an event: `SHA-256("custody/event/v1" || canonical bytes of the signed event)`.
pub type EventId = Digest;

macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident, $len:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; $len]);

        impl $name {
            /// Parses exactly the right number of ASCII capital letters.
            pub fn parse(text: &str) -> Option<$name> {
                let bytes = text.as_bytes();
                if bytes.len() != $len || !bytes.iter().all(u8::is_ascii_uppercase) {
                    return None;
                }
                let mut out = [0u8; $len];
                out.copy_from_slice(bytes);
                Some($name(out))
            }

            /// The code as text.
            pub fn as_str(&self) -> &str {
                // The constructor admits ASCII capitals only, which are valid UTF-8.
                std::str::from_utf8(&self.0).expect("code is ASCII")
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $name::parse(&text).ok_or_else(|| D::Error::custom($what))
            }
        }
    };
}

code_type!(
    /// An ISO 3166-1 alpha-2 country code in form (two capital letters). Whether it is an
    /// assigned code is a rule-module check.
    CountryCode, 2, "expected two capital letters (ISO 3166-1 alpha-2)"
);
code_type!(
    /// An ISO 4217 currency code in form (three capital letters).
    CurrencyCode, 3, "expected three capital letters (ISO 4217)"
);

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// Wraps a string; [`is_well_formed`](Self::is_well_formed) says whether it may
            /// appear in an event.
            pub fn new(text: impl Into<String>) -> $name {
                $name(text.into())
            }

            /// 1 to 64 characters from `A-Z a-z 0-9 . _ - :`.
            pub fn is_well_formed(&self) -> bool {
                (1..=ID_LEN_MAX).contains(&self.0.len())
                    && self
                        .0
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-:".contains(&b))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Longest shipment or member id.
pub const ID_LEN_MAX: usize = 64;

id_type!(
    /// A shipment's id, chosen by the seller when registering it (for example an order number).
    ShipmentId
);
id_type!(
    /// A member organisation's stable id. It survives key rotation; keys do not.
    MemberId
);

/// OpenAPI schemas of the codes and ids, whose JSON is a plain string.
#[cfg(feature = "openapi")]
macro_rules! string_schema {
    ($name:ident, $description:literal, $min:literal, $max:literal, $pattern:literal) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                crate::hash::string_schema($description, $min, $max, $pattern)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

#[cfg(feature = "openapi")]
string_schema!(
    CountryCode,
    "An ISO 3166-1 alpha-2 country code in form: two ASCII capital letters.",
    2,
    2,
    "^[A-Z]{2}$"
);
#[cfg(feature = "openapi")]
string_schema!(
    CurrencyCode,
    "An ISO 4217 currency code in form: three ASCII capital letters.",
    3,
    3,
    "^[A-Z]{3}$"
);
#[cfg(feature = "openapi")]
string_schema!(
    ShipmentId,
    "A shipment's id: 1 to 64 characters from `A-Z a-z 0-9 . _ - :`. JSON reads any string; \
     an event naming an id of another form is refused by its shape check.",
    1,
    64,
    "^[A-Za-z0-9._:-]{1,64}$"
);
#[cfg(feature = "openapi")]
string_schema!(
    MemberId,
    "A member's stable id: 1 to 64 characters from `A-Z a-z 0-9 . _ - :`. JSON reads any \
     string; an event naming an id of another form is refused by its shape check.",
    1,
    64,
    "^[A-Za-z0-9._:-]{1,64}$"
);

/// What a member may do. A member can hold several roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Registers shipments, requests and receives returns.
    Seller,
    /// Takes custody and delivers.
    Carrier,
    /// Declares goods to customs and records clearance.
    CustomsBroker,
    /// Publishes reference data (tariffs, nomenclature, de minimis tables).
    CustomsAuthority,
    /// Reads and verifies; signs no custody events.
    Auditor,
    /// Approves membership changes.
    Admin,
}

/// The eleven Incoterms 2020 rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
#[allow(clippy::upper_case_acronyms)]
pub enum Incoterm {
    /// Ex Works.
    EXW,
    /// Free Carrier.
    FCA,
    /// Carriage Paid To.
    CPT,
    /// Carriage and Insurance Paid To.
    CIP,
    /// Delivered at Place.
    DAP,
    /// Delivered at Place Unloaded.
    DPU,
    /// Delivered Duty Paid.
    DDP,
    /// Free Alongside Ship.
    FAS,
    /// Free On Board.
    FOB,
    /// Cost and Freight.
    CFR,
    /// Cost, Insurance and Freight.
    CIF,
}

impl Incoterm {
    /// All eleven rules, in the order of the Incoterms 2020 publication's index.
    pub const ALL: [Incoterm; 11] = [
        Incoterm::EXW,
        Incoterm::FCA,
        Incoterm::CPT,
        Incoterm::CIP,
        Incoterm::DAP,
        Incoterm::DPU,
        Incoterm::DDP,
        Incoterm::FAS,
        Incoterm::FOB,
        Incoterm::CFR,
        Incoterm::CIF,
    ];

    /// The three-letter code.
    pub fn code(self) -> &'static str {
        match self {
            Incoterm::EXW => "EXW",
            Incoterm::FCA => "FCA",
            Incoterm::CPT => "CPT",
            Incoterm::CIP => "CIP",
            Incoterm::DAP => "DAP",
            Incoterm::DPU => "DPU",
            Incoterm::DDP => "DDP",
            Incoterm::FAS => "FAS",
            Incoterm::FOB => "FOB",
            Incoterm::CFR => "CFR",
            Incoterm::CIF => "CIF",
        }
    }

    /// Parses a code. Rules withdrawn before Incoterms 2020 get a message naming their
    /// replacement (DDU and DAF, DES, DEQ became DAP; DAT became DPU).
    pub fn parse(code: &str) -> Result<Incoterm, String> {
        if let Some(rule) = Incoterm::ALL.iter().find(|r| r.code() == code) {
            return Ok(*rule);
        }
        Err(match code {
            "DDU" | "DAF" | "DES" | "DEQ" => {
                format!("{code} is not an Incoterms 2020 rule; use DAP, which replaced it")
            }
            "DAT" => "DAT is not an Incoterms 2020 rule; use DPU, which replaced it".into(),
            _ => format!(
                "{code:?} is not an Incoterms 2020 rule; expected one of EXW, FCA, CPT, CIP, DAP, DPU, DDP, FAS, FOB, CFR, CIF"
            ),
        })
    }
}

impl<'de> Deserialize<'de> for Incoterm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let code = String::deserialize(deserializer)?;
            Incoterm::parse(&code).map_err(D::Error::custom)
        } else {
            // The binary form is the variant index, as serde's derive would write it.
            struct IndexVisitor;
            impl<'de> serde::de::Visitor<'de> for IndexVisitor {
                type Value = Incoterm;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an Incoterm variant")
                }
                fn visit_enum<A: serde::de::EnumAccess<'de>>(
                    self,
                    data: A,
                ) -> Result<Incoterm, A::Error> {
                    use serde::de::VariantAccess;
                    let (index, variant): (u32, _) = data.variant()?;
                    variant.unit_variant()?;
                    Incoterm::ALL
                        .get(index as usize)
                        .copied()
                        .ok_or_else(|| A::Error::custom(format!("no Incoterm with index {index}")))
                }
            }
            const NAMES: &[&str] = &[
                "EXW", "FCA", "CPT", "CIP", "DAP", "DPU", "DDP", "FAS", "FOB", "CFR", "CIF",
            ];
            deserializer.deserialize_enum("Incoterm", NAMES, IndexVisitor)
        }
    }
}

/// An amount of money in ISO 4217 minor units of its currency. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Money {
    /// Amount in minor units (cents, pence; yen have none, so yen are units).
    pub amount_minor: u64,
    /// The currency.
    pub currency: CurrencyCode,
}

/// A tax or trade registration number of a party, such as an EORI, IOSS or VAT number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaxId {
    /// The scheme: `EORI`, `IOSS`, `VAT`, `ABN`, `ARN`, `EIN`, `BN`…
    pub scheme: String,
    /// The number as issued.
    pub value: String,
}

/// A trading party named on an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Party {
    /// Legal name.
    pub name: String,
    /// Country of establishment.
    pub country: CountryCode,
    /// Registration numbers.
    pub tax_ids: Vec<TaxId>,
}

/// The buyer named on an invoice. The buyer may be a natural person, so what identifies
/// them is on the ledger only as salted commitments (`crate::personal`); the values stay off
/// the ledger with the shipment's parties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Buyer {
    /// Commitment to the buyer's name (`buyer.name`).
    pub name_commitment: Digest,
    /// Commitment to the buyer's address (`buyer.address`), if the invoice gives one.
    pub address_commitment: Option<Digest>,
    /// Country of the buyer.
    pub country: CountryCode,
    /// Business registrations (EORI, VAT, ...), in plain text: a buyer with one is a business.
    pub tax_ids: Vec<TaxId>,
    /// Commitment to a private buyer's personal tax id (`buyer.personal_id`). It counts for
    /// nothing in business decisions: a hidden id cannot make a buyer a business.
    pub personal_id_commitment: Option<Digest>,
}

/// A physical parcel, identified by its GS1 Serial Shipping Container Code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Parcel {
    /// The 18-digit SSCC.
    pub sscc: String,
    /// Gross weight.
    pub gross_weight_grams: u64,
}

/// One line of a commercial invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvoiceLine {
    /// Line number, unique within the invoice.
    pub line_no: u32,
    /// Plain description of the goods.
    pub description: String,
    /// Harmonized System code as declared (digits, possibly with dots).
    pub hs_code: String,
    /// Optional GS1 GTIN of the product.
    pub gtin: Option<String>,
    /// Number of units.
    pub quantity: u64,
    /// Unit of measure (UN/ECE Rec 20 code such as `PCE` or `KGM`).
    pub unit: String,
    /// Price of one unit in minor units of the invoice currency.
    pub unit_value_minor: u64,
    /// Net weight of the whole line, for specific duties per kilogram.
    pub net_weight_grams: u64,
    /// Country of origin of the goods.
    pub origin_country: CountryCode,
}

/// The commercial invoice of a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommercialInvoice {
    /// Invoice number.
    pub number: String,
    /// Issue date.
    pub issued_at: Timestamp,
    /// Invoice currency; every line is in it.
    pub currency: CurrencyCode,
    /// The seller.
    pub seller: Party,
    /// The buyer.
    pub buyer: Buyer,
    /// The goods.
    pub lines: Vec<InvoiceLine>,
    /// Σ quantity × unit value over the lines, in minor units.
    pub total_minor: u64,
    /// International freight stated separately on the invoice (0 if none).
    pub freight_minor: u64,
    /// Insurance stated separately on the invoice (0 if none).
    pub insurance_minor: u64,
}

/// One line of a packing list: how much of an invoice line is in which parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackingLine {
    /// The parcel.
    pub sscc: String,
    /// The invoice line.
    pub invoice_line: u32,
    /// Units of that line in the parcel.
    pub quantity: u64,
}

/// The packing list of a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PackingList {
    /// Lines, parcel by parcel.
    pub lines: Vec<PackingLine>,
}

/// Kinds of transport document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TransportDocumentKind {
    /// IATA air waybill (11 digits: airline prefix and serial with check digit).
    AirWaybill,
    /// Ocean bill of lading.
    BillOfLading,
    /// CMR road consignment note.
    RoadConsignmentNote,
    /// CIM rail consignment note.
    RailConsignmentNote,
    /// An express courier's own waybill.
    CourierWaybill,
}

/// A transport document covering a leg of the journey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TransportDocument {
    /// What kind of document.
    pub kind: TransportDocumentKind,
    /// Its number.
    pub number: String,
}

/// The seller registers a shipment and becomes its first custodian.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShipmentRegistered {
    /// The new shipment's id.
    pub shipment_id: ShipmentId,
    /// Its parcels.
    pub parcels: Vec<Parcel>,
    /// Country of dispatch.
    pub origin: CountryCode,
    /// Country of destination.
    pub destination: CountryCode,
    /// The Incoterms 2020 rule of the sale.
    pub incoterm: Incoterm,
    /// The named place of the Incoterm.
    pub incoterm_place: String,
    /// The commercial invoice.
    pub invoice: CommercialInvoice,
    /// The packing list.
    pub packing_list: PackingList,
}

/// The custodian proposes to hand the shipment to another member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HandoffProposed {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The proposed next custodian.
    pub to: MemberId,
    /// Where, as a UN/LOCODE (`DEHAM`).
    pub place: String,
    /// The transport document of the next leg, if any.
    pub transport_document: Option<TransportDocument>,
}

/// The proposed receiver accepts a handoff; custody moves now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HandoffAccepted {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The `HandoffProposed` event being accepted.
    pub proposal: EventId,
}

/// Which valuation basis a customs value uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
#[allow(clippy::upper_case_acronyms)]
pub enum ValuationBasis {
    /// Cost, insurance and freight to the border of the importing country.
    CIF,
    /// Free on board at the place of export.
    FOB,
}

/// An exact exchange rate: one unit of `from` is `numerator / denominator` units of `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExchangeRate {
    /// Currency converted from (the invoice's).
    pub from: CurrencyCode,
    /// Currency converted to (the declaration's).
    pub to: CurrencyCode,
    /// Numerator of the rate.
    pub numerator: u64,
    /// Denominator of the rate; never zero.
    pub denominator: u64,
}

/// How the goods of a customs declaration crossed the border. Some low-value regimes depend
/// on it: Canada remits duty and tax on mail up to C$20 under the Postal Imports Remission
/// Order whatever the origin, and on courier shipments from the US or Mexico up to C$150 and
/// C$40 under the Courier Imports Remission Order (rules version 2 on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TransportMode {
    /// By the post (a designated postal operator, UPU mail).
    Postal,
    /// By an express courier: a commercial carrier in scheduled international transport of
    /// shipments, other than mail.
    Courier,
    /// By any other commercial carrier (air, sea, road or rail freight).
    Freight,
}

/// Which country a de minimis rule's `origins` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OriginBasis {
    /// The country the shipment is dispatched from (Canada's CUSMA thresholds: the place of
    /// direct shipment).
    #[default]
    Dispatch,
    /// The country of origin of any of the goods (the US withdrawal of de minimis for products
    /// of China and Hong Kong); rules version 2 on.
    Goods,
}

/// How import taxes are settled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CustomsRegime {
    /// Duty and tax assessed and paid at import.
    Full,
    /// Duty relieved under a low-value (de minimis) threshold; tax as the jurisdiction says.
    DeMinimisRelief,
    /// Tax was collected at the sale by a registered seller or marketplace.
    TaxCollectedAtSale {
        /// The registration used (IOSS number, UK VAT number, ABN or ARN…).
        registration_id: String,
    },
}

/// Duty and tax of one invoice line, as declared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeclarationLine {
    /// The invoice line declared.
    pub invoice_line: u32,
    /// Tariff classification in the importing jurisdiction's length.
    pub hs_code: String,
    /// Customs value of the line in the declaration currency, minor units.
    pub customs_value_minor: u64,
    /// Duty on the line, minor units.
    pub duty_minor: u64,
    /// Import VAT/GST on the line, minor units.
    pub tax_minor: u64,
}

/// A customs broker declares the shipment in a jurisdiction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomsDeclared {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The broker's declaration reference.
    pub declaration_ref: String,
    /// Where the goods are declared.
    pub jurisdiction: CountryCode,
    /// How the goods crossed the border into the jurisdiction.
    pub transport_mode: TransportMode,
    /// Currency of all amounts in the declaration.
    pub currency: CurrencyCode,
    /// Valuation basis used.
    pub valuation_basis: ValuationBasis,
    /// Total customs value, minor units.
    pub customs_value_minor: u64,
    /// Freight added (CIF) or deducted (FOB) in reaching the customs value.
    pub freight_minor: u64,
    /// Insurance added or deducted likewise.
    pub insurance_minor: u64,
    /// Rate from the invoice currency, when it differs.
    pub exchange_rate: Option<ExchangeRate>,
    /// The regime claimed.
    pub regime: CustomsRegime,
    /// Per-line duty and tax.
    pub lines: Vec<DeclarationLine>,
    /// Σ line duty.
    pub duty_total_minor: u64,
    /// Σ line tax.
    pub tax_total_minor: u64,
}

/// Someone pays duty and tax for a declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DutyPaid {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The `CustomsDeclared` event paid for.
    pub declaration: EventId,
    /// The amount, in the declaration's currency.
    pub amount: Money,
    /// Bank or customs payment reference.
    pub payment_reference: String,
}

/// What customs decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClearanceOutcome {
    /// Goods released for free circulation.
    Release,
    /// Goods held (documents, payment, suspicion).
    Hold,
    /// Goods held for physical inspection.
    Inspection,
}

/// A customs broker records the authority's decision on a declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CustomsCleared {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The `CustomsDeclared` event decided.
    pub declaration: EventId,
    /// The decision.
    pub outcome: ClearanceOutcome,
    /// The authority's reference for the decision (MRN or similar).
    pub authority_reference: String,
    /// Free-text reason, for holds and inspections.
    pub reason: String,
}

/// Kinds of proof of delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProofKind {
    /// The recipient's signature image.
    Signature,
    /// A photo of the parcel at the door.
    Photo,
    /// A one-time code the recipient read out.
    OneTimeCode,
}

/// The custodian (a carrier) delivers the shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivered {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// Where, as a UN/LOCODE.
    pub place: String,
    /// What the proof is.
    pub proof_kind: ProofKind,
    /// SHA-256 of the proof (the image or code is kept off the ledger).
    pub proof_hash: Digest,
    /// Commitment to who received it, as written on the proof (`received_by`): a person's
    /// name is personal data and stays off the ledger.
    pub received_by_commitment: Digest,
}

/// Units of one invoice line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LineQuantity {
    /// The invoice line.
    pub invoice_line: u32,
    /// How many units.
    pub quantity: u64,
}

/// The seller authorises a return of some lines of a delivered shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReturnRequested {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// Return merchandise authorisation number, unique within the shipment.
    pub rma: String,
    /// What comes back.
    pub lines: Vec<LineQuantity>,
    /// Why.
    pub reason: String,
}

/// What happens to returned goods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    /// Back to stock.
    Resellable,
    /// Damaged.
    Damaged,
    /// Destroyed.
    Destroyed,
}

/// A returned line with its disposition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReturnedLine {
    /// The invoice line.
    pub invoice_line: u32,
    /// Units received back.
    pub quantity: u64,
    /// What was done with them.
    pub disposition: Disposition,
}

/// The seller records goods received back under an RMA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReturnReceived {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The RMA of the request this fulfils.
    pub rma: String,
    /// What arrived.
    pub lines: Vec<ReturnedLine>,
}

/// An issuer attests the hash and type of an external document about a shipment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocumentAttested {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// Document type, such as `certificate_of_origin` or `inspection_report`.
    pub document_type: String,
    /// SHA-256 of the document.
    pub document_hash: Digest,
    /// The document's own number.
    pub reference: String,
}

/// A carrier or the custodian records an observation of the shipment, or of some of its
/// parcels, between handoffs: a tracking scan. It records; it never moves custody.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrackingScanRecorded {
    /// The shipment.
    pub shipment_id: ShipmentId,
    /// The parcels observed, by SSCC (18 digits); empty means the whole shipment.
    pub parcels: Vec<String>,
    /// What happened: a CBV 2.0 bizStep short name (`departing`, `arriving`, `transporting`,
    /// `loading`, `unloading`, `holding`, `inspecting`, `receiving`, `shipping`, ...) or an
    /// absolute URI of another vocabulary (http/https/urn).
    pub biz_step: String,
    /// The state the goods are left in: a CBV 2.0 disposition short name (`in_transit`,
    /// `in_progress`, `damaged`, `returned`, ...) or an absolute URI.
    pub disposition: String,
    /// Where the scan was read, a UN/LOCODE.
    pub read_point: String,
    /// The read point's GLN (13 digits, GS1 check digit), when the carrier has one.
    pub read_point_gln: Option<String>,
    /// The business location the goods are at after the scan, a UN/LOCODE.
    pub biz_location: String,
    /// Sensor readings taken with the scan.
    pub sensor_readings: Vec<SensorReading>,
    /// Whether the scan reports an exception (a failed delivery attempt, damage, an excursion).
    pub exception: bool,
}

/// The seller or an admin records that the personal data of a shipment was erased off the
/// ledger (GDPR): the values and salts of its commitments are gone, so they can no longer be
/// disclosed. The commitments stay; no proof breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonalDataErased {
    /// The shipment.
    pub shipment_id: ShipmentId,
}

/// One sensor reading, in integer thousandths of its unit (no floats on the ledger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SensorReading {
    /// The CBV/EPCIS measurement type short name, such as `Temperature`, `RelativeHumidity`,
    /// `AbsoluteHumidity`, `Illuminance`, `Vibration`, `Shock` ... (or a URI).
    pub kind: String,
    /// UN/CEFACT Recommendation 20 unit code, such as `CEL`, `P1` (percent), `LUX`.
    pub unit: String,
    /// The value, in thousandths of the unit.
    pub value_milli: i64,
    /// The lower limit of the allowed range, if the shipment has one.
    pub min_milli: Option<i64>,
    /// The upper limit.
    pub max_milli: Option<i64>,
}

/// A duty rate. Rates are integers in parts per million of the customs value (27,000 ppm is
/// 2.7 %), amounts are minor units; no floats anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DutyRate {
    /// A percentage of the customs value.
    AdValorem {
        /// Rate in parts per million.
        rate_ppm: u32,
    },
    /// An amount per quantity of a unit (per kilogram, per item, per litre).
    Specific {
        /// Minor units per `per_quantity` of `unit`.
        amount_minor: u64,
        /// The unit (`KGM`, `PCE`, `LTR`).
        unit: String,
        /// How many units the amount is for (1 for "per kg", 100 for "per 100 kg").
        per_quantity: u64,
    },
    /// Ad valorem plus specific.
    Compound {
        /// Ad valorem part, parts per million.
        rate_ppm: u32,
        /// Specific part, minor units per `per_quantity` of `unit`.
        amount_minor: u64,
        /// The unit of the specific part.
        unit: String,
        /// Quantity the specific amount is for.
        per_quantity: u64,
    },
}

/// One tariff line: the rate for all codes starting with `hs_prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TariffLine {
    /// Digits of the HS code this line covers; the longest matching prefix wins.
    pub hs_prefix: String,
    /// The rate.
    pub rate: DutyRate,
}

/// A jurisdiction's tariff, with its import VAT/GST rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TariffTable {
    /// Jurisdiction.
    pub jurisdiction: CountryCode,
    /// Currency of specific amounts.
    pub currency: CurrencyCode,
    /// Standard import VAT/GST rate, parts per million.
    pub vat_rate_ppm: u32,
    /// Tariff lines.
    pub lines: Vec<TariffLine>,
}

/// A low-value (de minimis) regime: what relief applies to consignments of low intrinsic
/// value (the goods alone, without transport and insurance) in some jurisdictions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeMinimisRule {
    /// Jurisdictions the rule applies in (the EU rule lists every member state).
    pub jurisdictions: Vec<CountryCode>,
    /// Countries the rule applies to (of dispatch, or of the goods' origin: see `origins_are`);
    /// empty means every origin. Rules are tried in table order, so origin-specific rules come
    /// before the general one.
    pub origins: Vec<CountryCode>,
    /// Currency of the thresholds and of the flat duty.
    pub currency: CurrencyCode,
    /// No customs duty at or below this intrinsic value; `None`: no duty relief.
    pub duty_free_max_minor: Option<u64>,
    /// Instead of full relief, a flat duty per item category at or below the duty threshold.
    pub flat_duty_per_category_minor: Option<u64>,
    /// No import tax at or below this value; `None`: import tax is always due.
    pub tax_free_max_minor: Option<u64>,
    /// At or below this value a registered seller may collect the tax at the sale instead.
    pub collected_at_sale_max_minor: Option<u64>,
    /// Registration schemes accepted for collection at sale (`IOSS`, `VAT`, `ABN`, `ARN`).
    pub collected_at_sale_schemes: Vec<String>,
    /// The legal source of the rule and its effective date.
    pub source: String,
    /// Transport modes the rule applies to; empty means every mode. Rules version 1 ignores it.
    #[serde(default)]
    pub transport_modes: Vec<TransportMode>,
    /// What `origins` name. Rules version 1 reads them as countries of dispatch whatever this
    /// says.
    #[serde(default)]
    pub origins_are: OriginBasis,
}

/// A de minimis table: the rules of one or more jurisdictions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeMinimisTable {
    /// The rules.
    pub rules: Vec<DeMinimisRule>,
}

/// An HS nomenclature edition: the six-digit subheadings that exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HsNomenclature {
    /// Edition, such as `HS2022`.
    pub edition: String,
    /// Six-digit subheadings, sorted ascending, no duplicates.
    pub subheadings: Vec<String>,
}

/// Reference data that rule modules evaluate events against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReferenceData {
    /// A nomenclature.
    HsNomenclature(HsNomenclature),
    /// A tariff.
    Tariff(TariffTable),
    /// De minimis rules.
    DeMinimis(DeMinimisTable),
}

/// A customs authority publishes reference data, in force from a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReferenceDataPublished {
    /// Name of the table series (`tariff/QX`); a later publication with the same id and a
    /// later `effective_from` supersedes it from that date.
    pub table_id: String,
    /// When it comes into force.
    pub effective_from: Timestamp,
    /// The data.
    pub data: ReferenceData,
}

/// A member as admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// Stable id.
    pub id: MemberId,
    /// Organisation name.
    pub name: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// Event-signing key.
    pub key: PublicKey,
}

/// A change to the member set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MembershipChange {
    /// Admit a new member.
    Admit {
        /// The new member.
        member: Member,
    },
    /// Replace a member's signing key. Events signed with the old key stay valid.
    RotateKey {
        /// Whose key.
        member: MemberId,
        /// The new key.
        new_key: PublicKey,
    },
    /// Revoke a member: its key signs nothing more.
    Revoke {
        /// Who.
        member: MemberId,
        /// Why.
        reason: String,
    },
    /// Schedule a rules version from a future height on. It takes the admins' quorum like a
    /// membership change: which rules judge events is as much the network's constitution as
    /// who may sign them. Blocks below `from_height` keep the version they were judged with.
    ScheduleRules {
        /// The activation.
        activation: RulesActivation,
    },
}

/// From which block height a rules version applies: one entry of the rules schedule of
/// genesis and of `ScheduleRules` changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RulesActivation {
    /// The rules version (1 is the first release).
    pub version: u32,
    /// The first height it judges.
    pub from_height: u64,
}

/// An admin's co-signature on a membership change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approval {
    /// The admin's key.
    pub admin: PublicKey,
    /// Signature over [`crate::event::membership_approval_message`].
    pub signature: Signature,
}

/// A membership change with the admins' approvals. The event's signer must be an admin and
/// counts as one approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MembershipChanged {
    /// The change.
    pub change: MembershipChange,
    /// Co-signatures of other admins.
    pub approvals: Vec<Approval>,
}

/// The payload of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventKind {
    /// See [`ShipmentRegistered`].
    ShipmentRegistered(ShipmentRegistered),
    /// See [`HandoffProposed`].
    HandoffProposed(HandoffProposed),
    /// See [`HandoffAccepted`].
    HandoffAccepted(HandoffAccepted),
    /// See [`CustomsDeclared`].
    CustomsDeclared(CustomsDeclared),
    /// See [`DutyPaid`].
    DutyPaid(DutyPaid),
    /// See [`CustomsCleared`].
    CustomsCleared(CustomsCleared),
    /// See [`Delivered`].
    Delivered(Delivered),
    /// See [`ReturnRequested`].
    ReturnRequested(ReturnRequested),
    /// See [`ReturnReceived`].
    ReturnReceived(ReturnReceived),
    /// See [`DocumentAttested`].
    DocumentAttested(DocumentAttested),
    /// See [`ReferenceDataPublished`].
    ReferenceDataPublished(ReferenceDataPublished),
    /// See [`MembershipChanged`].
    MembershipChanged(MembershipChanged),
    /// See [`TrackingScanRecorded`]. Appended last (index 12, format v2) so that the
    /// encodings of the kinds before it are unchanged.
    TrackingScanRecorded(TrackingScanRecorded),
    /// See [`PersonalDataErased`]. Appended last (index 13, format v4).
    PersonalDataErased(PersonalDataErased),
}

impl EventKind {
    /// The kind's name as the API and documents spell it.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::ShipmentRegistered(_) => "ShipmentRegistered",
            EventKind::HandoffProposed(_) => "HandoffProposed",
            EventKind::HandoffAccepted(_) => "HandoffAccepted",
            EventKind::CustomsDeclared(_) => "CustomsDeclared",
            EventKind::DutyPaid(_) => "DutyPaid",
            EventKind::CustomsCleared(_) => "CustomsCleared",
            EventKind::Delivered(_) => "Delivered",
            EventKind::ReturnRequested(_) => "ReturnRequested",
            EventKind::ReturnReceived(_) => "ReturnReceived",
            EventKind::DocumentAttested(_) => "DocumentAttested",
            EventKind::ReferenceDataPublished(_) => "ReferenceDataPublished",
            EventKind::MembershipChanged(_) => "MembershipChanged",
            EventKind::TrackingScanRecorded(_) => "TrackingScanRecorded",
            EventKind::PersonalDataErased(_) => "PersonalDataErased",
        }
    }

    /// The shipment the event is about; membership and reference data name none.
    pub fn shipment_id(&self) -> Option<&ShipmentId> {
        match self {
            EventKind::ShipmentRegistered(e) => Some(&e.shipment_id),
            EventKind::HandoffProposed(e) => Some(&e.shipment_id),
            EventKind::HandoffAccepted(e) => Some(&e.shipment_id),
            EventKind::CustomsDeclared(e) => Some(&e.shipment_id),
            EventKind::DutyPaid(e) => Some(&e.shipment_id),
            EventKind::CustomsCleared(e) => Some(&e.shipment_id),
            EventKind::Delivered(e) => Some(&e.shipment_id),
            EventKind::ReturnRequested(e) => Some(&e.shipment_id),
            EventKind::ReturnReceived(e) => Some(&e.shipment_id),
            EventKind::DocumentAttested(e) => Some(&e.shipment_id),
            EventKind::TrackingScanRecorded(e) => Some(&e.shipment_id),
            EventKind::PersonalDataErased(e) => Some(&e.shipment_id),
            EventKind::ReferenceDataPublished(_) | EventKind::MembershipChanged(_) => None,
        }
    }
}

/// The signed body of an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// The network's chain id, so an event cannot be replayed on another network.
    pub chain_id: String,
    /// When the signer says it happened. Consensus time is the block's, not this.
    pub occurred_at: Timestamp,
    /// The payload.
    pub kind: EventKind,
}

/// An event with its signer's key and signature, as submitted, gossiped and stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedEvent {
    /// The body.
    pub event: Event,
    /// The signer's public key.
    pub signer: PublicKey,
    /// ed25519 signature over [`crate::event::signing_message`] of the body.
    pub signature: Signature,
}
