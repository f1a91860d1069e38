"""Measurement: timing rounds, machine facts, the parallel-switch tuner, the asv runner and the one-tensor demo."""
