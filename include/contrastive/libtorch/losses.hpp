// libtorch adapter, part 3: every loss of the library as a function on
// torch::Tensor, returning a 0-dim tensor (the embeddings' dtype) inside
// autograd; loss.backward() puts the library's analytic gradient, times the
// incoming gradient, into each input that requires one.
//
//   namespace ct = contrastive::libtorch;
//   torch::Tensor loss = ct::batch_hard_triplet_loss(embeddings, labels, contrastive::Cosine{}, options);
//   loss.backward();
//
// Arguments after the inputs are the library's (core/call_forms.hpp): an
// optional metric value (Euclidean{}, Cosine{}, AnyMetric, a fixed
// contrastive::Mahalanobis, or a learnable libtorch::Mahalanobis whose L
// tensor receives dL/dL), then the library's options struct. The template
// argument form loss<contrastive::Cosine>(...) works as in the library.
// Embeddings are N x D float32 / float64 CPU tensors of any strides; labels
// 1-D integer tensors (int64, int32). Bad arguments throw
// std::invalid_argument("contrastive::<function>: ...") naming the argument.
//
// The class-weight losses (arcface_loss, ..., proxy_anchor_loss; see
// docs/class_losses.md) take the class weights W (c x D, one row per class,
// float32 / float64, any strides) as a tensor input after the labels: with
// W.requires_grad() it receives dL/dW. pytorch-metric-learning's D x c W
// (ArcFace, CosFace, SphereFace, SubCenterArcFace, NormalizedSoftmax) is
// passed as W.t(), which autograd turns back into D x c.
#pragma once

#include "contrastive/core/index_sets.hpp"
#include "contrastive/core/reducer.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/libtorch/autograd_function.hpp"
#include "contrastive/libtorch/tensors.hpp"
#include "contrastive/losses/batch_all_triplet_loss.hpp"
#include "contrastive/losses/batch_hard_triplet_loss.hpp"
#include "contrastive/losses/angular_loss.hpp"
#include "contrastive/losses/arcface_loss.hpp"
#include "contrastive/losses/batch_semihard_triplet_loss.hpp"
#include "contrastive/losses/circle_loss.hpp"
#include "contrastive/losses/contrastive_loss.hpp"
#include "contrastive/losses/cosface_loss.hpp"
#include "contrastive/losses/cosine_embedding_loss.hpp"
#include "contrastive/losses/lifted_structure_loss.hpp"
#include "contrastive/losses/margin_loss.hpp"
#include "contrastive/losses/multi_similarity_loss.hpp"
#include "contrastive/losses/nca_loss.hpp"
#include "contrastive/losses/npairs_loss.hpp"
#include "contrastive/losses/normalized_softmax_loss.hpp"
#include "contrastive/losses/ntxent_loss.hpp"
#include "contrastive/losses/proxy_anchor_loss.hpp"
#include "contrastive/losses/proxy_nca_loss.hpp"
#include "contrastive/losses/similarity_regression_loss.hpp"
#include "contrastive/losses/sphereface_loss.hpp"
#include "contrastive/losses/subcenter_arcface_loss.hpp"
#include "contrastive/losses/supcon_loss.hpp"
#include "contrastive/losses/triplet_margin_loss.hpp"
#include "contrastive/losses/tuplet_margin_loss.hpp"
#include "contrastive/losses/vicreg_loss.hpp"
#include "contrastive/metrics/cosine.hpp"
#include "contrastive/metrics/euclidean.hpp"
#include "contrastive/metrics/squared_euclidean.hpp"

#include <torch/types.h>

#include <type_traits>
#include <utility>

namespace contrastive {
namespace libtorch {
namespace detail {

// A loss on (X, labels, tail...): `loss(x, y, library tail...)` is the library call.
template <class LossCall, class... Tail>
torch::Tensor labelled(const char* function, const torch::Tensor& X, const torch::Tensor& labels,
                       const LossCall& loss, const Tail&... tail) {
  TensorInputs inputs(function, {{"X", X}});
  const LabelVector y = integer_vector(function, "labels", labels);
  return run_loss(
      std::move(inputs), [&](const auto& in, const auto&... t) { return loss(in[0], y, t...); }, tail...);
}

// A loss on (X, mined Pairs, tail...): `loss(x, pairs, library tail...)` is the library call.
template <class LossCall, class... Tail>
torch::Tensor on_pairs(const char* function, const torch::Tensor& X, const Pairs& pairs, const LossCall& loss,
                       const Tail&... tail) {
  TensorInputs inputs(function, {{"X", X}});
  return run_loss(
      std::move(inputs), [&](const auto& in, const auto&... t) { return loss(in[0], pairs, t...); }, tail...);
}

// A class-weight loss on (X, labels, W, tail...): `loss(x, y, w, library tail...)`
// is the library call; W (c x D) is the last tensor input and receives grad[1].
template <class LossCall, class... Tail>
torch::Tensor class_weighted(const char* function, const torch::Tensor& X, const torch::Tensor& labels,
                             const torch::Tensor& W, const LossCall& loss, const Tail&... tail) {
  TensorInputs inputs(function, {{"X", X}});
  const LabelVector y = integer_vector(function, "labels", labels);
  inputs.add_parameter("W", W, 2);
  if (W.dim() != 2) require_dims(function, "W", W, 2, "c x D, one row per class");
  return run_function(
      std::move(inputs), /*loss_parameter=*/true,
      [&](const auto& in, const auto&... t) { return loss(in[0], y, in[1], t...); }, tail...);
}

template <class T>
struct is_metric_argument : std::integral_constant<bool, is_metric<T>::value || is_learnable_metric<T>::value> {};

}  // namespace detail

// ---- triplet losses over labels (losses/batch_*_triplet_loss.hpp) ----

// batch_hard_triplet_loss(X, labels, [metric], [TripletOptions])
template <class Metric = Euclidean, class... Tail>
torch::Tensor batch_hard_triplet_loss(const torch::Tensor& X, const torch::Tensor& labels, const Tail&... tail) {
  return detail::labelled(
      "batch_hard_triplet_loss", X, labels,
      [](const auto&... a) { return contrastive::batch_hard_triplet_loss<Metric>(a...); }, tail...);
}

// batch_semihard_triplet_loss(X, labels, [metric], [TripletOptions])
template <class Metric = Euclidean, class... Tail>
torch::Tensor batch_semihard_triplet_loss(const torch::Tensor& X, const torch::Tensor& labels, const Tail&... tail) {
  return detail::labelled(
      "batch_semihard_triplet_loss", X, labels,
      [](const auto&... a) { return contrastive::batch_semihard_triplet_loss<Metric>(a...); }, tail...);
}

// batch_all_triplet_loss(X, labels, [metric], [TripletOptions])
template <class Metric = Euclidean, class... Tail>
torch::Tensor batch_all_triplet_loss(const torch::Tensor& X, const torch::Tensor& labels, const Tail&... tail) {
  return detail::labelled(
      "batch_all_triplet_loss", X, labels,
      [](const auto&... a) { return contrastive::batch_all_triplet_loss<Metric>(a...); }, tail...);
}

// ---- explicit and mined triplets (losses/triplet_margin_loss.hpp) ----

// triplet_margin_loss(anchor, positive, negative, [metric], [TripletOptions]): row i of each.
template <class Metric = Euclidean, class... Tail>
torch::Tensor triplet_margin_loss(const torch::Tensor& anchor, const torch::Tensor& positive,
                                  const torch::Tensor& negative, const Tail&... tail) {
  detail::TensorInputs inputs("triplet_margin_loss", {{"anchor", anchor}, {"positive", positive}, {"negative", negative}});
  return detail::run_loss(
      std::move(inputs),
      [](const auto& in, const auto&... t) { return contrastive::triplet_margin_loss<Metric>(in[0], in[1], in[2], t...); },
      tail...);
}

// triplet_margin_loss(X, triplets, [metric], [TripletOptions]): mined index triplets.
template <class Metric = Euclidean, class... Tail>
torch::Tensor triplet_margin_loss(const torch::Tensor& X, const Triplets& triplets, const Tail&... tail) {
  detail::TensorInputs inputs("triplet_margin_loss", {{"X", X}});
  return detail::run_loss(
      std::move(inputs),
      [&](const auto& in, const auto&... t) { return contrastive::triplet_margin_loss<Metric>(in[0], triplets, t...); },
      tail...);
}

// The same on a miner's (anchors, positives, negatives) index tensors.
template <class Metric = Euclidean, class... Tail>
torch::Tensor triplet_margin_loss(const torch::Tensor& X, const TripletIndices& triplets, const Tail&... tail) {
  return triplet_margin_loss<Metric>(X, to_triplets(triplets, "triplet_margin_loss"), tail...);
}

// ---- pair losses (losses/contrastive_loss.hpp, margin_loss.hpp, ...) ----

// contrastive_loss(X1, X2, similar, [metric], [ContrastiveOptions]): row i of X1 with row i of X2,
// similar(i) 1 (or true) for a positive pair, 0 for a negative one.
template <class Metric = Euclidean, class... Tail>
torch::Tensor contrastive_loss(const torch::Tensor& X1, const torch::Tensor& X2, const torch::Tensor& similar,
                               const Tail&... tail) {
  const char* fn = "contrastive_loss";
  detail::TensorInputs inputs(fn, {{"X1", X1}, {"X2", X2}});
  const LabelVector s = detail::integer_vector(fn, "similar", similar, /*allow_bool=*/true);
  return detail::run_loss(
      std::move(inputs),
      [&](const auto& in, const auto&... t) { return contrastive::contrastive_loss<Metric>(in[0], in[1], s, t...); },
      tail...);
}

// contrastive_loss(X, pairs, [metric], [ContrastiveOptions]): mined index pairs.
template <class Metric = Euclidean, class... Tail>
torch::Tensor contrastive_loss(const torch::Tensor& X, const Pairs& pairs, const Tail&... tail) {
  return detail::on_pairs(
      "contrastive_loss", X, pairs, [](const auto&... a) { return contrastive::contrastive_loss<Metric>(a...); },
      tail...);
}
// The same on a pair miner's (a1, p, a2, n) index tensors.
template <class Metric = Euclidean, class... Tail>
torch::Tensor contrastive_loss(const torch::Tensor& X, const PairIndices& pairs, const Tail&... tail) {
  return contrastive_loss<Metric>(X, to_pairs(pairs, "contrastive_loss"), tail...);
}

// batch_contrastive_loss(X, labels, [metric], [ContrastiveOptions]): every pair i < j.
template <class Metric = Euclidean, class... Tail>
torch::Tensor batch_contrastive_loss(const torch::Tensor& X, const torch::Tensor& labels, const Tail&... tail) {
  return detail::labelled(
      "batch_contrastive_loss", X, labels,
      [](const auto&... a) { return contrastive::batch_contrastive_loss<Metric>(a...); }, tail...);
}

// margin_loss(X, labels, [metric], [MarginOptions]): beta from the options, fixed.
template <class Metric = Euclidean, class... Tail>
torch::Tensor margin_loss(const torch::Tensor& X, const torch::Tensor& labels, const Tail&... tail) {
  return detail::labelled(
      "margin_loss", X, labels, [](const auto&... a) { return contrastive::margin_loss<Metric>(a...); }, tail...);
}

// margin_loss(X, labels, beta, metric, [MarginOptions]): a learnable beta tensor
// replacing options.beta / options.class_beta: 0-dim for one beta, 1-D for one
// per class (indexed by label). With beta.requires_grad() it receives dL/dbeta.
template <class Metric = Euclidean, class M, std::enable_if_t<detail::is_metric_argument<M>::value, int> = 0>
torch::Tensor margin_loss(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& beta,
                          const M& metric, const MarginOptions& options = MarginOptions{}) {
  const char* fn = "margin_loss";
  detail::TensorInputs inputs(fn, {{"X", X}});
  const LabelVector y = detail::integer_vector(fn, "labels", labels);
  const bool per_class = beta.defined() && beta.dim() == 1;
  const auto call = [&](const auto& in, const auto& m, const MarginOptions& o, const auto&... rest) {
    MarginOptions with_beta = o;
    const auto& b = in[in.size() - 1];  // the beta tensor, the last input, as a k x 1 matrix
    if (per_class) {
      with_beta.class_beta = b.col(0).template cast<double>();
    } else {
      with_beta.class_beta.resize(0);
      with_beta.beta = static_cast<double>(b(0, 0));
    }
    return contrastive::margin_loss<Metric>(in[0], y, m, with_beta, rest...);
  };
  return detail::run_loss_with_parameter(std::move(inputs), "beta", &beta, call, metric, options);
}

// margin_loss(X, labels, beta, [MarginOptions]): the same with the template argument's metric.
template <class Metric = Euclidean>
torch::Tensor margin_loss(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& beta,
                          const MarginOptions& options = MarginOptions{}) {
  return margin_loss<Metric>(X, labels, beta, Metric{}, options);
}

// cosine_embedding_loss(X1, X2, target, [margin], [reduction]): torch.nn.CosineEmbeddingLoss,
// target +1 / -1 (any integer or floating dtype).
inline torch::Tensor cosine_embedding_loss(const torch::Tensor& X1, const torch::Tensor& X2, const torch::Tensor& target,
                                           double margin = 0.0, const Reducer& reduction = Reduction::Mean) {
  const char* fn = "cosine_embedding_loss";
  detail::TensorInputs inputs(fn, {{"X1", X1}, {"X2", X2}});
  const Vector<double> y = detail::double_vector(fn, "target", target);
  return detail::run_loss(std::move(inputs), [&](const auto& in, const auto&... t) {
    return contrastive::cosine_embedding_loss(in[0], in[1], y, margin, reduction, t...);
  });
}

// similarity_regression_loss<Metric>(X1, X2, target, [reduction]): mean (sim - target)^2.
template <class Metric = Euclidean>
torch::Tensor similarity_regression_loss(const torch::Tensor& X1, const torch::Tensor& X2, const torch::Tensor& target,
                                         const Reducer& reduction = Reduction::Mean) {
  const char* fn = "similarity_regression_loss";
  detail::TensorInputs inputs(fn, {{"X1", X1}, {"X2", X2}});
  const Vector<double> y = detail::double_vector(fn, "target", target);
  return detail::run_loss(std::move(inputs), [&](const auto& in, const auto&... t) {
    return contrastive::similarity_regression_loss<Metric>(in[0], in[1], y, reduction, t...);
  });
}

// ---- InfoNCE losses (losses/supcon_loss.hpp, ntxent_loss.hpp) ----

// supcon_loss(X, labels, temperature, [metric], [SupConOptions])
template <class Metric = Cosine, class... Tail>
torch::Tensor supcon_loss(const torch::Tensor& X, const torch::Tensor& labels, double temperature,
                          const Tail&... tail) {
  return detail::labelled(
      "supcon_loss", X, labels,
      [temperature](const auto& x, const auto& y, const auto&... t) {
        return contrastive::supcon_loss<Metric>(x, y, temperature, t...);
      },
      tail...);
}

// ntxent_loss(view1, view2, temperature, [metric], [NTXentOptions]): SimCLR's two views
// (a floating second tensor), or ntxent_loss(X, labels, temperature, ...): PML's
// NTXentLoss on labels (an integer second tensor).
template <class Metric = Cosine, class... Tail>
torch::Tensor ntxent_loss(const torch::Tensor& X, const torch::Tensor& view2_or_labels, double temperature,
                          const Tail&... tail) {
  const char* fn = "ntxent_loss";
  if (view2_or_labels.defined() && detail::is_integer_dtype(view2_or_labels)) {
    return detail::labelled(
        fn, X, view2_or_labels,
        [temperature](const auto& x, const auto& y, const auto&... t) {
          return contrastive::ntxent_loss<Metric>(x, y, temperature, t...);
        },
        tail...);
  }
  detail::TensorInputs inputs(fn, {{"view1", X}, {"view2", view2_or_labels}});
  return detail::run_loss(
      std::move(inputs),
      [temperature](const auto& in, const auto&... t) {
        return contrastive::ntxent_loss<Metric>(in[0], in[1], temperature, t...);
      },
      tail...);
}

// ---- PML's pair-weighting losses (losses/multi_similarity_loss.hpp, circle_loss.hpp) ----
// multi_similarity_loss(X, labels | pairs | (a1, p, a2, n), [metric], [MultiSimilarityOptions]); Cosine by default.
template <class Metric = Cosine, class... Tail>
torch::Tensor multi_similarity_loss(const torch::Tensor& X, const torch::Tensor& labels, const Tail&... tail) {
  return detail::labelled(
      "multi_similarity_loss", X, labels,
      [](const auto&... a) { return contrastive::multi_similarity_loss<Metric>(a...); }, tail...);
}
template <class Metric = Cosine, class... Tail>
torch::Tensor multi_similarity_loss(const torch::Tensor& X, const Pairs& pairs, const Tail&... tail) {
  return detail::on_pairs(
      "multi_similarity_loss", X, pairs,
      [](const auto&... a) { return contrastive::multi_similarity_loss<Metric>(a...); }, tail...);
}
template <class Metric = Cosine, class... Tail>
torch::Tensor multi_similarity_loss(const torch::Tensor& X, const PairIndices& pairs, const Tail&... tail) {
  return multi_similarity_loss<Metric>(X, to_pairs(pairs, "multi_similarity_loss"), tail...);
}

// circle_loss(X, labels | pairs | (a1, p, a2, n), [Cosine], [CircleOptions]).
template <class Metric = Cosine, class... Tail>
torch::Tensor circle_loss(const torch::Tensor& X, const torch::Tensor& labels, const Tail&... tail) {
  return detail::labelled(
      "circle_loss", X, labels, [](const auto&... a) { return contrastive::circle_loss<Metric>(a...); }, tail...);
}
template <class Metric = Cosine, class... Tail>
torch::Tensor circle_loss(const torch::Tensor& X, const Pairs& pairs, const Tail&... tail) {
  return detail::on_pairs(
      "circle_loss", X, pairs, [](const auto&... a) { return contrastive::circle_loss<Metric>(a...); }, tail...);
}
template <class Metric = Cosine, class... Tail>
torch::Tensor circle_loss(const torch::Tensor& X, const PairIndices& pairs, const Tail&... tail) {
  return circle_loss<Metric>(X, to_pairs(pairs, "circle_loss"), tail...);
}

// ---- lifted structure, NCA, N-pairs (losses/lifted_structure_loss.hpp, nca_loss.hpp, npairs_loss.hpp) ----
// lifted_structure_loss(X, labels, [metric], [LiftedStructureOptions]); Euclidean by default.
template <class Metric = Euclidean, class... Tail>
torch::Tensor lifted_structure_loss(const torch::Tensor& X, const torch::Tensor& labels, const Tail&... tail) {
  return detail::labelled(
      "lifted_structure_loss", X, labels,
      [](const auto&... a) { return contrastive::lifted_structure_loss<Metric>(a...); }, tail...);
}
// generalized_lifted_structure_loss(X, labels, [metric], [options]); Euclidean by default.
template <class Metric = Euclidean, class... Tail>
torch::Tensor generalized_lifted_structure_loss(const torch::Tensor& X, const torch::Tensor& labels,
                                                const Tail&... tail) {
  return detail::labelled(
      "generalized_lifted_structure_loss", X, labels,
      [](const auto&... a) { return contrastive::generalized_lifted_structure_loss<Metric>(a...); }, tail...);
}
// nca_loss(X, labels, [metric], [NCAOptions]); SquaredEuclidean by default.
template <class Metric = SquaredEuclidean, class... Tail>
torch::Tensor nca_loss(const torch::Tensor& X, const torch::Tensor& labels, const Tail&... tail) {
  return detail::labelled(
      "nca_loss", X, labels, [](const auto&... a) { return contrastive::nca_loss<Metric>(a...); }, tail...);
}
// npairs_loss(X, labels, [metric], [NPairsOptions]); Cosine by default.
template <class Metric = Cosine, class... Tail>
torch::Tensor npairs_loss(const torch::Tensor& X, const torch::Tensor& labels, const Tail&... tail) {
  return detail::labelled(
      "npairs_loss", X, labels, [](const auto&... a) { return contrastive::npairs_loss<Metric>(a...); }, tail...);
}

// ---- tuplet margin, angular, VICReg (losses/tuplet_margin_loss.hpp, angular_loss.hpp, vicreg_loss.hpp) ----
// tuplet_margin_loss(X, labels, [Cosine], [TupletMarginOptions]).
template <class Metric = Cosine, class... Tail>
torch::Tensor tuplet_margin_loss(const torch::Tensor& X, const torch::Tensor& labels, const Tail&... tail) {
  return detail::labelled(
      "tuplet_margin_loss", X, labels, [](const auto&... a) { return contrastive::tuplet_margin_loss<Metric>(a...); },
      tail...);
}
// angular_loss(X, labels, [Euclidean], [AngularOptions]).
template <class Metric = Euclidean, class... Tail>
torch::Tensor angular_loss(const torch::Tensor& X, const torch::Tensor& labels, const Tail&... tail) {
  return detail::labelled(
      "angular_loss", X, labels, [](const auto&... a) { return contrastive::angular_loss<Metric>(a...); }, tail...);
}
// vicreg_loss(Z, Z2, [SquaredEuclidean], [VICRegOptions]): two views, both receive gradients.
template <class Metric = SquaredEuclidean, class... Tail>
torch::Tensor vicreg_loss(const torch::Tensor& Z, const torch::Tensor& Z2, const Tail&... tail) {
  detail::TensorInputs inputs("vicreg_loss", {{"Z", Z}, {"Z2", Z2}});
  return detail::run_loss(
      std::move(inputs),
      [](const auto& in, const auto&... t) { return contrastive::vicreg_loss<Metric>(in[0], in[1], t...); }, tail...);
}

// ---- class-weight losses (losses/arcface_loss.hpp, ..., docs/class_losses.md) ----
// Each: loss(X, labels, W, [options]); W c x D (PML's D x c W as W.t()), labels in [0, c).

// arcface_loss(X, labels, W, [ArcFaceOptions])
template <class... Tail>
torch::Tensor arcface_loss(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& W,
                           const Tail&... tail) {
  return detail::class_weighted(
      "arcface_loss", X, labels, W, [](const auto&... a) { return contrastive::arcface_loss(a...); }, tail...);
}
// cosface_loss(X, labels, W, [CosFaceOptions])
template <class... Tail>
torch::Tensor cosface_loss(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& W,
                           const Tail&... tail) {
  return detail::class_weighted(
      "cosface_loss", X, labels, W, [](const auto&... a) { return contrastive::cosface_loss(a...); }, tail...);
}
// sphereface_loss(X, labels, W, [SphereFaceOptions])
template <class... Tail>
torch::Tensor sphereface_loss(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& W,
                              const Tail&... tail) {
  return detail::class_weighted(
      "sphereface_loss", X, labels, W, [](const auto&... a) { return contrastive::sphereface_loss(a...); }, tail...);
}
// subcenter_arcface_loss(X, labels, W, [SubCenterArcFaceOptions]): W is (c K) x D, class c's
// sub-centres at rows cK .. cK + K - 1.
template <class... Tail>
torch::Tensor subcenter_arcface_loss(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& W,
                                     const Tail&... tail) {
  return detail::class_weighted(
      "subcenter_arcface_loss", X, labels, W,
      [](const auto&... a) { return contrastive::subcenter_arcface_loss(a...); }, tail...);
}
// normalized_softmax_loss(X, labels, W, [NormalizedSoftmaxOptions])
template <class... Tail>
torch::Tensor normalized_softmax_loss(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& W,
                                      const Tail&... tail) {
  return detail::class_weighted(
      "normalized_softmax_loss", X, labels, W,
      [](const auto&... a) { return contrastive::normalized_softmax_loss(a...); }, tail...);
}
// proxy_nca_loss(X, labels, W, [ProxyNCAOptions]): W = PML's proxies (c x D) as they are.
template <class... Tail>
torch::Tensor proxy_nca_loss(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& W,
                             const Tail&... tail) {
  return detail::class_weighted(
      "proxy_nca_loss", X, labels, W, [](const auto&... a) { return contrastive::proxy_nca_loss(a...); }, tail...);
}
// proxy_anchor_loss(X, labels, W, [ProxyAnchorOptions]): W = PML's proxies (c x D) as they are.
template <class... Tail>
torch::Tensor proxy_anchor_loss(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& W,
                                const Tail&... tail) {
  return detail::class_weighted(
      "proxy_anchor_loss", X, labels, W, [](const auto&... a) { return contrastive::proxy_anchor_loss(a...); },
      tail...);
}

// subcenter_arcface_outliers(X, labels, W, [options], [threshold]): the library's
// SubCenterOutliers as tensors, outside autograd: outliers and dominant int64,
// dominant_cosine in X's dtype (W is read in X's dtype).
struct SubCenterOutlierTensors {
  torch::Tensor outliers;         // 1-D int64: rows, class by class
  torch::Tensor dominant;         // 1-D int64, one per class: its dominant sub-centre in [0, K), -1 without samples
  torch::Tensor dominant_cosine;  // 1-D, one per row
};

inline SubCenterOutlierTensors subcenter_arcface_outliers(const torch::Tensor& X, const torch::Tensor& labels,
                                                          const torch::Tensor& W,
                                                          const SubCenterArcFaceOptions& options = {},
                                                          double threshold = 75) {
  const char* fn = "subcenter_arcface_outliers";
  detail::TensorInputs inputs(fn, {{"X", X}});
  const LabelVector y = detail::integer_vector(fn, "labels", labels);
  inputs.add_parameter("W", W, 2);
  if (W.dim() != 2) detail::require_dims(fn, "W", W, 2, "c x D, one row per class");
  return detail::with_scalar(X, [&](auto scalar) {
    using Scalar = decltype(scalar);
    const detail::MatrixViews<Scalar> views(inputs.tensors());
    SubCenterOutliers<Scalar> r = contrastive::subcenter_arcface_outliers(views[0], y, views[1], options, threshold);
    RowMatrix<Scalar> cosine = r.dominant_cosine.transpose();
    SubCenterOutlierTensors out;
    out.outliers = detail::index_tensor(r.outliers);
    out.dominant = detail::index_tensor(r.dominant);
    out.dominant_cosine = detail::to_tensor<Scalar>(std::move(cosine)).view({-1});
    return out;
  });
}

}  // namespace libtorch
}  // namespace contrastive
