//! Claims on units of work (a seed of a sweep's cell, a seed of a multi-seed run) shared by
//! processes on several machines through one directory, as a Slurm job array's tasks share a
//! sweep on NFS.
//!
//! A claim is a file `.claim.G` in the unit's directory, created with `link(2)`, which is
//! atomic on NFS as on a local disk (unlike `flock`, which NFS may not forward, and
//! `O_EXCL`, which NFSv2 does not honour). Generations are never removed or rewritten by
//! another process: the unit belongs to the holder of the highest generation while its record
//! is live, and taking a unit over means creating the next generation, which exactly one
//! contender can. A record says which host and process holds the claim and when it last beat;
//! it is stale once its heartbeat is older than the timeout (a task killed on another host),
//! and dead at once when its process no longer runs on this host.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{LadderError, Result};

/// The prefix of a claim generation's file name.
pub(crate) const CLAIM_PREFIX: &str = ".claim.";
/// Every record is written padded to this length, so a heartbeat rewrites the file in place
/// without changing its size.
const RECORD_LEN: usize = 2048;
/// The longest failure message a record keeps.
const FAILURE_LEN: usize = 400;

/// How claims are kept and judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClaimSettings {
    /// A claim whose heartbeat is older than this is stale and taken over: the longest a
    /// task killed on another host keeps its unit. Hosts' clocks must agree to well within it.
    pub stale_after: Duration,
    /// How often a holder renews its heartbeat.
    pub heartbeat: Duration,
}

impl ClaimSettings {
    /// Settings with a stale timeout of `stale_after` and a heartbeat ten times as often.
    pub fn with_timeout(stale_after: Duration) -> Result<ClaimSettings> {
        if stale_after < Duration::from_secs(1) {
            return Err(LadderError::Setting(format!(
                "a claim timeout of {stale_after:?} is shorter than one second; the heartbeat \
                 could not keep a live task's claim"
            )));
        }
        Ok(ClaimSettings {
            stale_after,
            heartbeat: stale_after / 10,
        })
    }
}

impl Default for ClaimSettings {
    fn default() -> Self {
        ClaimSettings::with_timeout(Duration::from_secs(300)).expect("a valid timeout")
    }
}

/// What a claim file says about its holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimRecord {
    pub host: String,
    pub pid: u32,
    /// The process's start time on its host (`/proc/PID/stat`, clock ticks since boot), so
    /// that a reused process id is not taken for the holder.
    pub process_start: Option<u64>,
    /// When the claim was made and last renewed, milliseconds since the Unix epoch (the
    /// holder's clock).
    pub claimed_ms: u64,
    pub heartbeat_ms: u64,
    /// Set when the holder let the unit go (finished, failed or interrupted).
    pub released: bool,
    /// The error the holder stopped with, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// Whether a claim still holds its unit.
#[derive(Debug, Clone, PartialEq)]
pub enum Liveness {
    Live,
    Released,
    /// The holder's process no longer runs (judged on the holder's own host).
    Dead,
    /// The heartbeat is older than the timeout.
    Stale {
        age: Duration,
    },
}

impl ClaimRecord {
    fn mine(now_ms: u64) -> ClaimRecord {
        let pid = std::process::id();
        ClaimRecord {
            host: host_name(),
            pid,
            process_start: process_start(pid),
            claimed_ms: now_ms,
            heartbeat_ms: now_ms,
            released: false,
            failure: None,
        }
    }

    /// How long ago the holder last beat, by this host's clock (zero if its clock is ahead).
    pub fn age(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.heartbeat_ms))
    }

    pub fn liveness(&self, settings: &ClaimSettings, now_ms: u64) -> Liveness {
        if self.released {
            return Liveness::Released;
        }
        if self.host == host_name() && process_start(self.pid) != self.process_start {
            return Liveness::Dead;
        }
        let age = self.age(now_ms);
        if age > settings.stale_after {
            return Liveness::Stale { age };
        }
        Liveness::Live
    }

    /// `host h, pid p, heartbeat 3 s ago`.
    pub fn describe(&self, now_ms: u64) -> String {
        format!(
            "host {}, pid {}, heartbeat {} s ago",
            self.host,
            self.pid,
            self.age(now_ms).as_secs()
        )
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_string(self).expect("serialisable");
        assert!(text.len() < RECORD_LEN, "a claim record fits its length");
        text.extend(std::iter::repeat_n(' ', RECORD_LEN - 1 - text.len()));
        text.push('\n');
        text.into_bytes()
    }
}

/// The outcome of [`claim`].
pub enum Claimed {
    /// This process holds the unit until the [`Claim`] is dropped.
    Held(Claim),
    /// Another process holds it, as its live record says.
    Busy(ClaimRecord),
}

/// A held claim: a thread renews its heartbeat; dropping it releases the unit.
pub struct Claim {
    path: PathBuf,
    record: ClaimRecord,
    file: File,
    /// The earlier holder whose claim this one took over, and why it could.
    pub took_over: Option<String>,
    stop: Option<mpsc::Sender<()>>,
    beat: Option<JoinHandle<()>>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LadderError + '_ {
    move |e| LadderError::io(path, e)
}

fn generation_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("{CLAIM_PREFIX}{generation}"))
}

/// The highest claim generation in `dir`, if any.
fn highest_generation(dir: &Path) -> Result<Option<u64>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LadderError::io(dir, e)),
    };
    let mut highest = None;
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let Some(g) = name
            .to_str()
            .and_then(|n| n.strip_prefix(CLAIM_PREFIX))
            .and_then(|g| g.parse::<u64>().ok())
        else {
            continue;
        };
        highest = highest.max(Some(g));
    }
    Ok(highest)
}

/// The record in a claim file; `None` if the file has gone. A record torn by a heartbeat
/// being written is read again; one that stays unreadable (a holder that died writing it) is
/// judged by the file's modification time.
fn read_record(path: &Path) -> Result<Option<ClaimRecord>> {
    for _ in 0..5 {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LadderError::io(path, e)),
        };
        if let Ok(r) = serde_json::from_slice::<ClaimRecord>(&bytes) {
            return Ok(Some(r));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let meta = std::fs::metadata(path).map_err(io(path))?;
    let modified_ms = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    Ok(Some(ClaimRecord {
        host: "(unreadable claim)".into(),
        pid: 0,
        process_start: None,
        claimed_ms: modified_ms,
        heartbeat_ms: modified_ms,
        released: false,
        failure: None,
    }))
}

/// The current claim of the unit in `dir`: its generation and record, if it was ever claimed.
pub fn current(dir: &Path) -> Result<Option<(u64, ClaimRecord)>> {
    let mut floor = None;
    loop {
        let Some(g) = highest_generation(dir)?.max(floor) else {
            return Ok(None);
        };
        match read_record(&generation_path(dir, g))? {
            Some(r) => return Ok(Some((g, r))),
            // Listed but gone: a directory replaced under us; look again.
            None => floor = g.checked_sub(1),
        }
    }
}

/// Claims the unit whose directory is `dir` (created if need be): a unit never claimed, or
/// whose claim was released, is dead or stale, becomes this process's; a live claim of another
/// process leaves it [`Claimed::Busy`].
pub fn claim(dir: &Path, settings: &ClaimSettings) -> Result<Claimed> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    // Set when a link found its generation taken: the directory listing may lag behind (NFS
    // caches it), the link does not.
    let mut floor: Option<u64> = None;
    loop {
        let now = now_ms();
        let (next, took_over) = match highest_generation(dir)?.max(floor) {
            None => (0, None),
            Some(g) => match read_record(&generation_path(dir, g))? {
                None => (g, None),
                Some(r) => match r.liveness(settings, now) {
                    Liveness::Live => return Ok(Claimed::Busy(r)),
                    Liveness::Released => (g + 1, None),
                    Liveness::Dead => (
                        g + 1,
                        Some(format!("{}: its process no longer runs", r.describe(now))),
                    ),
                    Liveness::Stale { .. } => (
                        g + 1,
                        Some(format!(
                            "{}: over the claim timeout of {} s",
                            r.describe(now),
                            settings.stale_after.as_secs()
                        )),
                    ),
                },
            },
        };
        if let Some(mut claim) = try_generation(dir, next, settings)? {
            claim.took_over = took_over;
            return Ok(Claimed::Held(claim));
        }
        floor = Some(next);
    }
}

/// Creates generation `generation` of the claim in `dir` by linking a complete record to its
/// name; `None` when another process created it first.
fn try_generation(dir: &Path, generation: u64, settings: &ClaimSettings) -> Result<Option<Claim>> {
    let record = ClaimRecord::mine(now_ms());
    let path = generation_path(dir, generation);
    static ATTEMPT: AtomicU64 = AtomicU64::new(0);
    let tmp = dir.join(format!(
        ".claim-new.{}.{}.{}",
        record.host,
        record.pid,
        ATTEMPT.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(&record.to_bytes())?;
        f.sync_all()
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        LadderError::io(&tmp, e)
    })?;
    let linked = match std::fs::hard_link(&tmp, &path) {
        Ok(()) => true,
        // Over NFS a retried link whose first attempt succeeded reports EEXIST: the temporary
        // file's link count says whether the name is ours.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::metadata(&tmp)
            .map(|m| m.nlink() == 2)
            .unwrap_or(false),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(LadderError::io(&path, e));
        }
    };
    std::fs::remove_file(&tmp).map_err(io(&tmp))?;
    if !linked {
        return Ok(None);
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    let (stop, beat) = heartbeat(&path, generation, &record, settings)?;
    Ok(Some(Claim {
        path,
        record,
        file,
        took_over: None,
        stop: Some(stop),
        beat: Some(beat),
    }))
}

/// Starts the thread that renews the claim at `path`. Should it find a later generation (this
/// process was stopped longer than the timeout and its unit was taken over), the process ends
/// at once with exit status 75, writing nothing more into a unit that another task now owns.
fn heartbeat(
    path: &Path,
    generation: u64,
    record: &ClaimRecord,
    settings: &ClaimSettings,
) -> Result<(mpsc::Sender<()>, JoinHandle<()>)> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io(path))?;
    let next = path.with_file_name(format!("{CLAIM_PREFIX}{}", generation + 1));
    let mut record = record.clone();
    let interval = settings.heartbeat;
    let (stop, stopped) = mpsc::channel::<()>();
    let shown = path.display().to_string();
    let beat = std::thread::Builder::new()
        .name("claim-heartbeat".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                if next.exists() {
                    eprintln!(
                        "error: this task's claim {shown} was taken over by another task (this \
                         process was stopped for longer than the claim timeout); exiting without \
                         writing more"
                    );
                    std::process::exit(75);
                }
                record.heartbeat_ms = now_ms();
                let renewed = file
                    .write_all_at(&record.to_bytes(), 0)
                    .and_then(|()| file.sync_data());
                if let Err(e) = renewed {
                    eprintln!("warning: cannot renew the claim {shown}: {e}");
                }
            }
        })
        .map_err(|e| LadderError::io(path, e))?;
    Ok((stop, beat))
}

impl Claim {
    /// The claim file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Releases the unit, recording the error its training stopped with.
    pub fn fail(mut self, why: &str) {
        let mut end = why.len().min(FAILURE_LEN);
        while !why.is_char_boundary(end) {
            end -= 1;
        }
        self.record.failure = Some(why[..end].to_string());
    }
}

/// Releasing: the heartbeat stops, then the record says the unit is free.
impl Drop for Claim {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(beat) = self.beat.take() {
            let _ = beat.join();
        }
        self.record.released = true;
        self.record.heartbeat_ms = now_ms();
        let _ = self
            .file
            .write_all_at(&self.record.to_bytes(), 0)
            .and_then(|()| self.file.sync_data());
    }
}

/// This machine's name (`gethostname`).
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// When process `pid` of this host started (field 22 of `/proc/PID/stat`); `None` when it
/// does not run.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quick() -> ClaimSettings {
        ClaimSettings::with_timeout(Duration::from_secs(2)).unwrap()
    }

    #[test]
    fn a_unit_is_held_by_one_claim_until_released() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("unit");
        let Claimed::Held(first) = claim(&dir, &quick()).unwrap() else {
            panic!("a new unit is free");
        };
        assert_eq!(first.path(), generation_path(&dir, 0));
        assert!(first.took_over.is_none());
        // This process holds it: a second claim finds it live.
        match claim(&dir, &quick()).unwrap() {
            Claimed::Busy(r) => {
                assert_eq!(r.pid, std::process::id());
                assert_eq!(r.host, host_name());
                assert!(!r.released);
            }
            Claimed::Held(_) => panic!("two claims on one unit"),
        }
        drop(first);
        let (g, r) = current(&dir).unwrap().unwrap();
        assert_eq!(g, 0);
        assert!(r.released);
        let Claimed::Held(second) = claim(&dir, &quick()).unwrap() else {
            panic!("a released unit is free");
        };
        assert_eq!(second.path(), generation_path(&dir, 1));
        assert!(second.took_over.is_none(), "a release is no takeover");
    }

    #[test]
    fn the_heartbeat_renews_the_record_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let settings = ClaimSettings {
            stale_after: Duration::from_secs(2),
            heartbeat: Duration::from_millis(50),
        };
        let Claimed::Held(c) = claim(tmp.path(), &settings).unwrap() else {
            panic!("free");
        };
        let (_, before) = current(tmp.path()).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(400));
        let (_, after) = current(tmp.path()).unwrap().unwrap();
        assert!(after.heartbeat_ms > before.heartbeat_ms);
        assert_eq!(after.claimed_ms, before.claimed_ms);
        assert_eq!(
            std::fs::metadata(c.path()).unwrap().len(),
            RECORD_LEN as u64
        );
    }

    /// Writes a claim record as another process would have left it.
    fn plant(dir: &Path, generation: u64, record: &ClaimRecord) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(generation_path(dir, generation), record.to_bytes()).unwrap();
    }

    #[test]
    fn a_dead_holder_on_this_host_is_taken_over_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        // A child process that has ended: its pid runs no more.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut dead = ClaimRecord::mine(now_ms());
        dead.pid = pid;
        dead.process_start = Some(1);
        plant(tmp.path(), 0, &dead);
        let Claimed::Held(c) = claim(tmp.path(), &ClaimSettings::default()).unwrap() else {
            panic!("a dead holder keeps nothing");
        };
        assert_eq!(c.path(), generation_path(tmp.path(), 1));
        let why = c.took_over.clone().unwrap();
        assert!(why.contains(&format!("pid {pid}")), "{why}");
        assert!(why.contains("no longer runs"), "{why}");
        // The earlier generation stays as it was: nobody rewrites another's claim.
        assert_eq!(
            std::fs::read(generation_path(tmp.path(), 0)).unwrap(),
            dead.to_bytes()
        );
    }

    #[test]
    fn another_hosts_claim_is_taken_over_only_after_the_timeout() {
        let tmp = tempfile::tempdir().unwrap();
        let now = now_ms();
        let mut other = ClaimRecord::mine(now);
        other.host = "node-elsewhere".into();
        other.pid = 1;
        other.heartbeat_ms = now - 1_500;
        plant(tmp.path(), 0, &other);
        // 1.5 s old against a 2 s timeout: live, even though pid 1 is not its holder here.
        match claim(tmp.path(), &quick()).unwrap() {
            Claimed::Busy(r) => assert_eq!(r.host, "node-elsewhere"),
            Claimed::Held(_) => panic!("a live claim was taken over"),
        }
        other.heartbeat_ms = now - 2_500;
        plant(tmp.path(), 0, &other);
        let Claimed::Held(c) = claim(tmp.path(), &quick()).unwrap() else {
            panic!("a stale claim keeps nothing");
        };
        let why = c.took_over.clone().unwrap();
        assert!(why.contains("node-elsewhere"), "{why}");
        assert!(why.contains("claim timeout of 2 s"), "{why}");
    }

    #[test]
    fn of_contenders_for_one_stale_claim_exactly_one_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let mut stale = ClaimRecord::mine(now_ms());
        stale.host = "node-elsewhere".into();
        stale.heartbeat_ms = 0;
        plant(tmp.path(), 0, &stale);
        let dir = tmp.path().to_path_buf();
        let winners: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let dir = dir.clone();
                    std::thread::Builder::new()
                        .name(format!("contender-{i}"))
                        .spawn_scoped(s, move || {
                            match claim(&dir, &ClaimSettings::default()).unwrap() {
                                // Kept until every contender has tried.
                                Claimed::Held(c) => Some(c),
                                Claimed::Busy(_) => None,
                            }
                        })
                        .unwrap()
                })
                .collect();
            let held: Vec<Option<Claim>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            held.iter().map(Option::is_some).collect()
        });
        assert_eq!(winners.iter().filter(|w| **w).count(), 1, "{winners:?}");
        assert_eq!(highest_generation(tmp.path()).unwrap(), Some(1));
    }

    #[test]
    fn a_torn_or_foreign_file_is_judged_by_its_age() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(generation_path(tmp.path(), 0), b"{\"host\": \"half").unwrap();
        // Just written: live, whoever wrote it.
        assert!(matches!(
            claim(tmp.path(), &quick()).unwrap(),
            Claimed::Busy(_)
        ));
        let old = SystemTime::now() - Duration::from_secs(10);
        File::options()
            .write(true)
            .open(generation_path(tmp.path(), 0))
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert!(matches!(
            claim(tmp.path(), &quick()).unwrap(),
            Claimed::Held(_)
        ));
    }

    #[test]
    fn a_timeout_under_a_second_is_refused() {
        let e = ClaimSettings::with_timeout(Duration::from_millis(500)).unwrap_err();
        assert!(e.to_string().contains("shorter than one second"), "{e}");
    }

    #[test]
    fn this_process_runs_and_its_start_is_known() {
        let me = std::process::id();
        assert!(process_start(me).is_some());
        assert_eq!(process_start(me), process_start(me));
        assert!(!host_name().is_empty());
    }
}
