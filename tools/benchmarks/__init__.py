"""The parts of tools/bench, one module per kind of workload."""
