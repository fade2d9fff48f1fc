"""Sanctions screening (example): a fixed list stands for the real ones; writes the hits."""

import os

LISTED = {"ivan petrov", "acme shell holdings"}
name = os.environ["NAME"].strip().lower()
hits = int(name in LISTED)
with open(os.environ["INTERLOCK_OUTPUT"], "a", encoding="utf-8") as out:
    out.write(f"hits={hits}\nlists=EU,UN,OFAC\n")
print(f"screened {name!r}: {hits} hit(s)")
