// MPerClassSampler (sampling/m_per_class_sampler.hpp): PML MPerClassSampler's
// length rule, M rows per class in every batch, classes with fewer than M rows
// drawn with replacement, seeded determinism, bad input.
#include "support/catch.hpp"
#include "support/fixtures.hpp"

#include <contrastive/sampling/m_per_class_sampler.hpp>

#include <map>
#include <set>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_m_per_class_sampler {

namespace {

// 6 classes: sizes 40, 25, 12, 9, 3 (fewer than M = 4) and 1, labels not contiguous.
std::vector<int> uneven_labels() {
  const int sizes[6] = {40, 25, 12, 9, 3, 1};
  const int names[6] = {7, -2, 100, 3, 55, 8};
  std::vector<int> y;
  for (int round = 0; round < 40; ++round)
    for (int c = 0; c < 6; ++c)
      if (round < sizes[c]) y.push_back(names[c]);
  return y;
}

// Checks every `batch` consecutive entries: batch / m classes, m rows each,
// distinct rows for a class with at least m rows.
void check_batches(const std::vector<Index>& list, const std::vector<int>& y, Index batch, Index m) {
  std::map<int, Index> class_size;
  for (int v : y) ++class_size[v];
  for (std::size_t start = 0; start + static_cast<std::size_t>(batch) <= list.size(); start += static_cast<std::size_t>(batch)) {
    std::map<int, std::vector<Index>> by_class;
    for (std::size_t i = start; i < start + static_cast<std::size_t>(batch); ++i) {
      REQUIRE(list[i] >= 0);
      REQUIRE(list[i] < static_cast<Index>(y.size()));
      by_class[y[static_cast<std::size_t>(list[i])]].push_back(list[i]);
    }
    REQUIRE(static_cast<Index>(by_class.size()) == batch / m);
    for (const auto& [label, rows] : by_class) {
      REQUIRE(static_cast<Index>(rows.size()) == m);
      const std::set<Index> distinct(rows.begin(), rows.end());
      if (class_size[label] >= m) REQUIRE(static_cast<Index>(distinct.size()) == m);
    }
  }
}

}  // namespace

TEST_CASE("MPerClassSampler: PML's length and M rows per class in every batch", "[sampler]") {
  const std::vector<int> y = uneven_labels();  // 90 rows
  MPerClassSampler s(y, 4, 12, 1000, 3);
  CHECK(s.length() == 996);  // 1000 rounded down to a multiple of the batch size
  CHECK(s.classes() == 6);
  for (int e = 0; e < 3; ++e) {
    const std::vector<Index> list = s.epoch();
    REQUIRE(static_cast<Index>(list.size()) == s.length());
    check_batches(list, y, 12, 4);
  }
  // No batch size: rounds of every class, the length a multiple of M x classes.
  MPerClassSampler all(y, 4, 0, 1000, 3);
  CHECK(all.length() == 984);
  check_batches(all.epoch(), y, 24, 4);
  // M x classes above the length: one round, cut at the length.
  MPerClassSampler short_list(y, 4, 0, 10, 3);
  CHECK(short_list.length() == 10);
  CHECK(short_list.epoch().size() == 10);
}

TEST_CASE("MPerClassSampler: small classes are drawn with replacement, large ones cover their rows", "[sampler]") {
  const std::vector<int> y = uneven_labels();
  MPerClassSampler s(y, 4, 24, 90, 11);  // one batch of every class per 24 entries: the length covers the data
  CHECK(s.length() == 72);
  std::vector<int> seen(y.size(), 0);
  bool repeated_small = false;
  for (int e = 0; e < 40; ++e) {
    const std::vector<Index> list = s.epoch();
    for (std::size_t start = 0; start < list.size(); start += 24) {
      std::map<Index, int> count;
      for (std::size_t i = start; i < start + 24; ++i) {
        ++seen[static_cast<std::size_t>(list[i])];
        if (++count[list[i]] > 1) {
          const int label = y[static_cast<std::size_t>(list[i])];
          REQUIRE((label == 55 || label == 8));  // only the classes with fewer than M rows repeat
          repeated_small = true;
        }
      }
    }
  }
  CHECK(repeated_small);
  for (std::size_t i = 0; i < y.size(); ++i) CHECK(seen[i] > 0);  // every row is drawn
}

TEST_CASE("MPerClassSampler: a seed fixes the epochs; epochs and seeds differ", "[sampler]") {
  const Eigen::VectorXi y = random_labels(200, 10, 4);
  MPerClassSampler a(y, 5, 20, 200, 9), b(y, 5, 20, 200, 9), c(y, 5, 20, 200, 10);
  const std::vector<Index> a1 = a.epoch(), a2 = a.epoch();
  CHECK(a1 == b.epoch());
  CHECK(a2 == b.epoch());
  CHECK(a1 != a2);
  CHECK(c.epoch() != a1);
}

TEST_CASE("MPerClassSampler: bad input names the argument", "[sampler]") {
  const Eigen::VectorXi y = random_labels(50, 5, 1);
  const char* fn = "contrastive::MPerClassSampler";
  REQUIRE_INVALID_ARGUMENT(MPerClassSampler(y, 0), fn, "'m'", ">= 1");
  REQUIRE_INVALID_ARGUMENT(MPerClassSampler(y, 4, 10), fn, "'m' (4) must divide 'batch_size' (10)");
  REQUIRE_INVALID_ARGUMENT(MPerClassSampler(y, 4, 24), fn, "m x (number of classes) = 20", "'batch_size' (24)");
  REQUIRE_INVALID_ARGUMENT(MPerClassSampler(y, 2, 8, 6), fn, "'length_before_new_iter' (6)", "'batch_size' (8)");
  REQUIRE_INVALID_ARGUMENT(MPerClassSampler(y, 2, -1), fn, "'batch_size'");
  REQUIRE_INVALID_ARGUMENT(MPerClassSampler(y, 2, 0, 0), fn, "'length_before_new_iter'");
  REQUIRE_INVALID_ARGUMENT(MPerClassSampler(Eigen::VectorXi(0), 2), fn, "'labels' is empty");
}

}  // namespace test_m_per_class_sampler
