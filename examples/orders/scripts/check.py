"""Fails the node (exit 1) when there are too few orders or a malformed one."""

import json
import os
import sys

rows = [json.loads(line) for line in open(os.environ["ORDERS"])]
minimum = int(os.environ["MIN_ORDERS"])
bad = [r["id"] for r in rows if r["amount"] <= 0]
if len(rows) < minimum or bad:
    print(f"check failed: {len(rows)} orders (minimum {minimum}), bad ids {bad}", file=sys.stderr)
    sys.exit(1)
print(f"{len(rows)} orders look fine")
with open(os.environ["INTERLOCK_OUTPUT"], "a") as out:
    out.write(f"checked={len(rows)}\n")
