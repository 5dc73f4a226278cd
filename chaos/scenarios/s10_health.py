"""10. Health under fire: probes that time out, hang or flap while services restart.

The peers are the scenario's own (threads of this process), so the test knows the truth:
- an HTTP server that flaps (200 or 503, the answer switching every 3 to 6 s), one that
  accepts and never answers (hang), one that answers only after 1.5 s (slow);
- a TCP listener that flaps (closed and bound again), and one whose accept queue is full, so
  that a connect hangs in SYN_SENT;
- exec probes: `test -e FLAG` (the flag file flaps with the HTTP server), and a test-child
  that spawns a grandchild and sleeps forever (hangs);
- ready checks that hang (http and exec), which a `start_timeout` restarts over and over.
An injector SIGKILLs the probed services in turn every 0.6 to 1.4 s; `db` (a ready check on
its own output) and `fh` (the flapping HTTP health check) have dependents with
`restart = true` (`api` needs db `ready`, `web` needs fh `healthy`).

Checked:
- no probe piles up: the probe connections in flight to each port (the kernel's own table,
  /proc/net/tcp: ESTABLISHED or SYN_SENT, sampled every 20 ms; where two are seen, only those
  whose socket warden or a child of it holds count: the loopback is shared with the
  machine's other programs, which may connect to a port of ours) and the exec probes'
  processes alive under warden: never two at once for longer than PILE_MS (an overlap as an old run's
  probe is dropped and the new run's starts is a matter of microseconds; a probe left
  behind lives a whole timeout or forever);
- the dependents' order: every start of `api` comes after the line its ready check waits for
  in the current run of `db`, and every start of `web` after a 200 that fh's server gave in
  the current run of fh (each start of each process is appended to a file with its time);
- `health` in `warden status --json` (sampled in a loop) tells the truth: where the truth
  held for a whole window (interval + timeout + SLACK to turn healthy, retries x interval +
  timeout + SLACK to turn unhealthy, the current run up for as long) the sample agrees;
- when the run ends: no probe process left, nothing tagged left after `down`.

`GET /health` (on the control socket) is asked right after each status sample, so it is
judged over its own window: the same rule, the truth held up to its answer, and the run it
saw must be the status sample's run (the next sample shows the same pid; a SIGKILL in
between starts a new run, whose health is rightly `unknown` until its first probe: such
samples are counted and not judged). Each answer must also keep issue 10's rules: 200 with
"healthy" or 503 with "unhealthy", and "unhealthy" whenever a counted service in it is
failed, backoff, exited or unhealthy. (A warden that answers 404 is said once and skipped.)
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time

from harness import Violation, check, children, cmdline, proc_stat, toml_list, toml_str, wait_for, Warden

NUMBER = 10
TITLE = "health under fire: probes that time out, hang or flap while services restart"
GUARANTEE = "no probe piles up, dependents keep their order, the health shown is the truth at every sample"

DURATION_CI = 40
PILE_MS = 150  # two probes of one check in flight at once for longer than this: piled up
SLACK = 2.0  # seconds, for a loaded machine's scheduling
INTERVAL = 0.25
TIMEOUT = 0.5
RETRIES = 2


def now():
    return time.monotonic()


def wall_ms():
    return time.time() * 1000.0


class Truth:
    """The flapping truth: up or down, with the time of the last change."""

    def __init__(self, rng, flag):
        self.rng = rng
        self.flag = flag
        self.up = True
        self.since = now()
        self.changes = [(self.since, True)]
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.listeners = []
        self._write()

    def _write(self):
        if self.up:
            open(self.flag, "w").close()
        elif os.path.exists(self.flag):
            os.unlink(self.flag)

    def run(self):
        while not self.halt.wait(self.rng.uniform(3.0, 6.0)):
            with self.lock:
                self.up = not self.up
                self._write()
                for fn in self.listeners:
                    fn(self.up)
                self.since = now()
                self.changes.append((self.since, self.up))

    def held(self, value, t_from, t_to):
        """Did the truth equal `value` over the whole of [t_from, t_to]?"""
        with self.lock:
            state = None
            for t, v in self.changes:
                if t <= t_from:
                    state = v
                elif t <= t_to:
                    return False
            return state == value


class Server(threading.Thread):
    """A TCP server on 127.0.0.1: `flap` answers 200/503 by the truth, `hang` reads and
    never answers, `slow` answers 200 after SLOW_S. Records the 200s it sent (wall ms)."""

    SLOW_S = 1.5

    def __init__(self, mode, truth=None):
        super().__init__(daemon=True)
        self.mode = mode
        self.truth = truth
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.passes = []
        self.halt = False

    def run(self):
        while not self.halt:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            c.settimeout(30)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    return
                data += chunk
            if self.mode == "hang":
                while c.recv(4096):
                    pass
                return
            if self.mode == "slow":
                time.sleep(self.SLOW_S)
                ok = True
            else:
                ok = self.truth.up
            if ok:
                self.passes.append(wall_ms())
            code = b"200 OK" if ok else b"503 Service Unavailable"
            c.sendall(b"HTTP/1.1 " + code + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.halt = True
        self.sock.close()


class FlapListener:
    """A TCP listener bound while the truth is up, closed while it is down."""

    def __init__(self, truth):
        self.sock = None
        self.port = None
        self.lock = threading.Lock()
        self.open()
        truth.listeners.append(lambda up: self.open() if up else self.close())

    def open(self):
        with self.lock:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self.port or 0))
            s.listen(64)
            self.port = s.getsockname()[1]
            self.sock = s
            threading.Thread(target=self.accept, args=(s,), daemon=True).start()

    def accept(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            c.close()

    def close(self):
        with self.lock:
            if self.sock:
                self.sock.close()
                self.sock = None


class FullQueue:
    """A listener that never accepts, its accept queue full: a connect to it hangs."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(6):
            c = socket.socket()
            c.settimeout(0.5)
            try:
                c.connect(("127.0.0.1", self.port))
            except OSError:
                c.close()
                break
            self.fillers.append(c)
        else:
            raise Violation("could not fill the accept queue of the hanging TCP peer")
        self.filler_ports = {c.getsockname()[1] for c in self.fillers}

    def stop(self):
        for c in self.fillers:
            c.close()
        self.sock.close()


def tcp_in_flight(ports, exclude, inodes=None):
    """For each port: the connections to it (remote port) ESTABLISHED or SYN_SENT (their
    socket inodes by port into `inodes`, when given). Each connection once: the table is
    read in large reads (the kernel's text of it can repeat a line where a read ends while
    the table changes), and a connection is its local port."""
    counts = dict.fromkeys(ports, 0)
    seen = set()
    try:
        fd = os.open("/proc/net/tcp", os.O_RDONLY)
        try:
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 22)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(fd)
    except OSError:
        return counts
    for line in b"".join(chunks).decode("ascii", "replace").splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10:
            continue
        local, remote, st = parts[1], parts[2], parts[3]
        if st not in ("01", "02"):
            continue
        rport = int(remote.split(":")[1], 16)
        lport = int(local.split(":")[1], 16)
        if rport in counts and lport not in exclude and (lport, rport) not in seen:
            seen.add((lport, rport))
            counts[rport] += 1
            if inodes is not None:
                inodes.setdefault(rport, []).append(parts[9])
    return counts


def socket_holders(inodes):
    """Who holds these socket inodes open: ["pid (state, cmdline)"], from /proc/*/fd."""
    want = {f"socket:[{i}]" for i in inodes}
    out = set()
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{name}/fd/{fd}") in want:
                    st = proc_stat(int(name))
                    out.add(f"{name} ({st[0] if st else '?'}, {cmdline(int(name))[:60]})")
            except OSError:
                pass
    return sorted(out)


def tree_sockets(pid):
    """The socket inodes that pid and its descendants hold open."""
    out = set()
    for p in [pid] + descendants(pid, depth=3):
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{p}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    return out


def descendants(pid, depth=2):
    out = []
    level = [pid]
    for _ in range(depth):
        nxt = []
        for p in level:
            nxt.extend(children(p))
        out.extend(nxt)
        level = nxt
    return out


class PileWatcher(threading.Thread):
    """Every 20 ms: probes in flight per check; records overlaps that last over PILE_MS."""

    def __init__(self, warden_pid, ports, exclude, markers):
        super().__init__(daemon=True)
        self.warden_pid = warden_pid
        self.ports = ports  # port -> check name
        self.exclude = exclude
        self.markers = markers  # cmdline marker -> check name
        self.halt = threading.Event()
        self.max = {}
        self.over_since = {}
        self.piled = []
        self.holders = []  # (check, who held its piled-up connections), for the message
        self.foreign = 0  # samples that saw connections to our ports from outside warden's tree
        self.samples = 0

    def run(self):
        while not self.halt.is_set():
            t = now()
            counts = {}
            inodes = {}
            for port, n in tcp_in_flight(self.ports, self.exclude, inodes).items():
                counts[self.ports[port]] = n
            if any(n > 1 for n in counts.values()):
                # Only warden's own (and its children's: a copy in a child between fork and
                # exec) count: this machine's loopback is shared, and another program may
                # connect to a port of ours.
                owned = tree_sockets(self.warden_pid)
                for port, ins in inodes.items():
                    mine = sum(1 for i in ins if i in owned)
                    if mine < len(ins):
                        self.foreign += 1
                    counts[self.ports[port]] = mine
            for m, name in self.markers.items():
                counts[name] = 0
            for p in descendants(self.warden_pid):
                st = proc_stat(p)
                if not st or st[0] == "Z":
                    continue
                cl = cmdline(p)
                for m, name in self.markers.items():
                    if m in cl:
                        counts[name] += 1
            for name, n in counts.items():
                self.max[name] = max(self.max.get(name, 0), n)
                if n > 1:
                    first = self.over_since.setdefault(name, t)
                    if (t - first) * 1000 > PILE_MS:
                        self.piled.append((name, n, round((t - first) * 1000)))
                        port = next((p for p, c in self.ports.items() if c == name), None)
                        if port in inodes and len(self.holders) < 3:
                            ins = inodes[port]
                            self.holders.append((name, f"{len(set(ins))} sockets", socket_holders(ins)))
                else:
                    self.over_since.pop(name, None)
            self.samples += 1
            self.halt.wait(0.02)


def starts(path):
    """[(pid, wall ms)] appended by test-child --touch."""
    try:
        with open(path) as f:
            return [(int(a), int(b)) for a, b in (ln.split() for ln in f if ln.strip())]
    except OSError:
        return []


def health_endpoint(w):
    """GET /health on the control socket: (HTTP status, the body's verdict, {service: (state,
    health, counted)}), or None while warden does not serve it (404)."""
    try:
        st, body = w.api("GET", "/health", timeout=5)
    except OSError:
        return None
    if st == 404 or not isinstance(body, dict) or not isinstance(body.get("services"), dict):
        return None
    svcs = {n: (v.get("state"), v.get("health"), v.get("counted"))
            for n, v in body["services"].items() if isinstance(v, dict)}
    return st, body.get("status"), svcs


def verdict_errors(hook):
    """What breaks issue 10's rules of /health in one answer: 200 with "healthy" or 503 with
    "unhealthy"; unhealthy when a counted service is failed, backoff, exited or unhealthy."""
    code, verdict, svcs = hook
    errs = []
    if (code, verdict) not in ((200, "healthy"), (503, "unhealthy")):
        errs.append(f"/health answered {code} with status {verdict!r}")
    bad = [n for n, (state, health, counted) in svcs.items()
           if counted and (state in ("failed", "backoff", "exited") or health == "unhealthy")]
    if bad and verdict != "unhealthy":
        errs.append(f"/health said {verdict!r} while counted services were bad: {bad[:4]}")
    return errs


def run(ctx):
    rng = ctx.rng
    duration = ctx.long_seconds if ctx.long else DURATION_CI
    w = Warden(ctx, "health")
    for d in ("probes", "deps"):
        os.makedirs(w.path(d))
    truth = Truth(rng, w.path("probes", "flag"))
    http = {name: Server("flap", truth) for name in ("fh", "fr")}
    hang = Server("hang")
    hang_ready = Server("hang")
    slow = Server("slow")
    tflap = FlapListener(truth)
    full = FullQueue()
    servers = list(http.values()) + [hang, hang_ready, slow]
    for s in servers:
        s.start()
    tc = ctx.test_child

    def probe_opts(interval=INTERVAL, timeout=TIMEOUT, retries=RETRIES):
        return f'interval = "{int(interval * 1000)}ms", timeout = "{int(timeout * 1000)}ms", retries = {retries}'

    def svc(name, extra, cmd=None, backoff="200ms"):
        cmd = cmd or [tc, "--touch", w.path("deps", f"{name}.starts"), "--sleep", "forever"]
        return (f"[services.{name}]\ncommand = {toml_list(cmd)}\nmin_uptime = \"100ms\"\n"
                f"stop_timeout = \"3s\"\nbackoff = {{ initial = \"{backoff}\", max = \"{backoff}\" }}\n{extra}\n")

    exec_hang = [tc, "--touch", w.path("probes", "eh.runs"), "--spawn-grandchild",
                 w.path("probes", "eh.gc"), "--sleep", "forever"]
    exec_ready_hang = [tc, "--touch", w.path("probes", "re.runs"), "--sleep", "forever"]
    parts = ["[warden]\nshutdown_timeout = \"30s\"\n"]
    # Judged against the truth (on_unhealthy = "ignore": the health is shown, not acted on).
    parts.append(svc("fh", f'health = {{ http = "http://127.0.0.1:{http["fh"].port}/h", {probe_opts()} }}\n'
                           'on_unhealthy = "ignore"', backoff="1s"))
    parts.append(svc("ft", f'health = {{ tcp = "127.0.0.1:{tflap.port}", {probe_opts()} }}\non_unhealthy = "ignore"'))
    parts.append(svc("fe", f'health = {{ exec = ["test", "-e", {toml_str(truth.flag)}], {probe_opts()} }}\n'
                           'on_unhealthy = "ignore"'))
    # Restarted when unhealthy, while its probe flaps.
    parts.append(svc("fr", f'health = {{ http = "http://127.0.0.1:{http["fr"].port}/h", {probe_opts()} }}'))
    # Probes that hang or time out, probed faster than they time out.
    parts.append(svc("hh", f'health = {{ http = "http://127.0.0.1:{hang.port}/", {probe_opts(0.1, 1.0)} }}\n'
                           'on_unhealthy = "ignore"'))
    parts.append(svc("hs", f'health = {{ http = "http://127.0.0.1:{slow.port}/", {probe_opts(0.1, 0.4)} }}\n'
                           'on_unhealthy = "ignore"'))
    parts.append(svc("th", f'health = {{ tcp = "127.0.0.1:{full.port}", {probe_opts(0.1, 0.5)} }}\n'
                           'on_unhealthy = "ignore"'))
    parts.append(svc("eh", f'health = {{ exec = {toml_list(exec_hang)}, {probe_opts(0.1, 0.4)} }}\n'
                           'on_unhealthy = "ignore"'))
    # Ready checks that hang: never up, restarted by start_timeout.
    parts.append(svc("rh", f'ready = {{ http = "http://127.0.0.1:{hang_ready.port}/", {probe_opts(0.1, 0.5)} }}\n'
                           'start_timeout = "2s"'))
    parts.append(svc("re", f'ready = {{ exec = {toml_list(exec_ready_hang)}, {probe_opts(0.1, 0.4)} }}\n'
                           'start_timeout = "2s"'))
    # A dependency with a ready check on its own output, and the dependents.
    db_cmd = [tc, "--touch", w.path("deps", "db.starts"), "--sleep", "700ms",
              "--touch", w.path("deps", "db.readyat"), "--lines", "1", "--sleep", "forever"]
    parts.append(svc("db", 'ready = { log_line = "^line 0+1 " }', cmd=db_cmd, backoff="1s"))
    parts.append(svc("api", 'depends_on = { db = { condition = "ready", restart = true } }'))
    parts.append(svc("web", 'depends_on = { fh = { condition = "healthy", restart = true } }'))
    w.write_config("\n".join(parts))
    judged = {"fh": (http["fh"], INTERVAL, TIMEOUT), "ft": (None, INTERVAL, TIMEOUT), "fe": (None, INTERVAL, TIMEOUT)}
    always_down = {"hh": (0.1, 1.0), "hs": (0.1, 0.4), "th": (0.1, 0.5), "eh": (0.1, 0.4)}

    w.up()
    wait_for("api and web to start", 60, lambda: starts(w.path("deps", "api.starts")) and starts(w.path("deps", "web.starts")))
    ports = {http["fh"].port: "fh (http flap)", http["fr"].port: "fr (http flap, restart)",
             hang.port: "hh (http hang)", hang_ready.port: "rh (ready http hang)", slow.port: "hs (http slow)",
             tflap.port: "ft (tcp flap)", full.port: "th (tcp hang)"}
    # The probe's own argv names its runs file; its grandchild's names only its pid file.
    markers = {w.path("probes", "eh.runs"): "eh (exec hang)",
               "--ready-file " + w.path("probes", "eh.gc"): "eh's grandchild",
               w.path("probes", "re.runs"): "re (ready exec hang)"}
    piles = PileWatcher(w.pid, ports, full.filler_ports, markers)
    piles.start()
    tflip = threading.Thread(target=truth.run, daemon=True)
    tflip.start()
    halt = threading.Event()
    kills = {}
    kill_times = {}
    victims = ["db", "fh", "ft", "fe", "fr", "hh", "hs", "th", "eh"]

    def injector():
        i = 0
        while not halt.wait(rng.uniform(0.6, 1.4)):
            name = victims[i % len(victims)]
            i += 1
            try:
                s = w.services().get(name)
            except (OSError, Violation):
                continue
            if s and s.get("pid"):
                try:
                    kill_times.setdefault(name, []).append(wall_ms())
                    os.kill(s["pid"], signal.SIGKILL)
                    kills[name] = kills.get(name, 0) + 1
                except ProcessLookupError:
                    pass

    inj = threading.Thread(target=injector, daemon=True)
    inj.start()
    samples = 0
    claims = {"healthy": 0, "unhealthy": 0}
    wrong = []
    hook_answered = 0
    pending = []  # (service, the truth, pid, /health's health): judged at the next sample
    across = {"runs": 0, "unknown": 0}  # /health samples that fell across a restart

    def resolve(pending, svcs):
        for name, want, pid, got in pending:
            if svcs[name]["pid"] != pid:
                across["runs"] += 1
                across["unknown"] += got != want
                continue
            claims_h[want] += 1
            if got != want:
                wrong.append(f"/health: {name}: health {got!r}, the truth {want} (pid {pid} throughout)")
        pending.clear()

    claims_h = {"healthy": 0, "unhealthy": 0}
    t_end = now() + duration
    while now() < t_end:
        t_send = now()
        r = subprocess.run([ctx.warden, "status", "--json", "-c", w.config], capture_output=True,
                           env=w.env(), timeout=30)
        t_recv = now()
        check(r.returncode == 0, f"status --json exited {r.returncode}: {r.stderr.decode(errors='replace')[-500:]}")
        svcs = {s["name"]: s for s in json.loads(r.stdout)["services"]}
        resolve(pending, svcs)
        t_hsend = now()
        hook = health_endpoint(w)
        t_hrecv = now()
        if hook is not None:
            hook_answered += 1
            wrong.extend(verdict_errors(hook))
        samples += 1
        lat = t_recv - t_send
        for name, (_, interval, timeout) in judged.items():
            s = svcs[name]
            up_for = (s.get("uptime_ms") or 0) / 1000.0 - lat
            if s["state"] != "running":
                continue
            w_up = interval + timeout + SLACK
            w_down = RETRIES * interval + timeout + SLACK
            want = None
            if up_for >= w_up and truth.held(True, t_send - w_up, t_recv):
                want = "healthy"
            elif up_for >= w_down and truth.held(False, t_send - w_down, t_recv):
                want = "unhealthy"
            if want:
                claims[want] += 1
                if s["health"] != want:
                    wrong.append(f"{name}: health {s['health']!r}, the truth {want} (up {up_for:.1f}s)")
            # /health is asked after the status, so it is judged over its own window: the
            # run it saw is this sample's run if the next sample shows the same pid (a kill
            # in between starts a new run, whose health is `unknown` until its first probe).
            want_h = None
            if up_for >= w_up and truth.held(True, t_hsend - w_up, t_hrecv):
                want_h = "healthy"
            elif up_for >= w_down and truth.held(False, t_hsend - w_down, t_hrecv):
                want_h = "unhealthy"
            if want_h and hook is not None:
                pending.append((name, want_h, s["pid"], hook[2].get(name, (None, None, None))[1]))
        for name, (interval, timeout) in always_down.items():
            s = svcs[name]
            up_for = (s.get("uptime_ms") or 0) / 1000.0 - lat
            if s["state"] == "running" and up_for >= RETRIES * max(interval, timeout) + timeout + SLACK:
                claims["unhealthy"] += 1
                if s["health"] != "unhealthy":
                    wrong.append(f"{name}: health {s['health']!r} after {up_for:.1f}s of a probe that never passes")
        for name in ("rh", "re"):
            if svcs[name]["state"] == "running":
                wrong.append(f"{name} is running although its ready check never passes")
    resolve(pending, w.services())
    halt.set()
    truth.halt.set()
    inj.join(timeout=30)
    tflip.join(timeout=30)
    piles.halt.set()
    piles.join(timeout=10)
    svcs = w.services()

    # The dependents' order, from the start files (wall ms; every touch precedes what follows).
    def order(dep, dependent, ready_times, what):
        dep_starts = starts(w.path("deps", f"{dep}.starts"))
        bad = []
        for pid, s in starts(w.path("deps", f"{dependent}.starts")):
            runs = [(p, t) for p, t in dep_starts if t <= s]
            if not runs:
                bad.append(f"{dependent} pid {pid} started before any {dep}")
                continue
            p, t0 = runs[-1]
            if not any(r <= s for r in ready_times(p, t0)):
                bad.append(f"{dependent} pid {pid} started at {s} before {dep} pid {p} (started {t0}) was {what}")
        return bad

    readyat = {p: t for p, t in starts(w.path("deps", "db.readyat"))}  # touched by that run
    bad = order("db", "api", lambda p, t0: [readyat[p]] if p in readyat else [], "ready")
    # fh's first probe runs at once after its spawn, maybe before its own touch: a pass
    # counts from the kill that ended fh's previous run (its probes end with it; the new
    # run is spawned the 1 s backoff later).
    def fh_passes(p, t0):
        k = max((x for x in kill_times.get("fh", []) if x < t0), default=float("-inf"))
        return [x for x in http["fh"].passes if x > k + 300]

    bad += order("fh", "web", lambda p, t0: fh_passes(p, t0), "healthy")
    n_api = len(starts(w.path("deps", "api.starts")))
    n_web = len(starts(w.path("deps", "web.starts")))

    eh_runs = len(starts(w.path("probes", "eh.runs")))
    re_runs = len(starts(w.path("probes", "re.runs")))
    ctx.say(f"{duration}s: {sum(kills.values())} SIGKILLs ({', '.join(f'{k} {v}' for k, v in sorted(kills.items()))}); "
            f"truth flipped {len(truth.changes) - 1} times; fr restarted {svcs['fr']['restarts']} times, "
            f"rh {svcs['rh']['restarts']}, re {svcs['re']['restarts']}")
    ctx.say(f"probes in flight at most (per check): {', '.join(f'{k} {v}' for k, v in sorted(piles.max.items()))} "
            f"({piles.samples} samples; {piles.foreign} saw connections to these ports from outside warden, "
            f"not counted); hanging exec probes run {eh_runs} + {re_runs} times")
    ctx.say(f"{samples} samples of status --json: {claims['healthy']} judged healthy, {claims['unhealthy']} judged "
            f"unhealthy, {len(wrong)} wrong; api started {n_api} times, web {n_web}, "
            f"each after its dependency's condition")
    if hook_answered:
        ctx.say(f"/health answered {hook_answered} of {samples} samples: {claims_h['healthy']} judged healthy, "
                f"{claims_h['unhealthy']} unhealthy; {across['runs']} fell across a restart of the service "
                f"(not judged; {across['unknown']} of them would have differed from the truth)")
    else:
        ctx.say("/health: not served by this warden (404): the hook checked nothing")
    check(not piles.piled, f"probes piled up (check, in flight, ms): {sorted(set(piles.piled))[:8]}; "
                           f"their connections held by: {piles.holders}")
    check(not bad, f"the dependents' order broke: {bad[:5]}")
    check(not wrong, f"health was wrong at {len(wrong)} samples: {wrong[:6]}")
    check(claims["healthy"] > 0 and claims["unhealthy"] > 0, f"too few judged samples to say anything: {claims}")
    check(not hook_answered or (claims_h["healthy"] > 0 and claims_h["unhealthy"] > 0),
          f"too few judged /health samples to say anything: {claims_h}")
    check(n_api >= 2 and n_web >= 2, f"the dependents did not restart with their dependency (api {n_api}, web {n_web})")
    w.down()
    left = w.leftovers()
    check(not left, f"left after down: {w.describe(left)}")
    for s in servers:
        s.stop()
    tflap.close()
    full.stop()
    row = ctx.row("health probes hanging, timing out, flapping")
    row.injections = sum(kills.values()) + len(truth.changes) - 1
    row.recovered = row.injections
    row.lost = f"0 probes piled up; {len(wrong)} wrong health samples of {samples}; order held"
