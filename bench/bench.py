#!/usr/bin/env python3
"""warden's benchmark: warden and its peers on the same work, in one run.

Called by bench/run, which installs the peers, builds the helpers and warden, and passes
their paths. Standard library only; it reads /proc directly.

Every process it starts carries WB_TAG=<tag> in its environment (the supervisors pass it on
to their children), and this process is a child subreaper, so orphans come back to it to be
reaped. At the end, and between runs, whatever still carries the tag is killed.
"""

import argparse
import ctypes
import datetime
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK")
SLEEP = os.path.realpath("/bin/sleep")
PORT_POLL_S = 0.0005  # the harness's own port probe, after each refused connect
SH = os.path.realpath("/bin/sh")
EXITED = {}  # pid -> wait status, for every child this process reaped


# --------------------------------------------------------------------------- /proc


def reap():
    """Reap every exited child (ours, and orphans handed to us as subreaper)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        EXITED[pid] = status


@dataclass
class Proc:
    pid: int
    ppid: int
    comm: str
    state: str
    cpu_ticks: int


def snapshot():
    """pid -> Proc for every process, after reaping."""
    reap()
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        r = data.rfind(b")")
        comm = data[data.find(b"(") + 1 : r].decode(errors="replace")
        fields = data[r + 2 :].split()
        pid = int(name)
        table[pid] = Proc(pid, int(fields[1]), comm, fields[0].decode(), int(fields[11]) + int(fields[12]))
    return table


def descendants(table, roots):
    """The roots (those still in the table) and every process below them."""
    children = {}
    for p in table.values():
        children.setdefault(p.ppid, []).append(p.pid)
    out, todo = set(), [r for r in roots if r in table]
    while todo:
        pid = todo.pop()
        if pid in out:
            continue
        out.add(pid)
        todo.extend(children.get(pid, ()))
    return out


def exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_ns(pid):
    """CPU time of a process's live threads in ns (schedstat: finer than stat's clock ticks)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def alive(table, pid):
    p = table.get(pid)
    return p is not None and p.state != "Z"


def tagged_pids(tag):
    needle = f"WB_TAG={tag}".encode()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            out.append(int(name))
    return out


def kill_tagged(tag):
    """SIGKILL everything that carries the tag, and reap. Returns how many were killed."""
    killed = 0
    for _ in range(20):
        pids = tagged_pids(tag)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.05)
        reap()
    reap()
    return killed


def set_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("warning: prctl(PR_SET_CHILD_SUBREAPER) failed", file=sys.stderr)


def spawn(argv, env, out_path):
    """Start argv in its own session, stdin from /dev/null, stdout+stderr appended to out_path."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, out_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return os.posix_spawnp(argv[0], argv, env, file_actions=actions, setsid=True)


def wait_until(pred, timeout, interval=0.005):
    """Poll pred() until it returns a true value or timeout seconds pass; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def tail(path, n=6):
    try:
        with open(path, errors="replace") as f:
            return " | ".join(line.strip() for line in f.readlines()[-n:])
    except OSError:
        return ""


class Unavailable(Exception):
    """This tool cannot do this run; the message says why (shown as n/a)."""


# --------------------------------------------------------------------------- tools


@dataclass
class Service:
    name: str
    argv: list
    restart: str  # "always" | "never"
    fast: bool = False  # no backoff: the tool's minimum restart delay
    log: str = None  # where stdout goes; None: the tool's default
    timestamps: bool = False  # warden's `timestamps = true` (the log_ts scenario)


class Tool:
    """One supervisor. setup() writes its config into a fresh dir, start() launches it in the
    foreground (or its daemon), stop() sends the stop-all request."""

    name = "?"
    note = ""
    # What this tool takes part in; the 1,000-services scenario is warden's (and the
    # minimal C supervisor's, as the reference): it drives warden's own commands.
    scenarios = {"respawn", "log", "idle", "stop"}

    def __init__(self, ctx):
        self.ctx = ctx
        self.root = None

    def setup(self, d, services):
        self.d, self.services, self.root, self.stopped = d, services, None, False

    def env(self):
        e = dict(os.environ)
        e["WB_TAG"] = self.ctx.tag
        e.update(self.ctx.extra_env)
        return e

    def start(self):
        raise NotImplementedError

    def after_start(self):
        """Start the services that must run once (restart = never), where the tool needs a command."""

    def roots(self):
        return [self.root] if self.root else []

    def stop(self):
        os.kill(self.root, signal.SIGTERM)

    def log_file(self, svc):
        return svc.log

    def check_alive(self, table):
        if self.root is None:
            return
        if not alive(table, self.root):
            raise Unavailable(f"{self.name} exited early: {tail(self.out_path())}")

    def out_path(self):
        return os.path.join(self.d, f"{self.name}.out")


def toml_str(s):
    return json.dumps(s)


class Warden(Tool):
    name = "warden"
    note = "`warden up -c FILE`; stop: SIGTERM (1,000 services: `warden down`)"
    scenarios = {"respawn", "log", "log_ts", "idle", "stop", "scale", "port"}

    def setup(self, d, services):
        super().setup(d, services)
        self.cfg = os.path.join(d, "warden.toml")
        self.write_config(services)

    def write_config(self, services):
        d = self.d
        lines = [
            "[warden]",
            f"log_dir = {toml_str(d + '/logs')}",
            f"state_dir = {toml_str(d + '/state')}",
            "",
        ]
        for s in services:
            lines.append(f"[services.{s.name}]")
            lines.append("command = [" + ", ".join(toml_str(a) for a in s.argv) + "]")
            lines.append(f'restart = "{s.restart}"')
            if s.fast:
                lines.append('backoff = { initial = "0ms", max = "0ms", jitter = 0.0 }')
            if s.log:
                lines += [f"[services.{s.name}.log]", f"stdout = {toml_str(s.log)}", 'max_size = "100GiB"']
                if s.timestamps:
                    lines.append("timestamps = true")
            lines.append("")
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines))

    def start(self):
        self.root = spawn([self.ctx.warden, "up", "-c", self.cfg], self.env(), self.out_path())

    def cli(self, *args):
        """Run `warden ARGS -c FILE`; returns its wall time in ms. Fails the run if it fails."""
        argv = [self.ctx.warden, *args, "-c", self.cfg]
        t = time.monotonic()
        r = subprocess.run(argv, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        ms = (time.monotonic() - t) * 1000
        if r.returncode != 0:
            raise Unavailable(f"`warden {' '.join(args)}` exited {r.returncode}: {r.stderr.decode(errors='replace')[-300:]}")
        return ms


class Supervisord(Tool):
    name = "supervisord"
    note = "`supervisord -n`, startsecs=0, stdout_logfile_maxbytes=0; stop: SIGTERM"
    scenarios = Tool.scenarios | {"port"}

    def setup(self, d, services):
        super().setup(d, services)
        lines = [
            "[supervisord]",
            "nodaemon=true",
            f"logfile={d}/supervisord.log",
            f"pidfile={d}/supervisord.pid",
            f"childlogdir={d}/childlogs",
            "",
        ]
        os.makedirs(f"{d}/childlogs", exist_ok=True)
        for s in services:
            lines += [
                f"[program:{s.name}]",
                "command=" + shlex.join(s.argv).replace("%", "%%"),
                "autostart=true",
                f"autorestart={'true' if s.restart == 'always' else 'false'}",
                "startsecs=0",
                "stopwaitsecs=10",
            ]
            if s.log:
                lines += [f"stdout_logfile={s.log}", "stdout_logfile_maxbytes=0", "stdout_logfile_backups=0"]
            lines.append("")
        self.cfg = os.path.join(d, "supervisord.conf")
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines))

    def start(self):
        self.root = spawn([self.ctx.supervisord, "-n", "-c", self.cfg], self.env(), self.out_path())


class Pm2(Tool):
    name = "pm2"
    note = "daemon mode, own PM2_HOME; `pm2 start apps.json` (interpreter none, restart_delay 0); stop: SIGTERM to the God daemon"
    scenarios = Tool.scenarios | {"port"}

    def setup(self, d, services):
        super().setup(d, services)
        self.home = os.path.join(d, "pm2home")
        apps = []
        for s in services:
            app = {
                "name": s.name,
                "script": s.argv[0],
                "args": s.argv[1:],
                "interpreter": "none",
                "exec_mode": "fork",
                "autorestart": s.restart == "always",
                "restart_delay": 0,
                "max_restarts": 1000000000,
                "min_uptime": 0,
            }
            if s.log:
                app["out_file"] = s.log
                app["error_file"] = s.log + ".err"
            apps.append(app)
        self.cfg = os.path.join(d, "apps.json")
        with open(self.cfg, "w") as f:
            json.dump({"apps": apps}, f)
        self.cli = None

    def env(self):
        e = super().env()
        e["PM2_HOME"] = self.home
        return e

    def start(self):
        # The CLI starts the daemon (which comes back to us as an orphan) and the apps.
        self.cli = spawn([self.ctx.pm2, "start", self.cfg], self.env(), self.out_path())

    def roots(self):
        if self.root is None:
            try:
                with open(os.path.join(self.home, "pm2.pid")) as f:
                    self.root = int(f.read().strip())
            except (OSError, ValueError):
                return []
        return [self.root]

    def check_alive(self, table):
        if self.root is None and self.cli is not None and not alive(table, self.cli) and not self.roots():
            raise Unavailable(f"pm2 CLI exited without a daemon: {tail(self.out_path())}")
        super().check_alive(table)


class DirTool(Tool):
    """runit and s6: a directory of service directories, each with ./run (and ./log/run)."""

    logger = None

    def setup(self, d, services):
        super().setup(d, services)
        self.scan = os.path.join(d, "scan")
        os.makedirs(self.scan)
        for s in services:
            sd = os.path.join(self.scan, s.name)
            os.makedirs(sd)
            if len(s.argv) == 1:
                # No shell in between: ./run is the program itself.
                os.symlink(s.argv[0], os.path.join(sd, "run"))
            else:
                write_script(os.path.join(sd, "run"), "exec " + shlex.join(s.argv))
            if s.restart == "never":
                open(os.path.join(sd, "down"), "w").close()
            if s.log:
                ld = s.log + ".d"
                os.makedirs(ld)
                os.makedirs(os.path.join(sd, "log"))
                write_script(os.path.join(sd, "log", "run"), "exec " + self.logger(ld))
                self.log_setup(ld)

    def log_setup(self, ld):
        pass

    def log_file(self, svc):
        return os.path.join(svc.log + ".d", "current")

    def after_start(self):
        for s in self.services:
            if s.restart != "never":
                continue
            sd = os.path.join(self.scan, s.name)
            argv = self.once_cmd(sd)
            ok = wait_until(
                lambda: subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0,
                10,
                0.01,
            )
            if not ok:
                raise Unavailable(f"{shlex.join(argv)} failed for 10 s")


def write_script(path, body):
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body + "\n")
    os.chmod(path, 0o755)


class Runit(DirTool):
    name = "runit"
    note = "`runsvdir DIR` (a runsv per service; svlogd with s0 = no rotation); stop: SIGHUP to runsvdir"

    def logger(self, ld):
        return "svlogd " + shlex.quote(ld)

    def log_setup(self, ld):
        with open(os.path.join(ld, "config"), "w") as f:
            f.write("s0\n")

    def start(self):
        self.root = spawn(["runsvdir", self.scan], self.env(), self.out_path())

    def once_cmd(self, sd):
        return ["sv", "once", sd]

    def stop(self):
        # runsvdir on HUP: TERM to every runsv (each stops its service, then exits), then exit.
        os.kill(self.root, signal.SIGHUP)


class S6(DirTool):
    name = "s6"
    note = "`s6-svscan DIR` (an s6-supervise per service; s6-log); stop: SIGTERM to s6-svscan"

    def logger(self, ld):
        return "s6-log -- s268435455 " + shlex.quote(ld)

    def start(self):
        self.root = spawn(["s6-svscan", self.scan], self.env(), self.out_path())

    def once_cmd(self, sd):
        return ["s6-svc", "-o", sd]


class Mini(Tool):
    """The practical limit: bench/src/wb-mini.c, fork + pipe + read/write + waitpid."""

    name = "mini"
    note = (
        "the minimal C supervisor `bench/src/wb-mini.c` (fork, pipe, 64 KiB read/write, waitpid;"
        " no config language, API or state); stop: SIGTERM"
    )
    scenarios = {"respawn", "log", "idle", "stop", "scale", "port"}

    def setup(self, d, services):
        super().setup(d, services)
        self.cfg = os.path.join(d, "mini.conf")
        with open(self.cfg, "w") as f:
            for s in services:
                f.write("\t".join([s.restart, s.log or "-"] + s.argv) + "\n")

    def start(self):
        self.root = spawn([self.ctx.mini, self.cfg], self.env(), self.out_path())


class RawPipe(Tool):
    """The physical limit of the log row: the writer piped into `cat > FILE` (one pipe, one
    copy to the file, no supervisor)."""

    name = "pipe"
    note = "the raw pipe copy `wb-flood ... | cat > FILE` (log throughput only: the physical limit)"
    scenarios = {"log"}

    def start(self):
        (s,) = self.services
        cmd = f"{shlex.join(s.argv)} | cat > {shlex.quote(s.log)}"
        self.root = spawn([SH, "-c", cmd], self.env(), self.out_path())

    def check_alive(self, table):
        """The shell ends with the copy: that is no failure."""


class Horust(Tool):
    name = "horust"
    note = (
        "`horust --services-path DIR` (one service file each; restart backoff 0s, attempts 0;"
        " a logged service's stdout is the file itself: horust hands the child the open file,"
        " no pipe); stop: SIGTERM"
    )

    def setup(self, d, services):
        super().setup(d, services)
        self.sdir = os.path.join(d, "services")
        os.makedirs(self.sdir)
        for s in services:
            lines = [f"command = {toml_str(shlex.join(s.argv))}"]
            if s.log:
                lines.append(f"stdout = {toml_str(s.log)}")
            lines += [
                "[restart]",
                f'strategy = "{s.restart}"',
                'backoff = "0s"',
                "attempts = 0",
                "[termination]",
                'wait = "10s"',
                "[environment]",
                "keep-env = true",
            ]
            with open(os.path.join(self.sdir, f"{s.name}.toml"), "w") as f:
                f.write("\n".join(lines) + "\n")

    def start(self):
        uds = os.path.join(self.d, "horust-uds")
        os.makedirs(uds, exist_ok=True)
        argv = [self.ctx.horust, "--services-path", self.sdir, "--uds-folder-path", uds]
        self.root = spawn(argv, self.env(), self.out_path())


class Circus(Tool):
    name = "circus"
    note = (
        "`circusd FILE` (a watcher each: warmup_delay 0, copy_env; FileStream for the log;"
        " ipc endpoints in the work dir); stop: SIGTERM"
    )

    def setup(self, d, services):
        super().setup(d, services)
        lines = [
            "[circus]",
            f"endpoint = ipc://{d}/circus-endpoint",
            f"pubsub_endpoint = ipc://{d}/circus-pubsub",
            f"stats_endpoint = ipc://{d}/circus-stats",
            "statsd = False",
            "",
        ]
        for s in services:
            lines += [
                f"[watcher:{s.name}]",
                f"cmd = {s.argv[0]}",
                f"args = {shlex.join(s.argv[1:])}" if len(s.argv) > 1 else "",
                "numprocesses = 1",
                "warmup_delay = 0",
                f"respawn = {s.restart == 'always'}",
                "copy_env = True",
                "graceful_timeout = 10",
            ]
            if s.log:
                lines += ["stdout_stream.class = FileStream", f"stdout_stream.filename = {s.log}"]
            lines.append("")
        self.cfg = os.path.join(d, "circus.ini")
        with open(self.cfg, "w") as f:
            f.write("\n".join(lines))

    def start(self):
        self.root = spawn([self.ctx.circusd, self.cfg], self.env(), self.out_path())


TOOLS = {
    "warden": Warden,
    "mini": Mini,
    "pipe": RawPipe,
    "supervisord": Supervisord,
    "pm2": Pm2,
    "runit": Runit,
    "s6": S6,
    "horust": Horust,
    "circus": Circus,
}
SCENARIOS = ("respawn", "log", "idle", "stop", "scale", "port")


# --------------------------------------------------------------------------- runs


class Run:
    """One tool on one piece of work: set up, start, always stop and clean up."""

    def __init__(self, ctx, tool, label, services):
        self.ctx, self.tool = ctx, tool
        self.d = os.path.join(ctx.work, f"{label}-{tool.name}")
        os.makedirs(self.d)
        tool.setup(self.d, services)
        self.workload = {ctx.stamp, ctx.flood, ctx.http, SLEEP, SH}

    def __enter__(self):
        self.t_launch = time.monotonic()
        self.tool.start()
        return self

    def __exit__(self, *exc):
        try:
            table = snapshot()
            tree = self.tree(table)
            if any(alive(table, r) for r in self.tool.roots()) and not self.tool.stopped:
                self.tool.stop()
            # After a measured stop that timed out, do not wait again: kill.
            wait = 1 if self.tool.stopped else 20
            self.tool.stopped = True
            wait_until(lambda: not any(alive(snapshot(), p) for p in tree), wait, 0.02)
        except (ProcessLookupError, Unavailable):
            pass
        self.ctx.cleanup()
        return False

    def tree(self, table):
        return descendants(table, self.tool.roots())

    def supervisor_pids(self, table):
        """The tool's own processes: its tree, less the work it runs."""
        return {p for p in self.tree(table) if table[p].state != "Z" and exe(p) not in self.workload}

    def workers(self, table, path):
        return [p for p in self.tree(table) if table[p].state != "Z" and exe(p) == path]


def percentile(sorted_vals, q):
    """Nearest-rank percentile."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, int(round(q / 100 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def scenario_respawn(ctx, tool):
    stamp_file = os.path.join(ctx.work, f"respawn-{tool.name}.stamps")
    ctx.extra_env = {"WB_STAMP_FILE": stamp_file}
    services = [Service("stamp", [ctx.stamp], "always", fast=True)]

    def count():
        try:
            with open(stamp_file, "rb") as f:
                return f.read().count(b"\n")
        except OSError:
            return 0

    with Run(ctx, tool, "respawn", services) as run:
        deadline = time.monotonic() + ctx.respawn_secs
        while count() < ctx.respawn_n + 1 and time.monotonic() < deadline:
            tool.check_alive(snapshot())
            time.sleep(0.02)
    with open(stamp_file) as f:
        stamps = [int(x) for x in f.read().split()]
    if len(stamps) < 2:
        raise Unavailable(f"{len(stamps)} start(s) in {ctx.respawn_secs} s")
    stamps = stamps[: ctx.respawn_n + 1]
    gaps = sorted((b - a) / 1e6 for a, b in zip(stamps, stamps[1:]))
    return {
        "gap_median_ms": percentile(gaps, 50),
        "gap_p99_ms": percentile(gaps, 99),
        "gaps": len(gaps),
    }


def http_pid(port, timeout=0.05):
    """GET / on 127.0.0.1:PORT: the pid wb-http answers with, or None (refused, reset, no
    answer within `timeout`)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
            c.sendall(b"GET / HTTP/1.0\r\n\r\n")
            data = b""
            while True:
                chunk = c.recv(256)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.0 200") or not body.strip().isdigit():
        return None
    return int(body)


def scenario_port(ctx, tool):
    """Crash to port: SIGKILL the HTTP service, then poll its port (the harness's own probe,
    every PORT_POLL_S: PM2 and supervisord have none) until a new process answers 200."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    services = [Service("http", [ctx.http, str(port)], "always", fast=True)]
    times = []
    timeouts = 0
    with Run(ctx, tool, "port", services):
        first = wait_until(lambda: http_pid(port), 30)
        if not first:
            tool.check_alive(snapshot())
            raise Unavailable(f"the HTTP service never answered on port {port}")
        pid = first
        for _ in range(ctx.port_crashes):
            # A run that has been up a while (past min_uptime and startsecs everywhere), so
            # that each crash is a crash of a running service, not of a start.
            time.sleep(ctx.port_uptime)
            tool.check_alive(snapshot())
            t0 = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            deadline = t0 + ctx.port_timeout
            new = None
            while time.monotonic() < deadline:
                new = http_pid(port)
                if new and new != pid:
                    break
                new = None
                time.sleep(PORT_POLL_S)
            if new is None:
                timeouts += 1
                pid = wait_until(lambda: http_pid(port), 30)
                if not pid:
                    raise Unavailable(f"no answer on port {port} {ctx.port_timeout + 30:.0f} s after a crash")
                continue
            times.append((time.monotonic() - t0) * 1000)
            pid = new
    times.sort()
    limit = f">{ctx.port_timeout * 1000:.0f}"
    return {
        "port_median_ms": percentile(times, 50) if not timeouts * 2 >= ctx.port_crashes else limit,
        "port_p99_ms": percentile(times, 99) if not timeouts else limit,
        "port_crashes": len(times) + timeouts,
    }


def sample_cpu_rss(run, table, cpu, hwm, rss=None):
    """Fold the supervisor processes' CPU ticks and VmHWM (and VmRSS) into the dicts."""
    for p in run.supervisor_pids(table):
        cpu[p] = table[p].cpu_ticks
        h = status_kb(p, "VmHWM")
        if h is not None:
            hwm[p] = max(hwm.get(p, 0), h)
        if rss is not None:
            r = status_kb(p, "VmRSS")
            if r is not None:
                rss[p] = r


STAMP_LEN = 25  # warden's time prefix: "2024-05-01T12:00:00.123Z "


def warm_memory(ctx):
    """Once per run, before the first flood: the same bytes through `wb-flood | cat > FILE`,
    unmeasured, then the file removed. On a VM the first pages a run writes into the page
    cache may cost the host a fault each: the tool that floods first paid for that (twice
    the CPU time of the same tool run later, whichever it was), not for its own work."""
    if getattr(ctx, "warmed", False):
        return
    ctx.warmed = True
    d = os.path.join(ctx.work, "log-warmup")
    os.makedirs(d)
    gate, stamp, out = f"{d}/gate", f"{d}/stamp", f"{d}/out"
    open(gate, "w").close()
    with open(out, "wb") as f:
        w = subprocess.Popen([ctx.flood, str(ctx.lines), gate, stamp], stdout=subprocess.PIPE)
        c = subprocess.Popen(["cat"], stdin=w.stdout, stdout=f)
        w.stdout.close()
        c.wait(timeout=300)
        w.wait(timeout=300)
    os.unlink(out)


def scenario_log(ctx, tool, timestamps=False):
    """The flood `ctx.flood_reps` times (3; 1 with --quick), each with a fresh start of the
    tool: the median MB/s and CPU, the highest peak RSS, the lines lost or split in all of
    them. One flood's rate on this VM moved by 2x for every tool, the raw pipe's included
    (its CPU by 5x), from one flood to the next."""
    warm_memory(ctx)
    reps = [flood_once(ctx, tool, timestamps, i) for i in range(ctx.flood_reps)]
    res = dict(reps[0])
    for key in ("mb_s", "secs", "writer_secs", "cpu_s"):
        res[key] = percentile(sorted(r[key] for r in reps), 50)
    res["hwm_mib"] = max(r["hwm_mib"] for r in reps)
    for key in ("lost", "bad", "reordered"):
        res[key] = sum(r[key] for r in reps)
    res["complete"] = all(r["complete"] for r in reps)
    res["reps"] = len(reps)
    res["mb_s_each"] = [round(r["mb_s"], 1) for r in reps]
    return res


def flood_once(ctx, tool, timestamps, rep):
    n = ctx.lines
    line = 100 + (STAMP_LEN if timestamps else 0)
    expected = n * line
    label = "log_ts" if timestamps else "log"
    d = os.path.join(ctx.work, f"{label}-{tool.name}-{rep}.files")
    os.makedirs(d)
    gate, fstamp, log = f"{d}/gate", f"{d}/flood.stamp", f"{d}/out.log"
    ctx.extra_env = {}
    services = [Service("flood", [ctx.flood, str(n), gate, fstamp], "never", log=log, timestamps=timestamps)]
    with Run(ctx, tool, f"{label}{rep}", services) as run:
        logf = tool.log_file(services[0])

        def flood_waiting():
            table = snapshot()
            tool.check_alive(table)
            return run.workers(table, ctx.flood)

        tool.after_start()
        flood_pids = wait_until(flood_waiting, 30, 0.01)
        if not flood_pids:
            raise Unavailable("the flood child never started")
        table = snapshot()
        base = {}
        sample_cpu_rss(run, table, base, {})
        cpu, hwm = dict(base), {}
        open(gate, "w").close()
        t_gate = time.monotonic()
        last_size, last_change, t_done, complete = -1, time.monotonic(), None, False
        next_sample = 0
        while True:
            now = time.monotonic()
            try:
                size = os.stat(logf).st_size
            except OSError:
                size = 0
            if size != last_size:
                last_size, last_change = size, now
            if size >= expected:
                t_done, complete = now, True
                break
            if now >= next_sample:
                table = snapshot()
                tool.check_alive(table)
                sample_cpu_rss(run, table, cpu, hwm)
                next_sample = now + 0.1
            if now - last_change > 3 and not any(alive(table, p) for p in flood_pids):
                t_done = last_change  # the writer is gone and the log stopped growing
                break
            if now - t_gate > ctx.log_timeout:
                t_done = now
                break
            time.sleep(0.002)
        sample_cpu_rss(run, snapshot(), cpu, hwm)
        # Let the writer finish its stamp (it writes it after its last line).
        if not wait_until(lambda: os.path.exists(fstamp) and os.path.getsize(fstamp) > 0, 5, 0.01):
            raise Unavailable(f"the flood child did not finish writing; {tool.name} said: {tail(tool.out_path(), 3)}")
    with open(fstamp) as f:
        w_start, w_end = (int(x) for x in f.read().split())
    secs = t_done - w_start / 1e9
    out = subprocess.run([ctx.verify, logf, str(n)] + (["timestamps"] if timestamps else []), capture_output=True, text=True).stdout
    v = dict(kv.split("=") for kv in out.split())
    # MB/s counts the program's bytes (with timestamps the file has 25 more per line).
    got = int(v["bytes"]) * 100 // line
    if not complete:
        ctx.notes.append(
            f"{tool.name}, {label}: only {got:,} of {n * 100:,} bytes reached the log ({v['lost']} lines lost);"
            " its MB/s counts the bytes that arrived, until the log stopped growing"
        )
    res = {
        "mb_s": got / 1e6 / secs,
        "secs": secs,
        "writer_secs": (w_end - w_start) / 1e9,
        "lost": int(v["lost"]),
        "bad": int(v["bad"]) + int(v["dup"]),
        "reordered": int(v["reordered"]),
        "cpu_s": sum(cpu[p] - base.get(p, 0) for p in cpu) / CLK_TCK,
        "hwm_mib": sum(hwm.values()) / 1024,
        "complete": complete,
    }
    for path in (logf, log, log + ".err") if not ctx.keep else ():
        try:
            os.unlink(path)
        except OSError:
            pass
    return res


def scenario_log_ts(ctx, tool):
    """The log flood again with `timestamps = true` (warden only), and its rate against the
    plain flood's of the same run."""
    res = scenario_log(ctx, tool, timestamps=True)
    plain = ctx.results.get(tool.name, {}).get("log", {}).get("mb_s")
    res["vs_plain"] = res["mb_s"] / plain if plain else None
    return res


def sleepers(ctx, grandchild):
    if grandchild:
        argv = [SH, "-c", f"{SLEEP} 3600 & exec {SLEEP} 3600"]
    else:
        argv = [SLEEP, "3600"]
    return [Service(f"s{i:03d}", argv, "always") for i in range(ctx.services)]


def task_children(pid):
    """The children of `pid`, of every one of its threads (a child belongs to the thread
    that forked it), from /proc/PID/task/TID/children: no scan of every process."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out = []
    for t in tids:
        try:
            with open(f"/proc/{pid}/task/{t}/children", "rb") as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


class WorkerCount:
    """The processes running `path` below the tool's roots, found cheaply enough to be asked
    every few milliseconds while a tool starts 1,000 of them. A full `snapshot()` reads the
    stat file of every process of the machine: 40 ms of this process's CPU with 1,000
    sleeps, so polling with it took one of this machine's two CPUs away from the tool being
    measured (and from the reference). This walks the roots' children files instead, and
    reads a process's `exe` until it is `path` (a `sleep` does not exec again); below a
    worker it looks only when `nested` (a worker's own child, the grandchild scenario)."""

    def __init__(self, run, path, nested):
        self.run, self.path, self.nested = run, path, nested
        self.workers = set()

    def __call__(self):
        found, todo, seen = set(), list(self.run.tool.roots()), set()
        while todo:
            pid = todo.pop()
            if pid in seen:
                continue
            seen.add(pid)
            if pid in self.workers or exe(pid) == self.path:
                found.add(pid)
                if not self.nested:
                    continue
            todo.extend(task_children(pid))
        self.workers = found
        return found


def start_sleepers(ctx, run, want, nested=False):
    """Wait until `want` sleeps run under the tool; returns (seconds from launch, their pids).
    The tool's own liveness is checked with a full snapshot twice a second."""
    tool = run.tool
    count = WorkerCount(run, SLEEP, nested)
    next_check = 0.0

    def ready():
        nonlocal next_check
        if time.monotonic() >= next_check:
            reap()
            tool.check_alive(snapshot())
            next_check = time.monotonic() + 0.5
        pids = count()
        return pids if len(pids) >= want else None

    pids = wait_until(ready, 60, 0.005)
    if not pids:
        raise Unavailable(f"fewer than {want} sleeps after 60 s")
    t = time.monotonic() - run.t_launch
    table = snapshot()
    tool.check_alive(table)
    # Not counted above: zombies (a sleep that died at once would be one).
    live = {p for p in pids if alive(table, p)}
    if len(live) < want:
        raise Unavailable(f"{want - len(live)} of the {want} sleeps died at once")
    return t, live


def stop_all(ctx, run, pids, label):
    """Send the stop request; time until every one of `pids` is gone (dead and reaped), and count
    the ones still alive once every process of the tool has exited."""
    tool = run.tool
    table = snapshot()
    sup = run.supervisor_pids(table)
    main = {p for p in pids if p in table and table[p].ppid in sup}
    t0 = time.monotonic()
    tool.stop()
    tool.stopped = True
    t_main = t_sup = None
    deadline = t0 + ctx.stop_timeout
    while time.monotonic() < deadline:
        table = snapshot()
        now = time.monotonic()
        if t_main is None and not any(p in table for p in main):
            t_main = now
        if t_sup is None and not any(alive(table, p) for p in sup):
            t_sup = now
        if t_main is not None and t_sup is not None:
            break
        time.sleep(0.002)
    table = snapshot()
    left = sum(1 for p in pids if alive(table, p) and exe(p) == SLEEP)
    limit = ctx.stop_timeout * 1000
    if t_main is None:
        still = sum(1 for p in main if p in table)
        ctx.notes.append(
            f"{tool.name}, {label}: {still} of {len(main)} children still there after {ctx.stop_timeout} s;"
            " processes left counted then"
        )
    return {
        "stop_ms": (t_main - t0) * 1000 if t_main else f">{limit:.0f}",
        "exit_ms": (t_sup - t0) * 1000 if t_sup else f">{limit:.0f}",
        "left": left,
        "main": len(main),
    }


def scenario_idle_and_stop(ctx, tool):
    ctx.extra_env = {}
    res = {}
    with Run(ctx, tool, "idle", sleepers(ctx, False)) as run:
        t_ready, pids = start_sleepers(ctx, run, ctx.services)
        res["ready_ms"] = t_ready * 1000
        if "idle" in ctx.only:
            time.sleep(ctx.settle)
            sup0 = run.supervisor_pids(snapshot())
            cpu0 = {p: cpu_ns(p) for p in sup0}
            time.sleep(ctx.idle_secs)
            table = snapshot()
            tool.check_alive(table)
            sup = run.supervisor_pids(table)
            cpu1 = {p: cpu_ns(p) for p in sup}
            rss = [status_kb(p, "VmRSS") or 0 for p in sup]
            pss = [pss_kb(p) or 0 for p in sup]
            res["rss_mib"] = sum(rss) / 1024
            res["pss_mib"] = sum(pss) / 1024
            res["cpu_ms"] = sum((cpu1[p] or 0) - (cpu0.get(p) or 0) for p in sup) / 1e6 * 10 / ctx.idle_secs
            res["procs"] = len(sup)
        if "stop" in ctx.only:
            s = stop_all(ctx, run, pids, "stop-all")
            res.update({f"term_{k}": v for k, v in s.items()})
    if "stop" in ctx.only:
        with Run(ctx, tool, "stopgc", sleepers(ctx, True)) as run:
            _, pids = start_sleepers(ctx, run, 2 * ctx.services, nested=True)
            s = stop_all(ctx, run, pids, "stop-all with grandchildren")
            res.update({f"gc_{k}": v for k, v in s.items()})
    return res


def scenario_scale(ctx, tool):
    """1,000 services of `sleep 3600`: time until all run, the supervisor's RSS; for warden
    also `warden status` (table and JSON) and `warden reload` with one service changed; then
    the stop (`warden down`, SIGTERM for the others) until every sleep is reaped."""
    ctx.extra_env = {}
    n = ctx.scale
    services = [Service(f"s{i:04d}", [SLEEP, "3600"], "always") for i in range(n)]
    res = {}
    with Run(ctx, tool, "scale", services) as run:
        t_ready, pids = start_sleepers(ctx, run, n)
        res["ready_ms"] = t_ready * 1000
        time.sleep(ctx.settle)
        table = snapshot()
        tool.check_alive(table)
        res["rss_mib"] = sum(status_kb(p, "VmRSS") or 0 for p in run.supervisor_pids(table)) / 1024
        if isinstance(tool, Warden):
            reps = 3 if ctx.quick else 5
            res["status_ms"] = percentile(sorted(tool.cli("status") for _ in range(reps)), 50)
            res["status_json_ms"] = percentile(sorted(tool.cli("status", "--json") for _ in range(reps)), 50)
            # One change: the first service's command. The reload answers once it is applied.
            changed = [Service(services[0].name, [SLEEP, "3601"], "always")] + services[1:]
            tool.write_config(changed)
            res["reload_ms"] = tool.cli("reload")
            before = set(pids)

            def back():
                now = set(run.workers(snapshot(), SLEEP))
                return now if len(now) >= n and now != before else None

            new = wait_until(back, 30)
            if not new:
                raise Unavailable("the changed service did not come back after the reload")
            pids = set(new)
        table = snapshot()
        main = {p for p in pids if p in table}
        t0 = time.monotonic()
        if isinstance(tool, Warden):
            subprocess.Popen([ctx.warden, "down", "-c", tool.cfg], env=tool.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        else:
            tool.stop()
        tool.stopped = True
        gone = wait_until(lambda: main.isdisjoint(snapshot()), ctx.stop_timeout, 0.002)
        res["down_ms"] = (time.monotonic() - t0) * 1000 if gone else f">{ctx.stop_timeout * 1000:.0f}"
        table = snapshot()
        res["down_left"] = sum(1 for p in main if alive(table, p) and exe(p) == SLEEP)
    return res


# --------------------------------------------------------------------------- report

ROWS = [
    # (scenario key, result key, scenario label, metric label, format)
    ("respawn", "gap_median_ms", "respawn gap", "median gap between starts (ms)", "{:.2f}"),
    ("respawn", "gap_p99_ms", "respawn gap", "p99 gap (ms)", "{:.2f}"),
    ("respawn", "gaps", "respawn gap", "gaps measured", "{:d}"),
    ("log", "mb_s", "log throughput", "MB/s into the log file (higher is better)", "{:.1f}"),
    ("log", "lost", "log throughput", "lines lost", "{:d}"),
    ("log", "bad", "log throughput", "lines split, merged or duplicated", "{:d}"),
    ("log", "cpu_s", "log throughput", "supervisor CPU (s)", "{:.2f}"),
    ("log", "hwm_mib", "log throughput", "supervisor peak RSS (MiB)", "{:.1f}"),
    ("log_ts", "mb_s", "log, timestamps = true", "MB/s of the program's output (higher is better)", "{:.1f}"),
    ("log_ts", "vs_plain", "log, timestamps = true", "against the plain flood of this run", "{:.2f}"),
    ("log_ts", "lost", "log, timestamps = true", "lines lost", "{:d}"),
    ("log_ts", "bad", "log, timestamps = true", "lines split, merged, duplicated or not stamped", "{:d}"),
    ("log_ts", "cpu_s", "log, timestamps = true", "supervisor CPU (s)", "{:.2f}"),
    ("idle", "ready_ms", "idle, N services", "time until all run (ms)", "{:.0f}"),
    ("idle", "rss_mib", "idle, N services", "supervisor RSS (MiB)", "{:.1f}"),
    ("idle", "pss_mib", "idle, N services", "supervisor PSS (MiB; shared pages split)", "{:.1f}"),
    ("idle", "cpu_ms", "idle, N services", "supervisor CPU per 10 s (ms)", "{:.1f}"),
    ("idle", "procs", "idle, N services", "supervisor processes", "{:d}"),
    ("stop", "term_stop_ms", "stop-all", "children exit on TERM: until all reaped (ms)", "{:.0f}"),
    ("stop", "term_exit_ms", "stop-all", "children exit on TERM: until the supervisor exited (ms)", "{:.0f}"),
    ("stop", "term_left", "stop-all", "children exit on TERM: processes left", "{:d}"),
    ("stop", "gc_stop_ms", "stop-all", "with a grandchild each: until children reaped (ms)", "{:.0f}"),
    ("stop", "gc_left", "stop-all", "with a grandchild each: sleeps left", "{:d}"),
    ("scale", "ready_ms", "1,000 services", "time until all run (ms)", "{:.0f}"),
    ("scale", "rss_mib", "1,000 services", "supervisor RSS (MiB)", "{:.1f}"),
    ("scale", "status_ms", "1,000 services", "`warden status` (ms, median)", "{:.0f}"),
    ("scale", "status_json_ms", "1,000 services", "`warden status --json` (ms, median)", "{:.0f}"),
    ("scale", "reload_ms", "1,000 services", "`warden reload`, one service changed (ms)", "{:.0f}"),
    ("scale", "down_ms", "1,000 services", "stop (`warden down`) until all reaped (ms)", "{:.0f}"),
    ("scale", "down_left", "1,000 services", "processes left", "{:d}"),
    ("port", "port_median_ms", "crash to port", "median SIGKILL to port answering again (ms)", "{:.2f}"),
    ("port", "port_p99_ms", "crash to port", "p99 (ms)", "{:.2f}"),
    ("port", "port_crashes", "crash to port", "crashes measured", "{:d}"),
]


def fmt(v, f):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if f == "{:d}":
        v = int(v)
    return f.format(v)


def ratio(w, p):
    if w is None or p is None or isinstance(w, str):
        return "-"
    if isinstance(p, str):  # ">LIMIT": the peer timed out
        return f"<{w / float(p[1:]):.2f}"
    if p == 0:
        return "-"
    r = w / p
    return f"{r:.2f}" if r >= 0.1 or r == 0 else f"{r:.2g}"


def table_rows(ctx, results):
    tools = ctx.tools
    peers = [t for t in tools if t != "warden"]
    head = ["scenario", "metric"] + tools
    if "warden" in tools:
        head += [f"w/{p}" for p in peers]
    rows = []
    for scen, key, slabel, mlabel, f in ROWS:
        if not (scen in ctx.only or (scen == "idle" and key == "ready_ms" and "stop" in ctx.only)
                or (scen == "log_ts" and "log" in ctx.only)):
            continue
        stored = "idle" if scen == "stop" else scen
        vals = {t: results.get(t, {}).get(stored, {}).get(key) for t in tools}
        row = [slabel.replace("N", str(ctx.services)), mlabel] + [fmt(vals[t], f) for t in tools]
        if "warden" in tools:
            # A ratio of counts (lines lost, processes left) says nothing the counts do not.
            counts = {"gaps", "lost", "bad", "term_left", "gc_left", "down_left", "port_crashes", "vs_plain"}
            row += ["" if key in counts else ratio(vals["warden"], vals[p]) for p in peers]
        rows.append(row)
    return head, rows


def render_text(head, rows):
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    line = lambda r: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def render_md(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def machine():
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    except OSError:
        model = "?"
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) / 1024 / 1024
    except OSError:
        mem = 0
    return f"{os.cpu_count()} CPUs ({model}), {mem:.0f} GiB, Linux {platform.release()}"


# --------------------------------------------------------------------------- main


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", required=True)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--bin", required=True, help="dir with wb-stamp, wb-flood, wb-verify")
    ap.add_argument("--warden")
    ap.add_argument("--supervisord")
    ap.add_argument("--pm2")
    ap.add_argument("--mini")
    ap.add_argument("--horust")
    ap.add_argument("--circusd")
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--unavailable", action="append", default=[], help="TOOL=REASON")
    ap.add_argument("--only", default=",".join(SCENARIOS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--md", help="write the markdown report here")
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--versions", default="")
    ap.add_argument("--keep", action="store_true", help="keep the flood logs")
    a = ap.parse_args()

    ctx = Ctx()
    ctx.work, ctx.tag, ctx.extra_env = a.work, a.tag, {}
    ctx.stamp, ctx.flood, ctx.verify, ctx.http = (
        os.path.join(a.bin, n) for n in ("wb-stamp", "wb-flood", "wb-verify", "wb-http"))
    ctx.warden, ctx.supervisord, ctx.pm2 = a.warden, a.supervisord, a.pm2
    ctx.mini, ctx.horust, ctx.circusd = a.mini, a.horust, a.circusd
    ctx.tools = [t for t in a.tools.split(",") if t]
    ctx.only = set(a.only.split(","))
    ctx.quick, ctx.keep = a.quick, a.keep
    ctx.services = 100
    ctx.scale = 1000
    ctx.respawn_n = 200 if a.quick else 1000
    ctx.respawn_secs = 4 if a.quick else 10
    ctx.lines = 500_000 if a.quick else 2_000_000
    ctx.log_timeout = 120
    ctx.idle_secs = 3 if a.quick else 10
    ctx.flood_reps = 1 if a.quick else 3
    ctx.settle = 1 if a.quick else 2
    ctx.stop_timeout = 15 if a.quick else 30
    ctx.port_crashes = 8 if a.quick else 20
    ctx.port_uptime = 1.2  # s of uptime before each crash
    ctx.port_timeout = 10
    unknown = set(ctx.tools) - set(TOOLS) or ctx.only - set(SCENARIOS)
    if unknown:
        ap.error(f"unknown: {', '.join(sorted(unknown))}")

    def cleanup():
        n = kill_tagged(ctx.tag)
        if n:
            print(f"  (killed {n} leftover process(es))", file=sys.stderr)

    ctx.cleanup = cleanup
    with open("/proc/loadavg") as f:
        ctx.load = " ".join(f.read().split()[:3])
    set_subreaper()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    unavailable = dict(u.split("=", 1) for u in a.unavailable)
    results, notes = {}, []
    ctx.notes = notes
    ctx.results = results
    scenarios = [("respawn", scenario_respawn), ("log", scenario_log), ("log_ts", scenario_log_ts)]
    if ctx.only & {"idle", "stop"}:
        scenarios.append(("idle", scenario_idle_and_stop))
    scenarios.append(("scale", scenario_scale))
    scenarios.append(("port", scenario_port))
    try:
        for scen, fn in scenarios:
            if scen not in ctx.only and scen != "idle" and not (scen == "log_ts" and "log" in ctx.only):
                continue
            for name in ctx.tools:
                r = results.setdefault(name, {})
                if name in unavailable:
                    continue
                wanted = {"idle", "stop"} if scen == "idle" else {scen}
                if not wanted & TOOLS[name].scenarios:
                    continue
                tool = TOOLS[name](ctx)
                print(f"[{scen}] {name} ...", file=sys.stderr, flush=True)
                t = time.monotonic()
                try:
                    r[scen] = fn(ctx, tool)
                except Unavailable as e:
                    notes.append(f"{name}, {scen}: n/a: {e}")
                    print(f"  n/a: {e}", file=sys.stderr)
                    cleanup()
                print(f"  {json.dumps(r.get(scen), default=str)} ({time.monotonic() - t:.1f} s)", file=sys.stderr)
    finally:
        cleanup()

    head, rows = table_rows(ctx, results)
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    mach = machine()
    legend = [
        f"{when}, {mach}, load average {ctx.load} at the start{', --quick' if ctx.quick else ''}.",
        "w/PEER = warden / PEER, measured in the same run; below 1 is better for warden, except MB/s"
        " (`-`: no ratio, a value is missing or the peer's is 0). `mini` (a minimal C supervisor) and"
        " `pipe` (the raw `| cat > FILE` copy, log row only) are the practical and physical limits;"
        " the 1,000-services rows are warden's, with `mini` as the reference.",
    ]
    for name in ctx.tools:
        if name in unavailable:
            notes.insert(0, f"{name}: n/a: {unavailable[name]}")
    setup = [f"- {TOOLS[t].name}: {TOOLS[t].note}" for t in ctx.tools]
    text = render_text(head, rows)
    print()
    print("\n".join(legend))
    print()
    print(text)
    if notes:
        print()
        print("\n".join(notes))
    if a.md:
        with open(a.md, "w") as f:
            f.write("# warden benchmark\n\n")
            f.write("\n".join(legend) + "\n\n")
            if a.versions:
                f.write("Versions: " + a.versions + "\n\n")
            f.write(render_md(head, rows) + "\n\n")
            f.write("How each tool ran:\n\n" + "\n".join(setup) + "\n")
            if notes:
                f.write("\nNotes:\n\n" + "\n".join(f"- {n}" for n in notes) + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"date": when, "machine": mach, "quick": ctx.quick, "results": results, "notes": notes}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
