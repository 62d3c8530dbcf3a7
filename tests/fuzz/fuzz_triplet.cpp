// Fuzz target: the triplet family. triplet_margin_loss on explicit triplets
// (A, P, N) and on index triplets, batch_all_, batch_hard_ and
// batch_semihard_triplet_loss; every metric, float and double, every option
// (margin including 0, negative, NaN and Inf; soft; swap; reductions, with
// and without sample weights, valid or not).
// Properties: fuzz_support.hpp.
#include "fuzz_support.hpp"

#include <contrastive/losses/batch_all_triplet_loss.hpp>
#include <contrastive/losses/batch_hard_triplet_loss.hpp>
#include <contrastive/losses/batch_semihard_triplet_loss.hpp>
#include <contrastive/losses/triplet_margin_loss.hpp>

#include <limits>

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

// Sometimes sample weights: one per sample, or a wrong count, with the odd
// negative or NaN weight.
Reducer reducer(Input& in, Index samples, Expect& expect) {
  const Reduction kind = static_cast<Reduction>(in.byte() % 3);
  if (in.byte() % 4 != 0) return kind;
  const Index count = in.byte() % 8 == 0 ? samples + 1 : samples;
  if (count != samples) expect = Expect::Invalid;
  Eigen::VectorXd w(count);
  for (Index k = 0; k < count; ++k) {
    const int b = in.byte();
    w(k) = b == 255 ? -1.0 : b == 254 ? std::numeric_limits<double>::quiet_NaN() : b / 64.0;
    if (b >= 254) expect = Expect::Invalid;
  }
  return Reducer(kind, w);
}

TripletOptions options(Input& in, Expect& expect, bool soft_ok, bool swap_ok, Index samples) {
  TripletOptions o;
  o.margin = in.margin(true, expect);
  o.soft = in.byte() % 4 == 0;
  o.swap = in.byte() % 4 == 0;
  o.reduction = reducer(in, samples, expect);
  if ((o.soft && !soft_ok) || (o.swap && !swap_ok)) expect = Expect::Invalid;
  return o;
}

Triplets triplets(Input& in, Index rows, Expect& expect) {
  Triplets t;
  const int count = in.byte() % 16;
  for (int k = 0; k < count; ++k) {
    Index idx[3];
    for (Index& i : idx) {
      const int b = in.byte();
      if (b == 255) {
        i = -1;
      } else if (b == 254) {
        i = rows;
      } else {
        i = rows > 0 ? static_cast<Index>(b) % rows : static_cast<Index>(b);
      }
      if (i < 0 || i >= rows) expect = Expect::Invalid;
    }
    t.add(idx[0], idx[1], idx[2]);
  }
  if (in.byte() % 16 == 0) {
    t.negative.push_back(0);  // ragged index vectors
    expect = Expect::Invalid;
  }
  return t;
}

template <class Scalar, class Metric>
void fuzz(Input& in) {
  using Maps = std::vector<Eigen::Map<RowMatrix<Scalar>>>;
  Domain dom;
  const RowMatrix<Scalar> X = in.matrix<Scalar>(dom, kMaxRows, kMaxCols);
  Expect expect = embeddings_expect(X, dom);
  const bool wrong_shape = in.byte() % 8 == 0;
  const std::array<std::pair<Index, Index>, 1> shape_x{{{X.rows(), X.cols()}}};
  const int which = in.byte() % 5;
  if (which == 0) {
    Domain dp, dn;
    const bool same = in.byte() % 8 != 0;
    const RowMatrix<Scalar> P = in.matrix<Scalar>(dp, kMaxRows, kMaxCols, same ? X.rows() : -1, same ? X.cols() : -1);
    const RowMatrix<Scalar> N = in.matrix<Scalar>(dn, kMaxRows, kMaxCols, X.rows(), X.cols());
    expect = combine(combine(expect, embeddings_expect(P, dp)), embeddings_expect(N, dn));
    if (P.rows() != X.rows() || P.cols() != X.cols()) expect = Expect::Invalid;
    const TripletOptions o = options(in, expect, true, true, X.rows());
    const std::array<std::pair<Index, Index>, 3> shapes{
        {{X.rows(), X.cols()}, {P.rows(), P.cols()}, {N.rows(), N.cols()}}};
    check_loss<Scalar>(
        "triplet_margin_loss(A, P, N)", expect, dom.bounded && dp.bounded && dn.bounded, shapes,
        wrong_shape, [&] { return triplet_margin_loss<Metric>(X, P, N, o); },
        [&] { return triplet_margin_loss<Metric>(X, P, N, o, value_only); },
        [&](Maps& g) { return triplet_margin_loss<Metric>(X, P, N, o, g[0], g[1], g[2]); });
    return;
  }
  if (which == 1) {
    const Triplets t = triplets(in, X.rows(), expect);
    const TripletOptions o = options(in, expect, true, true, X.rows());
    check_loss<Scalar>(
        "triplet_margin_loss(X, triplets)", expect, dom.bounded, shape_x, wrong_shape,
        [&] { return triplet_margin_loss<Metric>(X, t, o); },
        [&] { return triplet_margin_loss<Metric>(X, t, o, value_only); },
        [&](Maps& g) { return triplet_margin_loss<Metric>(X, t, o, g[0]); });
    return;
  }
  const Eigen::VectorXi labels = in.labels(X.rows(), expect);
  if (which == 2) {
    const TripletOptions o = options(in, expect, true, false, X.rows());
    check_loss<Scalar>(
        "batch_all_triplet_loss", expect, dom.bounded, shape_x, wrong_shape,
        [&] { return batch_all_triplet_loss<Metric>(X, labels, o); },
        [&] { return batch_all_triplet_loss<Metric>(X, labels, o, value_only); },
        [&](Maps& g) { return batch_all_triplet_loss<Metric>(X, labels, o, g[0]); });
  } else if (which == 3) {
    const TripletOptions o = options(in, expect, true, false, X.rows());
    check_loss<Scalar>(
        "batch_hard_triplet_loss", expect, dom.bounded, shape_x, wrong_shape,
        [&] { return batch_hard_triplet_loss<Metric>(X, labels, o); },
        [&] { return batch_hard_triplet_loss<Metric>(X, labels, o, value_only); },
        [&](Maps& g) { return batch_hard_triplet_loss<Metric>(X, labels, o, g[0]); });
  } else {
    const TripletOptions o = options(in, expect, true, false, X.rows());
    check_loss<Scalar>(
        "batch_semihard_triplet_loss", expect, dom.bounded, shape_x, wrong_shape,
        [&] { return batch_semihard_triplet_loss<Metric>(X, labels, o); },
        [&] { return batch_semihard_triplet_loss<Metric>(X, labels, o, value_only); },
        [&](Maps& g) { return batch_semihard_triplet_loss<Metric>(X, labels, o, g[0]); });
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
