"""Identity check (example): a well-formed IBAN and a name; writes the outcome."""

import os
import re
import sys

iban = os.environ["IBAN"].replace(" ", "").upper()
name = os.environ["NAME"].strip()
if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}", iban) or not name:
    print(f"identity check failed for {name!r}", file=sys.stderr)
    sys.exit(1)
with open(os.environ["INTERLOCK_OUTPUT"], "a", encoding="utf-8") as out:
    out.write(f"status=verified\niban={iban}\n")
print(f"identity verified: {name}, {iban[:4]}...")
