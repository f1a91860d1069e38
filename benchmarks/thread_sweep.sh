#!/usr/bin/env bash
# Thread scaling on a many-core machine: quantize and dequantize at 1, 2, 4, 8 and 16 threads, and each
# one's side-by-side ratios (over ONNX Runtime, PyTorch and NumPy, share of its bandwidth ceiling, over its own
# 1-thread run) at the same counts, then the report, which draws whatever thread counts the results hold.
#
#   pip install -e ".[bench,peers]"
#   benchmarks/thread_sweep.sh [MACHINE]        # MACHINE: the name the results are filed under
#
# QBENCH_THREADS and QBENCH_SIZES override the thread counts and sizes below; counts beyond this machine's cores are
# skipped, not failed. Commit or stash first: results are filed under the commit measured.
set -euo pipefail
cd "$(dirname "$0")/.."

machine="${1:-$(hostname)}"
threads="${QBENCH_THREADS:-1,2,4,8,16}"
# One size per level of the memory hierarchy: L1/L2, L2/L3, beyond any L3.
export QBENCH_SIZES="${QBENCH_SIZES:-16384,1048576,16777216,67108864}"

qbench run --quick --machine "$machine" --threads "$threads" --out "reports/threads-$machine" \
    -b '^bench_(quantize\.(Quantize|Dequantize)\.|side_by_side\.)'
qbench report --machine "$machine" --readme-table  # the side-by-side table, as Markdown
