"""Freeze an account (example): a real one calls the core banking system; this one records
the freeze in its outputs. Started once per approved call (the step's idempotency key)."""

import os

customer, reason = os.environ["CUSTOMER"], os.environ["REASON"]
with open(os.environ["INTERLOCK_OUTPUT"], "a", encoding="utf-8") as out:
    out.write(f"frozen=true\ncustomer={customer}\n")
print(f"account of {customer} frozen: {reason}")
