"""The ledger: billing transactions, the unit of money (grows into their one owner with the policy engine)."""
