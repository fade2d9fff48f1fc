"""The audit trail beyond the append: filtered reads, export, chain verification, and copies
of foreign systems' own audit logs. (Appending is part of the store: a record is written in
the transaction of the change it records, `interlock.store.audit`.)"""
