//! EPCIS documents: building `EPCISDocument` and `EPCISQueryDocument` around events, finding
//! the events of a document, and hashing each.

use custody_ledger::Timestamp;
use serde_json::{json, Value};

use crate::hash::{hash_id_of, pre_hash_string, HashError, Prefixes};
use crate::vocab;

/// The EPCIS schema version Custody writes.
pub const SCHEMA_VERSION: &str = "2.0";

/// Builds an EPCIS document around events made by [`crate::to_epcis`].
///
/// The `@context` names the EPCIS 2.0 context, then (if given) the URL where the node serves
/// the Custody context, then the `custody` prefix inline, so that a reader that fetches no
/// context, such as the event hash, still knows what `custody:` stands for.
#[derive(Debug, Clone)]
pub struct DocumentBuilder {
    creation_date: Timestamp,
    context_url: Option<String>,
    events: Vec<Value>,
}

impl DocumentBuilder {
    /// A document created at `creation_date` (the caller's clock: this crate reads none).
    pub fn new(creation_date: Timestamp) -> DocumentBuilder {
        DocumentBuilder {
            creation_date,
            context_url: None,
            events: Vec::new(),
        }
    }

    /// Names the URL of the Custody context (a node's base URL + [`vocab::CONTEXT_PATH`]).
    pub fn custody_context_url(mut self, url: impl Into<String>) -> DocumentBuilder {
        self.context_url = Some(url.into());
        self
    }

    /// Adds an event.
    pub fn event(mut self, event: Value) -> DocumentBuilder {
        self.events.push(event);
        self
    }

    /// Adds events.
    pub fn events(mut self, events: impl IntoIterator<Item = Value>) -> DocumentBuilder {
        self.events.extend(events);
        self
    }

    /// The `@context` of the documents built.
    pub fn context(&self) -> Value {
        let mut context = vec![json!(vocab::EPCIS_CONTEXT_URL)];
        if let Some(url) = &self.context_url {
            context.push(json!(url));
        }
        context.push(json!({ vocab::PREFIX: vocab::NAMESPACE }));
        Value::Array(context)
    }

    /// An `EPCISDocument` (what capture takes).
    pub fn epcis_document(self) -> Value {
        json!({
            "@context": self.context(),
            "type": "EPCISDocument",
            "schemaVersion": SCHEMA_VERSION,
            "creationDate": self.creation_date.to_rfc3339(),
            "epcisBody": { "eventList": self.events },
        })
    }

    /// An `EPCISQueryDocument` answering the query `query_name` (what queries return).
    pub fn query_document(self, query_name: &str) -> Value {
        json!({
            "@context": self.context(),
            "type": "EPCISQueryDocument",
            "schemaVersion": SCHEMA_VERSION,
            "creationDate": self.creation_date.to_rfc3339(),
            "epcisBody": {
                "queryResults": {
                    "queryName": query_name,
                    "resultsBody": { "eventList": self.events },
                }
            },
        })
    }

    /// One event on its own (the body of a single-event capture), with the `@context` an
    /// event outside a document must carry.
    pub fn standalone(&self, mut event: Value) -> Value {
        if let Value::Object(map) = &mut event {
            map.insert("@context".into(), self.context());
        }
        event
    }
}

/// Where a document keeps its events, as a path for error messages.
fn event_list_path(document: &Value) -> Result<Option<&'static str>, HashError> {
    let not = |reason: &str| HashError::NotADocument {
        reason: reason.to_owned(),
    };
    let kind = document
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| not("no type"))?;
    match kind {
        "EPCISDocument" => Ok(Some("epcisBody.eventList")),
        "EPCISQueryDocument" => Ok(Some("epcisBody.queryResults.resultsBody.eventList")),
        _ if document.get("eventTime").is_some() => Ok(None),
        other => Err(not(&format!(
            "type {other:?} is neither EPCISDocument, EPCISQueryDocument nor an event"
        ))),
    }
}

/// The events of an `EPCISDocument` or `EPCISQueryDocument` in document order; a lone event
/// is its own list.
pub fn events_of(document: &Value) -> Result<&[Value], HashError> {
    let Some(path) = event_list_path(document)? else {
        return Ok(std::slice::from_ref(document));
    };
    let list = path
        .split('.')
        .try_fold(document, |value, key| value.get(key))
        .ok_or_else(|| HashError::NotADocument {
            reason: format!("no {path}"),
        })?;
    list.as_array()
        .map(Vec::as_slice)
        .ok_or_else(|| HashError::NotADocument {
            reason: format!("{path} is not a list"),
        })
}

/// The hash ID of every event of a document, in document order. Compact IRIs resolve
/// through the document's `@context` and then each event's own.
pub fn document_hash_ids(document: &Value) -> Result<Vec<String>, HashError> {
    let path = event_list_path(document)?;
    let mut base = Prefixes::standard();
    if let (Some(_), Some(context)) = (path, document.get("@context")) {
        base = base.with_context(context);
    }
    events_of(document)?
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let prefixes = match event.get("@context") {
                Some(context) => base.clone().with_context(context),
                None => base.clone(),
            };
            let at = path.map_or(String::new(), |p| format!("{p}[{i}]"));
            Ok(hash_id_of(&pre_hash_string(event, &prefixes, &at)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_their_events() {
        let event = json!({"type": "ObjectEvent", "eventTime": "2020-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "epcList": []});
        let builder = DocumentBuilder::new(Timestamp(0)).event(event.clone());
        let document = builder.clone().epcis_document();
        assert_eq!(events_of(&document).unwrap(), std::slice::from_ref(&event));
        let query = builder.query_document("SimpleEventQuery");
        assert_eq!(events_of(&query).unwrap().len(), 1);
        assert_eq!(events_of(&event).unwrap().len(), 1);
        assert_eq!(
            document_hash_ids(&document).unwrap(),
            document_hash_ids(&query).unwrap()
        );
        assert!(events_of(&json!({"type": "Nothing"})).is_err());
        assert!(events_of(&json!({"type": "EPCISDocument"})).is_err());
    }
}
