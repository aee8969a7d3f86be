# -*- coding: utf-8 -*-
"""For every code object in a set of stdlib modules, prints its raw line table, its first
line, and CPython's own line for each instruction offset, as JSON lines:
{"name", "first", "format": "lnotab"|"linetable310"|"locations", "table": [bytes],
 "lines": [[offset, line-or-null], ...]}.
CPython's answer comes from co_lines() on 3.10+ and from dis.findlinestarts before that.
Runs on Python 2.7 and every 3.x the project supports."""
from __future__ import print_function

import dis
import json
import sys
import types

import argparse, json as json_module, textwrap, email.message  # noqa: E401

seen = set()


def walk(code):
    if id(code) in seen:
        return
    seen.add(id(code))
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            for inner in walk(const):
                yield inner


def table_bytes(data):
    return [b if isinstance(b, int) else ord(b) for b in data]


def lines_of(code):
    size = len(code.co_code)
    if hasattr(code, "co_lines"):
        out = []
        for start, end, line in code.co_lines():
            for offset in range(start, end, 2):
                out.append([offset, line])
        # 3.11 replaced 3.10's pairs with the location table (and added co_qualname).
        fmt = "locations" if hasattr(code, "co_qualname") else "linetable310"
        return fmt, table_bytes(code.co_linetable), out
    starts = list(dis.findlinestarts(code))
    out = []
    current = code.co_firstlineno
    index = 0
    for offset in range(size):
        while index < len(starts) and starts[index][0] <= offset:
            current = starts[index][1]
            index += 1
        out.append([offset, current])
    return "lnotab", table_bytes(code.co_lnotab), out


modules = [argparse, json_module.decoder, textwrap, email.message]
if sys.version_info[0] == 3:
    import asyncio.base_events
    modules.append(asyncio.base_events)
if sys.version_info >= (3, 7):
    import dataclasses
    modules.append(dataclasses)
for module in modules:
    for obj in list(vars(module).values()):
        functions = []
        if isinstance(obj, types.FunctionType):
            functions.append(obj)
        elif isinstance(obj, type):
            functions.extend(v for v in vars(obj).values() if isinstance(v, types.FunctionType))
        for function in functions:
            code = getattr(function, "__code__", None) or function.func_code
            for inner in walk(code):
                fmt, table, lines = lines_of(inner)
                name = getattr(inner, "co_qualname", inner.co_name)
                print(json.dumps({"name": name, "first": inner.co_firstlineno,
                                  "format": fmt, "table": table, "lines": lines}))
