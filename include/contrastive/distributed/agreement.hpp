// Collective agreement on errors: each rank validates its own input, then
// all of them learn every rank's verdict in one small all-gather before any
// collective that could wait on a rank that gave up. A problem on any rank
// becomes the same std::invalid_argument on every rank, naming the rank(s).
#pragma once

#include "contrastive/distributed/communicator.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace contrastive {
namespace distributed {
namespace detail {

// What one rank says before the batch is gathered: its row count, its column
// count and the length of its error message (0: none).
struct Shape {
  Index rows = 0;
  Index cols = 0;
};

// "contrastive::loss: what" -> "what": the rank's prefix replaces the function's.
inline std::string without_function(const std::string& message, const char* function) {
  const std::string prefix = std::string("contrastive::") + function + ": ";
  return message.compare(0, prefix.size(), prefix) == 0 ? message.substr(prefix.size()) : message;
}

[[noreturn]] inline void fail_collectively(const char* function, const std::string& problems) {
  throw std::invalid_argument(std::string("contrastive::distributed::") + function + ": " + problems);
}

// The error messages of every rank that has one (collective; "" on a rank
// with none), joined as "rank r: message; rank s: message".
inline std::string gather_errors(const Communicator& comm, const std::vector<std::int64_t>& lengths,
                                 const std::string& mine, const char* function) {
  std::vector<Index> counts(lengths.begin(), lengths.end());
  Index total = 0;
  for (Index c : counts) total += c;
  std::vector<char> all(static_cast<std::size_t>(total));
  comm.allgatherv(mine.data(), counts, all.data());
  std::string joined;
  Index offset = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    if (counts[r] > 0) {
      if (!joined.empty()) joined += "; ";
      joined += "rank " + std::to_string(r) + ": " +
                without_function(std::string(all.data() + offset, static_cast<std::size_t>(counts[r])), function);
    }
    offset += counts[r];
  }
  return joined;
}

// Collective: every rank passes its error ("" when it has none); if any rank
// has one, every rank throws the joined messages.
inline void agree(const Communicator& comm, const char* function, const std::string& error) {
  const std::vector<std::int64_t> lengths = comm.allgather(std::vector<std::int64_t>{static_cast<std::int64_t>(error.size())});
  bool any = false;
  for (std::int64_t n : lengths) any = any || n > 0;
  if (any) fail_collectively(function, gather_errors(comm, lengths, error, function));
}

// Collective, the first of every distributed call: the shapes of every rank's
// X and its local error. Throws on every rank when a rank has an error or its
// column count differs from the first rank with rows (ranks with no rows
// take any column count). Returns every rank's shape.
inline std::vector<Shape> agree_on_shapes(const Communicator& comm, const char* function, Index rows, Index cols,
                                          const std::string& error) {
  const std::vector<std::int64_t> all = comm.allgather(
      std::vector<std::int64_t>{static_cast<std::int64_t>(rows), static_cast<std::int64_t>(cols),
                                static_cast<std::int64_t>(error.size())});
  const std::size_t p = static_cast<std::size_t>(comm.size());
  std::vector<Shape> shapes(p);
  std::vector<std::int64_t> lengths(p);
  bool any_error = false;
  for (std::size_t r = 0; r < p; ++r) {
    shapes[r] = {static_cast<Index>(all[3 * r]), static_cast<Index>(all[3 * r + 1])};
    lengths[r] = all[3 * r + 2];
    any_error = any_error || lengths[r] > 0;
  }
  if (any_error) fail_collectively(function, gather_errors(comm, lengths, error, function));
  std::size_t first = p;
  for (std::size_t r = 0; r < p && first == p; ++r) {
    if (shapes[r].rows > 0) first = r;
  }
  std::string problems;
  for (std::size_t r = 0; r < p && first < p; ++r) {
    if (shapes[r].rows > 0 && shapes[r].cols != shapes[first].cols) {
      if (!problems.empty()) problems += "; ";
      problems += "rank " + std::to_string(r) + ": X has " + std::to_string(shapes[r].cols) + " columns; rank " +
                  std::to_string(first) + " has " + std::to_string(shapes[first].cols) +
                  " (every rank's rows need the same embedding dimension)";
    }
  }
  if (!problems.empty()) fail_collectively(function, problems);
  return shapes;
}

}  // namespace detail
}  // namespace distributed
}  // namespace contrastive
