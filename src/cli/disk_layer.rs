//! `splitbrain disk-layer` (hidden): the lazy disk layer as a process of its own, for a node
//! on a remote host (the controller uploads its own executable there and starts it over
//! SSH). `serve` mounts the layer and answers control requests on a Unix socket until
//! SIGTERM (or SIGINT, SIGHUP), then unmounts; `ctl` sends one request and prints the
//! layer's typed reply as one JSON line ([`crate::disk::control`]).

use crate::disk::control::{self, Request};
use crate::exit::{Failure, FailureKind};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Args)]
pub struct DiskLayerArgs {
    #[command(subcommand)]
    pub command: DiskLayerCommand,
}

#[derive(Debug, Subcommand)]
pub enum DiskLayerCommand {
    /// Mount the layer at MOUNT over BACKING and serve control requests on CONTROL.
    Serve(ServeArgs),
    /// Send one request (a JSON line, as `{"request":"status"}`) to the layer serving
    /// SOCKET; print its reply as one JSON line. Exit 0 with a reply, 69 when no layer
    /// answers there, 64 for a request that is not one.
    Ctl(CtlArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The mount point: the node's data directory.
    #[arg(long, value_name = "DIR")]
    pub mount: PathBuf,
    /// The backing directory: the node's disk, what survives it.
    #[arg(long, value_name = "DIR")]
    pub backing: PathBuf,
    /// Where entries removed but not synced are parked (outside BACKING).
    #[arg(long, value_name = "DIR")]
    pub parked: PathBuf,
    /// The Unix socket to answer control requests on (made once the layer is mounted).
    #[arg(long, value_name = "SOCKET")]
    pub control: PathBuf,
}

#[derive(Debug, Args)]
pub struct CtlArgs {
    pub socket: PathBuf,
    pub request: String,
}

/// How long `ctl` waits for a reply.
const CTL_TIMEOUT: Duration = Duration::from_secs(15);

pub fn run(args: DiskLayerArgs) -> super::Outcome {
    match args.command {
        DiskLayerCommand::Serve(args) => serve(args),
        DiskLayerCommand::Ctl(args) => ctl(args),
    }
}

fn serve(args: ServeArgs) -> super::Outcome {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal};
    // Blocked before any thread starts (the FUSE session's included): the signals are
    // taken by the wait below, never by a thread that would die of them mid-request.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&signals), None)
        .map_err(|e| Failure::new(FailureKind::Internal, format!("blocking signals: {e}")))?;
    let unavailable = |what: String| Failure::new(FailureKind::Unavailable, what);
    let layer = crate::disk::DiskLayer::mount(
        &args.mount,
        &args.backing,
        &args.parked,
        crate::disk::CACHE_LIMIT,
    )
    .map_err(|e| {
        unavailable(format!(
            "mounting the disk layer at {}: {e}",
            args.mount.display()
        ))
    })?;
    let layer = Arc::new(Mutex::new(layer));
    let _ = std::fs::remove_file(&args.control);
    let listener = std::os::unix::net::UnixListener::bind(&args.control)
        .map_err(|e| unavailable(format!("listening on {}: {e}", args.control.display())))?;
    crate::stderr_line!(
        "splitbrain disk-layer: {} mounted over {}, control socket {}",
        args.mount.display(),
        args.backing.display(),
        args.control.display()
    );
    let serving = layer.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let layer = serving.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = control::serve_connection(&layer, stream) {
                crate::stderr_line!("splitbrain disk-layer: a control connection: {e}");
            }
        }
    });
    let signal = signals
        .wait()
        .map_err(|e| Failure::new(FailureKind::Internal, format!("waiting for signals: {e}")))?;
    crate::stderr_line!("splitbrain disk-layer: {signal:?}: unmounting");
    let _ = std::fs::remove_file(&args.control);
    let mut layer = layer.lock().unwrap_or_else(|e| e.into_inner());
    layer.unmount().map_err(|e| {
        Failure::new(
            FailureKind::Internal,
            format!("unmounting {}: {e}", args.mount.display()),
        )
    })?;
    Ok(crate::exit::VALID)
}

fn ctl(args: CtlArgs) -> super::Outcome {
    let request: Request = serde_json::from_str(&args.request)
        .map_err(|e| Failure::usage(format!("not a disk layer request: {e}")))?;
    let reply = control::ask(&args.socket, &request, CTL_TIMEOUT)
        .map_err(|e| Failure::new(FailureKind::Unavailable, e))?;
    super::emit(&format!(
        "{}\n",
        serde_json::to_string(&reply).expect("a reply is plain data")
    ));
    Ok(crate::exit::VALID)
}
