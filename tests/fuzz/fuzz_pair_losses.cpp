// Fuzz target: the pair losses. contrastive_loss (explicit pairs and mined
// Pairs), batch_contrastive_loss, margin_loss (shared and per-class beta, with
// dL/dbeta), cosine_embedding_loss, similarity_regression_loss; every metric,
// float and double, options valid and invalid. Properties: fuzz_support.hpp.
#include "fuzz_support.hpp"

#include <contrastive/losses/contrastive_loss.hpp>
#include <contrastive/losses/cosine_embedding_loss.hpp>
#include <contrastive/losses/margin_loss.hpp>
#include <contrastive/losses/similarity_regression_loss.hpp>

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

ContrastiveOptions contrastive_options(Input& in, Expect& expect) {
  ContrastiveOptions o;
  o.pos_margin = in.byte() % 2 == 0 ? 0.0 : in.margin(true, expect);
  o.neg_margin = in.margin(true, expect);
  if (o.pos_margin > o.neg_margin) expect = Expect::Invalid;
  o.squared = in.flag();
  o.reduction = static_cast<Reduction>(in.byte() % 3);
  o.average_separately = in.flag();
  if (in.byte() % 8 == 0) {
    o.scale = in.flag() ? 0.5 : 0.0;
    if (o.scale == 0.0) expect = Expect::Invalid;
  }
  return o;
}

// A second matrix shaped like X, except now and then.
template <class Scalar>
RowMatrix<Scalar> partner(Input& in, const RowMatrix<Scalar>& X, Domain& d, Expect& expect) {
  const bool same = in.byte() % 8 != 0;
  RowMatrix<Scalar> Y = in.matrix<Scalar>(d, kMaxRows, kMaxCols, same ? X.rows() : -1, same ? X.cols() : -1);
  expect = combine(expect, embeddings_expect(Y, d));
  if (Y.rows() != X.rows() || Y.cols() != X.cols()) expect = Expect::Invalid;
  return Y;
}

template <class Scalar, class Metric>
void fuzz(Input& in) {
  using Maps = std::vector<Eigen::Map<RowMatrix<Scalar>>>;
  Domain dom;
  const RowMatrix<Scalar> X = in.matrix<Scalar>(dom, kMaxRows, kMaxCols);
  Expect expect = embeddings_expect(X, dom);
  const bool wrong_shape = in.byte() % 8 == 0;
  const std::array<std::pair<Index, Index>, 1> shape_x{{{X.rows(), X.cols()}}};
  switch (in.byte() % 6) {
    case 0: {
      Domain d2;
      const RowMatrix<Scalar> Y = partner(in, X, d2, expect);
      Eigen::VectorXi similar = in.labels(X.rows(), expect);
      // Mostly 0/1 flags; now and then raw labels, whose values other than 0 and 1 are rejected.
      const bool raw = in.byte() % 8 == 0;
      for (Index i = 0; i < similar.size(); ++i) {
        if (!raw) similar(i) &= 1;
        if (similar(i) != 0 && similar(i) != 1) expect = Expect::Invalid;
      }
      const ContrastiveOptions o = contrastive_options(in, expect);
      const std::array<std::pair<Index, Index>, 2> shapes{{{X.rows(), X.cols()}, {Y.rows(), Y.cols()}}};
      check_loss<Scalar>(
          "contrastive_loss(X1, X2, similar)", expect, dom.bounded && d2.bounded, shapes, wrong_shape,
          [&] { return contrastive_loss<Metric>(X, Y, similar, o); },
          [&] { return contrastive_loss<Metric>(X, Y, similar, o, value_only); },
          [&](Maps& g) { return contrastive_loss<Metric>(X, Y, similar, o, g[0], g[1]); });
      break;
    }
    case 1: {
      Pairs pairs;
      const int count = in.byte() % 16;
      for (int k = 0; k < count; ++k) {
        const int a = in.byte(), b = in.byte();
        const Index ia = a == 255 ? -1 : X.rows() > 0 ? a % X.rows() : a;
        const Index ib = b == 255 ? X.rows() : X.rows() > 0 ? b % X.rows() : b;
        if (ia < 0 || ia >= X.rows() || ib < 0 || ib >= X.rows()) expect = Expect::Invalid;
        pairs.add(ia, ib, in.flag());
      }
      if (in.byte() % 16 == 0) {
        pairs.similar.push_back(1);
        expect = Expect::Invalid;
      }
      const ContrastiveOptions o = contrastive_options(in, expect);
      check_loss<Scalar>(
          "contrastive_loss(X, pairs)", expect, dom.bounded, shape_x, wrong_shape,
          [&] { return contrastive_loss<Metric>(X, pairs, o); },
          [&] { return contrastive_loss<Metric>(X, pairs, o, value_only); },
          [&](Maps& g) { return contrastive_loss<Metric>(X, pairs, o, g[0]); });
      break;
    }
    case 2: {
      const Eigen::VectorXi labels = in.labels(X.rows(), expect);
      const ContrastiveOptions o = contrastive_options(in, expect);
      check_loss<Scalar>(
          "batch_contrastive_loss", expect, dom.bounded, shape_x, wrong_shape,
          [&] { return batch_contrastive_loss<Metric>(X, labels, o); },
          [&] { return batch_contrastive_loss<Metric>(X, labels, o, value_only); },
          [&](Maps& g) { return batch_contrastive_loss<Metric>(X, labels, o, g[0]); });
      break;
    }
    case 3: {
      const Eigen::VectorXi labels = in.labels(X.rows(), expect);
      MarginOptions o;
      o.alpha = in.margin(true, expect);
      o.beta = in.byte() % 16 == 0 ? std::numeric_limits<double>::quiet_NaN() : (in.byte() % 40) / 10.0 - 1.0;
      if (std::isnan(o.beta)) expect = Expect::Invalid;
      o.nu = in.byte() % 4 == 0 ? 0.1 : 0.0;
      o.triplet_weights = in.flag();
      o.reduction = static_cast<Reduction>(in.byte() % 3);
      if (in.byte() % 3 == 0) {
        o.class_beta = Eigen::VectorXd::Constant(1 + in.byte() % 4, 1.0);  // size 0 would mean one shared beta
        for (Index i = 0; i < labels.size(); ++i)
          if (labels(i) < 0 || labels(i) >= o.class_beta.size()) expect = Expect::Invalid;
      }
      const Index n_beta = o.class_beta.size() == 0 ? 1 : o.class_beta.size();
      MarginLossResult<Scalar> full;
      const bool ok = run_expecting("margin_loss", expect, [&] { full = margin_loss<Metric>(X, labels, o); });
      if (ok && expect == Expect::Valid && dom.bounded && !finite(full.beta_grad)) {
        violated("margin_loss: non-finite beta gradient for bounded input");
      }
      if (ok && full.beta_grad.size() != n_beta) violated("margin_loss: beta gradient of the wrong length");
      check_loss<Scalar>(
          "margin_loss", expect, dom.bounded, shape_x, wrong_shape,
          [&] { return static_cast<LossResult<Scalar>>(margin_loss<Metric>(X, labels, o)); },
          [&] { return margin_loss<Metric>(X, labels, o, value_only); },
          [&](Maps& g) { return margin_loss<Metric>(X, labels, o, g[0]); });
      if (ok) {  // the form with dL/dbeta into a buffer too
        Vector<Scalar> beta_out = Vector<Scalar>::Constant(n_beta, Scalar(-7));
        RowMatrix<Scalar> g_out(X.rows(), X.cols());
        run_expecting("margin_loss (beta buffer)", Expect::Valid, [&] { (void)margin_loss<Metric>(X, labels, o, g_out, beta_out); });
        if (!same_bits(beta_out.data(), full.beta_grad.data(), sizeof(Scalar) * static_cast<std::size_t>(n_beta))) {
          violated("margin_loss: buffer-form beta gradient differs from the full call");
        }
      }
      break;
    }
    case 4: {
      Domain d2;
      const RowMatrix<Scalar> Y = partner(in, X, d2, expect);
      Eigen::VectorXi target(X.rows());
      for (Index i = 0; i < target.size(); ++i) target(i) = in.byte() % 2 == 0 ? 1 : -1;
      if (X.rows() > 0 && in.byte() % 16 == 0) {
        target(0) = 0;
        expect = Expect::Invalid;
      }
      static const double margins[] = {0.0, 0.5, -0.5, 1.0, -1.0, 1.5, std::numeric_limits<double>::quiet_NaN()};
      const double margin = margins[in.byte() % 7];
      if (!(margin >= -1.0 && margin <= 1.0)) expect = Expect::Invalid;
      const Reduction r = static_cast<Reduction>(in.byte() % 3);
      const std::array<std::pair<Index, Index>, 2> shapes{{{X.rows(), X.cols()}, {Y.rows(), Y.cols()}}};
      check_loss<Scalar>(
          "cosine_embedding_loss", expect, dom.bounded && d2.bounded, shapes, wrong_shape,
          [&] { return cosine_embedding_loss(X, Y, target, margin, r); },
          [&] { return cosine_embedding_loss(X, Y, target, margin, r, value_only); },
          [&](Maps& g) { return cosine_embedding_loss(X, Y, target, margin, r, g[0], g[1]); });
      break;
    }
    default: {
      Domain d2;
      const RowMatrix<Scalar> Y = partner(in, X, d2, expect);
      Eigen::VectorXd target(X.rows());
      for (Index i = 0; i < target.size(); ++i) {
        target(i) = in.value<double>(in.byte() % 8 != 0);
        if (!std::isfinite(target(i))) expect = Expect::Invalid;
      }
      // A target beyond the scalar's range squares to infinity: only moderate targets must give finite results.
      const bool moderate = (target.array().abs() <= 1e6).all();
      const Reduction r = static_cast<Reduction>(in.byte() % 3);
      const std::array<std::pair<Index, Index>, 2> shapes{{{X.rows(), X.cols()}, {Y.rows(), Y.cols()}}};
      check_loss<Scalar>(
          "similarity_regression_loss", expect, dom.bounded && d2.bounded && moderate, shapes, wrong_shape,
          [&] { return similarity_regression_loss<Metric>(X, Y, target, r); },
          [&] { return similarity_regression_loss<Metric>(X, Y, target, r, value_only); },
          [&](Maps& g) { return similarity_regression_loss<Metric>(X, Y, target, r, g[0], g[1]); });
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
