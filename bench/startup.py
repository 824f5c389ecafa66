#!/usr/bin/env python3
"""Start-up of the app: from exec to the first answer of `GET /api/inngest`, by hand.

    python3 bench/startup.py ENV_FILE ROUNDS BINARY [BINARY...]

Each round starts every BINARY once with `serve` (in alternating order), on the settings of
ENV_FILE (KEY=value lines; its DATABASE_URL must point at a migrated database and PORT at a
free loopback port), waits for the first answer, reads the process's CPU time (all threads,
/proc/<pid>/task/*/schedstat) and memory (VmRSS, RssAnon), and stops it. Prints the medians.
"""

import glob
import os
import socket
import statistics
import subprocess
import sys
import time


def settings(path):
    env = dict(os.environ)
    with open(path) as lines:
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                env[key] = value.strip('"')
    return env


def cpu_ms(pid):
    total = 0
    for stat in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            with open(stat) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError):
            pass  # a thread that ended meanwhile
    return total / 1e6


def status_mib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    return float("nan")


def answered(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /api/inngest HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n")
        head = s.recv(12)
    if not head.startswith(b"HTTP/1.1 200"):
        sys.exit(f"unexpected answer: {head!r}")


def start_once(binary, env, port):
    started = time.perf_counter()
    server = subprocess.Popen(
        [binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                answered(port)
                break
            except OSError:
                if server.poll() is not None:
                    sys.exit(f"{binary} exited with {server.returncode}: check the settings")
                if time.perf_counter() - started > 10:
                    sys.exit(f"{binary} did not answer within 10 s")
                time.sleep(0.0002)
        ready = (time.perf_counter() - started) * 1e3
        return ready, cpu_ms(server.pid), status_mib(server.pid, "VmRSS:"), status_mib(
            server.pid, "RssAnon:"
        )
    finally:
        server.terminate()
        server.wait()


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    env = settings(sys.argv[1])
    rounds = int(sys.argv[2])
    binaries = sys.argv[3:]
    port = int(env.get("PORT", "3000"))
    results = {binary: [] for binary in binaries}
    for round_ in range(rounds):
        for binary in binaries if round_ % 2 == 0 else binaries[::-1]:
            results[binary].append(start_once(binary, env, port))
    print("binary\tfirst answer ms\tCPU ms\tRSS MiB\tprivate MiB")
    for binary in binaries:
        medians = [statistics.median(column) for column in zip(*results[binary])]
        print(binary + "\t" + "\t".join(f"{m:.2f}" for m in medians))


main()
