#!/usr/bin/env python3
"""CPU time a `shim serve` spends per operation, to compare two builds.

On a loaded machine throughput swings with the neighbours; the CPU time
the server process itself uses per request (utime + stime from /proc)
moves much less. For each binary, alternately, REPS times: start
`BINARY serve --durability MODE` on a fresh temp dir, run
`BINARY bench state --op set --count COUNT` against it, read the server's
CPU time before and after, stop it. Prints each run and the medians.

  scripts/server_cpu_per_op.py MODE REPS COUNT BINARY [BINARY ...]
  scripts/server_cpu_per_op.py none 5 100000 /tmp/shim-a /tmp/shim-b
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(binary, durability, count):
    tmp = tempfile.mkdtemp(prefix="shim-cpu-")
    sock = os.path.join(tmp, "s.sock")
    server = subprocess.Popen([binary, "serve", "--data", os.path.join(tmp, "data"), "--socket", sock,
                               "--durability", durability, "--log-level", "warn"], stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        time.sleep(0.3)
        before = cpu_seconds(server.pid)
        out = subprocess.run([binary, "bench", "state", "--socket", sock, "--op", "set", "--count", str(count),
                              "--json"], capture_output=True, text=True, check=True)
        after = cpu_seconds(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    return (after - before) / count * 1e6, json.loads(out.stdout).get("ops_per_sec", 0)


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    mode, reps, count, binaries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
    results = {b: [] for b in binaries}
    for rep in range(reps):
        for b in binaries:
            us, ops = run(b, mode, count)
            results[b].append(us)
            print(f"{rep} {b} {mode}: {us:.2f} us CPU/op, {ops:.0f} ops/s", flush=True)
    for b, runs in results.items():
        runs.sort()
        print(f"{b}: median {runs[len(runs) // 2]:.2f} us CPU/op (runs: {', '.join(f'{x:.2f}' for x in runs)})")


if __name__ == "__main__":
    main()
