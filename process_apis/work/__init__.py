"""Time entries and expenses from the PSA: ingestion, corrections, voids, and their state."""
