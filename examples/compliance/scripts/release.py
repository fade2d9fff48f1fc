"""Payment release (example): prints what a payment system would be asked to do."""

import hashlib
import os

iban, amount, currency = os.environ["IBAN"], os.environ["AMOUNT"], os.environ["CURRENCY"]
reference = hashlib.sha256(f"{iban}:{amount}:{currency}".encode()).hexdigest()[:12]
with open(os.environ["INTERLOCK_OUTPUT"], "a", encoding="utf-8") as out:
    out.write(f"reference=PAY-{reference}\n")
print(f"released {amount} {currency} to {iban[:4]}... as PAY-{reference}")
