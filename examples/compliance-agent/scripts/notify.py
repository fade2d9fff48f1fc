"""Notify the case owner (example): prints the result; a real one posts to a queue."""

import os

score = float(os.environ["SCORE"])
level = "high" if score >= 0.7 else "medium" if score >= 0.3 else "low"
with open(os.environ["INTERLOCK_OUTPUT"], "a", encoding="utf-8") as out:
    out.write(f"level={level}\n")
print(f"customer {os.environ['CUSTOMER']}: risk {score:.2f} ({level}); case owner notified")
