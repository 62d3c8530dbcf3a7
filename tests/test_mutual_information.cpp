// NMI and AMI (evaluation/mutual_information.hpp) against scikit-learn 1.2's
// normalized_mutual_info_score and adjusted_mutual_info_score on fixed
// clusterings (tests/reference/generate_pml_accuracy.py), invariances, bad input.
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/evaluation/mutual_information.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_mutual_information {

namespace {

LabelVector labels_of(const ReferenceFile& f, const std::string& name) {
  return f.vector(name).cast<Label>();  // exact: the values are integers below 2^53
}

}  // namespace

TEST_CASE("mutual information: scikit-learn's NMI and AMI on fixed clusterings", "[mutual_information]") {
  const ReferenceFile f("sklearn_mutual_info.txt");
  for (const std::string name : {"random", "large", "identical", "permuted", "one_vs_many", "singletons", "both_one",
                                 "sparse_values", "near_independent"}) {
    INFO(name);
    const LabelVector a = labels_of(f, name + "_true"), b = labels_of(f, name + "_pred");
    const double nmi = normalized_mutual_info(a, b), ami = adjusted_mutual_info(a, b);
    CHECK(nmi == Approx(f.scalar(name + "_nmi")).margin(1e-13).epsilon(0));
    CHECK(ami == Approx(f.scalar(name + "_ami")).margin(1e-13).epsilon(0));
  }
}

TEST_CASE("mutual information: symmetric, invariant under renaming, 1 for equal partitions", "[mutual_information]") {
  const Eigen::VectorXi a = random_labels(200, 6, 1), b = random_labels(200, 4, 2);
  CHECK(normalized_mutual_info(a, b) == Approx(normalized_mutual_info(b, a)).margin(1e-15));
  CHECK(adjusted_mutual_info(a, b) == Approx(adjusted_mutual_info(b, a)).margin(1e-15));
  const Eigen::VectorXi renamed = (a.array() * 3 - 100).matrix();
  CHECK(normalized_mutual_info(renamed, b) == Approx(normalized_mutual_info(a, b)).margin(1e-15));
  CHECK(normalized_mutual_info(a, renamed) == Approx(1.0).margin(1e-15));
  CHECK(adjusted_mutual_info(a, renamed) == Approx(1.0).margin(1e-15));
  // Independent random labelings: AMI near 0, NMI small but positive.
  CHECK(std::abs(adjusted_mutual_info(a, b)) < 0.02);
  CHECK(normalized_mutual_info(a, b) > 0);
  // std::vector labels work too.
  const std::vector<int> va(a.data(), a.data() + a.size()), vb(b.data(), b.data() + b.size());
  CHECK(normalized_mutual_info(va, vb) == normalized_mutual_info(a, b));
}

TEST_CASE("mutual information: bad input names the argument", "[mutual_information]") {
  const Eigen::VectorXi a = random_labels(10, 3, 1);
  REQUIRE_INVALID_ARGUMENT(normalized_mutual_info(a, random_labels(9, 3, 2)), "contrastive::normalized_mutual_info",
                           "'labels_pred'", "length 9");
  REQUIRE_INVALID_ARGUMENT(adjusted_mutual_info(a, random_labels(11, 3, 2)), "contrastive::adjusted_mutual_info",
                           "'labels_pred'", "length 11");
  REQUIRE_INVALID_ARGUMENT(normalized_mutual_info(Eigen::VectorXi(0), Eigen::VectorXi(0)), "'labels_true' is empty");
  REQUIRE_INVALID_ARGUMENT(adjusted_mutual_info(Eigen::MatrixXi::Zero(2, 3), Eigen::VectorXi::Zero(6)),
                           "'labels_true'", "must be a vector");
}

}  // namespace test_mutual_information
