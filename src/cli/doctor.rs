//! `splitbrain doctor`: what this machine offers, and what its gaps disable.

use clap::Args;

#[derive(Debug, Args)]
pub struct DoctorArgs {}

/// Prints the probe table. Exit 0 when the default path (partitions, pauses, kills) can run,
/// 77 without root, 69 when another essential piece is missing.
pub fn run(_args: DoctorArgs) -> super::Outcome {
    let probes = crate::capability::probe_all();
    println!("{}", crate::doctor::render(&probes));
    if crate::capability::require_root().is_err() {
        println!("run needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) to create network namespaces and cgroups");
        return Ok(crate::exit::NO_PERM);
    }
    if crate::doctor::default_path_ready(&probes) {
        println!("ready: the default faults (partitions, pauses, kills) can run");
        Ok(crate::exit::VALID)
    } else {
        println!("not ready: an essential capability is missing (see above)");
        Ok(crate::exit::UNAVAILABLE)
    }
}
