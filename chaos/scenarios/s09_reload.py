"""9. Reload under fire: 200 reloads in a row (POST /v1/reload), each changing a random subset
of the services (a new version of some, some removed, some added; about 50 at a time out of
60 names), about one in six invalid, while a fifth of the services crash on their own, an
injector SIGKILLs random services and a client queries status.

Checked: each valid reload answers 200 and each invalid one 422; an invalid reload changed
nothing (the services it would have changed keep their old command, the set of services is
the same); no service ever has two processes alive at once (warden's children sampled every
20 ms, by the CHAOS_SVC each one carries); at the end the services are exactly the last valid
config's, each with its last command, each running (or restarting, for the crashers), and no
process of a removed service is left.
"""

import json
import os
import signal
import threading
import time

from harness import StatusProbe, Violation, check, children, cmdline, proc_stat, toml_list, wait_for, Warden

NUMBER = 9
TITLE = "reload under fire: 200 reloads, some invalid, while services crash"
GUARANTEE = "reloads under fire leave exactly the last valid config running, an invalid reload changes nothing, no service runs twice, nothing is orphaned"

RELOADS = 200
POOL = 60
INVALID = [
    ("bad duration", "min_uptime = \"forever\"\n"),
    ("unknown key", "comand = [\"x\"]\n"),
    ("bad restart", "restart = \"sometimes\"\n"),
    ("bad type", "autostart = \"yes\"\n"),
]


def svc_of(pid):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for kv in f.read().split(b"\0"):
                if kv.startswith(b"CHAOS_SVC="):
                    return kv[10:].decode()
    except OSError:
        return None
    return None


class TwiceWatcher(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.halt = threading.Event()
        self.twice = []
        self.samples = 0

    def run(self):
        while not self.halt.is_set():
            seen = {}
            for c in children(self.pid):
                st = proc_stat(c)
                if not st or st[0] == "Z":
                    continue
                name = svc_of(c)
                if name:
                    seen.setdefault(name, []).append(c)
            for name, pids in seen.items():
                # Both still alive (not a zombie) after a re-read: a real overlap.
                live = [p for p in pids if (lambda s: s and s[0] != "Z")(proc_stat(p))]
                if len(live) > 1:
                    self.twice.append((name, live))
            self.samples += 1
            self.halt.wait(0.02)


def render(ctx, model, crashers, invalid=None):
    parts = ["[warden]\nshutdown_timeout = \"30s\"\n"]
    for name in sorted(model):
        cmd = [ctx.test_child, "--print-pid", "--env", f"CHAOS_V{model[name]}"]
        if name in crashers:
            cmd += ["--exit-after", f"{300 + sum(map(ord, name)) * 37 % 700}ms", "1"]
        cmd += ["--sleep", "forever"]
        parts.append(
            f"[services.{name}]\ncommand = {toml_list(cmd)}\nenv = {{ CHAOS_SVC = \"{name}\", V = \"{model[name]}\" }}\n"
            f"stop_timeout = \"5s\"\nbackoff = {{ initial = \"20ms\", max = \"200ms\" }}\n"
        )
        if invalid and invalid[0] == name:
            parts.append(invalid[1])
    return "\n".join(parts)


def run(ctx):
    rng = ctx.rng
    names = [f"r{i:02}" for i in range(POOL)]
    crashers = set(rng.sample(names, POOL // 5))
    model = {n: 0 for n in rng.sample(names, 50)}
    w = Warden(ctx, "reload", render(ctx, model, crashers))
    w.up()
    wait_for("the first services", 60, lambda: len(w.services()) == 50)
    twice = TwiceWatcher(w.pid)
    twice.start()
    probe = StatusProbe(w, interval=0.1)
    probe.start()
    halt = threading.Event()
    kills = [0]

    def injector():
        while not halt.is_set():
            halt.wait(rng.uniform(0.05, 0.3))
            try:
                svcs = [s for s in w.status()["services"] if s["pid"]]
            except (OSError, Violation):
                continue
            if svcs:
                try:
                    os.kill(rng.choice(svcs)["pid"], signal.SIGKILL)
                    kills[0] += 1
                except ProcessLookupError:
                    pass

    inj = threading.Thread(target=injector, daemon=True)
    inj.start()
    valid = invalid = 0
    invalid_violations = []
    t0 = time.monotonic()
    times = []
    for i in range(RELOADS):
        new = dict(model)
        for n in rng.sample(sorted(new), rng.randint(1, 6)):
            new[n] += 1
        for n in rng.sample(sorted(new), rng.randint(0, 2)):
            del new[n]
        for n in rng.sample([x for x in names if x not in new], min(rng.randint(0, 2), POOL - len(new))):
            new[n] = 0
        bad = rng.random() < 1 / 6
        if bad:
            victim = rng.choice(sorted(new))
            what = rng.choice(INVALID)
            w.write_config(render(ctx, new, crashers, (victim, what[1])))
        else:
            w.write_config(render(ctx, new, crashers))
        ta = time.monotonic()
        st, body = w.api("POST", "/v1/reload", timeout=120)
        times.append(time.monotonic() - ta)
        if bad:
            invalid += 1
            check(st == 422, f"reload {i + 1} (invalid: {what[0]}) answered {st}: {body}")
            # Nothing changed: the same services, and those it would have changed keep their
            # old version.
            now = w.services()
            check(set(now) == set(model), f"invalid reload {i + 1} changed the set of services")
            for n in [x for x in new if new[x] != model.get(x)]:
                if n in now and now[n]["pid"]:
                    cl = cmdline(now[n]["pid"])
                    if "test-child" in cl and f"CHAOS_V{model[n]} " not in cl + " ":
                        invalid_violations.append(f"reload {i + 1}: {n} runs {cl}")
        else:
            valid += 1
            check(st == 200, f"reload {i + 1} answered {st}: {body}")
            model = new
    halt.set()
    inj.join(timeout=30)
    secs = time.monotonic() - t0
    check(not invalid_violations, f"invalid reloads changed services: {invalid_violations[:5]}")
    check(w.alive(), "warden died during the reloads")

    def settled():
        s = w.services()
        if set(s) != set(model):
            return None
        for n, v in s.items():
            if n not in crashers and v["state"] != "running":
                return None
        return s

    try:
        final = wait_for("the last valid config to be running", 60, settled, pause=0.2)
    except Violation:
        s = w.services()
        raise Violation(f"the running set is not the last valid config: extra {sorted(set(s) - set(model))}, "
                        f"missing {sorted(set(model) - set(s))}, not running {[n for n, v in s.items() if v['state'] != 'running' and n not in crashers]}")
    for n in model:
        if final[n]["pid"]:
            cl = cmdline(final[n]["pid"])
            check("test-child" not in cl or f"CHAOS_V{model[n]} " in cl + " ", f"{n} does not run its last command: {cl}")
    twice.halt.set()
    twice.join(timeout=10)
    probe.stop()
    strays = [p for p in w.leftovers() if svc_of(p) not in model]
    ctx.say(f"{RELOADS} reloads ({valid} valid, {invalid} invalid) in {secs:.1f}s, "
            f"p50 {1000 * sorted(times)[len(times) // 2]:.0f} ms, max {1000 * max(times):.0f} ms; "
            f"{kills[0]} SIGKILLs meanwhile; {twice.samples} samples of warden's children")
    check(not twice.twice, f"a service ran twice: {twice.twice[:5]}")
    check(not strays, f"processes of removed services left: {w.describe(strays)}")
    check(not probe.failures, f"status failed during the reloads: {probe.failures[:5]}")
    ctx.say(f"the {len(model)} services of the last valid config run with their last command; none twice; none orphaned")
    row = ctx.row("reload (valid and invalid) under fire")
    row.injections = RELOADS
    row.recovered = RELOADS
    row.times_ms = [t * 1000 for t in times]
    row.lost = "0 orphans, 0 doubles"
    w.down()
