// The libtorch adapter (include/contrastive/libtorch/, docs/libtorch.md): every
// loss as an autograd function on torch::Tensor, and the miners returning
// index tensors, with the whole library (contrastive.hpp). Needs libtorch;
// the rest of the library never includes it.
#pragma once

#include "contrastive/contrastive.hpp"
#include "contrastive/libtorch/autograd_function.hpp"
#include "contrastive/libtorch/losses.hpp"
#include "contrastive/libtorch/miners.hpp"
#include "contrastive/libtorch/tensors.hpp"
