//! Children in process groups of their own: cargo starts rustc, rustc the linker, build scripts
//! what they like, and one `kill` of the group ends them all. A [`Group`] dropped before its
//! leader was waited for ends the group, and an interrupt ends every group
//! ([`crate::interrupt`]), so no cargo or rustc outlives a run, whatever way it ends.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};

use crate::interrupt::{self, Registered};

/// Waits for `child` until `deadline`: its status, or `None` when it is still running then (or
/// cannot be waited for); the caller decides how to end it.
pub(crate) fn wait_until(child: &mut Child, deadline: std::time::Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5))
            }
            _ => return None,
        }
    }
}

/// A running child, leader of its own process group.
#[derive(Debug)]
pub(crate) struct Group {
    child: Option<Child>,
    _registered: Registered,
}

impl Group {
    /// Starts `command` as the leader of a new process group. Its stdin is null unless the
    /// command says otherwise: a background group that reads the terminal would be stopped.
    pub(crate) fn spawn(command: &mut Command) -> io::Result<Group> {
        command.process_group(0);
        let (child, registered) = interrupt::spawn_group(command)?;
        Ok(Group {
            child: Some(child),
            _registered: registered,
        })
    }

    /// The child, for its pipes.
    pub(crate) fn child(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("a group has its child until it is consumed")
    }

    /// Waits for the leader to exit.
    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        self.child().wait()
    }

    /// Waits for the leader to exit, collecting its piped output.
    pub(crate) fn wait_with_output(mut self) -> io::Result<Output> {
        let child = self
            .child
            .take()
            .expect("a group has its child until it is consumed");
        child.wait_with_output()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let Some(child) = &mut self.child else { return };
        // Only a leader not yet waited for: a reaped one's id may name another group one day.
        if let Ok(None) = child.try_wait() {
            interrupt::kill_group(child.id());
            let _ = child.wait();
            // The leader's end is not its group's: a rustc or linker it started may still be
            // writing into the target directory, where the next cargo is about to start.
            wait_for_group(child.id(), GROUP_END_LIMIT);
        }
    }
}

/// How long the members of a killed group may take to be gone.
const GROUP_END_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Waits until no process of group `pgid` runs (zombies, which run nothing, aside), or
/// `limit` has passed.
fn wait_for_group(pgid: u32, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    while group_runs(pgid) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Whether a process of group `pgid` is alive, by `/proc/<pid>/stat`: the state and the
/// group follow the command's closing parenthesis.
fn group_runs(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let group = fields.nth(1).and_then(|g| g.parse::<u32>().ok());
        group == Some(pgid) && !matches!(state, "Z" | "X" | "x")
    })
}

/// Runs `command` to its end in a process group of its own, with stdin null and its output
/// collected, as [`Command::output`] does.
pub(crate) fn output(command: &mut Command) -> io::Result<Output> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    Group::spawn(command)?.wait_with_output()
}

/// Has `command`'s process killed when the thread that starts it ends (the tool's main thread:
/// so when the tool ends, even by SIGKILL), as Linux's parent-death signal does.
pub(crate) fn dies_with_parent(command: &mut Command) {
    let parent = rustix::process::getpid();
    // SAFETY: between fork and exec the closure makes only two system calls (prctl and
    // getppid), which are async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // The parent may have died before the signal was asked for.
            if rustix::process::getppid() != Some(parent) {
                return Err(io::Error::other("the tool that started it is gone"));
            }
            Ok(())
        });
    }
}

/// A process that outlives the tool to undo what the tool started when the tool is killed,
/// which leaves it no time to clean up: it waits on a pipe that only the tool holds open, and
/// when the pipe closes without the word that all is done (the tool ended, however), it runs
/// its commands one after another, their output discarded. It ignores the terminal's signals.
pub(crate) struct Watchdog {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
}

impl Watchdog {
    pub(crate) fn start(commands: &[Command]) -> io::Result<Watchdog> {
        let lines: Vec<String> = commands
            .iter()
            .map(|command| {
                let words: Vec<String> = std::iter::once(command.get_program())
                    .chain(command.get_args())
                    .map(|word| format!("'{}'", word.to_string_lossy().replace('\'', "'\\''")))
                    .collect();
                format!("{} >/dev/null 2>&1", words.join(" "))
            })
            .collect();
        let script = format!(
            "trap '' INT TERM HUP\nread -r word\n[ \"$word\" = done ] && exit 0\n{}\n",
            lines.join("\n")
        );
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let stdin = child.stdin.take();
        Ok(Watchdog { child, stdin })
    }

    /// All is undone another way: the watchdog exits without running its commands.
    pub(crate) fn done(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = std::io::Write::write_all(&mut stdin, b"done\n");
        }
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shell that starts a grandchild and waits: dropping the group ends both.
    #[test]
    fn a_dropped_group_ends_its_grandchildren() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!("sleep 600 & echo $! > {}; wait", pids.display()))
            .stdin(Stdio::null());
        let group = Group::spawn(&mut command).unwrap();
        let grandchild = loop {
            match std::fs::read_to_string(&pids) {
                Ok(text) if text.ends_with('\n') => break text.trim().to_string(),
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        };
        drop(group);
        // Dropping waits for the whole group: the grandchild, ours no more (init reaps it), is
        // gone or a zombie by then.
        let stat = std::fs::read_to_string(format!("/proc/{grandchild}/stat"));
        let state = stat.as_deref().ok().and_then(|s| s.rsplit_once(')'));
        assert!(
            state.is_none_or(|(_, rest)| rest.trim_start().starts_with('Z')),
            "sleep {grandchild} outlived its group: {stat:?}"
        );
    }

    #[test]
    fn output_is_collected_as_commands_do() {
        let output =
            output(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"])).unwrap();
        assert_eq!(output.stdout, b"out\n");
        assert_eq!(output.stderr, b"err\n");
        assert_eq!(output.status.code(), Some(3));
    }

    /// The watchdog of a process that ends without saying it is done runs its commands.
    #[test]
    fn a_watchdog_undoes_when_its_tool_ends_without_a_word() {
        let dir = tempfile::tempdir().unwrap();
        let (undone, kept) = (dir.path().join("undone"), dir.path().join("kept"));
        let touch = |path: &std::path::Path| {
            let mut command = Command::new("touch");
            command.arg(path);
            command
        };
        Watchdog::start(&[touch(&kept)]).unwrap().done();
        let watchdog = Watchdog::start(&[touch(&undone)]).unwrap();
        // Dropped as a killed tool drops it: the pipe closes.
        drop(watchdog);
        for _ in 0..500 {
            if undone.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(undone.exists(), "the watchdog ran its command");
        assert!(!kept.exists(), "a watchdog told all is done runs nothing");
    }
}
