//! Exit codes of the `splitbrain` binary (sysexits for usage and environment errors), and
//! the kinds of failure they stand for.
//!
//! Every failure a command reports is one [`FailureKind`]; its exit code is chosen here and
//! nowhere else. The layers below the CLI return typed errors that name their kind (e.g.
//! [`crate::run::RunError::kind`]); the CLI turns them into a [`Failure`] and `cli::main`
//! prints it and exits with its code.

/// The history (or run) is linearizable / every checker passed.
pub const VALID: u8 = 0;
/// At least one checker found a violation.
pub const INVALID: u8 = 1;
/// No violation found, but at least one check could not finish (time or memory limit, too
/// little evidence).
pub const UNKNOWN: u8 = 2;
/// Bad command line or campaign file.
pub const USAGE: u8 = FailureKind::Usage.exit_code();
/// Bad input data (malformed history).
pub const DATA_ERR: u8 = FailureKind::BadData.exit_code();
/// An input file does not exist or cannot be read (EX_NOINPUT).
pub const NO_INPUT: u8 = FailureKind::NoInput.exit_code();
/// Something the run needs is not available (a binary, a kernel feature).
pub const UNAVAILABLE: u8 = FailureKind::Unavailable.exit_code();
/// Internal error.
pub const SOFTWARE: u8 = FailureKind::Internal.exit_code();
/// An output (the results directory) cannot be created (EX_CANTCREAT).
pub const CANT_CREATE: u8 = FailureKind::CantCreate.exit_code();
/// Missing privileges (root is needed for namespaces and cgroups).
pub const NO_PERM: u8 = FailureKind::NoPermission.exit_code();
/// Interrupted by a signal (after cleaning up).
pub const INTERRUPTED: u8 = FailureKind::Interrupted.exit_code();

/// Why a command could not give a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// A bad command line or campaign file.
    Usage,
    /// Bad input data (a malformed history).
    BadData,
    /// An input file is missing or unreadable.
    NoInput,
    /// Something needed is not on this machine (a binary, a kernel feature).
    Unavailable,
    /// An output (the results directory) cannot be created.
    CantCreate,
    /// Missing privileges.
    NoPermission,
    /// Cancelled by a signal.
    Interrupted,
    /// A bug or an unexpected error.
    Internal,
}

impl FailureKind {
    /// The exit code of this kind of failure.
    pub const fn exit_code(self) -> u8 {
        match self {
            FailureKind::Usage => 64,
            FailureKind::BadData => 65,
            FailureKind::NoInput => 66,
            FailureKind::Unavailable => 69,
            FailureKind::Internal => 70,
            FailureKind::CantCreate => 73,
            FailureKind::NoPermission => 77,
            FailureKind::Interrupted => 130,
        }
    }
}

/// A failure as the CLI reports it: its kind and the line it prints.
#[derive(Debug)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl std::fmt::Display) -> Failure {
        Failure {
            kind,
            message: message.to_string(),
        }
    }

    pub fn usage(message: impl std::fmt::Display) -> Failure {
        Failure::new(FailureKind::Usage, message)
    }

    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            FailureKind::Internal => write!(f, "error: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// Any error not classified below the CLI is internal.
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::new(FailureKind::Internal, format!("{e:#}"))
    }
}

impl From<serde_json::Error> for Failure {
    fn from(e: serde_json::Error) -> Failure {
        Failure::from(anyhow::Error::from(e))
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::from(anyhow::Error::from(e))
    }
}

/// A missing privilege: exit 77.
impl From<crate::capability::PrivilegeError> for Failure {
    fn from(e: crate::capability::PrivilegeError) -> Failure {
        Failure::new(FailureKind::NoPermission, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_documented_code() {
        let codes: Vec<u8> = [
            FailureKind::Usage,
            FailureKind::BadData,
            FailureKind::NoInput,
            FailureKind::Unavailable,
            FailureKind::Internal,
            FailureKind::CantCreate,
            FailureKind::NoPermission,
            FailureKind::Interrupted,
        ]
        .into_iter()
        .map(FailureKind::exit_code)
        .collect();
        assert_eq!(codes, [64, 65, 66, 69, 70, 73, 77, 130]);
    }

    #[test]
    fn an_unclassified_error_is_internal_and_says_so() {
        let failure = Failure::from(anyhow::anyhow!("boom"));
        assert_eq!(failure.exit_code(), 70);
        assert_eq!(failure.to_string(), "error: boom");
    }
}
