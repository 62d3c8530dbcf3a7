// The libtorch adapter's class-weight losses (arcface_loss, ..., proxy_anchor_loss,
// docs/class_losses.md): each equals the direct library call bit for bit
// (value, dL/dX, dL/dW) in float32 and float64; PML's D x c W passed as W.t()
// gets the transposed dL/dW; a W (or X) without requires_grad gets no
// gradient; torch::autograd::grad on X and W agrees with central
// differences; subcenter_arcface_outliers as tensors; bad W refused naming it.
//
// The adapter's headers come before Catch (glog's CHECK, see test_libtorch_losses.cpp).
#include <contrastive/libtorch.hpp>

#include <torch/autograd.h>

#include "support/catch.hpp"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace test_libtorch_class_losses {

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

torch::Tensor leaf(const torch::Tensor& t) { return t.detach().clone().requires_grad_(true); }

// The adapter's value and the gradients of X and W (fresh leaves) against the library's LossResult.
template <class Scalar, class Adapter, class Library>
void check_bit_equal(const torch::Tensor& X0, const torch::Tensor& y, const torch::Tensor& W0, const Adapter& adapter,
                     const Library& library) {
  const torch::Tensor X = leaf(X0), W = leaf(W0);
  const torch::Tensor value = adapter(X, y, W);
  value.backward();
  const auto expected = library(eigen<Scalar>(X0), eigen_labels(y), eigen<Scalar>(W0));
  REQUIRE(expected.grad.size() == 2);
  CHECK(value.scalar_type() == X0.scalar_type());
  CHECK(value.template item<Scalar>() == expected.value);
  REQUIRE(X.grad().defined());
  REQUIRE(W.grad().defined());
  CHECK(eigen<Scalar>(X.grad().contiguous()) == expected.grad[0]);
  CHECK(eigen<Scalar>(W.grad().contiguous()) == expected.grad[1]);
  CHECK(expected.grad[1].cwiseAbs().maxCoeff() > 0);
}

// One adapter and one library call per loss, with W's row count per class.
struct ClassLoss {
  std::string name;
  std::int64_t rows_per_class;
  std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)> adapter;
  std::function<contrastive::LossResult<double>(const Eigen::Map<const RowMatrix<double>>&,
                                                const contrastive::LabelVector&,
                                                const Eigen::Map<const RowMatrix<double>>&)>
      library64;
  std::function<contrastive::LossResult<float>(const Eigen::Map<const RowMatrix<float>>&,
                                               const contrastive::LabelVector&,
                                               const Eigen::Map<const RowMatrix<float>>&)>
      library32;
};

#define CONTRASTIVE_CLASS_LOSS(name, rows, options)                                                           \
  ClassLoss {                                                                                                 \
    #name, rows, [=](const auto& x, const auto& y, const auto& w) { return ct::name(x, y, w, options); },    \
        [=](const auto& x, const auto& y, const auto& w) { return contrastive::name(x, y, w, options); },     \
        [=](const auto& x, const auto& y, const auto& w) { return contrastive::name(x, y, w, options); }      \
  }

std::vector<ClassLoss> class_losses() {
  contrastive::ArcFaceOptions arcface;
  arcface.scale = 8;
  contrastive::CosFaceOptions cosface;
  contrastive::SphereFaceOptions sphereface;
  sphereface.margin = 3;
  contrastive::SubCenterArcFaceOptions subcenter;
  subcenter.sub_centers = 2;
  subcenter.scale = 4;
  contrastive::NormalizedSoftmaxOptions normalized;
  contrastive::ProxyNCAOptions proxy_nca;
  proxy_nca.softmax_scale = 3;
  contrastive::ProxyAnchorOptions proxy_anchor;
  return {CONTRASTIVE_CLASS_LOSS(arcface_loss, 1, arcface),
          CONTRASTIVE_CLASS_LOSS(cosface_loss, 1, cosface),
          CONTRASTIVE_CLASS_LOSS(sphereface_loss, 1, sphereface),
          CONTRASTIVE_CLASS_LOSS(subcenter_arcface_loss, 2, subcenter),
          CONTRASTIVE_CLASS_LOSS(normalized_softmax_loss, 1, normalized),
          CONTRASTIVE_CLASS_LOSS(proxy_nca_loss, 1, proxy_nca),
          CONTRASTIVE_CLASS_LOSS(proxy_anchor_loss, 1, proxy_anchor)};
}

#undef CONTRASTIVE_CLASS_LOSS

// 12 rows of 5 classes (class 4 without samples) in random order.
const torch::Tensor& labels() {
  static const torch::Tensor y = torch::tensor({2, 0, 1, 3, 0, 2, 1, 1, 3, 0, 2, 3}, torch::kLong);
  return y;
}

}  // namespace

TEST_CASE("libtorch class-weight losses equal the direct library call, bit for bit (float64, float32)",
          "[libtorch]") {
  torch::manual_seed(21);
  const torch::Tensor X = torch::randn({12, 6}, f64);
  for (const ClassLoss& loss : class_losses()) {
    INFO(loss.name);
    const torch::Tensor W = torch::randn({5 * loss.rows_per_class, 6}, f64);
    check_bit_equal<double>(X, labels(), W, loss.adapter, loss.library64);
    check_bit_equal<float>(X.to(torch::kFloat), labels().to(torch::kInt), W.to(torch::kFloat), loss.adapter,
                           loss.library32);
  }
}

TEST_CASE("libtorch class-weight losses: PML's D x c W as W.t(), strided W, gradients only where asked",
          "[libtorch]") {
  torch::manual_seed(22);
  const torch::Tensor X0 = torch::randn({12, 6}, f64);
  const torch::Tensor Wt0 = torch::randn({6, 5}, f64);  // PML's D x c
  const torch::Tensor W0 = Wt0.t().contiguous();
  const auto expected =
      contrastive::arcface_loss(eigen<double>(X0), eigen_labels(labels()), eigen<double>(W0));
  SECTION("W.t() of a D x c parameter: dL/dW arrives D x c") {
    const torch::Tensor X = leaf(X0), Wt = leaf(Wt0);
    const torch::Tensor value = ct::arcface_loss(X, labels(), Wt.t());
    value.backward();
    CHECK(value.item<double>() == expected.value);
    REQUIRE(Wt.grad().defined());
    CHECK(Wt.grad().sizes() == Wt0.sizes());
    CHECK(eigen<double>(Wt.grad().t().contiguous()) == expected.grad[1]);
    CHECK(eigen<double>(X.grad()) == expected.grad[0]);
  }
  SECTION("a column slice of a wider W and a row step") {
    const torch::Tensor wide = torch::randn({5, 9}, f64);
    wide.narrow(1, 0, 6).copy_(W0);
    const torch::Tensor X = leaf(X0), Wide = leaf(wide);
    ct::arcface_loss(X, labels(), Wide.narrow(1, 0, 6)).backward();
    CHECK(eigen<double>(Wide.grad().narrow(1, 0, 6).contiguous()) == expected.grad[1]);
    CHECK(Wide.grad().narrow(1, 6, 3).abs().max().item<double>() == 0.0);
    const torch::Tensor doubled = torch::randn({10, 6}, f64);
    doubled.slice(0, 0, 10, 2).copy_(W0);
    const torch::Tensor Doubled = leaf(doubled);
    const torch::Tensor value = ct::arcface_loss(X0, labels(), Doubled.slice(0, 0, 10, 2));
    value.backward();
    CHECK(value.item<double>() == expected.value);
    CHECK(eigen<double>(Doubled.grad().slice(0, 0, 10, 2).contiguous()) == expected.grad[1]);
  }
  SECTION("W without requires_grad gets none, X still gets its gradient") {
    const torch::Tensor X = leaf(X0);
    ct::arcface_loss(X, labels(), W0).backward();
    CHECK(eigen<double>(X.grad()) == expected.grad[0]);
    CHECK_FALSE(W0.grad().defined());
  }
  SECTION("X without requires_grad gets none, W still gets its gradient") {
    const torch::Tensor W = leaf(W0);
    ct::arcface_loss(X0, labels(), W).backward();
    CHECK(eigen<double>(W.grad()) == expected.grad[1]);
    CHECK_FALSE(X0.grad().defined());
  }
  SECTION("grad_output scales both gradients; no_grad computes none") {
    const torch::Tensor X = leaf(X0), W = leaf(W0);
    (3.0 * ct::arcface_loss(X, labels(), W)).backward();
    CHECK(eigen<double>(W.grad()) == 3.0 * expected.grad[1]);
    CHECK(eigen<double>(X.grad()) == 3.0 * expected.grad[0]);
    torch::NoGradGuard no_grad;
    const torch::Tensor value = ct::arcface_loss(leaf(X0), labels(), leaf(W0));
    CHECK_FALSE(value.requires_grad());
    CHECK(value.item<double>() == expected.value);
  }
}

TEST_CASE("libtorch class-weight losses: torch::autograd::grad on X and W agrees with central differences",
          "[libtorch]") {
  torch::manual_seed(23);
  const torch::Tensor y = labels();
  const torch::Tensor X0 = torch::randn({12, 6}, f64);
  const torch::Tensor W0 = torch::randn({5, 6}, f64);
  contrastive::ArcFaceOptions arcface;
  arcface.scale = 4;
  contrastive::ProxyAnchorOptions proxy_anchor;
  proxy_anchor.alpha = 4;
  const auto losses = std::vector<std::function<torch::Tensor(const std::vector<torch::Tensor>&)>>{
      [&](const auto& in) { return ct::arcface_loss(in[0], y, in[1], arcface); },
      [&](const auto& in) { return ct::proxy_anchor_loss(in[0], y, in[1], proxy_anchor); },
  };
  for (std::size_t f = 0; f < losses.size(); ++f) {
    INFO("loss " << f);
    const std::vector<torch::Tensor> inputs{leaf(X0), leaf(W0)};
    const auto grads = torch::autograd::grad({losses[f](inputs)}, inputs);
    for (std::size_t k = 0; k < inputs.size(); ++k) {
      const torch::Tensor direction = torch::randn_like(inputs[k]);
      const double h = 1e-6;
      const auto value_at = [&](double step) {
        torch::NoGradGuard no_grad;
        std::vector<torch::Tensor> moved{X0, W0};
        moved[k] = inputs[k].detach() + step * direction;
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

TEST_CASE("libtorch subcenter_arcface_outliers returns the library's outliers as tensors", "[libtorch]") {
  torch::manual_seed(24);
  const torch::Tensor X = torch::randn({12, 6}, f64);
  const torch::Tensor W = torch::randn({15, 6}, f64);  // 5 classes, K = 3
  contrastive::SubCenterArcFaceOptions options;
  const auto expected =
      contrastive::subcenter_arcface_outliers(eigen<double>(X), eigen_labels(labels()), eigen<double>(W), options, 60);
  REQUIRE(!expected.outliers.empty());
  for (const torch::Tensor& x : {X, X.to(torch::kFloat)}) {
    const ct::SubCenterOutlierTensors got = ct::subcenter_arcface_outliers(x, labels(), W, options, 60);
    CHECK(got.outliers.scalar_type() == torch::kLong);
    CHECK(got.dominant.scalar_type() == torch::kLong);
    CHECK(got.dominant_cosine.scalar_type() == x.scalar_type());
    REQUIRE(got.outliers.size(0) == static_cast<std::int64_t>(expected.outliers.size()));
    for (std::int64_t k = 0; k < got.outliers.size(0); ++k) {
      CHECK(got.outliers[k].item<std::int64_t>() == expected.outliers[static_cast<std::size_t>(k)]);
    }
    REQUIRE(got.dominant.size(0) == 5);
    for (std::int64_t k = 0; k < 5; ++k) {
      CHECK(got.dominant[k].item<std::int64_t>() == expected.dominant[static_cast<std::size_t>(k)]);
    }
    CHECK(got.dominant[4].item<std::int64_t>() == -1);
    REQUIRE(got.dominant_cosine.size(0) == 12);
    if (x.scalar_type() == torch::kDouble) {
      for (std::int64_t i = 0; i < 12; ++i) CHECK(got.dominant_cosine[i].item<double>() == expected.dominant_cosine(i));
    }
  }
}

TEST_CASE("libtorch class-weight losses: a bad W is refused naming the argument", "[libtorch]") {
  const torch::Tensor X = torch::randn({6, 3}, f64);
  const torch::Tensor y = torch::tensor({0, 1, 2, 0, 1, 2}, torch::kLong);
  REQUIRE_INVALID_ARGUMENT(ct::arcface_loss(X, y, torch::randn({3, 4}, f64)),
                           "contrastive::arcface_loss: argument 'W' is 3 x 4 but X has 3 columns");
  REQUIRE_INVALID_ARGUMENT(ct::proxy_anchor_loss(X, y, torch::randn({3, 3}, f64).t().narrow(0, 0, 2)),
                           "contrastive::proxy_anchor_loss: argument 'labels' has 2 at row 2, outside [0, 2)");
  REQUIRE_INVALID_ARGUMENT(ct::cosface_loss(X, y, torch::randn({9}, f64)),
                           "contrastive::cosface_loss: argument 'W' must be a 2-D tensor", "c x D");
  REQUIRE_INVALID_ARGUMENT(ct::sphereface_loss(X, y, torch::randn({3, 3, 1}, f64)),
                           "contrastive::sphereface_loss: argument 'W' must have at most 2 dimensions");
  REQUIRE_INVALID_ARGUMENT(ct::normalized_softmax_loss(X, y, torch::ones({3, 3}, torch::kLong)),
                           "contrastive::normalized_softmax_loss: argument 'W' has dtype Long");
  REQUIRE_INVALID_ARGUMENT(ct::subcenter_arcface_loss(X, y, torch::randn({8, 3}, f64)),
                           "contrastive::subcenter_arcface_loss: argument 'W' has 8 rows, not a multiple");
  REQUIRE_INVALID_ARGUMENT(ct::subcenter_arcface_outliers(X, y, torch::randn({9, 4}, f64)),
                           "contrastive::subcenter_arcface_outliers: argument 'W' is 9 x 4");
}

}  // namespace test_libtorch_class_losses
