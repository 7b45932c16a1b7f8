"""What the demo, the end-to-end tests and the benchmarks share: the embedded default pipeline
(`harness.pipeline_stack`: the emulator, an embedded PostgreSQL, Meltano, and checks of what was
loaded against what the emulator served)."""
