//! `splitbrain doctor`: what this machine offers, and what its gaps disable; with
//! `--hosts CAMPAIGN`, what each of a campaign's remote hosts offers, checked over SSH.

use crate::campaign::{Campaign, SystemSpec};
use crate::exit::{Failure, FailureKind};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Check the remote hosts of this campaign (its `hosts:` and `ssh:`) instead of this
    /// machine: SSH, root or sudo, nft/iptables, tc netem, FUSE, cgroup v2, clock setting and
    /// the system's program, per host.
    #[arg(long, value_name = "CAMPAIGN")]
    pub hosts: Option<PathBuf>,
}

/// Prints the probe table. Exit 0 when the default path (partitions, pauses, kills) can run,
/// 77 without root, 69 when another essential piece is missing. With `--hosts`: 0 when
/// every host is usable, 69 naming each host and check that is not, 64 for a campaign
/// without hosts, 66 for a missing campaign file.
pub fn run(args: DoctorArgs) -> super::Outcome {
    if let Some(path) = args.hosts {
        return run_hosts(&path);
    }
    let probes = crate::capability::probe_all();
    super::emit(&format!("{}\n", crate::doctor::render(&probes)));
    if crate::capability::require_root().is_err() {
        super::emit("run needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) to create network namespaces and cgroups\n");
        return Ok(crate::exit::NO_PERM);
    }
    if crate::doctor::default_path_ready(&probes) {
        super::emit("ready: the default faults (partitions, pauses, kills) can run\n");
        Ok(crate::exit::VALID)
    } else {
        super::emit("not ready: an essential capability is missing (see above)\n");
        Ok(crate::exit::UNAVAILABLE)
    }
}

fn run_hosts(path: &std::path::Path) -> super::Outcome {
    let campaign = crate::campaign::load(path).map_err(|e| {
        let kind = match &e {
            crate::campaign::CampaignError::Read { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                FailureKind::NoInput
            }
            _ => FailureKind::Usage,
        };
        Failure::new(kind, e)
    })?;
    if campaign.hosts.is_empty() {
        return Err(Failure::usage(format!(
            "{}: no `hosts:` section: nothing remote to check (`splitbrain doctor` checks this machine)",
            path.display()
        )));
    }
    let options = crate::remote::SshOptions::from_spec(campaign.ssh.as_ref())
        .map_err(|e| Failure::usage(format!("{}: ssh: {e}", path.display())))?;
    let control_dir = ControlDir::create()?;
    let program = system_program(&campaign);
    let probes = crate::doctor::probe_hosts(
        &campaign.hosts,
        &options,
        &control_dir.0,
        program.as_deref(),
    );
    super::emit(&format!("{}\n", crate::doctor::render_hosts(&probes)));
    let missing = crate::doctor::hosts_missing(&probes);
    if missing.is_empty() {
        super::emit(&format!("ready: all {} hosts are reachable and can run the nodes with partitions, pauses and kills\n",
            campaign.hosts.len()
        ));
        Ok(crate::exit::VALID)
    } else {
        super::emit(&format!("not ready: missing {}\n", missing.join("; ")));
        Ok(crate::exit::UNAVAILABLE)
    }
}

/// The program a host needs for the campaign's system (`None`: not checked).
fn system_program(campaign: &Campaign) -> Option<String> {
    match &campaign.system {
        SystemSpec::Etcd(etcd) => Some(
            etcd.binary
                .as_ref()
                .map_or("etcd".to_owned(), |b| b.display().to_string()),
        ),
        SystemSpec::Clusterkv(_) => Some("clusterkv".into()),
        SystemSpec::Redis(_) => Some("redis-server".into()),
        _ => None,
    }
}

/// A private directory for the control sockets, short enough for a socket address, removed
/// on drop.
struct ControlDir(PathBuf);

impl ControlDir {
    fn create() -> Result<ControlDir, Failure> {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(format!(
            "sb-doctor-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| {
                Failure::new(
                    FailureKind::CantCreate,
                    format!("creating {}: {e}", path.display()),
                )
            })?;
        Ok(ControlDir(path))
    }
}

impl Drop for ControlDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
