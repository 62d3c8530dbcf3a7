// The MPI communicator the distributed losses run on, and the few collectives
// they use, typed. Needs <mpi.h> (Open MPI or any MPI-3 implementation);
// nothing outside contrastive/distributed includes it.
//
//   contrastive::distributed::Communicator comm(MPI_COMM_WORLD);  // not owned: the caller keeps it alive
//   comm.rank(), comm.size()
//   comm.traffic()  // payload bytes this rank sent and received in the library's collectives so far
//
// Every collective here is entered by every rank of the communicator in the
// same order; the distributed calls agree on their inputs first so that bad
// input on one rank never leaves the others waiting (agreement.hpp).
#pragma once

#include "contrastive/core/types.hpp"

#include <mpi.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace contrastive {
namespace distributed {

// Payload bytes: what this rank contributed to the others (sent) and what it
// took from them (received), counted once per collective whatever algorithm
// MPI runs; its own share is not counted.
struct Traffic {
  std::uint64_t sent = 0;
  std::uint64_t received = 0;
  std::uint64_t collectives = 0;
};

namespace detail {

template <class T>
MPI_Datatype mpi_type();
template <>
inline MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <>
inline MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }
template <>
inline MPI_Datatype mpi_type<std::int64_t>() { return MPI_INT64_T; }
template <>
inline MPI_Datatype mpi_type<std::int32_t>() { return MPI_INT32_T; }
template <>
inline MPI_Datatype mpi_type<char>() { return MPI_CHAR; }

inline void check_mpi(int code, const char* what) {
  if (code != MPI_SUCCESS) {
    throw std::runtime_error(std::string("contrastive::distributed: MPI call ") + what + " failed with code " +
                             std::to_string(code));
  }
}

inline int to_int_count(Index n, const char* what) {
  if (n < 0 || n > static_cast<Index>(std::numeric_limits<int>::max())) {
    throw std::invalid_argument(std::string("contrastive::distributed: ") + what + " of " + std::to_string(n) +
                                " elements exceeds MPI's int count");
  }
  return static_cast<int>(n);
}

}  // namespace detail

class Communicator {
 public:
  explicit Communicator(MPI_Comm comm) : comm_(comm) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      throw std::invalid_argument("contrastive::distributed::Communicator: MPI is not initialised; call MPI_Init first");
    }
    detail::check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    detail::check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }

  MPI_Comm get() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }
  const Traffic& traffic() const { return traffic_; }
  void reset_traffic() const { traffic_ = Traffic{}; }

  // Every rank's `count` values, concatenated in rank order; counts[r] is rank r's.
  template <class T>
  void allgatherv(const T* mine, const std::vector<Index>& counts, T* all) const {
    std::vector<int> c(counts.size()), displ(counts.size());
    Index offset = 0, total = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      c[r] = detail::to_int_count(counts[r], "an all-gather");
      displ[r] = detail::to_int_count(offset, "an all-gather");
      offset += counts[r];
      total += counts[r];
    }
    const Index own = counts[static_cast<std::size_t>(rank_)];
    T dummy{};
    detail::check_mpi(MPI_Allgatherv(own > 0 ? mine : &dummy, c[static_cast<std::size_t>(rank_)],
                                     detail::mpi_type<T>(), all, c.data(), displ.data(), detail::mpi_type<T>(), comm_),
                      "MPI_Allgatherv");
    count(static_cast<std::uint64_t>(own) * (static_cast<std::uint64_t>(size_) - 1) * sizeof(T),
          static_cast<std::uint64_t>(total - own) * sizeof(T));
  }

  // A fixed number of values from every rank.
  template <class T>
  std::vector<T> allgather(const std::vector<T>& mine) const {
    std::vector<T> all(mine.size() * static_cast<std::size_t>(size_));
    detail::check_mpi(MPI_Allgather(mine.data(), detail::to_int_count(static_cast<Index>(mine.size()), "an all-gather"),
                                    detail::mpi_type<T>(), all.data(),
                                    static_cast<int>(mine.size()), detail::mpi_type<T>(), comm_),
                      "MPI_Allgather");
    count(mine.size() * (static_cast<std::uint64_t>(size_) - 1) * sizeof(T),
          mine.size() * (static_cast<std::uint64_t>(size_) - 1) * sizeof(T));
    return all;
  }

  // The elementwise sum over ranks of `all` (every rank's full-length
  // contribution), of which this rank keeps its block: counts[r] elements for rank r.
  template <class T>
  void reduce_scatter(const T* all, const std::vector<Index>& counts, T* mine) const {
    std::vector<int> c(counts.size());
    Index total = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      c[r] = detail::to_int_count(counts[r], "a reduce-scatter");
      total += counts[r];
    }
    T dummy{};
    const Index own = counts[static_cast<std::size_t>(rank_)];
    detail::check_mpi(MPI_Reduce_scatter(all, own > 0 ? mine : &dummy, c.data(), detail::mpi_type<T>(), MPI_SUM, comm_),
                      "MPI_Reduce_scatter");
    count(static_cast<std::uint64_t>(total - own) * sizeof(T),
          static_cast<std::uint64_t>(own) * (static_cast<std::uint64_t>(size_) - 1) * sizeof(T));
  }

  // In place: the elementwise sum over ranks.
  template <class T>
  void allreduce_sum(T* values, Index n) const {
    allreduce(values, n, MPI_SUM);
  }
  // In place: the elementwise minimum, or maximum, over ranks.
  template <class T>
  void allreduce_min(T* values, Index n) const {
    allreduce(values, n, MPI_MIN);
  }
  template <class T>
  void allreduce_max(T* values, Index n) const {
    allreduce(values, n, MPI_MAX);
  }

  // Rank `root`'s values on every rank.
  template <class T>
  void broadcast(T* values, Index n, int root) const {
    if (n == 0) return;
    detail::check_mpi(MPI_Bcast(values, detail::to_int_count(n, "a broadcast"), detail::mpi_type<T>(), root, comm_),
                      "MPI_Bcast");
    const std::uint64_t bytes = static_cast<std::uint64_t>(n) * sizeof(T);
    const bool sends = rank_ == root;
    count(sends ? bytes * (static_cast<std::uint64_t>(size_) - 1) : 0, sends ? 0 : bytes);
  }

 private:
  template <class T>
  void allreduce(T* values, Index n, MPI_Op op) const {
    if (n == 0) return;
    detail::check_mpi(MPI_Allreduce(MPI_IN_PLACE, values, detail::to_int_count(n, "an all-reduce"), detail::mpi_type<T>(),
                                    op, comm_),
                      "MPI_Allreduce");
    const std::uint64_t bytes = static_cast<std::uint64_t>(n) * sizeof(T);
    count(size_ > 1 ? bytes : 0, size_ > 1 ? bytes : 0);
  }

  void count(std::uint64_t sent, std::uint64_t received) const {
    traffic_.sent += sent;
    traffic_.received += received;
    ++traffic_.collectives;
  }

  MPI_Comm comm_;
  int rank_ = 0;
  int size_ = 1;
  mutable Traffic traffic_;
};

}  // namespace distributed
}  // namespace contrastive
