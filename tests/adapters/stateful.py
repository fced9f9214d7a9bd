#!/usr/bin/env python3
"""A principal-mapping adapter with state, for tests/harness.rs: it answers
every map_principal as CN=alice and logs to stderr its pid, how many calls it
served since its last reset, and any request id it saw twice.

    stateful.py plain      a v1 adapter (a fresh process per scenario)
    stateful.py reusable   says `reusable` in hello (v1.2), clears on reset
    stateful.py leaky      says `reusable` but keeps its state over reset
"""
import json
import os
import sys

mode = sys.argv[1]
served = 0
ids = set()
for line in sys.stdin:
    msg = json.loads(line)
    mid = msg["id"]
    if mid in ids:
        sys.stderr.write(f"DUPLICATE id {mid}\n")
    ids.add(mid)
    op = msg["op"]
    if op == "hello":
        result = {"name": "stateful", "version": "0", "roles": ["principal-mapping"]}
        if mode != "plain":
            result["reusable"] = True
    elif op == "reset":
        if mode != "leaky":
            served = 0
        sys.stderr.write(f"pid={os.getpid()} reset\n")
        result = {}
    else:
        served += 1
        sys.stderr.write(f"pid={os.getpid()} served={served}\n")
        result = {"accepted": True, "principal": "alice", "subject": "CN=alice"}
    sys.stderr.flush()
    print(json.dumps({"v": 1, "id": mid, "ok": True, "result": result}), flush=True)
