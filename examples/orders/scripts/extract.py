"""Pretend extraction: writes a day's orders as JSON lines and reports where."""

import json
import os
import random
import tempfile
from pathlib import Path

day = os.environ["DAY"]
rng = random.Random(day)
orders = [{"id": i, "region": rng.choice(["north", "south", "east", "west"]),
           "product": rng.choice(["tea", "coffee", "cocoa"]), "amount": rng.randint(1, 90)}
          for i in range(rng.randint(20, 40))]
out_dir = Path(tempfile.gettempdir()) / "interlock-examples" / os.environ["WORKDIR"]
out_dir.mkdir(parents=True, exist_ok=True)
path = out_dir / "orders.jsonl"
path.write_text("".join(json.dumps(o) + "\n" for o in orders))
print(f"extracted {len(orders)} orders for {day} to {path}")
with open(os.environ["INTERLOCK_OUTPUT"], "a") as out:
    out.write(f"path={path}\ncount={len(orders)}\n")
