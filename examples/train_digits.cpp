// Metric learning on real data: a two-layer MLP (Eigen, Adam) maps the UCI 8x8
// handwritten digits to a 16-D embedding, trained on P x K batches with one of
// the library's losses; the loss value and dL/d(embeddings) come from
// contrastive, the MLP backpropagates the rest. Each training image is warped
// a little at random (digits/augment.hpp): on ~1,260 images the MLP otherwise
// fits its batches exactly and generalises less well.
//
//   train_digits                      # defaults: batch-hard triplets, Euclidean, 16-D
//   train_digits --loss supcon --metric cosine --dim 8 --out supcon.svg
//   train_digits --loss arcface       # learnable class weights W, trained with the MLP
//   train_digits --help
//
// Each epoch prints the mean batch loss, the hard / semi-hard / easy fractions
// of the batches' triplets (contrastive::negative_stats) and held-out Recall@1.
// At the end: held-out Recall@1 before training, after training and on raw
// pixels, and an SVG with a 2-D PCA of the held-out embeddings before and after.
#include <contrastive/contrastive.hpp>

#include "digits/adam.hpp"
#include "digits/augment.hpp"
#include "digits/batches.hpp"
#include "digits/class_head.hpp"
#include "digits/dataset.hpp"
#include "digits/flags.hpp"
#include "digits/mlp.hpp"
#include "digits/plot.hpp"
#include "digits/recall.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>

namespace {

using namespace digits;

const char* loss_name(LossKind loss) {
  switch (loss) {
    case LossKind::BatchHard: return "batch-hard triplet";
    case LossKind::SemiHard: return "semi-hard triplet";
    case LossKind::BatchAll: return "batch-all triplet";
    case LossKind::Contrastive: return "contrastive";
    case LossKind::Margin: return "margin";
    case LossKind::SupCon: return "supcon";
    case LossKind::ArcFace: return "ArcFace";
    case LossKind::CosFace: return "CosFace";
    case LossKind::SphereFace: return "SphereFace";
    case LossKind::SubCenterArcFace: return "sub-centre ArcFace";
    case LossKind::NormalizedSoftmax: return "normalised softmax";
    case LossKind::ProxyNCA: return "ProxyNCA";
    case LossKind::ProxyAnchor: return "ProxyAnchor";
  }
  return "?";
}

const char* metric_name(MetricKind metric) {
  switch (metric) {
    case MetricKind::Euclidean: return "Euclidean";
    case MetricKind::SquaredEuclidean: return "squared Euclidean";
    case MetricKind::Cosine: return "cosine";
  }
  return "?";
}

bool is_triplet_loss(LossKind loss) {
  return loss == LossKind::BatchHard || loss == LossKind::SemiHard || loss == LossKind::BatchAll;
}

constexpr int kSubCenters = 3;

// A class-weight loss on E against the head's W: dL/dE into dE, dL/dW into head.dW().
float class_loss_and_gradient(const Flags& f, const Matrix& E, const LabelVector& labels, Matrix& dE,
                              ClassHead& head) {
  const double margin = f.margin_or_default(), scale = f.scale_or_default();
  const Matrix& W = head.W();
  Matrix& dW = head.dW();
  switch (f.loss) {
    case LossKind::ArcFace: return contrastive::arcface_loss(E, labels, W, contrastive::ArcFaceOptions{margin, scale}, dE, dW);
    case LossKind::CosFace: return contrastive::cosface_loss(E, labels, W, contrastive::CosFaceOptions{margin, scale}, dE, dW);
    case LossKind::SphereFace: {
      contrastive::SphereFaceOptions o;
      o.margin = static_cast<int>(margin);
      o.scale = scale;
      return contrastive::sphereface_loss(E, labels, W, o, dE, dW);
    }
    case LossKind::SubCenterArcFace: {
      contrastive::SubCenterArcFaceOptions o;
      o.margin = margin;
      o.scale = scale;
      o.sub_centers = kSubCenters;
      return contrastive::subcenter_arcface_loss(E, labels, W, o, dE, dW);
    }
    case LossKind::NormalizedSoftmax:
      return contrastive::normalized_softmax_loss(E, labels, W, contrastive::NormalizedSoftmaxOptions{f.temperature}, dE, dW);
    case LossKind::ProxyNCA: return contrastive::proxy_nca_loss(E, labels, W, contrastive::ProxyNCAOptions{scale}, dE, dW);
    case LossKind::ProxyAnchor:
      return contrastive::proxy_anchor_loss(E, labels, W, contrastive::ProxyAnchorOptions{margin, scale}, dE, dW);
    default: break;
  }
  return 0.0f;
}

// The loss of one batch of embeddings E; dL/dE is written into dE, through the
// library's caller-owned-buffer form of each loss.
template <class Metric>
float loss_and_gradient(const Flags& f, const Matrix& E, const LabelVector& labels, Matrix& dE, ClassHead& head) {
  if (is_class_weight_loss(f.loss)) return class_loss_and_gradient(f, E, labels, dE, head);
  contrastive::TripletOptions triplet;
  triplet.margin = f.margin_or_default();
  switch (f.loss) {
    case LossKind::BatchHard: return contrastive::batch_hard_triplet_loss<Metric>(E, labels, triplet, dE);
    case LossKind::SemiHard: return contrastive::batch_semihard_triplet_loss<Metric>(E, labels, triplet, dE);
    case LossKind::BatchAll: return contrastive::batch_all_triplet_loss<Metric>(E, labels, triplet, dE);
    case LossKind::Contrastive: {
      contrastive::ContrastiveOptions options;
      options.neg_margin = f.margin_or_default();
      return contrastive::batch_contrastive_loss<Metric>(E, labels, options, dE);
    }
    case LossKind::Margin: {
      contrastive::MarginOptions options;
      options.alpha = f.margin_or_default();
      return contrastive::margin_loss<Metric>(E, labels, options, dE);
    }
    case LossKind::SupCon:
      return contrastive::supcon_loss<Metric>(E, labels, f.temperature, contrastive::SupConOptions{}, dE);
    default: break;
  }
  return 0.0f;
}

template <class Metric>
int train(const Flags& f) {
  const auto start = std::chrono::steady_clock::now();
  // Fail before training, not after, when the SVG cannot be written there.
  const std::filesystem::path out_dir = std::filesystem::absolute(f.out).parent_path();
  if (!std::filesystem::is_directory(out_dir))
    throw std::runtime_error("--out: directory '" + out_dir.string() + "' does not exist");
  Dataset all = load_csv(f.data);
  std::mt19937 rng(f.seed);
  Dataset train_set, test_set;
  stratified_split(all, 0.3, rng, train_set, test_set);
  train_set.pixels /= 16.0f;  // pixels 0..16 -> [0, 1]
  test_set.pixels /= 16.0f;

  Mlp net(kPixels, f.hidden, f.dim, f.normalize, rng);
  Adam adam(f.lr, f.weight_decay);
  // The class weights of the class-weight losses (empty for the others), from their own
  // generator so the other losses' runs stay as they were.
  std::mt19937 head_rng(f.seed + 7919u);
  const Index head_rows = !is_class_weight_loss(f.loss)              ? 0
                          : f.loss == LossKind::SubCenterArcFace ? kClasses * kSubCenters
                                                                   : kClasses;
  ClassHead head(head_rows, f.dim, f.lr, head_rng);
  PkSampler sampler(train_set.labels, kClasses, f.p, f.k, rng);
  const long batches = f.batches > 0 ? f.batches
                                     : std::max<long>(1, static_cast<long>(train_set.labels.size()) /
                                                             static_cast<long>(sampler.batch_size()));
  // Negatives are classified against the triplet margin (0.2 for the other losses).
  const double stats_margin = is_triplet_loss(f.loss) ? f.margin_or_default() : 0.2;

  const Matrix before = net.forward(test_set.pixels);
  const double recall_raw = recall_at_1<Metric>(test_set.pixels, test_set.labels);
  const double recall_before = recall_at_1<Metric>(before, test_set.labels);

  std::printf("digits: %ld train / %ld held-out samples%s; MLP 64-%ld-%ld%s; %s loss, %s distance\n",
              static_cast<long>(train_set.labels.size()), static_cast<long>(test_set.labels.size()),
              f.augment ? " (training images randomly warped)" : "", f.hidden, f.dim,
              f.normalize ? " (unit norm)" : "", loss_name(f.loss), metric_name(f.metric));
  std::printf("%ld epochs x %ld batches of %ld classes x %ld samples, Adam lr %g (cosine decay), seed %u\n", f.epochs,
              batches, f.p, f.k, f.lr, f.seed);
  std::printf("negatives of the batches' triplets at margin %g: hard / semi-hard / easy fractions\n",
              stats_margin);
  std::printf("epoch      loss    hard  semi    easy   held-out R@1\n");
  std::printf("%5d         -       -     -       -   %.4f\n", 0, recall_before);

  Mlp::Cache cache;
  Matrix dE;
  for (long epoch = 1; epoch <= f.epochs; ++epoch) {
    double loss_sum = 0;
    contrastive::Index hard = 0, semihard = 0, easy = 0;
    for (long b = 0; b < batches; ++b) {
      // Cosine decay of the learning rate to 0 over the run: a settled final epoch.
      const double progress = static_cast<double>((epoch - 1) * batches + b) / static_cast<double>(f.epochs * batches);
      adam.set_learning_rate(0.5 * f.lr * (1.0 + std::cos(3.141592653589793 * progress)));
      head.set_learning_rate(0.5 * f.lr * (1.0 + std::cos(3.141592653589793 * progress)));
      Dataset batch = select_rows(train_set, sampler.next());
      if (f.augment) batch.pixels = random_warp(batch.pixels, WarpOptions{}, rng);
      const Matrix E = net.forward(batch.pixels, &cache);
      loss_sum += static_cast<double>(loss_and_gradient<Metric>(f, E, batch.labels, dE, head));
      const auto stats = contrastive::negative_stats<Metric>(E, batch.labels, stats_margin);
      hard += stats.hard;
      semihard += stats.semihard;
      easy += stats.easy;
      adam.step(net.parameters(), net.backward(cache, dE));
      if (is_class_weight_loss(f.loss)) head.step();
    }
    const double triplets = std::max(1.0, static_cast<double>(hard + semihard + easy));
    const double recall = recall_at_1<Metric>(net.forward(test_set.pixels), test_set.labels);
    std::printf("%5ld  %8.4f  %.4f  %.4f  %.4f   %.4f\n", epoch, loss_sum / static_cast<double>(batches),
                static_cast<double>(hard) / triplets, static_cast<double>(semihard) / triplets,
                static_cast<double>(easy) / triplets, recall);
  }

  const Matrix after = net.forward(test_set.pixels);
  const double recall_after = recall_at_1<Metric>(after, test_set.labels);
  std::printf("\nheld-out Recall@1 (%s distance, %ld samples)\n", metric_name(f.metric),
              static_cast<long>(test_set.labels.size()));
  std::printf("  raw pixels (64-D)        %.4f\n", recall_raw);
  std::printf("  embedding, untrained     %.4f\n", recall_before);
  std::printf("  embedding, trained       %.4f\n", recall_after);

  char before_title[96], after_title[96];
  std::snprintf(before_title, sizeof before_title, "before training (Recall@1 %.3f)", recall_before);
  std::snprintf(after_title, sizeof after_title, "after %ld epochs (Recall@1 %.3f)", f.epochs, recall_after);
  const std::string heading = std::string("PCA of held-out digit embeddings: ") + loss_name(f.loss) +
                              " loss, " + metric_name(f.metric) + " distance, " + std::to_string(f.dim) +
                              "-D";
  write_scatter_svg(f.out, heading,
                    {{before_title, pca_2d(before), test_set.labels}, {after_title, pca_2d(after), test_set.labels}});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s\n", std::filesystem::absolute(f.out).string().c_str());
  std::printf("total time %.1f s\n", seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  try {
    flags = parse_flags(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "train_digits: " << e.what() << "\n\n" << usage();
    return 2;
  }
  if (flags.help) {
    std::cout << usage();
    return 0;
  }
  try {
    switch (flags.metric) {
      case MetricKind::Euclidean: return train<contrastive::Euclidean>(flags);
      case MetricKind::SquaredEuclidean: return train<contrastive::SquaredEuclidean>(flags);
      case MetricKind::Cosine: return train<contrastive::Cosine>(flags);
    }
  } catch (const std::exception& e) {
    std::cerr << "train_digits: error: " << e.what() << "\n";
    return 1;
  }
  return 1;
}
