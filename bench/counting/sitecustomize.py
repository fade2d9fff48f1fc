"""Loaded by Python at start-up when this folder is on PYTHONPATH (only the bench's workers):
counts the store statements the process sends (`stmtcount`)."""

import stmtcount

stmtcount.install_from_env()
