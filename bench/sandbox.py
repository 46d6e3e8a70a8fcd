#!/usr/bin/env python3
"""What the sandbox costs a warm launch, on real servers.

For each server, three ways to the MCP `initialize` answer, alternated in
--rounds rounds (so load drifts hit all three), each launch timed from the
spawn to the answer:

- safex: `safex -q npx -y <spec>` / `safex -q uvx <spec>`, warm (cached
  and locked), through the relay and in the default sandbox (tier 1);
- no sandbox: the same with `--no-sandbox` (the relay alone);
- floor: the installed entrypoint run directly (`node .../bin.js`, the
  venv's python and console script), as an MCP client would if it trusted
  the tree.

Prints a Markdown table: medians, and safex / floor and no-sandbox / floor.
A server's start (300-500 ms) is noisy on a busy machine, so a second
table isolates what safex itself spends: the same warm launch with
`SAFEX_NODE=/bin/true` (safex does all its work, then execs a program that
exits at once), with and without the sandbox, on the exec path (stdout not
a pipe) and the relay path (stdin and stdout pipes), --micro launches each
in alternating blocks of 20.
npm servers come from the configured registry (`npm config get
registry`, or --registry); a PyPI server needs --pypi-index URL (a local
pypiserver, for example). No registry host is written here.

    cargo build --release
    python3 bench/sandbox.py --rounds 15
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mcp_launch  # noqa: E402  (time_to_initialize, floor_argv, pypi_floor_argv)

NPM = [
    ("@modelcontextprotocol/server-memory@2026.8.31", []),
    ("@modelcontextprotocol/server-everything@2026.8.31", ["stdio"]),
]
PYPI = [("mcp-server-time==2026.10.19", ["--local-timezone", "UTC"])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--safex", default=os.path.join(HERE, "..", "target", "release", "safex"))
    ap.add_argument("--registry")
    ap.add_argument("--pypi-index")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--micro", type=int, default=200)
    a = ap.parse_args()
    registry = a.registry or subprocess.run(
        ["npm", "config", "get", "registry"], capture_output=True, text=True, check=True).stdout.strip()
    work = tempfile.mkdtemp(prefix="safex-bench-sandbox-")
    home = os.path.join(work, "home")
    os.makedirs(home)
    env = {"HOME": home, "PATH": os.environ["PATH"], "SAFEX_NPM_REGISTRY": registry,
           "SAFEX_CACHE_DIR": os.path.join(work, "cache"), "SAFEX_LOCKFILE": os.path.join(work, "safex.lock"),
           "SAFEX_CONFIG": os.path.join(work, "none.toml"), "SAFEX_AUDIT_LOG": os.path.join(work, "audit.log")}
    if a.pypi_index:
        env["SAFEX_PYPI_INDEX"] = a.pypi_index
    servers = [("npx", s, x) for s, x in NPM] + ([("uvx", s, x) for s, x in PYPI] if a.pypi_index else [])
    rows = []
    try:
        for tool, spec, xargs in servers:
            launch = [a.safex, "-q", tool] + (["-y"] if tool == "npx" else [])
            on = launch + [spec] + xargs
            off = launch + ["--no-sandbox", spec] + xargs
            mcp_launch.time_to_initialize(on, env)  # cold: fills the cache and the lock
            floor = (mcp_launch.floor_argv(env["SAFEX_CACHE_DIR"], spec) if tool == "npx"
                     else mcp_launch.pypi_floor_argv(env["SAFEX_CACHE_DIR"], spec)) + xargs
            times = {"safex": [], "no sandbox": [], "floor": []}
            for r in range(a.rounds):
                order = [("safex", on), ("no sandbox", off), ("floor", floor)]
                order = order[r % 3:] + order[:r % 3]
                for name, argv in order:
                    times[name].append(mcp_launch.time_to_initialize(argv, env))
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append((spec, med))
            print(f"{spec}: " + ", ".join(f"{k} {v * 1000:.1f} ms" for k, v in med.items()), file=sys.stderr)
        micro = own_cost(a.safex, env, a.micro) if servers and servers[0][0] == "npx" else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"| server (warm, {a.rounds} rounds) | floor | safex, no sandbox | safex, sandbox | no sandbox / floor | sandbox / floor |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for spec, m in rows:
        print(f"| `{spec}` | {m['floor'] * 1000:.1f} ms | {m['no sandbox'] * 1000:.1f} ms | {m['safex'] * 1000:.1f} ms "
              f"| {m['no sandbox'] / m['floor']:.3f}x | {m['safex'] / m['floor']:.3f}x |")

    if micro:
        print()
        print(f"| safex's own warm path (`SAFEX_NODE=/bin/true`, {a.micro} launches) | no sandbox | sandbox | sandbox adds |")
        print("| --- | ---: | ---: | ---: |")
        for path, (off, on) in micro.items():
            print(f"| {path} | {off * 1000:.2f} ms | {on * 1000:.2f} ms | {(on - off) * 1000:.2f} ms |")


def own_cost(safex, env, n):
    """Medians of (no sandbox, sandbox) per path, with a runtime that exits at once."""
    env = dict(env, SAFEX_NODE="/bin/true")
    spec = NPM[0][0]
    on = [safex, "-q", "npx", "-y", spec]
    off = [safex, "-q", "npx", "-y", "--no-sandbox", spec]
    out = {}
    for path, pipes in (("exec path", False), ("relay path", True)):
        times = {"on": [], "off": []}
        for _ in range(max(1, n // 20)):
            for name, argv in (("off", off), ("on", on)):
                for _ in range(20):
                    start = time.perf_counter()
                    if pipes:
                        subprocess.run(argv, env=env, input=b"", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                    else:
                        subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
                    times[name].append(time.perf_counter() - start)
        out[path] = (statistics.median(times["off"]), statistics.median(times["on"]))
    return out


if __name__ == "__main__":
    main()
