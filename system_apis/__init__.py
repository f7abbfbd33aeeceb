"""System APIs: one package per backend (port, HTTP client, mapping, /system/v1 routes)."""
