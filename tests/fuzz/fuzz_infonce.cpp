// Fuzz target: the InfoNCE family. ntxent_loss on two views and on labels,
// supcon_loss; every metric, float and double, every reduction, temperatures
// valid (1e-3 to 10) and invalid (0, negative, NaN). Properties: fuzz_support.hpp.
#include "fuzz_support.hpp"

using namespace contrastive;
using namespace contrastive_fuzz;

namespace {

constexpr Index kMaxRows = 20;
constexpr Index kMaxCols = 8;

template <class Scalar>
Expect embeddings_expect(const RowMatrix<Scalar>& X, const Domain& dom) {
  if (!dom.finite || (X.rows() > 0 && X.cols() == 0)) return Expect::Invalid;
  // Rows beyond max_embedding_norm are rejected too; unbounded values may be either.
  if (!dom.bounded) return Expect::Either;
  return Expect::Valid;
}

template <class Scalar, class Metric>
void fuzz(Input& in) {
  using Maps = std::vector<Eigen::Map<RowMatrix<Scalar>>>;
  Domain dom;
  const RowMatrix<Scalar> X = in.matrix<Scalar>(dom, kMaxRows, kMaxCols);
  Expect expect = embeddings_expect(X, dom);
  const bool wrong_shape = in.byte() % 8 == 0;
  const std::array<std::pair<Index, Index>, 1> shape_x{{{X.rows(), X.cols()}}};
  const int which = in.byte() % 3;
  const double t = in.temperature(expect);
  const Reduction reduction = static_cast<Reduction>(in.byte() % 3);
  if (which == 0) {
    Domain d2;
    const bool same = in.byte() % 8 != 0;
    const RowMatrix<Scalar> V = in.matrix<Scalar>(d2, kMaxRows, kMaxCols, same ? X.rows() : -1, same ? X.cols() : -1);
    expect = combine(expect, embeddings_expect(V, d2));
    if (V.rows() != X.rows() || V.cols() != X.cols()) expect = Expect::Invalid;
    NTXentOptions o;
    o.reduction = reduction;
    const std::array<std::pair<Index, Index>, 2> shapes{{{X.rows(), X.cols()}, {V.rows(), V.cols()}}};
    check_loss<Scalar>(
        "ntxent_loss(view1, view2)", expect, dom.bounded && d2.bounded, shapes, wrong_shape,
        [&] { return ntxent_loss<Metric>(X, V, t, o); },
        [&] { return ntxent_loss<Metric>(X, V, t, o, value_only); },
        [&](Maps& g) { return ntxent_loss<Metric>(X, V, t, o, g[0], g[1]); });
    return;
  }
  const Eigen::VectorXi labels = in.labels(X.rows(), expect);
  if (which == 1) {
    NTXentOptions o;
    o.reduction = reduction;
    check_loss<Scalar>(
        "ntxent_loss(X, labels)", expect, dom.bounded, shape_x, wrong_shape,
        [&] { return ntxent_loss<Metric>(X, labels, t, o); },
        [&] { return ntxent_loss<Metric>(X, labels, t, o, value_only); },
        [&](Maps& g) { return ntxent_loss<Metric>(X, labels, t, o, g[0]); });
  } else {
    SupConOptions o;
    o.reduction = reduction;
    check_loss<Scalar>(
        "supcon_loss", expect, dom.bounded, shape_x, wrong_shape,
        [&] { return supcon_loss<Metric>(X, labels, t, o); },
        [&] { return supcon_loss<Metric>(X, labels, t, o, value_only); },
        [&](Maps& g) { return supcon_loss<Metric>(X, labels, t, o, g[0]); });
  }
}

template <class Scalar>
void fuzz_scalar(Input& in, int metric) {
  switch (metric) {
    case 0: fuzz<Scalar, Euclidean>(in); break;
    case 1: fuzz<Scalar, SquaredEuclidean>(in); break;
    default: fuzz<Scalar, Cosine>(in); break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  const int select = in.byte();
  if (select & 1) {
    fuzz_scalar<double>(in, (select >> 1) % 3);
  } else {
    fuzz_scalar<float>(in, (select >> 1) % 3);
  }
  return 0;
}
