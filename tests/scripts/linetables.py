"""Prints, for every code object in a set of stdlib modules, its line table, first line and
the interpreter's own answer to "which line is each instruction on", as JSON lines:
{"first": N, "table": [bytes], "lines": [[start, end, line-or-null], ...]}.
The Rust test decodes the table itself and compares."""
import json
import sys
import types

import argparse, json as _json, textwrap, dataclasses, asyncio.base_events, email.message  # noqa

seen = set()


def walk(code):
    if id(code) in seen:
        return
    seen.add(id(code))
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from walk(c)


out = sys.stdout
for mod in (argparse, _json.decoder, textwrap, dataclasses, asyncio.base_events, email.message):
    for obj in vars(mod).values():
        funcs = []
        if isinstance(obj, types.FunctionType):
            funcs.append(obj)
        elif isinstance(obj, type):
            funcs.extend(v for v in vars(obj).values() if isinstance(v, types.FunctionType))
        for f in funcs:
            for code in walk(f.__code__):
                out.write(json.dumps({
                    "name": code.co_qualname,
                    "first": code.co_firstlineno,
                    "table": list(code.co_linetable),
                    "lines": [list(r) for r in code.co_lines()],
                }) + "\n")
