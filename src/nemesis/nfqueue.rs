//! A userspace packet holder on an NFQUEUE: delay and reordering where the kernel has no
//! netem.
//!
//! nftables rules in a node's namespace send packets to queue `N` (with `bypass`, so that
//! packets pass untouched whenever no holder is bound). A [`Holder`] thread lives in that
//! namespace, bound to queue `N`: it receives every queued packet's metadata, keeps it for
//! the time its [`HoldPolicy`] draws, then gives the kernel an ACCEPT verdict, which lets the
//! original packet continue on its way.
//!
//! Nothing is ever left queued: stopping (or dropping) a holder releases every packet it
//! holds, drains what the kernel queued meanwhile, and only then closes the socket. The
//! kernel drops packets still awaiting a verdict when their queue's socket closes, so that
//! order matters. Callers delete the queueing rules *before* stopping the holder, so nothing
//! new arrives while it drains.

use crate::netns::{self, NetnsError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long the holder sleeps at most between looks at its socket. The `nfq` socket offers
/// no descriptor to poll, so the holder looks non-blockingly this often; it bounds the extra
/// delay a packet may get and costs ~1000 cheap wake-ups a second.
const TICK: Duration = Duration::from_millis(1);
/// The kernel queue's length; when it is full the kernel accepts packets (fail-open) rather
/// than dropping them, so an overloaded holder weakens the fault instead of adding loss.
const KERNEL_QUEUE_LEN: u32 = 8192;
/// How long a stopping holder keeps draining the kernel queue after it last saw a packet.
const DRAIN_QUIET: Duration = Duration::from_millis(5);
/// How long a starting holder may take to bind its queue.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// How long each packet is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HoldPolicy {
    /// `mean ± jitter` (uniform), order kept: a packet never leaves before one queued ahead
    /// of it, as on a slow link.
    Delay { mean: Duration, jitter: Duration },
    /// Uniform in `0..=max_delay`, independently per packet, so later packets overtake
    /// earlier ones.
    Reorder { max_delay: Duration },
}

impl HoldPolicy {
    fn draw(&self, rng: &mut impl Rng) -> Duration {
        match *self {
            HoldPolicy::Delay { mean, jitter } => {
                let low = mean.saturating_sub(jitter);
                let high = mean + jitter;
                if high > low {
                    rng.gen_range(low..=high)
                } else {
                    mean
                }
            }
            HoldPolicy::Reorder { max_delay } => rng.gen_range(Duration::ZERO..=max_delay),
        }
    }

    fn keeps_order(&self) -> bool {
        matches!(self, HoldPolicy::Delay { .. })
    }
}

/// What a holder did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HolderStats {
    /// Packets received from the kernel queue.
    pub received: u64,
    /// Packets given back with an ACCEPT verdict.
    pub released: u64,
    /// Packets released after one that was queued behind them.
    pub overtaken: u64,
    /// The most packets held at one time.
    pub max_held: usize,
    /// Total time packets were held, in microseconds (divide by `released` for the mean).
    pub held_us: u64,
    /// Verdicts the kernel refused (the packet is then dropped by the kernel).
    pub verdict_errors: u64,
}

impl HolderStats {
    /// Mean time a released packet was held.
    pub fn mean_hold(&self) -> Duration {
        Duration::from_micros(self.held_us.checked_div(self.released).unwrap_or(0))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HolderError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("NFQUEUE {queue} in {netns}: {what}: {source}")]
    Queue {
        netns: String,
        queue: u16,
        what: &'static str,
        source: io::Error,
    },
    #[error("NFQUEUE holder in {netns} did not start within {START_TIMEOUT:?}")]
    StartTimeout { netns: String },
    #[error("NFQUEUE holder thread in {netns} panicked")]
    Panicked { netns: String },
}

/// A holder thread bound to one queue in one namespace; stops and joins when dropped.
pub struct Holder {
    netns: String,
    queue: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<HolderStats>>,
}

impl Holder {
    /// Starts a holder in `netns` bound to `queue`; returns once the queue is bound, so that
    /// rules sending packets to it can go in right after.
    pub fn start(
        netns: &str,
        queue: u16,
        policy: HoldPolicy,
        seed: u64,
    ) -> Result<Holder, HolderError> {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), HolderError>>();
        let thread_stop = stop.clone();
        let thread_ns = netns.to_owned();
        let thread = netns::spawn_in(netns, move || {
            let mut queue_handle = match open_queue(&thread_ns, queue) {
                Ok(q) => q,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return HolderStats::default();
                }
            };
            let _ = ready_tx.send(Ok(()));
            let stats = hold_loop(
                &mut queue_handle,
                policy,
                StdRng::seed_from_u64(seed),
                &thread_stop,
            );
            // Unbinding is a courtesy: closing the socket unbinds too, and every packet has
            // had its verdict by now.
            let _ = queue_handle.unbind(queue);
            stats
        })?;
        let mut holder = Holder {
            netns: netns.to_owned(),
            queue,
            stop,
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(())) => Ok(holder),
            Ok(Err(e)) => {
                let _ = holder.finish();
                Err(e)
            }
            Err(_) => {
                let _ = holder.finish();
                Err(HolderError::StartTimeout {
                    netns: netns.to_owned(),
                })
            }
        }
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Releases every held packet, drains the queue, joins the thread. Delete the rules
    /// feeding the queue first.
    pub fn stop(mut self) -> Result<HolderStats, HolderError> {
        self.finish()
    }

    fn finish(&mut self) -> Result<HolderStats, HolderError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(stats)) => Ok(stats),
            Some(Err(_)) => Err(HolderError::Panicked {
                netns: self.netns.clone(),
            }),
            None => Ok(HolderStats::default()),
        }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if self.thread.is_some() {
            if let Err(e) = self.finish() {
                crate::stderr_line!("splitbrain: warning: {e}");
            }
        }
    }
}

fn open_queue(netns: &str, queue: u16) -> Result<nfq::Queue, HolderError> {
    let err = |what: &'static str| {
        let netns = netns.to_owned();
        move |source: io::Error| HolderError::Queue {
            netns,
            queue,
            what,
            source,
        }
    };
    let mut q = nfq::Queue::open().map_err(err("opening the netlink socket"))?;
    q.bind(queue).map_err(err("binding"))?;
    // Metadata only: the holder never looks at payloads, and copying them costs.
    q.set_copy_range(queue, 0)
        .map_err(err("setting the copy range"))?;
    q.set_queue_max_len(queue, KERNEL_QUEUE_LEN)
        .map_err(err("setting the queue length"))?;
    q.set_fail_open(queue, true)
        .map_err(err("setting fail-open"))?;
    q.set_nonblocking(true);
    Ok(q)
}

/// Receives, holds and releases until `stop`, then releases everything and drains.
fn hold_loop(
    queue: &mut nfq::Queue,
    policy: HoldPolicy,
    mut rng: StdRng,
    stop: &AtomicBool,
) -> HolderStats {
    let mut stats = HolderStats::default();
    // Keyed by (release time, arrival number): the first entry is the next to go.
    let mut held: BTreeMap<(Instant, u64), (nfq::Message, Instant)> = BTreeMap::new();
    let mut arrivals: u64 = 0;
    let mut latest_release = Instant::now();
    let mut highest_released: Option<u64> = None;
    let mut release = |queue: &mut nfq::Queue,
                       stats: &mut HolderStats,
                       seq: u64,
                       mut msg: nfq::Message,
                       arrived: Instant| {
        msg.set_verdict(nfq::Verdict::Accept);
        match queue.verdict(msg) {
            Ok(()) => stats.released += 1,
            Err(_) => stats.verdict_errors += 1,
        }
        stats.held_us += arrived.elapsed().as_micros() as u64;
        match highest_released {
            Some(h) if seq < h => stats.overtaken += 1,
            _ => highest_released = Some(seq),
        }
    };
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        let mut got_any = false;
        loop {
            match queue.recv() {
                Ok(msg) => {
                    got_any = true;
                    let now = Instant::now();
                    let mut due = now
                        + if stopping {
                            Duration::ZERO
                        } else {
                            policy.draw(&mut rng)
                        };
                    if policy.keeps_order() {
                        due = due.max(latest_release);
                    }
                    latest_release = latest_release.max(due);
                    held.insert((due, arrivals), (msg, now));
                    arrivals += 1;
                    stats.received += 1;
                    stats.max_held = stats.max_held.max(held.len());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // Anything else (e.g. ENOSPC for an oversized message) is transient for
                // this holder: the kernel accepts what it cannot queue (fail-open).
                Err(_) => break,
            }
        }
        let now = Instant::now();
        while let Some(entry) = held.first_entry() {
            if !stopping && entry.key().0 > now {
                break;
            }
            let ((_, seq), (msg, arrived)) = entry.remove_entry();
            release(queue, &mut stats, seq, msg, arrived);
        }
        if stopping {
            // The rules are gone; what the kernel queued before is read and released until
            // the socket stays quiet.
            if got_any {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            std::thread::sleep(DRAIN_QUIET);
            match queue.recv() {
                Ok(msg) => {
                    stats.received += 1;
                    release(queue, &mut stats, arrivals, msg, Instant::now());
                    arrivals += 1;
                    continue;
                }
                Err(_) => return stats,
            }
        }
        let sleep = held
            .first_key_value()
            .map(|((due, _), _)| due.saturating_duration_since(Instant::now()))
            .unwrap_or(TICK)
            .min(TICK);
        std::thread::sleep(sleep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_draws_stay_within_mean_plus_minus_jitter() {
        let mut rng = StdRng::seed_from_u64(1);
        let policy = HoldPolicy::Delay {
            mean: Duration::from_millis(50),
            jitter: Duration::from_millis(10),
        };
        let draws: Vec<Duration> = (0..1000).map(|_| policy.draw(&mut rng)).collect();
        assert!(draws
            .iter()
            .all(|d| *d >= Duration::from_millis(40) && *d <= Duration::from_millis(60)));
        assert!(draws.iter().any(|d| *d < Duration::from_millis(45)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(55)));
        let fixed = HoldPolicy::Delay {
            mean: Duration::from_millis(5),
            jitter: Duration::ZERO,
        };
        assert_eq!(fixed.draw(&mut rng), Duration::from_millis(5));
    }

    #[test]
    fn reorder_draws_spread_over_the_whole_range() {
        let mut rng = StdRng::seed_from_u64(2);
        let policy = HoldPolicy::Reorder {
            max_delay: Duration::from_millis(30),
        };
        let draws: Vec<Duration> = (0..1000).map(|_| policy.draw(&mut rng)).collect();
        assert!(draws.iter().all(|d| *d <= Duration::from_millis(30)));
        assert!(draws.iter().any(|d| *d < Duration::from_millis(3)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(27)));
        assert!(!policy.keeps_order());
    }
}
