//! The rule modules' codes as one enum: each code's stable string, the module `docs/RULES.md`
//! lists it under, whether it is causal and its HTTP status. The modules' `codes` constants
//! are made from it, and so is the list of every code ([`crate::registry::contract_codes`]).

use custody_ledger::reject::{Code, RuleCode};

/// Declares [`ContractCode`] (its variants, `ALL`, `as_str`, `module`, `is_causal` and
/// `http_status`) from one table, in which every code states its documentation module,
/// string, status and whether it is causal: the list cannot miss a variant, and no code is
/// classified by a default.
macro_rules! contract_codes {
    ($(
        $module:literal:
        $($variant:ident = $text:literal, status $status:literal, causal $causal:literal),+;
    )*) => {
        /// A code a rule module produces. The modules' `codes` constants are these, as the
        /// ledger's [`Code`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ContractCode {
            $($(#[doc = concat!("`", $text, "` (", $module, ")")] $variant,)+)*
        }

        impl ContractCode {
            /// Every code, in documentation order.
            pub const ALL: &'static [ContractCode] = &[$($(ContractCode::$variant,)+)*];

            /// The stable string, `area.reason`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($(ContractCode::$variant => $text,)+)*
                }
            }

            /// The module `docs/RULES.md` lists the code under.
            pub const fn module(self) -> &'static str {
                match self {
                    $($(ContractCode::$variant => $module,)+)*
                }
            }

            /// Whether the refusal may clear once events this node has not committed yet are
            /// committed (see [`Code::is_causal`]).
            pub const fn is_causal(self) -> bool {
                match self {
                    $($(ContractCode::$variant => $causal,)+)*
                }
            }

            /// The HTTP status of a problem document carrying the code: 422, a well-formed
            /// event the rules refuse.
            pub const fn http_status(self) -> u16 {
                match self {
                    $($(ContractCode::$variant => $status,)+)*
                }
            }
        }
    };
}

contract_codes! {
    "roles":
        RoleNotPermitted = "role.not_permitted", status 422, causal false;
    "identifiers":
        IdSscc = "id.sscc", status 422, causal false,
        IdGtin = "id.gtin", status 422, causal false,
        IdGln = "id.gln", status 422, causal false,
        IdAwb = "id.awb", status 422, causal false,
        IdLocode = "id.locode", status 422, causal false,
        IdCountry = "id.country", status 422, causal false,
        IdCurrency = "id.currency", status 422, causal false,
        IdEori = "id.eori", status 422, causal false,
        IdIoss = "id.ioss", status 422, causal false,
        IdUkVat = "id.uk_vat", status 422, causal false,
        IdAbn = "id.abn", status 422, causal false,
        IdArn = "id.arn", status 422, causal false;
    "hs":
        HsFormat = "hs.format", status 422, causal false,
        HsLength = "hs.length", status 422, causal false,
        HsReserved = "hs.reserved", status 422, causal false,
        HsUnknownSubheading = "hs.unknown_subheading", status 422, causal false,
        HsNoNomenclature = "hs.no_nomenclature", status 422, causal false,
        HsInvoiceMismatch = "hs.invoice_mismatch", status 422, causal false;
    "documents":
        InvoiceDuplicateLine = "invoice.duplicate_line", status 422, causal false,
        InvoiceQuantityZero = "invoice.quantity_zero", status 422, causal false,
        InvoiceTotalMismatch = "invoice.total_mismatch", status 422, causal false,
        ParcelDuplicateSscc = "parcel.duplicate_sscc", status 422, causal false,
        PackingUnknownParcel = "packing.unknown_parcel", status 422, causal false,
        PackingUnknownLine = "packing.unknown_line", status 422, causal false,
        PackingQuantityMismatch = "packing.quantity_mismatch", status 422, causal false,
        PackingEmptyParcel = "packing.empty_parcel", status 422, causal false,
        IncotermUnknown = "incoterm.unknown", status 422, causal false,
        InvoiceGenericDescription = "invoice.generic_description", status 422, causal false;
    "customs":
        ValuationUnsupportedJurisdiction = "valuation.unsupported_jurisdiction",
            status 422, causal false,
        ValuationBasis = "valuation.basis", status 422, causal false,
        ValuationExchangeRate = "valuation.exchange_rate", status 422, causal false,
        ValuationAdjustmentMismatch = "valuation.adjustment_mismatch", status 422, causal false,
        ValuationMismatch = "valuation.mismatch", status 422, causal false,
        ValuationNegative = "valuation.negative", status 422, causal false,
        DeclarationLinesMismatch = "declaration.lines_mismatch", status 422, causal false,
        RegimeNotEligible = "regime.not_eligible", status 422, causal false,
        RegimeReliefApplies = "regime.relief_applies", status 422, causal false,
        RegimeCurrency = "regime.currency", status 422, causal false,
        DutyNoTariff = "duty.no_tariff", status 422, causal false,
        DutyNoRate = "duty.no_rate", status 422, causal false,
        DutyUnit = "duty.unit", status 422, causal false,
        DutyCurrency = "duty.currency", status 422, causal false,
        DutyMismatch = "duty.mismatch", status 422, causal false,
        DutyTotalMismatch = "duty.total_mismatch", status 422, causal false,
        TaxMismatch = "tax.mismatch", status 422, causal false,
        TaxTotalMismatch = "tax.total_mismatch", status 422, causal false,
        TaxRegistrationMissing = "tax.registration_missing", status 422, causal false;
    "money":
        MoneyOverflow = "money.overflow", status 422, causal false;
    "payments":
        PaymentWrongPayer = "payment.wrong_payer", status 422, causal false,
        // Causal: the arrival in the destination may be in a block this node has not
        // committed yet.
        ClearanceNoArrival = "clearance.no_arrival", status 422, causal true;
    "reference":
        ReferenceInvalid = "reference.invalid", status 422, causal false;
    "schedule":
        RulesVersionUnknown = "rules.version_unknown", status 422, causal false;
    "tracking":
        ScanBizStep = "scan.biz_step", status 422, causal false,
        ScanDisposition = "scan.disposition", status 422, causal false,
        ScanSensorReading = "scan.sensor_reading", status 422, causal false;
}

impl ContractCode {
    /// The code as the ledger carries it.
    pub const fn code(self) -> Code {
        Code::Rule(RuleCode::new(
            self.as_str(),
            self.is_causal(),
            self.http_status(),
        ))
    }
}

impl From<ContractCode> for Code {
    fn from(code: ContractCode) -> Code {
        code.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use custody_ledger::reject::codes as ledger_codes;

    #[test]
    fn every_string_is_distinct_from_every_other_code() {
        for (i, code) in ContractCode::ALL.iter().enumerate() {
            let text = code.as_str();
            assert!(
                ContractCode::ALL[..i].iter().all(|c| c.as_str() != text),
                "{text} twice"
            );
            assert!(
                ledger_codes::ALL.iter().all(|c| c.as_str() != text),
                "{text} is a ledger code too"
            );
            assert_eq!(code.code(), text);
        }
    }
}
