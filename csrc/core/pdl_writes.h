#pragma once
// What the last kernel this library launched with programmatic dependent launch (PDL) on a
// stream may still be writing, for the kernels launched after it.
//
// Our PDL kernels let the next kernel in the stream start early (core/pdl.cuh), and that kernel
// may read memory before its own pdl_wait() only if the early one does not write it. The decode
// GEMM reads its weight that early (int8_scaled_mm_decode.cu), so every op of ours that
// launches a PDL kernel notes here what it writes, and the GEMM dispatcher asks before it
// allows the early read. A weight just written by, say, per_token_group_quant_int8 is then
// read only after the quantization kernel has completed.
//
// Only the last such kernel matters because each of our PDL kernels lets its dependents start
// only after its own wait (pdl_wait() in core/pdl.cuh): when a kernel starts early, every kernel
// before the one ahead of it has completed. Moving that trigger ahead of the wait would break
// this record. The CUTLASS GEMMs keep the order too: a CTA triggers at its last tile, whose
// MMAs used data its load warp fetched after waiting; a CTA without tiles triggers at once, but
// dependents start only when every CTA has triggered, and some CTA has a tile.
//
// Kernels of other libraries are not seen: one that triggers its dependents early and writes
// the weight would race with the early read. Kernels that never trigger early (torch's, and
// ours launched without PDL) let the next kernel start only once all their blocks have exited;
// the early read assumes that their stores are visible by then, which the PTX ISA promises only
// after griddepcontrol.wait. The GPU tests, which write their weights with torch kernels a few
// launches before the GEMM, have not seen it fail.
#include <ATen/core/Tensor.h>
#include <cuda_runtime_api.h>

#include <initializer_list>

namespace qbench {

// Replaces the record of `stream`: the bytes of `written` (each from its first to its last
// element), which the PDL kernel about to be launched on it writes. Empty: nothing.
void note_pdl_writes(cudaStream_t stream, std::initializer_list<const at::Tensor*> written);

// Whether the bytes of `t` overlap the record of `stream`.
bool overlaps_pdl_writes(cudaStream_t stream, const at::Tensor& t);

}  // namespace qbench
