// The libtorch adapter against torch itself: each loss written in torch ops
// (float64, autograd) in this process, and its value and gradients compared
// with the adapter's, whose backward is the library's analytic gradient:
// batch-hard triplets (Euclidean), batch contrastive, SupCon, NT-Xent (two
// views), margin loss with a learnable beta (scalar and per class), and a
// learnable Mahalanobis L.
//
// The adapter's headers come before Catch: torch pulls in glog, whose CHECK
// macro Catch's must replace, not the other way round.
#include <contrastive/libtorch.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace test_libtorch_losses {

namespace {

namespace ct = contrastive::libtorch;

const auto f64 = torch::dtype(torch::kDouble);

// Relative to max(1, |expected|), as the library's own tests.
double relative_error(const torch::Tensor& expected, const torch::Tensor& got) {
  REQUIRE(expected.sizes() == got.sizes());
  const double scale = std::max(1.0, expected.norm().item<double>());
  return (expected - got).norm().item<double>() / scale;
}

constexpr double kTolerance = 1e-10;

torch::Tensor leaf(const torch::Tensor& t) { return t.detach().clone().requires_grad_(true); }

// P classes of K rows each.
torch::Tensor class_blocks(std::int64_t classes, std::int64_t per_class) {
  return torch::arange(classes * per_class, torch::kLong).div(per_class, "floor");
}

// Exact Euclidean distances; the diagonal is 0 with a zero gradient.
torch::Tensor euclidean_distances(const torch::Tensor& X) {
  const auto n = X.size(0);
  const torch::Tensor eye = torch::eye(n, X.options());
  const torch::Tensor squared = (X.unsqueeze(1) - X.unsqueeze(0)).pow(2).sum(-1);
  return (squared + eye).sqrt() * (1 - eye);
}

torch::Tensor unit_rows(const torch::Tensor& X) { return X / X.norm(2, 1, true); }

// Value and gradients of the adapter's loss and of the torch expression on copies of the same leaves.
struct Compared {
  std::vector<torch::Tensor> expected, got;
  double expected_value = 0, got_value = 0;
};

template <class Adapter, class Reference>
Compared compare(const std::vector<torch::Tensor>& inputs, const Adapter& adapter, const Reference& reference) {
  std::vector<torch::Tensor> a, b;
  for (const auto& t : inputs) {
    a.push_back(leaf(t));
    b.push_back(leaf(t));
  }
  const torch::Tensor got = adapter(a);
  const torch::Tensor expected = reference(b);
  REQUIRE(got.dim() == 0);
  REQUIRE(got.scalar_type() == torch::kDouble);
  REQUIRE(got.requires_grad());
  got.backward();
  expected.backward();
  Compared c;
  c.got_value = got.item<double>();
  c.expected_value = expected.item<double>();
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    REQUIRE(a[k].grad().defined());
    c.got.push_back(a[k].grad());
    c.expected.push_back(b[k].grad());
  }
  return c;
}

void check(const Compared& c) {
  INFO("value: torch " << c.expected_value << ", adapter " << c.got_value);
  CHECK(std::abs(c.expected_value - c.got_value) / std::max(1.0, std::abs(c.expected_value)) < kTolerance);
  for (std::size_t k = 0; k < c.got.size(); ++k) {
    INFO("gradient of input " << k);
    CHECK(c.expected[k].abs().sum().item<double>() > 0);  // the comparison is not between zeros
    CHECK(relative_error(c.expected[k], c.got[k]) < kTolerance);
  }
}

}  // namespace

TEST_CASE("libtorch batch_hard_triplet_loss matches the torch expression (Euclidean)", "[libtorch]") {
  torch::manual_seed(1);
  const torch::Tensor X = torch::randn({24, 6}, f64);
  const torch::Tensor y = class_blocks(6, 4);
  contrastive::TripletOptions options;
  options.margin = 1.5;
  check(compare(
      {X}, [&](const std::vector<torch::Tensor>& in) { return ct::batch_hard_triplet_loss(in[0], y, options); },
      [&](const std::vector<torch::Tensor>& in) {
        const torch::Tensor D = euclidean_distances(in[0]);
        const torch::Tensor same = y.unsqueeze(1) == y.unsqueeze(0);
        const torch::Tensor eye = torch::eye(24, torch::kBool);
        const torch::Tensor hardest_positive = D.masked_fill(~same | eye, -1e300).amax(1);
        const torch::Tensor hardest_negative = D.masked_fill(same, 1e300).amin(1);
        return torch::relu(hardest_positive - hardest_negative + options.margin).mean();
      }));
}

TEST_CASE("libtorch batch_contrastive_loss matches the torch expression", "[libtorch]") {
  torch::manual_seed(2);
  const torch::Tensor X = torch::randn({20, 5}, f64);
  const torch::Tensor y = class_blocks(5, 4);
  for (const bool squared : {false, true}) {
    INFO("squared " << squared);
    contrastive::ContrastiveOptions options;
    options.pos_margin = 0.5;
    options.neg_margin = 2.5;
    options.squared = squared;
    check(compare(
        {X}, [&](const std::vector<torch::Tensor>& in) { return ct::batch_contrastive_loss(in[0], y, options); },
        [&](const std::vector<torch::Tensor>& in) {
          const torch::Tensor D = euclidean_distances(in[0]);
          const torch::Tensor same = (y.unsqueeze(1) == y.unsqueeze(0)).to(torch::kDouble);
          torch::Tensor terms = same * torch::relu(D - options.pos_margin) +
                                (1 - same) * torch::relu(options.neg_margin - D);
          if (squared) terms = terms.pow(2);
          const torch::Tensor upper = torch::ones({20, 20}, f64).triu(1);
          return (terms * upper).sum() / upper.sum();
        }));
  }
}

TEST_CASE("libtorch supcon_loss matches the torch expression (cosine)", "[libtorch]") {
  torch::manual_seed(3);
  const torch::Tensor X = torch::randn({18, 7}, f64);
  const torch::Tensor y = class_blocks(3, 6).index({torch::randperm(18, torch::kLong)});
  const double t = 0.2;
  check(compare(
      {X}, [&](const std::vector<torch::Tensor>& in) { return ct::supcon_loss(in[0], y, t); },
      [&](const std::vector<torch::Tensor>& in) {
        const torch::Tensor Z = unit_rows(in[0]);
        const torch::Tensor eye = torch::eye(18, torch::kBool);
        const torch::Tensor s = Z.matmul(Z.t()) / t;
        const torch::Tensor log_denominator = s.masked_fill(eye, -1e300).logsumexp(1, true);
        const torch::Tensor positive = ((y.unsqueeze(1) == y.unsqueeze(0)) & ~eye).to(torch::kDouble);
        const torch::Tensor terms = -((s - log_denominator) * positive).sum(1) / positive.sum(1);
        return terms.mean();  // every anchor has a positive and a positive term
      }));
}

TEST_CASE("libtorch ntxent_loss (two views) matches the torch expression", "[libtorch]") {
  torch::manual_seed(4);
  const torch::Tensor v1 = torch::randn({10, 6}, f64);
  const torch::Tensor v2 = v1 + 0.3 * torch::randn({10, 6}, f64);
  const double t = 0.5;
  check(compare(
      {v1, v2}, [&](const std::vector<torch::Tensor>& in) { return ct::ntxent_loss(in[0], in[1], t); },
      [&](const std::vector<torch::Tensor>& in) {
        const torch::Tensor Z = unit_rows(torch::cat({in[0], in[1]}));
        const torch::Tensor s = (Z.matmul(Z.t()) / t).masked_fill(torch::eye(20, torch::kBool), -1e300);
        const torch::Tensor targets = (torch::arange(20, torch::kLong) + 10).remainder(20);
        return (s.logsumexp(1) - s.gather(1, targets.unsqueeze(1)).squeeze(1)).mean();  // cross entropy
      }));
}

TEST_CASE("libtorch margin_loss matches the torch expression, dL/dbeta included", "[libtorch]") {
  torch::manual_seed(5);
  const torch::Tensor X = torch::randn({16, 4}, f64);
  const torch::Tensor y = class_blocks(4, 4);
  const torch::Tensor same = (y.unsqueeze(1) == y.unsqueeze(0)).to(torch::kDouble);
  const torch::Tensor off_diagonal = 1 - torch::eye(16, f64);

  SECTION("one beta, with the regulariser nu * beta") {
    contrastive::MarginOptions options;
    options.alpha = 0.3;
    options.nu = 0.1;
    const torch::Tensor beta = torch::tensor(2.0, f64);
    check(compare(
        {X, beta}, [&](const std::vector<torch::Tensor>& in) { return ct::margin_loss(in[0], y, in[1], options); },
        [&](const std::vector<torch::Tensor>& in) {
          const torch::Tensor D = euclidean_distances(in[0]);
          const torch::Tensor terms = off_diagonal * (same * torch::relu(D - in[1] + options.alpha) +
                                                      (1 - same) * torch::relu(in[1] - D + options.alpha));
          const torch::Tensor divisor = (terms > 0).sum().to(torch::kDouble);
          return terms.sum() / divisor + options.nu * in[1];
        }));
  }
  SECTION("one beta per class, the anchor's") {
    contrastive::MarginOptions options;
    options.alpha = 0.2;
    const torch::Tensor beta = torch::tensor({1.5, 2.0, 2.5, 3.0}, f64);
    check(compare(
        {X, beta},
        [&](const std::vector<torch::Tensor>& in) {
          return ct::margin_loss(in[0], y, in[1], contrastive::Euclidean{}, options);
        },
        [&](const std::vector<torch::Tensor>& in) {
          const torch::Tensor D = euclidean_distances(in[0]);
          const torch::Tensor b = in[1].index({y}).unsqueeze(1);  // beta of the anchor's class
          const torch::Tensor terms = off_diagonal * (same * torch::relu(D - b + options.alpha) +
                                                      (1 - same) * torch::relu(b - D + options.alpha));
          return terms.sum() / (terms > 0).sum().to(torch::kDouble);
        }));
  }
}

TEST_CASE("libtorch learnable Mahalanobis: dL/dX and dL/dL match the torch expression", "[libtorch]") {
  torch::manual_seed(6);
  const torch::Tensor X = torch::randn({20, 5}, f64);
  const torch::Tensor L = torch::randn({3, 5}, f64);
  const torch::Tensor y = class_blocks(5, 4);
  contrastive::TripletOptions options;
  options.margin = 2.0;
  SECTION("batch-hard") {
    check(compare(
        {X, L},
        [&](const std::vector<torch::Tensor>& in) {
          return ct::batch_hard_triplet_loss(in[0], y, ct::Mahalanobis(in[1]), options);
        },
        [&](const std::vector<torch::Tensor>& in) {
          const torch::Tensor D = euclidean_distances(in[0].matmul(in[1].t()));
          const torch::Tensor same = y.unsqueeze(1) == y.unsqueeze(0);
          const torch::Tensor eye = torch::eye(20, torch::kBool);
          const torch::Tensor hardest_positive = D.masked_fill(~same | eye, -1e300).amax(1);
          const torch::Tensor hardest_negative = D.masked_fill(same, 1e300).amin(1);
          return torch::relu(hardest_positive - hardest_negative + options.margin).mean();
        }));
  }
  SECTION("squared, explicit triplets (Sum)") {
    options.reduction = contrastive::Reduction::Sum;
    const torch::Tensor A = torch::randn({7, 5}, f64), P = torch::randn({7, 5}, f64), N = torch::randn({7, 5}, f64);
    check(compare(
        {A, P, N, L},
        [&](const std::vector<torch::Tensor>& in) {
          return ct::triplet_margin_loss(in[0], in[1], in[2], ct::Mahalanobis(in[3], /*squared=*/true), options);
        },
        [&](const std::vector<torch::Tensor>& in) {
          const auto d = [&](const torch::Tensor& a, const torch::Tensor& b) {
            return (a - b).matmul(in[3].t()).pow(2).sum(1);
          };
          return torch::relu(d(in[0], in[1]) - d(in[0], in[2]) + options.margin).sum();
        }));
  }
}

}  // namespace test_libtorch_losses
