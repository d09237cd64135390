// Multi-head latent attention (MLA, DeepSeek-V2 §2.1; native/README.md "Multi-head latent
// attention") on a rank's heads over the tensor-parallel group's N = B · L tokens (row
// b · L + position). One implementation serves both precisions: T = float is the rank's kernel
// (dense.cc dispatches to it), T = double the reference's whole-model computation.
#pragma once
#include <cstdint>

#include "model.h"
#include "plan.h"

namespace fsmoe {

/**
 * out (N × M, written) = the rank's partial output o · Wo of MLA with the weights `w` in the
 * layout `a` (a.mla) applied to the normalized stream n (N × M). `probs` [B, h, L, L] (zero above
 * the diagonal) is written when given.
 */
template <typename T>
void mlaForward(const Job& j, const AttentionLayout& a, const T* n, const float* w, T* out, float* probs);

/**
 * The backward from dOut (N × M): dn (N × M, written) and the weights' gradient dw (accumulated,
 * layout `a`). It recomputes the forward; the gradients of the replicated part (Wdq, Wdkv and the
 * lora norms) cover only this rank's heads — partial sums over tp.
 */
template <typename T>
void mlaBackward(const Job& j, const AttentionLayout& a, const T* n, const float* w, const T* dOut, T* dn, T* dw);

}  // namespace fsmoe
