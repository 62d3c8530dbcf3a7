// The same input gives bitwise identical output: on repeated calls, from
// fresh copies of the input at other addresses, and from every input layout
// that binds without a copy. Across processes (other heap addresses under
// ASLR) tests/hardening/determinism.sh runs this binary twice with
// CONTRASTIVE_DETERMINISM_DUMP set and compares the dumps byte for byte.
#include "hardening/workloads.hpp"
#include "support/cases.hpp"
#include "support/catch.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>

using namespace contrastive;
using namespace contrastive_test;

namespace test_determinism {

TEMPLATE_TEST_CASE("repeated calls on fresh copies of the input are bitwise identical",
                   "[determinism]", float, double) {
  std::vector<Snapshot> first;
  {
    const WorkloadInputs<TestType> inputs;
    for (const Workload& w : all_workloads(inputs)) first.push_back(w.run());
  }
  // Other allocations (kept alive so the addresses really differ), same values.
  std::vector<std::unique_ptr<WorkloadInputs<TestType>>> copies;
  for (int round = 0; round < 3; ++round) {
    copies.push_back(std::make_unique<WorkloadInputs<TestType>>());
    const std::vector<Workload> workloads = all_workloads(*copies.back());
    REQUIRE(workloads.size() == first.size());
    for (std::size_t w = 0; w < workloads.size(); ++w) {
      INFO("round " << round << ", " << workloads[w].name);
      CHECK(workloads[w].run() == first[w]);
      CHECK(workloads[w].run() == first[w]);
    }
  }
}

TEMPLATE_TEST_CASE("row-major, column-major and Map inputs give bitwise identical output",
                   "[determinism]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const WorkloadInputs<S> in;
  const RowMatrix<S> D = pairwise_distance<M>(in.X);
  const RowMatrix<S> G = pairwise_distance_backward<M>(in.X, in.dD);

  const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> col_major = in.X;
  std::vector<S> buffer(in.X.data(), in.X.data() + in.X.size());
  const Eigen::Map<const RowMatrix<S>> mapped(buffer.data(), in.X.rows(), in.X.cols());

  Snapshot expected, from_col, from_map;
  expected.add(D);
  expected.add(G);
  from_col.add(pairwise_distance<M>(col_major));
  from_col.add(pairwise_distance_backward<M>(col_major, in.dD));
  from_map.add(pairwise_distance<M>(mapped));
  from_map.add(pairwise_distance_backward<M>(mapped, in.dD));
  CHECK(from_col == expected);
  CHECK(from_map == expected);
}

// With CONTRASTIVE_DETERMINISM_DUMP=<file>, writes every workload's output
// bytes as hex, one line per workload, for the cross-process comparison.
TEST_CASE("dump of every workload's output for the cross-process comparison",
          "[determinism][dump]") {
  const char* path = std::getenv("CONTRASTIVE_DETERMINISM_DUMP");
  if (path == nullptr) {
    SUCCEED("CONTRASTIVE_DETERMINISM_DUMP not set; nothing to dump");
    return;
  }
  std::ofstream out(path);
  REQUIRE(out.good());
  std::size_t lines = 0;
  auto dump = [&](const std::vector<Workload>& workloads) {
    for (const Workload& w : workloads) {
      out << w.name << ' ';
      char hex[3];
      const Snapshot snapshot = w.run();  // kept alive: bytes() refers into it
      for (unsigned char c : snapshot.bytes()) {
        std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned>(c));
        out << hex;
      }
      out << '\n';
      ++lines;
    }
  };
  const WorkloadInputs<float> f;
  const WorkloadInputs<double> d;
  dump(all_workloads(f));
  dump(all_workloads(d));
  out.close();
  CHECK(lines >= 78);
  CHECK(out.good());
}

}  // namespace test_determinism
