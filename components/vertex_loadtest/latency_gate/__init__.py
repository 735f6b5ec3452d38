"""The latency gate: SLO expressions (``thresholds``), the runtime (``gate``), the KFP op (``component``)."""
