"""12. warden's own exhaustion:
- **fd limit**: `prlimit --nofile` on warden's pid, a few descriptors over what it holds,
  for HOLD_S seconds, while crashers restart and a client connects every 100 ms;
- **fork failing**: an unprivileged warden (as nobody, via setpriv) under an RLIMIT_NPROC
  that leaves room for only 2 of its 5 crashers at a time, for HOLD_S seconds; then 3 are
  stopped and the other 2 must run again;
- **oom_score_adj**: as root warden lowers its own (to -900) and its services keep the
  value warden had; checked where the kernel lets root lower it (said plainly otherwise).

Checked for both limits: warden never exits; the long-running service keeps its pid all
along; warden says what failed (an event line); it does not spin (its CPU over the window
stays under CPU_BOUND of one CPU); once the limit is back, the crashers start again and
status answers, within RECOVER_S.
- **memory-hungry services** (no cgroup memory controller here, so no kernel limit: the
  services allocate as fast as they can): `leak` grows 32 MiB every 50 ms under
  `memory_max` (warden restarts it each time, within two `sample_interval`s), `big` grows to
  BIG_MIB and holds it, without a limit; for HOLD_S seconds. warden stays responsive (every
  status answers; its RSS stays under RSS_BOUND_MIB), keeps `keep` and `big` running, restarts
  `leak` for its memory each time it crosses the limit (from the crossing, which `leak` notes,
  to its next start: within MEM_RECOVER_MS), does not spin, and is the OOM killer's last
  choice: its `oom_score` below `big`'s, its `oom_score_adj` no higher than `big`'s.
"""

import os
import subprocess
import sys
import time

from harness import (MetricWatcher, Skip, StatusProbe, check, now_ms, percentile, proc_stat, toml_list,
                     wait_for, Warden)

NUMBER = 12
TITLE = "warden's own exhaustion: fd limit, fork failing, memory-hungry services, oom_score_adj"
GUARANTEE = "at its fd limit or with fork failing warden reports it, keeps what runs running, recovers and never exits or spins; as root it is the OOM killer's last choice"

HOLD_S = 6
CPU_BOUND = 0.30
RECOVER_S = 15
CRASHERS = 5
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
TICK = os.sysconf("SC_CLK_TCK")
WARDEN_THREADS = 4  # main, two tokio workers, the reaper (a debug build, measured)
NPROC_SLOTS = 2
MEM_SAMPLE_MS = 250
MEM_MAX_MIB = 200
BIG_MIB = 512
LEAK_CAP_MIB = 768
MEM_RECOVER_MS = 2 * MEM_SAMPLE_MS + 3000  # two samples, the stop and the backoff, a loaded machine
RSS_BOUND_MIB = 64
# A service that allocates CHUNK MiB every 50 ms up to CAP MiB and holds it; it appends
# `start PID MS` when it starts, `over PID MS` when its allocation passes LIMIT MiB and
# `full PID MS` once it holds CAP MiB.
HOG = r"""
import os, sys, time
path, limit, cap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def note(what):
    with open(path, "a") as f:
        f.write(f"{what} {os.getpid()} {time.time() * 1000:.0f}\n")
note("start")
chunks, over, full = [], False, False
while True:
    if len(chunks) * 32 < cap:
        chunks.append(b"x" * (32 << 20))
    elif not full:
        note("full")
        full = True
    if not over and len(chunks) * 32 > limit:
        note("over")
        over = True
    time.sleep(0.05)
"""


def nobody_tasks():
    n = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == 65534:
                    n += len(os.listdir(f"/proc/{name}/task"))
            except OSError:
                pass
    return n


def config(ctx, w):
    parts = ["[warden]\nshutdown_timeout = \"20s\"\n",
             f"[services.keep]\ncommand = {toml_list([ctx.test_child, '--sleep', 'forever'])}\n"]
    for i in range(CRASHERS):
        cmd = [ctx.test_child, "--touch", w.path(f"c{i}.starts"), "--exit-after", "200ms", "1", "--sleep", "forever"]
        parts.append(f"[services.c{i}]\ncommand = {toml_list(cmd)}\nbackoff = {{ initial = \"50ms\", max = \"500ms\" }}\n")
    return "\n".join(parts)


def starts_after(w, t):
    n = 0
    for i in range(CRASHERS):
        try:
            with open(w.path(f"c{i}.starts")) as f:
                n += sum(1 for line in f if line.strip() and float(line.split()[1]) > t)
        except OSError:
            pass
    return n


def exhaust(ctx, w, what, limit_args, restore_args, row):
    """Hold warden at a limit; check it survives, reports, does not spin, and recovers."""
    w.up()
    wait_for("keep running", 30, lambda: w.services()["keep"]["state"] == "running")
    keep_pid = w.services()["keep"]["pid"]
    out_before = len(w.output())
    probe = StatusProbe(w, interval=0.1, timeout=2)
    cpu0, t0 = proc_stat(w.pid)[3], time.monotonic()
    subprocess.run(["prlimit", "--pid", str(w.pid)] + limit_args(w), check=True)
    hold_end = time.monotonic() + HOLD_S
    probe.start()
    wait_for(f"{HOLD_S}s at the limit", HOLD_S + 5, lambda: time.monotonic() >= hold_end, pause=0.2)
    check(w.alive(), f"warden exited at its {what} limit: {w.output()[-1500:]}")
    cpu = (proc_stat(w.pid)[3] - cpu0) / TICK / (time.monotonic() - t0)
    subprocess.run(["prlimit", "--pid", str(w.pid)] + restore_args, check=True)
    t_restore = now_ms()
    probe.stop()
    said = w.output()[out_before:]
    failures = [l for l in said.splitlines() if "rror" in l or "failed" in l or "cannot" in l]
    check(w.services()["keep"]["pid"] == keep_pid, f"the long-running service changed pid at the {what} limit")

    def recovered():
        try:
            st, _ = w.api("GET", "/v1/status", timeout=2)
        except OSError:
            return None
        return st == 200 and starts_after(w, t_restore) >= CRASHERS

    wait_for(f"recovery after the {what} limit", RECOVER_S, recovered, pause=0.1)
    t_rec = now_ms() - t_restore
    check(w.alive(), "warden exited after the limit was lifted")
    ctx.say(f"{what}: {HOLD_S}s at the limit: warden alive, keep's pid unchanged, CPU {100 * cpu:.0f}% of one CPU, "
            f"{len(failures)} event lines of failure (first: {failures[0][24:140] if failures else '-'!r}), "
            f"{len(probe.failures)} of {len(probe.failures) + len(probe.latencies)} status calls failed meanwhile; "
            f"recovered {t_rec:.0f} ms after the limit was lifted")
    check(failures, f"warden said nothing about the {what} failures")
    check(cpu < CPU_BOUND, f"warden used {100 * cpu:.0f}% of a CPU at its {what} limit (spinning?)")
    row.injections += 1
    row.recovered += 1
    row.times_ms.append(t_rec)


def hog_notes(path):
    """[(what, pid, ms)] from a hog's notes file."""
    try:
        with open(path) as f:
            return [(a, int(b), float(c)) for a, b, c in (ln.split() for ln in f if ln.strip())]
    except OSError:
        return []


def proc_int(pid, name):
    try:
        with open(f"/proc/{pid}/{name}") as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def memory_hungry(ctx):
    """Two services allocating fast next to warden (see the module's docs)."""
    w = Warden(ctx, "hog")
    leak = [sys.executable, "-c", HOG, w.path("leak.notes"), str(MEM_MAX_MIB), str(LEAK_CAP_MIB)]
    big = [sys.executable, "-c", HOG, w.path("big.notes"), str(BIG_MIB), str(BIG_MIB)]
    w.write_config(
        f"[warden]\nshutdown_timeout = \"20s\"\nsample_interval = \"{MEM_SAMPLE_MS}ms\"\n\n"
        f"[services.keep]\ncommand = {toml_list([ctx.test_child, '--sleep', 'forever'])}\n\n"
        f"[services.big]\ncommand = {toml_list(big)}\n\n"
        f"[services.leak]\ncommand = {toml_list(leak)}\nmemory_max = \"{MEM_MAX_MIB}MiB\"\nmin_uptime = \"100ms\"\n"
        f"stop_timeout = \"2s\"\nbackoff = {{ initial = \"100ms\", max = \"100ms\" }}\n"
    )
    w.up()
    wait_for("keep and big running, big at its size", 60,
             lambda: all(w.services()[n]["state"] == "running" for n in ("keep", "big"))
             and any(n[0] == "full" for n in hog_notes(w.path("big.notes"))))
    svcs = w.services()
    keep_pid, big_pid = svcs["keep"]["pid"], svcs["big"]["pid"]
    probe = StatusProbe(w, interval=0.1, timeout=2)
    mw = MetricWatcher(w.pid, interval=0.2)
    cpu0, t0, t0ms = proc_stat(w.pid)[3], time.monotonic(), now_ms()
    probe.start()
    mw.start()
    wait_for(f"{HOLD_S}s of memory-hungry services", HOLD_S + 5, lambda: time.monotonic() - t0 >= HOLD_S, pause=0.2)
    cpu = (proc_stat(w.pid)[3] - cpu0) / TICK / (time.monotonic() - t0)
    scores = {n: (proc_int(p, "oom_score"), proc_int(p, "oom_score_adj")) for n, p in (("warden", w.pid), ("big", big_pid))}
    probe.stop()
    mw.stop()
    check(w.alive(), f"warden exited next to memory-hungry services: {w.output()[-1500:]}")
    svcs = w.services()
    check(svcs["keep"]["pid"] == keep_pid, "keep changed pid next to the memory-hungry services")
    check(svcs["big"]["pid"] == big_pid, "big (no memory_max) was restarted")
    notes = hog_notes(w.path("leak.notes"))
    starts = [ms for what, _, ms in notes if what == "start"]
    overs = [(pid, ms) for what, pid, ms in notes if what == "over" and ms >= t0ms]
    row = ctx.row("memory-hungry service (memory_max, no kernel limit)")
    late = []
    for pid, ms in overs:
        nxt = [s for s in starts if s > ms]
        if not nxt and now_ms() - ms < MEM_RECOVER_MS:
            continue  # crossed as the window ended: its outcome is not in yet
        row.injections += 1
        if nxt and nxt[0] - ms <= MEM_RECOVER_MS:
            row.recovered += 1
            row.times_ms.append(nxt[0] - ms)
        else:
            late.append(f"pid {pid}: {'after ' + str(round(nxt[0] - ms)) + ' ms' if nxt else 'never restarted'}")
    said = [l for l in w.output().splitlines() if "memory limit:" in l]
    lat = probe.latencies
    peak = max(m["rss_kib"] for m in mw.samples) / 1024
    ctx.say(f"memory: {HOLD_S}s next to big ({BIG_MIB} MiB held) and leak (+640 MiB/s, memory_max {MEM_MAX_MIB}MiB): "
            f"leak crossed its limit {len(overs)} times, restarted {row.recovered} times within {MEM_RECOVER_MS} ms "
            f"(mean {sum(row.times_ms) / max(len(row.times_ms), 1):.0f} ms), {len(said)} event lines "
            f"(first: {said[0][24:120] if said else '-'!r}); warden CPU {100 * cpu:.0f}% of one CPU, RSS peak {peak:.1f} MiB; "
            f"status: {len(lat)} answers, p99 {1000 * (percentile(lat, 99) or 0):.0f} ms, {len(probe.failures)} failed; "
            f"oom_score (adj): warden {scores['warden'][0]} ({scores['warden'][1]}), big {scores['big'][0]} ({scores['big'][1]})")
    check(len(overs) >= 2, f"leak crossed its limit only {len(overs)} times in {HOLD_S}s: was it restarted?")
    check(not late, f"leak not restarted for its memory within {MEM_RECOVER_MS} ms: {late[:5]}")
    check(said, "warden said nothing about leak's memory")
    check(not probe.failures, f"status failed next to the memory-hungry services: {probe.failures[:3]}")
    check(peak <= RSS_BOUND_MIB, f"warden's RSS reached {peak:.1f} MiB")
    check(cpu < CPU_BOUND, f"warden used {100 * cpu:.0f}% of a CPU next to the memory-hungry services")
    (w_score, w_adj), (b_score, b_adj) = scores["warden"], scores["big"]
    check(None not in (w_score, w_adj, b_score, b_adj), f"oom scores unreadable: {scores}")
    check(w_score < b_score, f"warden's oom_score {w_score} is not below big's {b_score}: the kernel would pick warden")
    check(w_adj <= b_adj, f"warden's oom_score_adj {w_adj} is above big's {b_adj}")
    row.lost = "nothing: keep and big kept running"
    w.down()


def run(ctx):
    if os.geteuid() != 0:
        raise Skip("needs root (prlimit on another user's process, setpriv)")
    # 1. The fd limit, as root.
    w = Warden(ctx, "nofile")
    w.write_config(config(ctx, w))
    row = ctx.row("fd limit of warden reached")
    exhaust(ctx, w, "nofile",
            lambda w: [f"--nofile={w.metrics()['fds']}:20000"],
            ["--nofile=20000:20000"], row)
    # 3. oom_score_adj, with this root warden.
    probe = subprocess.run(["sh", "-c", "echo -900 > /proc/self/oom_score_adj && cat /proc/self/oom_score_adj"],
                           capture_output=True, text=True)
    with open(f"/proc/{w.pid}/oom_score_adj") as f:
        mine = f.read().strip()
    with open("/proc/self/oom_score_adj") as f:
        original = f.read().strip()
    kid = w.services()["keep"]["pid"]
    with open(f"/proc/{kid}/oom_score_adj") as f:
        kids = f.read().strip()
    if probe.returncode == 0 and probe.stdout.strip() == "-900":
        check(mine == "-900", f"warden's oom_score_adj is {mine}, not -900")
        check(kids == original, f"a service's oom_score_adj is {kids}, not warden's original {original}")
        ctx.say(f"oom_score_adj: warden {mine}, its service {kids}")
    else:
        ctx.say(f"oom_score_adj: not checked: this kernel refuses to lower it even for root's shell "
                f"({probe.stderr.strip()[:80]}); warden {mine}, its service {kids}")
    w.down()

    # 4. Memory-hungry services next to warden (root or not; here with the root warden).
    memory_hungry(ctx)

    # 2. Fork failing: an unprivileged warden under RLIMIT_NPROC. This machine refuses
    # prlimit on another user's process (EPERM, even as root), so the limit is set when
    # warden starts: room for warden's threads, `keep` and NPROC_SLOTS crashers at a time,
    # so that the other crashers' forks fail until one of those exits. Then three crashers
    # are stopped through the API, the resource returns, and the other two must run again.
    u = Warden(ctx, "nproc")
    u.write_config(config(ctx, u))
    subprocess.run(["chown", "-R", "65534:65534", u.dir], check=True)
    row2 = ctx.row("fork failing (RLIMIT_NPROC)")
    n = nobody_tasks() + WARDEN_THREADS + 1 + NPROC_SLOTS
    u.up(wrap=["prlimit", f"--nproc={n}:{n}", "--"] + NOBODY)
    wait_for("keep running", 30, lambda: u.services()["keep"]["state"] == "running")
    keep_pid = u.services()["keep"]["pid"]
    probe = StatusProbe(u, interval=0.1, timeout=2)
    probe.start()
    cpu0, t0, t0ms = proc_stat(u.pid)[3], time.monotonic(), now_ms()
    wait_for(f"{HOLD_S}s under the limit", HOLD_S + 5, lambda: time.monotonic() - t0 >= HOLD_S, pause=0.2)
    cpu = (proc_stat(u.pid)[3] - cpu0) / TICK / (time.monotonic() - t0)
    probe.stop()
    check(u.alive(), f"warden exited with fork failing: {u.output()[-1500:]}")
    check(u.services()["keep"]["pid"] == keep_pid, "the long-running service changed pid with fork failing")
    failures = [l for l in u.output().splitlines() if "cannot start" in l or "Resource temporarily" in l]
    during = starts_after(u, t0ms)
    ctx.say(f"nproc: {HOLD_S}s with room for {NPROC_SLOTS} of {CRASHERS} crashers: warden alive, keep's pid unchanged, "
            f"CPU {100 * cpu:.0f}% of one CPU, {len(failures)} event lines of failure (first: {failures[0][24:140] if failures else '-'!r}), "
            f"{during} crasher starts meanwhile, {len(probe.failures)} of {len(probe.failures) + len(probe.latencies)} status calls failed")
    check(failures, "warden said nothing about the failing forks")
    check(cpu < CPU_BOUND, f"warden used {100 * cpu:.0f}% of a CPU with fork failing (spinning?)")
    check(not probe.failures, f"status failed with fork failing: {probe.failures[:3]}")
    for i in range(3):
        st, body = u.api("POST", f"/v1/services/c{i}/stop", timeout=30)
        check(st == 200, f"stop c{i} answered {st}: {body}")
    t_back = now_ms()

    def back():
        ok = 0
        for i in (3, 4):
            with open(u.path(f"c{i}.starts")) as f:
                ok += any(float(line.split()[1]) > t_back for line in f if line.strip())
        return ok == 2

    wait_for("the other crashers to start again", RECOVER_S, back, pause=0.1)
    row2.injections = 1
    row2.recovered = 1
    row2.times_ms.append(now_ms() - t_back)
    # The CLI as root refuses a socket of another user: shut down through the API.
    st, _ = u.api("POST", "/v1/shutdown", timeout=30)
    check(st in (200, 202), f"shutdown answered {st}")
    u.proc.wait(timeout=60)
    left = u.leftovers()
    check(not left, f"left after the shutdown: {u.describe(left)}")
    row.lost = row2.lost = "nothing: the running service kept running"
