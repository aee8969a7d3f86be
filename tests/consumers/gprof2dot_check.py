"""Run gprof2dot's own command line on a pstats file and print the graph it drew.

    .cache/consumers/venv/bin/python tests/consumers/gprof2dot_check.py FILE [GPROF2DOT_OPTION...]

Needs .ci/install-consumers.sh (the venv with gprof2dot). Runs `python -m gprof2dot -f pstats
[GPROF2DOT_OPTION...] FILE` with this interpreter (the same as the venv's `gprof2dot` script), and
checks that it exits 0 and writes a DOT digraph whose edges join nodes it declared. gprof2dot
leaves out nodes under 0.5% and edges under 0.1% of the total by default: pass `-n0 -e0` to
keep them all.

stdout, on success: one JSON document
  {"consumer": "gprof2dot 2025.4.14", "args": [...the gprof2dot arguments...],
   "nodes": [{"id", "function": first label line (gprof2dot's "module:line:name"),
              "total_pct", "self_pct": numbers or null, "calls": int or null,
              "label": [all label lines], "tooltip": str or null}],
   "edges": [{"from", "to", "pct": number or null, "calls": int or null, "label": [lines]}],
   "dot": "<the DOT text>"}
nodes sorted by function, edges by (from, to) function. Percentages and calls are read from
gprof2dot's default label lines ("12.5%", "(3.0%)", "7×"); with other label options they may be null.
On failure: exit status 1 and one line on stderr, `gprof2dot_check: <stage>: <reason>`.
"""

import json
import os
import re
import subprocess
import sys

NODE = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|[\w.]+)\s*\[(.*)\];\s*$')
EDGE = re.compile(r'^\s*("(?:[^"\\]|\\.)*"|[\w.]+)\s*->\s*("(?:[^"\\]|\\.)*"|[\w.]+)\s*\[(.*)\];\s*$')
ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^,\s\]]+)')
PCT = re.compile(r"^\(?(\d+(?:\.\d+)?)%\)?$")
CALLS = re.compile(r"^(\d+)\u00d7$")


def fail(stage, reason):
    first = str(reason).strip().splitlines()
    sys.stderr.write(f"gprof2dot_check: {stage}: {first[-1] if first else '?'}\n")
    sys.exit(1)


def unquote(text):
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return re.sub(r'\\(.)', lambda m: m.group(1), text[1:-1])
    return text


def attrs(text):
    return {k: v for k, v in ((m.group(1), m.group(2)) for m in ATTR.finditer(text))}


def label_lines(raw):
    # DOT escapes inside a quoted label: \n is a line break, \" a quote, \\ a backslash.
    if raw is None:
        return []
    body = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == '"' else raw
    lines, cur, i = [], [], 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "nlr":
                lines.append("".join(cur))
                cur = []
            else:
                cur.append(nxt)
            i += 2
            continue
        cur.append(c)
        i += 1
    lines.append("".join(cur))
    return lines


def numbers(lines):
    pcts = [(bool(line.startswith("(")), float(m.group(1))) for line in lines[1:] if (m := PCT.match(line))]
    calls = [int(m.group(1)) for line in lines[1:] if (m := CALLS.match(line))]
    plain = [v for paren, v in pcts if not paren]
    paren = [v for paren, v in pcts if paren]
    return (plain[0] if plain else None), (paren[0] if paren else None), (calls[0] if calls else None)


def main(argv):
    if len(argv) < 2:
        fail("usage", "gprof2dot_check.py FILE [GPROF2DOT_OPTION...]")
    path, extra = argv[1], argv[2:]
    try:
        from importlib.metadata import version

        import gprof2dot  # noqa: F401
    except ImportError as e:
        fail("setup", f"{e}: run with .cache/consumers/venv/bin/python (.ci/install-consumers.sh)")
    if not os.path.isfile(path):
        fail("read", f"{path}: no such file")

    args = ["-f", "pstats", *extra, path]
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    proc = subprocess.run([sys.executable, "-m", "gprof2dot", *args], capture_output=True, env=env)
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        lines = stderr.strip().splitlines()
        where = [line.strip() for line in lines if line.strip().startswith("File ")]
        reason = (lines[-1] if lines else "no message") + (f" ({where[-1]})" if where else "")
        fail("gprof2dot", f"exit {proc.returncode}: {reason}")
    dot = proc.stdout.decode("utf-8")
    lines = dot.strip().splitlines()
    if not lines or lines[0].strip() != "digraph {" or lines[-1].strip() != "}":
        fail("dot", "output is not a `digraph { ... }`")

    nodes, edges = {}, []
    for line in lines[1:-1]:
        if m := EDGE.match(line):
            a = attrs(m.group(3))
            label = label_lines(a.get("label"))
            pct, _, calls = numbers([""] + label)
            edges.append({"from": unquote(m.group(1)), "to": unquote(m.group(2)),
                          "pct": pct, "calls": calls, "label": label})
        elif (m := NODE.match(line)) and unquote(m.group(1)) not in ("graph", "node", "edge"):
            a = attrs(m.group(2))
            label = label_lines(a.get("label"))
            total, own, calls = numbers(label)
            nodes[unquote(m.group(1))] = {
                "id": unquote(m.group(1)),
                "function": label[0] if label else None,
                "total_pct": total,
                "self_pct": own,
                "calls": calls,
                "label": label,
                "tooltip": unquote(a["tooltip"]) if "tooltip" in a else None,
            }
    if not nodes:
        fail("dot", "gprof2dot drew no node")
    for e in edges:
        for end in (e["from"], e["to"]):
            if end not in nodes:
                fail("dot", f"edge {e['from']} -> {e['to']} names undeclared node {end}")

    def fn(node_id):
        return nodes[node_id]["function"] or ""

    json.dump({
        "consumer": f"gprof2dot {version('gprof2dot')}",
        "args": args,
        "nodes": sorted(nodes.values(), key=lambda n: (n["function"] or "", n["id"])),
        "edges": sorted(edges, key=lambda e: (fn(e["from"]), fn(e["to"]))),
        "dot": dot,
    }, sys.stdout, indent=1, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
