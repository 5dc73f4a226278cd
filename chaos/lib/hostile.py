"""The hostile clients of scenario 7, run as a process of their own (so that their threads do
not share the normal client's interpreter lock). For DURATION seconds, against warden's TCP API
(with and without the token) and its Unix socket:
- malformed requests (garbage, NUL bytes, HTTP/0.9, huge URI, huge and many headers,
  oversized and lying bodies, bad chunking, bad percent-encoding, absurd numbers);
- slow clients that send a request head a byte every half second;
- clients that open a follow stream and never read it;
- IDLE idle connections, reopened when warden closes them.
Prints one JSON summary line: the answers' status codes, the violations (a 5xx other than
the documented 503, an answer that is not HTTP), and how many connections warden closed.

Usage: hostile.py PORT TOKEN SOCKET DURATION IDLE SERVICE
"""

import json
import os
import random
import socket
import sys
import threading
import time

PORT, TOKEN, SOCK, DURATION, IDLE, SERVICE = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
END = time.monotonic() + DURATION
lock = threading.Lock()
codes = {}
violations = []
counts = {"malformed": 0, "slow_closed": 0, "follow_held": 0, "idle_closed": 0, "idle_open": 0, "connect_errors": 0}


def bump(key, n=1):
    with lock:
        counts[key] = counts.get(key, 0) + n


def tcp():
    s = socket.create_connection(("127.0.0.1", int(PORT)), timeout=10)
    return s


def unix():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(SOCK)
    return s


AUTH = f"Authorization: Bearer {TOKEN}\r\n"


def requests(rng):
    big = "a" * 100_000
    return [
        ("garbage", b"GARBAGE\r\n\r\n"),
        ("nul", b"\x00\x01\x02\x03\xff\xfe\r\n\r\n"),
        ("random", bytes(rng.randrange(256) for _ in range(512))),
        ("http09", b"GET /v1/status\r\n\r\n"),
        ("huge-uri", f"GET /v1/services/{big}/logs HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode()),
        ("huge-header", f"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n{AUTH}\r\n".encode()),
        ("many-headers", ("GET /v1/status HTTP/1.1\r\nHost: x\r\n" + AUTH + "".join(f"X-{i}: y\r\n" for i in range(5000)) + "\r\n").encode()),
        ("body-lies", f"POST /v1/reload HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 1000000000\r\n\r\n".encode() + b"x" * 1_000_000),
        ("body-big", f"POST /v1/reload HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 2000000\r\n\r\n".encode() + b"{" * 2_000_000),
        ("bad-chunks", f"POST /v1/reload HTTP/1.1\r\nHost: x\r\n{AUTH}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\nFFFFFFFFFFFFFFFFFF\r\n".encode()),
        ("two-lengths", f"POST /v1/reload HTTP/1.1\r\nHost: x\r\n{AUTH}Content-Length: 5\r\nContent-Length: 7\r\n\r\nhello".encode()),
        ("bad-percent", f"GET /v1/services/%ff%fe%00/logs?n=-1&stream=%zz HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode()),
        ("huge-n", f"GET /v1/services/{SERVICE}/logs?n=99999999999999999999999 HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode()),
        ("bad-method", f"DELETE /v1/status HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode()),
        ("no-token", b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("bad-version", f"GET /v1/status HTTP/9.9\r\nHost: x\r\n{AUTH}\r\n".encode()),
        ("pipelined", (f"GET /v1/status HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n" * 50).encode()),
        ("unknown", f"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode()),
    ]


def read_status(s):
    data = b""
    try:
        while b"\r\n" not in data and len(data) < 65536:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    if not data:
        return None  # closed without an answer: allowed
    line = data.split(b"\r\n", 1)[0]
    parts = line.split()
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return f"not HTTP: {line[:80]!r}"
    return int(parts[1])


def malformed(seed):
    rng = random.Random(seed)
    reqs = requests(rng)
    while time.monotonic() < END:
        name, payload = rng.choice(reqs)
        try:
            s = tcp() if rng.random() < 0.7 else unix()
        except OSError:
            bump("connect_errors")
            continue
        try:
            try:
                s.sendall(payload)
            except OSError:
                pass  # warden may close early on an oversized request: fine
            code = read_status(s)
        finally:
            s.close()
        bump("malformed")
        with lock:
            key = f"{name}:{code}"
            codes[key] = codes.get(key, 0) + 1
            if isinstance(code, str) or (isinstance(code, int) and code >= 500 and code != 503):
                violations.append(f"{name} -> {code}")


def slow(seed):
    rng = random.Random(seed)
    req = f"GET /v1/status HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode()
    while time.monotonic() < END:
        try:
            s = tcp()
        except OSError:
            bump("connect_errors")
            time.sleep(0.5)
            continue
        try:
            for b in req:
                if time.monotonic() >= END:
                    break
                s.sendall(bytes([b]))
                time.sleep(0.5 + rng.random() * 0.1)
        except OSError:
            bump("slow_closed")
        finally:
            s.close()


def follower(_seed):
    req = f"GET /v1/services/{SERVICE}/logs?follow=true&n=1000 HTTP/1.1\r\nHost: x\r\n{AUTH}\r\n".encode()
    while time.monotonic() < END:
        try:
            s = tcp()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(req)
        except OSError:
            bump("connect_errors")
            time.sleep(0.5)
            continue
        bump("follow_held")
        # Never read: hold it until the end (or until warden ends it; then a new one).
        s.settimeout(max(0.1, END - time.monotonic()))
        try:
            while time.monotonic() < END:
                if s.recv(1, socket.MSG_PEEK) == b"":
                    break
                time.sleep(0.5)
        except OSError:
            pass
        s.close()


def idle(n):
    conns = []
    while time.monotonic() < END:
        while len(conns) < n and time.monotonic() < END:
            try:
                conns.append(tcp() if len(conns) % 2 else unix())
            except OSError:
                bump("connect_errors")
                break
        with lock:
            counts["idle_open"] = max(counts["idle_open"], len(conns))
        time.sleep(0.5)
        alive = []
        for s in conns:
            try:
                s.setblocking(False)
                s.recv(1, socket.MSG_PEEK)
                # An answer (the 408 of the head timeout, or a 503 eviction) or the end.
                s.close()
                bump("idle_closed")
            except BlockingIOError:
                alive.append(s)
            except OSError:
                s.close()
                bump("idle_closed")
        conns = alive
    for s in conns:
        s.close()


def main():
    only = os.environ.get("CHAOS_HOSTILE_ONLY", "malformed,slow,follow,idle").split(",")
    threads = []
    if "malformed" in only:
        threads += [threading.Thread(target=malformed, args=(i,)) for i in range(4)]
    if "slow" in only:
        threads += [threading.Thread(target=slow, args=(i,)) for i in range(20)]
    if "follow" in only:
        threads += [threading.Thread(target=follower, args=(i,)) for i in range(20)]
    if "idle" in only:
        threads.append(threading.Thread(target=idle, args=(IDLE,)))
    for t in threads:
        t.daemon = True
        t.start()
    for t in threads:
        t.join(timeout=DURATION + 60)
    print(json.dumps({"codes": codes, "violations": violations[:50], "counts": counts}))


if __name__ == "__main__":
    main()
