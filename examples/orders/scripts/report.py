"""Writes the report and publishes its total."""

import json
import os

regions = json.loads(os.environ["REGIONS"])
products = json.loads(os.environ["PRODUCTS"])
total = sum(regions.values())
assert total == sum(products.values()), "region and product totals disagree"
print(f"Orders on {os.environ['DAY']}: {total}")
for name, amount in regions.items():
    print(f"  region {name:<6} {amount:>5}")
for name, amount in products.items():
    print(f"  product {name:<6} {amount:>4}")
with open(os.environ["INTERLOCK_OUTPUT"], "w") as out:
    json.dump({"total": total}, out)
