// Command-line flags of train_digits: --name value or --name=value. Anything
// malformed throws UsageError, which main() reports with the usage text.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>

#ifndef CONTRASTIVE_DIGITS_CSV
#define CONTRASTIVE_DIGITS_CSV "examples/data/digits.csv"
#endif

namespace digits {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// NTXent and VICReg are self-supervised: two random warps of each image, labels unused in training.
enum class LossKind {
  BatchHard, SemiHard, BatchAll, Contrastive, Margin, SupCon, NTXent, VICReg,
  // Losses with learnable class weights W, trained alongside the MLP (digits/class_head.hpp).
  ArcFace, CosFace, SphereFace, SubCenterArcFace, NormalizedSoftmax, ProxyNCA, ProxyAnchor
};

inline bool is_class_weight_loss(LossKind loss) { return loss >= LossKind::ArcFace; }
enum class MetricKind { Euclidean, SquaredEuclidean, Cosine };

struct Flags {
  bool help = false;
  LossKind loss = LossKind::BatchHard;
  MetricKind metric = MetricKind::Euclidean;
  long dim = 16;
  long hidden = 512;
  long epochs = 100;
  long p = 10;
  long k = 8;
  long batches = 0;  // per epoch; 0 = enough to see every training sample about once
  double lr = 2e-3;
  double weight_decay = 0.01;
  std::optional<double> margin;  // per-loss default, see margin_or_default()
  double temperature = 0.1;  // supcon; ntxent's default is 0.5, normalized-softmax's 0.15 (temperature_or_default)
  bool temperature_given = false;
  std::optional<double> scale;  // class-weight losses: scale, softmax_scale or alpha; see scale_or_default()
  bool normalize = true;  // VICReg: off unless --normalize is given (its variance term wants std >= 1 per dimension)
  bool normalize_given = false;
  bool augment = true;  // random small warps of the training images (digits/augment.hpp)
  unsigned seed = 1;
  std::string out = "digits_embedding.svg";
  std::string curve;  // training-curve SVG; empty = <out without .svg>_curve.svg
  std::string data = CONTRASTIVE_DIGITS_CSV;

  // Triplet margin, contrastive neg_margin, margin-loss alpha, or a class-weight loss's margin.
  double margin_or_default() const {
    if (margin) return *margin;
    switch (loss) {
      case LossKind::Contrastive: return 1.0;
      case LossKind::Margin: return 0.2;
      case LossKind::ArcFace:
      case LossKind::SubCenterArcFace: return 28.6;  // degrees
      case LossKind::CosFace: return 0.35;
      case LossKind::SphereFace: return 4;
      case LossKind::ProxyAnchor: return 0.2;  // PML's 0.1 gives 0.980 instead of 0.987 on seed 1
      default: return 0.5;
    }
  }
  // The class-weight losses' scale (ArcFace, CosFace, SphereFace, SubCenterArcFace),
  // softmax_scale (ProxyNCA) or alpha (ProxyAnchor).
  double scale_or_default() const {
    if (scale) return *scale;
    switch (loss) {
      case LossKind::SphereFace: return 32;
      // PML's 64 leaves seed 1 at 0.9796; 32 gives 0.983-0.996 on seeds 1-5.
      case LossKind::CosFace: return 32;
      case LossKind::ProxyNCA: return 4;
      case LossKind::ProxyAnchor: return 32;
      default: return 64;
    }
  }

  double temperature_or_default() const {
    if (temperature_given) return temperature;
    switch (loss) {
      case LossKind::NTXent: return 0.5;
      // PML's 0.05 gives 0.967-0.991 on seeds 1-5, 0.1 0.981-0.993 (seed 5 one
      // error from 0.98), 0.15 0.983-0.994: a 16-D unit embedding of 10 classes
      // wants softer logits than PML's large-c default.
      case LossKind::NormalizedSoftmax: return 0.15;
      default: return temperature;
    }
  }

  bool self_supervised() const { return loss == LossKind::NTXent || loss == LossKind::VICReg; }
  bool normalize_embeddings() const { return normalize_given || loss != LossKind::VICReg ? normalize : false; }

  std::string curve_path() const {
    if (!curve.empty()) return curve;
    const std::string stem = out.size() > 4 && out.compare(out.size() - 4, 4, ".svg") == 0 ? out.substr(0, out.size() - 4) : out;
    return stem + "_curve.svg";
  }
};

inline const char* usage() {
  return "usage: train_digits [flags]\n"
         "Trains a small MLP embedding of the UCI 8x8 digits with a contrastive loss\n"
         "and reports held-out Recall@1 (1-nearest-neighbour accuracy), MAP@R and k-means NMI.\n"
         "\n"
         "  --loss NAME        batch-hard (default), semi-hard, batch-all, contrastive,\n"
         "                     margin, supcon; self-supervised (two random warps of each\n"
         "                     image, labels unused): ntxent, vicreg; with learnable class\n"
         "                     weights: arcface, cosface, sphereface, subcenter-arcface,\n"
         "                     normalized-softmax, proxy-nca, proxy-anchor\n"
         "  --metric NAME      euclidean (default), squared, cosine\n"
         "  --dim N            embedding size (default 16)\n"
         "  --hidden N         hidden layer width (default 512)\n"
         "  --epochs N         training epochs (default 100)\n"
         "  --p N, --k N       batches of P classes x K samples (default 10 x 8)\n"
         "  --batches N        batches per epoch (default: train size / (P K))\n"
         "  --lr X             Adam learning rate (default 0.002)\n"
         "  --weight-decay X   AdamW decoupled weight decay (default 0.01)\n"
         "  --margin X         triplet margin / contrastive neg_margin / margin-loss alpha\n"
         "                     (default 0.5 / 1.0 / 0.2), or the class-weight loss's margin\n"
         "                     (arcface 28.6 degrees, cosface 0.35, sphereface 4, proxy-anchor 0.2)\n"
         "  --temperature X    supcon / normalized-softmax / ntxent temperature (default 0.1 / 0.15 / 0.5)\n"
         "  --scale X          class-weight loss scale (arcface, subcenter 64, cosface,\n"
         "                     sphereface 32), proxy-nca softmax_scale (4), proxy-anchor alpha (32)\n"
         "  --normalize on|off L2-normalise the embeddings (default on; off for vicreg)\n"
         "  --augment on|off   warp each training image a little: rotation up to 5 degrees,\n"
         "                     scale up to 5%, shift up to a quarter pixel (default on)\n"
         "  --seed N           seed of the split, the initialisation and the batches (default 1)\n"
         "  --out FILE         SVG of the held-out embeddings (default digits_embedding.svg)\n"
         "  --curve FILE       SVG of the loss and held-out Recall@1 per epoch\n"
         "                     (default: the --out name with _curve)\n"
         "  --data FILE        digits CSV (default: the copy in examples/data)\n"
         "  --help             this text\n";
}

namespace detail {

inline long parse_integer(const std::string& flag, const std::string& text, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || end != text.c_str() + text.size() || errno != 0 || value < lo || value > hi) {
    throw UsageError(flag + " needs an integer in " + std::to_string(lo) + ".." + std::to_string(hi) +
                     ", got '" + text + "'");
  }
  return value;
}

inline double parse_positive(const std::string& flag, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno != 0 || !(value > 0) ||
      value > 1e6) {
    throw UsageError(flag + " needs a positive number, got '" + text + "'");
  }
  return value;
}

}  // namespace detail

inline Flags parse_flags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string name = argv[i];
    std::optional<std::string> value;
    if (name.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + name + "'");
    const std::size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name == "--help") {
      f.help = true;
      continue;
    }
    static const char* const known[] = {"--loss", "--metric", "--normalize", "--augment", "--dim", "--hidden",
                                        "--epochs", "--p", "--k", "--batches", "--seed", "--lr",
                                        "--weight-decay", "--margin", "--temperature", "--scale", "--out", "--curve",
                                        "--data"};
    if (std::find(std::begin(known), std::end(known), name) == std::end(known))
      throw UsageError("unknown flag '" + name + "'");
    if (!value) {
      if (i + 1 >= argc) throw UsageError(name + " needs a value");
      value = argv[++i];
    }
    const std::string& v = *value;
    if (name == "--loss") {
      if (v == "batch-hard") f.loss = LossKind::BatchHard;
      else if (v == "semi-hard") f.loss = LossKind::SemiHard;
      else if (v == "batch-all") f.loss = LossKind::BatchAll;
      else if (v == "contrastive") f.loss = LossKind::Contrastive;
      else if (v == "margin") f.loss = LossKind::Margin;
      else if (v == "supcon") f.loss = LossKind::SupCon;
      else if (v == "ntxent") f.loss = LossKind::NTXent;
      else if (v == "vicreg") f.loss = LossKind::VICReg;
      else if (v == "arcface") f.loss = LossKind::ArcFace;
      else if (v == "cosface") f.loss = LossKind::CosFace;
      else if (v == "sphereface") f.loss = LossKind::SphereFace;
      else if (v == "subcenter-arcface") f.loss = LossKind::SubCenterArcFace;
      else if (v == "normalized-softmax") f.loss = LossKind::NormalizedSoftmax;
      else if (v == "proxy-nca") f.loss = LossKind::ProxyNCA;
      else if (v == "proxy-anchor") f.loss = LossKind::ProxyAnchor;
      else throw UsageError("unknown --loss '" + v + "'");
    } else if (name == "--metric") {
      if (v == "euclidean") f.metric = MetricKind::Euclidean;
      else if (v == "squared") f.metric = MetricKind::SquaredEuclidean;
      else if (v == "cosine") f.metric = MetricKind::Cosine;
      else throw UsageError("unknown --metric '" + v + "'");
    } else if (name == "--normalize") {
      f.normalize_given = true;
      if (v == "on") f.normalize = true;
      else if (v == "off") f.normalize = false;
      else throw UsageError("--normalize takes on or off, got '" + v + "'");
    } else if (name == "--augment") {
      if (v == "on") f.augment = true;
      else if (v == "off") f.augment = false;
      else throw UsageError("--augment takes on or off, got '" + v + "'");
    } else if (name == "--dim") {
      f.dim = detail::parse_integer(name, v, 1, 4096);
    } else if (name == "--hidden") {
      f.hidden = detail::parse_integer(name, v, 1, 4096);
    } else if (name == "--epochs") {
      f.epochs = detail::parse_integer(name, v, 0, 100000);
    } else if (name == "--p") {
      f.p = detail::parse_integer(name, v, 2, 10);
    } else if (name == "--k") {
      f.k = detail::parse_integer(name, v, 2, 100);
    } else if (name == "--batches") {
      f.batches = detail::parse_integer(name, v, 1, 1000000);
    } else if (name == "--seed") {
      f.seed = static_cast<unsigned>(detail::parse_integer(name, v, 0, 2147483647));
    } else if (name == "--lr") {
      f.lr = detail::parse_positive(name, v);
    } else if (name == "--weight-decay") {
      f.weight_decay = v == "0" ? 0.0 : detail::parse_positive(name, v);
    } else if (name == "--margin") {
      f.margin = detail::parse_positive(name, v);
    } else if (name == "--temperature") {
      f.temperature = detail::parse_positive(name, v);
      f.temperature_given = true;
    } else if (name == "--scale") {
      f.scale = detail::parse_positive(name, v);
    } else if (name == "--out") {
      f.out = v;
    } else if (name == "--curve") {
      f.curve = v;
    } else if (name == "--data") {
      f.data = v;
    } else {
      throw UsageError("unknown flag '" + name + "'");
    }
  }
  return f;
}

}  // namespace digits
