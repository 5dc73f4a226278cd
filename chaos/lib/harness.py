"""The chaos suite's harness: a real warden in its own directory, its API over the Unix
socket, /proc measurements, leftover and zombie checks, and the report rows.

Python 3 standard library only. Every wait has a deadline; nothing sleeps to "let things
settle": the waits poll a condition until it holds or the deadline passes.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

# How long each leak scenario (1, 7, 10) runs with --long, unless --long-seconds says.
LONG_SECONDS = 600

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Violation(Exception):
    """A guarantee did not hold: the scenario fails with this message."""


class Skip(Exception):
    """The scenario cannot run here (the reason is printed plainly)."""


def check(cond, msg):
    if not cond:
        raise Violation(msg)


def now_ms():
    return time.time() * 1000.0


def wait_for(what, timeout, fn, pause=0.01):
    """Poll `fn` until it returns a true value (returned), or raise Violation after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Violation(f"timed out after {timeout}s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, max(pause, 0.05))


def toml_str(s):
    return json.dumps(str(s))


def toml_list(items):
    return "[" + ", ".join(toml_str(i) for i in items) + "]"


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def mean(values):
    return sum(values) / len(values) if values else None


# ---- /proc ---------------------------------------------------------------------------------


def proc_stat(pid):
    """(state, ppid, starttime, utime+stime ticks) of pid, or None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("latin-1")
    except OSError:
        return None
    rest = data[data.rfind(")") + 2 :].split()
    return rest[0], int(rest[1]), int(rest[19]), int(rest[11]) + int(rest[12])


def proc_status_field(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def fd_links(pid):
    """{fd: what it points to} of pid now (a pipe, socket, anon_inode:[pidfd], a path)."""
    out = {}
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return out
    for n in names:
        try:
            out[int(n)] = os.readlink(f"/proc/{pid}/fd/{n}")
        except OSError:
            pass
    return out


def fd_diff(before, after):
    """The fds of `after` that are new or point elsewhere than in `before`, as text."""
    new = [f"{fd} -> {after[fd]}" for fd in sorted(after) if before.get(fd) != after[fd]]
    gone = [f"{fd} -> {before[fd]}" for fd in sorted(before) if fd not in after]
    return f"new: {new or 'none'}; gone: {gone or 'none'}"


def inotify_watches(pid):
    """How many watches warden's inotify descriptors hold now (from /proc/PID/fdinfo)."""
    n = 0
    for fd, what in fd_links(pid).items():
        if what != "anon_inode:inotify":
            continue
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                n += sum(1 for line in f if line.startswith("inotify wd:"))
        except OSError:
            pass
    return n


def metrics(pid):
    """warden's fds, threads, RSS (KiB) and CPU ticks now."""
    st = proc_stat(pid)
    return {
        "fds": fd_count(pid),
        "threads": proc_status_field(pid, "Threads"),
        "rss_kib": proc_status_field(pid, "VmRSS"),
        "cpu_ticks": st[3] if st else None,
    }


def children(pid):
    """The direct children of pid (every thread's list)."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out.extend(int(x) for x in f.read().split())
            except OSError:
                pass
    except OSError:
        pass
    return out


def environ_has(pid, needle):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return needle in f.read().split(b"\0")
    except OSError:
        return False


def tagged_processes(tag, exclude=()):
    """Live (not zombie) processes whose environment carries CHAOS_TAG=tag."""
    needle = f"CHAOS_TAG={tag}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid in exclude or pid == os.getpid():
            continue
        if environ_has(pid, needle):
            st = proc_stat(pid)
            if st and st[0] != "Z":
                found.append(pid)
    return found


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("latin-1").strip()
    except OSError:
        return "?"


# ---- the HTTP API over the Unix socket -----------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("warden", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def http_call(conn, method, path, body=None, headers=None):
    hdrs = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=hdrs)
    resp = conn.getresponse()
    raw = resp.read()
    try:
        obj = json.loads(raw) if raw else None
    except ValueError:
        obj = raw
    return resp.status, obj


# ---- a warden under test -------------------------------------------------------------------


class Warden:
    """One warden in its own directory: config, state dir, logs. `tag` marks every process it
    starts (CHAOS_TAG in the environment they inherit), so that leftovers are found without
    trusting warden's own bookkeeping."""

    def __init__(self, ctx, name, config_text="", base=None):
        self.ctx = ctx
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"chaos-{name}-", dir=base)
        os.chmod(self.dir, 0o700)
        self.config = os.path.join(self.dir, "warden.toml")
        self.tag = uuid.uuid4().hex
        self.proc = None
        self.pid = None
        self.out_path = os.path.join(self.dir, "up.out")
        self.sock = os.path.join(self.dir, ".warden", "warden.sock")
        self.preexec = None
        self.env_extra = {}
        if config_text:
            self.write_config(config_text)
        ctx.cleanups.append(self.cleanup)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write_config(self, text):
        tmp = self.config + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config)

    def env(self):
        e = dict(os.environ)
        e["CHAOS_TAG"] = self.tag
        e.pop("WARDEN_CONFIG", None)
        e.update(self.env_extra)
        return e

    def up(self, timeout=60, extra_args=(), wrap=()):
        """`warden up` in the foreground as our child (its output in up.out); returns once the
        API answers."""
        out = open(self.out_path, "ab")
        self.proc = subprocess.Popen(
            list(wrap) + [self.ctx.warden, "up", "-c", self.config, *extra_args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env(),
            start_new_session=True,
            preexec_fn=self.preexec,
        )
        out.close()

        def ready():
            if self.proc.poll() is not None:
                raise Violation(f"warden up exited {self.proc.returncode}: {self.output()[-2000:]}")
            try:
                st, obj = self.api("GET", "/v1/status", timeout=5)
                return st == 200 and obj
            except OSError:
                return None

        obj = wait_for("warden to answer", timeout, ready)
        self.pid = obj["warden"]["pid"]
        return obj

    def output(self):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        if self.proc is not None:
            return self.proc.poll() is None
        return self.pid is not None and proc_stat(self.pid) is not None

    def api(self, method, path, body=None, timeout=10, headers=None):
        conn = UnixHTTPConnection(self.sock, timeout)
        try:
            return http_call(conn, method, path, body, headers)
        finally:
            conn.close()

    def status(self, timeout=10):
        st, obj = self.api("GET", "/v1/status", timeout=timeout)
        check(st == 200, f"GET /v1/status answered {st}: {obj}")
        return obj

    def services(self, timeout=10):
        return {s["name"]: s for s in self.status(timeout)["services"]}

    def cli(self, *args, timeout=60, check_rc=None):
        t0 = time.monotonic()
        r = subprocess.run(
            [self.ctx.warden, *args, "-c", self.config],
            capture_output=True,
            env=self.env(),
            timeout=timeout,
        )
        r.elapsed = time.monotonic() - t0
        if check_rc is not None and r.returncode != check_rc:
            raise Violation(
                f"warden {' '.join(args)} exited {r.returncode} (wanted {check_rc}): "
                f"{r.stdout.decode(errors='replace')[-1000:]}{r.stderr.decode(errors='replace')[-1000:]}"
            )
        return r

    def metrics(self):
        return metrics(self.pid)

    def leftovers(self):
        """Processes carrying our tag other than warden itself."""
        return tagged_processes(self.tag, exclude={self.pid} if self.pid else set())

    def describe(self, pids):
        return ", ".join(f"{p} ({cmdline(p)[:80]})" for p in pids[:10])

    def down(self, timeout=120):
        r = self.cli("down", timeout=timeout)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise Violation(f"warden did not exit {timeout}s after down")
        return r

    def kill9(self):
        os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=30)

    def cleanup(self):
        if self.pid and proc_stat(self.pid) and self.alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for _ in range(3):
            left = tagged_processes(self.tag)
            if not left:
                break
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)
        if not self.ctx.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---- watchers ------------------------------------------------------------------------------


class Watcher(threading.Thread):
    """A background sampler that stops on `stop()` and re-raises nothing: it records."""

    def __init__(self, interval):
        super().__init__(daemon=True)
        self.interval = interval
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(self.interval)

    def stop(self):
        self.halt.set()
        self.join(timeout=10)


class ZombieWatcher(Watcher):
    """Samples warden's children; the longest any one was seen a zombie (a lower bound of how
    long it stayed one)."""

    def __init__(self, pid, interval=0.02):
        super().__init__(interval)
        self.pid = pid
        self.first = {}
        self.longest = 0.0
        self.longest_what = None
        self.seen = 0

    def sample(self):
        t = time.monotonic()
        current = set()
        for c in children(self.pid):
            st = proc_stat(c)
            if st and st[0] == "Z":
                key = (c, st[2])
                current.add(key)
                if key not in self.first:
                    self.first[key] = t
                    self.seen += 1
                age = t - self.first[key]
                if age > self.longest:
                    self.longest = age
                    self.longest_what = f"pid {c} ({cmdline(c)})"
        for k in list(self.first):
            if k not in current:
                del self.first[k]


class MetricWatcher(Watcher):
    """Samples warden's fds, threads, RSS and CPU."""

    def __init__(self, pid, interval=0.25):
        super().__init__(interval)
        self.pid = pid
        self.samples = []

    def sample(self):
        m = metrics(self.pid)
        if m["fds"] is not None:
            m["t"] = time.monotonic()
            self.samples.append(m)


class StatusProbe(Watcher):
    """A normal client: GET /v1/status over the socket every `interval`, timing each answer;
    failures are kept."""

    def __init__(self, warden, interval=0.1, timeout=10):
        super().__init__(interval)
        self.warden = warden
        self.timeout = timeout
        self.latencies = []
        self.failures = []

    def sample(self):
        t0 = time.monotonic()
        try:
            st, _ = self.warden.api("GET", "/v1/status", timeout=self.timeout)
            if st != 200:
                self.failures.append(f"status {st}")
        except OSError as e:
            self.failures.append(repr(e))
            return
        self.latencies.append(time.monotonic() - t0)


# ---- the run's context and report ---------------------------------------------------------


class Row:
    """One line of the report: a fault type and what happened to its injections."""

    def __init__(self, fault):
        self.fault = fault
        self.injections = 0
        self.recovered = 0
        self.times_ms = []
        self.lost = "none"

    def cells(self):
        rate = f"{100.0 * self.recovered / self.injections:.1f}%" if self.injections else "-"
        m = mean(self.times_ms)
        p = percentile(self.times_ms, 99)
        return [
            self.fault,
            str(self.injections),
            str(self.recovered),
            rate,
            f"{m:.1f}" if m is not None else "-",
            f"{p:.1f}" if p is not None else "-",
            self.lost,
        ]


class Context:
    def __init__(self, warden, test_child, long_mode, keep, rng):
        self.warden = warden
        self.test_child = test_child
        self.long = long_mode
        self.long_seconds = LONG_SECONDS
        self.keep = keep
        self.rng = rng
        self.release = False
        self.cleanups = []
        self.rows = []
        self.measured = []

    def row(self, fault):
        r = Row(fault)
        self.rows.append(r)
        return r

    def say(self, msg):
        print(f"    {msg}", flush=True)
        self.measured.append(msg)

    def run_cleanups(self):
        while self.cleanups:
            fn = self.cleanups.pop()
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - cleanup goes on
                print(f"    cleanup: {e!r}")


def table(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(header, widths)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        lines.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
    return "\n".join(lines)
