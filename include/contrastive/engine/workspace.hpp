// The workspace budget every batch loss, counter and miner runs under.
#pragma once

#include <cstddef>

namespace contrastive {

// Bytes of pairwise workspace (distances and their gradient) a call may hold at
// once. While the N x N matrix fits, it is computed whole (one symmetric Gram
// product); beyond that the engine walks it in panels of rows that fit. Memory
// is then O(N D + workspace) at any N. Too small a budget for one row of
// distances (and its gradient) is rejected with std::invalid_argument.
constexpr std::size_t default_workspace_bytes = std::size_t(64) << 20;

}  // namespace contrastive
