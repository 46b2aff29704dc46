//! The lazy disk layer mounted for real: unsynced writes and entries are gone after a drop,
//! synced ones stay; a layer whose harness was SIGKILLed is unmounted by `cleanup`.

mod common;

use common::{skip, Need};
use splitbrain::disk::{is_our_mount, DiskLayer, NodeDisks};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn have_fuse(test: &str) -> bool {
    let probe = splitbrain::capability::probe(splitbrain::capability::Capability::Fuse);
    if !probe.is_ok() {
        skip(
            test,
            Need::Fuse,
            format!("FUSE is not usable: {}", probe.detail),
        );
    }
    probe.is_ok()
}

fn mount(dir: &Path) -> DiskLayer {
    DiskLayer::mount(
        &dir.join("data"),
        &dir.join("disk/backing"),
        &dir.join("disk/parked"),
        1 << 20,
    )
    .expect("mounting the layer")
}

#[test]
fn unsynced_writes_are_lost_on_drop_and_synced_ones_kept() {
    if !have_fuse("unsynced_writes_are_lost_on_drop_and_synced_ones_kept") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut layer = mount(dir.path());
    let data = dir.path().join("data");
    let backing = dir.path().join("disk/backing");
    assert!(is_our_mount(&data.canonicalize().unwrap()));

    // Synced: the file, its data, and its directory entry.
    let mut kept = File::create(data.join("kept")).unwrap();
    kept.write_all(b"durable").unwrap();
    kept.sync_all().unwrap();
    File::open(&data).unwrap().sync_all().unwrap();
    // Not synced: a new file, an append to the synced one, a new directory.
    fs::write(data.join("lost"), b"volatile").unwrap();
    OpenOptions::new()
        .append(true)
        .open(data.join("kept"))
        .unwrap()
        .write_all(b" and more")
        .unwrap();
    fs::create_dir(data.join("dir")).unwrap();
    assert_eq!(fs::read(data.join("lost")).unwrap(), b"volatile");
    assert_eq!(fs::read(data.join("kept")).unwrap(), b"durable and more");
    assert_eq!(fs::read(backing.join("kept")).unwrap(), b"durable");
    let unsynced = layer.state().unsynced();
    assert_eq!(unsynced.bytes, 8 + 9);
    assert_eq!(unsynced.entries, 2);

    let dropped = layer.state().drop_unsynced();
    assert!(dropped.errors.is_empty(), "{:?}", dropped.errors);
    assert_eq!(dropped.lost, unsynced);
    assert_eq!(fs::read(data.join("kept")).unwrap(), b"durable");
    assert!(!data.join("lost").exists());
    assert!(!data.join("dir").exists());
    let names: Vec<_> = fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["kept"]);

    // A rename over a synced file, synced through the directory, survives a drop.
    fs::write(data.join("kept.tmp"), b"replaced").unwrap();
    File::open(data.join("kept.tmp"))
        .unwrap()
        .sync_all()
        .unwrap();
    fs::rename(data.join("kept.tmp"), data.join("kept")).unwrap();
    File::open(&data).unwrap().sync_all().unwrap();
    layer.state().drop_unsynced();
    assert_eq!(fs::read(data.join("kept")).unwrap(), b"replaced");

    // Faults: a failing fsync, a full disk.
    layer.state().faults.fsync_error = true;
    let file = File::create(data.join("f")).unwrap();
    assert_eq!(
        file.sync_all().unwrap_err().raw_os_error(),
        Some(nix::libc::EIO)
    );
    layer.state().faults = Default::default();
    layer.state().faults.enospc = true;
    let err = fs::write(data.join("f"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(nix::libc::ENOSPC));
    layer.state().faults = Default::default();

    let mountpoint = layer.mountpoint().to_path_buf();
    layer.unmount().unwrap();
    assert!(!is_our_mount(&mountpoint), "unmounted");
    // A clean unmount writes back what was cached.
    assert_eq!(fs::read(backing.join("kept")).unwrap(), b"replaced");
}

const CHILD_ENV: &str = "SPLITBRAIN_DISK_TEST_CHILD";

/// Run as a child process by the test below: records and mounts a layer, says so, waits to
/// be killed.
#[test]
#[ignore = "run by cleanup_after_sigkill_unmounts_the_layer"]
fn child_mounts_and_waits() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let run =
        splitbrain::topology::RunId::parse(&fs::read_to_string(dir.join("run")).unwrap()).unwrap();
    let mut disks = NodeDisks::default();
    disks
        .mount_node("n1", &dir.join("nodes/n1/data"), |mount| {
            splitbrain::cleanup::record(
                &run,
                &[splitbrain::cleanup::Resource::Mount(mount.to_owned())],
            )
        })
        .unwrap();
    fs::write(dir.join("mounted"), b"").unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

#[test]
fn cleanup_after_sigkill_unmounts_the_layer() {
    if !have_fuse("cleanup_after_sigkill_unmounts_the_layer") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let run = splitbrain::topology::RunId::random();
    fs::write(dir.path().join("run"), run.as_str()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_mounts_and_waits",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, dir.path())
        .env(splitbrain::cleanup::STATE_DIR_ENV, &state)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.path().join("mounted").exists() {
        assert!(Instant::now() < deadline, "the child never mounted");
        assert!(child.try_wait().unwrap().is_none(), "the child died");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mountpoint = dir.path().join("nodes/n1/data").canonicalize().unwrap();
    assert!(is_our_mount(&mountpoint));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        is_our_mount(&mountpoint),
        "a SIGKILLed harness leaves its mount"
    );

    std::env::set_var(splitbrain::cleanup::STATE_DIR_ENV, &state);
    let report =
        splitbrain::cleanup::cleanup(Some(&run), splitbrain::run::CLEANUP_INSIDE_NAMESPACES);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(
        report
            .removed
            .iter()
            .any(|r| r.contains("disk layer mount")),
        "{:?}",
        report.removed
    );
    assert!(!is_our_mount(&mountpoint), "cleanup unmounted it");
    assert!(!state.join(run.as_str()).exists(), "and forgot the run");
    // A second cleanup has nothing to do.
    assert!(
        splitbrain::cleanup::cleanup(Some(&run), splitbrain::run::CLEANUP_INSIDE_NAMESPACES)
            .is_clean()
    );
}

/// Runs the shipped `campaign` with `disk: {layer: true}` appended (no disk fault), for a
/// short main phase: it must stay valid, and its nodes' data must be on the layer's backing
/// directory (the layer was mounted and the nodes wrote through it).
fn shipped_campaign_passes_on_the_layer(campaign: &str) {
    let dir = tempfile::tempdir().unwrap();
    let text = fs::read_to_string(common::runs::workload(campaign)).unwrap();
    let on_layer = dir.path().join(campaign);
    fs::write(&on_layer, format!("{text}\ndisk: {{layer: true}}\n")).unwrap();
    let out = common::runs::run(
        &on_layer,
        &dir.path().join("results"),
        &["--time-limit", "8s", "--seed", "1"],
    );
    let report = common::runs::text(&out);
    assert_eq!(out.status.code(), Some(0), "{report}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let run_dir = stdout
        .lines()
        .find_map(|l| l.strip_prefix("results: "))
        .unwrap_or_else(|| panic!("no results directory in: {report}"));
    let run_dir = Path::new(run_dir.trim());
    for node in ["n1", "n2", "n3"] {
        let backing = run_dir.join(format!("nodes/{node}/disk/backing"));
        let files = fs::read_dir(&backing)
            .unwrap_or_else(|e| panic!("{}: {e}", backing.display()))
            .count();
        assert!(files > 0, "{node} wrote nothing through the layer");
        assert!(
            !is_our_mount(&run_dir.join(format!("nodes/{node}/data"))),
            "{node}'s layer is unmounted at the end"
        );
    }
}

#[test]
fn raft_campaign_passes_on_the_layer() {
    let test = "raft_campaign_passes_on_the_layer";
    if !nix::unistd::geteuid().is_root() {
        skip(test, Need::Root, "needs root (namespaces, cgroups)");
        return;
    }
    if !have_fuse(test) {
        return;
    }
    if !splitbrain::system::clusterkv::locate_binary().is_file() {
        skip(test, Need::Clusterkv, "clusterkv is not built");
        return;
    }
    shipped_campaign_passes_on_the_layer("raft.yaml");
}

#[test]
fn etcd_campaign_passes_on_the_layer() {
    let test = "etcd_campaign_passes_on_the_layer";
    if !nix::unistd::geteuid().is_root() {
        skip(test, Need::Root, "needs root (namespaces, cgroups)");
        return;
    }
    if !have_fuse(test) {
        return;
    }
    let etcd = Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .status();
    if !etcd.is_ok_and(|s| s.success()) {
        skip(
            test,
            Need::Etcd,
            "needs `etcd` (apt-get install etcd-server)",
        );
        return;
    }
    shipped_campaign_passes_on_the_layer("etcd-kv.yaml");
}
