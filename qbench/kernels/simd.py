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
    suffix = "512" if bits == 512 else "256"
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
        prefetch=prefetch,
        dpbusd=dpbusd,
        madd16=madd16,
    )


#: The operations of each vector width.
OPS = {256: _ops(256), 512: _ops(512)}
