//! Engine errors: one type for every failure the engine can report.
//!
//! The engine knows nothing of Postgres, so an error carries a [`ErrorKind`] that says *what kind*
//! of failure it is; the Postgres layer maps each kind to one SQLSTATE in one place
//! (`src/pg/errors.rs`). Messages follow the PostgreSQL style: lower case, no trailing period,
//! naming the column / model / value at fault; detail and hint are full sentences.

use std::fmt;

/// What kind of failure an [`EngineError`] is. Each kind maps to one SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// An option, argument or algorithm name is not valid (22023).
    InvalidParameter,
    /// A column the model needs does not exist (42703).
    UndefinedColumn,
    /// A column exists but has a type the model cannot use (42804).
    DatatypeMismatch,
    /// A column type or feature this version does not handle yet (0A000).
    NotSupported,
    /// The data cannot train a model: too few rows, constant or all-NULL columns (22000).
    InsufficientData,
    /// NaN or infinity in data, or a result that is not a finite number (22003).
    NonFiniteValue,
    /// Model bytes that fail their integrity checks (XX001).
    DataCorrupted,
    /// A model named by the user does not exist (42704).
    UndefinedObject,
    /// A source relation does not exist (42P01).
    UndefinedTable,
    /// A source has two columns of the same name (42701).
    DuplicateColumn,
    /// A required argument is NULL (22004).
    NullValue,
    /// A configured limit was reached, e.g. customer_value.max_training_rows (54000).
    TooManyRows,
    /// A numerical procedure failed on valid input, e.g. collinear features (22000).
    FitFailed,
    /// The caller may not use or change this model (42501).
    InsufficientPrivilege,
    /// A write attempted where the database is read-only, e.g. a hot standby (25006).
    ReadOnly,
    /// The system is not in the state the call needs, e.g. a store not yet distributed (55000).
    PrerequisiteState,
    /// The work would need more memory than its budget or than the system gives (53200).
    OutOfMemory,
    /// The system refused another resource, e.g. a thread under a process limit (53000).
    InsufficientResources,
    /// An array of another length or shape than a feature array needs (2202E).
    ArrayShape,
    /// Two values that must be told apart are not, e.g. two customer keys that print alike
    /// (21000).
    CardinalityViolation,
    /// A bug: an invariant of the engine itself was broken (XX000).
    Internal,
}

/// An engine failure with a Postgres-style message and optional detail and hint.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineError {
    pub kind: ErrorKind,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EngineError {
            kind,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameter, message)
    }

    pub fn insufficient_data(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InsufficientData, message)
    }

    pub fn corrupted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::DataCorrupted, message)
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " (detail: {detail})")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for EngineError {}

pub type Result<T> = std::result::Result<T, EngineError>;
