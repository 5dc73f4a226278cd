"""8. Access, with warden running as root and the other user `nobody` (via setpriv):
- `nobody` cannot connect to the control socket, nor run `warden status` against it, nor
  create anything (a symlink) in the state dir or the log dir;
- a symlink that `nobody` plants in a sticky world-writable log dir (like /tmp), named as the
  service's log file and pointing at a root-owned file, is not followed: the file is
  unchanged; a log dir that others can write without the sticky bit is refused;
- the TCP API answers 401 to a missing, empty, wrong, truncated, extended, one-character-off
  and wrong-scheme token, 200 to the right one;
- a `command` string with shell syntax ($(..), backticks, ;, &&, |, >) runs without a shell
  (the files it would create do not appear, the words are printed as they are), and the same
  string with `shell = true` does run through `sh -c` (the control that proves the check);
- secrets given in `env`, `env_file` and `api_token` appear in none of warden's output: its
  event lines, `check`, `status` (table and JSON), every API answer (status, service,
  config, logs, errors), reload and its errors, the 401 answers, and config errors about the
  very lines that hold them.
"""

import json
import os
import secrets
import socket
import subprocess
import urllib.request

from harness import Skip, check, http_call, toml_list, wait_for, Warden
import http.client

NUMBER = 8
TITLE = "access: another user, symlinks, tokens, no shell, secrets"
GUARANTEE = "another user cannot use the socket or plant a followed symlink, tokens must match exactly, no shell unless shell = true, secrets never shown"

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def as_nobody(args, **kw):
    return subprocess.run(NOBODY + args, capture_output=True, timeout=30, **kw)


def run(ctx):
    if os.geteuid() != 0:
        raise Skip("needs root (to be warden's user and switch to nobody)")
    if subprocess.run(NOBODY + ["true"], capture_output=True).returncode != 0:
        raise Skip("setpriv cannot switch to nobody here")
    s_env = "envsecret-" + secrets.token_hex(8)
    s_file = "filesecret-" + secrets.token_hex(8)
    token = "tok" + secrets.token_hex(16)
    port = _free_port()
    w = Warden(ctx, "access")
    os.chmod(w.dir, 0o755)  # traversable, so that only warden's own modes stop nobody
    sticky = w.path("sticky")
    os.makedirs(sticky)
    os.chmod(sticky, 0o1777)
    precious = w.path("precious")
    with open(precious, "w") as f:
        f.write("precious\n")
    r = as_nobody(["ln", "-s", precious, os.path.join(sticky, "evil.out.log")])
    check(r.returncode == 0, f"nobody could not plant the symlink in the sticky dir: {r.stderr}")
    with open(w.path("app.env"), "w") as f:
        f.write(f"FILE_SECRET={s_file}\n")
    os.chmod(w.path("app.env"), 0o600)
    noshell = "printf [%s]\\n $(touch PWNED1) `touch PWNED2` ; touch PWNED3 && touch PWNED4 | touch PWNED5 > PWNED6"
    base_config = (
        f"[warden]\napi = \"127.0.0.1:{port}\"\napi_token = \"{token}\"\nshutdown_timeout = \"20s\"\n\n"
        f"[services.app]\ncommand = {toml_list([ctx.test_child, '--sleep', 'forever'])}\n"
        f"env = {{ ENV_SECRET = \"{s_env}\" }}\nenv_file = \"app.env\"\n\n"
        f"[services.noshell]\ncommand = {json.dumps(noshell)}\ncwd = \"work\"\nrestart = \"never\"\n\n"
        f"[services.withshell]\ncommand = {json.dumps(noshell)}\ncwd = \"work2\"\nshell = true\nrestart = \"never\"\n\n"
        f"[services.evil]\ncommand = {toml_list([ctx.test_child, '--lines', '100', '--sleep', 'forever'])}\n"
        f"[services.evil.log]\nstdout = \"sticky/evil.out.log\"\nmax_size = \"1KiB\"\nkeep = 2\n"
    )
    os.makedirs(w.path("work"))
    os.makedirs(w.path("work2"))
    w.write_config(base_config)
    outputs = []  # (where, text) of everything warden said
    # A symlink planted where the log file goes: refused at the config's check, not followed.
    r = w.cli("up", timeout=30)
    check(r.returncode == 2 and b"symbolic link" in r.stderr, f"up with a planted log symlink exited {r.returncode}: {r.stderr[-300:]!r}")
    outputs.append(("up refused", r.stdout + r.stderr))
    os.unlink(os.path.join(sticky, "evil.out.log"))
    # Symlinks planted where rotation renames to: replaced, never followed.
    for k in (1, 2):
        r = as_nobody(["ln", "-s", precious, os.path.join(sticky, f"evil.out.log.{k}")])
        check(r.returncode == 0, f"nobody could not plant evil.out.log.{k}: {r.stderr}")
    r = w.cli("check", timeout=30)
    outputs.append(("check", r.stdout + r.stderr))
    w.up()
    wait_for("app running", 30, lambda: w.services()["app"]["state"] == "running")
    wait_for("noshell exited", 30, lambda: w.services()["noshell"]["state"] in ("exited", "failed"))

    # 1. Another user and the socket, the state dir, the log dir.
    r = as_nobody(["python3", "-c", f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({w.sock!r}); "
                   "s.sendall(b'GET /v1/status HTTP/1.1\\r\\nHost: w\\r\\n\\r\\n'); print(s.recv(100))"])
    check(r.returncode != 0 and b"PermissionError" in r.stderr, f"nobody reached the socket: {r.stdout!r} {r.stderr[-300:]!r}")
    r = as_nobody([ctx.warden, "status", "-c", w.config])
    check(r.returncode != 0, f"nobody ran warden status: {r.stdout!r}")
    outputs.append(("status as nobody", r.stdout + r.stderr))
    for d in (w.path(".warden"), w.path("logs")):
        r = as_nobody(["ln", "-s", precious, os.path.join(d, "planted")])
        check(r.returncode != 0 and not os.path.lexists(os.path.join(d, "planted")), f"nobody planted a symlink in {d}")
    ctx.say("nobody: socket refused (permission), status refused, no symlink in the state dir or the log dir")

    # 2. The planted symlinks in the sticky dir are not followed.
    wait_for("evil's log rotated over the planted symlinks", 30,
             lambda: all(os.path.isfile(os.path.join(sticky, f"evil.out.log.{k}")) and
                         not os.path.islink(os.path.join(sticky, f"evil.out.log.{k}")) for k in (1, 2)))
    with open(precious) as f:
        check(f.read() == "precious\n", "warden wrote through a planted symlink")
    ctx.say("planted symlinks: the log's own name refused at up (exit 2), the rotation names replaced, the target unchanged")

    # 3. Tokens on TCP.
    wrong = {
        "missing": None,
        "empty": "Bearer ",
        "wrong": "Bearer " + secrets.token_hex(17),
        "truncated": "Bearer " + token[:-1],
        "extended": "Bearer " + token + "0",
        "one off": "Bearer " + token[:-1] + ("0" if token[-1] != "0" else "1"),
        "scheme": "Basic " + token,
        "bare": token,
    }
    for what, hdr in wrong.items():
        st, body = _tcp(port, "/v1/status", hdr)
        check(st == 401, f"TCP API with a {what} token answered {st}")
        outputs.append((f"401 for {what}", json.dumps(body).encode()))
    st, _ = _tcp(port, "/v1/status", "Bearer " + token)
    check(st == 200, f"TCP API with the right token answered {st}")
    ctx.say(f"TCP API: 401 for {len(wrong)} kinds of wrong token ({', '.join(wrong)}), 200 for the right one")

    # 4. No shell.
    made = [f for f in os.listdir(w.path("work")) if f.startswith("PWNED")]
    check(not made, f"a command without shell = true ran through a shell: {made}")
    with open(w.path("logs", "noshell.out.log"), "rb") as f:
        printed = f.read()
    shelled = wait_for("the shell = true control to create its files", 30,
                       lambda: sorted(f for f in os.listdir(w.path("work2")) if f.startswith("PWNED")) or None)
    ctx.say(f"no shell: none of the 6 files; with shell = true the same string made {len(shelled)} of them")
    check(b"[$(touch]" in printed and b"[`touch]" in printed and b"[;]" in printed, f"noshell printed {printed[:200]!r}")

    # 5. Secrets: every API answer, errors included.
    for path in ["/v1/status", "/v1/services/app", "/v1/services/app/config", "/v1/services/app/logs?n=100",
                 "/v1/services/nosuch", "/v1/services/app/logs?n=x"]:
        st, body = w.api("GET", path)
        outputs.append((f"GET {path}", json.dumps(body).encode() if not isinstance(body, bytes) else body))
    for args in (["status"], ["status", "--json"], ["logs", "app"], ["reload"]):
        r = w.cli(*args, timeout=60)
        outputs.append((" ".join(args), r.stdout + r.stderr))
    # Config errors about the lines that hold the secrets: a bad env value, a bad env_file line.
    with open(w.path("app.env"), "w") as f:
        f.write(f"FILE_SECRET={s_file}\nnot a line {s_file}\n")
    w.write_config(base_config.replace(f"ENV_SECRET = \"{s_env}\"", f"ENV_SECRET = \"{s_env}\", \"bad key\" = \"{s_env}\""))
    for args in (["reload"], ["check"]):
        r = w.cli(*args, timeout=60)
        check(r.returncode == 2, f"{args[0]} of a bad config exited {r.returncode}")
        outputs.append((f"{args[0]} (bad config)", r.stdout + r.stderr))
    st, body = w.api("POST", "/v1/reload")
    outputs.append(("POST /v1/reload (bad config)", json.dumps(body).encode()))
    w.write_config(base_config.replace(f"env_file = \"app.env\"", f"env_file = \"app.env\"\nusr = 5"))
    r = w.cli("check", timeout=30)
    outputs.append(("check (unknown key)", r.stdout + r.stderr))
    with open(w.path("app.env"), "w") as f:
        f.write(f"FILE_SECRET={s_file}\n")
    w.write_config(base_config)
    w.down()
    outputs.append(("warden's own output", w.output().encode()))
    for where in (w.path(".warden"),):
        for name in os.listdir(where):
            p = os.path.join(where, name)
            if os.path.isfile(p) and not name.endswith(".sock"):
                with open(p, "rb") as f:
                    outputs.append((f"state file {name}", f.read()))
    leaks = [(where, s) for where, text in outputs for s in (s_env, s_file, token) if s.encode() in text]
    check(not leaks, f"a secret appeared in: {[w_ for w_, _ in leaks]}")
    ctx.say(f"secrets: none of the 3 in {len(outputs)} outputs (event lines, check, status, API answers, errors, state files)")
    row = ctx.row("access attempts (other user, tokens, shell, secrets)")
    row.injections = 3 + 2 + len(wrong) + 1 + len(outputs)
    row.recovered = row.injections
    row.lost = "no access, no secret shown"


def _problem(w):
    st, body = w.api("GET", "/v1/services/evil")
    return (body or {}).get("reason") or (body or {}).get("logs") or body.get("state")


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def _tcp(port, path, auth):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        return http_call(conn, "GET", path, headers={"Authorization": auth} if auth is not None else {})
    finally:
        conn.close()
