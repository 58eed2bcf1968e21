//! EPCIS event hash IDs, CBV 2.0 §8.9.
//!
//! The hash ID is a fingerprint of an event's content that does not depend on its syntax
//! (JSON-LD or XML), on the order of its keys or list items, or on how identifiers are
//! written (EPC URN or Digital Link, CBV short name or URI, local time or UTC). The algorithm
//! builds a *pre-hash string*: the event's values in the standard's canonical property order,
//! each as `name=value`, with no separators, values normalised and list items sorted; its
//! SHA-256 is written `ni:///sha-256;{hex}?ver=CBV2.0` (RFC 6920).
//!
//! It is a fingerprint, not a proof: anyone can recompute it after changing an event. Custody's
//! signatures over its canonical bytes stay the proof of who said what. Where the standard's
//! text leaves a choice, the reading taken is written in `docs/EPCIS.md` ("Event hash IDs").

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use crate::{decimal, gs1, time, vocab};

/// The algorithm version written in every hash ID.
pub const HASH_VERSION: &str = "CBV2.0";

/// Why an event could not be hashed. Each names the field at fault as a path into the JSON
/// given (`epcisBody.eventList[2].readPoint.id`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The value is not an EPCIS event (not an object, or no `type`).
    #[error("{field}: not an EPCIS event: {reason}")]
    NotAnEvent {
        /// Where.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A field the hash needs is absent (`eventTime`, `eventTimeZoneOffset`).
    #[error("{field}: missing")]
    Missing {
        /// The absent field.
        field: String,
    },
    /// A field has a value the standard does not allow there.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A compact IRI (`example:field`) whose prefix no `@context` of the document defines, so
    /// its full name, which the hash contains, is unknown.
    #[error("{field}: the prefix {prefix:?} is not defined by an inline @context of the document")]
    UnknownPrefix {
        /// The key or value.
        field: String,
        /// The prefix.
        prefix: String,
    },
    /// A key that is neither an EPCIS property nor an extension named by a URI (JSON-LD would
    /// drop it; hashing it would be a guess).
    #[error("{field}: not an EPCIS property, and not an extension named by a URI")]
    UnknownProperty {
        /// The key.
        field: String,
    },
    /// The document is neither an `EPCISDocument`, an `EPCISQueryDocument` nor an event.
    #[error("not an EPCIS document: {reason}")]
    NotADocument {
        /// What is wrong.
        reason: String,
    },
}

impl HashError {
    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            HashError::NotAnEvent { .. } => "epcis_hash.not_an_event",
            HashError::Missing { .. } => "epcis_hash.missing_field",
            HashError::Invalid { .. } => "epcis_hash.invalid_value",
            HashError::UnknownPrefix { .. } => "epcis_hash.unknown_prefix",
            HashError::UnknownProperty { .. } => "epcis_hash.unknown_property",
            HashError::NotADocument { .. } => "epcis_hash.not_a_document",
        }
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> HashError {
    HashError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// The JSON-LD prefixes in force for an event: those of the EPCIS 2.0 context, plus those of
/// the inline `@context` objects of its document and of the event itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixes(BTreeMap<String, String>);

impl Default for Prefixes {
    fn default() -> Self {
        Prefixes::standard()
    }
}

impl Prefixes {
    /// The prefixes the EPCIS 2.0 context defines.
    pub fn standard() -> Prefixes {
        let pairs = [
            ("epcis", "https://ref.gs1.org/epcis/"),
            ("cbv", "https://ref.gs1.org/cbv/"),
            ("cbvmda", "urn:epcglobal:cbv:mda:"),
            ("gs1", "https://gs1.org/voc/"),
            ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
            ("owl", "http://www.w3.org/2002/07/owl#"),
            ("xsd", "http://www.w3.org/2001/XMLSchema#"),
            ("dcterms", "http://purl.org/dc/terms/"),
        ];
        Prefixes(
            pairs
                .iter()
                .map(|(p, iri)| (p.to_string(), iri.to_string()))
                .collect(),
        )
    }

    /// These prefixes with those of a `@context` value added. Remote contexts (URLs) are not
    /// fetched: the Custody context URL (any URL ending in `/epcis/context/custody.jsonld`)
    /// stands for the `custody` prefix, and other URLs add nothing.
    pub fn with_context(mut self, context: &Value) -> Prefixes {
        match context {
            Value::String(url) if url.ends_with(vocab::CONTEXT_PATH) => {
                self.0.insert(vocab::PREFIX.into(), vocab::NAMESPACE.into());
            }
            Value::Array(items) => {
                for item in items {
                    self = self.with_context(item);
                }
            }
            Value::Object(terms) => {
                for (term, definition) in terms {
                    let iri = match definition {
                        Value::String(iri) => Some(iri.as_str()),
                        Value::Object(d) => d.get("@id").and_then(Value::as_str),
                        _ => None,
                    };
                    if let Some(iri) = iri.filter(|iri| vocab::is_absolute_uri(iri)) {
                        if !term.starts_with('@') && !term.contains(':') {
                            self.0.insert(term.clone(), iri.to_string());
                        }
                    }
                }
            }
            _ => {}
        }
        self
    }

    /// The full IRI of a compact IRI whose prefix is defined.
    fn expand(&self, value: &str) -> Option<String> {
        let (prefix, local) = value.split_once(':')?;
        if local.starts_with("//") {
            return None;
        }
        self.0.get(prefix).map(|iri| format!("{iri}{local}"))
    }

    /// `{namespace}localName` of an extension key, as the hash writes it.
    fn qualified(&self, key: &str, field: &str) -> Result<String, HashError> {
        let unknown = || HashError::UnknownProperty {
            field: field.to_owned(),
        };
        let (prefix, local) = key.split_once(':').ok_or_else(unknown)?;
        if let (Some(iri), false) = (self.0.get(prefix), local.starts_with("//")) {
            return Ok(format!("{{{iri}}}{local}"));
        }
        if !vocab::is_absolute_uri(key) {
            return Err(unknown());
        }
        if !local.starts_with("//") && prefix != "urn" {
            return Err(HashError::UnknownPrefix {
                field: field.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        let split = key.rfind(['/', '#', ':']).map_or(0, |at| at + 1);
        Ok(format!("{{{}}}{}", &key[..split], &key[split..]))
    }
}

/// The hash ID of one event, with the prefixes of the EPCIS context and of its own
/// `@context`.
pub fn event_hash_id(event: &Value) -> Result<String, HashError> {
    let prefixes = match event.get("@context") {
        Some(context) => Prefixes::standard().with_context(context),
        None => Prefixes::standard(),
    };
    Ok(hash_id_of(&pre_hash_string(event, &prefixes, "")?))
}

/// `ni:///sha-256;{hex}?ver=CBV2.0` of a pre-hash string.
pub fn hash_id_of(pre_hash: &str) -> String {
    let digest = Sha256::digest(pre_hash.as_bytes());
    format!("ni:///sha-256;{}?ver={HASH_VERSION}", hex::encode(digest))
}

/// How a value is normalised.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// A timestamp, to UTC milliseconds.
    Time,
    /// Text, trimmed.
    Text,
    /// A URI: CBV URN to web URI, compact IRI expanded, EPC URN to Digital Link, Digital Link
    /// constrained.
    Uri,
    /// A vocabulary value: a bare short name gets this prefix, anything else is a URI.
    Vocab(&'static str),
    /// A decimal without trailing zeros.
    Decimal,
    /// `true` or `false`.
    Bool,
}

const CBV: &str = "https://ref.gs1.org/cbv/";
const BIZ_STEP: Form = Form::Vocab("https://ref.gs1.org/cbv/BizStep-");
const DISPOSITION: Form = Form::Vocab("https://ref.gs1.org/cbv/Disp-");
const GS1_VOC: Form = Form::Vocab("https://gs1.org/voc/");

/// The parts of an event in canonical property order (CBV 2.0 §8.9).
#[derive(Debug, Clone, Copy)]
enum Part {
    Value(Form),
    EpcList,
    QuantityList,
    PersistentDisposition,
    Location,
    Typed(&'static str, &'static str),
    SensorElementList,
    Ilmd,
}

const EVENT_ORDER: &[(&str, Part)] = &[
    ("epcList", Part::EpcList),
    ("parentID", Part::Value(Form::Uri)),
    ("inputEPCList", Part::EpcList),
    ("childEPCs", Part::EpcList),
    ("quantityList", Part::QuantityList),
    ("childQuantityList", Part::QuantityList),
    ("inputQuantityList", Part::QuantityList),
    ("outputEPCList", Part::EpcList),
    ("outputQuantityList", Part::QuantityList),
    ("action", Part::Value(Form::Text)),
    ("transformationID", Part::Value(Form::Uri)),
    ("bizStep", Part::Value(BIZ_STEP)),
    ("disposition", Part::Value(DISPOSITION)),
    ("persistentDisposition", Part::PersistentDisposition),
    ("readPoint", Part::Location),
    ("bizLocation", Part::Location),
    (
        "bizTransactionList",
        Part::Typed("bizTransaction", "https://ref.gs1.org/cbv/BTT-"),
    ),
    (
        "sourceList",
        Part::Typed("source", "https://ref.gs1.org/cbv/SDT-"),
    ),
    (
        "destinationList",
        Part::Typed("destination", "https://ref.gs1.org/cbv/SDT-"),
    ),
    ("sensorElementList", Part::SensorElementList),
    ("ilmd", Part::Ilmd),
];

/// Event keys that are not part of the hash: the event's identity and its record (§8.9 leaves
/// them out of the canonical order), and the JSON-LD context.
const NOT_HASHED: &[&str] = &[
    "@context",
    "type",
    "eventTime",
    "eventTimeZoneOffset",
    "eventID",
    "recordTime",
    "errorDeclaration",
    "certificationInfo",
];

const SENSOR_METADATA_ORDER: &[(&str, Form)] = &[
    ("time", Form::Time),
    ("startTime", Form::Time),
    ("endTime", Form::Time),
    ("deviceID", Form::Uri),
    ("deviceMetadata", Form::Uri),
    ("rawData", Form::Uri),
    ("dataProcessingMethod", Form::Uri),
    ("bizRules", Form::Uri),
];

const SENSOR_REPORT_ORDER: &[(&str, Form)] = &[
    ("type", GS1_VOC),
    ("exception", GS1_VOC),
    ("deviceID", Form::Uri),
    ("deviceMetadata", Form::Uri),
    ("rawData", Form::Uri),
    ("dataProcessingMethod", Form::Uri),
    ("time", Form::Time),
    ("microorganism", Form::Uri),
    ("chemicalSubstance", Form::Uri),
    ("value", Form::Decimal),
    ("component", Form::Vocab("https://ref.gs1.org/cbv/Comp-")),
    ("stringValue", Form::Text),
    ("booleanValue", Form::Bool),
    ("hexBinaryValue", Form::Text),
    ("uriValue", Form::Uri),
    ("minValue", Form::Decimal),
    ("maxValue", Form::Decimal),
    ("meanValue", Form::Decimal),
    ("sDev", Form::Decimal),
    ("percRank", Form::Decimal),
    ("percValue", Form::Decimal),
    ("uom", Form::Text),
    ("coordinateReferenceSystem", Form::Uri),
    // Not in §8.9's list for sensor reports; read as the last regular field (docs/EPCIS.md).
    ("bizRules", Form::Uri),
];

/// The pre-hash string of an event. `path` prefixes the field names in errors.
pub fn pre_hash_string(
    event: &Value,
    prefixes: &Prefixes,
    path: &str,
) -> Result<String, HashError> {
    let object = event.as_object().ok_or_else(|| HashError::NotAnEvent {
        field: display_path(path),
        reason: "not a JSON object".into(),
    })?;
    let event_type =
        object
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| HashError::NotAnEvent {
                field: join(path, "type"),
                reason: "no event type".into(),
            })?;
    let mut out = format!("eventType={}", event_type.trim());
    out.push_str(&time_and_offset(object, path)?);
    for (name, part) in EVENT_ORDER {
        if let Some(value) = object.get(*name) {
            out.push_str(&part_string(
                name,
                *part,
                value,
                prefixes,
                &join(path, name),
            )?);
        }
    }
    let standard =
        |key: &str| NOT_HASHED.contains(&key) || EVENT_ORDER.iter().any(|(name, _)| *name == key);
    out.push_str(&extensions(object, &standard, prefixes, path)?);
    Ok(out)
}

fn time_and_offset(object: &Map<String, Value>, path: &str) -> Result<String, HashError> {
    let required = |name: &str| -> Result<&Value, HashError> {
        object.get(name).ok_or_else(|| HashError::Missing {
            field: join(path, name),
        })
    };
    let no_prefixes = Prefixes(BTreeMap::new());
    let at = join(path, "eventTime");
    let event_time = normalise(Form::Time, required("eventTime")?, &no_prefixes, &at)?;
    let at = join(path, "eventTimeZoneOffset");
    let offset = normalise(
        Form::Text,
        required("eventTimeZoneOffset")?,
        &no_prefixes,
        &at,
    )?;
    if time::parse_offset(&offset).is_none() {
        return Err(invalid(&at, "not an offset such as +01:00"));
    }
    Ok(format!(
        "eventTime={event_time}eventTimeZoneOffset={offset}"
    ))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() {
        "(event)".to_owned()
    } else {
        path.to_owned()
    }
}

fn part_string(
    name: &str,
    part: Part,
    value: &Value,
    prefixes: &Prefixes,
    path: &str,
) -> Result<String, HashError> {
    match part {
        Part::Value(form) => Ok(format!(
            "{name}={}",
            normalise(form, value, prefixes, path)?
        )),
        Part::EpcList => sorted_list(name, value, path, |item, at| {
            Ok(format!("epc={}", normalise(Form::Uri, item, prefixes, at)?))
        }),
        Part::QuantityList => sorted_list(name, value, path, |item, at| {
            let order = [
                ("epcClass", Form::Uri),
                ("quantity", Form::Decimal),
                ("uom", Form::Text),
            ];
            closed_structure("quantityElement", item, &order, prefixes, at)
        }),
        Part::PersistentDisposition => persistent_disposition(value, prefixes, path),
        Part::Location => structure(name, value, &[("id", Form::Uri)], prefixes, path),
        Part::Typed(id_key, type_prefix) => sorted_list(name, value, path, |item, at| {
            let order = [(id_key, Form::Uri), ("type", Form::Vocab(type_prefix))];
            closed_structure("", item, &order, prefixes, at)
        }),
        Part::SensorElementList => sorted_list(name, value, path, |item, at| {
            sensor_element(item, prefixes, at)
        }),
        Part::Ilmd => {
            let object = value
                .as_object()
                .ok_or_else(|| invalid(path, "not an object"))?;
            let inner = extensions(object, &|_| false, prefixes, path)?;
            Ok(if inner.is_empty() {
                String::new()
            } else {
                format!("{name}{inner}")
            })
        }
    }
}

/// `name` then the items' strings, sorted; nothing for an empty list.
fn sorted_list(
    name: &str,
    value: &Value,
    path: &str,
    item: impl Fn(&Value, &str) -> Result<String, HashError>,
) -> Result<String, HashError> {
    let items = value
        .as_array()
        .ok_or_else(|| invalid(path, "not a list"))?;
    let mut strings = items
        .iter()
        .enumerate()
        .map(|(i, v)| item(v, &format!("{path}[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    strings.retain(|s| !s.is_empty());
    strings.sort();
    Ok(if strings.is_empty() {
        String::new()
    } else {
        format!("{name}{}", strings.concat())
    })
}

fn persistent_disposition(
    value: &Value,
    prefixes: &Prefixes,
    path: &str,
) -> Result<String, HashError> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid(path, "not an object"))?;
    let mut out = String::new();
    for key in ["set", "unset"] {
        if let Some(list) = object.get(key) {
            let at = join(path, key);
            let items = list.as_array().ok_or_else(|| invalid(&at, "not a list"))?;
            let mut strings = items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let value = normalise(DISPOSITION, v, prefixes, &format!("{at}[{i}]"))?;
                    Ok(format!("{key}={value}"))
                })
                .collect::<Result<Vec<_>, HashError>>()?;
            strings.sort();
            out.push_str(&strings.concat());
        }
    }
    if let Some(other) = object
        .keys()
        .find(|k| !["set", "unset"].contains(&k.as_str()))
    {
        return Err(HashError::UnknownProperty {
            field: join(path, other),
        });
    }
    Ok(if out.is_empty() {
        out
    } else {
        format!("persistentDisposition{out}")
    })
}

/// A structure with an extension point: `name`, its regular fields in order, then its
/// extension elements sorted; nothing if it holds nothing.
fn structure(
    name: &str,
    value: &Value,
    order: &[(&str, Form)],
    prefixes: &Prefixes,
    path: &str,
) -> Result<String, HashError> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid(path, "not an object"))?;
    let mut inner = fields(object, order, prefixes, path)?;
    let regular = |key: &str| order.iter().any(|(n, _)| *n == key);
    inner.push_str(&extensions(object, &regular, prefixes, path)?);
    Ok(if inner.is_empty() {
        inner
    } else {
        format!("{name}{inner}")
    })
}

/// A structure without an extension point (`quantityElement`, a business transaction, a
/// source, a destination): any other key is an error.
fn closed_structure(
    name: &str,
    value: &Value,
    order: &[(&str, Form)],
    prefixes: &Prefixes,
    path: &str,
) -> Result<String, HashError> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid(path, "not an object"))?;
    if let Some(other) = object.keys().find(|k| !order.iter().any(|(n, _)| n == k)) {
        return Err(HashError::UnknownProperty {
            field: join(path, other),
        });
    }
    let inner = fields(object, order, prefixes, path)?;
    Ok(if inner.is_empty() {
        inner
    } else {
        format!("{name}{inner}")
    })
}

fn fields(
    object: &Map<String, Value>,
    order: &[(&str, Form)],
    prefixes: &Prefixes,
    path: &str,
) -> Result<String, HashError> {
    let mut out = String::new();
    for (name, form) in order {
        if let Some(value) = object.get(*name) {
            let value = normalise(*form, value, prefixes, &join(path, name))?;
            out.push_str(&format!("{name}={value}"));
        }
    }
    Ok(out)
}

fn sensor_element(value: &Value, prefixes: &Prefixes, path: &str) -> Result<String, HashError> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid(path, "not an object"))?;
    let mut inner = String::new();
    if let Some(metadata) = object.get("sensorMetadata") {
        inner.push_str(&structure(
            "sensorMetadata",
            metadata,
            SENSOR_METADATA_ORDER,
            prefixes,
            &join(path, "sensorMetadata"),
        )?);
    }
    if let Some(reports) = object.get("sensorReport") {
        let at = join(path, "sensorReport");
        let list = reports
            .as_array()
            .ok_or_else(|| invalid(&at, "not a list"))?;
        let mut strings = list
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let path = format!("{at}[{i}]");
                structure("sensorReport", r, SENSOR_REPORT_ORDER, prefixes, &path)
            })
            .collect::<Result<Vec<_>, _>>()?;
        strings.sort();
        inner.push_str(&strings.concat());
    }
    let regular = |key: &str| key == "sensorMetadata" || key == "sensorReport";
    inner.push_str(&extensions(object, &regular, prefixes, path)?);
    Ok(if inner.is_empty() {
        inner
    } else {
        format!("sensorElement{inner}")
    })
}

/// The extension elements of an object (keys `regular` does not claim), each as
/// `{namespace}local=value` (nested: `{ns}local` then its children), sorted and concatenated.
fn extensions(
    object: &Map<String, Value>,
    regular: &dyn Fn(&str) -> bool,
    prefixes: &Prefixes,
    path: &str,
) -> Result<String, HashError> {
    let mut entries = Vec::new();
    for (key, value) in object {
        if !regular(key) {
            extension_entries(key, value, prefixes, &join(path, key), &mut entries)?;
        }
    }
    entries.sort();
    Ok(entries.concat())
}

fn extension_entries(
    key: &str,
    value: &Value,
    prefixes: &Prefixes,
    path: &str,
    out: &mut Vec<String>,
) -> Result<(), HashError> {
    let name = prefixes.qualified(key, path)?;
    match value {
        Value::Null => {}
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                extension_entries(key, item, prefixes, &format!("{path}[{i}]"), out)?;
            }
        }
        Value::Object(object) => match object.get("@value").or_else(|| object.get("@id")) {
            Some(scalar) => out.push(scalar_entry(&name, scalar, prefixes, path)?),
            None => {
                let children = extensions(object, &|_| false, prefixes, path)?;
                out.push(format!("{name}{children}"));
            }
        },
        scalar => out.push(scalar_entry(&name, scalar, prefixes, path)?),
    }
    Ok(())
}

/// `name=value` of an extension's scalar; the value is normalised as a URI if it is a string
/// (which leaves other text as it is), a decimal if a number.
fn scalar_entry(
    name: &str,
    value: &Value,
    prefixes: &Prefixes,
    path: &str,
) -> Result<String, HashError> {
    let text = match value {
        Value::String(s) if s.trim().is_empty() => return Ok(name.to_owned()),
        Value::String(_) => normalise(Form::Uri, value, prefixes, path)?,
        Value::Number(_) => normalise(Form::Decimal, value, prefixes, path)?,
        Value::Bool(b) => b.to_string(),
        _ => return Err(invalid(path, "not a string, number or boolean")),
    };
    Ok(format!("{name}={text}"))
}

/// A value in its normalised form.
fn normalise(
    form: Form,
    value: &Value,
    prefixes: &Prefixes,
    path: &str,
) -> Result<String, HashError> {
    let text = || -> Result<&str, HashError> {
        value
            .as_str()
            .map(str::trim)
            .ok_or_else(|| invalid(path, "not a string"))
    };
    match form {
        Form::Text => Ok(text()?.to_owned()),
        Form::Time => {
            let parsed = time::parse(text()?)
                .ok_or_else(|| invalid(path, "not an RFC 3339 date-time with a zone offset"))?;
            Ok(time::format_utc_millis(parsed.utc_millis))
        }
        Form::Uri => Ok(uri(text()?, prefixes)),
        Form::Vocab(prefix) => {
            let text = text()?;
            Ok(if text.contains(':') {
                uri(text, prefixes)
            } else {
                format!("{prefix}{text}")
            })
        }
        Form::Decimal => {
            let canonical = match value {
                Value::Number(n) => decimal::canonical(n),
                Value::String(s) => decimal::canonical_text(s.trim()),
                _ => None,
            };
            canonical.ok_or_else(|| invalid(path, "not a decimal number"))
        }
        Form::Bool => match value {
            Value::Bool(b) => Ok(b.to_string()),
            Value::String(s) if s == "true" || s == "false" => Ok(s.clone()),
            _ => Err(invalid(path, "not a boolean")),
        },
    }
}

/// A URI as the hash compares it (§8.9 rules 14 to 18).
fn uri(text: &str, prefixes: &Prefixes) -> String {
    if let Some(web) = cbv_urn_to_web(text) {
        return web;
    }
    let expanded = prefixes.expand(text);
    gs1::canonical_uri(expanded.as_deref().unwrap_or(text))
}

/// A CBV 1.x URN (`urn:epcglobal:cbv:bizstep:receiving`) as its CBV 2.0 web URI.
fn cbv_urn_to_web(text: &str) -> Option<String> {
    let rest = text.strip_prefix("urn:epcglobal:cbv:")?;
    let (kind, name) = rest.split_once(':')?;
    let web = match kind {
        "bizstep" => "BizStep-",
        "disp" => "Disp-",
        "btt" => "BTT-",
        "sdt" => "SDT-",
        "er" => "ER-",
        _ => return None,
    };
    Some(format!("{CBV}{web}{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prefixes_from_contexts() {
        let prefixes = Prefixes::standard().with_context(&json!([
            "https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
            {"example": "https://ns.example.com/epcis/", "ex2": {"@id": "urn:ex2:"}},
            "https://node.example/epcis/context/custody.jsonld"
        ]));
        assert_eq!(
            prefixes.qualified("example:f", "f").unwrap(),
            "{https://ns.example.com/epcis/}f"
        );
        assert_eq!(prefixes.qualified("ex2:g", "g").unwrap(), "{urn:ex2:}g");
        assert_eq!(
            prefixes.qualified("custody:eventId", "f").unwrap(),
            "{urn:custody:epcis:}eventId"
        );
        assert_eq!(
            prefixes.qualified("https://a.example/ns#x", "f").unwrap(),
            "{https://a.example/ns#}x"
        );
        assert!(matches!(
            prefixes.qualified("other:x", "f"),
            Err(HashError::UnknownPrefix { .. })
        ));
        assert!(matches!(
            prefixes.qualified("plain", "f"),
            Err(HashError::UnknownProperty { .. })
        ));
    }

    #[test]
    fn missing_and_bad_fields_are_named() {
        let event = json!({"type": "ObjectEvent", "eventTimeZoneOffset": "+00:00"});
        assert_eq!(
            event_hash_id(&event),
            Err(HashError::Missing {
                field: "eventTime".into()
            })
        );
        let event = json!({
            "type": "ObjectEvent", "eventTime": "2020-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00", "readPoint": {"id": 5}
        });
        assert_eq!(
            event_hash_id(&event).unwrap_err().to_string(),
            "readPoint.id: not a string"
        );
        let event = json!({
            "type": "ObjectEvent", "eventTime": "2020-01-01T00:00:00Z",
            "eventTimeZoneOffset": "+00:00", "bizstep": "shipping"
        });
        assert_eq!(
            event_hash_id(&event).unwrap_err().code(),
            "epcis_hash.unknown_property"
        );
    }
}
