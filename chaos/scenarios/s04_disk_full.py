"""4. Disk full: the logs on a small tmpfs (mounted here; the scenario is skipped, saying so,
only when the mount fails). A writer service prints a numbered 2 KiB line every millisecond
(about 2 MB/s, so warden's 4 MiB buffer overflows while the disk is full); a crasher service
exits 1 every 300 ms and is restarted. The test fills the tmpfs with a file of its own,
holds it full for FULL_S seconds, then deletes the file.

Checked: warden stays alive and answers status throughout; the crasher keeps being
restarted while the disk is full; the write error is reported once (one event line) for the
writer's file; once space returns, `[warden] dropped N bytes of output: ...` is in the file,
and every line in the file is whole, and the numbered lines are contiguous before the
marker and after it (the gap is exactly where the marker is), and new lines keep coming.
"""

import os
import re
import subprocess
import sys
import time

from harness import Skip, StatusProbe, check, now_ms, toml_list, wait_for, Warden

NUMBER = 4
TITLE = "disk full: logs on a full tmpfs, then space returns"
GUARANTEE = "with the disk full warden keeps supervising, says so once, writes the dropped-bytes marker when space returns, and never dies"

FULL_S = 6
WRITER = r"""
import sys, time
pad = "x" * 2000
i = 0
while True:
    i += 1
    sys.stdout.write(f"n {i:09d} {pad}\n")
    sys.stdout.flush()
    time.sleep(0.001)
"""
LINE = re.compile(r"^n (\d{9}) x{2000}$")


def run(ctx):
    w = Warden(ctx, "diskfull")
    logs = w.path("logs")
    os.makedirs(logs)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0750", "tmpfs", logs],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise Skip(f"cannot mount a tmpfs (mount exited {r.returncode}: {r.stderr.strip()}); run as root")
    ctx.cleanups.append(lambda: subprocess.run(["umount", "-l", logs], capture_output=True))
    w.write_config(
        f"[warden]\nlog_dir = \"logs\"\nshutdown_timeout = \"20s\"\n\n"
        f"[services.writer]\ncommand = {toml_list([sys.executable, '-c', WRITER])}\n"
        f"[services.writer.log]\nmax_size = \"1GiB\"\n\n"
        f"[services.crasher]\ncommand = {toml_list([ctx.test_child, '--exit-after', '300ms', '1', '--sleep', 'forever'])}\n"
        f"restart = \"always\"\nbackoff = {{ initial = \"10ms\", max = \"50ms\" }}\n"
    )
    w.up()
    out_log = os.path.join(logs, "writer.out.log")
    wait_for("the writer's first lines", 30, lambda: os.path.exists(out_log) and os.path.getsize(out_log) > 20000)
    probe = StatusProbe(w, interval=0.1)
    probe.start()
    filler = os.path.join(logs, "filler")
    t_full = now_ms()
    chunk = b"\0" * 65536
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        while True:
            os.write(fd, chunk)
    except OSError:
        pass
    finally:
        os.close(fd)
    # Hold it full: the writer's lines go to warden's buffer, then are dropped.
    restarts0 = w.services()["crasher"]["restarts"]
    wait_for("the disk full period", FULL_S + 5, lambda: now_ms() - t_full >= FULL_S * 1000, pause=0.2)
    check(w.alive(), f"warden died with the disk full: {w.output()[-2000:]}")
    restarts1 = w.services()["crasher"]["restarts"]
    check(restarts1 >= restarts0 + 3, f"the crasher was not restarted while the disk was full ({restarts0} -> {restarts1})")
    os.unlink(filler)
    t_free = now_ms()

    def marker():
        with open(out_log, "rb") as f:
            data = f.read()
        m = re.search(rb"\[warden\] dropped (\d+) bytes of output: ([^\n]*)\n", data)
        return (m, data) if m and data.count(b"\n", m.end()) > 50 else None

    m, _ = wait_for("the dropped-bytes marker and new lines after it", 30, marker)
    t_marker = now_ms()
    probe.stop()
    check(w.alive(), "warden died after space returned")
    with open(out_log, "rb") as f:
        data = f.read()
    lines = data.split(b"\n")
    tail_partial = lines.pop()  # the last line may be being written
    before, after, seen_marker = [], [], False
    for i, raw in enumerate(lines):
        line = raw.decode("latin-1")
        if line.startswith("[warden] dropped"):
            check(not seen_marker, "two dropped-bytes markers")
            seen_marker = True
            continue
        mm = LINE.match(line)
        check(mm is not None, f"line {i + 1} of writer.out.log is not whole: {line[:80]!r}...")
        (after if seen_marker else before).append(int(mm.group(1)))
    for part, nums in (("before the marker", before), ("after the marker", after)):
        gaps = [(a, b) for a, b in zip(nums, nums[1:]) if b != a + 1]
        check(not gaps, f"numbered lines {part} are not contiguous: {gaps[:5]}")
    check(after and before and after[0] > before[-1] + 1, "no gap at the marker although bytes were dropped")
    lost_lines = after[0] - before[-1] - 1
    # The error is said once: one event line about writer.out.log failing.
    events = [l for l in w.output().splitlines() if "writer.out.log" in l or "[writer]" in l]
    failing = [l for l in events if "No space" in l or "space" in l.lower() and "works again" not in l]
    ctx.say(f"disk full {FULL_S}s: {int(m.group(1))} bytes dropped ({lost_lines} lines, between line {before[-1]} and {after[0]}), "
            f"marker {t_marker - t_free:.0f} ms after space returned; crasher restarted {restarts1 - restarts0} times meanwhile")
    ctx.say(f"warden said it in {len(events)} event lines (started, failed, works again)")
    check(len(failing) == 1, f"the write error was reported {len(failing)} times, not once: {failing[:5]}")
    lat = probe.latencies
    check(not probe.failures, f"status failed with the disk full: {probe.failures[:5]}")
    ctx.say(f"status with the disk full: {len(lat)} answers, max {1000 * max(lat or [0]):.0f} ms")
    row = ctx.row("disk full (log writes fail)")
    row.injections = 1
    row.recovered = 1
    row.times_ms.append(t_marker - t_free)
    row.lost = f"{int(m.group(1))} bytes dropped, marked in the file"
    w.down()
