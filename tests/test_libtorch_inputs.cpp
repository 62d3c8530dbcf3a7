// The libtorch adapter's contract beyond the formulas: every loss equals the
// direct library call (value and gradient, bit for bit on contiguous input);
// strided, transposed and float32 inputs, int32 and strided labels; inputs
// without requires_grad get no gradient; grad_output scales the gradient;
// no_grad computes no backward; a finite-difference check of
// torch::autograd::grad; second derivatives refused; the miners' int64 index
// tuples; and the argument checks (device, dtype, dims) in the library's
// message style.
#include <contrastive/libtorch.hpp>

#include <torch/autograd.h>
#include <torch/cuda.h>

#include "support/catch.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace test_libtorch_inputs {

namespace {

namespace ct = contrastive::libtorch;
using contrastive::RowMatrix;

const auto f64 = torch::dtype(torch::kDouble);

template <class Scalar>
Eigen::Map<const RowMatrix<Scalar>> eigen(const torch::Tensor& t) {
  REQUIRE(t.is_contiguous());
  return {t.data_ptr<Scalar>(), t.size(0), t.size(1)};
}

contrastive::LabelVector eigen_labels(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kLong).contiguous();
  return Eigen::Map<const contrastive::LabelVector>(c.data_ptr<std::int64_t>(), c.size(0));
}

torch::Tensor class_blocks(std::int64_t classes, std::int64_t per_class) {
  return torch::div(torch::arange(classes * per_class, torch::kLong), per_class, "floor");
}

torch::Tensor leaf(const torch::Tensor& t) { return t.detach().clone().requires_grad_(true); }

// The adapter's loss value and the gradient of each of `inputs`, on fresh leaves.
struct Run {
  torch::Tensor value;
  std::vector<torch::Tensor> grads;
};

template <class F>
Run run(const std::vector<torch::Tensor>& inputs, const F& f) {
  std::vector<torch::Tensor> leaves;
  for (const auto& t : inputs) leaves.push_back(leaf(t));
  Run r;
  r.value = f(leaves);
  r.value.backward();
  for (const auto& t : leaves) r.grads.push_back(t.grad());
  return r;
}

template <class Scalar>
void check_equal(const Run& got, const contrastive::LossResult<Scalar>& expected, std::size_t blocks) {
  CHECK(got.value.template item<Scalar>() == expected.value);
  REQUIRE(got.grads.size() == blocks);
  for (std::size_t k = 0; k < blocks; ++k) {
    INFO("gradient " << k);
    REQUIRE(got.grads[k].defined());
    const torch::Tensor g = got.grads[k].contiguous();
    CHECK(eigen<Scalar>(g) == expected.grad[k]);
  }
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no std::invalid_argument)";
}

}  // namespace

TEST_CASE("libtorch: every loss equals the direct library call, bit for bit", "[libtorch]") {
  torch::manual_seed(11);
  const torch::Tensor X = torch::randn({16, 5}, f64);
  const torch::Tensor X2 = torch::randn({16, 5}, f64);
  const torch::Tensor X3 = torch::randn({16, 5}, f64);
  const torch::Tensor y = class_blocks(4, 4);
  const auto x = eigen<double>(X), x2 = eigen<double>(X2), x3 = eigen<double>(X3);
  const auto labels = eigen_labels(y);
  contrastive::TripletOptions triplet;
  triplet.margin = 0.8;

  SECTION("batch_semihard_triplet_loss, cosine") {
    check_equal(run({X}, [&](const auto& in) { return ct::batch_semihard_triplet_loss<contrastive::Cosine>(in[0], y, triplet); }),
                contrastive::batch_semihard_triplet_loss<contrastive::Cosine>(x, labels, triplet), 1);
  }
  SECTION("batch_all_triplet_loss, a run-time metric") {
    const auto metric = contrastive::AnyMetric::from_name("squared_euclidean");
    check_equal(run({X}, [&](const auto& in) { return ct::batch_all_triplet_loss(in[0], y, metric, triplet); }),
                contrastive::batch_all_triplet_loss(x, labels, metric, triplet), 1);
  }
  SECTION("triplet_margin_loss, explicit and mined") {
    check_equal(run({X, X2, X3}, [&](const auto& in) { return ct::triplet_margin_loss(in[0], in[1], in[2], triplet); }),
                contrastive::triplet_margin_loss(x, x2, x3, triplet), 3);
    const contrastive::Triplets mined = contrastive::mine_triplets(x, labels, 0.8, contrastive::NegativeKinds::all());
    REQUIRE(mined.size() > 0);
    const ct::TripletIndices tensors = ct::mine_triplets(X, y, 0.8, contrastive::NegativeKinds::all());
    check_equal(run({X}, [&](const auto& in) { return ct::triplet_margin_loss(in[0], tensors, triplet); }),
                contrastive::triplet_margin_loss(x, mined, triplet), 1);
  }
  SECTION("contrastive_loss, explicit pairs (bool flags) and mined pairs") {
    const torch::Tensor similar = torch::arange(16).remainder(2) == 0;
    check_equal(run({X, X2}, [&](const auto& in) { return ct::contrastive_loss(in[0], in[1], similar); }),
                contrastive::contrastive_loss(x, x2, eigen_labels(similar)), 2);
    const contrastive::Pairs pairs = contrastive::mine_pairs(x, labels, 0.5, 2.0);
    REQUIRE(pairs.size() > 0);
    check_equal(run({X}, [&](const auto& in) { return ct::contrastive_loss(in[0], pairs); }),
                contrastive::contrastive_loss(x, pairs), 1);
  }
  SECTION("multi_similarity_loss and circle_loss on labels, on mined pairs and on the miner's index tensors") {
    check_equal(run({X}, [&](const auto& in) { return ct::multi_similarity_loss(in[0], y); }),
                contrastive::multi_similarity_loss(x, labels), 1);
    check_equal(run({X}, [&](const auto& in) { return ct::circle_loss(in[0], y); }), contrastive::circle_loss(x, labels),
                1);
    const contrastive::Pairs mined = contrastive::mine_multi_similarity(x, labels, 0.1);
    REQUIRE(mined.size() > 0);
    const ct::PairIndices indices = ct::mine_multi_similarity(X, y, 0.1);
    CHECK(std::get<0>(indices).numel() > 0);
    check_equal(run({X}, [&](const auto& in) { return ct::multi_similarity_loss(in[0], indices); }),
                contrastive::multi_similarity_loss(x, mined), 1);
    check_equal(run({X}, [&](const auto& in) { return ct::circle_loss(in[0], mined); }),
                contrastive::circle_loss(x, mined), 1);
    contrastive::MultiSimilarityOptions options;
    options.reduction = contrastive::Reduction::Sum;
    check_equal(run({X}, [&](const auto& in) { return ct::multi_similarity_loss(in[0], y, contrastive::Euclidean{}, options); }),
                contrastive::multi_similarity_loss(x, labels, contrastive::Euclidean{}, options), 1);
  }
  SECTION("lifted structure, generalized lifted structure, NCA and N-pairs") {
    check_equal(run({X}, [&](const auto& in) { return ct::lifted_structure_loss(in[0], y); }),
                contrastive::lifted_structure_loss(x, labels), 1);
    check_equal(run({X}, [&](const auto& in) { return ct::generalized_lifted_structure_loss(in[0], y); }),
                contrastive::generalized_lifted_structure_loss(x, labels), 1);
    check_equal(run({X}, [&](const auto& in) { return ct::nca_loss(in[0], y); }), contrastive::nca_loss(x, labels), 1);
    check_equal(run({X}, [&](const auto& in) { return ct::npairs_loss(in[0], y); }),
                contrastive::npairs_loss(x, labels), 1);
    check_equal(run({X}, [&](const auto& in) { return ct::nca_loss(in[0], y, contrastive::Cosine{}); }),
                contrastive::nca_loss(x, labels, contrastive::Cosine{}), 1);
  }
  SECTION("tuplet margin, angular and VICReg") {
    check_equal(run({X}, [&](const auto& in) { return ct::tuplet_margin_loss(in[0], y); }),
                contrastive::tuplet_margin_loss(x, labels), 1);
    check_equal(run({X}, [&](const auto& in) { return ct::angular_loss(in[0], y); }),
                contrastive::angular_loss(x, labels), 1);
    check_equal(run({X, X2}, [&](const auto& in) { return ct::vicreg_loss(in[0], in[1]); }),
                contrastive::vicreg_loss(x, x2), 2);
  }
  SECTION("margin_loss without a beta tensor: beta from the options") {
    contrastive::MarginOptions options;
    options.beta = 2.0;
    check_equal(run({X}, [&](const auto& in) { return ct::margin_loss(in[0], y, options); }),
                static_cast<const contrastive::LossResult<double>&>(contrastive::margin_loss(x, labels, options)), 1);
  }
  SECTION("cosine_embedding_loss and similarity_regression_loss") {
    const torch::Tensor target = torch::tensor({1, -1, 1, 1, -1, -1, 1, -1, 1, 1, -1, 1, -1, -1, 1, 1});
    check_equal(run({X, X2}, [&](const auto& in) { return ct::cosine_embedding_loss(in[0], in[1], target, 0.1); }),
                contrastive::cosine_embedding_loss(x, x2, eigen_labels(target), 0.1), 2);
    const torch::Tensor scores = torch::rand({16}, f64);
    const Eigen::VectorXd s = Eigen::Map<const Eigen::VectorXd>(scores.data_ptr<double>(), 16);
    check_equal(run({X, X2}, [&](const auto& in) {
                  return ct::similarity_regression_loss<contrastive::Cosine>(in[0], in[1], scores, contrastive::Reduction::Sum);
                }),
                contrastive::similarity_regression_loss<contrastive::Cosine>(x, x2, s, contrastive::Reduction::Sum), 2);
  }
  SECTION("ntxent_loss on labels, supcon_loss with options") {
    check_equal(run({X}, [&](const auto& in) { return ct::ntxent_loss(in[0], y, 0.3); }),
                contrastive::ntxent_loss(x, labels, 0.3), 1);
    contrastive::SupConOptions options;
    options.reduction = contrastive::Reduction::Sum;
    check_equal(run({X}, [&](const auto& in) { return ct::supcon_loss(in[0], y, 0.3, contrastive::Euclidean{}, options); }),
                contrastive::supcon_loss(x, labels, 0.3, contrastive::Euclidean{}, options), 1);
  }
  SECTION("a fixed (Eigen) Mahalanobis metric: its dL/dL is not a tensor input") {
    const Eigen::MatrixXd L = Eigen::MatrixXd::Random(3, 5);
    const contrastive::Mahalanobis metric(L);
    check_equal(run({X}, [&](const auto& in) { return ct::batch_hard_triplet_loss(in[0], y, metric, triplet); }),
                contrastive::batch_hard_triplet_loss(x, labels, metric, triplet), 1);
  }
  SECTION("float32 in, float32 out") {
    const torch::Tensor Xf = X.to(torch::kFloat);
    const RowMatrix<float> xf = x.cast<float>();
    const Run got = run({Xf}, [&](const auto& in) { return ct::supcon_loss(in[0], y, 0.1); });
    CHECK(got.value.scalar_type() == torch::kFloat);
    CHECK(got.grads[0].scalar_type() == torch::kFloat);
    check_equal(got, contrastive::supcon_loss(xf, labels, 0.1), 1);
  }
}

TEST_CASE("libtorch: strides, transposes, int32 and strided labels give the contiguous result", "[libtorch]") {
  torch::manual_seed(12);
  const torch::Tensor y = class_blocks(4, 5);
  const torch::Tensor wide = torch::randn({20, 12}, f64);
  const torch::Tensor X = wide.narrow(1, 0, 6).contiguous();
  const auto loss = [&](const torch::Tensor& x, const torch::Tensor& labels) {
    contrastive::TripletOptions options;
    options.margin = 2.0;
    return ct::batch_all_triplet_loss(x, labels, options);
  };
  const Run expected = run({X}, [&](const auto& in) { return loss(in[0], y); });
  REQUIRE(expected.grads[0].abs().sum().item<double>() > 0);

  // Each layout of the same values; the gradient flows back through the view to its base.
  const auto check_layout = [&](const torch::Tensor& base, const auto& view_of, const torch::Tensor& labels) {
    const torch::Tensor b = leaf(base);
    const torch::Tensor v = view_of(b);
    REQUIRE(torch::equal(v, X));
    const torch::Tensor value = loss(v, labels);
    value.backward();
    CHECK(value.item<double>() == expected.value.item<double>());
    CHECK(torch::equal(view_of(b.grad()), expected.grads[0]));
    CHECK(b.grad().abs().sum().item<double>() == expected.grads[0].abs().sum().item<double>());  // zero elsewhere
  };
  SECTION("a column slice: row stride 12, viewed in place") {
    check_layout(wide, [](const torch::Tensor& t) { return t.narrow(1, 0, 6); }, y);
  }
  SECTION("a transpose: column-major, copied once") {
    check_layout(X.t().contiguous(), [](const torch::Tensor& t) { return t.t(); }, y);
  }
  SECTION("every other column") {
    const torch::Tensor interleaved = torch::stack({X, torch::randn({20, 6}, f64)}, 2).reshape({20, 12});
    check_layout(interleaved, [](const torch::Tensor& t) { return t.slice(1, 0, 12, 2); }, y);
  }
  SECTION("a row slice with an offset") {
    const torch::Tensor tall = torch::cat({torch::randn({3, 6}, f64), X, torch::randn({2, 6}, f64)});
    check_layout(tall, [](const torch::Tensor& t) { return t.narrow(0, 3, 20); }, y);
  }
  SECTION("int32 labels, and labels with a stride") {
    check_layout(X, [](const torch::Tensor& t) { return t; }, y.to(torch::kInt));
    const torch::Tensor spread = torch::stack({y, torch::zeros_like(y)}, 1).reshape({40});
    check_layout(X, [](const torch::Tensor& t) { return t; }, spread.slice(0, 0, 40, 2));
  }
}

TEST_CASE("libtorch: gradients only where asked, scaled by grad_output, none under no_grad", "[libtorch]") {
  torch::manual_seed(13);
  const torch::Tensor y = class_blocks(3, 4);
  const torch::Tensor X = torch::randn({12, 4}, f64);
  SECTION("X without requires_grad, learnable L and beta with it") {
    const torch::Tensor L = leaf(torch::randn({2, 4}, f64));
    const torch::Tensor value = ct::batch_hard_triplet_loss(X, y, ct::Mahalanobis(L));
    value.backward();
    CHECK_FALSE(X.grad().defined());
    CHECK(L.grad().defined());
    const torch::Tensor beta = leaf(torch::tensor(1.0, f64));
    ct::margin_loss(X, y, beta).backward();
    CHECK_FALSE(X.grad().defined());
    CHECK(beta.grad().defined());
    CHECK(beta.grad().dim() == 0);
  }
  SECTION("nothing requires grad: a plain value") {
    const torch::Tensor value = ct::supcon_loss(X, y, 0.1);
    CHECK_FALSE(value.requires_grad());
    CHECK(value.item<double>() == contrastive::supcon_loss(eigen<double>(X), eigen_labels(y), 0.1, contrastive::value_only));
  }
  SECTION("under NoGradGuard") {
    const torch::Tensor x = leaf(X);
    torch::NoGradGuard no_grad;
    CHECK_FALSE(ct::supcon_loss(x, y, 0.1).requires_grad());
  }
  SECTION("grad_output scales the gradient") {
    const Run once = run({X}, [&](const auto& in) { return ct::ntxent_loss(in[0], y, 0.5); });
    const Run scaled = run({X}, [&](const auto& in) { return 3 * ct::ntxent_loss(in[0], y, 0.5); });
    CHECK(torch::equal(scaled.grads[0], once.grads[0] * 3));
  }
}

TEST_CASE("libtorch: torch::autograd::grad agrees with central differences", "[libtorch]") {
  torch::manual_seed(14);
  const torch::Tensor y = class_blocks(3, 4);
  const torch::Tensor X0 = torch::randn({12, 5}, f64);
  const torch::Tensor L0 = torch::randn({3, 5}, f64);
  const torch::Tensor beta0 = torch::tensor({0.8, 1.0, 1.2}, f64);
  // Smooth losses (SupCon, NT-Xent) and piecewise-linear ones away from their kinks.
  const auto losses = std::vector<std::function<torch::Tensor(const std::vector<torch::Tensor>&)>>{
      [&](const auto& in) { return ct::supcon_loss(in[0], y, 0.3, ct::Mahalanobis(in[1])); },
      [&](const auto& in) { return ct::ntxent_loss(in[0], y, 0.5, ct::Mahalanobis(in[1], true)); },
      [&](const auto& in) { return ct::margin_loss(in[0], y, in[2], ct::Mahalanobis(in[1])); },
  };
  for (std::size_t f = 0; f < losses.size(); ++f) {
    INFO("loss " << f);
    std::vector<torch::Tensor> inputs{leaf(X0), leaf(L0), leaf(beta0)};
    const torch::Tensor value = losses[f](inputs);
    const std::vector<torch::Tensor> used = f == 2 ? inputs : std::vector<torch::Tensor>{inputs[0], inputs[1]};
    const auto grads = torch::autograd::grad({value}, used);
    for (std::size_t k = 0; k < used.size(); ++k) {
      // Directional derivative along a random direction, by central differences.
      const torch::Tensor direction = torch::randn_like(used[k]);
      const double h = 1e-6;
      const auto value_at = [&](double step) {
        torch::NoGradGuard no_grad;
        std::vector<torch::Tensor> moved{X0, L0, beta0};
        moved[k] = used[k].detach() + step * direction;
        return losses[f](moved).item<double>();
      };
      const double numeric = (value_at(h) - value_at(-h)) / (2 * h);
      const double analytic = (grads[k] * direction).sum().item<double>();
      INFO("input " << k << ": analytic " << analytic << ", numeric " << numeric);
      CHECK(std::abs(analytic) > 1e-3);
      CHECK(std::abs(analytic - numeric) <= 1e-6 * std::max(1.0, std::abs(analytic)));
    }
  }
}

TEST_CASE("libtorch: second derivatives are refused", "[libtorch]") {
  const torch::Tensor X = leaf(torch::randn({8, 3}, f64));
  const torch::Tensor value = ct::supcon_loss(X, class_blocks(2, 4), 0.5);
  bool threw = false;
  try {
    torch::autograd::grad({value}, {X}, {}, /*retain_graph=*/true, /*create_graph=*/true);
  } catch (const std::exception& e) {
    threw = true;
    CHECK_THAT(std::string(e.what()), contrastive_test::ContainsSubstring("contrastive::supcon_loss: second derivatives"));
  }
  CHECK(threw);
  // The first-order gradient still works on the same graph.
  CHECK(torch::autograd::grad({value}, {X})[0].defined());
}

TEST_CASE("libtorch miners return int64 index tuples equal to the library's", "[libtorch]") {
  torch::manual_seed(15);
  const torch::Tensor X = torch::randn({15, 4}, f64);
  const torch::Tensor y = class_blocks(3, 5).to(torch::kInt);
  const auto x = eigen<double>(X);
  const auto labels = eigen_labels(y);
  const auto same = [](const torch::Tensor& t, const std::vector<contrastive::Index>& v) {
    REQUIRE(t.scalar_type() == torch::kLong);
    REQUIRE(t.dim() == 1);
    REQUIRE(t.size(0) == static_cast<std::int64_t>(v.size()));
    for (std::size_t k = 0; k < v.size(); ++k) CHECK(t[static_cast<std::int64_t>(k)].item<std::int64_t>() == v[k]);
  };
  const auto check_triplets = [&](const ct::TripletIndices& got, const contrastive::Triplets& expected) {
    REQUIRE(expected.size() > 0);
    same(std::get<0>(got), expected.anchor);
    same(std::get<1>(got), expected.positive);
    same(std::get<2>(got), expected.negative);
  };
  const torch::Tensor requiring_grad = leaf(X);
  check_triplets(ct::mine_batch_hard(requiring_grad, y), contrastive::mine_batch_hard(x, labels));
  check_triplets(ct::mine_semihard<contrastive::Cosine>(X, y), contrastive::mine_semihard<contrastive::Cosine>(x, labels));
  check_triplets(ct::mine_easy_hard(X, y), contrastive::mine_easy_hard(x, labels));
  check_triplets(ct::mine_triplets(X.to(torch::kFloat), y, 0.5, contrastive::NegativeKind::SemiHard),
                 contrastive::mine_triplets(RowMatrix<float>(x.cast<float>()), labels, 0.5, contrastive::NegativeKind::SemiHard));
  const torch::Tensor R = torch::randn({9, 4}, f64);
  const torch::Tensor ry = class_blocks(3, 3);
  check_triplets(ct::mine_batch_hard(X, y, R, ry), contrastive::mine_batch_hard(x, labels, eigen<double>(R), eigen_labels(ry)));

  const contrastive::Pairs pairs = contrastive::mine_pairs(x, labels, 0.5, 2.5);
  const ct::PairIndices got = ct::mine_pairs(X, y, 0.5, 2.5);
  std::vector<contrastive::Index> a1, p, a2, n;
  for (std::size_t k = 0; k < pairs.first.size(); ++k) {
    (pairs.similar[k] ? a1 : a2).push_back(pairs.first[k]);
    (pairs.similar[k] ? p : n).push_back(pairs.second[k]);
  }
  REQUIRE(!a1.empty());
  REQUIRE(!a2.empty());
  same(std::get<0>(got), a1);
  same(std::get<1>(got), p);
  same(std::get<2>(got), a2);
  same(std::get<3>(got), n);
  // Positive pairs then negative ones: the same loss as the library's pair order (Sum does not depend on it).
  contrastive::ContrastiveOptions options;
  options.pos_margin = 0.5;
  options.neg_margin = 2.5;
  options.reduction = contrastive::Reduction::Sum;
  const double expected = contrastive::contrastive_loss(x, pairs, options, contrastive::value_only);
  CHECK(std::abs(ct::contrastive_loss(X, got, options).item<double>() - expected) <= 1e-12 * std::abs(expected));
}

TEST_CASE("libtorch: bad tensors are refused naming the function and the argument", "[libtorch]") {
  const torch::Tensor X = torch::randn({6, 3}, f64);
  const torch::Tensor y = class_blocks(2, 3);
  SECTION("a tensor that is not on the CPU") {
    const torch::Tensor meta = torch::empty({6, 3}, f64.device(torch::kMeta));
    REQUIRE_INVALID_ARGUMENT(ct::batch_hard_triplet_loss(meta, y), "contrastive::batch_hard_triplet_loss: argument 'X'",
                             "is on device meta", ".cpu()");
    REQUIRE_INVALID_ARGUMENT(ct::supcon_loss(X, y.to(torch::kMeta), 0.1), "contrastive::supcon_loss: argument 'labels'",
                             ".cpu()");
    if (torch::cuda::is_available()) {
      REQUIRE_INVALID_ARGUMENT(ct::batch_hard_triplet_loss(X.cuda(), y), "argument 'X' is on device cuda",
                               "a CUDA tensor", ".cpu()");
    }
  }
  SECTION("dtypes") {
    REQUIRE_INVALID_ARGUMENT(ct::batch_hard_triplet_loss(X.to(torch::kInt), y),
                             "contrastive::batch_hard_triplet_loss: argument 'X' has dtype Int", "float32 or float64");
    REQUIRE_INVALID_ARGUMENT(ct::supcon_loss(X.to(torch::kHalf), y, 0.1), "argument 'X' has dtype Half");
    REQUIRE_INVALID_ARGUMENT(ct::batch_all_triplet_loss(X, y.to(torch::kFloat)),
                             "contrastive::batch_all_triplet_loss: argument 'labels' has dtype Float",
                             "integer tensor (int64 or int32)");
    REQUIRE_INVALID_ARGUMENT(ct::contrastive_loss(X, X.to(torch::kFloat), y.remainder(2)),
                             "contrastive::contrastive_loss: arguments 'X1' (Double) and 'X2' (Float) must have the same dtype");
    REQUIRE_INVALID_ARGUMENT(ct::batch_hard_triplet_loss(X, y, ct::Mahalanobis(torch::eye(3).to(torch::kLong))),
                             "argument 'metric.L' has dtype Long");
  }
  SECTION("dimensions and sizes") {
    REQUIRE_INVALID_ARGUMENT(ct::batch_hard_triplet_loss(X.reshape({18}), y),
                             "contrastive::batch_hard_triplet_loss: argument 'X' must be a 2-D tensor", "got 1-D [18]");
    REQUIRE_INVALID_ARGUMENT(ct::ntxent_loss(X.reshape({2, 3, 3}), X.reshape({2, 3, 3}), 0.1),
                             "contrastive::ntxent_loss: argument 'view1' must be a 2-D tensor", "got 3-D [2, 3, 3]");
    REQUIRE_INVALID_ARGUMENT(ct::supcon_loss(X, y.reshape({2, 3}), 0.1), "argument 'labels' must be a 1-D tensor");
    REQUIRE_INVALID_ARGUMENT(ct::margin_loss(X, y, torch::ones({2, 2}, f64)),
                             "contrastive::margin_loss: argument 'beta' must have at most 1 dimensions");
    REQUIRE_INVALID_ARGUMENT(ct::batch_hard_triplet_loss(X, y, ct::Mahalanobis(torch::ones({3}, f64))),
                             "argument 'metric.L' must be a 2-D tensor");
    // Checks of the library itself come through unchanged.
    REQUIRE_INVALID_ARGUMENT(ct::batch_hard_triplet_loss(X, class_blocks(2, 2)),
                             "contrastive::batch_hard_triplet_loss: argument 'labels' has length 4");
    REQUIRE_INVALID_ARGUMENT(ct::batch_hard_triplet_loss(X, y, ct::Mahalanobis(torch::ones({2, 4}, f64))),
                             "Mahalanobis metric whose L is 2 x 4");
  }
  SECTION("undefined and sparse tensors, bad index tuples") {
    REQUIRE_INVALID_ARGUMENT(ct::supcon_loss(torch::Tensor(), y, 0.1), "argument 'X' is an undefined tensor");
    REQUIRE_INVALID_ARGUMENT(ct::supcon_loss(X.to_sparse(), y, 0.1), "argument 'X' is a sparse tensor");
    const ct::TripletIndices uneven{torch::zeros({3}, torch::kLong), torch::zeros({2}, torch::kLong),
                                    torch::zeros({3}, torch::kLong)};
    REQUIRE_INVALID_ARGUMENT(ct::triplet_margin_loss(X, uneven),
                             "contrastive::triplet_margin_loss: argument 'triplets' has index tensors of lengths 3, 2, 3");
  }
  SECTION("nothing is computed before the checks") {
    const torch::Tensor x = leaf(X);
    CHECK_THAT(message_of([&] { ct::batch_hard_triplet_loss(x, y.to(torch::kDouble)).backward(); }),
               contrastive_test::ContainsSubstring("argument 'labels'"));
    CHECK_FALSE(x.grad().defined());
  }
}

}  // namespace test_libtorch_inputs
