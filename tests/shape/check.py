#!/usr/bin/env python3
"""The shape of src/, checked (the test command runs it): no source file over 500 lines (test files aside), no import
circle between modules that are not parent and child, and no layer importing one above it
(the order lib.rs gives). Test code (`tests.rs`, `*_tests.rs`, `mod tests`, `testing.rs`) is
left out: it may reach anywhere. Prints each breach and exits 1 if there is any."""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src")
MAX_LINES = 500
# Bottom to top (lib.rs). Leaves every layer may use sit at 0.
RANK = {"metrics": 0, "http": 0, "log_queue": 0,
        "sip": 1, "media": 2, "session": 3, "directory": 4, "ivr": 5,
        "records": 6, "ops": 6, "server": 7, "config": 7, "cli": 8, "main": 8}


def is_test_file(rel):
    name = os.path.basename(rel)
    return name == "tests.rs" or name.endswith("_tests.rs") or "/tests/" in "/" + rel


def module_of(rel):
    parts = rel[:-3].split("/")
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def without_tests(text):
    """The file less its inline `#[cfg(test)] mod tests { ... }` (always last here)."""
    at = re.search(r"^#\[cfg\(test\)\]\nmod \w+ \{", text, re.M)
    return text[: at.start()] if at else text


def paths_in(text):
    text = re.sub(r"//[^\n]*", "", text)
    for m in re.finditer(r"\b((?:crate|super)(?:::\w+)*)::\{([^{}]*)\}", text):
        for item in m.group(2).split(","):
            item = item.strip().split("::")[0].split(" ")[0]
            if item and item != "self":
                yield m.group(1) + "::" + item
            elif item == "self":
                yield m.group(1)
    for m in re.finditer(r"\b(?:crate|super)(?:::\w+)+", text):
        yield m.group(0)


def resolve(path, here, modules):
    parts = path.split("::")
    if parts[0] == "crate":
        base, rest = (), parts[1:]
    else:
        base = here
        while parts and parts[0] == "super":
            base = base[:-1]
            parts = parts[1:]
        rest = parts
    full = base + tuple(rest)
    for n in range(len(full), 0, -1):
        if full[:n] in modules:
            return full[:n]
    return None


def main():
    files, problems = {}, []
    for root, _, names in os.walk(SRC):
        for name in names:
            if name.endswith(".rs"):
                rel = os.path.relpath(os.path.join(root, name), SRC).replace(os.sep, "/")
                files[rel] = open(os.path.join(root, name), encoding="utf-8").read()
    for rel, text in sorted(files.items()):
        lines = text.count("\n")
        if lines > MAX_LINES and not is_test_file(rel):
            problems.append(f"src/{rel}: {lines} lines (at most {MAX_LINES}): split it by idea")
    modules = {module_of(rel) for rel in files if rel not in ("main.rs",)}
    edges = {}
    for rel, text in files.items():
        if is_test_file(rel) or rel in ("main.rs", "testing.rs") or rel.startswith("cli/"):
            continue
        here = module_of(rel)
        for path in paths_in(without_tests(text)):
            to = resolve(path, here, modules)
            if not to or to == here or to[0] == "testing":
                continue
            if to[: len(here)] == here or here[: len(to)] == to:
                continue  # parent and child: a module and the files it is made of
            edges.setdefault(here, set()).add(to)
            a, b = here[0], to[0]
            if a != b and RANK.get(b, 0) > RANK.get(a, 0):
                problems.append(f"src/{rel}: `{path}` reaches up from {a} to {b}")
    # Circles: strongly connected components of more than one module (Tarjan).
    index, low, stack, on, counter, sccs = {}, {}, [], set(), [0], []

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                sccs.append(scc)

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    for scc in sccs:
        names = sorted("::".join(m) for m in scc)
        problems.append("import circle: " + " <-> ".join(names))
    for p in problems:
        print(p)
    print(f"shape: {len(files)} files, {sum(len(e) for e in edges.values())} imports between modules, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
