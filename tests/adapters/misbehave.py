#!/usr/bin/env python3
"""An adapter that misbehaves in the way argv[1] says, after a proper hello.
Used by tests/harness.rs to prove the harness survives bad implementations."""
import json
import subprocess
import sys
import time

mode = sys.argv[1]
if mode in ("leak", "leak-hang"):
    child = subprocess.Popen(["sleep", "301" if mode == "leak-hang" else "300"])
    sys.stderr.write(f"child-pid {child.pid}\n")
    sys.stderr.flush()

for line in sys.stdin:
    msg = json.loads(line)
    if msg["op"] == "hello":
        print(json.dumps({"v": 1, "id": msg["id"], "ok": True, "result": {"name": "misbehave", "version": "0", "roles": ["principal-mapping"]}}), flush=True)
        continue
    if mode == "garbage":
        print("this is not json {", flush=True)
    elif mode == "wrong-id":
        print(json.dumps({"v": 1, "id": msg["id"] + 100, "ok": True, "result": {}}), flush=True)
    elif mode in ("hang", "leak-hang"):
        time.sleep(3600)
    elif mode == "crash":
        sys.stderr.write("boom: adapter crashed on purpose\n")
        sys.exit(3)
    elif mode == "not-ok":
        print(json.dumps({"v": 1, "id": msg["id"], "ok": False, "error": {"code": "internal", "message": "cannot"}}), flush=True)
    else:  # slow-exit, leak: answer properly
        print(json.dumps({"v": 1, "id": msg["id"], "ok": True, "result": {"accepted": True, "principal": "alice", "subject": "CN=alice"}}), flush=True)

if mode == "slow-exit":
    time.sleep(30)
