"""Analysis: asv result files (one or many machines) -> one tidy DataFrame; regression statistics over commits."""
