#!/usr/bin/env python3
"""A filesystem backup tree for the benchmarks: N session files (~2 KB of JSON each) under
sessions/20261129/ in ROOT, and their MANIFEST.jsonl (header, then key/size/sha256 per object).

Usage: make_sessions.py ROOT N
"""
import hashlib, json, os, sys, datetime
root, n = sys.argv[1], int(sys.argv[2])
day = "20261129"
prefix = f"sessions/{day}/"
os.makedirs(os.path.join(root, prefix), exist_ok=True)
entries = []
for i in range(n):
    body = json.dumps({"session_id": f"s-{i}", "agent": "researcher",
        "messages": [{"role": "user", "content": "x" * 1900}]}).encode()
    key = f"{prefix}session-{i:07d}.json"
    with open(os.path.join(root, key), "wb") as f:
        f.write(body)
    entries.append({"key": key, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()})
header = {"manifest_version": 1, "dataset": "sessions", "date": day,
          "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
          "source": "bench", "count": n, "bytes": sum(e["size"] for e in entries)}
with open(os.path.join(root, prefix, "MANIFEST.jsonl"), "w") as f:
    f.write(json.dumps(header) + "\n")
    for e in sorted(entries, key=lambda e: e["key"]):
        f.write(json.dumps(e) + "\n")
