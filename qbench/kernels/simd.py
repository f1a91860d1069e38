"""A small SIMD layer for Numba: integer vector types and the x86 instructions the matrix kernels need.

Each operation is one or two lines of LLVM IR and names the instruction it must compile to. Vectors are SSA
values (an LLVM ``<16 x i32>`` or ``<8 x i32>``), so a kernel's accumulators written as separate locals live in
registers. Loads and stores take an array and a byte offset into its data, unaligned. Which instructions a kernel
may use is decided in Python before anything is compiled (:mod:`qbench.kernels.isa`): an AVX-512 VNNI
instruction compiled for a CPU without it aborts the whole process in LLVM, not with a Python exception.

``OPS[bits]`` holds the operations of one vector width (256 or 512 bits).
"""

from __future__ import annotations

from types import SimpleNamespace

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

_I8P = ir.IntType(8).as_pointer()


class IntVector(types.Type):
    """A vector of ``lanes`` 32-bit integers in one SIMD register."""

    def __init__(self, lanes: int) -> None:
        self.lanes = lanes
        super().__init__(name=f"int32x{lanes}")


@register_model(IntVector)
class _IntVectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(ir.IntType(32), fe_type.lanes))


class FloatVector(types.Type):
    """A vector of ``lanes`` floats of ``width`` bits (32 or 64) in one SIMD register."""

    def __init__(self, width: int, lanes: int) -> None:
        self.width, self.lanes = width, lanes
        super().__init__(name=f"float{width}x{lanes}")


@register_model(FloatVector)
class _FloatVectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = ir.FloatType() if fe_type.width == 32 else ir.DoubleType()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _address(context, builder, array_type, array, offset, element: ir.Type):
    """A pointer to ``element`` at byte ``offset`` of the array's data."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.bitcast(builder.gep(builder.bitcast(data, _I8P), [offset]), element.as_pointer())


def _call(builder, name: str, result: ir.Type, args: list) -> ir.Value:
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(result, [a.type for a in args]), name)
    return builder.call(fn, args)


def _ops(bits: int) -> SimpleNamespace:
    lanes = bits // 32
    vec = IntVector(lanes)
    i32v = ir.VectorType(ir.IntType(32), lanes)
    i16v = ir.VectorType(ir.IntType(16), 2 * lanes)
    i8v = ir.VectorType(ir.IntType(8), 4 * lanes)
    f32v, f64v = FloatVector(32, lanes), FloatVector(64, lanes // 2)
    f32ir, f64ir = ir.VectorType(ir.FloatType(), lanes), ir.VectorType(ir.DoubleType(), lanes // 2)
    suffix = "512" if bits == 512 else "256"

    def _splat(builder, value, vector_type):
        one = builder.insert_element(ir.Constant(vector_type, None), value, ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(
            one,
            ir.Constant(vector_type, None),
            ir.Constant(ir.VectorType(ir.IntType(32), vector_type.count), [0] * vector_type.count),
        )

    def _splat32(builder, value):
        return _splat(builder, value, i32v)

    def _load_f32(context, builder, array_type, array, offset):
        return builder.load(_address(context, builder, array_type, array, offset, f32ir), align=1)

    pmaddwd = "llvm.x86.avx512.pmaddw.d.512" if bits == 512 else "llvm.x86.avx2.pmadd.wd"

    @intrinsic
    def zeros(typingctx):
        """All lanes 0 (``vpxor``)."""
        return vec(), lambda context, builder, sig, args: ir.Constant(i32v, None)

    @intrinsic
    def load(typingctx, array, offset):
        """``bits / 8`` bytes at byte ``offset`` of ``array`` (``vmovdqu32``, or a memory operand)."""

        def codegen(context, builder, sig, args):
            return builder.load(_address(context, builder, sig.args[0], args[0], args[1], i32v), align=1)

        return vec(array, types.intp), codegen

    @intrinsic
    def store(typingctx, array, offset, value):
        """Write a vector at byte ``offset`` of ``array`` (``vmovdqu32``)."""

        def codegen(context, builder, sig, args):
            builder.store(args[2], _address(context, builder, sig.args[0], args[0], args[1], i32v), align=1)
            return context.get_dummy_value()

        return types.none(array, types.intp, vec), codegen

    @intrinsic
    def broadcast4(typingctx, array, offset):
        """The 4 bytes at byte ``offset`` of ``array`` in every 32-bit lane (``vpbroadcastd``)."""

        def codegen(context, builder, sig, args):
            word = builder.load(_address(context, builder, sig.args[0], args[0], args[1], ir.IntType(32)), align=1)
            one = builder.insert_element(ir.Constant(i32v, None), word, ir.Constant(ir.IntType(32), 0))
            return builder.shuffle_vector(one, ir.Constant(i32v, None), ir.Constant(i32v, [0] * lanes))

        return vec(array, types.intp), codegen

    @intrinsic
    def prefetch(typingctx, array, offset):
        """Ask for the cache line at byte ``offset`` of ``array`` into L1 ahead of use (``prefetcht0``)."""

        def codegen(context, builder, sig, args):
            address = _address(context, builder, sig.args[0], args[0], args[1], ir.IntType(8))
            i32 = ir.IntType(32)
            _call(builder, "llvm.prefetch.p0", ir.VoidType(), [address, i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.none(array, types.intp), codegen

    @intrinsic
    def add(typingctx, a, b):
        """Lane-wise 32-bit add, wrapping (``vpaddd``)."""
        return vec(vec, vec), lambda context, builder, sig, args: builder.add(args[0], args[1])

    @intrinsic
    def xor(typingctx, a, b):
        """Bitwise exclusive or (``vpxord``): with 0x80 in every byte, s8 <-> u8 offset form."""
        return vec(vec, vec), lambda context, builder, sig, args: builder.xor(args[0], args[1])

    def _interleave(width: int, high: bool):
        """Interleave the low (or high) halves of each 128-bit lane of two vectors, ``width``-bit elements."""
        per_lane = 128 // width
        elems = ir.VectorType(ir.IntType(width), bits // width)
        start = per_lane // 2 if high else 0
        mask = [
            i + side * (bits // width)
            for lane in range(bits // 128)
            for i in range(lane * per_lane + start, lane * per_lane + start + per_lane // 2)
            for side in (0, 1)
        ]

        def codegen(context, builder, sig, args):
            a_, b_ = (builder.bitcast(x, elems) for x in args)
            return builder.bitcast(
                builder.shuffle_vector(a_, b_, ir.Constant(ir.VectorType(ir.IntType(32), len(mask)), mask)), i32v
            )

        return codegen

    def _unpack(width: int, high: bool, instruction: str):
        half = "high" if high else "low"

        @intrinsic
        def unpack(typingctx, a, b):
            return vec(vec, vec), _interleave(width, high)

        unpack.__doc__ = (
            f"The {half} {width}-bit elements of each 128-bit lane of a and b, interleaved ({instruction})."
        )
        return unpack

    unpacklo8, unpackhi8 = _unpack(8, False, "vpunpcklbw"), _unpack(8, True, "vpunpckhbw")
    unpacklo16, unpackhi16 = _unpack(16, False, "vpunpcklwd"), _unpack(16, True, "vpunpckhwd")

    @intrinsic
    def splat8(typingctx, value):
        """``value`` (an integer) in every byte (``vpbroadcastb``, or a constant)."""

        def codegen(context, builder, sig, args):
            return builder.bitcast(_splat(builder, builder.trunc(args[0], ir.IntType(8)), i8v), i32v)

        return vec(types.intp), codegen

    @intrinsic
    def nibbles(typingctx, v, high):
        """The low (``high`` 0) or high (``high`` 4) 4 bits of every byte, as bytes 0-15 (``vpsrld`` + ``vpandd``)."""

        def codegen(context, builder, sig, args):
            shifted = builder.lshr(args[0], _splat32(builder, builder.trunc(args[1], ir.IntType(32))))
            return builder.and_(shifted, ir.Constant(i32v, [0x0F0F0F0F] * lanes))

        return vec(vec, types.intp), codegen

    @intrinsic
    def mullo(typingctx, a, b):
        """Lane-wise 32-bit product, the low 32 bits (``vpmulld``)."""
        return vec(vec, vec), lambda context, builder, sig, args: builder.mul(args[0], args[1])

    @intrinsic
    def splat32(typingctx, value):
        """An int32 ``value`` in every lane (``vpbroadcastd``)."""
        return vec(types.int32), lambda context, builder, sig, args: _splat32(builder, args[0])

    @intrinsic
    def zeros_f64(typingctx):
        """Half as many float64 lanes as int32 ones, all 0.0 (``vxorpd``)."""
        return f64v(), lambda context, builder, sig, args: ir.Constant(f64ir, None)

    @intrinsic
    def block_term(typingctx, sums, scales, offset, x_scale):
        """``float32(float32(float32(sums) * scales[lanes at byte offset]) * x_scale)`` per lane: a block's int32
        dot to its float term, rounded twice, never fused (``vcvtdq2ps``, ``vmulps``, ``vmulps``)."""

        def codegen(context, builder, sig, args):
            sums_, array, offset_, x_scale_ = args
            products = builder.fmul(
                builder.sitofp(sums_, f32ir), _load_f32(context, builder, sig.args[1], array, offset_)
            )
            return builder.fmul(products, _splat(builder, x_scale_, f32ir))

        return f32v(vec, scales, types.intp, types.float32), codegen

    def _half(high: bool):
        def codegen(context, builder, sig, args):
            acc, terms = args
            half = builder.shuffle_vector(
                terms,
                terms,
                ir.Constant(
                    ir.VectorType(ir.IntType(32), lanes // 2),
                    [i + (lanes // 2 if high else 0) for i in range(lanes // 2)],
                ),
            )
            return builder.fadd(acc, builder.fpext(half, f64ir))

        return codegen

    @intrinsic
    def add_low_f64(typingctx, acc, terms):
        """``acc + float64(terms[:lanes / 2])`` (``vcvtps2pd``, ``vaddpd``): the low half of the float32 terms."""
        return f64v(f64v, f32v), _half(False)

    @intrinsic
    def add_high_f64(typingctx, acc, terms):
        """``acc + float64(terms[lanes / 2:])`` (``vextractf``, ``vcvtps2pd``, ``vaddpd``)."""
        return f64v(f64v, f32v), _half(True)

    @intrinsic
    def store_f32(typingctx, array, offset, acc):
        """``float32(acc)`` (float64 lanes, rounded to nearest) written at byte ``offset`` (``vcvtpd2ps``)."""

        def codegen(context, builder, sig, args):
            narrow = builder.fptrunc(args[2], ir.VectorType(ir.FloatType(), lanes // 2))
            target = _address(context, builder, sig.args[0], args[0], args[1], narrow.type)
            builder.store(narrow, target, align=1)
            return context.get_dummy_value()

        return types.none(array, types.intp, f64v), codegen

    @intrinsic
    def dpbusd(typingctx, acc, a, b):
        """``acc + sum of 4 products u8(a) x s8(b)`` per 32-bit lane, wrapping, never saturating (``vpdpbusd``)."""

        def codegen(context, builder, sig, args):
            acc_, a_, b_ = args
            return _call(
                builder,
                f"llvm.x86.avx512.vpdpbusd.{suffix}",
                i32v,
                [acc_, builder.bitcast(a_, i8v), builder.bitcast(b_, i8v)],
            )

        return vec(vec, vec, vec), codegen

    @intrinsic
    def madd16(typingctx, acc, a, b):
        """``acc + sum of 2 products s16(a) x s16(b)`` per 32-bit lane (``vpmaddwd`` + ``vpaddd``): exact for
        operands within +-2**15 - 1, which the int16 path's (x - zero point) of 8-bit values always are."""

        def codegen(context, builder, sig, args):
            acc_, a_, b_ = args
            pairs = _call(builder, pmaddwd, i32v, [builder.bitcast(a_, i16v), builder.bitcast(b_, i16v)])
            return builder.add(acc_, pairs)

        return vec(vec, vec, vec), codegen

    return SimpleNamespace(
        bits=bits,
        lanes=lanes,
        zeros=zeros,
        load=load,
        store=store,
        broadcast4=broadcast4,
        add=add,
        xor=xor,
        unpacklo8=unpacklo8,
        unpackhi8=unpackhi8,
        unpacklo16=unpacklo16,
        unpackhi16=unpackhi16,
        splat8=splat8,
        splat32=splat32,
        mullo=mullo,
        nibbles=nibbles,
        zeros_f64=zeros_f64,
        block_term=block_term,
        add_low_f64=add_low_f64,
        add_high_f64=add_high_f64,
        store_f32=store_f32,
        prefetch=prefetch,
        dpbusd=dpbusd,
        madd16=madd16,
    )


#: The operations of each vector width.
OPS = {256: _ops(256), 512: _ops(512)}
