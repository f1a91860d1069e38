"""Models: weight files (ONNX, safetensors, GGUF, npz) read (:mod:`files`), scanned through every format
(:mod:`scan`), and their matrix products timed per format (:mod:`speed`); :mod:`synthetic` writes small test files."""
