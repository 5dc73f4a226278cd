"""2. warden killed: SIGKILL warden while 20 services run (each with a grandchild in its group,
one also with a double-forked daemon that left its group and session), then start it again.

Checked, over ROUNDS kills: once the new warden answers, none of the old processes (the
children, the grandchildren, the daemon: pid and start time) is alive; every service runs
again with a new pid and a new grandchild; each service's log file is the same file (same
inode) holding the old run's lines first and the new run's after them; and the only processes
carrying the run's tag are the new warden's.
"""

import os
import signal
import time

from harness import Violation, check, proc_stat, toml_list, wait_for, Warden

NUMBER = 2
TITLE = "warden killed with SIGKILL while 20 services with grandchildren run"
GUARANTEE = "after a SIGKILL of warden the next start leaves none of the old processes, brings every service back and continues the same log files"

SERVICES = 20
ROUNDS = 3


def identity(pid):
    st = proc_stat(pid)
    return (pid, st[2]) if st and st[0] != "Z" else None


def alive(ident):
    st = proc_stat(ident[0])
    return st is not None and st[2] == ident[1] and st[0] != "Z"


def read_pid(path):
    try:
        with open(path) as f:
            txt = f.read().strip()
        return int(txt) if txt else None
    except (OSError, ValueError):
        return None


def run(ctx):
    w = Warden(ctx, "killed")
    os.makedirs(w.path("pids"))
    parts = ["[warden]\nshutdown_timeout = \"30s\"\n"]
    for i in range(SERVICES):
        name = f"k{i:02}"
        cmd = [ctx.test_child, "--print-pid", "--spawn-grandchild", w.path("pids", f"{name}.gc")]
        if i == 0:
            cmd += ["--double-fork", w.path("pids", f"{name}.daemon")]
        cmd += ["--ready-file", w.path("pids", f"{name}.ready"), "--sleep", "forever"]
        parts.append(f"[services.{name}]\ncommand = {toml_list(cmd)}\n")
    w.write_config("\n".join(parts))
    names = [f"k{i:02}" for i in range(SERVICES)]
    row = ctx.row("SIGKILL of warden (20 services)")
    survivors_before_restart = []

    def all_up(prev):
        """The current run's processes once every service runs with a pid unlike `prev`'s."""
        svcs = w.services()
        procs = {}
        for n in names:
            s = svcs[n]
            if s["state"] != "running" or not s["pid"] or s["pid"] == prev.get(n, (None,))[0]:
                return None
            if read_pid(w.path("pids", f"{n}.ready")) != s["pid"]:
                return None
            gc = read_pid(w.path("pids", f"{n}.gc"))
            if not gc or gc == prev.get(n + ".gc", (None,))[0]:
                return None
            for key, pid in ((n, s["pid"]), (n + ".gc", gc)):
                ident = identity(pid)
                if not ident:
                    return None
                procs[key] = ident
        d = read_pid(w.path("pids", "k00.daemon"))
        if not d or d == prev.get("daemon", (None,))[0] or not identity(d):
            return None
        procs["daemon"] = identity(d)
        return procs

    w.up()
    prev = wait_for("20 services with their grandchildren", 60, lambda: all_up({}))
    for rnd in range(ROUNDS):
        row.injections += 1
        logs = {}
        for n in names:
            p = w.path("logs", f"{n}.out.log")
            with open(p) as f:
                logs[n] = (os.stat(p).st_ino, f.read())
        for p in (w.path("pids", f"{n}.ready") for n in names):
            os.unlink(p)
        old_pid = w.pid
        w.kill9()
        # What survives warden's death on its own (the direct children die of PDEATHSIG).
        t_dead = time.monotonic()
        wait_for("the direct children to die with warden", 10,
                 lambda: not any(alive(prev[n]) for n in names))
        left = [k for k, v in prev.items() if alive(v)]
        survivors_before_restart.append(len(left))
        t0 = time.monotonic()
        w.up()
        check(w.pid != old_pid, "the new warden has the old pid")
        # Once the new warden answers, it ended the old processes before starting anything.
        old_alive = [f"{k} pid {v[0]}" for k, v in prev.items() if alive(v)]
        check(not old_alive, f"round {rnd + 1}: old processes alive after the restart: {old_alive}")
        cur = wait_for("every service back with new processes", 60, lambda: all_up(prev))
        t_back = time.monotonic() - t0
        row.recovered += 1
        row.times_ms.append(t_back * 1000)
        for n in names:
            p = w.path("logs", f"{n}.out.log")
            with open(p) as f:
                text = f.read()
            ino, old = logs[n]
            check(os.stat(p).st_ino == ino, f"{n}: the log file was replaced (inode changed)")
            check(text.startswith(old), f"{n}: the log lost its old content")
            check(f"{cur[n][0]}\n" in text[len(old):], f"{n}: the new run's pid line is not after the old lines")
        tagged = set(w.leftovers())
        expected = {v[0] for v in cur.values()}
        stray = tagged - expected
        check(not stray, f"round {rnd + 1}: unexpected processes: {w.describe(sorted(stray))}")
        ctx.say(f"round {rnd + 1}: {len(left)} of {len(prev)} old processes outlived warden until the restart "
                f"({', '.join(sorted(left))}); none after it; all {SERVICES} back {t_back * 1000:.0f} ms after up "
                f"(warden was dead {t0 - t_dead:.2f}s)")
        prev = cur
    w.down()
    left = w.leftovers()
    check(not left, f"left after down: {w.describe(left)}")
    row.lost = "0 old processes after restart; logs continued"
