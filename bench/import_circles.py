#!/usr/bin/env python3
"""Import circles between safex's modules: every `crate::a::b` path in a
module's code (tests and comments excluded) is an edge to module `a` (or
`a::b` when `a` is a folder). A folder's `mod.rs` and its own files are a
parent and its children (Rust's module tree: the parent declares them,
they use its types), so edges between them do not count; edges between
sibling files, and between modules elsewhere, do. Prints each strongly
connected component of more than one module.
Usage: bench/import_circles.py [src]"""
import os, re, sys

src = sys.argv[1] if len(sys.argv) > 1 else "src"
folders = {d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))}

def module_of(path):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel in (["lib"], ["main"]):
        return "lib"
    return "::".join(rel[:2]) if rel[0] in folders else rel[0]

def target(segs):
    if segs[0] in folders and len(segs) > 1 and os.path.exists(os.path.join(src, segs[0], segs[1] + ".rs")):
        return segs[0] + "::" + segs[1]
    return segs[0]

edges = {}
for root, _, files in os.walk(src):
    for f in files:
        if not f.endswith(".rs"):
            continue
        p = os.path.join(root, f)
        text = open(p).read()
        text = text.split("#[cfg(test)]")[0]
        # Comments name modules without using them.
        text = "\n".join(l.split("//")[0] for l in text.split("\n"))
        m = module_of(p)
        deps = edges.setdefault(m, set())
        me = m.split("::")
        for g in re.finditer(r"crate::([a-z_]+(?:::[a-z_]+)?)", text):
            t = target(g.group(1).split("::"))
            if t != m:
                deps.add(t)
        # `use super::x` inside a folder module
        for g in re.finditer(r"super::([a-z_]+)", text):
            if len(me) == 2:
                t = me[0] + "::" + g.group(1)
                if os.path.exists(os.path.join(src, me[0], g.group(1) + ".rs")) and t != m:
                    deps.add(t)
# a folder's mod.rs counts as the folder; parent and child do not count
for m in list(edges):
    for d in list(edges[m]):
        if d.split("::")[0] == m or m.split("::")[0] == d:
            edges[m].discard(d)
for m in list(edges):
    for d in list(edges[m]):
        if d not in edges and d.split("::")[0] in folders:
            edges[m].discard(d)
            edges[m].add(d.split("::")[0])

index, low, stack, on, sccs, n = {}, {}, [], set(), [], [0]
def strong(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in edges:
            continue
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v:
                break
        if len(c) > 1:
            sccs.append(sorted(c))
sys.setrecursionlimit(10000)
for v in sorted(edges):
    if v not in index:
        strong(v)
print(f"{len(edges)} modules, {sum(len(d) for d in edges.values())} edges, {len(sccs)} circles")
for c in sccs:
    print("circle:", " ↔ ".join(c))
    for a in c:
        print("   ", a, "→", ", ".join(sorted(d for d in edges[a] if d in c)))
