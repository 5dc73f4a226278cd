"""2. warden killed: SIGKILL warden while 20 services run (each with a grandchild in its group,
one also with a double-forked daemon that left its group and session), then start it again.

In cgroup mode (root, and a cgroup v2 hierarchy warden can manage: checked beforehand as warden
will, and then in `status`'s `tracking`), two more: `k01`'s double-forked daemon also cleared
its environment (no marker, not in the group: only its cgroup says whose it is), and `ng`,
real nginx in its default mode (the launcher forks the master, which calls setsid; the master
forks a worker), adopted without a `pid_file`. Both are checked to sit in their service's
cgroup. Without cgroup mode the scenario says so and runs nginx with `pid_file` (warden
cannot find a process that left its group and cleared its environment without cgroups: the
README says so); without nginx installed it says so and leaves nginx out.

Checked, over ROUNDS kills: once the new warden answers, none of the old processes (the
children, the grandchildren, the daemon: pid and start time) is alive; every service runs
again with a new pid and a new grandchild; each service's log file is the same file (same
inode) holding the old run's lines first and the new run's after them; and the only processes
carrying the run's tag are the new warden's.
"""

import os
import shutil
import signal
import time

from harness import Violation, check, children, cmdline, proc_stat, toml_list, wait_for, Warden

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


def cgroup_mode_possible():
    """Why warden cannot run services in cgroups here, or None when it can (as warden
    finds out: a cgroup v2 mount, our own cgroup in it, and a cgroup made there)."""
    if os.geteuid() != 0:
        return "not root"
    mount = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[:1] == ["cgroup2"]:
                mount = left.split()[4]
                break
    if not mount:
        return "no cgroup v2 hierarchy in /proc/self/mountinfo"
    own = next((ln.strip()[3:] for ln in open("/proc/self/cgroup") if ln.startswith("0::")), None)
    if own is None:
        return "no 0:: line in /proc/self/cgroup"
    probe = os.path.join(mount + own, f"chaos-probe-{os.getpid()}")
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as e:
        return f"cannot create a cgroup in {mount + own}: {e}"
    return None


def cgroup_of(pid):
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return next((ln.strip()[3:] for ln in f if ln.startswith("0::")), None)
    except OSError:
        return None


def nginx_conf(dirname, port):
    os.makedirs(os.path.join(dirname, "tmp"), exist_ok=True)
    d = dirname
    text = (f"worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log notice;\n"
            f"events {{ worker_connections 64; }}\nhttp {{\n  client_body_temp_path {d}/tmp/body;\n"
            f"  proxy_temp_path {d}/tmp/proxy;\n  fastcgi_temp_path {d}/tmp/fastcgi;\n"
            f"  uwsgi_temp_path {d}/tmp/uwsgi;\n  scgi_temp_path {d}/tmp/scgi;\n  access_log off;\n"
            f"  server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n")
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(ctx):
    w = Warden(ctx, "killed")
    os.makedirs(w.path("pids"))
    no_cgroup = cgroup_mode_possible()
    nginx = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None)
    if no_cgroup:
        ctx.say(f"cgroup parts skipped: warden cannot run services in cgroups here ({no_cgroup}); "
                "k01's daemon keeps its environment and nginx runs with pid_file")
    if not nginx:
        ctx.say("nginx is not installed (apt-get install nginx-light): left out")
    parts = ["[warden]\nshutdown_timeout = \"30s\"\n"]
    for i in range(SERVICES):
        name = f"k{i:02}"
        cmd = [ctx.test_child, "--print-pid", "--spawn-grandchild", w.path("pids", f"{name}.gc")]
        if i == 0:
            cmd += ["--double-fork", w.path("pids", f"{name}.daemon")]
        if i == 1 and not no_cgroup:
            # setsid and an empty environment: only the cgroup knows it.
            cmd += ["--daemon-clear-env", "--double-fork", w.path("pids", f"{name}.daemon")]
        cmd += ["--ready-file", w.path("pids", f"{name}.ready"), "--sleep", "forever"]
        parts.append(f"[services.{name}]\ncommand = {toml_list(cmd)}\n")
    if nginx:
        ngdir = w.path("nginx")
        os.makedirs(ngdir)
        conf = nginx_conf(ngdir, free_port())
        cmd = [nginx, "-p", ngdir + "/", "-e", os.path.join(ngdir, "error.log"), "-c", conf]
        extra = "" if not no_cgroup else f"pid_file = {toml_list([os.path.join(ngdir, 'nginx.pid')])[1:-1]}\n"
        parts.append(f"[services.ng]\ncommand = {toml_list(cmd)}\nstop_signal = \"QUIT\"\n{extra}")
    w.write_config("\n".join(parts))
    names = [f"k{i:02}" for i in range(SERVICES)]
    daemons = ["k00"] + (["k01"] if not no_cgroup else [])

    def nginx_up(svcs, prev):
        """The master and its workers of the current run, or None."""
        s = svcs.get("ng")
        if not s or s["state"] != "running" or not s["pid"]:
            return None
        m = s["pid"]
        if m == prev.get("ng", (None,))[0] or "master process" not in cmdline(m):
            return None
        workers = [c for c in children(m) if "worker process" in cmdline(c)]
        if not workers:
            return None
        return {"ng": identity(m), **{f"ng.worker{i}": identity(c) for i, c in enumerate(workers)}}
    row = ctx.row("SIGKILL of warden (20 services" + (", nginx" if nginx else "") + ("" if no_cgroup else ", cgroups") + ")")
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
        for n in daemons:
            d = read_pid(w.path("pids", f"{n}.daemon"))
            if not d or d == prev.get(f"{n}.daemon", (None,))[0] or not identity(d):
                return None
            procs[f"{n}.daemon"] = identity(d)
        if nginx:
            ng = nginx_up(svcs, prev)
            if not ng or None in ng.values():
                return None
            procs.update(ng)
        return procs

    def in_their_cgroups(procs):
        """cgroup mode: each daemon (and nginx) is in its own service's cgroup."""
        wrong = []
        for key, (pid, _) in procs.items():
            svc = key.split(".")[0]
            if key.endswith(".daemon") or svc == "ng":
                cg = cgroup_of(pid)
                if not cg or not cg.endswith(f"/{svc}.service"):
                    wrong.append(f"{key} pid {pid} in {cg}")
        return wrong

    st = w.up()
    tracking = st["warden"].get("tracking")
    check(tracking == ("process-group" if no_cgroup else "cgroup"),
          f"warden's tracking is {tracking!r} (cgroup mode {'impossible' if no_cgroup else 'possible'} here)")
    prev = wait_for("20 services with their grandchildren", 60, lambda: all_up({}))
    if not no_cgroup:
        wrong = in_their_cgroups(prev)
        check(not wrong, f"not in their service's cgroup: {wrong}")
        ctx.say(f"cgroup mode: k01's daemon (setsid, empty environment) and nginx's master and worker "
                f"sit in their services' cgroups")
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
        if not no_cgroup:
            wrong = in_their_cgroups(cur)
            check(not wrong, f"round {rnd + 1}: not in their service's cgroup: {wrong}")
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
    alive_after = [f"{k} pid {v[0]}" for k, v in prev.items() if alive(v)]
    check(not alive_after, f"alive after down: {alive_after}")
    row.lost = "0 old processes after restart; logs continued"
