"""Read a pprof profile (gzipped profile.proto) with `go tool pprof` and print what it understood.

    python3 tests/consumers/pprof_check.py FILE

Needs `go` on PATH with its pprof tool (Debian's golang-go: .ci/install-consumers.sh). Any
python3 runs this script. It runs `go tool pprof -symbolize=local` (what a plain `go tool pprof
FILE` does with a local file, with no attempt at remote symbolization) twice over:
  -raw                 pprof's own dump of the parsed profile (pprof refuses an invalid
                       profile here: unknown location or function ids, value counts that do not
                       match the sample types, ...): sample types, samples with their stacks
                       and labels;
  -top -filefunctions  per sample type, pprof's flat and cum per function (cum counts a
                       function once per sample even if it is twice in the stack), printed in
                       the sample type's own unit (-unit=<unit>) so the numbers are exact.
Beware: like a plain `go tool pprof`, this shows names after pprof's "demangling": a function
whose system_name equals its name and looks like demangled C++ loses its <...> and (...) parts,
so `<module>` becomes "" (shown as <unknown>); pprof leaves the name alone when system_name differs
from name (e.g. system_name empty).
pprof wants a writable place for temporary files: PPROF_TMPDIR (and GOCACHE) are set to a
folder under .cache/consumers unless the environment sets them.

stdout, on success: one JSON document
  {"consumer": "go tool pprof go1.19.8",
   "period_type": {"type", "unit"} or null, "period": int or null,
   "sample_types": [{"type", "unit"}],
   "samples": [{"values": [int per sample type],
                "stack": [{"function", "file", "line", "system_name"}, ...] (leaf first, as
                         pprof lists it; function is the name pprof shows, system_name is
                         null unless pprof shows a different one),
                "labels": {"key": "value as pprof prints it (inside its [...])"}}],
   "top": [{"type", "unit", "total": number,
            "functions": [{"function", "file", "flat", "cum"}]}]  (one entry per sample type)}
On failure: exit status 1 and one line on stderr, `pprof_check: <stage>: <reason>`.
"""

import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("SAMPLER_CONSUMERS_DIR") or os.path.join(HERE, "..", "..", ".cache", "consumers")

SAMPLE = re.compile(r"^\s*(-?\d+(?:\s+-?\d+)*):\s*((?:\d+\s*)*)$")
LOC_HEAD = re.compile(r"^\s*(\d+): (0x[0-9a-f]+) (?:M=\d+ )?(.*)$")
# One line of a location: `NAME FILE:LINE s=START`, then `(SYSTEM_NAME)` when pprof's NAME differs.
LINE = re.compile(r"^(.*)(?:^| )(\S*):(-?\d+)(?::-?\d+)? s=-?\d+(?:\((.*)\))?$")
LABEL = re.compile(r"(\S+?):\[(.*?)\]")
NUMBER = re.compile(r"^(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)")
TOP_ROW = re.compile(r"^\s*(\S+)\s+\S+%\s+\S+%\s+(\S+)\s+\S+%\s+(.*)$")


def fail(stage, reason):
    first = str(reason).strip().splitlines()
    sys.stderr.write(f"pprof_check: {stage}: {first[0] if first else '?'}\n")
    sys.exit(1)


def pprof(args, env):
    proc = subprocess.run(["go", "tool", "pprof", "-symbolize=local", *args],
                          capture_output=True, env=env, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        err = [line for line in proc.stderr.decode("utf-8", "replace").splitlines()
               if line.strip() and "binary filename not available" not in line]
        fail("pprof", f"go tool pprof {' '.join(args[:-1])}: exit {proc.returncode}: {err[0] if err else ''}")
    return proc.stdout.decode("utf-8", "replace")


def number(text):
    m = NUMBER.match(text)
    if not m:
        fail("top", f"cannot read the number in {text!r}")
    v = float(m.group(1))
    return int(v) if v.is_integer() else v


def parse_raw(text):
    out = {"period_type": None, "period": None, "sample_types": [], "samples": []}
    locations = {}
    section = None
    last_loc = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("PeriodType: "):
            parts = line.split()[1:]
            out["period_type"] = {"type": parts[0] if parts else "", "unit": parts[1] if len(parts) > 1 else ""}
            continue
        if line.startswith("Period: "):
            out["period"] = int(line.split()[1])
            continue
        if line in ("Samples:", "Locations", "Mappings"):
            section = line
            continue
        if section == "Samples:":
            if not out["sample_types"] and not out["samples"] and SAMPLE.match(line) is None:
                for st in line.split():
                    typ, _, unit = st.rpartition("/")
                    out["sample_types"].append({"type": typ, "unit": unit})
                continue
            m = SAMPLE.match(line)
            if m:
                out["samples"].append({"values": [int(v) for v in m.group(1).split()],
                                       "locations": [int(i) for i in m.group(2).split()],
                                       "labels": {}})
            elif out["samples"]:
                for k, v in LABEL.findall(line):
                    out["samples"][-1]["labels"][k] = v
            continue
        if section == "Locations":
            m = LOC_HEAD.match(line)
            if m:
                last_loc = int(m.group(1))
                locations[last_loc] = []
                rest = m.group(3).rstrip()
            else:
                rest = line.strip()
            if rest and last_loc is not None:
                lm = LINE.match(rest)
                if lm:
                    locations[last_loc].append({"function": lm.group(1), "file": lm.group(2),
                                                "line": int(lm.group(3)), "system_name": lm.group(4)})
                elif rest != "???":
                    fail("raw", f"cannot read the location line {rest!r}")
    for s in out["samples"]:
        stack = []
        for loc in s.pop("locations"):
            if loc not in locations:
                fail("raw", f"sample names location {loc}, which pprof did not list")
            stack.extend(locations[loc])
        s["stack"] = stack
        if len(s["values"]) != len(out["sample_types"]):
            fail("raw", f"a sample has {len(s['values'])} values for {len(out['sample_types'])} sample types")
    if not out["sample_types"]:
        fail("raw", "pprof listed no sample types")
    return out


def parse_top(text, pairs):
    total = None
    functions = []
    in_rows = False
    for line in text.splitlines():
        if line.startswith("Showing nodes accounting for"):
            m = re.search(r"of (\S+) total", line)
            total = number(m.group(1)) if m else None
            continue
        if line.split()[:2] == ["flat", "flat%"]:
            in_rows = True
            continue
        if not in_rows or not line.strip():
            continue
        m = TOP_ROW.match(line)
        if not m:
            fail("top", f"cannot read the row {line!r}")
        label = m.group(3)
        # "-filefunctions" prints "NAME FILE"; split it with the names pprof listed in -raw.
        match = [p for p in pairs if f"{p[0]} {p[1]}".strip() == label.strip()]
        name, file = match[0] if match else (label.rsplit(" ", 1) + [""])[:2]
        functions.append({"function": name, "file": file, "flat": number(m.group(1)), "cum": number(m.group(2))})
    return total, functions


def main(argv):
    if len(argv) != 2:
        fail("usage", "pprof_check.py FILE")
    path = argv[1]
    if not os.path.isfile(path):
        fail("read", f"{path}: no such file")
    if shutil.which("go") is None:
        fail("setup", "go not on PATH: run .ci/install-consumers.sh (Debian's golang-go)")
    env = dict(os.environ)
    for var, sub in (("PPROF_TMPDIR", "pprof-tmp"), ("GOCACHE", "go-build")):
        if not env.get(var):
            env[var] = os.path.abspath(os.path.join(CACHE, sub))
            os.makedirs(env[var], exist_ok=True)
    version = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, env=env).stdout.strip()

    raw = parse_raw(pprof(["-raw", path], env))
    pairs = {(f["function"], f["file"]) for s in raw["samples"] for f in s["stack"]}
    top = []
    for i, st in enumerate(raw["sample_types"]):
        args = ["-top", "-filefunctions", "-nodecount=1000000000", "-nodefraction=0", "-edgefraction=0",
                f"-sample_index={i}"]
        if st["unit"]:
            args.append(f"-unit={st['unit']}")
        total, functions = parse_top(pprof([*args, path], env), pairs)
        top.append({"type": st["type"], "unit": st["unit"], "total": total, "functions": functions})

    json.dump({"consumer": f"go tool pprof {version}", **raw, "top": top}, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv)
