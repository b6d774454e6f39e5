"""Hardware behind small interfaces: one sub-package per device kind, real and simulated."""
