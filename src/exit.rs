//! Exit codes of the `splitbrain` binary (sysexits for usage and environment errors).

/// The history (or run) is linearizable / every checker passed.
pub const VALID: u8 = 0;
/// At least one checker found a violation.
pub const INVALID: u8 = 1;
/// No violation found, but at least one check could not finish (time or memory limit, too
/// little evidence).
pub const UNKNOWN: u8 = 2;
/// Bad command line or campaign file.
pub const USAGE: u8 = 64;
/// Bad input data (malformed history).
pub const DATA_ERR: u8 = 65;
/// An input file does not exist or cannot be read (EX_NOINPUT).
pub const NO_INPUT: u8 = 66;
/// Something the run needs is not available (a binary, a kernel feature).
pub const UNAVAILABLE: u8 = 69;
/// Internal error.
pub const SOFTWARE: u8 = 70;
/// An output (the results directory) cannot be created (EX_CANTCREAT).
pub const CANT_CREATE: u8 = 73;
/// Missing privileges (root is needed for namespaces and cgroups).
pub const NO_PERM: u8 = 77;
