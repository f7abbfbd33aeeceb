"""psbridge kernel: settings, database, auth, errors, observability, money and the composition root."""
