//! Store writes per committed event: each node's `custody_store_writes` counters (one per
//! ledger tree, on `/metrics`) read before and after the run. The inserts and removals a
//! block makes are what it costs the database (issue 17), so the benchmark reports them
//! beside the bytes.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// The metric's name as the exposition text spells it.
const METRIC: &str = "custody_store_writes{tree=\"";

/// Writes so far, by tree, from a node's exposition text; trees it does not list are absent.
pub(super) fn parse(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(METRIC)?;
            let (tree, count) = rest.split_once("\"} ")?;
            Some((tree.to_owned(), count.trim().parse().ok()?))
        })
        .collect()
}

/// Each node's counters now; an unreachable node gives none, which leaves it out.
pub(super) async fn scrape(urls: &[String]) -> Vec<BTreeMap<String, u64>> {
    let http = reqwest::Client::new();
    let mut out = Vec::with_capacity(urls.len());
    for url in urls {
        let text = match http.get(format!("{url}/metrics")).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        out.push(parse(&text));
    }
    out
}

/// Writes per committed event per node, by tree and in total, two decimals: the nodes'
/// growth between `before` and `after`, averaged over the nodes that answered both times,
/// divided by the events committed meanwhile.
pub(super) fn per_event_json(
    before: &[BTreeMap<String, u64>],
    after: &[BTreeMap<String, u64>],
    events: u64,
) -> Value {
    let mut sums: BTreeMap<&str, u64> = BTreeMap::new();
    let mut nodes = 0u64;
    for (b, a) in before.iter().zip(after) {
        if b.is_empty() || a.is_empty() {
            continue;
        }
        nodes += 1;
        for (tree, count) in a {
            let grown = count.saturating_sub(b.get(tree).copied().unwrap_or(0));
            *sums.entry(tree).or_default() += grown;
        }
    }
    if nodes == 0 || events == 0 {
        return Value::Null;
    }
    let per_event = |writes: u64| {
        let hundredths = (writes * 100 + nodes * events / 2) / (nodes * events);
        let text = format!("{}.{:02}", hundredths / 100, hundredths % 100);
        serde_json::from_str::<Value>(&text).expect("digits, a point and two digits are JSON")
    };
    let mut by_tree = Map::new();
    for (tree, writes) in &sums {
        by_tree.insert((*tree).to_owned(), per_event(*writes));
    }
    json!({
        "total": per_event(sums.values().sum()),
        "by_tree": by_tree,
        "nodes": nodes,
        "events": events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP custody_store_writes Store inserts\n\
        custody_store_writes{tree=\"events\"} 1500\n\
        custody_store_writes{tree=\"index\"} 900\n\
        custody_height 7\n";

    #[test]
    fn the_counters_are_read_by_tree() {
        let counts = parse(TEXT);
        assert_eq!(counts.get("events"), Some(&1500));
        assert_eq!(counts.get("index"), Some(&900));
        assert_eq!(counts.len(), 2);
    }

    #[test]
    fn writes_are_averaged_over_the_nodes_that_answered() {
        let before = vec![parse(""), BTreeMap::from([("events".into(), 100)])];
        let after = vec![
            parse(TEXT),
            BTreeMap::from([("events".into(), 1_100), ("index".into(), 500)]),
        ];
        let report = per_event_json(&before, &after, 1_000);
        assert_eq!(
            report["nodes"], 1,
            "the first node did not answer before the run"
        );
        assert_eq!(report["by_tree"]["events"], 1.0);
        assert_eq!(report["by_tree"]["index"], 0.5);
        assert_eq!(report["total"], 1.5);
        assert!(per_event_json(&before, &after, 0).is_null());
    }
}
