// Fuzz target: the three metrics, pairwise (symmetric and X-vs-Y) and
// row-wise distances and their backward passes, in float and double.
// Properties: fuzz_support.hpp, plus the documented invariants of a
// symmetric distance matrix (exactly symmetric, exact zero diagonal,
// non-negative; Cosine at most 2).
#include "fuzz_support.hpp"

using namespace contrastive;
using namespace contrastive_fuzz;

namespace {

constexpr Index kMaxRows = 20;
constexpr Index kMaxCols = 8;

template <class Scalar>
Expect embeddings_expect(const RowMatrix<Scalar>& X, const Domain& dom) {
  if (!dom.finite) return Expect::Invalid;
  if (X.rows() > 0 && X.cols() == 0) return Expect::Invalid;
  // Rows beyond max_embedding_norm are rejected too; unbounded values may be either.
  if (!dom.bounded) return Expect::Either;
  return Expect::Valid;
}

template <class Scalar>
Expect pair_cols_expect(const RowMatrix<Scalar>& X, const RowMatrix<Scalar>& Y) {
  return X.cols() != Y.cols() && X.rows() > 0 && Y.rows() > 0 ? Expect::Invalid : Expect::Valid;
}

template <class Scalar, class Metric>
void check_symmetric_distances(const RowMatrix<Scalar>& D, Index n, bool bounded) {
  if (D.rows() != n || D.cols() != n) violated("pairwise_distance(X): wrong shape");
  for (Index i = 0; i < n; ++i) {
    if (D(i, i) != Scalar(0)) violated("pairwise_distance(X): non-zero diagonal");
    for (Index j = 0; j < n; ++j) {
      if (!same_value(D(i, j), D(j, i))) violated("pairwise_distance(X): not exactly symmetric");
      // Beyond the bound a squared norm overflows and a distance may be Inf or NaN.
      if (bounded && !(D(i, j) >= Scalar(0))) violated("pairwise_distance(X): negative or NaN distance");
      if (std::is_same<Metric, Cosine>::value &&
          D(i, j) > Scalar(2) * (Scalar(1) + 8 * std::numeric_limits<Scalar>::epsilon())) {
        violated("pairwise_distance<Cosine>(X): distance above 2");
      }
    }
  }
}

template <class Scalar, class Metric>
void fuzz(Input& in) {
  Domain dom;
  const RowMatrix<Scalar> X = in.matrix<Scalar>(dom, kMaxRows, kMaxCols);
  Expect expect = embeddings_expect(X, dom);
  switch (in.byte() % 6) {
    case 0: {
      RowMatrix<Scalar> D;
      if (run_expecting("pairwise_distance(X)", expect, [&] { D = pairwise_distance<Metric>(X); })) {
        if (dom.bounded && !finite(D)) violated("pairwise_distance(X): non-finite for bounded input");
        check_symmetric_distances<Scalar, Metric>(D, X.rows(), dom.bounded);
      }
      break;
    }
    case 1: {
      Domain dy;
      const RowMatrix<Scalar> Y = in.matrix<Scalar>(dy, kMaxRows, kMaxCols, -1, in.flag() ? X.cols() : -1);
      expect = combine(combine(expect, embeddings_expect(Y, dy)), pair_cols_expect(X, Y));
      RowMatrix<Scalar> D;
      if (run_expecting("pairwise_distance(X, Y)", expect, [&] { D = pairwise_distance<Metric>(X, Y); })) {
        if (D.rows() != X.rows() || D.cols() != Y.rows()) violated("pairwise_distance(X, Y): wrong shape");
        if (dom.bounded && dy.bounded && !finite(D)) violated("pairwise_distance(X, Y): non-finite for bounded input");
        if (dom.bounded && dy.bounded && !(D.array() >= Scalar(0)).all()) violated("pairwise_distance(X, Y): negative distance");
      }
      break;
    }
    case 2: {
      Domain db;
      const bool same = in.byte() % 8 != 0;
      const RowMatrix<Scalar> B = in.matrix<Scalar>(db, kMaxRows, kMaxCols, same ? X.rows() : -1, same ? X.cols() : -1);
      expect = combine(expect, embeddings_expect(B, db));
      if (B.rows() != X.rows() || B.cols() != X.cols()) expect = Expect::Invalid;
      Vector<Scalar> d;
      if (run_expecting("rowwise_distance(A, B)", expect, [&] { d = rowwise_distance<Metric>(X, B); })) {
        if (d.size() != X.rows()) violated("rowwise_distance: wrong length");
        if (dom.bounded && db.bounded && !finite(d)) violated("rowwise_distance: non-finite for bounded input");
        if (dom.bounded && db.bounded && !(d.array() >= Scalar(0)).all()) violated("rowwise_distance: negative distance");
      }
      break;
    }
    case 3: {
      Domain dg;
      const bool square = in.byte() % 8 != 0;
      const RowMatrix<Scalar> dD = in.matrix<Scalar>(dg, kMaxRows, kMaxRows, square ? X.rows() : -1, square ? X.rows() : -1);
      if (!dg.finite || dD.rows() != X.rows() || dD.cols() != X.rows()) expect = Expect::Invalid;
      RowMatrix<Scalar> g;
      if (run_expecting("pairwise_distance_backward(X, dLdD)", expect,
                        [&] { g = pairwise_distance_backward<Metric>(X, dD); })) {
        if (g.rows() != X.rows() || g.cols() != X.cols()) violated("pairwise_distance_backward(X): wrong shape");
        if (dom.bounded && dg.bounded && !finite(g)) violated("pairwise_distance_backward(X): non-finite for bounded input");
      }
      break;
    }
    case 4: {
      Domain dy, dg;
      const RowMatrix<Scalar> Y = in.matrix<Scalar>(dy, kMaxRows, kMaxCols, -1, in.byte() % 8 != 0 ? X.cols() : -1);
      const bool fit = in.byte() % 8 != 0;
      const RowMatrix<Scalar> dD = in.matrix<Scalar>(dg, kMaxRows, kMaxRows, fit ? X.rows() : -1, fit ? Y.rows() : -1);
      expect = combine(combine(expect, embeddings_expect(Y, dy)), pair_cols_expect(X, Y));
      if (!dg.finite || dD.rows() != X.rows() || dD.cols() != Y.rows()) expect = Expect::Invalid;
      PairGradient<Scalar> g;
      if (run_expecting("pairwise_distance_backward(X, Y, dLdD)", expect,
                        [&] { g = pairwise_distance_backward<Metric>(X, Y, dD); })) {
        if (g.dX.rows() != X.rows() || g.dX.cols() != X.cols() || g.dY.rows() != Y.rows() ||
            g.dY.cols() != Y.cols()) {
          violated("pairwise_distance_backward(X, Y): wrong shape");
        }
        if (dom.bounded && dy.bounded && dg.bounded && (!finite(g.dX) || !finite(g.dY))) {
          violated("pairwise_distance_backward(X, Y): non-finite for bounded input");
        }
      }
      break;
    }
    default: {
      Domain db, dg;
      const bool same = in.byte() % 8 != 0;
      const RowMatrix<Scalar> B = in.matrix<Scalar>(db, kMaxRows, kMaxCols, same ? X.rows() : -1, same ? X.cols() : -1);
      const bool fit = in.byte() % 8 != 0;
      const RowMatrix<Scalar> dd = in.matrix<Scalar>(dg, kMaxRows, 1, fit ? X.rows() : -1, 1);
      expect = combine(expect, embeddings_expect(B, db));
      if (B.rows() != X.rows() || B.cols() != X.cols() || !dg.finite || dd.rows() != X.rows()) {
        expect = Expect::Invalid;
      }
      PairGradient<Scalar> g;
      if (run_expecting("rowwise_distance_backward(A, B, dLdd)", expect,
                        [&] { g = rowwise_distance_backward<Metric>(X, B, dd); })) {
        if (g.dX.rows() != X.rows() || g.dY.rows() != B.rows()) violated("rowwise_distance_backward: wrong shape");
        if (dom.bounded && db.bounded && dg.bounded && (!finite(g.dX) || !finite(g.dY))) {
          violated("rowwise_distance_backward: non-finite for bounded input");
        }
      }
      break;
    }
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
