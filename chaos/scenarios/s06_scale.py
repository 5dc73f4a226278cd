"""6. Scale: 1,000 services (`sleep 3600`): up, status, reload with one change, down.

Measured and reported: the time until the API answers (every service had its first start),
until all 1,000 are running, of `warden status` and `status --json` (the CLI), of a reload
that changes one service, of `down`; warden's RSS, fds and threads with 1,000 running.
Checked: all 1,000 run; the reload restarts exactly the changed service (every other pid is
unchanged); `down` leaves no process behind and warden exits; each step within its bound
(generous: a debug build on a loaded 2-CPU machine).
"""

import json
import time

from harness import check, toml_list, wait_for, Warden

NUMBER = 6
TITLE = "scale: 1,000 services up, status, reload with one change, down"
GUARANTEE = "1,000 services start, answer status, reload one change and stop with nothing left"

N = 1000
BOUND_UP_S = 60
BOUND_STATUS_S = 5
BOUND_RELOAD_S = 30
BOUND_DOWN_S = 60


def config(n, changed=None):
    parts = ["[warden]\nshutdown_timeout = \"60s\"\n"]
    for i in range(n):
        secs = "3601" if i == changed else "3600"
        parts.append(f"[services.s{i:04}]\ncommand = {toml_list(['sleep', secs])}\n")
    return "\n".join(parts)


def run(ctx):
    w = Warden(ctx, "scale", config(N))
    t0 = time.monotonic()
    w.up(timeout=BOUND_UP_S)
    t_api = time.monotonic() - t0

    def all_running():
        s = w.services(timeout=30)
        return len(s) == N and all(v["state"] == "running" for v in s.values()) and s

    before = wait_for("1,000 services running", BOUND_UP_S, all_running, pause=0.2)
    t_running = time.monotonic() - t0
    m = w.metrics()
    ctx.say(f"up: the API answered after {t_api:.2f}s, all {N} running after {t_running:.2f}s; "
            f"warden {m['rss_kib'] / 1024:.1f} MiB RSS, {m['fds']} fds, {m['threads']} threads")
    r = w.cli("status", timeout=60, check_rc=0)
    t_status = r.elapsed
    # The table (a header and a row per service), then a blank line and the tracking line.
    table = r.stdout.split(b"\n\n")[0]
    lines = table.count(b"\n") + 1
    check(lines == N + 1, f"status printed a table of {lines} lines, not {N + 1}")
    check(b"tracking: " in r.stdout, "status names the tracking mode under the table")
    r = w.cli("status", "--json", timeout=60, check_rc=0)
    t_json = r.elapsed
    check(len(json.loads(r.stdout)["services"]) == N, "status --json does not list 1,000 services")
    ctx.say(f"status: {t_status * 1000:.0f} ms (table), {t_json * 1000:.0f} ms (--json)")
    check(max(t_status, t_json) <= BOUND_STATUS_S, f"status took over {BOUND_STATUS_S}s")

    changed = N // 2
    w.write_config(config(N, changed))
    r = w.cli("reload", timeout=120, check_rc=0)
    t_reload = r.elapsed
    out = r.stdout.decode()
    name = f"s{changed:04}"
    after = wait_for("the changed service running again", 30,
                     lambda: (lambda s: s if s[name]["state"] == "running" and s[name]["pid"] != before[name]["pid"] else None)(w.services(timeout=30)))
    moved = [n for n in before if n != name and after[n]["pid"] != before[n]["pid"]]
    ctx.say(f"reload with one change: {t_reload * 1000:.0f} ms: {out.strip()}")
    check(name in out and "999 unchanged" in out, f"reload did not report one restart and 999 unchanged: {out!r}")
    check(not moved, f"the reload restarted services that did not change: {moved[:10]}")
    check(t_reload <= BOUND_RELOAD_S, f"reload took {t_reload:.1f}s")
    m2 = w.metrics()

    t1 = time.monotonic()
    w.down(timeout=BOUND_DOWN_S + 30)
    t_down = time.monotonic() - t1
    left = w.leftovers()
    ctx.say(f"down: {t_down:.2f}s; {len(left)} processes left; RSS after the reload {m2['rss_kib'] / 1024:.1f} MiB")
    check(not left, f"down left {len(left)} processes: {w.describe(left)}")
    check(t_down <= BOUND_DOWN_S, f"down took {t_down:.1f}s")
    row = ctx.row("scale: 1,000 services, reload of one")
    row.injections = 1
    row.recovered = 1
    row.times_ms.append(t_reload * 1000)
    row.lost = "0 processes left after down"
