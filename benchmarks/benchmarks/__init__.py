"""qbench's asv suite: one module per area; grids and byte rules come from qbench.cases."""
