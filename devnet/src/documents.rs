//! Trade documents for the demo and the benchmark: parcels with valid SSCCs, invoices, air
//! waybills, and declarations whose amounts come from `custody_contracts::customs::assess`,
//! exactly as the validators compute them.

use anyhow::anyhow;
use custody_contracts::customs;
use custody_contracts::identifiers::gs1_check_digit;
use custody_contracts::ReferenceBook;
use custody_ledger::model::*;
use custody_ledger::personal::{commitment, Salt};
use custody_ledger::state::{ShipmentState, ShipmentStatus};
use custody_ledger::{Digest, Timestamp};

/// GS1's example company prefix (from the GS1 General Specifications), with extension digit
/// 1: the SSCCs here are well formed and belong to no real company.
const SSCC_PREFIX: &str = "10614141";

/// An SSCC: extension digit and company prefix, a nine-digit serial reference, and the GS1
/// check digit.
pub fn sscc(serial: u64) -> String {
    let body = format!("{SSCC_PREFIX}{:09}", serial % 1_000_000_000);
    let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
    format!("{body}{}", gs1_check_digit(&digits))
}

/// An IATA air waybill number: airline prefix `020`, a seven-digit serial and its mod-7 check
/// digit.
pub fn awb(serial: u64) -> String {
    let serial = serial % 10_000_000;
    format!("020{serial:07}{}", serial % 7)
}

/// An ISO 3166 code written in this crate.
pub fn country(code: &str) -> CountryCode {
    CountryCode::parse(code).expect("the devnet writes valid country codes")
}

/// An ISO 4217 code written in this crate.
pub fn currency(code: &str) -> CurrencyCode {
    CurrencyCode::parse(code).expect("the devnet writes valid currency codes")
}

/// A party without registrations.
pub fn party(name: &str, country_code: &str) -> Party {
    Party {
        name: name.into(),
        country: country(country_code),
        tax_ids: vec![],
    }
}

/// The buyer as the ledger holds it: the name committed under `salt` (kept off the ledger with
/// the name, as a disclosure), the country and business registrations in plain text.
pub fn committed_buyer(buyer: &Party, salt: &Salt) -> Buyer {
    Buyer {
        name_commitment: commitment(&buyer.name, salt),
        address_commitment: None,
        country: buyer.country,
        tax_ids: buyer.tax_ids.clone(),
        personal_id_commitment: None,
    }
}

/// Goods on one invoice line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Goods {
    /// Plain description.
    pub description: &'static str,
    /// HS code as invoiced (six digits).
    pub hs_code: &'static str,
    /// Units.
    pub quantity: u64,
    /// Unit of measure (`PCE`).
    pub unit: &'static str,
    /// Price of one unit, minor units of the invoice currency.
    pub unit_value_minor: u64,
    /// Net weight of the whole line.
    pub net_weight_grams: u64,
}

/// What a registration says beyond its goods.
#[derive(Debug, Clone)]
pub struct Sale {
    /// Country of dispatch.
    pub origin: &'static str,
    /// Country of destination.
    pub destination: &'static str,
    /// Incoterm.
    pub incoterm: Incoterm,
    /// Its named place.
    pub incoterm_place: &'static str,
    /// Invoice currency.
    pub currency: &'static str,
    /// The seller on the invoice.
    pub seller: Party,
    /// The buyer on the invoice, as the seller knows them. Only a commitment to the name goes
    /// onto the ledger (see [`committed_buyer`]).
    pub buyer: Party,
    /// Freight stated on the invoice.
    pub freight_minor: u64,
    /// Insurance stated on the invoice.
    pub insurance_minor: u64,
}

/// A registration of one parcel holding `goods`, the invoice total computed from the lines;
/// the buyer's name committed under `buyer_salt`.
pub fn registration(
    shipment_id: &str,
    sale: &Sale,
    goods: &[Goods],
    parcel_serial: u64,
    issued_at: Timestamp,
    buyer_salt: &Salt,
) -> ShipmentRegistered {
    let parcel = sscc(parcel_serial);
    let lines: Vec<InvoiceLine> = goods
        .iter()
        .zip(1u32..)
        .map(|(g, line_no)| InvoiceLine {
            line_no,
            description: g.description.into(),
            hs_code: g.hs_code.into(),
            gtin: None,
            quantity: g.quantity,
            unit: g.unit.into(),
            unit_value_minor: g.unit_value_minor,
            net_weight_grams: g.net_weight_grams,
            origin_country: country(sale.origin),
        })
        .collect();
    let total_minor = lines.iter().map(|l| l.quantity * l.unit_value_minor).sum();
    let net: u64 = lines.iter().map(|l| l.net_weight_grams).sum();
    ShipmentRegistered {
        shipment_id: ShipmentId::new(shipment_id),
        parcels: vec![Parcel {
            sscc: parcel.clone(),
            // Net weight plus packaging.
            gross_weight_grams: net + net / 5 + 150,
        }],
        origin: country(sale.origin),
        destination: country(sale.destination),
        incoterm: sale.incoterm,
        incoterm_place: sale.incoterm_place.into(),
        invoice: CommercialInvoice {
            number: format!("INV-{shipment_id}"),
            issued_at,
            currency: currency(sale.currency),
            seller: sale.seller.clone(),
            buyer: committed_buyer(&sale.buyer, buyer_salt),
            lines: lines.clone(),
            total_minor,
            freight_minor: sale.freight_minor,
            insurance_minor: sale.insurance_minor,
        },
        packing_list: PackingList {
            lines: lines
                .iter()
                .map(|l| PackingLine {
                    sscc: parcel.clone(),
                    invoice_line: l.line_no,
                    quantity: l.quantity,
                })
                .collect(),
        },
    }
}

/// What a broker chooses when declaring; [`declaration`] computes the amounts.
#[derive(Debug, Clone)]
pub struct Choices {
    /// The broker's reference.
    pub reference: String,
    /// Where the goods are declared.
    pub jurisdiction: &'static str,
    /// The declaration currency.
    pub currency: &'static str,
    /// The rate from the invoice currency, when it differs.
    pub exchange_rate: Option<ExchangeRate>,
    /// The regime claimed.
    pub regime: CustomsRegime,
    /// Classification of each invoice line, in the jurisdiction's length.
    pub hs_codes: Vec<&'static str>,
}

/// A declaration of `shipment` with `choices`, every amount filled in by
/// `customs::assess` against `book` at time `at`, as the validators will check it.
pub fn declaration(
    book: &ReferenceBook,
    at: Timestamp,
    shipment: &ShipmentState,
    choices: &Choices,
) -> anyhow::Result<CustomsDeclared> {
    let jurisdiction = country(choices.jurisdiction);
    let valuation_basis = customs::valuation_basis(jurisdiction)
        .ok_or_else(|| anyhow!("no valuation basis is known for {jurisdiction}"))?;
    let mut decl = CustomsDeclared {
        shipment_id: shipment.shipment_id.clone(),
        declaration_ref: choices.reference.clone(),
        jurisdiction,
        // The devnet's parcels travel by express courier.
        transport_mode: TransportMode::Courier,
        currency: currency(choices.currency),
        valuation_basis,
        customs_value_minor: 0,
        freight_minor: 0,
        insurance_minor: 0,
        exchange_rate: choices.exchange_rate,
        regime: choices.regime.clone(),
        lines: shipment
            .invoice
            .lines
            .iter()
            .zip(&choices.hs_codes)
            .map(|(line, hs)| DeclarationLine {
                invoice_line: line.line_no,
                hs_code: (*hs).into(),
                customs_value_minor: 0,
                duty_minor: 0,
                tax_minor: 0,
            })
            .collect(),
        duty_total_minor: 0,
        tax_total_minor: 0,
    };
    // The devnet schedules the newest rules version from its first block.
    let version = custody_contracts::registry::LATEST_RULES_VERSION;
    let assessment =
        customs::assess(version, book, at, shipment, &decl, "declaration").map_err(|r| {
            anyhow!(
                "the declaration of {} cannot be assessed: {r}",
                shipment.shipment_id
            )
        })?;
    customs::complete(&mut decl, &assessment);
    Ok(decl)
}

/// The state a registered shipment will have once in transit, as far as an assessment reads
/// it (the invoice, origin, destination and Incoterm): what a broker's software knows before
/// the registration is even submitted. The benchmark signs its declarations in advance with
/// it.
pub fn projected_state(registration: &ShipmentRegistered, seller: &str) -> ShipmentState {
    ShipmentState {
        shipment_id: registration.shipment_id.clone(),
        status: ShipmentStatus::InTransit,
        seller: MemberId::new(seller),
        custodian: MemberId::new(seller),
        origin: registration.origin,
        destination: registration.destination,
        incoterm: registration.incoterm,
        registered_event: Digest::ZERO,
        registered_at: Timestamp(0),
        updated_at: Timestamp(0),
        last_place: None,
        pending_handoff: None,
        declaration: None,
        released_in: Vec::new(),
        invoice: registration.invoice.clone(),
        arrived_in_destination: true,
        returns: Vec::new(),
        event_count: 0,
        last_event: Digest::ZERO,
        personal_erased: false,
        head_entry: None,
    }
}

/// The seller of the demo's and the benchmark's parcels.
pub fn acme() -> Party {
    party("Acme Trading Co., Ltd.", "CN")
}

/// Two cotton T-shirts, 150.00 EUR, DDP Paris: an EU parcel under the low-value relief.
pub fn paris_parcel() -> (Sale, Vec<Goods>) {
    let sale = Sale {
        origin: "CN",
        destination: "FR",
        incoterm: Incoterm::DDP,
        incoterm_place: "Paris",
        currency: "EUR",
        seller: acme(),
        buyer: party("Camille Martin", "FR"),
        freight_minor: 0,
        insurance_minor: 0,
    };
    let goods = vec![Goods {
        description: "Organic cotton T-shirt",
        hs_code: "6109.10",
        quantity: 2,
        unit: "PCE",
        unit_value_minor: 7_500,
        net_weight_grams: 360,
    }];
    (sale, goods)
}

/// Boots and a dinner set, FOB Shanghai, to the sample jurisdiction QX: fully assessed.
pub fn qx_parcel() -> (Sale, Vec<Goods>) {
    let sale = Sale {
        origin: "CN",
        destination: "QX",
        incoterm: Incoterm::FOB,
        incoterm_place: "Shanghai",
        currency: "EUR",
        seller: acme(),
        buyer: party("Harbour Home Stores", "QX"),
        freight_minor: 3_500,
        insurance_minor: 400,
    };
    let goods = vec![
        Goods {
            description: "Leather ankle boots, pair",
            hs_code: "6403.99",
            quantity: 2,
            unit: "PCE",
            unit_value_minor: 8_900,
            net_weight_grams: 1_800,
        },
        Goods {
            description: "Stoneware dinner set",
            hs_code: "6912.00",
            quantity: 1,
            unit: "PCE",
            unit_value_minor: 6_400,
            net_weight_grams: 4_200,
        },
    ];
    (sale, goods)
}

/// A handbag and a laptop, 830.00 USD, DAP Port Quill, to the sample jurisdiction QY.
pub fn quill_parcel() -> (Sale, Vec<Goods>) {
    let sale = Sale {
        origin: "CN",
        destination: "QY",
        incoterm: Incoterm::DAP,
        incoterm_place: "Port Quill, QY",
        currency: "USD",
        seller: acme(),
        buyer: party("Quill Outfitters Ltd.", "QY"),
        freight_minor: 4_500,
        insurance_minor: 800,
    };
    let goods = vec![
        Goods {
            description: "Leather handbag",
            hs_code: "4202.21",
            quantity: 1,
            unit: "PCE",
            unit_value_minor: 18_000,
            net_weight_grams: 900,
        },
        Goods {
            description: "Portable computer, 14-inch",
            hs_code: "8471.30",
            quantity: 1,
            unit: "PCE",
            unit_value_minor: 65_000,
            net_weight_grams: 1_400,
        },
    ];
    (sale, goods)
}

/// A laptop and two T-shirts, 998.00 USD, DAP Lyon: invoiced in US dollars, declared in France
/// in euros.
pub fn lyon_parcel() -> (Sale, Vec<Goods>) {
    let sale = Sale {
        origin: "CN",
        destination: "FR",
        incoterm: Incoterm::DAP,
        incoterm_place: "Lyon",
        currency: "USD",
        seller: acme(),
        buyer: party("Louis Bernard", "FR"),
        freight_minor: 2_500,
        insurance_minor: 0,
    };
    let goods = vec![
        Goods {
            description: "Portable computer, 14-inch",
            hs_code: "8471.30",
            quantity: 1,
            unit: "PCE",
            unit_value_minor: 94_900,
            net_weight_grams: 1_400,
        },
        Goods {
            description: "Cotton T-shirt",
            hs_code: "6109.10",
            quantity: 2,
            unit: "PCE",
            unit_value_minor: 2_450,
            net_weight_grams: 360,
        },
    ];
    (sale, goods)
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_contracts::identifiers::{check_awb, check_sscc};

    #[test]
    fn identifiers_carry_valid_check_digits() {
        for serial in [0, 1, 7, 123_456_789, 999_999_999_999] {
            check_sscc("sscc", &sscc(serial)).expect("valid SSCC");
            check_awb("awb", &awb(serial)).expect("valid AWB");
        }
        // The testkit's SSCC, built the same way.
        assert_eq!(sscc(123_456_789), "106141411234567897");
        assert_ne!(sscc(1), sscc(2));
    }
}
