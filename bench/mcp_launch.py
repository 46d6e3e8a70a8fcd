#!/usr/bin/env python3
"""Time real MCP servers launched through safex, to the `initialize` response.

For each server: cold (empty cache and lockfile), cold with its lockfile
present (empty cache), warm (cached and locked; median of --runs), and the
floor (the installed entrypoint run directly by `node` or the venv's
`python`, same environment). With --uvx, uvx runs the same PyPI servers from
the same index, cold (empty UV_CACHE_DIR) and warm. Prints Markdown tables.
Registry and index URLs come from the command line or `npm config get
registry`; no host is written here.

    cargo build --release
    python3 bench/mcp_launch.py --runs 5                       # npm servers
    python3 bench/mcp_launch.py --pypi-index URL [--uvx PATH]  # and PyPI servers
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

PYPI_SERVERS = [
    ("mcp-server-time==2026.10.19", ["--local-timezone", "UTC"]),
    ("mcp-server-fetch==2026.10.24", []),
    ("mcp-server-git==2026.10.19", []),
]

SERVERS = [
    ("@modelcontextprotocol/server-filesystem@2026.8.31", ["{tmp}"]),
    ("@modelcontextprotocol/server-memory@2026.8.31", []),
    ("@modelcontextprotocol/server-everything@2026.8.31", ["stdio"]),
]

INIT = json.dumps({
    "jsonrpc": "2.0", "id": 1, "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {},
               "clientInfo": {"name": "safex-bench", "version": "0"}},
}) + "\n"


def time_to_initialize(argv, env, timeout=180):
    start = time.perf_counter()
    p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        p.stdin.write(INIT)
        p.stdin.flush()
        deadline = start + timeout
        while time.perf_counter() < deadline:
            line = p.stdout.readline()
            if not line:
                raise RuntimeError(f"{argv[:3]} closed stdout: {p.stderr.read()[-2000:]}")
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("id") == 1:
                if "result" not in msg:
                    raise RuntimeError(f"bad initialize answer: {line}")
                return time.perf_counter() - start
        raise RuntimeError("timeout")
    finally:
        p.kill()
        p.wait()


def count_packages(lockfile, table="npm"):
    with open(lockfile) as f:
        return sum(1 for line in f if line.strip() == f"[[{table}.package]]")


def pypi_floor_argv(cache, spec):
    env_root = os.path.join(cache, "v1", "pypi", "env")
    name = spec.split("==")[0]
    for d in os.listdir(env_root):
        with open(os.path.join(env_root, d, ".safex-env.json")) as f:
            marker = json.load(f)
        if name in marker["scripts"]:
            return [os.path.join(env_root, d, "bin", "python"), os.path.join(env_root, d, "bin", name)]
    raise RuntimeError(f"no venv for {spec}")


def bench_pypi(safex, index, uvx, runs):
    rows = []
    for spec, args in PYPI_SERVERS:
        work = tempfile.mkdtemp(prefix="safex-bench-")
        try:
            env = {"HOME": os.environ.get("HOME", work), "PATH": os.environ["PATH"],
                   "SAFEX_PYPI_INDEX": index, "SAFEX_LOCKFILE": os.path.join(work, "safex.lock"),
                   "SAFEX_CACHE_DIR": os.path.join(work, "cache"), "SAFEX_CONFIG": os.path.join(work, "none.toml")}
            argv = [safex, "-q", "uvx", spec] + args
            cold = time_to_initialize(argv, env)
            shutil.rmtree(env["SAFEX_CACHE_DIR"])
            cold_locked = time_to_initialize(argv, env)
            warm = statistics.median(time_to_initialize(argv, env) for _ in range(runs))
            fl = pypi_floor_argv(env["SAFEX_CACHE_DIR"], spec) + args
            floor = statistics.median(time_to_initialize(fl, env) for _ in range(runs))
            uv_cold = uv_warm = None
            if uvx:
                uenv = {"HOME": env["HOME"], "PATH": env["PATH"], "UV_CACHE_DIR": os.path.join(work, "uv"),
                        "UV_PYTHON_DOWNLOADS": "never", "UV_TOOL_DIR": os.path.join(work, "uvtools")}
                uargv = [uvx, "--index-url", index, "--python", "python3", spec] + args
                uv_cold = time_to_initialize(uargv, uenv)
                uv_warm = statistics.median(time_to_initialize(uargv, uenv) for _ in range(runs))
            rows.append((spec, count_packages(env["SAFEX_LOCKFILE"], "pypi"), cold, cold_locked, warm, floor,
                         uv_cold, uv_warm))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def floor_argv(cache, spec):
    env_root = os.path.join(cache, "v1", "npm", "env")
    for d in os.listdir(env_root):
        with open(os.path.join(env_root, d, ".safex-env.json")) as f:
            marker = json.load(f)
        root = marker["roots"][0]
        if f'{root["name"]}@{root["version"]}' == spec:
            bins = root["bins"]
            unscoped = root["name"].split("/")[-1]
            rel = next(iter(bins.values())) if len(bins) == 1 else bins[unscoped]
            return ["node", os.path.join(env_root, d, root["path"], rel)]
    raise RuntimeError(f"no environment for {spec}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--registry")
    ap.add_argument("--safex", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "safex"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pypi-index", help="simple index URL: also time the PyPI servers")
    ap.add_argument("--uvx", help="path of uvx, to compare on the PyPI servers")
    ap.add_argument("--skip-npm", action="store_true")
    a = ap.parse_args()
    registry = a.registry or subprocess.run(["npm", "config", "get", "registry"], capture_output=True,
                                            text=True, check=True).stdout.strip()
    safex = os.path.abspath(a.safex)
    rows = []
    for spec, args in ([] if a.skip_npm else SERVERS):
        work = tempfile.mkdtemp(prefix="safex-bench-")
        try:
            args = [x.replace("{tmp}", work) for x in args]
            env = {"HOME": os.environ.get("HOME", work), "PATH": os.environ["PATH"],
                   "SAFEX_NPM_REGISTRY": registry, "SAFEX_LOCKFILE": os.path.join(work, "safex.lock"),
                   "SAFEX_CACHE_DIR": os.path.join(work, "cache"), "SAFEX_CONFIG": os.path.join(work, "none.toml")}
            argv = [safex, "-q", "npx", "-y", spec] + args
            cold = time_to_initialize(argv, env)
            shutil.rmtree(env["SAFEX_CACHE_DIR"])
            cold_locked = time_to_initialize(argv, env)
            warm = statistics.median(time_to_initialize(argv, env) for _ in range(a.runs))
            fl = floor_argv(env["SAFEX_CACHE_DIR"], spec) + args
            floor = statistics.median(time_to_initialize(fl, env) for _ in range(a.runs))
            rows.append((spec, count_packages(env["SAFEX_LOCKFILE"]), cold, cold_locked, warm, floor))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; warm and floor are medians of {a.runs}\n")
    print("| server | packages | cold | cold, locked | warm | floor | warm / floor |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for spec, n, cold, cl, warm, floor in rows:
        print(f"| `{spec}` | {n} | {cold*1000:.0f} ms | {cl*1000:.0f} ms | {warm*1000:.0f} ms | {floor*1000:.0f} ms | {warm/floor:.2f}x |")
    if a.pypi_index:
        prow = bench_pypi(safex, a.pypi_index, a.uvx, a.runs)
        ms = lambda t: "-" if t is None else f"{t*1000:.0f} ms"
        print("\n| server | packages | safex cold | safex cold, locked | safex warm | floor | uvx cold | uvx warm |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for spec, n, cold, cl, warm, floor, uc, uw in prow:
            print(f"| `{spec}` | {n} | {ms(cold)} | {ms(cl)} | {ms(warm)} | {ms(floor)} | {ms(uc)} | {ms(uw)} |")


if __name__ == "__main__":
    sys.exit(main())
