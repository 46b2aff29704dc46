//! Helpers shared by the OS-layer tests (namespaces, cgroups, nodes).
#![allow(dead_code)]

pub mod runs;
pub mod skip;
pub mod ssh_hosts;
pub use skip::{skip, Need};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

/// True when the test can run as root; otherwise skips it (see [`skip`]).
pub fn have_root(test: &str) -> bool {
    match splitbrain::capability::require_root() {
        Ok(()) => true,
        Err(e) => {
            skip(test, Need::Root, format!("needs root ({e})"));
            false
        }
    }
}

/// True when `nft` runs; otherwise skips the test.
pub fn have_nft(test: &str) -> bool {
    match splitbrain::capability::program_version("nft", &["--version"]) {
        Ok(_) => true,
        Err(e) => {
            skip(test, Need::Nftables, format!("nft is not installed ({e})"));
            false
        }
    }
}

/// Whether runs on the disk layer can go on here: root (namespaces, cgroups, mounts) and a
/// usable FUSE. Otherwise skips `test` naming the first that is missing.
pub fn can_use_the_disk_layer(test: &str) -> bool {
    if !have_root(test) {
        return false;
    }
    let fuse = splitbrain::capability::probe(splitbrain::capability::Capability::Fuse);
    if !fuse.is_ok() {
        skip(
            test,
            Need::Fuse,
            format!("FUSE is not usable: {}", fuse.detail),
        );
        return false;
    }
    true
}

/// Whether runs of clusterkv clusters can go on here: root (namespaces, cgroups), with
/// `disk` FUSE for the disk layer, and the built `clusterkv`. Otherwise skips `test`
/// naming the first that is missing (see [`skip`]).
pub fn can_run_clusterkv(test: &str, disk: bool) -> bool {
    let runs = if disk {
        can_use_the_disk_layer(test)
    } else {
        have_root(test)
    };
    if !runs {
        return false;
    }
    let binary = splitbrain::system::clusterkv::locate_binary();
    if !binary.is_file() {
        skip(
            test,
            Need::Clusterkv,
            format!(
                "clusterkv not built at {}; run `cargo build -p splitbrain-clusters`",
                binary.display()
            ),
        );
        return false;
    }
    true
}

/// The (device, inode) of a namespace file, to compare namespaces.
pub fn ns_identity(path: &Path) -> (u64, u64) {
    splitbrain::netns::identity(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Accepts one connection on `listener` and echoes what it reads, at most 5 s.
pub fn echo_once(listener: TcpListener) -> std::io::Result<()> {
    listener.set_nonblocking(false)?;
    let (mut stream, _) = listener.accept()?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 64];
    let n = stream.read(&mut buf)?;
    stream.write_all(&buf[..n])
}

/// Connects to `addr`, sends `message` and returns the echo.
pub fn ping_pong(addr: SocketAddr, message: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(message)?;
    let mut buf = vec![0u8; message.len()];
    stream.read_exact(&mut buf)?;
    Ok(buf)
}

/// The one-letter state of a process from `/proc/<pid>/stat` (`S`, `R`, `T`, `Z`, ...).
pub fn process_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}
