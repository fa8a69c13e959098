// Fragment layouts of mma.sync m16n8k16 and m16n8k8 (.f16/.bf16 inputs, f32 accumulators),
// written from CuTe's MMA traits, NVIDIA/cutlass include/cute/atom/mma_traits_sm80.hpp:
//   MMA_Traits<SM80_16x8x16_F16F16F16F16_TN> (the F32F16F16F32 and F32BF16BF16F32 traits
//   inherit its layouts):
//     ALayout = Layout<Shape <Shape < _4,_8>,Shape < _2,_2,  _2>>,
//                      Stride<Stride<_32,_1>,Stride<_16,_8,_128>>>      (T32,V8) -> (M16,K16)
//     BLayout = Layout<Shape <Shape < _4,_8>,Shape <_2, _2>>,
//                      Stride<Stride<_16,_1>,Stride<_8,_64>>>           (T32,V4) -> (N8,K16)
//     CLayout = SM80_16x8_Row                                           (T32,V4) -> (M16,N8)
//   MMA_Traits<SM80_16x8x8_F16F16F16F16_TN>:
//     ALayout = SM80_16x8_Row                                           (T32,V4) -> (M16,K8)
//     BLayout = SM80_8x8_Row                                            (T32,V2) -> (N8,K8)
//     CLayout = SM80_16x8_Row
//   MMA_Traits<SM80_16x8x8_F32TF32TF32F32_TN>:
//     ALayout = Layout<Shape <Shape < _4,_8>,Shape <_2, _2>>,
//                      Stride<Stride<_16,_1>,Stride<_8,_64>>>           (T32,V4) -> (M16,K8)
//     BLayout = Layout<Shape <Shape <_4,_8>, _2>,
//                      Stride<Stride<_8,_1>,_32>>                       (T32,V2) -> (N8,K8)
//     CLayout = SM80_16x8_Row
//   SM80_16x8_Row = Layout<Shape <Shape < _4,_8>,Shape < _2,_2>>, Stride<Stride<_32,_1>,Stride<_16,_8>>>
//   SM80_8x8_Row  = Layout<Shape <Shape < _4,_8>,_2>,             Stride<Stride<_16,_1>,_8>>
// A layout maps (thread, value) to a column-major index into its (rows, cols) tile; thread
// modes are colexicographic (thread = t0 + 4 t1), value modes too (v = v0 + 2 v1 + 4 v2).
// Value v of a 16-bit operand is half v % 2 (low half first) of register v / 2; a tf32 value,
// and an accumulator, is one 32-bit register.
#pragma once

namespace emu {

struct TvLayout {
    int rows;  // extent of the tile's first (column-major fastest) mode
    int thread_stride[2];
    int value_shape[3];
    int value_stride[3];

    // (row, col) of value v of thread (lane) t.
    void coord(int t, int v, int& row, int& col) const {
        int idx = thread_stride[0] * (t % 4) + thread_stride[1] * (t / 4);
        for (int m = 0; m < 3; ++m) {
            idx += value_stride[m] * (v % value_shape[m]);
            v /= value_shape[m];
        }
        row = idx % rows;
        col = idx / rows;
    }
};

// m16n8k16: A (M16, K16), B (N8, K16), C (M16, N8).
constexpr TvLayout K16_A = {16, {32, 1}, {2, 2, 2}, {16, 8, 128}};
constexpr TvLayout K16_B = {8, {16, 1}, {2, 2, 1}, {8, 64, 0}};
// SM80_16x8_Row: C of both shapes, and A (M16, K8) of m16n8k8.
constexpr TvLayout ROW_16x8 = {16, {32, 1}, {2, 2, 1}, {16, 8, 0}};
// SM80_8x8_Row: B (N8, K8) of m16n8k8.
constexpr TvLayout ROW_8x8 = {8, {16, 1}, {2, 1, 1}, {8, 0, 0}};
// m16n8k8 with tf32 inputs: A (M16, K8), B (N8, K8).
constexpr TvLayout TF32_A = {16, {16, 1}, {2, 2, 1}, {8, 64, 0}};
constexpr TvLayout TF32_B = {8, {8, 1}, {2, 1, 1}, {32, 0, 0}};

}  // namespace emu
