"""One-line breaks of qbench's code that the test suite must catch (``python tools/mutate.py`` applies them).

Each entry: the file, the exact text to replace (it must occur once), what replaces it, the tests that must fail
(a pytest selection, run from the repository root) and why this break matters. Add one whenever a test is
written to catch a bug: the list is the record that the tests can fail.
"""

MUTATIONS = [
    # ---- the five breaks that once survived every test ------------------------------------------------------
    dict(
        name="quantize: float64 input cast to float32 before the division",
        file="qbench/ops/convert.py",
        old='    x = as_array(x, "x", FLOAT_INPUTS, "quantize")\n',
        new='    x = as_array(x, "x", FLOAT_INPUTS, "quantize").astype("float32")\n',
        tests=["tests/test_quantize.py"],
    ),
    dict(
        name="calibrate_blocks: asymmetric zero point one step high",
        file="qbench/ops/blocks.py",
        old="zero_point = np.clip(np.rint(qmin - lo / scale), qmin, qmax)",
        new="zero_point = np.clip(np.rint(qmin - lo / scale) + 1, qmin, qmax)",
        tests=["tests/test_blocks.py"],
    ),
    dict(
        name="the pattern probe moves half of its arrays",
        file="qbench/cases/families.py",
        old="    src = buf.random(src_op.dtype, src_op.elements, 0)\n"
        "    dst = buf.random(dst_op.dtype, dst_op.elements, 1)",
        new="    src = buf.random(src_op.dtype, src_op.elements // 2, 0)\n"
        "    dst = buf.random(dst_op.dtype, dst_op.elements // 2, 1)",
        tests=["tests/test_ceilings.py"],
    ),
    dict(
        name="every linear-layer ratio in the report inverted",
        file="qbench/report/layers.py",
        old='            "ratio": r["value"].to_numpy(),',
        new='            "ratio": 1 / r["value"].to_numpy(),',
        tests=["tests/test_layer_report.py"],
    ),
    dict(
        name="ggml.vec_dot_error_bound 65536x looser",
        file="qbench/ops/ggml.py",
        old="    return (2 * u32 + blocks * u64) * terms_abs_sum + u32 * abs(result)",
        new="    return 65536 * ((2 * u32 + blocks * u64) * terms_abs_sum + u32 * abs(result))",
        tests=["tests/test_ggml.py"],
    ),
    # ---- more, one per module ---------------------------------------------------------------------------------
    dict(
        name="the copy probe's loop stops half way",
        file="qbench/kernels/bandwidth.py",
        old="    for i in prange(src.shape[0]):\n        dst[i] = src[i]",
        new="    for i in prange(src.shape[0] // 2):\n        dst[i] = src[i]",
        tests=["tests/test_ceilings.py"],
    ),
    dict(
        name="quantize rounds ties up instead of to even",
        file="qbench/kernels/quantize.py",
        old="    k = np.int32(np.rint(r))",
        new="    k = np.int32(np.floor(r + type(r)(0.5)))",
        tests=["tests/test_quantize.py"],
    ),
    dict(
        name="Q4_0 rounds with +8.0 instead of ggml's +8.5",
        file="qbench/kernels/ggml.py",
        old="            lo = min(np.int32(row[j] * inv + np.float32(8.5)), 15)",
        new="            lo = min(np.int32(row[j] * inv + np.float32(8.0)), 15)",
        tests=["tests/test_ggml.py"],
    ),
    dict(
        name="MinMax calibration forgets to widen the range to include 0",
        file="qbench/ops/calibrate.py",
        old="    rmin = np.minimum(np.asarray(rmin, np.float64), 0.0)",
        new="    rmin = np.asarray(rmin, np.float64)",
        tests=["tests/test_calibrate.py"],
    ),
    dict(
        name="the int8 dot flushes its int32 lanes too rarely (they overflow)",
        file="qbench/ops/sums.py",
        old="_DOT_INT8_BLOCK = 1 << 15",
        new="_DOT_INT8_BLOCK = 1 << 24",
        tests=["tests/test_accumulate.py"],
    ),
    dict(
        name="QLinearMatMul's requantization rounds ties up",
        file="qbench/kernels/matmul.py",
        old="            dst[n] = np.int32(np.rint(v)) + zero_point",
        new="            dst[n] = np.int32(np.floor(v + np.float32(0.5))) + zero_point",
        tests=["tests/test_matmul.py"],
    ),
    dict(
        name="every elementwise side-by-side ratio in the report inverted",
        file="qbench/report/tables.py",
        old='            "ratio": rows["value"].to_numpy(),',
        new='            "ratio": 1 / rows["value"].to_numpy(),',
        tests=["tests/test_analysis.py", "tests/test_results.py"],
    ),
    dict(
        name="throughput counted in bytes per microsecond",
        file="qbench/report/tables.py",
        old='    t["gbps"] = t["bytes"] / t["value"] / 1e9',
        new='    t["gbps"] = t["bytes"] / t["value"] / 1e6',
        tests=["tests/test_analysis.py", "tests/test_results.py"],
    ),
    dict(
        name="the parallel switch takes the parallel form one byte late",
        file="qbench/ops/tuning.py",
        old="return nbytes >= TABLE.get(key, _DEFAULT_SWITCH)[nbytes.bit_length()]",
        new="return nbytes > TABLE.get(key, _DEFAULT_SWITCH)[nbytes.bit_length()]",
        tests=["tests/test_tuning.py"],
    ),
    dict(
        name="SQNR of amplitudes instead of powers",
        file="qbench/ops/metrics.py",
        old="    return db(float(np.sum(a**2)), float(np.sum((a - b) ** 2)))",
        new="    return db(float(np.sum(np.abs(a))), float(np.sum(np.abs(a - b))))",
        tests=["tests/test_calibrate.py", "tests/test_quantize.py"],
    ),
    dict(
        name="a regression verdict that never fails the gate",
        file="qbench/analysis/regress.py",
        old="        return 1 if len(self.slower) else 0",
        new="        return 0",
        tests=["tests/test_regress.py"],
    ),
    dict(
        name="the packed product forgets the weights' zero point against the row sums",
        file="qbench/kernels/gemm.py",
        old="            dst[n] = np.int32(np.int64(src[n]) - zb * rs - za * np.int64(col_sums[n]) + k * za * zb)",
        new="            dst[n] = np.int32(np.int64(src[n]) - za * np.int64(col_sums[n]) + k * za * zb)",
        tests=["tests/test_packed.py"],
    ),
    dict(
        name="a tile larger than the register file (its accumulators spill to the stack)",
        file="qbench/kernels/gemm.py",
        old='TILES = {"avx512-vnni": (8, 3), "avx512": (8, 3), "avx-vnni": (6, 2), "avx2": (4, 2)}',
        new='TILES = {"avx512-vnni": (8, 5), "avx512": (8, 5), "avx-vnni": (6, 4), "avx2": (4, 4)}',
        tests=["tests/test_compiled.py::test_packed_micro_kernel_holds_its_paths_instruction_and_no_spills"],
    ),
    dict(
        name="uint8 weights packed without flipping their top bit",
        file="qbench/ops/packed.py",
        old="        flip = np.uint8(0x80 if arr.dtype == np.uint8 else 0)",
        new="        flip = np.uint8(0)",
        tests=["tests/test_packed.py"],
    ),
    dict(
        name="the end-to-end verdict's speed-up inverted (variant over float32)",
        file="qbench/report/runtime.py",
        old='    return base["median_s"] / mine["median_s"] if base and mine else math.nan',
        new='    return mine["median_s"] / base["median_s"] if base and mine else math.nan',
        tests=["tests/test_runtime.py::test_the_verdict_says_the_measured_ratios"],
    ),
    dict(
        name="each variant's outputs compared with float32's of the previous sample",
        file="qbench/model/runtime.py",
        old="        r, g = ref.astype(np.float64).ravel(), got.astype(np.float64).ravel()",
        new="        r, g = ref.astype(np.float64).ravel(), np.roll(got, 1, axis=0).astype(np.float64).ravel()",
        tests=[
            "tests/test_runtime.py::test_dynamic_int8_of_a_linear_layer_is_within_its_quantization_bound_and_sizes_are_exact"
        ],
    ),
    dict(
        name="the ONNX reader ignores subgraphs",
        file="qbench/model/files.py",
        old="    for graph in onnx_graphs(proto.graph):\n        stored_tensors.extend(graph.initializer)",
        new="    for graph in [proto.graph]:\n        stored_tensors.extend(graph.initializer)",
        tests=["tests/test_runtime.py::test_weights_inside_if_branches_are_found_and_quantized"],
    ),
    dict(
        name="token ids drawn past the vocabulary of the Gather they feed",
        file="qbench/model/inputs.py",
        old="            low, high = int_range or ((0, limits[spec.name]) if spec.name in limits else INT_RANGE)",
        new="            low, high = int_range or INT_RANGE",
        tests=["tests/test_runtime.py::test_token_ids_stay_below_the_vocabulary_and_open_dimensions_are_refused"],
    ),
    dict(
        name="the fused round trip dequantizes without its zero point",
        file="qbench/kernels/metrics.py",
        old="    y = (np.float32(quantize_value(v, s, z, lo, hi)) - zf) * s",
        new="    y = np.float32(quantize_value(v, s, z, lo, hi)) * s",
        tests=["tests/test_model.py::test_every_number_of_a_tensor_matches_the_reference"],
    ),
    dict(
        name="the fused int4 blocks calibrate on the block's largest value, not its largest magnitude",
        file="qbench/kernels/metrics.py",
        old="                    v = abs(np.float64(a[b + j]))",
        new="                    v = np.float64(a[b + j])",
        tests=["tests/test_model.py::test_every_number_of_a_tensor_matches_the_reference"],
    ),
    dict(
        name="entropy's search forgets to fold the outliers into the last kept bin",
        file="qbench/kernels/calibrate.py",
        old="            p = hist[j] + (tail[i] if j == i - 1 else 0.0)",
        new="            p = hist[j]",
        tests=["tests/test_calibrate.py::test_entropy_search_matches_its_numpy_formulation"],
    ),
    dict(
        name="calibrate_each shares the entropy range between int8 and uint8",
        file="qbench/ops/calibrate.py",
        old='RANGE_ONLY = ("minmax", "percentile")',
        new='RANGE_ONLY = ("minmax", "percentile", "entropy")',
        tests=["tests/test_calibrate.py::test_calibrate_each_is_calibrate_for_every_request"],
    ),
    dict(
        name="the scan's float16 rounding keeps 12 significant bits, not 11",
        file="qbench/kernels/metrics.py",
        old="    c = v * np.float32(8193.0)  # 2**13 + 1",
        new="    c = v * np.float32(4097.0)  # 2**13 + 1",
        tests=["tests/test_model.py::test_float16_rounding_is_numpys_on_random_bit_patterns_and_every_edge"],
    ),
    dict(
        name="the reciprocal quotient's remainder rounded before the correction (no fused multiply-add)",
        file="qbench/kernels/division.py",
        old="    return fma(fma(-q, scale, x), reciprocal, q)",
        new="    return fma(x - q * scale, reciprocal, q)",
        tests=["tests/test_division.py"],
    ),
    dict(
        name="quantize's first values before the 64-byte boundary: the last one left out",
        file="qbench/kernels/quantize.py",
        old="    for i in range(head):\n        out[i] = quantize_with(",
        new="    for i in range(head - 1):\n        out[i] = quantize_with(",
        tests=["tests/test_quantize.py::test_every_start_alignment_and_lengths_around_blocks"],
    ),
    dict(
        name="dequantize's blocks start one value late",
        file="qbench/kernels/quantize.py",
        old="        qb, ob = q[start : start + BLOCK], out[start : start + BLOCK]",
        new="        qb, ob = q[start + 1 : start + BLOCK], out[start + 1 : start + BLOCK]",
        tests=["tests/test_quantize.py::test_every_start_alignment_and_lengths_around_blocks"],
    ),
]
