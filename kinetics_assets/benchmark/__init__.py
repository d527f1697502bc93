"""The note's benchmark: I3D (RGB) trained from scratch on nested per-class subsets, evaluated on val and test.

``models`` (the network), ``configs`` (full and tiny hyper-parameters), ``train`` (pure jitted steps, the
data-parallel loop with Orbax checkpoints, 8-clip evaluation); the input pipeline lives beside them."""
