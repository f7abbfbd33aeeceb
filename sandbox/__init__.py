"""Simulated outside world (CRM, PSA, NetSuite-shaped ERP, tax, FX) with fault injection.

Imports nothing from psbridge's layers; psbridge reaches it only over HTTP. Its world lives in memory,
or in a state file that keeps it across restarts (``persistence``).
"""

from sandbox.app import create_sandbox_app, run

__all__ = ["create_sandbox_app", "run"]
