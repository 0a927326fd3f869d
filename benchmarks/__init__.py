"""Measurement tools: benchmarks, the soak, the LFW evaluation, and the harness that runs a whole service."""
