"""1. Crash storm: 50 services crashing at random intervals plus random SIGKILLs from outside.

Each service is test-child: it appends `PID MILLIS` to its own starts file when it starts and
exits 1 after its own random interval (0.3 to 3 s, drawn per service). An injector SIGKILLs
a random running service every 50 to 400 ms. Measured and checked:
- every crash and every kill is followed by a new start within the backoff cap plus a slack
  for the loaded machine (RECOVERY_BOUND);
- each service's `restarts` in the status JSON equals its starts minus one (a start that a
  kill cut before its first line counts as a start: its pid is known from the kill);
- warden's fds are exactly what they were before the storm once every service is stopped
  again (idle to idle), and its inotify descriptors hold no more watches; its threads at
  most THREAD_SLACK more; its RSS at the end at most RSS_SLACK over the one after warm-up.
  The idle baseline is taken after a warm-up service (`warm`, outside the storm's
  accounting) was started, SIGKILLed, crashed and stopped: warden opens one descriptor
  lazily and keeps it (in cgroup mode, the inotify descriptor watching every service's
  `cgroup.events`, at the first spawn), and the cold-to-warm difference is printed;
- no child of warden is seen a zombie for a second or more (sampled every 20 ms).
"""

import datetime
import os
import signal
import threading
import time

from harness import (
    MetricWatcher,
    StatusProbe,
    Violation,
    ZombieWatcher,
    check,
    fd_diff,
    fd_links,
    inotify_watches,
    mean,
    now_ms,
    percentile,
    toml_list,
    wait_for,
    Warden,
)

NUMBER = 1
TITLE = "crash storm: 50 services crashing, plus SIGKILLs from outside"
GUARANTEE = "every crash is restarted per policy, restarts are counted, nothing leaks, no zombie lives a second"

SERVICES = 50
STORM_CI = 45  # seconds (the issue says 60; 45 keeps the whole suite within its CI budget)
WARMUP = 8
BACKOFF_MAX_MS = 200
RECOVERY_BOUND_MS = BACKOFF_MAX_MS + 3000  # the cap, plus a loaded machine's scheduling
THREAD_SLACK = 4  # tokio's blocking pool keeps idle threads up to 10 s
RSS_SLACK_KIB = 4096  # and at most 10 % more


def warm_up(w):
    """One run of `warm` ended by a SIGKILL, one by its own crash, then a stop."""
    w.cli("start", "warm", timeout=60, check_rc=0)
    pid = w.services()["warm"]["pid"]
    os.kill(pid, signal.SIGKILL)

    def restarted_after(old):
        s = w.services()["warm"]
        return s["pid"] if s["state"] == "running" and s["pid"] not in (None, old) else None

    pid = wait_for("warm to be restarted after its SIGKILL", 10, lambda: restarted_after(pid))
    wait_for("warm to crash and be restarted", 10, lambda: restarted_after(pid))
    w.cli("stop", "warm", timeout=60, check_rc=0)


def settled_metrics(w):
    """warden's metrics once two samples 100 ms apart show the same fd count."""
    a = w.metrics()
    time.sleep(0.1)
    b = w.metrics()
    return b if a["fds"] == b["fds"] else None


def run(ctx):
    rng = ctx.rng
    storm = ctx.long_seconds if ctx.long else STORM_CI
    w = Warden(ctx, "storm")
    os.makedirs(w.path("starts"))
    intervals = {}
    parts = ["[warden]\nshutdown_timeout = \"60s\"\n"]
    for i in range(SERVICES):
        name = f"s{i:02}"
        ms = rng.randint(300, 3000)
        intervals[name] = ms
        cmd = [ctx.test_child, "--touch", w.path("starts", name), "--exit-after", f"{ms}ms", "1",
               "--sleep", "forever"]
        parts.append(
            f"[services.{name}]\ncommand = {toml_list(cmd)}\nautostart = false\n"
            f"restart = \"always\"\nmin_uptime = \"100ms\"\n"
            f"backoff = {{ initial = \"10ms\", max = \"{BACKOFF_MAX_MS}ms\", factor = 2.0, "
            f"jitter = 0.0, reset_after = \"250ms\" }}\n"
        )
    # The warm-up service: started, SIGKILLed (restarted), crashed (restarted) and stopped
    # before the storm, so that what warden opens once and keeps (the inotify descriptor
    # that watches every cgroup's `cgroup.events`, opened at the first spawn in cgroup
    # mode) is in the idle baseline. Not counted in the storm.
    warm_cmd = [ctx.test_child, "--touch", w.path("starts", "warm"), "--exit-after", "1s", "1", "--sleep", "forever"]
    parts.append(
        f"[services.warm]\ncommand = {toml_list(warm_cmd)}\nautostart = false\nrestart = \"always\"\n"
        f"min_uptime = \"100ms\"\nbackoff = {{ initial = \"10ms\", max = \"10ms\" }}\n"
    )
    w.write_config("\n".join(parts))
    w.up()
    cold = w.metrics()
    links_cold = fd_links(w.pid)
    warm_up(w)
    idle0 = wait_for("warden's fds to settle after the warm-up", 10, lambda: settled_metrics(w))
    links0 = fd_links(w.pid)
    watches0 = inotify_watches(w.pid)
    ctx.say(f"idle before the warm-up: {cold['fds']} fds; after it: {idle0['fds']} fds "
            f"({fd_diff(links_cold, links0)}), {idle0['threads']} threads, {idle0['rss_kib']} KiB RSS, "
            f"{watches0} inotify watches")

    zombies = ZombieWatcher(w.pid)
    zombies.start()
    mw = MetricWatcher(w.pid)
    mw.start()
    probe = StatusProbe(w, interval=0.2)
    probe.start()
    w.cli("start", "--all", "--no-wait", timeout=60, check_rc=0)
    t_start = time.monotonic()

    kills = []  # (name, pid, ms)
    halt = threading.Event()

    def injector():
        while not halt.is_set():
            halt.wait(rng.uniform(0.05, 0.4))
            if halt.is_set():
                break
            try:
                svcs = [s for s in w.status()["services"]
                        if s["name"] in intervals and s["pid"] and s["state"] in ("starting", "running")]
            except (OSError, Violation):
                continue
            if not svcs:
                continue
            s = rng.choice(svcs)
            t = now_ms()
            try:
                os.kill(s["pid"], signal.SIGKILL)
            except ProcessLookupError:
                continue
            kills.append((s["name"], s["pid"], t))

    inj = threading.Thread(target=injector, daemon=True)
    inj.start()
    wait_for("warm-up", WARMUP + 5, lambda: time.monotonic() - t_start >= WARMUP, pause=0.2)
    warm = [m for m in mw.samples if m["t"] >= t_start + WARMUP - 2]
    warm_rss = max(m["rss_kib"] for m in warm)
    warm_thr = max(m["threads"] for m in warm)
    while time.monotonic() - t_start < storm:
        check(w.alive(), f"warden died during the storm: {w.output()[-2000:]}")
        time.sleep(0.5)
    halt.set()
    inj.join(timeout=30)
    end = [m for m in mw.samples if m["t"] >= t_start + storm - 3]
    end_rss = max(m["rss_kib"] for m in end)
    end_thr = max(m["threads"] for m in end)
    check(w.alive(), "warden died during the storm")
    # Every service recovers from the last kill before it is stopped.
    deadline_ms = now_ms() + RECOVERY_BOUND_MS
    wait_for("the last kills to be restarted", RECOVERY_BOUND_MS / 1000 + 5,
             lambda: now_ms() >= deadline_ms, pause=0.2)
    r = w.cli("stop", "--all", timeout=120)
    check(r.returncode == 0, f"stop --all exited {r.returncode}: {r.stderr.decode()[-500:]}")
    probe.stop()
    mw.stop()
    zombies.stop()
    svcs = w.services()

    # Starts per service, against restarts and the crashes.
    starts = {}
    touched = {}
    for name in intervals:
        with open(w.path("starts", name)) as f:
            rows = [line.split() for line in f if line.strip()]
        starts[name] = [float(r[1]) for r in rows]
        touched[name] = {int(r[0]) for r in rows}
    # A kill can hit a child between its spawn (its pid is in status at once) and its first
    # action, the touch: that run started but left no line.
    untouched = {n: sum(1 for k, pid, _ in kills if k == n and pid not in touched[n]) for n in intervals}
    # So can `stop --all`: a crasher restarted just before it, stopped before its touch. That
    # last run began (its exit's time minus how long it ran) after the last touch; a touched
    # run began before its own touch (the next run begins at least the 10 ms backoff later).
    for n in intervals:
        le = svcs[n].get("last_exit")
        # Only the stop's own exit (SIGTERM): its time and length are taken together; a
        # crash's time is taken after its tree was ended, a while after its length.
        if le and le.get("signal") == 15 and starts[n]:
            began = datetime.datetime.fromisoformat(le["at"].replace("Z", "+00:00")).timestamp() * 1000 - le["ran_ms"]
            if began > max(starts[n]) + 5:
                untouched[n] += 1
    mismatched = [
        f"{n}: restarts {svcs[n]['restarts']}, starts {len(starts[n])} (+{untouched[n]} killed before their first line)"
        for n in intervals
        if svcs[n]["restarts"] != len(starts[n]) + untouched[n] - 1
    ]
    total_starts = sum(len(v) for v in starts.values())
    ctx.say(f"storm {storm}s: {total_starts} starts of {SERVICES} services, {len(kills)} SIGKILLs from outside")
    check(not mismatched, "restarts in status differ from the starts: " + "; ".join(mismatched[:10]))

    # Recovery after each kill: the first start of that service after the kill.
    kill_row = ctx.row("SIGKILL of a service")
    kill_row.injections = len(kills)
    unrecovered = []
    for name, pid, t in kills:
        nxt = [s for s in starts[name] if s >= t]
        if nxt and nxt[0] - t <= RECOVERY_BOUND_MS:
            kill_row.recovered += 1
            kill_row.times_ms.append(nxt[0] - t)
        else:
            unrecovered.append(f"{name} (pid {pid}) {'after ' + str(int(nxt[0] - t)) + ' ms' if nxt else 'never'}")
    # Recovery after each crash of its own: from the planned exit to the next start, for the
    # runs that no kill cut short.
    crash_row = ctx.row("crash of a service (exit 1)")
    killed_runs = {(n, max([s for s in starts[n] if s <= t], default=None)) for n, _, t in kills}
    late_crashes = []
    for name, ss in starts.items():
        for a, b in zip(ss, ss[1:]):
            if (name, a) in killed_runs:
                continue
            crash_row.injections += 1
            gap = b - (a + intervals[name])
            if gap <= RECOVERY_BOUND_MS:
                crash_row.recovered += 1
                crash_row.times_ms.append(max(gap, 0.0))
            else:
                late_crashes.append(f"{name}: {gap:.0f} ms")
    ctx.say(f"kill recovery: mean {mean(kill_row.times_ms) or 0:.1f} ms, p99 {percentile(kill_row.times_ms, 99) or 0:.1f} ms; "
            f"crash recovery: mean {mean(crash_row.times_ms) or 0:.1f} ms, p99 {percentile(crash_row.times_ms, 99) or 0:.1f} ms")
    check(not unrecovered, f"{len(unrecovered)} kills not restarted within {RECOVERY_BOUND_MS} ms: {unrecovered[:10]}")
    check(not late_crashes, f"{len(late_crashes)} crashes restarted late: {late_crashes[:10]}")

    # Leaks: idle to idle fds exactly; threads and RSS within the slack.
    left = w.leftovers()
    try:
        idle1 = wait_for("warden's fds to be back to idle", 10,
                         lambda: (lambda m: m if m["fds"] == idle0["fds"] else None)(w.metrics()))
    except Violation:
        idle1 = w.metrics()
        raise Violation(f"fds leaked: {idle0['fds']} idle before the storm, {idle1['fds']} idle after "
                        f"({fd_diff(links0, fd_links(w.pid))})")
    # A stopped service's empty cgroup (and its watch) is kept a second for a next run, then
    # removed on a timer: idle again within a few seconds, or a watch leaked.
    try:
        watches1 = wait_for("warden's inotify watches to be back to idle", 10,
                            lambda: (lambda n: n if n <= watches0 else None)(inotify_watches(w.pid)))
    except Violation:
        watches1 = inotify_watches(w.pid)
    check(watches1 <= watches0, f"inotify watches grew: {watches0} idle before the storm, {watches1} idle after")
    ctx.say(f"idle after: {idle1['fds']} fds, {idle1['threads']} threads, {idle1['rss_kib']} KiB RSS, "
            f"{watches1} inotify watches; "
            f"threads {warm_thr} after warm-up, {end_thr} at the end; RSS {warm_rss} KiB after warm-up, {end_rss} KiB at the end")
    check(end_thr <= warm_thr + THREAD_SLACK, f"threads grew: {warm_thr} after warm-up, {end_thr} at the end")
    rss_bound = max(warm_rss + RSS_SLACK_KIB, warm_rss * 1.10)
    check(end_rss <= rss_bound, f"RSS grew: {warm_rss} KiB after warm-up, {end_rss} KiB at the end (bound {rss_bound:.0f})")
    ctx.say(f"zombies seen: {zombies.seen}, the longest {zombies.longest * 1000:.0f} ms")
    check(zombies.longest < 1.0, f"a zombie lived {zombies.longest:.2f}s: {zombies.longest_what}")
    lat = probe.latencies
    ctx.say(f"status during the storm: {len(lat)} answers, p99 {1000 * (percentile(lat, 99) or 0):.1f} ms, max {1000 * max(lat or [0]):.1f} ms")
    check(not probe.failures, f"status failed during the storm: {probe.failures[:5]}")
    check(not left, f"processes left after stop --all: {w.describe(left)}")
    kill_row.lost = crash_row.lost = "0 processes left; fds idle to idle equal"
    w.down()
