"""Loaded by Python at start-up when this folder is on PYTHONPATH (only the bench's workers):
counts the store statements the process sends (`stmtcount`, `--cost`), and with
INTERLOCK_BENCH_LONG_WAY set makes `noop` nodes take the long way (`long_way`)."""

import long_way
import stmtcount

stmtcount.install_from_env()
long_way.install_from_env()
