//! The `splitbrain` binary: argument parsing, then a call into the library.
fn main() -> std::process::ExitCode {
    splitbrain::cli::main()
}
