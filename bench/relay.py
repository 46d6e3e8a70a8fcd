#!/usr/bin/env python3
"""What safex's relay costs per message, on the real server-everything.

One session through `safex npx` (mediated: the client's first line is
JSON-RPC) and one straight to the installed entrypoint (`node
.../dist/index.js`, the floor), in the same environment, each measured
the same way:

- ping: --pings sequential `ping` requests, each timed from writing the
  line to reading its answer; the median and the 90th percentile;
- echo: --echoes sequential `tools/call echo` with a --mib MiB message,
  each timed to its answer (which carries the message back); the median.

The two sessions alternate in --rounds rounds, so load drifts hit both.
Prints a Markdown table. The registry comes from the command line or
`npm config get registry`; no host is written here.

    cargo build --release
    python3 bench/relay.py --rounds 3
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mcp_launch  # noqa: E402  (floor_argv)

SPEC = "@modelcontextprotocol/server-everything@2026.8.31"
INIT = {"protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"}}


class Session:
    def __init__(self, argv, env):
        self.p = subprocess.Popen(argv + ["stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, env=env)
        self.next_id = 0
        self.ask("initialize", INIT)
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, msg):
        self.p.stdin.write(json.dumps(msg).encode() + b"\n")
        self.p.stdin.flush()

    def ask(self, method, params=None):
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            msg["params"] = params
        start = time.perf_counter()
        self.send(msg)
        while True:
            line = self.p.stdout.readline()
            took = time.perf_counter() - start
            if not line:
                raise RuntimeError(f"the server closed stdout before answering {method}")
            if json.loads(line).get("id") == self.next_id:
                return took, len(line)

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=30)


def measure(argv, env, pings, echoes, mib):
    s = Session(argv, env)
    try:
        for _ in range(20):  # warm the JIT and the pipes
            s.ask("ping")
        ping = [s.ask("ping")[0] for _ in range(pings)]
        message = "x" * (mib << 20)
        echo = []
        for _ in range(echoes):
            t, size = s.ask("tools/call", {"name": "echo", "arguments": {"message": message}})
            if size < mib << 20:
                raise RuntimeError(f"the echo answer has {size} bytes")
            echo.append(t)
        return ping, echo
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry")
    ap.add_argument("--safex", default=os.path.join(HERE, "..", "target", "release", "safex"))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pings", type=int, default=300)
    ap.add_argument("--echoes", type=int, default=10)
    ap.add_argument("--mib", type=int, default=5)
    a = ap.parse_args()
    registry = a.registry or subprocess.run(["npm", "config", "get", "registry"], capture_output=True,
                                            text=True, check=True).stdout.strip()
    work = tempfile.mkdtemp(prefix="safex-relay-bench-")
    try:
        env = {"HOME": work, "PATH": os.environ["PATH"], "SAFEX_NPM_REGISTRY": registry,
               "SAFEX_CACHE_DIR": os.path.join(work, "cache"),
               "SAFEX_LOCKFILE": os.path.join(work, "safex.lock"),
               "SAFEX_AUDIT_LOG": os.path.join(work, "audit.log")}
        via = [os.path.abspath(a.safex), "-q", "npx", "-y", SPEC]
        subprocess.run(via + ["--help"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=300)
        direct = mcp_launch.floor_argv(env["SAFEX_CACHE_DIR"], SPEC)
        res = {"safex": ([], []), "direct": ([], [])}
        for r in range(a.rounds):
            order = [("safex", via), ("direct", direct)]
            if r % 2:
                order.reverse()
            for name, argv in order:
                ping, echo = measure(argv, env, a.pings, a.echoes, a.mib)
                res[name][0].extend(ping)
                res[name][1].extend(echo)
        us = lambda x: f"{x * 1e6:.0f} µs"  # noqa: E731
        ms = lambda x: f"{x * 1e3:.1f} ms"  # noqa: E731
        p90 = lambda v: sorted(v)[int(len(v) * 0.9)]  # noqa: E731
        print(f"| {SPEC} | ping median | ping p90 | {a.mib} MiB echo median |")
        print("| --- | --- | --- | --- |")
        for name in ("direct", "safex"):
            ping, echo = res[name]
            print(f"| {name} | {us(statistics.median(ping))} | {us(p90(ping))} | {ms(statistics.median(echo))} |")
        dp, de = (statistics.median(v) for v in res["direct"])
        sp, se = (statistics.median(v) for v in res["safex"])
        print(f"\nrelay: +{(sp - dp) * 1e6:.0f} µs per ping (median), echo {se / de:.2f}x direct; "
              f"{a.rounds} rounds of {a.pings} pings and {a.echoes} echoes each")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
