//! `cargo scratchimg run` in docker, podman and containerd, and `--load=containerd`: the
//! program's output and exit code are the tool's, the image replaces the last run's, signals
//! reach the container, and nothing is left running.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scratchimg_tests::containerd::{DOCKERS_CONTAINERD, Namespace, ctr};
use scratchimg_tests::{
    assert_hello_output, example, fixture, free_port, require_musl_target, require_tool, run_ok,
    shared_target_dir, tool,
};

/// `cargo scratchimg run` of `dir` with its shared target directory.
fn run(dir: &Path, name: &str, args: &[&str]) -> Command {
    require_musl_target();
    let mut command = tool(dir);
    command
        .arg("run")
        .arg("--target-dir")
        .arg(shared_target_dir(name))
        .args(args)
        .stdin(Stdio::null());
    command
}

/// The containers an engine has whose name says a run of this process's tool made them.
fn leftovers(engine: &str) -> String {
    run_ok(Command::new(engine).args([
        "ps",
        "--all",
        "--filter",
        "name=scratchimg-run-",
        "--format",
        "{{.Names}}",
    ]))
}

/// The tests of this file one after another: podman 4.3 fails to list images while another
/// process removes one, and each test counts what it left in the engines.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static ENGINES: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ENGINES.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn run_gives_the_programs_output_and_exit_code_in_both_engines() {
    let _engines = one_at_a_time();
    for engine in ["docker", "podman"] {
        require_tool(engine, &["version"]);
        let child = run(
            &fixture("exits"),
            "exits",
            &["--engine", engine, "-e", "GREETING=hi", "--", "a", "b c"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        // Containers are named after the tool's pid: other tests' runs do not count.
        let pid = child.id();
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(3),
            "{engine}:\n{stdout}\n{stderr}"
        );
        assert_eq!(
            stdout, "exits: args [\"a\", \"b c\"], GREETING=Some(\"hi\")\n",
            "{engine}: only the program's output on stdout\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("Running exits:scratchimg-run in {engine}")),
            "{stderr}"
        );
        assert_eq!(containers_of(engine, pid), "", "{engine}: --rm");
        // The run's tag names one image, replaced by each run.
        let images =
            run_ok(Command::new(engine).args(["images", "--format", "{{.Repository}}:{{.Tag}}"]));
        assert_eq!(
            images
                .lines()
                .filter(|l| l.ends_with("exits:scratchimg-run"))
                .count(),
            1,
            "{engine}: {images}"
        );
    }
    // examples/hello, which says who it runs as.
    let output = run(
        &example("hello"),
        "hello",
        &["--engine", "docker", "-e", "TZ=Asia/Tokyo"],
    )
    .output()
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_hello_output(&String::from_utf8_lossy(&output.stdout));
}

/// Waits for `child` at most `limit`; its exit code, or a panic.
fn wait_for(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_serves_web_on_loopback_and_stops_on_sigterm() {
    let _engines = one_at_a_time();
    for engine in ["docker", "podman"] {
        require_tool(engine, &["version"]);
        require_tool("curl", &["--version"]);
        let port = free_port();
        let env = format!("PORT={port}");
        let mut args = vec!["--engine", engine, "-e", &env];
        // docker here has no bridge network: the run takes the host's. podman publishes.
        let publish = format!("{port}:{port}");
        if engine == "podman" {
            args.extend(["--publish", &publish]);
        }
        let child = run(&example("web"), "web", &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert_web_answers(engine, port);
        // SIGTERM to the tool stops the container with its stop signal (SIGINT for web).
        run_ok(Command::new("kill").args(["-TERM", &child.id().to_string()]));
        assert_web_stopped(engine, child, port);
    }
}

/// Images a test tagged under a name of its own, removed from both engines when it ends.
struct Images(String);

impl Images {
    /// `scratchimg-e2e-WHAT-PID`, given to `run` with `-t` so the image is this test's alone.
    fn new(what: &str) -> Images {
        Images(format!("scratchimg-e2e-{what}-{}", std::process::id()))
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        let image = format!("{}:scratchimg-run", self.0);
        for engine in ["docker", "podman"] {
            let _ = Command::new(engine)
                .args(["rmi", "--force", &image])
                .output();
        }
    }
}

/// The containers an engine has that the tool with process id `pid` named.
fn containers_of(engine: &str, pid: u32) -> String {
    let prefix = format!("scratchimg-run-{pid}-");
    leftovers(engine)
        .lines()
        .filter(|name| name.starts_with(&prefix))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `command` run under a pseudo-terminal by util-linux `script`: its stdin, stdout and stderr
/// are the terminal, whose output is `script`'s stdout.
fn under_terminal(command: &Command) -> Command {
    fn quoted(word: &std::ffi::OsStr) -> String {
        format!("'{}'", word.to_string_lossy().replace('\'', r"'\''"))
    }
    let line = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(quoted)
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => script.env(key, value),
            None => script.env_remove(key),
        };
    }
    if let Some(dir) = command.get_current_dir() {
        script.current_dir(dir);
    }
    script
}

/// With stdin and stdout a terminal, the container gets one (`--tty`): the program sees
/// terminals on both; with stdin not a terminal, it sees none, in docker and podman.
#[test]
fn run_gives_the_container_a_terminal_when_it_has_one() {
    let _engines = one_at_a_time();
    require_tool("script", &["--version"]);
    let images = Images::new("terminal");
    for engine in ["docker", "podman"] {
        require_tool(engine, &["version"]);
        let args = ["--engine", engine, "-t", &images.0];
        // Under a terminal: script's stdin is kept open until the run ends, so no EOF reaches it.
        let mut child = under_terminal(&run(&fixture("terminal"), "terminal", &args))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let code = wait_for(&mut child, Duration::from_secs(600));
        drop(stdin);
        let output = child.wait_with_output().unwrap();
        let terminal = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            code,
            Some(0),
            "{engine}:\n{terminal}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            terminal.contains("tty: stdin true stdout true"),
            "{engine}: the container has a terminal:\n{terminal}"
        );
        // Without one (stdin is null): none for the container either.
        let output = run(&fixture("terminal"), "terminal", &args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{engine}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "tty: stdin false stdout false\n",
            "{engine}: {stderr}"
        );
    }
}

/// Ctrl-C, as a terminal sends it (SIGINT to the tool's process group), reaches the program
/// once as SIGINT: web stops on it and exits 0, which is the tool's exit code, and its
/// container is gone, in docker and podman.
#[test]
fn run_passes_ctrl_c_on_and_exits_with_the_programs_code() {
    let _engines = one_at_a_time();
    use std::os::unix::process::CommandExt;
    require_tool("curl", &["--version"]);
    let images = Images::new("web-sigint");
    for engine in ["docker", "podman"] {
        require_tool(engine, &["version"]);
        let port = free_port();
        let env = format!("PORT={port}");
        let mut args = vec!["--engine", engine, "-e", &env, "-t", &images.0];
        // docker here has no bridge network: the run takes the host's. podman publishes.
        let publish = format!("{port}:{port}");
        if engine == "podman" {
            args.extend(["--publish", &publish]);
        }
        // The tool leads a process group, as a shell makes a foreground job.
        let child = run(&example("web"), "web", &args)
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        assert_web_answers(engine, port);
        assert_ne!(
            containers_of(engine, pid),
            "",
            "{engine}: the container runs"
        );
        // Ctrl-C: SIGINT to the foreground process group, which is the tool's.
        run_ok(Command::new("kill").args(["-INT", "--", &format!("-{pid}")]));
        assert_web_stopped(engine, child, port);
    }
}

#[test]
fn load_into_containerd_and_run_there_as_nonroot() {
    let _engines = one_at_a_time();
    require_tool("ctr", &["--version"]);
    let namespace = Namespace(format!("scratchimg-e2e-{}", std::process::id()));
    let output = tool(&example("hello"))
        .args([
            "--load=containerd",
            "--containerd-namespace",
            &namespace.0,
            "-t",
            "scratchimg-e2e/hello:containerd",
            "--target-dir",
        ])
        .arg(shared_target_dir("hello"))
        .env("CONTAINERD_ADDRESS", DOCKERS_CONTAINERD)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Loaded docker.io/scratchimg-e2e/hello:containerd (namespace {})",
            namespace.0
        )),
        "{stderr}"
    );
    let listed = run_ok(ctr(&namespace.0).args(["images", "ls", "--quiet"]));
    assert_eq!(listed.trim(), "docker.io/scratchimg-e2e/hello:containerd");
    let id = format!("scratchimg-e2e-{}", std::process::id());
    let ran = run_ok(ctr(&namespace.0).args([
        "run",
        "--rm",
        "--env",
        "TZ=Asia/Tokyo",
        "docker.io/scratchimg-e2e/hello:containerd",
        &id,
    ]));
    assert_hello_output(&ran);

    // `run --engine containerd` finds Docker's containerd by itself, and keeps the exit code.
    let output = run(
        &fixture("exits"),
        "exits",
        &[
            "--engine",
            "containerd",
            "--containerd-namespace",
            &namespace.0,
        ],
    )
    .output()
    .unwrap();
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("exits: args []"));
    let containers = run_ok(ctr(&namespace.0).args(["containers", "ls", "--quiet"]));
    assert_eq!(containers.trim(), "", "ctr run --rm left nothing");
}

/// examples/web, run in `engine`, answers on `port` (waiting for it to start).
/// The tool running web in `engine` on `port`, just signalled, ends with web's own exit code
/// (0), and leaves neither its container nor a server behind.
fn assert_web_stopped(engine: &str, mut child: std::process::Child, port: u16) {
    let pid = child.id();
    let code = wait_for(&mut child, Duration::from_secs(60));
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        code,
        Some(0),
        "{engine}: the program's own exit code: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        containers_of(engine, pid),
        "",
        "{engine}: nothing left running"
    );
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "{engine}: the server stopped"
    );
}

fn assert_web_answers(engine: &str, port: u16) {
    let answer = Command::new("curl")
        .args([
            "-fsS",
            "--retry",
            "600",
            "--retry-connrefused",
            "--retry-delay",
            "1",
            "--max-time",
            "600",
        ])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&answer.stdout),
        "hello from a scratch image\n",
        "{engine}: {}",
        String::from_utf8_lossy(&answer.stderr)
    );
}

/// The tool running `sleeper` in `engine` with `args`, once the program has started.
fn sleeping(engine: &str, args: &[&str]) -> std::process::Child {
    let mut child = run(
        &fixture("sleeper"),
        "sleeper",
        &[&["--engine", engine], args].concat(),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    assert_eq!(line, "sleeping\n", "{engine}: the program runs");
    child
}

/// Waits until `engine` has no container of the tool with id `pid` and no process names
/// one, at most `limit`; how long that took.
fn until_nothing_left(engine: &str, pid: u32, limit: Duration) -> Duration {
    let started = Instant::now();
    let name = format!("scratchimg-run-{pid}-");
    loop {
        let processes: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains(&name) && c.contains(" run "))
            .collect();
        let containers = containers_of(engine, pid);
        if processes.is_empty() && containers.is_empty() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{engine}: left behind after {limit:?}: {containers} {processes:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM to the tool gives the program its stop signal and, when it does not stop (sleeper,
/// as PID 1, ignores SIGTERM), SIGKILL after --stop-timeout, as `docker stop` does: the run
/// ends with 137 and leaves nothing.
#[test]
fn sigterm_stops_a_program_that_ignores_it_after_the_stop_timeout() {
    let _engines = one_at_a_time();
    for engine in ["docker", "podman"] {
        require_tool(engine, &["version"]);
        let mut child = sleeping(engine, &["--stop-timeout", "2s"]);
        let pid = child.id();
        let signalled = Instant::now();
        run_ok(Command::new("kill").args(["-TERM", &pid.to_string()]));
        let code = wait_for(&mut child, Duration::from_secs(60));
        let took = signalled.elapsed();
        eprintln!(
            "bounded: {engine}: SIGTERM to exit {code:?} in {:.2} s",
            took.as_secs_f64()
        );
        assert_eq!(code, Some(137), "{engine}: killed after the grace period");
        assert!(
            took >= Duration::from_secs(2),
            "{engine}: the grace period was given"
        );
        until_nothing_left(engine, pid, Duration::from_secs(30));
    }
}

/// SIGKILL to the tool, which can do nothing then: the engine's CLI dies with it (its
/// parent-death signal), and the watchdog stops and removes the container.
#[test]
fn a_killed_run_leaves_no_engine_cli_or_container() {
    let _engines = one_at_a_time();
    for engine in ["docker", "podman"] {
        require_tool(engine, &["version"]);
        let mut child = sleeping(engine, &["--stop-timeout", "1s"]);
        let pid = child.id();
        assert_ne!(
            containers_of(engine, pid),
            "",
            "{engine}: the container runs"
        );
        run_ok(Command::new("kill").args(["-KILL", &pid.to_string()]));
        let _ = child.wait();
        let took = until_nothing_left(engine, pid, Duration::from_secs(60));
        eprintln!(
            "bounded: {engine}: SIGKILL to nothing left in {:.2} s",
            took.as_secs_f64()
        );
    }
}
