"""Settings: each declared once, resolved once (CLI > env > ini > default) into a frozen value; the case filter's expressions."""
