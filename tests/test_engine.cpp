// The pairwise engine's paths through the distance matrix: the whole matrix
// (the default budget) and a budget of exactly T rows of distances (and of
// their gradient, when it is dense) give the same value, gradient blocks and
// terms for every batch loss and metric, in all three call forms. Under that
// budget the panel losses (batch_all, batch_semihard, supcon, ntxent) walk row
// panels of exactly T anchors (engine/panels.hpp); the symmetric-tile losses
// (batch_hard, batch_contrastive, margin: engine/tiles.hpp) walk the tiles that
// fit it and recompute them for a second pass. Also: a budget below one row is
// rejected; N = 0 works under any budget; the panel engine's contract with a
// loss; and the small-budget path matches a brute-force triple loop for
// batch-hard and batch-all.
#include "support/catch.hpp"
#include "support/fixtures.hpp"

#include <contrastive/contrastive.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_engine {

namespace {

constexpr Index kDim = 5;
constexpr Index kTile = 7;

// Whole matrix vs panels: relative to the norm, max(1, |whole|).
template <class S>
constexpr double path_tolerance() {
  return sizeof(S) == sizeof(double) ? 1e-12 : 1e-5;
}

// The panel path against a brute-force loop in double (float rounding of the distances).
template <class S>
constexpr double brute_tolerance() {
  return sizeof(S) == sizeof(double) ? 1e-10 : 1e-4;
}

// Everything a call returns, in double: the value, every gradient block (the
// embeddings', then the metric's, then the loss's own: margin_loss's beta), the terms.
struct Outcome {
  double value = 0;
  std::vector<RowMatrix<double>> blocks;
  Eigen::VectorXd terms;
};

template <class S>
Outcome outcome_of(const LossResult<S>& r) {
  Outcome o;
  o.value = static_cast<double>(r.value);
  for (const RowMatrix<S>& g : r.grad) o.blocks.push_back(g.template cast<double>());
  o.terms = r.terms.template cast<double>();
  return o;
}

template <class S>
Outcome outcome_of(const MarginLossResult<S>& r) {
  Outcome o = outcome_of(static_cast<const LossResult<S>&>(r));
  o.blocks.push_back(RowMatrix<double>(r.beta_grad.template cast<double>()));
  return o;
}

template <class A, class B>
double relative_error(const Eigen::MatrixBase<A>& expected, const Eigen::MatrixBase<B>& got) {
  return (expected - got).norm() / std::max(1.0, expected.norm());
}

double relative_error(double expected, double got) { return std::abs(expected - got) / std::max(1.0, std::abs(expected)); }

void check_value(double expected, double got, double tol) {
  INFO("expected " << expected << ", got " << got);
  CHECK(relative_error(expected, got) <= tol);
}

void check_blocks(const Outcome& expected, const Outcome& got, double tol) {
  REQUIRE(got.blocks.size() == expected.blocks.size());
  for (std::size_t k = 0; k < expected.blocks.size(); ++k) {
    INFO("gradient block " << k);
    REQUIRE(got.blocks[k].rows() == expected.blocks[k].rows());
    REQUIRE(got.blocks[k].cols() == expected.blocks[k].cols());
    const double error = relative_error(expected.blocks[k], got.blocks[k]);
    INFO("relative error " << error << " (norm " << expected.blocks[k].norm() << ")");
    CHECK(error <= tol);
  }
}

void check_terms(const Outcome& expected, const Outcome& got, double tol) {
  REQUIRE(got.terms.size() == expected.terms.size());
  const double error = relative_error(expected.terms, got.terms);
  INFO("terms: relative error " << error);
  CHECK(error <= tol);
}

// Losses whose terms are one per pair (O(N^2)): the full result carries them
// only while they fit the workspace budget, and is empty beyond it.
template <class Loss, class = void>
struct has_pair_terms : std::false_type {};
template <class Loss>
struct has_pair_terms<Loss, std::void_t<decltype(Loss::pair_terms)>> : std::true_type {};

template <class Loss, class S>
void check_terms_under(const Outcome& expected, const Outcome& got, double tol, std::size_t budget) {
  if (has_pair_terms<Loss>::value && static_cast<std::size_t>(expected.terms.size()) * sizeof(S) > budget) {
    INFO("per-pair terms beyond the budget are dropped");
    CHECK(got.terms.size() == 0);
    return;
  }
  check_terms(expected, got, tol);
}

template <class S>
struct Batch {
  RowMatrix<S> X;
  RowMatrix<S> X2;  // the second view (ntxent_loss's two-view form)
  Eigen::VectorXi labels;
};

enum class Layout { Mod3, Singleton };

// Labels i % 3; Singleton also gives the last row a class of its own.
Eigen::VectorXi layout_labels(Index n, Layout layout) {
  Eigen::VectorXi y(n);
  for (Index i = 0; i < n; ++i) y(i) = static_cast<int>(i % 3);
  if (layout == Layout::Singleton && n > 1) y(n - 1) = 99;
  return y;
}

template <class S>
Batch<S> make_batch(Index n, Layout layout, unsigned seed) {
  Batch<S> b;
  b.X = random_embeddings<S>(n, kDim, seed);
  const RowMatrix<S> noise = random_embeddings<S>(n, kDim, seed + 7919u, 0.3);
  b.X2 = b.X + noise;
  b.labels = layout_labels(n, layout);
  return b;
}

// One struct per batch loss: its call on a batch under a budget, whether its
// gradient is sparse (one buffer per row), and how many engine rows a batch
// row makes (the two-view form runs on [view1; view2]).
struct BatchHard {
  static constexpr const char* name = "batch_hard_triplet_loss";
  static constexpr bool sparse = true;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    TripletOptions o;
    o.margin = 0.5;
    o.workspace_bytes = budget;
    return batch_hard_triplet_loss(b.X, b.labels, m, o, tail...);
  }
};

struct BatchHardSoft {
  static constexpr const char* name = "batch_hard_triplet_loss (soft, sum)";
  static constexpr bool sparse = true;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    TripletOptions o;
    o.soft = true;
    o.reduction = Reduction::Sum;
    o.workspace_bytes = budget;
    return batch_hard_triplet_loss(b.X, b.labels, m, o, tail...);
  }
};

struct BatchSemihard {
  static constexpr const char* name = "batch_semihard_triplet_loss";
  static constexpr bool sparse = true;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    TripletOptions o;
    o.margin = 0.5;
    o.workspace_bytes = budget;
    return batch_semihard_triplet_loss(b.X, b.labels, m, o, tail...);
  }
};

struct BatchAll {
  static constexpr const char* name = "batch_all_triplet_loss";
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    TripletOptions o;
    o.margin = 0.5;
    o.reduction = Reduction::MeanNonZero;
    o.workspace_bytes = budget;
    return batch_all_triplet_loss(b.X, b.labels, m, o, tail...);
  }
};

struct BatchContrastive {
  static constexpr const char* name = "batch_contrastive_loss";
  static constexpr bool pair_terms = true;
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    ContrastiveOptions o;
    o.pos_margin = 0.2;
    o.neg_margin = 1.5;
    o.average_separately = true;  // two weights known only after the first pass
    o.reduction = Reduction::MeanNonZero;
    o.workspace_bytes = budget;
    return batch_contrastive_loss(b.X, b.labels, m, o, tail...);
  }
};

struct BatchContrastiveSquared {
  static constexpr const char* name = "batch_contrastive_loss (squared)";
  static constexpr bool pair_terms = true;
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    ContrastiveOptions o;
    o.neg_margin = 2;
    o.squared = true;
    o.workspace_bytes = budget;
    return batch_contrastive_loss(b.X, b.labels, m, o, tail...);
  }
};

struct Margin {
  static constexpr const char* name = "margin_loss";
  static constexpr bool pair_terms = true;
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    MarginOptions o;
    o.nu = 0.1;
    o.workspace_bytes = budget;
    return margin_loss(b.X, b.labels, m, o, tail...);
  }
};

struct MarginTriplets {
  static constexpr const char* name = "margin_loss (triplet weights, class betas, mean)";
  static constexpr bool pair_terms = true;
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    MarginOptions o;
    o.triplet_weights = true;
    o.class_beta = Eigen::VectorXd::LinSpaced(100, 0.8, 1.6);  // labels go up to 99
    o.nu = 0.05;
    o.reduction = Reduction::Mean;
    o.workspace_bytes = budget;
    return margin_loss(b.X, b.labels, m, o, tail...);
  }
};

struct SupCon {
  static constexpr const char* name = "supcon_loss";
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    SupConOptions o;
    o.workspace_bytes = budget;
    return supcon_loss(b.X, b.labels, 0.5, m, o, tail...);
  }
};

struct MultiSimilarity {
  static constexpr const char* name = "multi_similarity_loss";
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    MultiSimilarityOptions o;
    o.beta = 10;  // unit-scale data: beta = 50 would leave most negatives at exp(-50 d)
    o.workspace_bytes = budget;
    return multi_similarity_loss(b.X, b.labels, m, o, tail...);
  }
};

struct MultiSimilarityWeighted {
  static constexpr const char* name = "multi_similarity_loss (MeanNonZero with sample weights)";
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    MultiSimilarityOptions o;
    Eigen::VectorXd w(b.X.rows());
    for (Index i = 0; i < w.size(); ++i) w(i) = static_cast<double>(i % 4) * 0.5;
    o.reduction = MeanNonZero(w);
    o.workspace_bytes = budget;
    return multi_similarity_loss(b.X, b.labels, m, o, tail...);
  }
};

struct Circle {
  static constexpr const char* name = "circle_loss";
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    CircleOptions o;
    o.gamma = 16;
    o.workspace_bytes = budget;
    return circle_loss(b.X, b.labels, m, o, tail...);
  }
};

struct Lifted {
  static constexpr const char* name = "lifted_structure_loss";
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    LiftedStructureOptions o;
    o.workspace_bytes = budget;
    return lifted_structure_loss(b.X, b.labels, m, o, tail...);
  }
};

struct LiftedWeighted {
  static constexpr const char* name = "lifted_structure_loss (MeanNonZero with sample weights)";
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    LiftedStructureOptions o;
    Eigen::VectorXd w(b.X.rows());
    for (Index i = 0; i < w.size(); ++i) w(i) = static_cast<double>(i % 4) * 0.5;
    o.reduction = MeanNonZero(w);
    o.workspace_bytes = budget;
    return lifted_structure_loss(b.X, b.labels, m, o, tail...);
  }
};

struct GeneralizedLifted {
  static constexpr const char* name = "generalized_lifted_structure_loss";
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    LiftedStructureOptions o;
    o.workspace_bytes = budget;
    return generalized_lifted_structure_loss(b.X, b.labels, m, o, tail...);
  }
};

struct NCA {
  static constexpr const char* name = "nca_loss (sample weights)";
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    NCAOptions o;
    o.softmax_scale = 2;
    Eigen::VectorXd w(b.X.rows());
    for (Index i = 0; i < w.size(); ++i) w(i) = 0.25 + static_cast<double>(i % 3);
    o.reduction = Mean(w);
    o.workspace_bytes = budget;
    return nca_loss(b.X, b.labels, m, o, tail...);
  }
};

struct NTXentLabels {
  static constexpr const char* name = "ntxent_loss (labels)";
  static constexpr bool sparse = false;
  static constexpr Index views = 1;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    NTXentOptions o;
    o.workspace_bytes = budget;
    return ntxent_loss(b.X, b.labels, 0.5, m, o, tail...);
  }
};

struct NTXentViews {
  static constexpr const char* name = "ntxent_loss (two views)";
  static constexpr bool sparse = false;
  static constexpr Index views = 2;
  template <class S, class M, class... Tail>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget, const Tail&... tail) {
    NTXentOptions o;
    o.workspace_bytes = budget;
    return ntxent_loss(b.X, b.X2, 0.5, m, o, tail...);
  }
};

enum class Form { Full, ValueOnly, Buffer };

// The budget whose row panels hold exactly `panel_rows` anchors of `rows` engine
// rows (a symmetric-tile loss runs on the tiles that fit in it).
template <class Loss, class S>
std::size_t budget_for(Index panel_rows, Index rows, Form form) {
  const std::size_t buffers = (form == Form::ValueOnly || Loss::sparse) ? 1 : 2;
  return static_cast<std::size_t>(panel_rows) * static_cast<std::size_t>(rows) * sizeof(S) * buffers;
}

// The caller-buffer form with one output per block of `shapes`, each a Map over
// storage pre-filled with 7 (so an unwritten entry shows).
template <class Loss, class S, class M>
Outcome buffer_form(const Batch<S>& b, const M& m, std::size_t budget, const Outcome& shapes) {
  std::vector<std::vector<S>> storage;
  for (const RowMatrix<double>& g : shapes.blocks) storage.emplace_back(static_cast<std::size_t>(g.size()), S(7));
  std::vector<Eigen::Map<RowMatrix<S>>> out;
  for (std::size_t k = 0; k < storage.size(); ++k)
    out.emplace_back(storage[k].data(), shapes.blocks[k].rows(), shapes.blocks[k].cols());
  Outcome o;
  switch (out.size()) {
    case 1: o.value = static_cast<double>(Loss::call(b, m, budget, out[0])); break;
    case 2: o.value = static_cast<double>(Loss::call(b, m, budget, out[0], out[1])); break;
    case 3: o.value = static_cast<double>(Loss::call(b, m, budget, out[0], out[1], out[2])); break;
    case 4: o.value = static_cast<double>(Loss::call(b, m, budget, out[0], out[1], out[2], out[3])); break;
    default: FAIL("unexpected number of gradient blocks: " << out.size());
  }
  for (const Eigen::Map<RowMatrix<S>>& g : out) o.blocks.push_back(g.template cast<double>());
  return o;
}

// Whole matrix (default budget) against panels of `tile` anchors, in the three forms.
template <class Loss, class S, class M>
void check_paths(const Batch<S>& b, const M& metric, const char* metric_name, Index tile) {
  const Index rows = Loss::views * b.X.rows();
  const double tol = path_tolerance<S>();
  INFO(Loss::name << ", metric " << metric_name << ", N " << b.X.rows() << " (" << rows << " engine rows), tile "
                  << tile);
  const Outcome whole = outcome_of(Loss::call(b, metric, default_workspace_bytes));
  {
    INFO("whole matrix, value_only against the full form");
    check_value(whole.value, static_cast<double>(Loss::call(b, metric, default_workspace_bytes, value_only)), tol);
  }
  {
    INFO("panels: full form");
    const std::size_t budget = budget_for<Loss, S>(tile, rows, Form::Full);
    const Outcome panel = outcome_of(Loss::call(b, metric, budget));
    check_value(whole.value, panel.value, tol);
    check_blocks(whole, panel, tol);
    check_terms_under<Loss, S>(whole, panel, tol, budget);
  }
  {
    INFO("panels: value_only");
    const double v =
        static_cast<double>(Loss::call(b, metric, budget_for<Loss, S>(tile, rows, Form::ValueOnly), value_only));
    check_value(whole.value, v, tol);
  }
  {
    INFO("panels: caller-owned buffers");
    const Outcome panel = buffer_form<Loss>(b, metric, budget_for<Loss, S>(tile, rows, Form::Buffer), whole);
    check_value(whole.value, panel.value, tol);
    check_blocks(whole, panel, tol);
  }
}

RowMatrix<double> mahalanobis_L() {
  return random_embeddings<double>(3, kDim, 4242, 0.6);
}

template <class Loss, class S>
void check_loss_paths(bool dot_product) {
  unsigned seed = 300;
  const Mahalanobis mahalanobis(mahalanobis_L());
  for (const Index tile : {kTile, Index(3), Index(1)}) {
    for (const Index n : {Index(1), Index(2), tile - 1, tile, tile + 1, 3 * tile + 5}) {
      if (n < 1) continue;
      for (const Layout layout : {Layout::Mod3, Layout::Singleton}) {
        INFO("layout " << (layout == Layout::Mod3 ? "i % 3" : "i % 3 with a singleton class"));
        const Batch<S> b = make_batch<S>(n, layout, ++seed);
        check_paths<Loss>(b, Euclidean{}, "Euclidean", tile);
        check_paths<Loss>(b, SquaredEuclidean{}, "SquaredEuclidean", tile);
        check_paths<Loss>(b, Cosine{}, "Cosine", tile);
        if (dot_product) check_paths<Loss>(b, DotProduct{}, "DotProduct", tile);
        check_paths<Loss>(b, mahalanobis, "Mahalanobis (3 x 5)", tile);
      }
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("engine: batch_hard_triplet_loss on panels equals the whole matrix", "[engine]", float, double) {
  check_loss_paths<BatchHard, TestType>(true);
  check_loss_paths<BatchHardSoft, TestType>(true);
}

TEMPLATE_TEST_CASE("engine: batch_semihard_triplet_loss on panels equals the whole matrix", "[engine]", float,
                   double) {
  check_loss_paths<BatchSemihard, TestType>(true);
}

TEMPLATE_TEST_CASE("engine: batch_all_triplet_loss on panels equals the whole matrix", "[engine]", float, double) {
  check_loss_paths<BatchAll, TestType>(true);
}

TEMPLATE_TEST_CASE("engine: batch_contrastive_loss on panels equals the whole matrix", "[engine]", float, double) {
  check_loss_paths<BatchContrastive, TestType>(true);
  check_loss_paths<BatchContrastiveSquared, TestType>(true);
}

TEMPLATE_TEST_CASE("engine: margin_loss on panels equals the whole matrix", "[engine]", float, double) {
  check_loss_paths<Margin, TestType>(true);
  check_loss_paths<MarginTriplets, TestType>(true);
}

TEMPLATE_TEST_CASE("engine: supcon_loss on panels equals the whole matrix", "[engine]", float, double) {
  check_loss_paths<SupCon, TestType>(true);
}

TEMPLATE_TEST_CASE("engine: multi_similarity_loss on tiles equals the whole matrix", "[engine]", float, double) {
  check_loss_paths<MultiSimilarity, TestType>(true);
  check_loss_paths<MultiSimilarityWeighted, TestType>(true);
}

TEMPLATE_TEST_CASE("engine: circle_loss (Cosine only) on tiles equals the whole matrix", "[engine]", float, double) {
  unsigned seed = 700;
  for (const Index tile : {kTile, Index(3), Index(1)}) {
    for (const Index n : {Index(1), Index(2), tile - 1, tile, tile + 1, 3 * tile + 5}) {
      if (n < 1) continue;
      for (const Layout layout : {Layout::Mod3, Layout::Singleton}) {
        check_paths<Circle>(make_batch<TestType>(n, layout, ++seed), Cosine{}, "Cosine", tile);
      }
    }
  }
}

TEMPLATE_TEST_CASE("engine: lifted structure losses on tiles equal the whole matrix", "[engine]", float, double) {
  check_loss_paths<Lifted, TestType>(true);
  check_loss_paths<LiftedWeighted, TestType>(true);
  check_loss_paths<GeneralizedLifted, TestType>(true);
}

TEMPLATE_TEST_CASE("engine: nca_loss on tiles equals the whole matrix", "[engine]", float, double) {
  check_loss_paths<NCA, TestType>(true);
}

namespace {

// supcon_loss against a reference set (the second view, the same labels): the reference tiles.
struct SupConReference {
  static constexpr const char* name = "supcon_loss against a reference set";
  template <class S, class M>
  static auto call(const Batch<S>& b, const M& m, std::size_t budget) {
    SupConOptions o;
    o.workspace_bytes = budget;
    return supcon_loss(b.X, b.labels, reference_set(b.X2, b.labels), 0.5, m, o);
  }
};

// The tiles a later pass reads again are kept as far as the workspace holds
// them and the rest recomputed. N = 29 under budgets of 2 to 8 tiles of 14 x 14
// (one tile side throughout) keeps none, some or all of its 6 (9 against a
// reference set): every split gives the same bits.
template <class Loss, class S, class M>
void check_partially_kept_tiles(const M& metric, const char* metric_name) {
  INFO(Loss::name << ", " << metric_name);
  const Batch<S> b = make_batch<S>(29, Layout::Singleton, 2929);
  const std::size_t tile = 14 * 14 * sizeof(S);
  const Outcome all = outcome_of(Loss::call(b, metric, 8 * tile));
  for (const std::size_t tiles : {std::size_t(2), std::size_t(3), std::size_t(4), std::size_t(6), std::size_t(7)}) {
    INFO("budget of " << tiles << " tiles");
    const Outcome some = outcome_of(Loss::call(b, metric, tiles * tile));
    CHECK(some.value == all.value);
    check_blocks(all, some, 0.0);
    check_terms(all, some, 0.0);
  }
}

template <class S>
void check_partially_kept_tiles_all() {
  check_partially_kept_tiles<SupCon, S>(Euclidean{}, "Euclidean");
  check_partially_kept_tiles<SupCon, S>(Cosine{}, "Cosine");
  check_partially_kept_tiles<MultiSimilarity, S>(Cosine{}, "Cosine");
  check_partially_kept_tiles<Lifted, S>(Euclidean{}, "Euclidean");
  check_partially_kept_tiles<NCA, S>(SquaredEuclidean{}, "SquaredEuclidean");
  check_partially_kept_tiles<SupConReference, S>(Euclidean{}, "Euclidean");
  check_partially_kept_tiles<SupConReference, S>(Cosine{}, "Cosine");
}

}  // namespace

TEMPLATE_TEST_CASE("engine: tiles kept in part and recomputed in part give the bits of keeping them all",
                   "[engine]", float, double) {
  check_partially_kept_tiles_all<TestType>();
}

TEMPLATE_TEST_CASE("engine: ntxent_loss on panels equals the whole matrix", "[engine]", float, double) {
  check_loss_paths<NTXentLabels, TestType>(true);
  check_loss_paths<NTXentViews, TestType>(true);
}

namespace {

// Rows the kernels treat specially: an exact duplicate (in another class and in
// the same class), a near duplicate (recomputed from the row difference), and a
// zero row (Cosine distance 1 to everything).
template <class S>
Batch<S> awkward_batch(Index n, unsigned seed) {
  Batch<S> b = make_batch<S>(n, Layout::Mod3, seed);
  b.X.row(4) = b.X.row(0);                                                // labels 1 and 0
  b.X.row(6) = b.X.row(0);                                                // labels 0 and 0
  b.X.row(8) = b.X.row(2) + S(1e-3) * random_embeddings<S>(1, kDim, seed + 1u);  // near duplicate
  b.X.row(n - 1).setZero();
  b.X2 = b.X;
  b.X2.row(1) = b.X.row(5);
  return b;
}

template <class Loss, class S>
void check_awkward_paths() {
  const Mahalanobis mahalanobis(mahalanobis_L());
  for (const Index tile : {kTile, Index(1)}) {
    for (const Index n : {Index(10), 3 * kTile + 5}) {
      const Batch<S> b = awkward_batch<S>(n, 900 + static_cast<unsigned>(n));
      check_paths<Loss>(b, Euclidean{}, "Euclidean", tile);
      check_paths<Loss>(b, SquaredEuclidean{}, "SquaredEuclidean", tile);
      check_paths<Loss>(b, Cosine{}, "Cosine", tile);
      check_paths<Loss>(b, DotProduct{}, "DotProduct", tile);
      check_paths<Loss>(b, mahalanobis, "Mahalanobis (3 x 5)", tile);
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("engine: duplicate, near-duplicate and zero rows give the same result on both paths",
                   "[engine][edge]", float, double) {
  using S = TestType;
  check_awkward_paths<BatchHard, S>();
  check_awkward_paths<BatchHardSoft, S>();
  check_awkward_paths<BatchSemihard, S>();
  check_awkward_paths<BatchAll, S>();
  check_awkward_paths<BatchContrastive, S>();
  check_awkward_paths<BatchContrastiveSquared, S>();
  check_awkward_paths<Margin, S>();
  check_awkward_paths<MarginTriplets, S>();
  check_awkward_paths<SupCon, S>();
  check_awkward_paths<MultiSimilarity, S>();
  check_awkward_paths<NTXentLabels, S>();
  check_awkward_paths<NTXentViews, S>();
}

namespace {

// A budget one byte short of a row throws; exactly a row works (panels of one anchor).
template <class Loss, class S>
void check_budget_floor() {
  INFO(Loss::name);
  const Batch<S> b = make_batch<S>(9, Layout::Mod3, 77);
  const Index rows = Loss::views * b.X.rows();
  const std::size_t value_row = budget_for<Loss, S>(1, rows, Form::ValueOnly);
  const std::size_t full_row = budget_for<Loss, S>(1, rows, Form::Full);
  REQUIRE_INVALID_ARGUMENT(Loss::call(b, Euclidean{}, value_row - 1, value_only), "options.workspace_bytes",
                           "below the smallest tile");
  REQUIRE_INVALID_ARGUMENT(Loss::call(b, Euclidean{}, full_row - 1), "options.workspace_bytes",
                           "below the smallest tile");
  REQUIRE_INVALID_ARGUMENT(Loss::call(b, Euclidean{}, std::size_t(0)), "workspace_bytes");
  REQUIRE_INVALID_ARGUMENT(Loss::call(b, Mahalanobis(mahalanobis_L()), full_row - 1), "workspace_bytes");
  // The caller's buffers stay untouched when the budget is rejected.
  const Outcome whole = outcome_of(Loss::call(b, Euclidean{}, default_workspace_bytes));
  std::vector<std::vector<S>> storage;
  for (const RowMatrix<double>& g : whole.blocks) storage.emplace_back(static_cast<std::size_t>(g.size()), S(7));
  Eigen::Map<RowMatrix<S>> out(storage[0].data(), whole.blocks[0].rows(), whole.blocks[0].cols());
  if (Loss::views == 1) {
    REQUIRE_INVALID_ARGUMENT(Loss::call(b, Euclidean{}, full_row - 1, out), "workspace_bytes");
  } else {
    Eigen::Map<RowMatrix<S>> out2(storage[1].data(), whole.blocks[1].rows(), whole.blocks[1].cols());
    REQUIRE_INVALID_ARGUMENT(Loss::call(b, Euclidean{}, full_row - 1, out, out2), "workspace_bytes");
    CHECK(std::all_of(storage[1].begin(), storage[1].end(), [](S v) { return v == S(7); }));
  }
  CHECK(std::all_of(storage[0].begin(), storage[0].end(), [](S v) { return v == S(7); }));
  // Exactly one row: panels of one anchor, the whole matrix's result.
  const double tol = path_tolerance<S>();
  check_value(whole.value, static_cast<double>(Loss::call(b, Euclidean{}, value_row, value_only)), tol);
  const Outcome one = outcome_of(Loss::call(b, Euclidean{}, full_row));
  check_value(whole.value, one.value, tol);
  check_blocks(whole, one, tol);
  check_terms_under<Loss, S>(whole, one, tol, full_row);
  if (!Loss::sparse) {
    // A dense gradient needs its own row beside the distances': enough for value_only is too little here.
    REQUIRE_INVALID_ARGUMENT(Loss::call(b, Euclidean{}, value_row), "options.workspace_bytes",
                             "below the smallest tile");
  }
}

// N = 0: loss 0 and empty gradients under any budget, 0 bytes included.
template <class Loss, class S, class M>
void check_empty(const M& metric) {
  INFO(Loss::name);
  const Batch<S> b = make_batch<S>(0, Layout::Mod3, 1);
  for (const std::size_t budget : {std::size_t(0), std::size_t(1), default_workspace_bytes}) {
    INFO("budget " << budget);
    const Outcome r = outcome_of(Loss::call(b, metric, budget));
    CHECK(r.value == 0);
    REQUIRE(r.blocks.size() >= static_cast<std::size_t>(Loss::views));
    for (std::size_t k = 0; k < static_cast<std::size_t>(Loss::views); ++k) {
      CHECK(r.blocks[k].rows() == 0);
      CHECK(r.blocks[k].size() == 0);
    }
    for (std::size_t k = static_cast<std::size_t>(Loss::views); k < r.blocks.size(); ++k) {
      CHECK(r.blocks[k].isZero(0));  // parameter gradients of an empty batch
    }
    CHECK(r.terms.size() == 0);
    CHECK(Loss::call(b, metric, budget, value_only) == 0);
    const Outcome buffered = buffer_form<Loss>(b, metric, budget, r);
    CHECK(buffered.value == 0);
    check_blocks(r, buffered, 0.0);
  }
}

template <class S>
void check_empty_all() {
  const Mahalanobis mahalanobis(mahalanobis_L());
  check_empty<BatchHard, S>(Euclidean{});
  check_empty<BatchSemihard, S>(Cosine{});
  check_empty<BatchAll, S>(DotProduct{});
  check_empty<BatchContrastive, S>(SquaredEuclidean{});
  check_empty<Margin, S>(Euclidean{});
  check_empty<SupCon, S>(Cosine{});
  check_empty<NTXentLabels, S>(Cosine{});
  check_empty<NTXentViews, S>(Cosine{});
  check_empty<BatchHard, S>(mahalanobis);
  check_empty<BatchAll, S>(mahalanobis);
  check_empty<BatchContrastive, S>(mahalanobis);
  check_empty<Margin, S>(mahalanobis);
  check_empty<NTXentViews, S>(mahalanobis);
}

}  // namespace

TEMPLATE_TEST_CASE("engine: a budget below one row is rejected, one row is enough", "[engine][validation]", float,
                   double) {
  using S = TestType;
  check_budget_floor<BatchHard, S>();
  check_budget_floor<BatchSemihard, S>();
  check_budget_floor<BatchAll, S>();
  check_budget_floor<BatchContrastive, S>();
  check_budget_floor<Margin, S>();
  check_budget_floor<SupCon, S>();
  check_budget_floor<NTXentLabels, S>();
  check_budget_floor<NTXentViews, S>();
}

TEMPLATE_TEST_CASE("engine: N = 0 gives loss 0 and empty gradients under any budget", "[engine][edge]", float,
                   double) {
  check_empty_all<TestType>();
}

namespace {

// The engine's contract with a panel loss (engine/panels.hpp), seen from a
// probe loss: panels arrive in order, cover every anchor once, hold at most
// the planned number of full rows (every column), and every anchor's own
// column is at distance exactly 0.
struct PanelSeen {
  Index first, rows, cols;
};

template <class S, class M>
void check_panel_contract(const M& metric, const char* metric_name, const RowMatrix<S>& X, Index tile, bool gradient) {
  const Index n = X.rows();
  const std::size_t buffers = gradient ? 2 : 1;
  const std::size_t budget = tile > 0 ? static_cast<std::size_t>(tile) * static_cast<std::size_t>(n) * sizeof(S) * buffers
                                      : default_workspace_bytes;
  const Index expected_rows = tile > 0 ? std::min(tile, n) : n;
  INFO("metric " << metric_name << ", N " << n << ", " << (tile > 0 ? "panels" : "whole matrix") << ", tile "
                 << expected_rows << (gradient ? ", with a dense gradient" : ", value only"));
  std::vector<PanelSeen> seen;
  std::vector<double> own;  // D(a, a) of every anchor, in arrival order
  auto panel = [&](const detail::DistancePanel<S>& D, auto* sink) {
    seen.push_back(PanelSeen{D.first, D.rows, D.cols});
    for (Index a = D.first; a < D.end(); ++a) own.push_back(static_cast<double>(D(a, a)));
    if (sink) CHECK(sink->first == D.first);
  };
  auto finish = [] { return detail::Reduced<S>{S(0), S(1)}; };
  auto loss = detail::panel_loss<detail::dense_gradient>(panel, finish);
  std::vector<RowMatrix<S>> grads;
  const ConstRowRef<S> x(X);
  detail::run_pairwise_loss<S>("engine probe", metric, x, budget, loss, gradient ? &grads : nullptr);
  Index next = 0;
  for (const PanelSeen& p : seen) {
    CHECK(p.first == next);
    CHECK(p.rows == std::min(expected_rows, n - next));
    CHECK(p.cols == n);
    next += p.rows;
  }
  CHECK(next == n);
  REQUIRE(own.size() == static_cast<std::size_t>(n));
  std::size_t nonzero = 0, first_nonzero = 0;
  for (std::size_t a = own.size(); a-- > 0;) {
    if (own[a] != 0.0) ++nonzero, first_nonzero = a;
  }
  INFO(nonzero << " of " << n << " anchors not at distance 0 from themselves; the first, anchor " << first_nonzero
               << ", at " << own[first_nonzero]);
  CHECK(nonzero == 0);
}

}  // namespace

TEMPLATE_TEST_CASE("engine: panels arrive in order, whole rows, each anchor at distance 0 from itself",
                   "[engine][contract]", float, double) {
  using S = TestType;
  RowMatrix<S> X = random_embeddings<S>(3 * kTile + 5, kDim, 4711);
  X.row(5).setZero();  // a zero row: Cosine distance 1 to every other row, 0 to itself
  const Mahalanobis mahalanobis(mahalanobis_L());
  for (const Index tile : {Index(0), kTile, Index(1)}) {
    for (const bool gradient : {false, true}) {
      check_panel_contract<S>(Euclidean{}, "Euclidean", X, tile, gradient);
      check_panel_contract<S>(SquaredEuclidean{}, "SquaredEuclidean", X, tile, gradient);
      check_panel_contract<S>(Cosine{}, "Cosine", X, tile, gradient);
      check_panel_contract<S>(DotProduct{}, "DotProduct", X, tile, gradient);
      check_panel_contract<S>(mahalanobis, "Mahalanobis (3 x 5)", X, tile, gradient);
    }
  }
}

namespace {

// Brute force in double, straight from the definitions.
enum class Kind { Euclidean, SquaredEuclidean, Cosine, DotProduct };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Euclidean: return "Euclidean";
    case Kind::SquaredEuclidean: return "SquaredEuclidean";
    case Kind::Cosine: return "Cosine";
    case Kind::DotProduct: return "DotProduct";
  }
  return "?";
}

using RowD = Eigen::Matrix<double, 1, Eigen::Dynamic>;

double brute_distance(Kind k, const RowD& a, const RowD& b) {
  switch (k) {
    case Kind::Euclidean: return (a - b).norm();
    case Kind::SquaredEuclidean: return (a - b).squaredNorm();
    case Kind::Cosine: return 1.0 - a.dot(b) / (a.norm() * b.norm());
    case Kind::DotProduct: return -a.dot(b);
  }
  return 0;
}

// d distance(a, b) / d a.
RowD brute_distance_gradient(Kind k, const RowD& a, const RowD& b) {
  switch (k) {
    case Kind::Euclidean: return (a - b) / (a - b).norm();
    case Kind::SquaredEuclidean: return 2.0 * (a - b);
    case Kind::Cosine: {
      const double na = a.norm(), nb = b.norm();
      return -(b / (na * nb) - a.dot(b) * a / (na * na * na * nb));
    }
    case Kind::DotProduct: return -b;
  }
  return RowD::Zero(a.size());
}

struct BruteResult {
  double value = 0;
  RowMatrix<double> grad;
  Eigen::VectorXd terms;
  double closest_kink = std::numeric_limits<double>::infinity();  // |hinge|, and selection gaps
};

double reduce_brute(Reduction r, double sum, long long count, long long positive, double& weight) {
  const long long divisor = r == Reduction::Sum ? 1 : r == Reduction::Mean ? count : positive;
  weight = divisor == 0 ? 0.0 : 1.0 / static_cast<double>(divisor);
  return sum * weight;
}

// d(a, p) - d(a, n) + margin, and its gradient, added `scale` times into g.
void add_triplet_gradient(Kind k, const RowMatrix<double>& X, Index a, Index p, Index q, double scale,
                          RowMatrix<double>& g) {
  g.row(a) += scale * (brute_distance_gradient(k, X.row(a), X.row(p)) - brute_distance_gradient(k, X.row(a), X.row(q)));
  g.row(p) += scale * brute_distance_gradient(k, X.row(p), X.row(a));
  g.row(q) -= scale * brute_distance_gradient(k, X.row(q), X.row(a));
}

BruteResult brute_batch_all(Kind k, const RowMatrix<double>& X, const Eigen::VectorXi& y, const TripletOptions& o) {
  const Index n = X.rows();
  BruteResult b;
  b.terms = Eigen::VectorXd::Zero(n);
  b.grad = RowMatrix<double>::Zero(n, X.cols());
  RowMatrix<double> unscaled = RowMatrix<double>::Zero(n, X.cols());
  double sum = 0;
  long long valid = 0, active = 0;
  for (Index a = 0; a < n; ++a)
    for (Index p = 0; p < n; ++p) {
      if (p == a || y(p) != y(a)) continue;
      for (Index q = 0; q < n; ++q) {
        if (y(q) == y(a)) continue;
        ++valid;
        const double h = brute_distance(k, X.row(a), X.row(p)) - brute_distance(k, X.row(a), X.row(q)) + o.margin;
        if (o.soft) {  // softplus(d_ap - d_an + margin), every triplet active
          const double term = std::log1p(std::exp(h));
          ++active;
          sum += term;
          b.terms(a) += term;
          add_triplet_gradient(k, X, a, p, q, 1.0 / (1.0 + std::exp(-h)), unscaled);
          continue;
        }
        b.closest_kink = std::min(b.closest_kink, std::abs(h));
        if (h <= 0) continue;
        ++active;
        sum += h;
        b.terms(a) += h;
        add_triplet_gradient(k, X, a, p, q, 1.0, unscaled);
      }
    }
  double weight = 0;
  b.value = reduce_brute(o.reduction.kind(), sum, valid, active, weight);
  b.grad = weight * unscaled;
  return b;
}

BruteResult brute_batch_hard(Kind k, const RowMatrix<double>& X, const Eigen::VectorXi& y, const TripletOptions& o) {
  const Index n = X.rows();
  BruteResult b;
  b.terms = Eigen::VectorXd::Zero(n);
  RowMatrix<double> unscaled = RowMatrix<double>::Zero(n, X.cols());
  double sum = 0;
  long long count = 0, positive = 0;
  for (Index a = 0; a < n; ++a) {
    std::vector<double> pos, neg;
    Index p = -1, q = -1;
    double dp = 0, dn = 0;
    for (Index j = 0; j < n; ++j) {
      const double d = brute_distance(k, X.row(a), X.row(j));
      if (y(j) != y(a)) {
        neg.push_back(d);
        if (q < 0 || d < dn) q = j, dn = d;
      } else if (j != a) {
        pos.push_back(d);
        if (p < 0 || d > dp) p = j, dp = d;
      }
    }
    if (p < 0 || q < 0) continue;
    std::sort(pos.begin(), pos.end());
    std::sort(neg.begin(), neg.end());
    if (pos.size() > 1) b.closest_kink = std::min(b.closest_kink, pos[pos.size() - 1] - pos[pos.size() - 2]);
    if (neg.size() > 1) b.closest_kink = std::min(b.closest_kink, neg[1] - neg[0]);
    const double x = dp - dn;
    double term = 0, slope = 0;
    if (o.soft) {  // softplus(d_ap - d_an + margin)
      term = std::log1p(std::exp(x + o.margin));
      slope = 1.0 / (1.0 + std::exp(-(x + o.margin)));
    } else {
      b.closest_kink = std::min(b.closest_kink, std::abs(x + o.margin));
      term = std::max(0.0, x + o.margin);
      slope = term > 0 ? 1.0 : 0.0;
    }
    b.terms(a) = term;
    sum += term;
    ++count;
    if (term > 0) ++positive;
    if (slope != 0) add_triplet_gradient(k, X, a, p, q, slope, unscaled);
  }
  double weight = 0;
  b.value = reduce_brute(o.reduction.kind(), sum, count, positive, weight);
  b.grad = weight * unscaled;
  return b;
}

template <class S, class M>
void check_against_brute(Kind kind, const M& metric, bool hard) {
  const double gap = sizeof(S) == sizeof(float) ? 1e-3 : 1e-8;
  const double tol = brute_tolerance<S>();
  std::vector<TripletOptions> grid;
  for (const Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
    TripletOptions o;
    o.margin = 0.5;
    o.reduction = r;
    grid.push_back(o);
  }
  TripletOptions soft;  // softplus(d_ap - d_an + margin), margin 1 (the default)
  soft.soft = true;
  grid.push_back(soft);
  soft.margin = 0;  // the Hermans soft margin
  soft.reduction = Reduction::MeanNonZero;
  grid.push_back(soft);
  for (const Index n : {kTile + 1, 3 * kTile + 5}) {
    for (const Layout layout : {Layout::Mod3, Layout::Singleton}) {
      for (const TripletOptions& o : grid) {
        INFO((hard ? "batch_hard" : "batch_all") << ", metric " << kind_name(kind) << ", N " << n << ", reduction "
                                                 << static_cast<int>(o.reduction.kind()) << ", soft " << o.soft);
        // A batch whose hinges and selections are all clear of float rounding.
        bool found = false;
        for (unsigned seed = 9100; seed < 9300 && !found; ++seed) {
          Batch<S> b = make_batch<S>(n, layout, seed);
          const RowMatrix<double> Xd = b.X.template cast<double>();
          const BruteResult expected =
              hard ? brute_batch_hard(kind, Xd, b.labels, o) : brute_batch_all(kind, Xd, b.labels, o);
          if (expected.closest_kink < gap) continue;
          found = true;
          TripletOptions panelled = o;
          panelled.workspace_bytes =
              static_cast<std::size_t>(kTile) * static_cast<std::size_t>(n) * sizeof(S) * (hard ? 1 : 2);
          const LossResult<S> r = hard ? batch_hard_triplet_loss(b.X, b.labels, metric, panelled)
                                       : batch_all_triplet_loss(b.X, b.labels, metric, panelled);
          INFO("seed " << seed);
          check_value(expected.value, static_cast<double>(r.value), tol);
          REQUIRE(r.grad.size() == 1);
          const double grad_error = relative_error(expected.grad, r.grad[0].template cast<double>());
          INFO("gradient relative error " << grad_error);
          CHECK(grad_error <= tol);
          REQUIRE(r.terms.size() == n);
          CHECK(relative_error(expected.terms, r.terms.template cast<double>()) <= tol);
          TripletOptions value_budget = o;
          value_budget.workspace_bytes = static_cast<std::size_t>(kTile) * static_cast<std::size_t>(n) * sizeof(S);
          const S v = hard ? batch_hard_triplet_loss(b.X, b.labels, metric, value_budget, value_only)
                           : batch_all_triplet_loss(b.X, b.labels, metric, value_budget, value_only);
          check_value(expected.value, static_cast<double>(v), tol);
        }
        REQUIRE(found);
      }
    }
  }
}

}  // namespace

TEMPLATE_TEST_CASE("engine: batch_hard_triplet_loss on panels matches a brute-force loop", "[engine][brute]", float,
                   double) {
  using S = TestType;
  check_against_brute<S>(Kind::Euclidean, Euclidean{}, true);
  check_against_brute<S>(Kind::SquaredEuclidean, SquaredEuclidean{}, true);
  check_against_brute<S>(Kind::Cosine, Cosine{}, true);
  check_against_brute<S>(Kind::DotProduct, DotProduct{}, true);
}

TEMPLATE_TEST_CASE("engine: batch_all_triplet_loss on panels matches a brute-force loop", "[engine][brute]", float,
                   double) {
  using S = TestType;
  check_against_brute<S>(Kind::Euclidean, Euclidean{}, false);
  check_against_brute<S>(Kind::SquaredEuclidean, SquaredEuclidean{}, false);
  check_against_brute<S>(Kind::Cosine, Cosine{}, false);
  check_against_brute<S>(Kind::DotProduct, DotProduct{}, false);
}

}  // namespace test_engine
