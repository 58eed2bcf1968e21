//! Validation against GS1's EPCIS 2.0 JSON Schema.
//!
//! The schema is GS1's, not ours: the caller reads it (from `../shared/data/epcis/` in tests, a
//! configured file in a node) and passes it in, so this crate holds no copy that could drift
//! from the standard. Formats (`uri`, `date-time`) are checked too, as the schema means them.

use serde_json::Value;

/// One way an instance breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON Pointer to the offending value (`/epcisBody/eventList/0/readPoint`).
    pub instance_path: String,
    /// What the schema says is wrong.
    pub message: String,
}

/// Why validation could not say yes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The schema given is not a usable JSON Schema.
    #[error("the EPCIS JSON Schema does not compile: {message}")]
    BadSchema {
        /// The compiler's message.
        message: String,
    },
    /// The instance breaks the schema.
    #[error("not valid EPCIS 2.0: {}", describe(.violations))]
    Invalid {
        /// Every violation found, in the validator's order.
        violations: Vec<Violation>,
    },
}

impl SchemaError {
    /// The stable code of the error.
    pub fn code(&self) -> &'static str {
        match self {
            SchemaError::BadSchema { .. } => "epcis_schema.bad_schema",
            SchemaError::Invalid { .. } => "epcis_schema.invalid",
        }
    }
}

fn describe(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.instance_path, v.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A compiled EPCIS 2.0 JSON Schema (draft-07).
pub struct Validator {
    inner: jsonschema::Validator,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Validator(EPCIS JSON Schema)")
    }
}

impl Validator {
    /// Compiles the schema. Its references are all inside it; nothing is fetched.
    pub fn new(schema: &Value) -> Result<Validator, SchemaError> {
        let inner = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(true)
            .build(schema)
            .map_err(|e| SchemaError::BadSchema {
                message: e.to_string(),
            })?;
        Ok(Validator { inner })
    }

    /// Checks a document or an event against the schema.
    pub fn validate(&self, instance: &Value) -> Result<(), SchemaError> {
        let violations: Vec<Violation> = self
            .inner
            .iter_errors(instance)
            .map(|e| Violation {
                instance_path: e.instance_path().to_string(),
                message: e.to_string(),
            })
            .collect();
        if violations.is_empty() {
            Ok(())
        } else {
            Err(SchemaError::Invalid { violations })
        }
    }
}
