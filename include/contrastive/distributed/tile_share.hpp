// The engine's TileShare (engine/tile_share.hpp) over a communicator: rank r
// computes part r of the symmetric tiles of the gathered global batch, and the
// row-state combinations and the dense-gradient sum are all-reduces.
#pragma once

#include "contrastive/distributed/communicator.hpp"
#include "contrastive/engine/tile_share.hpp"

#include <cstdint>

namespace contrastive {
namespace distributed {
namespace detail {

template <class Scalar>
class CommunicatorTileShare final : public contrastive::detail::TileShare<Scalar> {
 public:
  explicit CommunicatorTileShare(const Communicator& comm)
      : contrastive::detail::TileShare<Scalar>(comm.rank(), comm.size()), comm_(comm) {}

  void sum(Scalar* values, Index n) const override { comm_.allreduce_sum(values, n); }
  void min(Scalar* values, Index n) const override { comm_.allreduce_min(values, n); }
  void max(Scalar* values, Index n) const override { comm_.allreduce_max(values, n); }
  void min(std::int32_t* values, Index n) const override { comm_.allreduce_min(values, n); }

 private:
  const Communicator& comm_;
};

}  // namespace detail
}  // namespace distributed
}  // namespace contrastive
