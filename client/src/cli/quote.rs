//! `custody quote FILE`: reads a draft shipment and prints the node's landed-cost quote.

use std::path::Path;

use anyhow::{bail, Context as _};
use custody_contracts::identifiers;
use custody_ledger::model::CustomsRegime;
use custody_ledger::view::{Quote, QuoteRequest};

/// Largest draft file read: the node's request body limit.
const DRAFT_SIZE_BYTES_MAX: u64 = 2 * 1024 * 1024;

/// Reads and parses a draft, naming the file and the place of a JSON error.
pub(crate) fn read_draft(file: &Path) -> anyhow::Result<QuoteRequest> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    if size > DRAFT_SIZE_BYTES_MAX {
        bail!(
            "{} has {size} bytes; a draft has at most {DRAFT_SIZE_BYTES_MAX}",
            file.display()
        );
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a draft shipment", file.display()))
}

/// An amount in minor units written with its decimals: `41520` with 2 decimals is `415.20`.
pub(crate) fn amount(minor: u64, decimals: u32) -> String {
    if decimals == 0 {
        return minor.to_string();
    }
    let scale = 10u64.pow(decimals);
    format!(
        "{}.{:0width$}",
        minor / scale,
        minor % scale,
        width = decimals as usize
    )
}

/// Prints a quote for people.
pub(crate) fn print(q: &Quote) -> anyhow::Result<()> {
    let decimals = identifiers::check_currency("currency", q.currency).unwrap_or(2);
    let money = |minor: u64| format!("{} {}", q.currency, amount(minor, decimals));
    let regime = match &q.regime.regime {
        CustomsRegime::Full => "full declaration".to_owned(),
        CustomsRegime::DeMinimisRelief => "low-value relief".to_owned(),
        CustomsRegime::TaxCollectedAtSale { registration_id } => {
            format!("tax collected at sale ({registration_id})")
        }
    };
    outln!(
        "{} by {:?}, at {} (rules version {})",
        q.jurisdiction,
        q.transport_mode,
        q.at,
        q.rules_version
    )?;
    outln!(
        "customs value  {} ({:?}, transport and insurance {})",
        money(q.valuation.customs_value_minor),
        q.valuation.basis,
        q.valuation.adjustment
    )?;
    outln!("regime         {regime}")?;
    outln!("               {}", q.regime.reason)?;
    if let Some(source) = &q.regime.source {
        outln!("               source: {source}")?;
    }
    for line in &q.lines {
        outln!(
            "line {:<4} {}  value {}  duty {}  tax {}",
            line.line_no,
            line.tariff_code,
            money(line.customs_value_minor),
            money(line.duty_minor),
            money(line.tax_minor)
        )?;
    }
    outln!("duty           {}", money(q.duty_total_minor))?;
    outln!("import tax     {}", money(q.tax_total_minor))?;
    outln!(
        "paid by        duty and tax: {}; transport: {}",
        q.payer.duty_and_tax,
        q.payer.transport
    )?;
    outln!("landed cost    {}", money(q.landed_cost_minor))?;
    for table in &q.reference_data {
        outln!(
            "table          {} from {} (event {})",
            table.table_id,
            table.effective_from,
            table.event_id
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_keep_their_decimals() {
        assert_eq!(amount(41_520, 2), "415.20");
        assert_eq!(amount(5, 2), "0.05");
        assert_eq!(amount(1_234, 0), "1234");
        assert_eq!(amount(1_000, 3), "1.000");
    }
}
