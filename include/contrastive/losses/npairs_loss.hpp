// N-pair loss (Sohn 2016), with pytorch-metric-learning 2.8.1's NPairsLoss
// semantics.
//
// PML keeps one positive pair per class with two or more rows
// (convert_to_pos_pairs_with_unique_labels): the class's lowest row index
// as the anchor a_k, its next lowest as the positive p_k. With K such pairs,
// a cross-entropy over each anchor's similarities to all K positives, the
// target its own:
//   term_k = log sum_{j < K} exp(s(a_k, p_j)) - s(a_k, p_k)
// s the similarity under an inverted distance (DotProductSimilarity, its
// default, and CosineSimilarity), -d otherwise (LpDistance). In this
// library's distances that is s = -d for every metric (Cosine: s = 1 - d, a
// constant no softmax sees; DotProduct: s = -d):
//   term_k = d(a_k, p_k) + log sum_j exp(-d(a_k, p_j)),
//   dterm_k/dd(a_k, p_j) = [j = k] - softmax_j.
// Rows that are neither an anchor nor a positive take no part (gradient 0).
// Reduction (options.reduction): Mean (default) over the K pairs (PML's
// MeanReducer), Sum, MeanNonZero. Sample weights: one per row of X, a term
// takes its anchor's. terms: one per row of X, the term at its anchor's row,
// 0 elsewhere. K <= 1: loss 0, zero gradient.
// The K anchors and K positives are gathered into 2K rows (O(K D)) and the
// K x K cross block runs on the symmetric tiles of those rows under
// options.workspace_bytes: two passes, an online log-sum-exp per anchor.
//
//   npairs_loss<Metric = Cosine>(X, labels, [metric], [options], [value_only | grad_out])
//
// Reproducing pytorch-metric-learning 2.8.1 (tests/test_npairs_loss.cpp against
// tests/reference/data/pml_npairs.txt, written by PML itself):
//   NPairsLoss()(X, labels)     (its default DotProductSimilarity() normalises)   npairs_loss(X, labels): Cosine,
//                                                                                  gradient w.r.t. the raw rows
//   NPairsLoss(distance=DotProductSimilarity(normalize_embeddings=False))          metric DotProduct
//   NPairsLoss(distance=LpDistance(normalize_embeddings=False))                    metric Euclidean
//   NPairsLoss(distance=LpDistance(normalize_embeddings=False, power=2))           metric SquaredEuclidean
//
// Bad input: the shared checks (X finite, labels one per row, sample weights):
// std::invalid_argument naming the argument.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/reducer.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/losses/detail/online_softmin.hpp"
#include "contrastive/metrics/cosine.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace contrastive {

struct NPairsOptions {
  Reducer reduction = Reduction::Mean;  // Mean over the pairs (PML's MeanReducer)
  std::size_t workspace_bytes = default_workspace_bytes;  // the pairwise workspace
};

namespace detail {

// PML's pairs: per class with two or more rows, its lowest index and its next.
struct NPairs {
  std::vector<Index> anchors, positives;

  explicit NPairs(const LabelVector& labels) {
    const std::vector<std::int32_t> ids = dense_label_ids(labels);
    std::vector<Index> first, second;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const std::size_t c = static_cast<std::size_t>(ids[i]);
      if (c >= first.size()) {
        first.resize(c + 1, -1);
        second.resize(c + 1, -1);
      }
      if (first[c] < 0) {
        first[c] = static_cast<Index>(i);
      } else if (second[c] < 0) {
        second[c] = static_cast<Index>(i);
      }
    }
    for (std::size_t c = 0; c < first.size(); ++c) {
      if (second[c] < 0) continue;
      anchors.push_back(first[c]);
      positives.push_back(second[c]);
    }
  }
  Index size() const { return static_cast<Index>(anchors.size()); }
};

// Tiles over the 2K gathered rows: anchors [0, K), positives [K, 2K). The
// pairs (k, K + j) are the cross block; a tile row k < K sees them as its columns >= K.
template <class Scalar>
class NPairsTiles {
 public:
  static constexpr bool symmetric_tiles = true;
  static constexpr bool sparse_gradient = false;
  using Row = Eigen::Array<Scalar, Eigen::Dynamic, 1>;

  NPairsTiles(const NPairs& pairs, Tally<Scalar> tally, Vector<Scalar>* terms, Index rows_of_X)
      : pairs_(pairs), k_(pairs.size()), tally_(std::move(tally)), terms_(terms), softmax_(pairs.size(), Scalar(1)),
        own_(Row::Zero(pairs.size())), factor_(Row::Zero(pairs.size())), weight_(Row::Zero(pairs.size())) {
    if (terms_) terms_->setZero(rows_of_X);
  }

  void tile(const DistanceTile<Scalar>& t) {
    typename OnlineSoftmin<Scalar>::Scratch scratch;
    TileRowBuffer<Scalar> keep{};
    for (Index i = t.i0; i < std::min(t.i0 + t.rows, k_); ++i) {
      const Index c0 = std::max(t.first_col(i), k_ - t.j0);  // columns that are positives
      const Index m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      std::fill(keep.begin(), keep.begin() + m, Scalar(1));
      softmax_.add_row(i, t.row(i) + c0, keep.data(), m, scratch);
      if (i + k_ >= j0 && i + k_ < j0 + m) own_(i) = t.row(i)[c0 + (i + k_ - j0)];
    }
  }

  template <MetricKind>
  Reduced<Scalar> finish(TileSparseSink<Scalar>*) {
    for (Index k = 0; k < k_; ++k) {
      const Index a = pairs_.anchors[static_cast<std::size_t>(k)];
      const Scalar term = own_(k) - softmax_.shift()(k) + std::log(softmax_.sum()(k));
      const Scalar weighted = tally_.add(a, term);
      if (terms_) (*terms_)(a) = weighted;
      weight_(k) = tally_.gradient_weight(a, weighted);
      if (weight_(k) == Scalar(0)) continue;  // left out: its factor stays 0
      factor_(k) = weight_(k) / softmax_.sum()(k);
    }
    return tally_.finish();
  }

  // W(k, K + j) = w_k ([j = k] - softmax_j).
  void tile_gradient(const DistanceTile<Scalar>& t, Scalar* W) {
    for (Index i = t.i0; i < std::min(t.i0 + t.rows, k_); ++i) {
      const Index c0 = std::max(t.first_col(i), k_ - t.j0);
      const Index m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Eigen::Map<const Row> dv(t.row(i) + c0, m);
      Eigen::Map<Row> g(W + (i - t.i0) * t.cols + c0, m);
      g = -factor_(i) * softmax_.row_exp(i, dv);
      if (i + k_ >= j0 && i + k_ < j0 + m) g(i + k_ - j0) += weight_(i);
    }
  }

 private:
  const NPairs& pairs_;
  Index k_;
  Tally<Scalar> tally_;
  Vector<Scalar>* terms_;
  OnlineSoftmin<Scalar> softmax_;
  Row own_, factor_, weight_;
};

struct NPairsLoss {
  static constexpr const char* name = "npairs_loss";
  using Options = NPairsOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const LabelVector& labels,
                     const Options& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    metric.check_rows(name, X);
    Tally<Scalar> tally(name, "options.reduction", o.reduction, X.rows(), "the rows of X");
    const NPairs pairs(labels);
    const Index K = pairs.size();
    RowMatrix<Scalar> rows(2 * K, X.cols());
    for (Index k = 0; k < K; ++k) {
      rows.row(k) = X.row(pairs.anchors[static_cast<std::size_t>(k)]);
      rows.row(K + k) = X.row(pairs.positives[static_cast<std::size_t>(k)]);
    }
    const ConstRowRef<Scalar> gathered(rows);
    const Scalar value = run_pairwise_loss<Scalar>(name, metric, gathered, o.workspace_bytes,
                                                   NPairsTiles<Scalar>(pairs, std::move(tally), terms, X.rows()),
                                                   grads);
    if (grads) {
      // The gathered rows' gradient back onto X (the metric's parameter gradients stay as they are).
      RowMatrix<Scalar> dX = RowMatrix<Scalar>::Zero(X.rows(), X.cols());
      const RowMatrix<Scalar>& G = (*grads)[0];
      for (Index k = 0; k < K; ++k) {
        dX.row(pairs.anchors[static_cast<std::size_t>(k)]) += G.row(k);
        dX.row(pairs.positives[static_cast<std::size_t>(k)]) += G.row(K + k);
      }
      (*grads)[0] = std::move(dX);
    }
    return value;
  }
};

}  // namespace detail

// npairs_loss(X, labels, [metric], [options], [value_only | grad_out...]): grad = {dX};
// terms: one per row of X (the anchors' terms).
template <class Metric = Cosine, class DX, class... Tail>
auto npairs_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::labelled_loss<detail::NPairsLoss, Metric>(X, labels, tail...);
}

}  // namespace contrastive
