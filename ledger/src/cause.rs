//! An error kept whole as the source of another.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// The error underneath another (the database's, a parser's), kept with its own chain of
/// sources rather than flattened into text. It is shared, so the errors that carry it stay
/// `Clone`; two are equal only if they are the same error.
#[derive(Debug, Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync>);

impl Cause {
    /// Keeps `error` whole.
    pub fn new(error: impl Error + Send + Sync + 'static) -> Cause {
        Cause(Arc::new(error))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Cause) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Cause {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_cause_shows_its_error_and_keeps_its_sources() {
        let cause = Cause::new(Outer(std::io::Error::other("inner")));
        assert_eq!(cause.to_string(), "outer");
        assert_eq!(
            cause.source().map(|s| s.to_string()).as_deref(),
            Some("inner")
        );
        assert_eq!(cause.clone(), cause);
        assert_ne!(cause, Cause::new(std::io::Error::other("outer")));
    }
}
