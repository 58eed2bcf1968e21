//! Customs declarations: valuation, classification, low-value regimes, duty and import tax.
//!
//! [`assess`] computes, from the registered invoice, the declaration's choices (jurisdiction,
//! currency, exchange rate, regime, classification) and the reference data in force, every
//! amount a correct declaration must state. [`check_declaration`] compares the declared
//! amounts with it and names the first that differs. Clients use `assess` to fill in their
//! declarations, so the same code decides and helps.
//!
//! The computation, in order:
//!
//! 1. **Currency.** Each invoice line value (quantity × unit value) is converted to the
//!    declaration currency with the exact rate carried in the declaration, half up per line.
//!    The intrinsic value is their sum.
//! 2. **Valuation basis** by jurisdiction: CIF for the EU, GB, CN and the sample QX (freight
//!    and insurance to the border are added under EXW, FCA, FAS and FOB); FOB for the US, CA,
//!    AU and the sample QY (separately stated international freight and insurance are
//!    deducted under the C and D terms). The adjustment is spread over the lines in
//!    proportion to their converted value (see `money::allocate`).
//! 3. **Regime.** The de minimis rule in force for the jurisdiction and origin decides duty
//!    relief, a flat duty per item category, tax relief, and whether tax may have been
//!    collected at the sale.
//! 4. **Duty** per line from the tariff in force, by the longest matching HS prefix:
//!    ad valorem on the line's customs value, specific per unit or per kilogram, or both;
//!    one exact fraction per line, rounded half up once.
//! 5. **Import tax** per line: the tariff's VAT/GST rate × (customs value + duty, plus, in
//!    Australia, the line's share of international transport and insurance), half up.
//!
//! **Rules versions.** Every function that decides takes the rules version in force at the
//! block (`Ctx::rules_version`); a fix is a new version and never changes the verdicts of an
//! older one. Version 2 differs from version 1 in that:
//!
//! - Australia's GST base adds the invoice's international transport and insurance whatever
//!   the Incoterm (GST Act s. 13-20(2)); version 1 added them only where the valuation had
//!   deducted them (C and D terms).
//! - The de minimis rule is chosen by the declaration's transport mode and, for withdrawals,
//!   by the goods' origin ([`regimes::applicable_to`]); version 1 keyed on the country of
//!   dispatch alone.
//! - A claim of tax collected at sale checks the form of the cited UK VAT number, ABN or ARN,
//!   as it did the IOSS number.

use std::collections::BTreeSet;

use custody_ledger::model::*;
use custody_ledger::reject::{Code, Rejection};
use custody_ledger::state::ShipmentState;
use custody_ledger::Timestamp;

use crate::money::{self, allocate, convert, div_half_up, ppm_of};
use crate::reference::ReferenceBook;
use crate::{hs, identifiers, regimes};

/// Stable codes of this module.
pub mod codes {
    use crate::ContractCode;
    use custody_ledger::reject::Code;

    /// No valuation basis is known for the jurisdiction.
    pub const VALUATION_UNSUPPORTED: Code = ContractCode::ValuationUnsupportedJurisdiction.code();
    /// The declared basis is not the jurisdiction's.
    pub const VALUATION_BASIS: Code = ContractCode::ValuationBasis.code();
    /// The exchange rate is missing, superfluous or for other currencies.
    pub const VALUATION_EXCHANGE_RATE: Code = ContractCode::ValuationExchangeRate.code();
    /// Declared freight or insurance differs from the adjustment the basis requires.
    pub const VALUATION_ADJUSTMENT: Code = ContractCode::ValuationAdjustmentMismatch.code();
    /// Declared customs value (total or a line's) differs from the computed one.
    pub const VALUATION_MISMATCH: Code = ContractCode::ValuationMismatch.code();
    /// Deducting freight and insurance would make a value negative.
    pub const VALUATION_NEGATIVE: Code = ContractCode::ValuationNegative.code();
    /// The declaration's lines are not the invoice's lines, in order.
    pub const LINES_MISMATCH: Code = ContractCode::DeclarationLinesMismatch.code();
    /// A declared HS code does not start with the invoice line's six digits.
    pub const HS_INVOICE_MISMATCH: Code = ContractCode::HsInvoiceMismatch.code();
    /// The claimed regime's threshold is not met, or the jurisdiction has no such regime.
    pub const REGIME_NOT_ELIGIBLE: Code = ContractCode::RegimeNotEligible.code();
    /// A full declaration for goods that the low-value regime relieves.
    pub const REGIME_RELIEF_APPLIES: Code = ContractCode::RegimeReliefApplies.code();
    /// The declaration's currency is not the regime's.
    pub const REGIME_CURRENCY: Code = ContractCode::RegimeCurrency.code();
    /// No tariff is in force for the jurisdiction.
    pub const DUTY_NO_TARIFF: Code = ContractCode::DutyNoTariff.code();
    /// The tariff has no line for the HS code.
    pub const DUTY_NO_RATE: Code = ContractCode::DutyNoRate.code();
    /// A specific rate's unit is neither kilograms nor the invoice line's unit.
    pub const DUTY_UNIT: Code = ContractCode::DutyUnit.code();
    /// The tariff's currency is not the declaration's.
    pub const DUTY_CURRENCY: Code = ContractCode::DutyCurrency.code();
    /// A line's declared duty differs from the computed duty.
    pub const DUTY_MISMATCH: Code = ContractCode::DutyMismatch.code();
    /// The declared duty total is not the sum of the lines.
    pub const DUTY_TOTAL_MISMATCH: Code = ContractCode::DutyTotalMismatch.code();
    /// A line's declared tax differs from the computed tax.
    pub const TAX_MISMATCH: Code = ContractCode::TaxMismatch.code();
    /// The declared tax total is not the sum of the lines.
    pub const TAX_TOTAL_MISMATCH: Code = ContractCode::TaxTotalMismatch.code();
    /// Tax collected at sale without the seller's registration on the invoice.
    pub const TAX_REGISTRATION_MISSING: Code = ContractCode::TaxRegistrationMissing.code();
}

/// How the customs value is built.
pub fn valuation_basis(jurisdiction: CountryCode) -> Option<ValuationBasis> {
    // EU: Union Customs Code Art. 70-71 (transport and insurance to the place of entry are
    // added); GB: the UK's equivalent rules; CN: CIF under the PRC import tariff regulations.
    // US: 19 U.S.C. 1401a (transaction value excludes international freight); CA: Customs Act
    // s. 48 (value at the place of direct shipment); AU: Customs Act 1901 s. 159-161 (FOB).
    // QX and QY are the fictional sample jurisdictions, one of each kind.
    let code = jurisdiction.as_str();
    if identifiers::is_eu_member(jurisdiction) || ["GB", "CN", "QX"].contains(&code) {
        Some(ValuationBasis::CIF)
    } else if ["US", "CA", "AU", "QY"].contains(&code) {
        Some(ValuationBasis::FOB)
    } else {
        None
    }
}

/// Whether the jurisdiction's import tax base adds international transport and insurance
/// to the customs value (Australia: the value of the taxable importation, GST Act s. 13-20).
fn tax_base_adds_transport(jurisdiction: CountryCode) -> bool {
    jurisdiction.as_str() == "AU"
}

/// The amounts of one declaration line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineAssessment {
    /// Customs value, minor units of the declaration currency.
    pub customs_value_minor: u64,
    /// Duty.
    pub duty_minor: u64,
    /// Import VAT/GST.
    pub tax_minor: u64,
}

/// Every amount a correct declaration states.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assessment {
    /// Goods value without transport and insurance, in the declaration currency.
    pub intrinsic_value_minor: u64,
    /// Freight added or deducted.
    pub freight_minor: u64,
    /// Insurance added or deducted.
    pub insurance_minor: u64,
    /// Total customs value.
    pub customs_value_minor: u64,
    /// Per line, in invoice order.
    pub lines: Vec<LineAssessment>,
    /// Σ line duty.
    pub duty_total_minor: u64,
    /// Σ line tax.
    pub tax_total_minor: u64,
    /// International transport and insurance added to the import tax base (Australia), in
    /// the declaration currency; spread over the lines like the valuation adjustment.
    pub tax_base_transport_minor: u64,
}

fn reject(code: Code, field: String, message: String) -> Rejection {
    Rejection::new(code, field, message)
}

fn country(code: &str) -> CountryCode {
    CountryCode::parse(code).expect("a valid country code")
}

/// How a regime treats the declaration.
struct Treatment {
    /// Duty from the tariff (`false`: relief, possibly with a flat duty).
    tariff_duty: bool,
    /// Flat duty per item category, when relieved.
    flat_duty_minor: Option<u64>,
    /// Tax assessed at import.
    tax_at_import: bool,
}

/// Computes the amounts a declaration for `shipment` must state, from its choices, under
/// `rules_version` (the version in force at the height of the block that will carry the
/// declaration; `registry::LATEST_RULES_VERSION` on a network that runs the newest rules).
pub fn assess(
    rules_version: u32,
    book: &ReferenceBook,
    at: Timestamp,
    shipment: &ShipmentState,
    decl: &CustomsDeclared,
    path: &str,
) -> Result<Assessment, Rejection> {
    let inv = &shipment.invoice;
    let j = decl.jurisdiction;
    identifiers::check_country(&format!("{path}.jurisdiction"), j)?;
    let inv_units = identifiers::check_currency(&format!("{path}.currency"), inv.currency)?;
    let dec_units = identifiers::check_currency(&format!("{path}.currency"), decl.currency)?;
    let basis = declared_basis(decl, path)?;
    let conversion = Conversion {
        rate: exchange_rate(inv, decl, path)?,
        from_units: inv_units,
        to_units: dec_units,
    };
    let categories = classify(book, at, inv, decl, path)?;
    let converted = convert_lines(inv, &conversion, path)?;
    let intrinsic = total(&format!("{path}.customs_value_minor"), &converted)?;
    let valuation = value(basis, shipment, &conversion, &converted, path)?;
    let tax_transport = tax_transport(rules_version, j, &valuation, &converted, path)?;
    let treatment = treatment(rules_version, book, at, shipment, decl, intrinsic, path)?;
    let tariff = tariff_in_force(book, at, decl, &treatment, path)?;
    let lines = assess_lines(
        &treatment,
        tariff,
        &categories,
        &valuation.line_values,
        &tax_transport,
        inv,
        path,
    )?;
    let sum = |f: fn(&LineAssessment) -> u64, field: &str| {
        money::to_minor(field, Some(lines.iter().map(|l| u128::from(f(l))).sum()))
    };
    Ok(Assessment {
        intrinsic_value_minor: intrinsic,
        freight_minor: valuation.freight_minor,
        insurance_minor: valuation.insurance_minor,
        customs_value_minor: valuation.customs_value_minor,
        duty_total_minor: sum(|l| l.duty_minor, &format!("{path}.duty_total_minor"))?,
        tax_total_minor: sum(|l| l.tax_minor, &format!("{path}.tax_total_minor"))?,
        tax_base_transport_minor: tax_transport.total_minor,
        lines,
    })
}

/// The sum of some amounts, or an overflow rejection naming `field`.
fn total(field: &str, amounts: &[u64]) -> Result<u64, Rejection> {
    money::to_minor(field, Some(amounts.iter().map(|v| u128::from(*v)).sum()))
}

/// The jurisdiction's valuation basis, which the declaration must state.
fn declared_basis(decl: &CustomsDeclared, path: &str) -> Result<ValuationBasis, Rejection> {
    let j = decl.jurisdiction;
    let basis = valuation_basis(j).ok_or_else(|| {
        reject(
            codes::VALUATION_UNSUPPORTED,
            format!("{path}.jurisdiction"),
            format!("no valuation basis is known for {j}"),
        )
    })?;
    if decl.valuation_basis != basis {
        return Err(reject(
            codes::VALUATION_BASIS,
            format!("{path}.valuation_basis"),
            format!(
                "{j} values goods on a {basis:?} basis, not {:?}",
                decl.valuation_basis
            ),
        ));
    }
    Ok(basis)
}

/// The exchange rate: none for one currency, exactly invoice → declaration otherwise.
fn exchange_rate(
    inv: &CommercialInvoice,
    decl: &CustomsDeclared,
    path: &str,
) -> Result<ExchangeRate, Rejection> {
    match (&decl.exchange_rate, inv.currency == decl.currency) {
        (None, true) => Ok(ExchangeRate {
            from: inv.currency,
            to: decl.currency,
            numerator: 1,
            denominator: 1,
        }),
        (Some(r), false) if r.from == inv.currency && r.to == decl.currency => Ok(*r),
        _ => Err(reject(
            codes::VALUATION_EXCHANGE_RATE,
            format!("{path}.exchange_rate"),
            format!(
                "the invoice is in {} and the declaration in {}: give a rate from {} to {} exactly when they differ",
                inv.currency, decl.currency, inv.currency, decl.currency
            ),
        )),
    }
}

/// From the invoice currency to the declaration currency.
struct Conversion {
    rate: ExchangeRate,
    from_units: u32,
    to_units: u32,
}

impl Conversion {
    fn apply(&self, field: &str, amount_minor: u64) -> Result<u64, Rejection> {
        convert(
            field,
            amount_minor,
            &self.rate,
            self.from_units,
            self.to_units,
        )
    }
}

/// The lines' classifications: the invoice's lines, in order, each in the jurisdiction's
/// length and under the invoice line's subheading.
fn classify(
    book: &ReferenceBook,
    at: Timestamp,
    inv: &CommercialInvoice,
    decl: &CustomsDeclared,
    path: &str,
) -> Result<Vec<String>, Rejection> {
    if decl.lines.len() != inv.lines.len()
        || decl
            .lines
            .iter()
            .zip(&inv.lines)
            .any(|(d, l)| d.invoice_line != l.line_no)
    {
        return Err(reject(
            codes::LINES_MISMATCH,
            format!("{path}.lines"),
            format!(
                "declare each of the invoice's {} lines once, in invoice order ({:?})",
                inv.lines.len(),
                inv.lines.iter().map(|l| l.line_no).collect::<Vec<_>>()
            ),
        ));
    }
    let lengths = hs::declaration_lengths(decl.jurisdiction);
    let nomenclature = book.nomenclature(at);
    let mut categories = Vec::with_capacity(decl.lines.len());
    for (i, (d, l)) in decl.lines.iter().zip(&inv.lines).enumerate() {
        let field = format!("{path}.lines[{i}].hs_code");
        let digits = hs::check(&field, &d.hs_code, lengths, nomenclature)?;
        let invoiced = hs::normalize(&field, &l.hs_code)?;
        if digits.get(..6) != invoiced.get(..6) {
            return Err(reject(
                codes::HS_INVOICE_MISMATCH,
                field,
                format!(
                    "{} does not start with the invoice line's subheading {}",
                    d.hs_code,
                    &invoiced[..6.min(invoiced.len())]
                ),
            ));
        }
        categories.push(digits);
    }
    Ok(categories)
}

/// Each invoice line's value (quantity × unit value) in the declaration currency.
fn convert_lines(
    inv: &CommercialInvoice,
    conversion: &Conversion,
    path: &str,
) -> Result<Vec<u64>, Rejection> {
    let mut converted = Vec::with_capacity(inv.lines.len());
    for (i, l) in inv.lines.iter().enumerate() {
        let field = format!("{path}.lines[{i}].customs_value_minor");
        let value = money::to_minor(
            &field,
            Some(u128::from(l.quantity) * u128::from(l.unit_value_minor)),
        )?;
        converted.push(conversion.apply(&field, value)?);
    }
    Ok(converted)
}

/// The customs valuation, in the declaration currency.
struct Valuation {
    /// The invoice's freight and insurance, converted.
    invoice_freight_minor: u64,
    invoice_insurance_minor: u64,
    /// Freight and insurance added or deducted by the basis (zero when neither).
    freight_minor: u64,
    insurance_minor: u64,
    /// Each line's share of that adjustment.
    shares: Vec<u64>,
    /// Each line's customs value, and their total.
    line_values: Vec<u64>,
    customs_value_minor: u64,
}

/// Values the lines on the jurisdiction's basis: freight and insurance are added (CIF
/// under E and F terms) or deducted (FOB under C and D terms), spread over the lines.
fn value(
    basis: ValuationBasis,
    shipment: &ShipmentState,
    conversion: &Conversion,
    converted: &[u64],
    path: &str,
) -> Result<Valuation, Rejection> {
    use Incoterm::*;
    let inv = &shipment.invoice;
    let invoice_freight_minor =
        conversion.apply(&format!("{path}.freight_minor"), inv.freight_minor)?;
    let invoice_insurance_minor =
        conversion.apply(&format!("{path}.insurance_minor"), inv.insurance_minor)?;
    let adds = basis == ValuationBasis::CIF && matches!(shipment.incoterm, EXW | FCA | FAS | FOB);
    let deducts = basis == ValuationBasis::FOB
        && matches!(shipment.incoterm, CFR | CIF | CPT | CIP | DAP | DPU | DDP);
    let (freight_minor, insurance_minor) = if adds || deducts {
        (invoice_freight_minor, invoice_insurance_minor)
    } else {
        (0, 0)
    };
    let adjustment = freight_minor
        .checked_add(insurance_minor)
        .ok_or_else(|| money::overflow(&format!("{path}.freight_minor")))?;
    let shares = allocate(&format!("{path}.lines"), adjustment, converted)?;
    let mut line_values = Vec::with_capacity(converted.len());
    for (i, (value, share)) in converted.iter().zip(&shares).enumerate() {
        let field = format!("{path}.lines[{i}].customs_value_minor");
        let v = if deducts {
            value.checked_sub(*share).ok_or_else(|| {
                reject(
                    codes::VALUATION_NEGATIVE,
                    field,
                    format!("deducting {share} of freight and insurance from a line worth {value} leaves less than nothing"),
                )
            })?
        } else {
            value
                .checked_add(*share)
                .ok_or_else(|| money::overflow(&field))?
        };
        line_values.push(v);
    }
    let customs_value_minor = total(&format!("{path}.customs_value_minor"), &line_values)?;
    Ok(Valuation {
        invoice_freight_minor,
        invoice_insurance_minor,
        freight_minor,
        insurance_minor,
        shares,
        line_values,
        customs_value_minor,
    })
}

/// International transport and insurance in the import tax base, per line, and their total.
struct TaxTransport {
    lines: Vec<u64>,
    total_minor: u64,
}

/// Version 1: the shares of the valuation adjustment, so only where it was deducted (C and
/// D terms). Version 2: the invoice's transport and insurance whatever the Incoterm.
fn tax_transport(
    rules_version: u32,
    jurisdiction: CountryCode,
    valuation: &Valuation,
    converted: &[u64],
    path: &str,
) -> Result<TaxTransport, Rejection> {
    let lines = if !tax_base_adds_transport(jurisdiction) {
        vec![0; valuation.shares.len()]
    } else if rules_version >= 2 {
        let total = valuation
            .invoice_freight_minor
            .checked_add(valuation.invoice_insurance_minor)
            .ok_or_else(|| money::overflow(&format!("{path}.freight_minor")))?;
        allocate(&format!("{path}.lines"), total, converted)?
    } else {
        valuation.shares.clone()
    };
    let total_minor = total(&format!("{path}.tax_total_minor"), &lines)?;
    Ok(TaxTransport { lines, total_minor })
}

/// The tariff duty or tax comes from, when the regime assesses either.
fn tariff_in_force<'b>(
    book: &'b ReferenceBook,
    at: Timestamp,
    decl: &CustomsDeclared,
    treatment: &Treatment,
    path: &str,
) -> Result<Option<&'b TariffTable>, Rejection> {
    if !treatment.tariff_duty && !treatment.tax_at_import {
        return Ok(None);
    }
    let j = decl.jurisdiction;
    let tariff = book.tariff(j, at).ok_or_else(|| {
        reject(
            codes::DUTY_NO_TARIFF,
            format!("{path}.jurisdiction"),
            format!("no tariff for {j} is in force at {at}"),
        )
    })?;
    if tariff.currency != decl.currency {
        return Err(reject(
            codes::DUTY_CURRENCY,
            format!("{path}.currency"),
            format!(
                "the {j} tariff is in {}, the declaration in {}",
                tariff.currency, decl.currency
            ),
        ));
    }
    Ok(Some(tariff))
}

/// Duty and tax per line. A flat duty (under relief) is due once per item category.
fn assess_lines(
    treatment: &Treatment,
    tariff: Option<&TariffTable>,
    categories: &[String],
    line_values: &[u64],
    tax_transport: &TaxTransport,
    inv: &CommercialInvoice,
    path: &str,
) -> Result<Vec<LineAssessment>, Rejection> {
    let mut seen_categories = BTreeSet::new();
    let mut lines = Vec::with_capacity(line_values.len());
    for (i, (cv, l)) in line_values.iter().zip(&inv.lines).enumerate() {
        let field = format!("{path}.lines[{i}].duty_minor");
        let duty = if treatment.tariff_duty {
            let t = tariff.expect("a tariff is loaded when duty comes from it");
            tariff_duty(t, &categories[i], *cv, l, &field)?
        } else {
            match treatment.flat_duty_minor {
                Some(flat) if seen_categories.insert(&categories[i][..6]) => flat,
                _ => 0,
            }
        };
        let tax = match tariff.filter(|_| treatment.tax_at_import) {
            Some(t) => {
                let base = u128::from(*cv) + u128::from(duty) + u128::from(tax_transport.lines[i]);
                let field = format!("{path}.lines[{i}].tax_minor");
                let base = money::to_minor(&field, Some(base))?;
                ppm_of(&field, base, t.vat_rate_ppm)?
            }
            None => 0,
        };
        lines.push(LineAssessment {
            customs_value_minor: *cv,
            duty_minor: duty,
            tax_minor: tax,
        });
    }
    Ok(lines)
}

fn treatment(
    rules_version: u32,
    book: &ReferenceBook,
    at: Timestamp,
    shipment: &ShipmentState,
    decl: &CustomsDeclared,
    intrinsic: u64,
    path: &str,
) -> Result<Treatment, Rejection> {
    let j = decl.jurisdiction;
    let goods_origins: Vec<CountryCode> = shipment
        .invoice
        .lines
        .iter()
        .map(|l| l.origin_country)
        .collect();
    let consignment = regimes::Consignment {
        jurisdiction: j,
        dispatch: shipment.origin,
        goods_origins: &goods_origins,
        transport_mode: decl.transport_mode,
    };
    let rule = book
        .de_minimis(at)
        .and_then(|table| regimes::applicable_under(rules_version, table, &consignment));
    if let Some(rule) = rule {
        if rule.currency != decl.currency {
            return Err(reject(
                codes::REGIME_CURRENCY,
                format!("{path}.currency"),
                format!(
                    "{j}'s low-value thresholds are in {}; declare in {}",
                    rule.currency, rule.currency
                ),
            ));
        }
    }
    let at_most = |limit: Option<u64>| limit.is_some_and(|max| intrinsic <= max);
    let duty_relief = rule.is_some_and(|r| at_most(r.duty_free_max_minor));
    let tax_relief = rule.is_some_and(|r| at_most(r.tax_free_max_minor));
    let relieved = |r: Option<&DeMinimisRule>| Treatment {
        tariff_duty: false,
        flat_duty_minor: r.and_then(|r| r.flat_duty_per_category_minor),
        tax_at_import: !tax_relief,
    };
    let not_eligible = |what: &str| {
        reject(
            codes::REGIME_NOT_ELIGIBLE,
            format!("{path}.regime"),
            format!(
                "{what} does not apply in {j} to goods from {} worth {intrinsic} minor units of {} at {at}{}",
                shipment.origin,
                decl.currency,
                match rule {
                    Some(r) if rules_version >= 2 => format!(" (by {:?}; rule: {})", decl.transport_mode, r.source),
                    _ => String::new(),
                }
            ),
        )
    };
    match &decl.regime {
        CustomsRegime::Full => {
            if duty_relief {
                return Err(reject(
                    codes::REGIME_RELIEF_APPLIES,
                    format!("{path}.regime"),
                    format!(
                        "goods worth {intrinsic} are within {j}'s low-value threshold; declare de_minimis_relief or tax_collected_at_sale"
                    ),
                ));
            }
            Ok(Treatment {
                tariff_duty: true,
                flat_duty_minor: None,
                tax_at_import: true,
            })
        }
        CustomsRegime::DeMinimisRelief => {
            if !duty_relief {
                return Err(not_eligible("de minimis relief"));
            }
            Ok(relieved(rule))
        }
        CustomsRegime::TaxCollectedAtSale { registration_id } => {
            let rule = rule
                .filter(|r| at_most(r.collected_at_sale_max_minor))
                .ok_or_else(|| not_eligible("tax collected at sale"))?;
            let field = format!("{path}.regime.tax_collected_at_sale.registration_id");
            let registered = shipment.invoice.seller.tax_ids.iter().find(|id| {
                id.value == *registration_id && rule.collected_at_sale_schemes.contains(&id.scheme)
            });
            let Some(registration) = registered else {
                return Err(reject(
                    codes::TAX_REGISTRATION_MISSING,
                    field,
                    format!(
                        "{registration_id} is not among the seller's {:?} registrations on the invoice",
                        rule.collected_at_sale_schemes
                    ),
                ));
            };
            if rules_version >= 2 {
                identifiers::check_registration(&field, &registration.scheme, registration_id)?;
                if registration.scheme == "VAT" && rule.jurisdictions.contains(&country("GB")) {
                    // The UK collects VAT at sale only under a UK VAT registration.
                    identifiers::check_uk_vat(&field, registration_id)?;
                }
            } else if registration.scheme == "IOSS" {
                identifiers::check_ioss(&field, registration_id)?;
            }
            let mut t = if duty_relief {
                relieved(Some(rule))
            } else {
                Treatment {
                    tariff_duty: true,
                    flat_duty_minor: None,
                    tax_at_import: false,
                }
            };
            t.tax_at_import = false;
            Ok(t)
        }
    }
}

/// The rate of the longest tariff prefix of `digits`.
fn rate_for<'t>(tariff: &'t TariffTable, digits: &str) -> Option<&'t DutyRate> {
    tariff
        .lines
        .iter()
        .filter(|l| digits.starts_with(l.hs_prefix.as_str()))
        .max_by_key(|l| l.hs_prefix.len())
        .map(|l| &l.rate)
}

/// A line's duty from the tariff: one exact fraction, rounded half up once.
fn tariff_duty(
    tariff: &TariffTable,
    digits: &str,
    value_minor: u64,
    line: &InvoiceLine,
    field: &str,
) -> Result<u64, Rejection> {
    let rate = rate_for(tariff, digits).ok_or_else(|| {
        reject(
            codes::DUTY_NO_RATE,
            field.to_owned(),
            format!(
                "the {} tariff has no rate for {digits}",
                tariff.jurisdiction
            ),
        )
    })?;
    // Quantity for a specific rate, as a fraction (numerator, denominator) of its unit.
    let measure = |unit: &str, per_quantity: u64| -> Result<(u128, u128), Rejection> {
        let per = u128::from(per_quantity.max(1));
        if unit == "KGM" {
            Ok((u128::from(line.net_weight_grams), 1_000 * per))
        } else if unit == line.unit {
            Ok((u128::from(line.quantity), per))
        } else {
            Err(reject(
                codes::DUTY_UNIT,
                field.to_owned(),
                format!(
                    "the rate is per {unit}, the invoice line counts {}",
                    line.unit
                ),
            ))
        }
    };
    let overflow = || money::overflow(field);
    let (numerator, denominator): (u128, u128) = match rate {
        DutyRate::AdValorem { rate_ppm } => {
            (u128::from(value_minor) * u128::from(*rate_ppm), 1_000_000)
        }
        DutyRate::Specific {
            amount_minor,
            unit,
            per_quantity,
        } => {
            let (q, d) = measure(unit, *per_quantity)?;
            (
                q.checked_mul(u128::from(*amount_minor))
                    .ok_or_else(overflow)?,
                d,
            )
        }
        DutyRate::Compound {
            rate_ppm,
            amount_minor,
            unit,
            per_quantity,
        } => {
            // value × ppm / 10^6 + amount × q / d, over the common denominator 10^6 × d.
            let (q, d) = measure(unit, *per_quantity)?;
            let ad_valorem = (u128::from(value_minor) * u128::from(*rate_ppm))
                .checked_mul(d)
                .ok_or_else(overflow)?;
            let specific = q
                .checked_mul(u128::from(*amount_minor))
                .and_then(|s| s.checked_mul(1_000_000))
                .ok_or_else(overflow)?;
            (
                ad_valorem.checked_add(specific).ok_or_else(overflow)?,
                d * 1_000_000,
            )
        }
    };
    money::to_minor(field, div_half_up(numerator, denominator))
}

/// Compares a declaration with its assessment under `rules_version` and names the first
/// amount that differs.
pub fn check_declaration(
    rules_version: u32,
    book: &ReferenceBook,
    at: Timestamp,
    shipment: &ShipmentState,
    decl: &CustomsDeclared,
    path: &str,
) -> Result<Assessment, Rejection> {
    let a = assess(rules_version, book, at, shipment, decl, path)?;
    let differs = |code: Code, field: String, declared: u64, computed: u64| {
        if declared == computed {
            Ok(())
        } else {
            Err(reject(
                code,
                field,
                format!(
                    "declared {declared}, computed {computed} minor units of {}",
                    decl.currency
                ),
            ))
        }
    };
    differs(
        codes::VALUATION_ADJUSTMENT,
        format!("{path}.freight_minor"),
        decl.freight_minor,
        a.freight_minor,
    )?;
    differs(
        codes::VALUATION_ADJUSTMENT,
        format!("{path}.insurance_minor"),
        decl.insurance_minor,
        a.insurance_minor,
    )?;
    differs(
        codes::VALUATION_MISMATCH,
        format!("{path}.customs_value_minor"),
        decl.customs_value_minor,
        a.customs_value_minor,
    )?;
    for (i, (d, l)) in decl.lines.iter().zip(&a.lines).enumerate() {
        differs(
            codes::VALUATION_MISMATCH,
            format!("{path}.lines[{i}].customs_value_minor"),
            d.customs_value_minor,
            l.customs_value_minor,
        )?;
        differs(
            codes::DUTY_MISMATCH,
            format!("{path}.lines[{i}].duty_minor"),
            d.duty_minor,
            l.duty_minor,
        )?;
        differs(
            codes::TAX_MISMATCH,
            format!("{path}.lines[{i}].tax_minor"),
            d.tax_minor,
            l.tax_minor,
        )?;
    }
    differs(
        codes::DUTY_TOTAL_MISMATCH,
        format!("{path}.duty_total_minor"),
        decl.duty_total_minor,
        a.duty_total_minor,
    )?;
    differs(
        codes::TAX_TOTAL_MISMATCH,
        format!("{path}.tax_total_minor"),
        decl.tax_total_minor,
        a.tax_total_minor,
    )?;
    Ok(a)
}

/// Fills a declaration's amounts from its assessment: what a client does before signing.
pub fn complete(decl: &mut CustomsDeclared, a: &Assessment) {
    decl.freight_minor = a.freight_minor;
    decl.insurance_minor = a.insurance_minor;
    decl.customs_value_minor = a.customs_value_minor;
    for (d, l) in decl.lines.iter_mut().zip(&a.lines) {
        d.customs_value_minor = l.customs_value_minor;
        d.duty_minor = l.duty_minor;
        d.tax_minor = l.tax_minor;
    }
    decl.duty_total_minor = a.duty_total_minor;
    decl.tax_total_minor = a.tax_total_minor;
}
