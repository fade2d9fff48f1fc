"""Totals by one field; the summary goes out as one JSON object."""

import collections
import json
import os
import sys

field = sys.argv[1]
totals: dict[str, int] = collections.Counter()
for line in open(os.environ["ORDERS"]):
    order = json.loads(line)
    totals[order[field]] += order["amount"]
print(f"{field}: {dict(totals)}")
with open(os.environ["INTERLOCK_OUTPUT"], "w") as out:
    json.dump({"summary": json.dumps(dict(sorted(totals.items())))}, out)
