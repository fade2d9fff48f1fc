"""Sanctions screening (example): a name checked against a small local list."""

import json
import os

LISTS = {"EU consolidated": {"ACME SHELL CORP"}, "OFAC SDN": {"BAD ACTOR LTD"}}
name = os.environ["BENEFICIARY"].strip().upper()
hits = [listed for listed, names in LISTS.items() if name in names]
with open(os.environ["INTERLOCK_OUTPUT"], "w", encoding="utf-8") as out:
    json.dump({"hits": len(hits), "lists": ", ".join(LISTS), "matched": hits}, out)
print(f"screened {name!r}: {len(hits)} hit(s)")
