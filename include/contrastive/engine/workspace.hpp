// The workspace budget every batch loss, counter and miner runs under, and the
// Workspace a caller may lend a call so that its large buffers outlive it.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <new>

namespace contrastive {

// Bytes of pairwise workspace (distances and their gradient) a call may hold at
// once. While the N x N matrix fits, it is computed whole (one symmetric Gram
// product); beyond that the engine walks it in panels of rows that fit. Memory
// is then O(N D + workspace) at any N. Too small a budget for one row of
// distances (and its gradient) is rejected with std::invalid_argument.
constexpr std::size_t default_workspace_bytes = std::size_t(64) << 20;

// Buffers a caller lends to calls it repeats (a loss against a memory or a
// fixed gallery, every step). Without one, a call allocates its large scratch
// (the distance tiles kept for the second pass, up to the workspace budget; a
// Cosine reference set's unit rows) and frees it on return, and the system
// hands back fresh pages that must be faulted in and zeroed on every call:
// at a budget of 64 MiB that costs about as much as a tenth of the products.
// With one, the call reuses what the last call left.
//
//   contrastive::Workspace workspace;
//   loss(X, labels, reference_set(R, ref_labels).reusing(workspace), ...);
//
// CrossBatchMemory keeps one of its own. A workspace serves one call at a
// time (not two threads at once). It only grows, to the largest a call has
// needed; bytes() says how much it holds, release() frees it all.
class Workspace {
 public:
  // What a buffer is for; each is reused only for the same purpose.
  enum class Use : std::size_t { KeptTiles, ReferenceUnitRows, Count };

  // A copy starts empty: the buffers are scratch, not state, so an object
  // holding a workspace (CrossBatchMemory) stays copyable.
  Workspace() = default;
  Workspace(const Workspace&) {}
  Workspace& operator=(const Workspace&) { return *this; }
  Workspace(Workspace&&) noexcept = default;
  Workspace& operator=(Workspace&&) noexcept = default;

  std::size_t bytes() const {
    std::size_t total = 0;
    for (const Buffer& b : buffers_) total += b.bytes;
    return total;
  }

  void release() {
    for (Buffer& b : buffers_) b = Buffer{};
  }

  // At least `count` uninitialised T for `use`, aligned for vector loads; the
  // contents of a previous call are not kept when the buffer has to grow.
  template <class T>
  T* buffer(Use use, std::size_t count) {
    Buffer& b = buffers_[static_cast<std::size_t>(use)];
    const std::size_t bytes = count * sizeof(T);
    if (bytes > b.bytes) {
      b = Buffer{};
      b.data.reset(::operator new(bytes, std::align_val_t(alignment)));
      b.bytes = bytes;
    }
    return static_cast<T*>(b.data.get());
  }

 private:
  static constexpr std::size_t alignment = 64;
  struct Free {
    void operator()(void* p) const { ::operator delete(p, std::align_val_t(alignment)); }
  };
  struct Buffer {
    std::unique_ptr<void, Free> data;
    std::size_t bytes = 0;
  };
  std::array<Buffer, static_cast<std::size_t>(Use::Count)> buffers_{};
};

}  // namespace contrastive
