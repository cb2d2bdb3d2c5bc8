"""triactor's benchmarks: ``python -m benchmarks`` prints ratio tables against raw Trio."""
