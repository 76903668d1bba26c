//! The errors of parsing, executing and calling functions, with Go's
//! messages.

use thiserror::Error;

/// A parse failure, located by byte offset in the template source.
#[derive(Debug, Clone, Error)]
#[error("template: {name}:{line}: {message}")]
pub struct ParseError {
    /// The template (file) name being parsed.
    pub name: String,
    pub line: usize,
    pub message: String,
}

/// An execution failure with Go's message and its location.
#[derive(Debug, Clone, Error)]
#[error("{message}")]
pub struct ExecError {
    /// The file of the innermost node being executed.
    pub file: String,
    pub line: usize,
    pub column: Option<usize>,
    /// The complete Go-style message.
    pub message: String,
    /// True when raised by `fail`/`required` (Helm reports these specially).
    pub user_failure: bool,
}

/// Why running a text parsed at run time failed (Helm's `tpl`).
#[derive(Debug, Clone, Error)]
pub enum TextError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// A function's error before the executor locates it (Go wraps it as
/// "error calling NAME: ...").
#[derive(Debug, Clone)]
pub struct FuncError {
    pub message: String,
    /// The complete, located error of a template the function ran (`include`).
    pub nested: Option<Box<ExecError>>,
    /// Raised on purpose by the template's author (Helm's `fail` and
    /// `required`), which hosts may report differently from a bug.
    pub user_failure: bool,
}

impl FuncError {
    pub fn new(message: impl Into<String>) -> FuncError {
        FuncError {
            message: message.into(),
            nested: None,
            user_failure: false,
        }
    }

    /// An error the template's author raised on purpose.
    pub fn user_failure(message: impl Into<String>) -> FuncError {
        FuncError {
            user_failure: true,
            ..FuncError::new(message)
        }
    }

    /// The failure of a template the function ran.
    pub fn nested(error: ExecError) -> FuncError {
        FuncError {
            message: error.message.clone(),
            user_failure: error.user_failure,
            nested: Some(Box::new(error)),
        }
    }
}

impl From<String> for FuncError {
    fn from(message: String) -> FuncError {
        FuncError::new(message)
    }
}

impl From<&str> for FuncError {
    fn from(message: &str) -> FuncError {
        FuncError::new(message)
    }
}
