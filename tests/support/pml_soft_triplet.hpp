// The cases of tests/reference/data/pml_soft_triplet.txt (pytorch-metric-learning
// 2.8.1 TripletMarginLoss(margin, smooth_loss=True), written by
// tests/reference/generate_pml_triplet_angular.py), run through
// batch_all_triplet_loss (hard = 0: all triplets) or batch_hard_triplet_loss
// (hard = 1: PML's BatchHardMiner) with soft = true and MeanNonZero.
#pragma once

#include "support/catch.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/batch_all_triplet_loss.hpp>
#include <contrastive/losses/batch_hard_triplet_loss.hpp>
#include <contrastive/metrics/cosine.hpp>
#include <contrastive/metrics/dot_product.hpp>
#include <contrastive/metrics/squared_euclidean.hpp>

#include <algorithm>
#include <cmath>
#include <string>

namespace contrastive_test {

// Worst relative errors per distance code (0 Cosine, 1 DotProduct, 2 Euclidean, 3 SquaredEuclidean).
struct SoftTripletWorst {
  double value[4] = {0, 0, 0, 0};
  double grad[4] = {0, 0, 0, 0};
  int cases[4] = {0, 0, 0, 0};
};

inline const char* pml_distance_name(int code) {
  static const char* const names[] = {"CosineSimilarity()", "DotProductSimilarity(normalize_embeddings=False)",
                                      "LpDistance(normalize_embeddings=False)",
                                      "LpDistance(normalize_embeddings=False, power=2)"};
  return names[code];
}

// Runs every case of the file with the given `hard` flag; CHECKs 1e-9 relative.
inline SoftTripletWorst compare_soft_triplets_with_pml(bool hard) {
  using namespace contrastive;
  const ReferenceFile ref("pml_soft_triplet.txt");
  const int cases = int(ref.scalar("cases"));
  REQUIRE(cases > 0);
  SoftTripletWorst worst;
  for (int k = 0; k < cases; ++k) {
    const std::string c = "case" + std::to_string(k) + "_";
    if ((ref.scalar(c + "hard") != 0) != hard) continue;
    const RowMatrix<double> X = ref.matrix(c + "X");
    const Eigen::VectorXi labels = ref.labels(c + "labels");
    const int code = int(ref.scalar(c + "distance"));
    TripletOptions o;
    o.soft = true;
    o.margin = ref.scalar(c + "margin");
    o.reduction = Reduction::MeanNonZero;
    auto on_metric = [&](const auto& metric, const TripletOptions& opt) {
      return hard ? batch_hard_triplet_loss(X, labels, metric, opt) : batch_all_triplet_loss(X, labels, metric, opt);
    };
    auto run = [&](const TripletOptions& opt) {
      return code == 0   ? on_metric(Cosine{}, opt)
             : code == 1 ? on_metric(DotProduct{}, opt)
             : code == 2 ? on_metric(Euclidean{}, opt)
                         : on_metric(SquaredEuclidean{}, opt);
    };
    const LossResult<double> got = run(o);
    const double want = ref.scalar(c + "value");
    const RowMatrix<double> grad = ref.matrix(c + "grad");
    const double ev = want == 0 ? std::abs(got.value) : std::abs(got.value - want) / std::abs(want);
    const double scale = grad.cwiseAbs().maxCoeff();
    const double err = (got.grad[0] - grad).cwiseAbs().maxCoeff();
    const double eg = scale == 0 ? err : err / scale;
    // PML's per-triplet losses summed per anchor; ours are per anchor too.
    const LossResult<double> summed = run(TripletOptions{o.margin, true, false, Reduction::Sum});
    const Vector<double> terms = ref.vector(c + "terms");
    const double tscale = terms.cwiseAbs().maxCoeff();
    const double terr = (summed.terms - terms).cwiseAbs().maxCoeff();
    INFO("case " << k << ", " << pml_distance_name(code) << ", margin " << o.margin);
    CHECK(ev <= 1e-9);
    CHECK(eg <= 1e-9);
    CHECK((tscale == 0 ? terr : terr / tscale) <= 1e-9);
    if (want != 0) CHECK_FALSE(got.grad[0].isZero(0));
    worst.value[code] = std::max(worst.value[code], ev);
    worst.grad[code] = std::max(worst.grad[code], eg);
    ++worst.cases[code];
  }
  return worst;
}

}  // namespace contrastive_test
