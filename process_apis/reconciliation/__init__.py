"""Reconciliation: psbridge\x27s posted invoices against the ERP, and per contract the money each system holds."""
