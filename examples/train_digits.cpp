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
//   train_digits --loss ntxent        # self-supervised: two random warps per image, labels unused
//
// Batches of P classes x K samples come from contrastive::MPerClassSampler;
// the self-supervised losses (ntxent, vicreg) take shuffled batches of images
// instead and train on two random warps of each. Each epoch prints the mean
// batch loss, the hard / semi-hard / easy fractions of the batches' triplets
// (contrastive::negative_stats) and held-out Recall@1. At the end: held-out
// Recall@1, MAP@R and k-means NMI (contrastive::retrieval_metrics,
// clustering_metrics) on raw pixels, before and after training; an SVG with a
// 2-D PCA of the held-out embeddings before and after, and one of the loss and
// held-out Recall@1 per epoch.
#include <contrastive/contrastive.hpp>

#include "digits/adam.hpp"
#include "digits/augment.hpp"
#include "digits/batches.hpp"
#include "digits/class_head.hpp"
#include "digits/dataset.hpp"
#include "digits/flags.hpp"
#include "digits/mlp.hpp"
#include "digits/plot.hpp"
#include "digits/evaluate.hpp"

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
#include <vector>

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
    case LossKind::NTXent: return "NT-Xent (self-supervised)";
    case LossKind::VICReg: return "VICReg (self-supervised)";
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
      return contrastive::normalized_softmax_loss(E, labels, W, contrastive::NormalizedSoftmaxOptions{f.temperature_or_default()}, dE, dW);
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
      return contrastive::supcon_loss<Metric>(E, labels, f.temperature_or_default(), contrastive::SupConOptions{}, dE);
    default: break;  // ntxent, vicreg: view_loss_and_gradient; the class-weight losses: above
  }
  return 0.0f;
}

// The self-supervised losses on two views of one batch (row i of each: the same image).
float view_loss_and_gradient(const Flags& f, const Matrix& E1, const Matrix& E2, Matrix& dE1, Matrix& dE2) {
  if (f.loss == LossKind::NTXent) return contrastive::ntxent_loss(E1, E2, f.temperature_or_default(), dE1, dE2);  // cosine
  return contrastive::vicreg_loss(E1, E2, contrastive::VICRegOptions{}, dE1, dE2);
}

// Stronger warps than the supervised default: the views must differ for the
// self-supervised losses to learn what does not change within a digit.
WarpOptions view_warp() {
  WarpOptions w;
  w.max_rotation_degrees = 12.0f;
  w.max_scale_change = 0.12f;
  w.max_shift_pixels = 0.75f;
  return w;
}

MlpParameters sum(MlpParameters a, const MlpParameters& b) {
  a.W1 += b.W1;
  a.b1 += b.b1;
  a.W2 += b.W2;
  a.b2 += b.b2;
  return a;
}

// Random batches of rows for the self-supervised losses (labels unused): a
// shuffled pass over the training set, batch by batch.
class ShuffledBatches {
 public:
  ShuffledBatches(Index rows, Index batch, std::mt19937& rng) : order_(static_cast<std::size_t>(rows)), batch_(batch), rng_(rng) {
    for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = static_cast<Index>(i);
    next_ = order_.size();
  }
  std::vector<Index> next() {
    if (next_ + static_cast<std::size_t>(batch_) > order_.size()) {
      std::shuffle(order_.begin(), order_.end(), rng_);
      next_ = 0;
    }
    const auto first = order_.begin() + static_cast<std::ptrdiff_t>(next_);
    next_ += static_cast<std::size_t>(batch_);
    return std::vector<Index>(first, first + batch_);
  }

 private:
  std::vector<Index> order_;
  Index batch_;
  std::size_t next_;
  std::mt19937& rng_;
};

template <class Metric>
int train(const Flags& f) {
  const auto start = std::chrono::steady_clock::now();
  // Fail before training, not after, when the SVGs cannot be written there.
  for (const std::string& path : {f.out, f.curve_path()}) {
    const std::filesystem::path out_dir = std::filesystem::absolute(path).parent_path();
    if (!std::filesystem::is_directory(out_dir))
      throw std::runtime_error("--out / --curve: directory '" + out_dir.string() + "' does not exist");
  }
  Dataset all = load_csv(f.data);
  std::mt19937 rng(f.seed);
  Dataset train_set, test_set;
  stratified_split(all, 0.3, rng, train_set, test_set);
  train_set.pixels /= 16.0f;  // pixels 0..16 -> [0, 1]
  test_set.pixels /= 16.0f;

  const bool ssl = f.self_supervised();
  Mlp net(kPixels, f.hidden, f.dim, f.normalize_embeddings(), rng);
  Adam adam(f.lr, f.weight_decay);
  // The class weights of the class-weight losses (empty for the others), from their own
  // generator so the other losses' runs stay as they were.
  std::mt19937 head_rng(f.seed + 7919u);
  const Index head_rows = !is_class_weight_loss(f.loss)              ? 0
                          : f.loss == LossKind::SubCenterArcFace ? kClasses * kSubCenters
                                                                   : kClasses;
  ClassHead head(head_rows, f.dim, f.lr, head_rng);
  PkSampler sampler(train_set.labels, kClasses, f.p, f.k, rng);
  ShuffledBatches shuffled(static_cast<Index>(train_set.labels.size()), f.p * f.k, rng);
  const long batches = f.batches > 0 ? f.batches : std::max<long>(1, static_cast<long>(sampler.batches_per_epoch()));
  // Negatives are classified against the triplet margin (0.2 for the other losses).
  const double stats_margin = is_triplet_loss(f.loss) ? f.margin_or_default() : 0.2;

  const Matrix before = net.forward(test_set.pixels);
  const Scores raw = held_out_scores<Metric>(test_set.pixels, test_set.labels, f.seed);
  const Scores untrained = held_out_scores<Metric>(before, test_set.labels, f.seed);

  std::printf("digits: %ld train / %ld held-out samples%s; MLP 64-%ld-%ld%s; %s loss, %s distance\n",
              static_cast<long>(train_set.labels.size()), static_cast<long>(test_set.labels.size()),
              ssl ? " (two random warps of each training image, labels unused)"
                  : f.augment ? " (training images randomly warped)" : "",
              f.hidden, f.dim, f.normalize_embeddings() ? " (unit norm)" : "", loss_name(f.loss), metric_name(f.metric));
  if (ssl) {
    std::printf("%ld epochs x %ld batches of %ld random images, Adam lr %g (cosine decay), seed %u\n", f.epochs,
                batches, f.p * f.k, f.lr, f.seed);
  } else {
    std::printf("%ld epochs x %ld batches of %ld classes x %ld samples (MPerClassSampler), Adam lr %g (cosine decay), "
                "seed %u\n", f.epochs, batches, f.p, f.k, f.lr, f.seed);
    std::printf("negatives of the batches' triplets at margin %g: hard / semi-hard / easy fractions\n", stats_margin);
  }
  std::printf("epoch      loss    hard  semi    easy   held-out R@1\n");
  std::printf("%5d         -       -     -       -   %.4f\n", 0, untrained.recall_at_1);

  Mlp::Cache cache, cache2;
  Matrix dE, dE2;
  std::vector<double> loss_curve, recall_curve;
  for (long epoch = 1; epoch <= f.epochs; ++epoch) {
    double loss_sum = 0;
    contrastive::Index hard = 0, semihard = 0, easy = 0;
    for (long b = 0; b < batches; ++b) {
      // Cosine decay of the learning rate to 0 over the run: a settled final epoch.
      const double progress = static_cast<double>((epoch - 1) * batches + b) / static_cast<double>(f.epochs * batches);
      adam.set_learning_rate(0.5 * f.lr * (1.0 + std::cos(3.141592653589793 * progress)));
      head.set_learning_rate(0.5 * f.lr * (1.0 + std::cos(3.141592653589793 * progress)));
      if (ssl) {
        const Dataset batch = select_rows(train_set, shuffled.next());
        const Matrix E1 = net.forward(random_warp(batch.pixels, view_warp(), rng), &cache);
        const Matrix E2 = net.forward(random_warp(batch.pixels, view_warp(), rng), &cache2);
        loss_sum += static_cast<double>(view_loss_and_gradient(f, E1, E2, dE, dE2));
        adam.step(net.parameters(), sum(net.backward(cache, dE), net.backward(cache2, dE2)));
        continue;
      }
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
    const double recall = recall_at_1<Metric>(net.forward(test_set.pixels), test_set.labels);
    loss_curve.push_back(loss_sum / static_cast<double>(batches));
    recall_curve.push_back(recall);
    if (ssl) {
      std::printf("%5ld  %8.4f       -     -       -   %.4f\n", epoch, loss_curve.back(), recall);
    } else {
      const double triplets = std::max(1.0, static_cast<double>(hard + semihard + easy));
      std::printf("%5ld  %8.4f  %.4f  %.4f  %.4f   %.4f\n", epoch, loss_curve.back(),
                  static_cast<double>(hard) / triplets, static_cast<double>(semihard) / triplets,
                  static_cast<double>(easy) / triplets, recall);
    }
  }

  const Matrix after = net.forward(test_set.pixels);
  const Scores trained = held_out_scores<Metric>(after, test_set.labels, f.seed);
  std::printf("\nheld-out scores (%s distance, %ld samples; k-means NMI with 10 clusters)\n", metric_name(f.metric),
              static_cast<long>(test_set.labels.size()));
  std::printf("                           Recall@1   MAP@R     NMI\n");
  std::printf("  raw pixels (64-D)        %.4f     %.4f    %.4f\n", raw.recall_at_1, raw.map_at_r, raw.nmi);
  std::printf("  embedding, untrained     %.4f     %.4f    %.4f\n", untrained.recall_at_1, untrained.map_at_r,
              untrained.nmi);
  std::printf("  embedding, trained       %.4f     %.4f    %.4f\n", trained.recall_at_1, trained.map_at_r, trained.nmi);

  char before_title[96], after_title[96];
  std::snprintf(before_title, sizeof before_title, "before training (Recall@1 %.3f)", untrained.recall_at_1);
  std::snprintf(after_title, sizeof after_title, "after %ld epochs (Recall@1 %.3f)", f.epochs, trained.recall_at_1);
  const std::string heading = std::string("PCA of held-out digit embeddings: ") + loss_name(f.loss) +
                              " loss, " + metric_name(f.metric) + " distance, " + std::to_string(f.dim) +
                              "-D";
  write_scatter_svg(f.out, heading,
                    {{before_title, pca_2d(before), test_set.labels}, {after_title, pca_2d(after), test_set.labels}});
  write_curve_svg(f.curve_path(), std::string("training: ") + loss_name(f.loss) + " loss",
                  {{"mean batch loss", loss_curve, "#1f77b4"}, {"held-out Recall@1", recall_curve, "#d62728"}});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s and %s\n", std::filesystem::absolute(f.out).string().c_str(),
              std::filesystem::absolute(f.curve_path()).string().c_str());
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
