"""Load a pstats file the way SnakeViz's server does and print what SnakeViz would show.

    .cache/consumers/venv/bin/python tests/consumers/snakeviz_load.py FILE

Needs .ci/install-consumers.sh (the venv with snakeviz). SnakeViz's page handler reads a profile
with `pstats.Stats(path)` and hands the page two things built by `snakeviz.stats`: `table_rows`
(the table under the sunburst) and `json_stats` (the call graph the sunburst is drawn from, with
functions that neither call nor are called removed). This script calls exactly those, and also
checks that both survive `json.dumps`, as the page needs them to.

stdout, on success: one JSON document
  {"consumer": "snakeviz 2.2.2", "total_calls": int, "primitive_calls": int, "total_tt": float,
   "functions": [{"file", "line", "name",
                  "ncalls": "N" or "N/P" (total/primitive, the table's text),
                  "tottime", "tottime_percall", "cumtime", "cumtime_percall": numbers as the
                  table shows them (4 significant digits),
                  "in_sunburst": bool (kept by json_stats),
                  "callers": ["file:line(name)", ...], "callees": ["file:line(name)", ...]}]}
functions sorted by cumtime desc, then file, line, name; callers/callees sorted.
On failure: exit status 1 and one line on stderr, `snakeviz_load: <stage>: <reason>`.
"""

import json
import math
import sys


def fail(stage, reason):
    first = str(reason).splitlines()[0] if str(reason) else type(reason).__name__
    sys.stderr.write(f"snakeviz_load: {stage}: {first}\n")
    sys.exit(1)


def main(argv):
    if len(argv) != 2:
        fail("usage", "snakeviz_load.py FILE")
    path = argv[1]
    try:
        from importlib.metadata import version
        from pstats import Stats

        from snakeviz.stats import json_stats, table_rows
    except ImportError as e:
        fail("setup", f"{e}: run with .cache/consumers/venv/bin/python (.ci/install-consumers.sh)")

    # SnakeViz's VizHandler.get: Stats(profile_name), then table_rows(s) and json_stats(s).
    try:
        stats = Stats(path)
    except Exception as e:  # SnakeViz turns any failure here into "Could not read"
        fail("load", f"pstats.Stats could not read {path}: {type(e).__name__}: {e}")
    try:
        rows = table_rows(stats)
    except Exception as e:
        fail("table_rows", f"{type(e).__name__}: {e}")
    try:
        graph = json_stats(stats)
    except Exception as e:
        fail("json_stats", f"{type(e).__name__}: {e}")
    try:
        json.dumps(rows)
        json.dumps(graph)
    except (TypeError, ValueError) as e:
        fail("json", f"SnakeViz's page data does not serialise: {e}")

    # Each row: [[calls_text, total_calls], tottime, tottime_percall, cumtime, cumtime_percall,
    # short_name, "file:line(name)"], in the same order as stats.stats.
    keys = list(stats.stats)
    if len(keys) != len(rows):
        fail("table_rows", f"{len(rows)} rows for {len(keys)} functions")

    def shown(text):
        value = float(text)
        if not math.isfinite(value):
            fail("table_rows", f"non-finite time {text!r}")
        return value

    functions = []
    for key, row in zip(keys, rows):
        file, line, name = key
        full = row[6]
        node = graph.get(full)
        callers = sorted("{}:{}({})".format(*k) for k in stats.stats[key][4])
        functions.append({
            "file": file,
            "line": line,
            "name": name,
            "ncalls": row[0][0],
            "tottime": shown(row[1]),
            "tottime_percall": shown(row[2]),
            "cumtime": shown(row[3]),
            "cumtime_percall": shown(row[4]),
            "in_sunburst": node is not None,
            "callers": callers,
            "callees": sorted(node["children"]) if node is not None else [],
        })
    functions.sort(key=lambda f: (-f["cumtime"], f["file"], f["line"], f["name"]))
    json.dump({
        "consumer": f"snakeviz {version('snakeviz')}",
        "total_calls": stats.total_calls,
        "primitive_calls": stats.prim_calls,
        "total_tt": stats.total_tt,
        "functions": functions,
    }, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
