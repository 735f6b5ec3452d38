"""Release and documentation helpers (run as ``python -m scripts.<name>`` from the repository root)."""
