"""The `kubetune` console script and the pipeline wiring; thin by design."""
