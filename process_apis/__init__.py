"""Process APIs: one package per workflow (service, rules, queries, commands, routes)."""
