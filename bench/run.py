#!/usr/bin/env python3
"""safex against npx, pnpm dlx, bun x and uvx, to the MCP `initialize` response.

For each server, in one run:

- cold: an empty cache of its own for every launcher (and, for safex, no
  lockfile); the median of --cold-runs, taken in interleaved rounds (the
  launcher order rotated each round);
- cold, locked: safex with the lockfile from its cold run but an empty cache;
  in the same rounds;
- warm: caches filled (median of --runs);
- floor: the installed entrypoint run directly by `node` / the venv's
  `python` (safex's own environment, median of --runs, each launch
  alternated with one of safex's warm launches).

Nothing is deleted while the benchmark runs (see Trash): a deleted tree
makes file creation slow for about half a minute on the VM it was written
on. The run starts after a --settle pause for the same reason.

Per launch: wall time to the `initialize` answer; CPU time (user + system)
of the launcher and every descendant it reaped, and peak RSS of the largest
process in that tree, from `os.wait4` (the server is stopped by closing its
stdin, so the launcher reaps it and the rusage covers the whole launch; a
launcher that does not exit within 10 s is killed and its numbers marked);
received: the bytes every network interface of the machine (loopback
included) received during the cold launch, median of the rounds, so
metadata, archives and TLS for every launcher alike (and whatever else the
machine received meanwhile: run it on a quiet machine); cache: safex the
size of the files its cold run added under `blobs/` (archives only), the
peers the size of their cache directories after cold; packages:
safex's lockfile, the peers the packages found in their caches.

The peers are installed by this script, at the pinned versions below, under
--tools (default `target/bench-tools/`): pnpm and bun with the machine's npm
from its configured registry, uv with `python3 -m pip`. PyPI servers need a
simple index: --pypi-index URL, or this script downloads the servers' wheels
(`pip download --only-binary=:all:`) and serves them with a pinned
pypiserver on 127.0.0.1. No registry host is written here: the npm registry
comes from `npm config get registry` (or --registry), PyPI from pip's own
configuration.

    cargo build --release
    python3 bench/run.py                       # everything, chart in docs/benchmarks.png
    python3 bench/run.py --only safex,bun --runs 5 --skip-pypi
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mcp_launch  # noqa: E402  (INIT, floor_argv, pypi_floor_argv, count_packages)

PNPM_VERSION = "12.21.0"
BUN_VERSION = "1.4.5"
UV_VERSION = "0.13.9"
NPX = "npx"  # the machine's own npm
PYPISERVER_REQS = ["pypiserver==2.4.2", "passlib==1.7.4", "packaging==26.3",
                   "importlib-resources==7.1.0; python_version < '3.12'",
                   "legacy-cgi==2.6.4; python_version >= '3.13'"]
MATPLOTLIB_REQ = "matplotlib==3.11.2"

NPM_SERVERS = [
    ("@modelcontextprotocol/server-filesystem@2026.8.31", ["{tmp}"]),
    ("@modelcontextprotocol/server-memory@2026.8.31", []),
]
PYPI_SERVERS = [
    ("mcp-server-time==2026.10.19", ["--local-timezone", "UTC"]),
    ("mcp-server-git==2026.10.19", []),
]

NPM_LAUNCHERS = ["safex", "npx", "pnpm", "bun"]
PYPI_LAUNCHERS = ["safex", "uvx"]


def log(*a):
    print("[bench]", *a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- one launch

class Launch:
    def __init__(self, wall, cpu, rss_kb, killed):
        self.wall, self.cpu, self.rss_kb, self.killed = wall, cpu, rss_kb, killed


def launch(argv, env, cwd, timeout=300):
    """Start argv, send `initialize`, wait for its answer, close stdin and
    reap the launcher with wait4. Returns a Launch."""
    start = time.perf_counter()
    p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    err = []
    t = threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)
    t.start()
    wall = None
    try:
        p.stdin.write(mcp_launch.INIT.encode())
        p.stdin.flush()
        deadline = start + timeout
        while time.perf_counter() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if msg.get("id") == 1:
                if "result" not in msg:
                    raise RuntimeError(f"bad initialize answer: {line[:500]!r}")
                wall = time.perf_counter() - start
                break
    finally:
        try:
            p.stdin.close()
        except OSError:
            pass
        killed = False
        reaped = None
        end = time.monotonic() + (10 if wall is not None else 0)
        while reaped is None:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid == p.pid:
                reaped = ru
                p.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > end:
                killed = True
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                _, status, ru = os.wait4(p.pid, 0)
                reaped = ru
                p.returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.005)
        # Whatever the launcher left behind in its session.
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        p.stdout.close()
        t.join(5)
    if wall is None:
        tail = (err[0] if err else b"").decode(errors="replace")[-1500:]
        raise RuntimeError(f"{' '.join(argv[:4])}: no initialize answer: {tail}")
    return Launch(wall, reaped.ru_utime + reaped.ru_stime, reaped.ru_maxrss, killed)


def median_of(ls):
    """Wall, CPU and RSS medians (each on its own) of launches; killed if any was."""
    return Launch(statistics.median(x.wall for x in ls), statistics.median(x.cpu for x in ls),
                  statistics.median(x.rss_kb for x in ls), any(x.killed for x in ls))


def median_launch(argv, env, cwd, runs):
    return median_of([launch(argv, env, cwd) for _ in range(runs)])


# ---------------------------------------------------------------- sizes and counts

def tree_bytes(*roots):
    """Bytes of regular files under roots, each inode once, symlinks not followed."""
    seen, total = set(), 0
    for root in roots:
        for d, _, files in os.walk(root):
            for f in files:
                try:
                    st = os.lstat(os.path.join(d, f))
                except OSError:
                    continue
                if not os.path.isfile(os.path.join(d, f)) or os.path.islink(os.path.join(d, f)):
                    continue
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def new_files_bytes(root, before):
    total = 0
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if p not in before:
                total += os.lstat(p).st_size
    return total


def list_files(root):
    out = set()
    for d, _, files in os.walk(root):
        for f in files:
            out.add(os.path.join(d, f))
    return out


def count_node_packages(*roots):
    """Distinct name@version of packages found in node_modules directories."""
    seen = set()
    for root in roots:
        for d, dirs, _ in os.walk(root):
            if os.path.basename(d) != "node_modules":
                continue
            for name in dirs:
                cands = [os.path.join(d, name)]
                if name.startswith("@"):
                    try:
                        cands = [os.path.join(d, name, n) for n in os.listdir(os.path.join(d, name))]
                    except OSError:
                        cands = []
                for c in cands:
                    pj = os.path.join(c, "package.json")
                    if os.path.islink(c) or not os.path.isfile(pj):
                        continue
                    try:
                        with open(pj) as f:
                            m = json.load(f)
                        seen.add((m.get("name"), m.get("version")))
                    except (OSError, ValueError):
                        pass
    return len(seen) or None


def count_dist_infos(*roots):
    seen = set()
    for root in roots:
        for d, dirs, _ in os.walk(root):
            for n in dirs:
                if n.endswith(".dist-info"):
                    seen.add(n.lower())
    return len(seen) or None


# ---------------------------------------------------------------- tools

def run(argv, **kw):
    log("$", " ".join(argv))
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, **kw)


def pip_env():
    env = dict(os.environ)
    env.pop("PIP_FIND_LINKS", None)  # the machine's own pip index only
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def ensure_npm_tools(tools, registry):
    prefix = os.path.join(tools, f"npm-pnpm{PNPM_VERSION}-bun{BUN_VERSION}")
    bins = os.path.join(prefix, "node_modules", ".bin")
    found = {}
    for name, pkg in (("pnpm", f"pnpm@{PNPM_VERSION}"), ("bun", f"bun@{BUN_VERSION}")):
        exe = os.path.join(bins, name)
        if not os.path.exists(exe):
            try:
                run(["npm", "install", "--prefix", prefix, "--no-audit", "--no-fund", "--registry", registry, pkg],
                    stdout=subprocess.DEVNULL)
            except subprocess.CalledProcessError as e:
                log(f"cannot install {pkg}: {e}; skipping {name}")
                continue
        try:
            v = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout.strip()
            found[name] = (exe, v.splitlines()[-1])
        except (OSError, subprocess.CalledProcessError) as e:
            log(f"{name} does not run here ({e}); skipping it")
    return found


def ensure_uv(tools):
    target = os.path.join(tools, f"uv-{UV_VERSION}")
    exe = os.path.join(target, "bin", "uvx")
    if not os.path.exists(exe):
        run([sys.executable, "-m", "pip", "install", "--quiet", "--target", target, f"uv=={UV_VERSION}"], env=pip_env())
    return exe


def ensure_venv(path, reqs):
    py = os.path.join(path, "bin", "python")
    if not os.path.exists(os.path.join(path, ".complete")):
        shutil.rmtree(path, ignore_errors=True)
        run([sys.executable, "-m", "venv", path])
        run([py, "-m", "pip", "install", "--quiet", "--only-binary=:all:"] + reqs, env=pip_env())
        open(os.path.join(path, ".complete"), "w").close()
    return py


def ensure_wheelhouse(tools, specs):
    key = "-".join(s.replace("==", "-") for s in specs)
    house = os.path.join(tools, "wheels-" + key)
    if not os.path.exists(os.path.join(house, ".complete")):
        shutil.rmtree(house, ignore_errors=True)
        run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", house] + specs,
            env=pip_env())
        open(os.path.join(house, ".complete"), "w").close()
    return house


def start_pypiserver(tools, house):
    py = ensure_venv(os.path.join(tools, "pypiserver-venv"), PYPISERVER_REQS)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    logf = open(os.path.join(tools, "pypiserver.log"), "w")
    p = subprocess.Popen([os.path.join(os.path.dirname(py), "pypi-server"), "run", "-i", "127.0.0.1", "-p", str(port),
                          "--disable-fallback", "--hash-algo", "sha256", "-P", ".", "-a", ".", house],
                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    url = f"http://127.0.0.1:{port}/simple/"
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return p, url
        except OSError:
            if p.poll() is not None:
                raise RuntimeError("pypiserver exited; see " + logf.name)
            time.sleep(0.1)
    p.kill()
    raise RuntimeError("pypiserver did not start")


# ---------------------------------------------------------------- launchers

class LoadSampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.samples, self.stop = [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self.stop.wait(5)


def base_env(work):
    tmp = os.path.join(work, "tmp")
    os.makedirs(tmp, exist_ok=True)
    env = {"HOME": os.environ.get("HOME", work), "PATH": os.environ["PATH"], "TMPDIR": tmp,
           "LANG": os.environ.get("LANG", "C.UTF-8")}
    for k in ("SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
              "no_proxy", "NO_PROXY"):
        if k in os.environ:
            env[k] = os.environ[k]
    return env


def npm_launcher(name, exe, registry, spec, args, work):
    """(argv, env, cache dirs measured, package-count roots) for one peer."""
    env = base_env(work)
    env["npm_config_registry"] = registry
    env["npm_config_update_notifier"] = "false"
    env["npm_config_fund"] = "false"
    env["npm_config_audit"] = "false"
    if name == "npx":
        env["npm_config_cache"] = os.path.join(work, "npm-cache")
        return [NPX, "-y", spec] + args, env, [os.path.join(work, "npm-cache", "_cacache")], [work]
    if name == "pnpm":
        env["XDG_DATA_HOME"] = os.path.join(work, "xdg-data")
        env["XDG_CACHE_HOME"] = os.path.join(work, "xdg-cache")
        env["XDG_STATE_HOME"] = os.path.join(work, "xdg-state")
        env["PNPM_HOME"] = os.path.join(work, "pnpm-home")
        store = os.path.join(work, "pnpm-store")
        cache = os.path.join(work, "pnpm-cache")
        return ([exe, "--store-dir", store, "--cache-dir", cache, "dlx", spec] + args, env,
                [store, cache], [work])
    if name == "bun":
        env["BUN_INSTALL_CACHE_DIR"] = os.path.join(work, "bun-cache")
        env["BUN_INSTALL"] = os.path.join(work, "bun-home")
        env["BUN_CONFIG_REGISTRY"] = registry
        env["DO_NOT_TRACK"] = "1"
        return [exe, "x", spec] + args, env, [os.path.join(work, "bun-cache")], [work]
    raise ValueError(name)


class Setup:
    """One launcher's command for one server in one work dir: argv and env; size() and packages() read
    after its cold launch; for safex also its cache dir and floor() (the floor's argv, once installed)."""

    def __init__(self, argv, env, work, size, packages, cache=None, floor=None):
        self.argv, self.env, self.work = argv, env, work
        self.size, self.packages, self.cache, self.floor = size, packages, cache, floor


def setup_launcher(name, kind, spec, args, work, ctx):
    xargs = [x.replace("{tmp}", work) for x in args]
    if name == "safex":
        env = base_env(work)
        cache = os.path.join(work, "cache")
        lock = os.path.join(work, "safex.lock")
        env.update({"SAFEX_LOCKFILE": lock, "SAFEX_CACHE_DIR": cache, "SAFEX_CONFIG": os.path.join(work, "none.toml"),
                    "SAFEX_AUDIT_LOG": os.path.join(work, "audit.log")})
        if kind == "npm":
            env["SAFEX_NPM_REGISTRY"] = ctx["registry"]
            argv = [ctx["safex"], "-q", "npx", "-y", spec] + xargs
            floor = lambda: mcp_launch.floor_argv(cache, spec) + xargs
        else:
            env["SAFEX_PYPI_INDEX"] = ctx["index"]
            argv = [ctx["safex"], "-q", "uvx", spec] + xargs
            floor = lambda: mcp_launch.pypi_floor_argv(cache, spec) + xargs
        blobs = os.path.join(cache, "v1", "blobs")
        return Setup(argv, env, work, lambda: new_files_bytes(blobs, set()),
                     lambda: mcp_launch.count_packages(lock, kind), cache, floor)
    if name == "uvx":
        env = base_env(work)
        ucache = os.path.join(work, "uv-cache")
        env.update({"UV_CACHE_DIR": ucache, "UV_TOOL_DIR": os.path.join(work, "uv-tools"),
                    "UV_PYTHON_DOWNLOADS": "never", "UV_NO_CONFIG": "1"})
        argv = [ctx["uvx"], "--index-url", ctx["index"], "--python", "python3", spec] + xargs
        return Setup(argv, env, work, lambda: tree_bytes(ucache), lambda: count_dist_infos(ucache))
    exe = ctx.get("peers", {}).get(name, (None,))[0]
    argv, env, dirs, roots = npm_launcher(name, exe, ctx["registry"], spec, xargs, work)
    return Setup(argv, env, work, lambda: tree_bytes(*[d for d in dirs if os.path.exists(d)]),
                 lambda: count_node_packages(*roots))


class Trash:
    """Work dirs and caches are moved aside, not deleted, until the run is over. On a filesystem without a
    journal (this benchmark's VM), ext4 skips inodes freed in the last ~30 s when it allocates new ones
    (`recently_deleted`), one by one: for half a minute after a big tree is deleted, creating files costs
    10-30x as much. Deleting between samples would make every cold launch pay for the previous one's
    cleanup. A rename frees no inode."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="safex-bench-trash-")
        self.n = 0

    def discard(self, path):
        if os.path.lexists(path):
            self.n += 1
            os.rename(path, os.path.join(self.dir, str(self.n)))

    def empty(self):
        shutil.rmtree(self.dir, ignore_errors=True)


TRASH = None


def net_rx():
    """Bytes received so far by every network interface of the machine, loopback included."""
    total = 0
    for iface in os.listdir("/sys/class/net"):
        try:
            with open(f"/sys/class/net/{iface}/statistics/rx_bytes") as f:
                total += int(f.read())
        except (OSError, ValueError):
            pass
    return total


def counted_launch(s, samples, key):
    """A launch, with the bytes the machine received meanwhile under samples[key + "_rx"]."""
    before = net_rx()
    samples[key].append(launch(s.argv, s.env, s.work))
    samples.setdefault(key + "_rx", []).append(net_rx() - before)


def cold_round(name, s, first, a, samples):
    """One round for one launcher: a cold launch (safex: no lockfile); for safex then its cache moved
    aside and a cold launch with the lockfile just written. Cache bytes and packages from the first round."""
    counted_launch(s, samples, "cold")
    if first:
        samples["bytes"], samples["packages"] = s.size(), s.packages()
    if name == "safex":
        TRASH.discard(s.cache)
        counted_launch(s, samples, "cold_locked")
        if first:
            samples["bytes_locked"] = s.size()


def bench_server(kind, spec, args, launchers, a, ctx):
    """--cold-runs interleaved rounds of cold launches (the launcher order rotated each round, every
    sample in a fresh work dir, moved to the trash after it), then warm and floor in the last round's
    work dirs, kept for that."""
    if not launchers:
        return {}
    samples = {n: {"cold": [], "cold_locked": []} for n in launchers}
    failed, kept = {}, {}
    try:
        for rnd in range(a.cold_runs):
            k = rnd % len(launchers)
            last = rnd == a.cold_runs - 1
            for name in launchers[k:] + launchers[:k]:
                if name in failed:
                    continue
                work = tempfile.mkdtemp(prefix=f"safex-bench-{name}-")
                try:
                    log(f"{spec}: {name} cold {rnd + 1}/{a.cold_runs}")
                    s = setup_launcher(name, kind, spec, args, work, ctx)
                    cold_round(name, s, rnd == 0, a, samples[name])
                    if last:
                        kept[name] = s
                except Exception as e:  # one launcher failing does not end the run
                    log(f"{spec}: {name} failed: {e}")
                    failed[name] = str(e)[:300]
                finally:
                    if name not in kept:
                        TRASH.discard(work)
        out = {}
        for name in launchers:
            if name in failed:
                out[name] = {"error": failed[name]}
                continue
            s, sm = kept[name], samples[name]
            try:
                log(f"{spec}: {name} warm")
                r = {"cold": median_of(sm["cold"]), "bytes": sm["bytes"], "packages": sm["packages"],
                     "rx": statistics.median(sm["cold_rx"])}
                if sm.get("cold_locked_rx"):
                    r["rx_locked"] = statistics.median(sm["cold_locked_rx"])
                if sm["cold_locked"]:
                    r["cold_locked"] = median_of(sm["cold_locked"])
                    r["bytes_locked"] = sm["bytes_locked"]
                if s.floor:
                    # Alternated, so that warm and floor meet the same moments of the machine.
                    fl = s.floor()
                    warm, floor = [], []
                    for _ in range(a.runs):
                        warm.append(launch(s.argv, s.env, s.work))
                        floor.append(launch(fl, s.env, s.work))
                    r["warm"], r["floor"] = median_of(warm), median_of(floor)
                else:
                    r["warm"] = median_launch(s.argv, s.env, s.work, a.runs)
                r["cold_samples"] = sm["cold"]
                if sm["cold_locked"]:
                    r["cold_locked_samples"] = sm["cold_locked"]
                out[name] = r
            except Exception as e:
                log(f"{spec}: {name} failed: {e}")
                out[name] = {"error": str(e)[:300]}
        return out
    finally:
        for s in kept.values():
            TRASH.discard(s.work)


# ---------------------------------------------------------------- output

def fmt_ms(x):
    return f"{x * 1000:.0f} ms"


def mib(b):
    return "-" if b is None else f"{b / 1048576:.1f} MiB"


def walls(r, key):
    """The walls of the individual samples behind r[key] (cold, cold_locked); [] in files from before they
    were kept."""
    return [x.wall for x in r.get(key + "_samples") or []]


def spread(r, key):
    ws = walls(r, key)
    return f"{min(ws) * 1000:.0f}–{max(ws) * 1000:.0f}" if len(ws) > 1 else ""


def table(results, versions):
    lines = ["| server | launcher | cold | cold, locked | warm | cold / floor | warm / floor | CPU cold | CPU warm "
             "| peak RSS (warm) | received (cold) | cache (cold) | packages |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for spec, res in results.items():
        floor = res.get("safex", {}).get("floor")
        fl = floor.wall if floor else None
        first = True
        if floor:
            lines.append(f"| `{spec}` | floor | | | {fmt_ms(fl)} | | 1.00x | | {floor.cpu:.2f} s "
                         f"| {floor.rss_kb / 1024:.0f} MiB | | | |")
            first = False
        for name, r in res.items():
            label = f"{name} {versions.get(name, '')}".strip()
            s = "" if not first else f"`{spec}`"
            first = False
            if "error" in r:
                lines.append(f"| {s} | {label} | failed: {r['error'][:80]!s} | | | | | | | | | | |")
                continue
            cl = r.get("cold_locked")
            ratio = lambda x: f"{x / fl:.2f}x" if fl else "-"
            k = " (killed)" if r["cold"].killed or r["warm"].killed or (cl and cl.killed) else ""
            cold = fmt_ms(r["cold"].wall) + (f" ({spread(r, 'cold')})" if spread(r, "cold") else "")
            locked = "-"
            if cl:
                locked = fmt_ms(cl.wall) + " (" + "; ".join(x for x in (spread(r, "cold_locked"), ratio(cl.wall)) if x) + ")"
            received = mib(r.get("rx"))
            if r.get("rx_locked") is not None:
                received += f" (locked {mib(r['rx_locked'])})"
            lines.append(
                f"| {s} | {label}{k} | {cold} | {locked} "
                f"| {fmt_ms(r['warm'].wall)} | {ratio(r['cold'].wall)} | {ratio(r['warm'].wall)} "
                f"| {r['cold'].cpu:.2f} s | {r['warm'].cpu:.2f} s | {r['warm'].rss_kb / 1024:.0f} MiB "
                f"| {received} | {mib(r['bytes'])} | {r['packages'] if r['packages'] is not None else '-'} |")
    return "\n".join(lines)


def chart(results):
    """Per server with a floor: (spec, floor wall, bars); a bar is (launcher, cold, warm, cold locked or None,
    cold min, cold max, cold locked min, cold locked max), all as ratios to the floor, the min and max None
    when there is a single sample (or none kept)."""
    data = []
    for spec, res in results.items():
        floor = res.get("safex", {}).get("floor")
        if not floor:
            continue
        bars = []
        for name, r in res.items():
            if "error" in r:
                continue
            f = lambda x: x / floor.wall if x is not None else None
            lim = lambda ws: (f(min(ws)), f(max(ws))) if len(ws) > 1 else (None, None)
            bars.append((name, f(r["cold"].wall), f(r["warm"].wall), f(r["cold_locked"].wall) if "cold_locked" in r
                         else None) + lim(walls(r, "cold")) + lim(walls(r, "cold_locked")))
        data.append((spec, floor.wall, bars))
    return data


PLOT = r'''
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
data = json.load(open(sys.argv[1]))
out = sys.argv[2]
colors = {"safex": "#1b7837", "npx": "#c51b7d", "pnpm": "#f1a340", "bun": "#8073ac", "uvx": "#2166ac"}
fig, axes = plt.subplots(1, len(data), figsize=(4.2 * len(data), 4.6), sharey=True)
if len(data) == 1:
    axes = [axes]
highest = 1.0
for ax, (spec, floor, bars) in zip(axes, data):
    xs = range(len(bars))
    w = 0.27
    for i, bar in enumerate(bars):
        name, cold, warm, locked = bar[:4]
        cold_lo, cold_hi, locked_lo, locked_hi = (list(bar[4:]) + [None] * 4)[:4]
        c = colors.get(name, "gray")
        tops = {}
        for x, v, lo, hi, style in ((i - w, cold, cold_lo, cold_hi, dict(alpha=0.45, edgecolor=c, hatch="//")),
                                    (i, locked, locked_lo, locked_hi, dict(alpha=0.7, edgecolor=c, hatch="..")),
                                    (i + w, warm, None, None, dict(edgecolor="black"))):
            if v is None:
                continue
            err = dict(yerr=[[v - lo], [hi - v]], capsize=2, error_kw=dict(lw=0.8)) if lo is not None else {}
            ax.bar(x, v, w, color=c, **style, **err)
            tops[x] = (v, max(v, hi) if hi is not None else v)
            highest = max(highest, tops[x][1])
        for x, (v, top) in tops.items():
            ax.text(x, top * 1.04, f"{v:.1f}" if v >= 1.995 else f"{v:.2f}", ha="center", va="bottom", fontsize=7,
                    rotation=90)
    ax.axhline(1.0, color="black", lw=0.8, ls="--")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([b[0] for b in bars])
    ax.set_yscale("log")
    fmt = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x")
    ax.yaxis.set_major_formatter(fmt)
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x" if v in (0.5, 2, 3, 5, 20, 30) else ""))
    ax.set_title(f"{spec}\nfloor {floor * 1000:.0f} ms", fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.25)
axes[0].set_ylim(top=highest * 1.5)  # room for the labels above the bars (the axes share y)
axes[0].set_ylabel("time to initialize / floor (log)")
from matplotlib.patches import Patch
from matplotlib.lines import Line2D
handles = [Patch(facecolor="white", edgecolor="black", hatch="//", label="cold (empty cache), median"),
           Patch(facecolor="white", edgecolor="black", hatch="..", label="cold with lockfile (safex), median"),
           Patch(facecolor="gray", edgecolor="black", label="warm, median")]
if any(b[4:] and b[4] is not None for _, _, bars in data for b in bars):
    handles.append(Line2D([], [], color="black", marker="_", markersize=6, lw=0.8, label="min-max of the cold samples"))
fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8)
fig.tight_layout(rect=(0, 0.07, 1, 1))
fig.savefig(out, dpi=110)
'''


def svg_chart(data, path):
    """Fallback without matplotlib: one linear-scale SVG bar chart."""
    w_server, h = 260, 300
    W = w_server * len(data)
    top = max((max(c, wm, l or 0, *[x for x in rest if x]) for _, _, bars in data for _, c, wm, l, *rest in bars),
              default=1)
    import math
    scale = lambda v: 30 + (h - 80) * (1 - math.log10(max(v, 1)) / max(math.log10(top), 1e-9))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" font-family="sans-serif" font-size="10">']
    for k, (spec, floor, bars) in enumerate(data):
        x0 = k * w_server + 10
        parts.append(f'<text x="{x0}" y="14">{spec} (floor {floor * 1000:.0f} ms)</text>')
        for i, (name, cold, warm, locked, *rest) in enumerate(bars):
            lims = (list(rest) + [None] * 4)[:4]
            for j, (v, fill, lo, hi) in enumerate(((cold, "#bbb", lims[0], lims[1]), (locked, "#888", lims[2], lims[3]),
                                                   (warm, "#333", None, None))):
                if v is None:
                    continue
                x = x0 + i * 60 + j * 16
                y = scale(v)
                parts.append(f'<rect x="{x}" y="{y:.1f}" width="14" height="{h - 50 - y:.1f}" fill="{fill}"/>')
                if lo is not None:
                    parts.append(f'<line x1="{x + 7}" x2="{x + 7}" y1="{scale(lo):.1f}" y2="{scale(hi):.1f}" '
                                 f'stroke="black"/>')
                parts.append(f'<text x="{x}" y="{min(y, scale(hi) if hi else y) - 2:.1f}" font-size="8">{v:.1f}</text>')
            parts.append(f'<text x="{x0 + i * 60}" y="{h - 35}">{name}</text>')
    parts.append(f'<text x="10" y="{h - 10}">ratio to floor, log scale; light: cold, mid: cold with lock, dark: warm (medians; lines: min-max of the cold samples)</text>')
    parts.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(parts))


def render(data, png, tools):
    # The chart's data goes to a file of its own in --tools (not next to the chart, where it could be the --json
    # file itself).
    os.makedirs(tools, exist_ok=True)
    fd, js = tempfile.mkstemp(prefix="chart-", suffix=".json", dir=tools)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    try:
        py = ensure_venv(os.path.join(tools, "matplotlib-venv"), [MATPLOTLIB_REQ])
        script = os.path.join(tools, "plot.py")
        with open(script, "w") as f:
            f.write(PLOT)
        run([py, script, js, png])
        return png
    except (subprocess.CalledProcessError, OSError) as e:
        svg = os.path.splitext(png)[0] + ".svg"
        log(f"matplotlib unavailable ({e}); writing {svg} instead")
        svg_chart(data, svg)
        return svg
    finally:
        os.unlink(js)


def to_json(v):
    if isinstance(v, Launch):
        return v.__dict__
    if isinstance(v, list):
        return [to_json(x) for x in v]
    return v


def from_json(v):
    """A value of --json's file back: Launch for a launch, a list of them for the samples; files written
    before the samples were kept simply lack those keys."""
    if isinstance(v, dict):
        return Launch(**v)
    if isinstance(v, list):
        return [from_json(x) for x in v]
    return v


def configured_pypi_index():
    """The index pip would use: PIP_INDEX_URL, then pip's configuration,
    then pip's built-in default (asked of pip, never written here)."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    got = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                         capture_output=True, text=True)
    if got.returncode == 0 and got.stdout.strip():
        return got.stdout.strip()
    return subprocess.run([sys.executable, "-c", "from pip._internal.models.index import PyPI; print(PyPI.simple_url)"],
                          capture_output=True, text=True, check=True).stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--registry", help="npm registry URL (default: `npm config get registry`)")
    ap.add_argument("--pypi-index",
                    help="simple index URL, or `configured` for the index this machine's pip uses (the real "
                         "index, files wherever it serves them from); default: serve pip-downloaded wheels "
                         "locally with pypiserver")
    ap.add_argument("--safex", default=os.path.join(HERE, "..", "target", "release", "safex"))
    ap.add_argument("--tools", default=os.path.join(HERE, "..", "target", "bench-tools"),
                    help="where the pinned peers, pypiserver and matplotlib are installed (reused)")
    ap.add_argument("--runs", type=int, default=3, help="warm and floor launches per median")
    ap.add_argument("--cold-runs", type=int, default=3,
                    help="cold (and, for safex, cold-with-lock) launches per launcher and server, in interleaved "
                         "rounds; the figures are their medians")
    ap.add_argument("--settle", type=float, default=35.0, metavar="SECONDS",
                    help="pause before the first launch, so that no earlier deletion slows file creation (see "
                         "Trash); nothing is deleted during the run")
    ap.add_argument("--only", help="comma-separated launchers (safex,npx,pnpm,bun,uvx)")
    ap.add_argument("--skip-npm", action="store_true")
    ap.add_argument("--skip-pypi", action="store_true")
    ap.add_argument("--chart", default=os.path.join(HERE, "..", "docs", "benchmarks.png"))
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--replot", metavar="JSON", help="only redraw the chart from a file written by --json")
    a = ap.parse_args()
    if a.runs < 1 or a.cold_runs < 1 or a.settle < 0:
        ap.error("--runs and --cold-runs must be at least 1, --settle not negative")
    if a.replot:
        with open(a.replot) as f:
            raw = json.load(f)
        results = {spec: {n: {k: from_json(v) for k, v in r.items()} for n, r in res.items()}
                   for spec, res in raw.items()}
        print("chart:", render(chart(results), os.path.abspath(a.chart), os.path.abspath(a.tools)))
        return
    only = set(a.only.split(",")) if a.only else None
    tools = os.path.abspath(a.tools)
    os.makedirs(tools, exist_ok=True)
    safex = os.path.abspath(a.safex)
    if not os.access(safex, os.X_OK):
        sys.exit(f"no safex at {safex}: run `cargo build --release`")
    ctx = {"safex": safex}
    versions = {"safex": subprocess.run([safex, "--version"], capture_output=True, text=True).stdout.split()[-1]}
    ctx["registry"] = a.registry or subprocess.run(["npm", "config", "get", "registry"], capture_output=True,
                                                   text=True, check=True).stdout.strip()
    npm_l = [x for x in NPM_LAUNCHERS if not only or x in only]
    pypi_l = [x for x in PYPI_LAUNCHERS if not only or x in only]
    if not a.skip_npm:
        versions["npx"] = subprocess.run(["npm", "--version"], capture_output=True, text=True).stdout.strip()
        if {"pnpm", "bun"} & set(npm_l):
            ctx["peers"] = ensure_npm_tools(tools, ctx["registry"])
            for n in ("pnpm", "bun"):
                if n in ctx["peers"]:
                    versions[n] = ctx["peers"][n][1]
                elif n in npm_l:
                    npm_l.remove(n)
    server = None
    if not a.skip_pypi:
        if "uvx" in pypi_l:
            ctx["uvx"] = ensure_uv(tools)
            versions["uvx"] = UV_VERSION
        if a.pypi_index == "configured":
            ctx["index"] = configured_pypi_index()
            log("PyPI: the configured index (pip's own configuration)")
        elif a.pypi_index:
            ctx["index"] = a.pypi_index
        else:
            house = ensure_wheelhouse(tools, [s for s, _ in PYPI_SERVERS])
            server, ctx["index"] = start_pypiserver(tools, house)
    global TRASH
    TRASH = Trash()
    if a.settle > 0:
        log(f"settling {a.settle:g} s")
        time.sleep(a.settle)
    sampler = LoadSampler()
    sampler.start()
    started = time.time()
    results = {}
    try:
        if not a.skip_npm:
            for spec, args in NPM_SERVERS:
                results[spec] = bench_server("npm", spec, args, npm_l, a, ctx)
        if not a.skip_pypi:
            for spec, args in PYPI_SERVERS:
                results[spec] = bench_server("pypi", spec, args, pypi_l, a, ctx)
    finally:
        sampler.stop.set()
        if server:
            server.terminate()
            server.wait()
        TRASH.empty()
    load = os.getloadavg()
    s = sampler.samples or [load[0]]
    print(f"load average (1 min) during the run: min {min(s):.2f}, mean {statistics.mean(s):.2f}, max {max(s):.2f}; "
          f"at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs; "
          f"{time.time() - started:.0f} s; warm and floor are medians of {a.runs}; cold and cold, locked are "
          f"medians of {a.cold_runs} interleaved rounds (min–max of wall in parentheses); nothing deleted during "
          f"the run, {a.settle:g} s settle before it\n")
    print(table(results, versions))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({spec: {n: {k: to_json(v) for k, v in r.items()} for n, r in res.items()}
                       for spec, res in results.items()}, f, indent=1)
    data = chart(results)
    if data:
        print("\nchart:", render(data, os.path.abspath(a.chart), tools))


if __name__ == "__main__":
    sys.exit(main())
