"""5. Stuck programs, each with stop_timeout = STOP_TIMEOUT:
- `ignores-term`: ignores SIGTERM (test-child --ignore-term);
- `stopped`: SIGSTOPped by the test once it runs;
- `blocked-write`: floods stdout without end and ignores SIGTERM, so it is in write() (on a
  full pipe whenever warden is behind) when the stop comes;
- `closed-stdout`: closes its stdout and stderr at once, then sleeps;
- `no-newline`: writes 10 MB without a newline, then sleeps.

Checked: each stop (POST /v1/services/NAME/stop, which answers once the service stopped)
returns within stop_timeout plus STOP_SLACK, and the service's processes are gone then;
throughout, warden answers every status request (GET /v1/status on its socket, every 100 ms)
within STATUS_BOUND (200 ms, the issue's figure), and `warden status` (the CLI, a new process
each time, run in a loop) always succeeds within CLI_BOUND. The CLI's wall time includes its
own start, which on this loaded 2-CPU machine (load average 17) took up to 2.6 s with warden
answering in milliseconds: so the 200 ms figure is checked on warden's answers.
"""

import os
import signal
import threading
import time

from harness import StatusProbe, Violation, check, cmdline, percentile, toml_list, wait_for, Warden

NUMBER = 5
TITLE = "stuck programs: ignores SIGTERM, SIGSTOPped, blocked in write, closed stdout, 10 MB without newline"
GUARANTEE = "warden stops each stuck program within its stop_timeout and the CLI stays responsive"

STOP_TIMEOUT = 2.0
STOP_SLACK = 1.5
STATUS_BOUND = 0.200
CLI_BOUND = 5.0


def run(ctx):
    w = Warden(ctx, "stuck")
    tc = ctx.test_child
    services = {
        "ignores-term": [tc, "--ignore-term", "--sleep", "forever"],
        "stopped": [tc, "--sleep", "forever"],
        "blocked-write": [tc, "--ignore-term", "--flood-for", "1h"],
        "closed-stdout": ["sh", "-c", f"exec >&- 2>&-; exec {tc} --sleep forever"],
        "no-newline": ["sh", "-c", f"head -c 10000000 /dev/zero | tr '\\0' x; exec {tc} --sleep forever"],
    }
    parts = ["[warden]\nshutdown_timeout = \"30s\"\n"]
    for name, cmd in services.items():
        parts.append(
            f"[services.{name}]\ncommand = {toml_list(cmd)}\nstop_timeout = \"{int(STOP_TIMEOUT * 1000)}ms\"\n"
            f"env = {{ CHAOS_SVC = \"{name}\" }}\n"
        )
    w.write_config("\n".join(parts))
    w.up()

    def running():
        s = w.services()
        return all(v["state"] == "running" for v in s.values()) and s

    svcs = wait_for("every service running", 60, running)
    os.kill(svcs["stopped"]["pid"], signal.SIGSTOP)
    # The 10 MB without newline are written once the shell exec'd test-child; warden holds
    # them (a line is cut only at 64 MiB) and writes them when the program ends.
    wait_for("the 10 MB without newline to be written", 60,
             lambda: "test-child" in cmdline(svcs["no-newline"]["pid"]), pause=0.1)
    rss_held = w.metrics()["rss_kib"]
    latencies = []
    failures = []
    halt = threading.Event()

    def cli_probe():
        while not halt.is_set():
            r = w.cli("status", timeout=30)
            if r.returncode != 0:
                failures.append(f"exit {r.returncode}: {r.stderr.decode(errors='replace')[:200]}")
            latencies.append(r.elapsed)
            halt.wait(0.1)

    probe = threading.Thread(target=cli_probe, daemon=True)
    probe.start()
    api_probe = StatusProbe(w, interval=0.1)
    api_probe.start()
    row = ctx.row("stuck program, stopped")
    for name in services:
        row.injections += 1
        t0 = time.monotonic()
        st, body = w.api("POST", f"/v1/services/{name}/stop", timeout=60)
        took = time.monotonic() - t0
        check(st == 200, f"stop {name} answered {st}: {body}")
        left = [p for p in w.leftovers() if _svc(p) == name]
        check(not left, f"{name}: processes left after stop: {w.describe(left)}")
        ctx.say(f"{name}: stopped in {took * 1000:.0f} ms (stop_timeout {STOP_TIMEOUT * 1000:.0f} ms)")
        check(took <= STOP_TIMEOUT + STOP_SLACK, f"{name}: the stop took {took:.2f}s, over stop_timeout + {STOP_SLACK}s")
        row.recovered += 1
        row.times_ms.append(took * 1000)
    halt.set()
    probe.join(timeout=40)
    api_probe.stop()
    nl = w.path("logs", "no-newline.out.log")
    size = os.path.getsize(nl) if os.path.exists(nl) else 0
    ctx.say(f"no-newline: warden's RSS {rss_held} KiB while holding it; {size} bytes in its log after the stop")
    check(size >= 10_000_000, f"the 10 MB without newline did not reach the log ({size} bytes)")
    check(w.alive(), "warden died")
    alat = api_probe.latencies
    ctx.say(f"warden's status answers throughout: {len(alat)}, p50 {1000 * percentile(alat, 50):.1f} ms, "
            f"p99 {1000 * percentile(alat, 99):.1f} ms, max {1000 * max(alat):.1f} ms (bound {STATUS_BOUND * 1000:.0f} ms)")
    ctx.say(f"`warden status` (the CLI, its start included): {len(latencies)} runs, p50 {1000 * percentile(latencies, 50):.0f} ms, "
            f"p99 {1000 * percentile(latencies, 99):.0f} ms, max {1000 * max(latencies):.0f} ms (bound {CLI_BOUND * 1000:.0f} ms)")
    check(not api_probe.failures, f"status failed: {api_probe.failures[:3]}")
    check(not failures, f"`warden status` failed: {failures[:3]}")
    slow = [round(x * 1000) for x in alat if x > STATUS_BOUND]
    check(not slow, f"{len(slow)} of {len(alat)} status answers over {STATUS_BOUND * 1000:.0f} ms: {slow[:10]} ms")
    slow = [round(x * 1000) for x in latencies if x > CLI_BOUND]
    check(not slow, f"{len(slow)} of {len(latencies)} `warden status` runs over {CLI_BOUND:.0f} s: {slow[:10]} ms")
    row.lost = "0 processes left"
    w.down()


def _svc(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for kv in f.read().split(b"\0"):
                if kv.startswith(b"CHAOS_SVC="):
                    return kv[10:].decode()
    except OSError:
        return None
    return None
