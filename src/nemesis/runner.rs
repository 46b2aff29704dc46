//! Runs a [`Schedule`] against a live cluster on its own thread, records every fault start
//! and stop in the history, and undoes every fault on every path.
//!
//! The undo machinery is a guard (`ActiveFaults`): each applied fault ([`AppliedFault`])
//! goes into it, a stop takes it out and undoes it, and whatever is still inside when the
//! guard is dropped — end of schedule, stop request, panic in the nemesis thread — is
//! undone then. [`Nemesis`] itself stops and
//! joins the thread when dropped, so an error or a panic in the runner also heals before
//! the cluster goes away. What a fault does, proves and undoes is its kind's business
//! ([`super::faults`]); the runner only keeps time, records and times.

use super::context::{Leadership, NemesisContext};
use super::faults::{micros, AppliedFault, FaultKind};
use super::feedback::{FeedbackChooser, Observation};
use super::record::FaultRecord;
use super::schedule::{self, Schedule, ScheduledFault};
use super::spec::NemesisSpec;
use crate::cluster::Deployment;
use serde::Serialize;
use splitbrain_checkers::EventType;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long before its scheduled time a fault resolves who leads (a role query takes
/// milliseconds), so that the fault itself goes in on time.
const PREPARE_AHEAD: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("faults need a cluster of processes; the in-memory system has none")]
    NoCluster,
    #[error("starting the nemesis thread: {0}")]
    Thread(std::io::Error),
}

/// What the live cluster looked like just before a fault: who led, and every node's role
/// (empty when the system cannot say).
struct Prepared {
    leadership: Leadership,
    roles: Vec<String>,
}

/// One role query serves both: who leads (for leader-targeted faults) and the roles.
fn prepare(ctx: &NemesisContext) -> Prepared {
    let statuses = ctx.statuses();
    Prepared {
        leadership: ctx.leadership(&statuses),
        roles: ctx.role_lines_of(&statuses),
    }
}

/// How one fault went, for the run's report and the timing measurements.
#[derive(Debug, Clone, Serialize)]
pub struct FaultTiming {
    pub id: usize,
    pub kind: &'static str,
    /// From the scheduled start to the fault being in force (µs).
    pub lateness_us: i64,
    /// How long applying took (µs).
    pub took_us: i64,
    /// How long undoing took (µs), once undone.
    pub undo_us: Option<i64>,
    pub error: Option<String>,
}

/// What the nemesis did over the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NemesisReport {
    /// The faults, as planned up front or (feedback mode) as chosen.
    pub schedule: Schedule,
    /// Feedback mode: each chosen fault's observation window and disturbance, and the arms'
    /// standing at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feedback: Option<FeedbackReport>,
    pub faults: Vec<FaultTiming>,
    /// Undo failures (each also recorded in the history).
    pub undo_errors: Vec<String>,
}

/// What the feedback mode saw after each fault it chose.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FeedbackReport {
    pub observations: Vec<ObservedFault>,
    /// Every arm (`pause primaries`, `partition halves`), how often it was tried and its mean
    /// disturbance.
    pub arms: Vec<ArmStanding>,
}

/// One chosen fault's window: from its start to the end of the calm after it.
#[derive(Debug, Clone, Serialize)]
pub struct ObservedFault {
    pub id: usize,
    pub ok: u64,
    pub failed: u64,
    pub indeterminate: u64,
    pub mean_ok_latency_ms: Option<f64>,
    pub leader_before: Option<String>,
    pub leader_after: Option<String>,
    pub disturbance: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArmStanding {
    pub arm: String,
    pub tries: u32,
    pub mean_disturbance: Option<f64>,
}

/// What the nemesis executes: a schedule planned up front, or the feedback mode's choices.
pub enum Plan {
    Schedule(Schedule),
    Feedback(Box<FeedbackPlan>),
}

impl From<Schedule> for Plan {
    fn from(schedule: Schedule) -> Plan {
        Plan::Schedule(schedule)
    }
}

/// The feedback mode's chooser and what it plans faults with.
pub struct FeedbackPlan {
    pub chooser: FeedbackChooser,
    pub spec: NemesisSpec,
    pub nodes: Vec<String>,
    /// No fault starts after this, from the start of the main phase.
    pub duration: Duration,
}

struct ActiveFault {
    id: usize,
    kind: FaultKind,
    fault: Box<dyn AppliedFault>,
}

/// The faults in force; dropping it undoes them all.
struct ActiveFaults {
    ctx: Arc<NemesisContext>,
    active: Vec<ActiveFault>,
    report: NemesisReport,
}

impl ActiveFaults {
    fn start(&mut self, scheduled: &ScheduledFault, prepared: Prepared, due: Instant) {
        let kind = scheduled.kind();
        let f = kind.start_event();
        self.ctx
            .record(EventType::Invoke, f, &scheduled.describe(), None);
        let began = Instant::now();
        let outcome =
            super::faults::remote::apply(&*scheduled.fault, &self.ctx, &prepared.leadership);
        let in_force = Instant::now();
        // Evidence is gathered after the fault is in force and is not part of its timing.
        let outcome = outcome.map(|mut applied| {
            applied.record.merge(applied.fault.evidence(&self.ctx));
            applied
        });
        let took = in_force - began;
        let lateness = in_force.saturating_duration_since(due);
        let base = FaultRecord {
            id: Some(scheduled.id as i64),
            took_us: Some(micros(took)),
            lateness_us: Some(micros(lateness)),
            ..FaultRecord::default()
        };
        let timing = |error: Option<String>| FaultTiming {
            id: scheduled.id,
            kind: kind.name(),
            lateness_us: micros(lateness),
            took_us: micros(took),
            undo_us: None,
            error,
        };
        let in_force = match outcome {
            Ok(applied) => {
                let mut record = base;
                record.merge(applied.record);
                record.roles_before = prepared.roles;
                self.ctx.record(EventType::Info, f, &record, None);
                self.report.faults.push(timing(None));
                Some(applied.fault)
            }
            Err(failed) => {
                self.ctx
                    .record(EventType::Info, f, &base, Some(failed.message.clone()));
                self.report.faults.push(timing(Some(failed.message)));
                // Whatever part did apply is still undone at the end.
                failed.partial
            }
        };
        if let Some(fault) = in_force {
            self.active.push(ActiveFault {
                id: scheduled.id,
                kind,
                fault,
            });
        }
    }

    fn stop(&mut self, id: usize) {
        if let Some(pos) = self.active.iter().position(|a| a.id == id) {
            let fault = self.active.remove(pos);
            self.undo(fault);
        }
    }

    /// Undoes everything still in force, newest first.
    fn heal_all(&mut self) {
        while let Some(fault) = self.active.pop() {
            self.undo(fault);
        }
    }

    fn undo(&mut self, mut active: ActiveFault) {
        let f = active.kind.stop_event();
        self.ctx
            .record(EventType::Invoke, f, &FaultRecord::with_id(active.id), None);
        let began = Instant::now();
        let undone = active.fault.undo(&self.ctx);
        let took = began.elapsed();
        let mut record = FaultRecord {
            id: Some(active.id as i64),
            took_us: Some(micros(took)),
            ..FaultRecord::default()
        };
        record.merge(undone.record);
        // Who leads once healed, next to who led before: leader changes, as evidence.
        record.roles_after = self.ctx.role_lines();
        if let Some(e) = &undone.error {
            self.report.undo_errors.push(format!(
                "fault {} ({}): {e}",
                active.id,
                active.kind.name()
            ));
        }
        self.ctx.record(EventType::Info, f, &record, undone.error);
        if let Some(t) = self
            .report
            .faults
            .iter_mut()
            .rev()
            .find(|t| t.id == active.id)
        {
            t.undo_us = Some(micros(took));
        }
    }
}

impl Drop for ActiveFaults {
    fn drop(&mut self) {
        self.heal_all();
    }
}

/// Shared between the runner and its thread: a stop request.
#[derive(Default)]
struct StopSignal {
    stopped: Mutex<bool>,
    changed: Condvar,
}

impl StopSignal {
    fn request(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_all();
    }

    /// Sleeps until `deadline`; false if a stop was requested first.
    fn sleep_until(&self, deadline: Instant) -> bool {
        let mut stopped = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if *stopped {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            stopped = self
                .changed
                .wait_timeout(stopped, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A running nemesis. [`Nemesis::stop`] heals everything and returns the report; dropping
/// it does the same (errors are printed).
pub struct Nemesis {
    signal: Arc<StopSignal>,
    thread: Option<JoinHandle<NemesisReport>>,
}

impl Nemesis {
    /// Starts executing `plan`; times are relative to `origin` (the main phase start).
    pub fn start(
        ctx: NemesisContext,
        plan: impl Into<Plan>,
        origin: Instant,
    ) -> Result<Nemesis, RunnerError> {
        let plan = plan.into();
        if matches!(&*ctx.deployment, Deployment::InMemory(_)) {
            return Err(RunnerError::NoCluster);
        }
        let signal = Arc::new(StopSignal::default());
        let thread_signal = signal.clone();
        let ctx = Arc::new(ctx);
        let thread = std::thread::Builder::new()
            .name("nemesis".into())
            .spawn(move || match plan {
                Plan::Schedule(schedule) => run_schedule(ctx, schedule, origin, &thread_signal),
                Plan::Feedback(plan) => run_feedback(ctx, *plan, origin, &thread_signal),
            })
            .map_err(RunnerError::Thread)?;
        Ok(Nemesis {
            signal,
            thread: Some(thread),
        })
    }

    /// Stops the schedule, undoes every fault in force, waits for that, returns the report.
    pub fn stop(mut self) -> NemesisReport {
        self.finish()
    }

    fn finish(&mut self) -> NemesisReport {
        self.signal.request();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(report)) => report,
            Some(Err(_)) => NemesisReport {
                // The guard inside the thread healed during unwinding.
                undo_errors: vec![
                    "the nemesis thread panicked (its faults were undone while unwinding)".into(),
                ],
                ..NemesisReport::default()
            },
            None => NemesisReport::default(),
        }
    }
}

impl Drop for Nemesis {
    fn drop(&mut self) {
        if self.thread.is_some() {
            for e in self.finish().undo_errors {
                crate::stderr_line!("splitbrain: warning: nemesis: {e}");
            }
        }
    }
}

fn run_schedule(
    ctx: Arc<NemesisContext>,
    schedule: Schedule,
    origin: Instant,
    signal: &StopSignal,
) -> NemesisReport {
    enum Step<'a> {
        Start(&'a ScheduledFault),
        Stop(usize),
    }
    let mut steps: Vec<(Duration, u8, Step)> = Vec::new();
    for fault in &schedule.faults {
        // Stops sort before starts at the same instant: a fault ends before the next begins.
        steps.push((fault.at, 1, Step::Start(fault)));
        steps.push((fault.end(), 0, Step::Stop(fault.id)));
    }
    steps.sort_by_key(|(at, order, _)| (*at, *order));
    let mut active = ActiveFaults {
        ctx,
        active: Vec::new(),
        report: NemesisReport::default(),
    };
    let mut previous = Duration::ZERO;
    for (at, _, step) in steps {
        let due = origin + at;
        match step {
            Step::Start(fault) => {
                // Resolve the leader a little ahead, but never before the previous step ran.
                let prepare_at = origin + at.saturating_sub(PREPARE_AHEAD).max(previous);
                if !signal.sleep_until(prepare_at) {
                    break;
                }
                let prepared = prepare(&active.ctx);
                if !signal.sleep_until(due) {
                    break;
                }
                active.start(fault, prepared, due);
            }
            Step::Stop(id) => {
                if !signal.sleep_until(due) {
                    break;
                }
                active.stop(id);
            }
        }
        previous = at;
    }
    active.heal_all();
    let mut report = std::mem::take(&mut active.report);
    report.schedule = schedule;
    report
}

/// Who leads per `prepared` (`None`: nobody claims to, or the system cannot say).
fn leader_of(prepared: &Prepared) -> Option<String> {
    match &prepared.leadership {
        Leadership::Leader { node, .. } => Some(node.clone()),
        _ => None,
    }
}

/// The feedback mode: calm for `interval`, ask the chooser (fed with what followed the
/// previous fault), start its fault, hold it, and again until the main phase ends.
fn run_feedback(
    ctx: Arc<NemesisContext>,
    mut plan: FeedbackPlan,
    origin: Instant,
    signal: &StopSignal,
) -> NemesisReport {
    let spec = &plan.spec;
    let mut active = ActiveFaults {
        ctx,
        active: Vec::new(),
        report: NemesisReport::default(),
    };
    let mut feedback = FeedbackReport::default();
    let mut schedule = Schedule::default();
    // The fault whose window is open: its id, the tally and leader when it started.
    let mut open: Option<(usize, crate::recorder::Tally, Option<String>)> = None;
    let mut window_start = active.ctx.recorder.tally();
    let mut at = spec.interval;
    while at < plan.duration {
        let due = origin + at;
        if !signal.sleep_until(due.checked_sub(PREPARE_AHEAD).unwrap_or(due)) {
            break;
        }
        let prepared = prepare(&active.ctx);
        let now = active.ctx.recorder.tally();
        let leader = leader_of(&prepared);
        match open.take() {
            None => plan.chooser.calm(&now.since(&window_start)),
            Some((id, before, leader_before)) => {
                let observation = Observation {
                    window: now.since(&before),
                    leader_before,
                    leader_after: leader.clone(),
                };
                if let Some(disturbance) = plan.chooser.observe(&observation) {
                    feedback
                        .observations
                        .push(observed(id, &observation, disturbance));
                }
            }
        }
        window_start = now;
        let choice = plan.chooser.choose();
        let id = schedule.faults.len() + 1;
        let why = format!("{}: {}", choice.arm, choice.reason);
        let fault = match schedule::plan_chosen(
            spec,
            &plan.nodes,
            &choice.arm,
            id,
            at,
            why,
            plan.chooser.rng(),
        ) {
            Ok(fault) => fault,
            Err(e) => {
                // Validation planned every arm; a failure here is recorded, not hidden.
                active
                    .report
                    .undo_errors
                    .push(format!("planning fault {id}: {e}"));
                break;
            }
        };
        if !signal.sleep_until(due) {
            break;
        }
        active.start(&fault, prepared, due);
        open = Some((id, window_start, leader));
        let hold = fault.hold;
        schedule.faults.push(fault);
        if !signal.sleep_until(due + hold) {
            break;
        }
        active.stop(id);
        at += hold + spec.interval;
    }
    active.heal_all();
    feedback.arms = plan
        .chooser
        .arms()
        .map(|(arm, tries, mean)| ArmStanding {
            arm: arm.to_string(),
            tries,
            mean_disturbance: mean,
        })
        .collect();
    let mut report = std::mem::take(&mut active.report);
    report.schedule = schedule;
    report.feedback = Some(feedback);
    report
}

fn observed(id: usize, o: &Observation, disturbance: f64) -> ObservedFault {
    ObservedFault {
        id,
        ok: o.window.ok,
        failed: o.window.failed,
        indeterminate: o.window.indeterminate,
        mean_ok_latency_ms: o.window.mean_ok_latency_ns().map(|ns| ns as f64 / 1e6),
        leader_before: o.leader_before.clone(),
        leader_after: o.leader_after.clone(),
        disturbance,
    }
}
