"""The latency gate: judging (``verdict``), Markdown (``render``), runtime (``gate``), KFP op."""
