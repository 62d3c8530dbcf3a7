// Built with OpenMP (the openmp_tests family): the tile engine runs the tiles
// of a round in parallel, and every symmetric-tile loss gives the same value,
// gradient and terms, bit for bit, on one thread and on several, on the
// kept-tile path (default workspace) and on the recomputed-tile path (a small
// one), at sizes with several rounds of several tiles. The panel losses
// (batch_all, batch_semihard) run their anchors on threads too and agree to
// rounding: while the whole matrix fits, its distances and its backward are
// Eigen products whose blocking depends on the thread count (on row panels
// they are bit-identical as well).
#include "support/catch.hpp"
#include "support/fixtures.hpp"

#include <contrastive/contrastive.hpp>

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_openmp {

namespace {

template <class S>
using Call = std::function<LossResult<S>(const RowMatrix<S>&, const Eigen::VectorXi&, std::size_t)>;

template <class S>
struct Named {
  std::string name;
  Call<S> call;
  bool tiles = true;  // false: a panel loss
};

template <class S>
std::vector<Named<S>> calls() {
  std::vector<Named<S>> c;
  c.push_back({"batch_hard", [](const RowMatrix<S>& X, const Eigen::VectorXi& y, std::size_t budget) {
    TripletOptions o;
    o.workspace_bytes = budget;
    return batch_hard_triplet_loss(X, y, o);
  }});
  c.push_back({"batch_hard (integer points: ties)", [](const RowMatrix<S>& X, const Eigen::VectorXi& y, std::size_t budget) {
    TripletOptions o;
    o.workspace_bytes = budget;
    const RowMatrix<S> rounded = (X.array() * S(2)).round().matrix();
    return batch_hard_triplet_loss(rounded, y, o);
  }});
  c.push_back({"batch_contrastive", [](const RowMatrix<S>& X, const Eigen::VectorXi& y, std::size_t budget) {
    ContrastiveOptions o;
    o.neg_margin = 4;
    o.reduction = MeanNonZero(Eigen::VectorXd::LinSpaced(X.rows(), 0.0, 2.0));
    o.workspace_bytes = budget;
    return batch_contrastive_loss(X, y, o);
  }});
  c.push_back({"margin", [](const RowMatrix<S>& X, const Eigen::VectorXi& y, std::size_t budget) {
    MarginOptions o;
    o.beta = 4;
    o.class_beta = Eigen::VectorXd::LinSpaced(7, 3.5, 4.5);
    o.nu = 0.1;
    o.workspace_bytes = budget;
    MarginLossResult<S> r = margin_loss(X, y, o);
    r.grad.push_back(RowMatrix<S>(r.beta_grad));
    return static_cast<LossResult<S>>(r);
  }});
  c.push_back({"supcon", [](const RowMatrix<S>& X, const Eigen::VectorXi& y, std::size_t budget) {
    SupConOptions o;
    o.workspace_bytes = budget;
    return supcon_loss(X, y, 0.2, o);
  }});
  c.push_back({"ntxent (labels)", [](const RowMatrix<S>& X, const Eigen::VectorXi& y, std::size_t budget) {
    NTXentOptions o;
    o.workspace_bytes = budget;
    return ntxent_loss(X, y, 0.2, Euclidean{}, o);
  }});
  c.push_back({"lifted_structure (refine pass; MeanNonZero, sample weights)",
               [](const RowMatrix<S>& X, const Eigen::VectorXi& y, std::size_t budget) {
    LiftedStructureOptions o;
    o.neg_margin = 4;
    o.reduction = MeanNonZero(Eigen::VectorXd::LinSpaced(X.rows(), 0.0, 2.0));
    o.workspace_bytes = budget;
    return lifted_structure_loss(X, y, o);
  }});
  c.push_back({"generalized_lifted_structure", [](const RowMatrix<S>& X, const Eigen::VectorXi& y, std::size_t budget) {
    LiftedStructureOptions o;
    o.workspace_bytes = budget;
    return generalized_lifted_structure_loss(X, y, Cosine{}, o);
  }});
  c.push_back({"nca", [](const RowMatrix<S>& X, const Eigen::VectorXi& y, std::size_t budget) {
    NCAOptions o;
    o.softmax_scale = 0.5;
    o.workspace_bytes = budget;
    return nca_loss(X, y, o);
  }});
  c.push_back({"npairs (classes of two: N / 2 pairs)", [](const RowMatrix<S>& X, const Eigen::VectorXi&, std::size_t budget) {
    Eigen::VectorXi twos(X.rows());
    for (Index i = 0; i < X.rows(); ++i) twos(i) = static_cast<int>(i / 2);
    NPairsOptions o;
    o.workspace_bytes = budget;
    return npairs_loss(X, twos, Euclidean{}, o);
  }});
  c.push_back({"batch_all", [](const RowMatrix<S>& X, const Eigen::VectorXi& y, std::size_t budget) {
                  TripletOptions o;
                  o.workspace_bytes = budget;
                  return batch_all_triplet_loss(X, y, o);
                }, false});
  c.push_back({"batch_semihard", [](const RowMatrix<S>& X, const Eigen::VectorXi& y, std::size_t budget) {
                  TripletOptions o;
                  o.workspace_bytes = budget;
                  return batch_semihard_triplet_loss(X, y, Cosine{}, o);
                }, false});
  return c;
}

template <class S>
LossResult<S> on_threads(int threads, const Call<S>& call, const RowMatrix<S>& X, const Eigen::VectorXi& y,
                         std::size_t budget) {
  const int before = omp_get_max_threads();
  omp_set_num_threads(threads);
  LossResult<S> r = call(X, y, budget);
  omp_set_num_threads(before);
  return r;
}

}  // namespace

TEMPLATE_TEST_CASE("batch losses give bit-identical results on one and on several threads", "[openmp][engine]", float,
                   double) {
  using S = TestType;
  // 5 blocks of up to 256 rows: 5 rounds of 3 tiles under the default workspace;
  // 64 KiB makes 64-row tiles (many rounds) that are recomputed for pass 2.
  for (const Index n : {Index(1100), Index(300)}) {
    const RowMatrix<S> X = random_embeddings<S>(n, 12, 5);
    const Eigen::VectorXi y = random_labels(n, 7, 6);
    for (const std::size_t budget : {default_workspace_bytes, std::size_t(64) << 10}) {
      for (const Named<S>& c : calls<S>()) {
        INFO(c.name << ", N " << n << ", workspace " << budget);
        const LossResult<S> one = on_threads<S>(1, c.call, X, y, budget);
        for (const int threads : {2, 3}) {
          const LossResult<S> many = on_threads<S>(threads, c.call, X, y, budget);
          INFO(threads << " threads: " << many.value << " vs " << one.value);
          REQUIRE(many.grad.size() == one.grad.size());
          if (c.tiles) {
            REQUIRE(many.value == one.value);
            REQUIRE((many.terms == one.terms));
            for (std::size_t k = 0; k < one.grad.size(); ++k) REQUIRE((many.grad[k] == one.grad[k]));
          } else {
            const double tol = sizeof(S) == sizeof(double) ? 1e-12 : 1e-5;
            REQUIRE(std::abs(double(many.value - one.value)) <= tol * std::max(1.0, std::abs(double(one.value))));
            REQUIRE(double((many.terms - one.terms).norm()) <= tol * std::max(1.0, double(one.terms.norm())));
            for (std::size_t k = 0; k < one.grad.size(); ++k) {
              const double scale = std::max(1.0, double(one.grad[k].norm()));
              REQUIRE(double((many.grad[k] - one.grad[k]).norm()) <= tol * scale);
            }
          }
        }
      }
    }
  }
}

}  // namespace test_openmp
