// contrastive._contrastive: the library's losses (value and gradient) and
// miners on numpy arrays, for the pure-Python package contrastive.torch
// (python/contrastive/torch/, docs/python.md).
//
// Embeddings are 2-D float32 / float64 arrays, row-major N x D (any other
// layout is copied once); labels and indices are 1-D integer arrays. Every
// loss returns (value, grad) with grad an N x D array of X's dtype, or None
// when need_grad is False (then no backward work is done). Metrics are named
// as AnyMetric::from_name (metrics/any_metric.hpp): "euclidean",
// "squared_euclidean", "cosine", "dot_product", each optionally prefixed
// "normalized_" (PML's normalize_embeddings=True). The library's
// std::invalid_argument arrives as ValueError. The GIL is released while the
// library computes.
#include <contrastive/contrastive.hpp>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <utility>

namespace py = pybind11;
namespace ct = contrastive;

namespace {

template <class S>
using Array = py::array_t<S, py::array::c_style | py::array::forcecast>;

[[noreturn]] void fail(const char* function, const std::string& message) {
  throw std::invalid_argument(std::string("contrastive.") + function + ": " + message);
}

// f(Eigen::Map of X) for X's dtype; the array is kept alive by the caller's handle.
template <class F>
py::object with_matrix(const char* function, const py::array& X, F&& f) {
  if (X.ndim() != 2) fail(function, "argument 'X' must be 2-D (N x D), got " + std::to_string(X.ndim()) + "-D");
  const auto dispatch = [&](auto scalar) -> py::object {
    using S = decltype(scalar);
    const Array<S> a = Array<S>::ensure(X);  // a copy only when X is not C-contiguous
    const Eigen::Map<const ct::RowMatrix<S>> map(a.data(), a.shape(0), a.shape(1));
    return f(map);
  };
  if (X.dtype().is(py::dtype::of<float>())) return dispatch(float{});
  if (X.dtype().is(py::dtype::of<double>())) return dispatch(double{});
  fail(function, "argument 'X' must be float32 or float64, got dtype " + std::string(py::str(X.dtype())));
}

ct::LabelVector integers(const char* function, const char* name, const py::array& v) {
  if (v.ndim() != 1) fail(function, std::string("argument '") + name + "' must be 1-D");
  if (v.dtype().kind() != 'i' && v.dtype().kind() != 'u' && v.dtype().kind() != 'b') {
    fail(function, std::string("argument '") + name + "' must be an integer array, got dtype " +
                       std::string(py::str(v.dtype())));
  }
  const Array<std::int64_t> a = Array<std::int64_t>::ensure(v);
  return Eigen::Map<const ct::LabelVector>(a.data(), a.shape(0));
}

std::vector<ct::Index> index_vector(const char* function, const char* name, const py::array& v) {
  const ct::LabelVector l = integers(function, name, v);
  return std::vector<ct::Index>(l.data(), l.data() + l.size());
}

ct::Triplets triplets(const char* function, const py::array& a, const py::array& p, const py::array& n) {
  ct::Triplets t;
  t.anchor = index_vector(function, "anchors", a);
  t.positive = index_vector(function, "positives", p);
  t.negative = index_vector(function, "negatives", n);
  if (t.positive.size() != t.anchor.size() || t.negative.size() != t.anchor.size()) {
    fail(function, "the index arrays (anchors, positives, negatives) must have one length");
  }
  return t;
}

ct::Pairs pairs(const char* function, const py::array& a1, const py::array& p, const py::array& a2,
                const py::array& n) {
  const auto first_pos = index_vector(function, "a1", a1), second_pos = index_vector(function, "p", p);
  const auto first_neg = index_vector(function, "a2", a2), second_neg = index_vector(function, "n", n);
  if (first_pos.size() != second_pos.size()) fail(function, "arguments 'a1' and 'p' must have one length");
  if (first_neg.size() != second_neg.size()) fail(function, "arguments 'a2' and 'n' must have one length");
  ct::Pairs out;
  for (std::size_t k = 0; k < first_pos.size(); ++k) out.add(first_pos[k], second_pos[k], true);
  for (std::size_t k = 0; k < first_neg.size(); ++k) out.add(first_neg[k], second_neg[k], false);
  return out;
}

// (value, grad | None) of call(x, grad_out...) / call(x, value_only).
template <class S, class Call>
py::object value_and_grad(const Eigen::Map<const ct::RowMatrix<S>>& x, bool need_grad, const Call& call) {
  if (!need_grad) {
    S value;
    {
      py::gil_scoped_release release;
      value = call(ct::value_only);
    }
    return py::make_tuple(static_cast<double>(value), py::none());
  }
  Array<S> grad({x.rows(), x.cols()});
  Eigen::Map<ct::RowMatrix<S>> g(grad.mutable_data(), x.rows(), x.cols());
  S value;
  {
    py::gil_scoped_release release;
    value = call(g);
  }
  return py::make_tuple(static_cast<double>(value), std::move(grad));
}

ct::AnyMetric metric_of(const std::string& name) { return ct::AnyMetric::from_name(name); }

// f(Metric{}, normalize) for a metric name (the miners take the metric as a
// type, and a plain one: a "normalized_" metric mines its base metric on rows
// divided by max(norm, 1e-12), as PML's normalize_embeddings does).
template <class F>
auto with_metric_type(const char* function, std::string name, const F& f) {
  bool normalize = false;
  const std::string prefix = "normalized_";
  if (name.compare(0, prefix.size(), prefix) == 0) {
    normalize = true;
    name = name.substr(prefix.size());
  }
  if (name == "euclidean") return f(ct::Euclidean{}, normalize);
  if (name == "squared_euclidean") return f(ct::SquaredEuclidean{}, normalize);
  if (name == "cosine") return f(ct::Cosine{}, false);
  if (name == "dot_product") return f(ct::DotProduct{}, normalize);
  fail(function, "argument 'metric' is \"" + name +
                     "\"; expected euclidean, squared_euclidean, cosine or dot_product, optionally prefixed normalized_");
}

py::tuple to_arrays(const ct::Triplets& t) {
  const auto arr = [](const std::vector<ct::Index>& v) {
    Array<std::int64_t> a(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
  };
  return py::make_tuple(arr(t.anchor), arr(t.positive), arr(t.negative));
}

py::tuple to_arrays(const ct::Pairs& p) {
  std::vector<std::int64_t> a1, pos, a2, neg;
  for (ct::Index k = 0; k < p.size(); ++k) {
    const auto i = static_cast<std::size_t>(k);
    if (p.similar[i]) {
      a1.push_back(p.first[i]);
      pos.push_back(p.second[i]);
    } else {
      a2.push_back(p.first[i]);
      neg.push_back(p.second[i]);
    }
  }
  const auto arr = [](const std::vector<std::int64_t>& v) {
    Array<std::int64_t> a(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), a.mutable_data());
    return a;
  };
  return py::make_tuple(arr(a1), arr(pos), arr(a2), arr(neg));
}

// A miner on (X, labels): mine(Metric{}, x, y) -> Triplets | Pairs.
template <class Mine>
py::object mine(const char* function, const py::array& X, const py::array& labels, const std::string& metric,
                const Mine& m) {
  const ct::LabelVector y = integers(function, "labels", labels);
  return with_matrix(function, X, [&](const auto& x) -> py::object {
    using S = typename std::decay_t<decltype(x)>::Scalar;
    return with_metric_type(function, metric, [&](auto metric_value, bool normalize) -> py::object {
      decltype(m(metric_value, x, y)) result;
      {
        py::gil_scoped_release release;
        if (normalize) {
          const ct::Vector<S> norms = x.rowwise().norm().cwiseMax(S(1e-12));
          const ct::RowMatrix<S> unit = x.array().colwise() / norms.array();
          result = m(metric_value, unit, y);
        } else {
          result = m(metric_value, x, y);
        }
      }
      return to_arrays(result);
    });
  });
}

// (value, dL/dX, dL/dW) | (value, None, None) of a class-weight loss call(x, w, out...):
// W (c x D, one row per class) is read in X's dtype, dL/dW returned c x D.
template <class Call>
py::object class_weight_loss(const char* function, const py::array& X, const py::array& W, bool need_grad,
                             const Call& call) {
  if (W.ndim() != 2) fail(function, "argument 'W' must be 2-D (c x D), got " + std::to_string(W.ndim()) + "-D");
  if (W.dtype().kind() != 'f') {
    fail(function, "argument 'W' must be a floating array, got dtype " + std::string(py::str(W.dtype())));
  }
  return with_matrix(function, X, [&](const auto& x) -> py::object {
    using S = typename std::decay_t<decltype(x)>::Scalar;
    const Array<S> wa = Array<S>::ensure(W);  // a copy when W is not C-contiguous or not of X's dtype
    const Eigen::Map<const ct::RowMatrix<S>> w(wa.data(), wa.shape(0), wa.shape(1));
    if (!need_grad) {
      S value;
      {
        py::gil_scoped_release release;
        value = call(x, w, ct::value_only);
      }
      return py::make_tuple(static_cast<double>(value), py::none(), py::none());
    }
    Array<S> grad({x.rows(), x.cols()});
    Array<S> w_grad({w.rows(), w.cols()});
    Eigen::Map<ct::RowMatrix<S>> g(grad.mutable_data(), x.rows(), x.cols());
    Eigen::Map<ct::RowMatrix<S>> gw(w_grad.mutable_data(), w.rows(), w.cols());
    S value;
    {
      py::gil_scoped_release release;
      value = call(x, w, g, gw);
    }
    return py::make_tuple(static_cast<double>(value), std::move(grad), std::move(w_grad));
  });
}

}  // namespace

PYBIND11_MODULE(_contrastive, m) {
  m.doc() = "contrastive's losses and miners on numpy arrays (the backend of contrastive.torch)";
  using py::arg;

  // ---- triplet losses ----
  m.def(
      "batch_all_triplet_loss",
      [](const py::array& X, const py::array& labels, const std::string& metric, double margin, bool soft,
         bool need_grad) {
        const ct::LabelVector y = integers("batch_all_triplet_loss", "labels", labels);
        const ct::AnyMetric mt = metric_of(metric);
        ct::TripletOptions o;
        o.margin = margin;
        o.soft = soft;
        o.reduction = ct::Reduction::MeanNonZero;
        return with_matrix("batch_all_triplet_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad, [&](const auto&... out) {
            return ct::batch_all_triplet_loss(x, y, mt, o, out...);
          });
        });
      },
      arg("X"), arg("labels"), arg("metric"), arg("margin"), arg("soft") = false, arg("need_grad") = true,
      "Every valid triplet, [d_ap - d_an + margin]+ (soft: softplus(d_ap - d_an + margin)), mean over the "
      "terms > 0 (PML TripletMarginLoss, smooth_loss = soft).");

  m.def(
      "triplet_margin_loss",
      [](const py::array& X, const py::array& a, const py::array& p, const py::array& n, const std::string& metric,
         double margin, bool soft, bool need_grad) {
        const ct::Triplets t = triplets("triplet_margin_loss", a, p, n);
        const ct::AnyMetric mt = metric_of(metric);
        ct::TripletOptions o;
        o.margin = margin;
        o.soft = soft;
        o.reduction = ct::Reduction::MeanNonZero;
        return with_matrix("triplet_margin_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad, [&](const auto&... out) {
            return ct::triplet_margin_loss(x, t, mt, o, out...);
          });
        });
      },
      arg("X"), arg("anchors"), arg("positives"), arg("negatives"), arg("metric"), arg("margin"),
      arg("soft") = false, arg("need_grad") = true,
      "Index triplets, mean over the terms > 0; soft: softplus(d_ap - d_an) (margin unused).");

  // ---- pair losses ----
  m.def(
      "batch_contrastive_loss",
      [](const py::array& X, const py::array& labels, const std::string& metric, double pos_margin,
         double neg_margin, bool need_grad) {
        const ct::LabelVector y = integers("batch_contrastive_loss", "labels", labels);
        const ct::AnyMetric mt = metric_of(metric);
        ct::ContrastiveOptions o;
        o.pos_margin = pos_margin;
        o.neg_margin = neg_margin;
        o.reduction = ct::Reduction::MeanNonZero;
        o.average_separately = true;
        return with_matrix("batch_contrastive_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad, [&](const auto&... out) {
            return ct::batch_contrastive_loss(x, y, mt, o, out...);
          });
        });
      },
      arg("X"), arg("labels"), arg("metric"), arg("pos_margin"), arg("neg_margin"), arg("need_grad") = true,
      "Every pair, positive and negative terms each averaged over their terms > 0, then added (PML ContrastiveLoss).");

  m.def(
      "contrastive_loss",
      [](const py::array& X, const py::array& a1, const py::array& p, const py::array& a2, const py::array& n,
         const std::string& metric, double pos_margin, double neg_margin, bool need_grad) {
        const ct::Pairs pr = pairs("contrastive_loss", a1, p, a2, n);
        const ct::AnyMetric mt = metric_of(metric);
        ct::ContrastiveOptions o;
        o.pos_margin = pos_margin;
        o.neg_margin = neg_margin;
        o.reduction = ct::Reduction::MeanNonZero;
        o.average_separately = true;
        return with_matrix("contrastive_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad,
                                [&](const auto&... out) { return ct::contrastive_loss(x, pr, mt, o, out...); });
        });
      },
      arg("X"), arg("a1"), arg("p"), arg("a2"), arg("n"), arg("metric"), arg("pos_margin"), arg("neg_margin"),
      arg("need_grad") = true, "Mined pairs (a1, p) positive, (a2, n) negative, as batch_contrastive_loss.");

  m.def(
      "margin_loss",
      [](const py::array& X, const py::array& labels, const std::string& metric, double alpha,
         const py::array& beta, bool per_class, double nu, bool need_grad) {
        const char* fn = "margin_loss";
        const ct::LabelVector y = integers(fn, "labels", labels);
        const ct::AnyMetric mt = metric_of(metric);
        const Array<double> b = Array<double>::ensure(beta);
        if (!b || b.ndim() != 1 || b.shape(0) < 1) fail(fn, "argument 'beta' must be a 1-D float array, not empty");
        ct::MarginOptions o;
        o.alpha = alpha;
        o.nu = nu;
        o.triplet_weights = true;
        o.reduction = ct::Reduction::MeanNonZero;
        if (per_class) {
          o.class_beta = Eigen::Map<const Eigen::VectorXd>(b.data(), b.shape(0));
        } else {
          if (b.shape(0) != 1) fail(fn, "argument 'beta' must have one element when per_class is False");
          o.beta = b.data()[0];
        }
        return with_matrix(fn, X, [&](const auto& x) -> py::object {
          using S = typename std::decay_t<decltype(x)>::Scalar;
          if (!need_grad) {
            S value;
            {
              py::gil_scoped_release release;
              value = ct::margin_loss(x, y, mt, o, ct::value_only);
            }
            return py::make_tuple(static_cast<double>(value), py::none(), py::none());
          }
          Array<S> grad({x.rows(), x.cols()});
          Array<S> beta_grad({static_cast<py::ssize_t>(b.shape(0)), py::ssize_t{1}});
          Eigen::Map<ct::RowMatrix<S>> g(grad.mutable_data(), x.rows(), x.cols());
          Eigen::Map<ct::RowMatrix<S>> gb(beta_grad.mutable_data(), b.shape(0), 1);
          S value;
          {
            py::gil_scoped_release release;
            value = ct::margin_loss(x, y, mt, o, g, gb);
          }
          return py::make_tuple(static_cast<double>(value), std::move(grad),
                                beta_grad.reshape({static_cast<py::ssize_t>(b.shape(0))}));
        });
      },
      arg("X"), arg("labels"), arg("metric"), arg("alpha"), arg("beta"), arg("per_class"), arg("nu"),
      arg("need_grad") = true,
      "PML MarginLoss (triplets_per_anchor='all'): returns (value, dL/dX, dL/dbeta) or (value, None, None).");

  // ---- InfoNCE ----
  m.def(
      "ntxent_loss",
      [](const py::array& X, const py::array& labels, double temperature, const std::string& metric,
         bool need_grad) {
        const ct::LabelVector y = integers("ntxent_loss", "labels", labels);
        const ct::AnyMetric mt = metric_of(metric);
        return with_matrix("ntxent_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad, [&](const auto&... out) {
            return ct::ntxent_loss(x, y, temperature, mt, ct::NTXentOptions{}, out...);
          });
        });
      },
      arg("X"), arg("labels"), arg("temperature"), arg("metric") = "cosine", arg("need_grad") = true,
      "PML NTXentLoss on labels: mean over the ordered positive pairs.");

  m.def(
      "supcon_loss",
      [](const py::array& X, const py::array& labels, double temperature, const std::string& metric,
         bool need_grad) {
        const ct::LabelVector y = integers("supcon_loss", "labels", labels);
        const ct::AnyMetric mt = metric_of(metric);
        return with_matrix("supcon_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad, [&](const auto&... out) {
            return ct::supcon_loss(x, y, temperature, mt, ct::SupConOptions{}, out...);
          });
        });
      },
      arg("X"), arg("labels"), arg("temperature"), arg("metric") = "cosine", arg("need_grad") = true,
      "PML SupConLoss: mean over the anchors with term > 0.");

  // ---- PML's pair-weighting losses: labels, or mined pairs (a1, p, a2, n) ----
  const auto ms_options = [](double alpha, double beta, double base) {
    ct::MultiSimilarityOptions o;
    o.alpha = alpha;
    o.beta = beta;
    o.base = base;
    return o;
  };
  m.def(
      "multi_similarity_loss",
      [ms_options](const py::array& X, const py::array& labels, const std::string& metric, double alpha, double beta,
                   double base, bool need_grad) {
        const ct::LabelVector y = integers("multi_similarity_loss", "labels", labels);
        const ct::AnyMetric mt = metric_of(metric);
        const ct::MultiSimilarityOptions o = ms_options(alpha, beta, base);
        return with_matrix("multi_similarity_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad,
                                [&](const auto&... out) { return ct::multi_similarity_loss(x, y, mt, o, out...); });
        });
      },
      arg("X"), arg("labels"), arg("metric"), arg("alpha"), arg("beta"), arg("base"), arg("need_grad") = true);
  m.def(
      "multi_similarity_loss_pairs",
      [ms_options](const py::array& X, const py::array& a1, const py::array& p, const py::array& a2,
                   const py::array& n, const std::string& metric, double alpha, double beta, double base,
                   bool need_grad) {
        const ct::Pairs pr = pairs("multi_similarity_loss", a1, p, a2, n);
        const ct::AnyMetric mt = metric_of(metric);
        const ct::MultiSimilarityOptions o = ms_options(alpha, beta, base);
        return with_matrix("multi_similarity_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad,
                                [&](const auto&... out) { return ct::multi_similarity_loss(x, pr, mt, o, out...); });
        });
      },
      arg("X"), arg("a1"), arg("p"), arg("a2"), arg("n"), arg("metric"), arg("alpha"), arg("beta"), arg("base"),
      arg("need_grad") = true);

  m.def(
      "circle_loss",
      [](const py::array& X, const py::array& labels, double margin, double gamma, bool need_grad) {
        const ct::LabelVector y = integers("circle_loss", "labels", labels);
        ct::CircleOptions o;
        o.m = margin;
        o.gamma = gamma;
        return with_matrix("circle_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad,
                                [&](const auto&... out) { return ct::circle_loss(x, y, ct::Cosine{}, o, out...); });
        });
      },
      arg("X"), arg("labels"), arg("m"), arg("gamma"), arg("need_grad") = true);
  m.def(
      "circle_loss_pairs",
      [](const py::array& X, const py::array& a1, const py::array& p, const py::array& a2, const py::array& n,
         double margin, double gamma, bool need_grad) {
        const ct::Pairs pr = pairs("circle_loss", a1, p, a2, n);
        ct::CircleOptions o;
        o.m = margin;
        o.gamma = gamma;
        return with_matrix("circle_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad,
                                [&](const auto&... out) { return ct::circle_loss(x, pr, ct::Cosine{}, o, out...); });
        });
      },
      arg("X"), arg("a1"), arg("p"), arg("a2"), arg("n"), arg("m"), arg("gamma"), arg("need_grad") = true);

  // ---- lifted structure, NCA, N-pair: labels only (no mined form) ----
  const auto lifted_options = [](double neg_margin, double pos_margin) {
    ct::LiftedStructureOptions o;
    o.neg_margin = neg_margin;
    o.pos_margin = pos_margin;
    return o;
  };
  m.def(
      "lifted_structure_loss",
      [lifted_options](const py::array& X, const py::array& labels, const std::string& metric, double neg_margin,
                       double pos_margin, bool need_grad) {
        const ct::LabelVector y = integers("lifted_structure_loss", "labels", labels);
        const ct::AnyMetric mt = metric_of(metric);
        const ct::LiftedStructureOptions o = lifted_options(neg_margin, pos_margin);
        return with_matrix("lifted_structure_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad,
                                [&](const auto&... out) { return ct::lifted_structure_loss(x, y, mt, o, out...); });
        });
      },
      arg("X"), arg("labels"), arg("metric"), arg("neg_margin"), arg("pos_margin"), arg("need_grad") = true,
      "PML LiftedStructureLoss: mean over the ordered positive pairs; margins in PML's units of the distance.");
  m.def(
      "generalized_lifted_structure_loss",
      [lifted_options](const py::array& X, const py::array& labels, const std::string& metric, double neg_margin,
                       double pos_margin, bool need_grad) {
        const ct::LabelVector y = integers("generalized_lifted_structure_loss", "labels", labels);
        const ct::AnyMetric mt = metric_of(metric);
        const ct::LiftedStructureOptions o = lifted_options(neg_margin, pos_margin);
        return with_matrix("generalized_lifted_structure_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad, [&](const auto&... out) {
            return ct::generalized_lifted_structure_loss(x, y, mt, o, out...);
          });
        });
      },
      arg("X"), arg("labels"), arg("metric"), arg("neg_margin"), arg("pos_margin"), arg("need_grad") = true,
      "PML GeneralizedLiftedStructureLoss: mean over all rows; margins in PML's units of the distance.");
  m.def(
      "nca_loss",
      [](const py::array& X, const py::array& labels, const std::string& metric, double softmax_scale,
         bool need_grad) {
        const ct::LabelVector y = integers("nca_loss", "labels", labels);
        const ct::AnyMetric mt = metric_of(metric);
        ct::NCAOptions o;
        o.softmax_scale = softmax_scale;
        return with_matrix("nca_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad,
                                [&](const auto&... out) { return ct::nca_loss(x, y, mt, o, out...); });
        });
      },
      arg("X"), arg("labels"), arg("metric"), arg("softmax_scale"), arg("need_grad") = true,
      "PML NCALoss: mean over the rows with a same-class neighbour.");
  m.def(
      "npairs_loss",
      [](const py::array& X, const py::array& labels, const std::string& metric, bool need_grad) {
        const ct::LabelVector y = integers("npairs_loss", "labels", labels);
        const ct::AnyMetric mt = metric_of(metric);
        return with_matrix("npairs_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad, [&](const auto&... out) {
            return ct::npairs_loss(x, y, mt, ct::NPairsOptions{}, out...);
          });
        });
      },
      arg("X"), arg("labels"), arg("metric"), arg("need_grad") = true,
      "PML NPairsLoss: one pair per class (its two lowest rows), mean over the pairs.");

  // ---- tuplet margin, angular: labels only, their one metric each; VICReg: two views ----
  m.def(
      "tuplet_margin_loss",
      [](const py::array& X, const py::array& labels, double margin, double scale, bool need_grad) {
        const ct::LabelVector y = integers("tuplet_margin_loss", "labels", labels);
        ct::TupletMarginOptions o;
        o.margin = margin;
        o.scale = scale;
        return with_matrix("tuplet_margin_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad, [&](const auto&... out) {
            return ct::tuplet_margin_loss(x, y, ct::Cosine{}, o, out...);
          });
        });
      },
      arg("X"), arg("labels"), arg("margin"), arg("scale"), arg("need_grad") = true,
      "PML TupletMarginLoss (CosineSimilarity; margin in degrees): mean over the ordered positive pairs.");
  m.def(
      "angular_loss",
      [](const py::array& X, const py::array& labels, double alpha, bool need_grad) {
        const ct::LabelVector y = integers("angular_loss", "labels", labels);
        ct::AngularOptions o;
        o.alpha = alpha;
        return with_matrix("angular_loss", X, [&](const auto& x) {
          return value_and_grad(x, need_grad, [&](const auto&... out) {
            return ct::angular_loss(x, y, ct::Euclidean{}, o, out...);
          });
        });
      },
      arg("X"), arg("labels"), arg("alpha"), arg("need_grad") = true,
      "PML AngularLoss (alpha in degrees; anchors and positives normalised, negatives raw): mean over the "
      "ordered positive pairs.");
  m.def(
      "vicreg_loss",
      [](const py::array& Z, const py::array& Z2, double invariance_lambda, double variance_mu, double covariance_v,
         double eps, bool need_grad) {
        const char* fn = "vicreg_loss";
        if (!Z2.dtype().is(Z.dtype())) {
          fail(fn, "arguments 'Z' and 'Z2' must have one dtype, got " + std::string(py::str(Z.dtype())) + " and " +
                       std::string(py::str(Z2.dtype())));
        }
        if (Z2.ndim() != 2) fail(fn, "argument 'Z2' must be 2-D (N x D), got " + std::to_string(Z2.ndim()) + "-D");
        ct::VICRegOptions o;
        o.invariance_lambda = invariance_lambda;
        o.variance_mu = variance_mu;
        o.covariance_v = covariance_v;
        o.eps = eps;
        return with_matrix(fn, Z, [&](const auto& a) -> py::object {
          using S = typename std::decay_t<decltype(a)>::Scalar;
          const Array<S> b_arr = Array<S>::ensure(Z2);
          const Eigen::Map<const ct::RowMatrix<S>> b(b_arr.data(), b_arr.shape(0), b_arr.shape(1));
          if (!need_grad) {
            S value;
            {
              py::gil_scoped_release release;
              value = ct::vicreg_loss(a, b, o, ct::value_only);
            }
            return py::make_tuple(static_cast<double>(value), py::none(), py::none());
          }
          Array<S> ga({a.rows(), a.cols()}), gb({b.rows(), b.cols()});
          Eigen::Map<ct::RowMatrix<S>> da(ga.mutable_data(), a.rows(), a.cols());
          Eigen::Map<ct::RowMatrix<S>> db(gb.mutable_data(), b.rows(), b.cols());
          S value;
          {
            py::gil_scoped_release release;
            value = ct::vicreg_loss(a, b, o, da, db);
          }
          return py::make_tuple(static_cast<double>(value), std::move(ga), std::move(gb));
        });
      },
      arg("Z"), arg("Z2"), arg("invariance_lambda"), arg("variance_mu"), arg("covariance_v"), arg("eps"),
      arg("need_grad") = true,
      "PML VICRegLoss(embeddings, ref_emb=Z2): returns (value, dL/dZ, dL/dZ2) or (value, None, None).");

  // ---- miners: int64 index arrays, PML's tuples ----
  m.def(
      "mine_triplets",
      [](const py::array& X, const py::array& labels, const std::string& metric, double margin,
         const std::string& type_of_triplets) {
        ct::NegativeKinds kinds;
        if (type_of_triplets == "all") {
          kinds = ct::NegativeKinds::with_loss();
        } else if (type_of_triplets == "hard") {
          kinds = ct::NegativeKind::Hard;
        } else if (type_of_triplets == "semihard") {
          kinds = ct::NegativeKind::SemiHard;
        } else if (type_of_triplets == "easy") {
          kinds = ct::NegativeKind::Easy;
        } else {
          fail("mine_triplets", "argument 'type_of_triplets' is \"" + type_of_triplets +
                                    "\"; expected all, hard, semihard or easy");
        }
        ct::MineOptions o;
        o.convention = ct::TieConvention::PytorchMetricLearning;
        return mine("mine_triplets", X, labels, metric, [&](auto metric_value, const auto& x, const auto& y) {
          return ct::mine_triplets<decltype(metric_value)>(x, y, margin, kinds, o);
        });
      },
      arg("X"), arg("labels"), arg("metric"), arg("margin"), arg("type_of_triplets"),
      "PML TripletMarginMiner: (anchors, positives, negatives).");
  m.def(
      "mine_batch_hard",
      [](const py::array& X, const py::array& labels, const std::string& metric) {
        return mine("mine_batch_hard", X, labels, metric, [](auto metric_value, const auto& x, const auto& y) {
          return ct::mine_batch_hard<decltype(metric_value)>(x, y);
        });
      },
      arg("X"), arg("labels"), arg("metric"), "PML BatchHardMiner: (anchors, positives, negatives).");
  m.def(
      "mine_easy_hard",
      [](const py::array& X, const py::array& labels, const std::string& metric, const std::string& pos_strategy,
         const std::string& neg_strategy, double positive_min, double positive_max, double negative_min,
         double negative_max) {
        const auto strategy = [](const char* name, const std::string& s) {
          if (s == "easy") return ct::MiningStrategy::Easy;
          if (s == "semihard") return ct::MiningStrategy::SemiHard;
          if (s == "hard") return ct::MiningStrategy::Hard;
          fail("mine_easy_hard", std::string("argument '") + name + "' is \"" + s +
                                     "\"; expected easy, semihard or hard");
        };
        ct::EasyHardOptions o;
        o.positive = strategy("pos_strategy", pos_strategy);
        o.negative = strategy("neg_strategy", neg_strategy);
        o.positive_min = positive_min;
        o.positive_max = positive_max;
        o.negative_min = negative_min;
        o.negative_max = negative_max;
        return mine("mine_easy_hard", X, labels, metric, [&](auto metric_value, const auto& x, const auto& y) {
          return ct::mine_easy_hard<decltype(metric_value)>(x, y, o);
        });
      },
      arg("X"), arg("labels"), arg("metric"), arg("pos_strategy"), arg("neg_strategy"), arg("positive_min"),
      arg("positive_max"), arg("negative_min"), arg("negative_max"),
      "PML BatchEasyHardMiner (no \"all\"), allowed ranges on the library's distance (inclusive): "
      "(anchors, positives, negatives).");
  m.def(
      "mine_pairs",
      [](const py::array& X, const py::array& labels, const std::string& metric, double pos_margin,
         double neg_margin) {
        return mine("mine_pairs", X, labels, metric, [&](auto metric_value, const auto& x, const auto& y) {
          return ct::mine_pairs<decltype(metric_value)>(x, y, pos_margin, neg_margin);
        });
      },
      arg("X"), arg("labels"), arg("metric"), arg("pos_margin"), arg("neg_margin"),
      "Positive pairs farther than pos_margin, negative pairs closer than neg_margin: (a1, p, a2, n).");
  m.def(
      "mine_multi_similarity",
      [](const py::array& X, const py::array& labels, const std::string& metric, double epsilon) {
        return mine("mine_multi_similarity", X, labels, metric, [&](auto metric_value, const auto& x, const auto& y) {
          return ct::mine_multi_similarity<decltype(metric_value)>(x, y, epsilon);
        });
      },
      arg("X"), arg("labels"), arg("metric"), arg("epsilon"), "PML MultiSimilarityMiner: (a1, p, a2, n).");

  // ---- class-weight losses (docs/class_losses.md): W is c x D, one row per class ----
  m.def(
      "arcface_loss",
      [](const py::array& X, const py::array& labels, const py::array& W, double margin, double scale,
         bool need_grad) {
        const ct::LabelVector y = integers("arcface_loss", "labels", labels);
        ct::ArcFaceOptions o;
        o.margin = margin;
        o.scale = scale;
        return class_weight_loss("arcface_loss", X, W, need_grad, [&](const auto& x, const auto& w, auto&&... out) {
          return ct::arcface_loss(x, y, w, o, out...);
        });
      },
      arg("X"), arg("labels"), arg("W"), arg("margin"), arg("scale"), arg("need_grad") = true,
      "PML ArcFaceLoss (margin in degrees) on W = loss.W.T: (value, dL/dX, dL/dW) or (value, None, None).");
  m.def(
      "cosface_loss",
      [](const py::array& X, const py::array& labels, const py::array& W, double margin, double scale,
         bool need_grad) {
        const ct::LabelVector y = integers("cosface_loss", "labels", labels);
        ct::CosFaceOptions o;
        o.margin = margin;
        o.scale = scale;
        return class_weight_loss("cosface_loss", X, W, need_grad, [&](const auto& x, const auto& w, auto&&... out) {
          return ct::cosface_loss(x, y, w, o, out...);
        });
      },
      arg("X"), arg("labels"), arg("W"), arg("margin"), arg("scale"), arg("need_grad") = true,
      "PML CosFaceLoss on W = loss.W.T: (value, dL/dX, dL/dW) or (value, None, None).");
  m.def(
      "sphereface_loss",
      [](const py::array& X, const py::array& labels, const py::array& W, int margin, double scale,
         bool need_grad) {
        const ct::LabelVector y = integers("sphereface_loss", "labels", labels);
        ct::SphereFaceOptions o;
        o.margin = margin;
        o.scale = scale;
        return class_weight_loss("sphereface_loss", X, W, need_grad,
                                 [&](const auto& x, const auto& w, auto&&... out) {
                                   return ct::sphereface_loss(x, y, w, o, out...);
                                 });
      },
      arg("X"), arg("labels"), arg("W"), arg("margin"), arg("scale"), arg("need_grad") = true,
      "PML SphereFaceLoss (integer margin) on W = loss.W.T: (value, dL/dX, dL/dW) or (value, None, None).");
  m.def(
      "subcenter_arcface_loss",
      [](const py::array& X, const py::array& labels, const py::array& W, double margin, double scale,
         int sub_centers, bool need_grad) {
        const ct::LabelVector y = integers("subcenter_arcface_loss", "labels", labels);
        ct::SubCenterArcFaceOptions o;
        o.margin = margin;
        o.scale = scale;
        o.sub_centers = sub_centers;
        return class_weight_loss("subcenter_arcface_loss", X, W, need_grad,
                                 [&](const auto& x, const auto& w, auto&&... out) {
                                   return ct::subcenter_arcface_loss(x, y, w, o, out...);
                                 });
      },
      arg("X"), arg("labels"), arg("W"), arg("margin"), arg("scale"), arg("sub_centers"), arg("need_grad") = true,
      "PML SubCenterArcFaceLoss on W = loss.W.T ((c K) x D, class c's sub-centres at rows cK .. cK + K - 1): "
      "(value, dL/dX, dL/dW) or (value, None, None).");
  m.def(
      "subcenter_arcface_outliers",
      [](const py::array& X, const py::array& labels, const py::array& W, double margin, double scale,
         int sub_centers, double threshold) {
        const char* fn = "subcenter_arcface_outliers";
        const ct::LabelVector y = integers(fn, "labels", labels);
        if (W.ndim() != 2) fail(fn, "argument 'W' must be 2-D (c x D), got " + std::to_string(W.ndim()) + "-D");
        ct::SubCenterArcFaceOptions o;
        o.margin = margin;
        o.scale = scale;
        o.sub_centers = sub_centers;
        return with_matrix(fn, X, [&](const auto& x) -> py::object {
          using S = typename std::decay_t<decltype(x)>::Scalar;
          const Array<S> wa = Array<S>::ensure(W);
          const Eigen::Map<const ct::RowMatrix<S>> w(wa.data(), wa.shape(0), wa.shape(1));
          const ct::SubCenterOutliers<S> r = ct::subcenter_arcface_outliers(x, y, w, o, threshold);
          const auto arr = [](const std::vector<ct::Index>& v) {
            Array<std::int64_t> a(static_cast<py::ssize_t>(v.size()));
            std::copy(v.begin(), v.end(), a.mutable_data());
            return a;
          };
          Array<S> cosine(static_cast<py::ssize_t>(r.dominant_cosine.size()));
          std::copy(r.dominant_cosine.data(), r.dominant_cosine.data() + r.dominant_cosine.size(),
                    cosine.mutable_data());
          return py::make_tuple(arr(r.outliers), arr(r.dominant), std::move(cosine));
        });
      },
      arg("X"), arg("labels"), arg("W"), arg("margin"), arg("scale"), arg("sub_centers"), arg("threshold"),
      "PML SubCenterArcFaceLoss.get_outliers: (outlier rows, each class's dominant sub-centre or -1, "
      "each row's cosine to its class's dominant sub-centre).");
  m.def(
      "normalized_softmax_loss",
      [](const py::array& X, const py::array& labels, const py::array& W, double temperature, bool need_grad) {
        const ct::LabelVector y = integers("normalized_softmax_loss", "labels", labels);
        ct::NormalizedSoftmaxOptions o;
        o.temperature = temperature;
        return class_weight_loss("normalized_softmax_loss", X, W, need_grad,
                                 [&](const auto& x, const auto& w, auto&&... out) {
                                   return ct::normalized_softmax_loss(x, y, w, o, out...);
                                 });
      },
      arg("X"), arg("labels"), arg("W"), arg("temperature"), arg("need_grad") = true,
      "PML NormalizedSoftmaxLoss on W = loss.W.T: (value, dL/dX, dL/dW) or (value, None, None).");
  m.def(
      "proxy_nca_loss",
      [](const py::array& X, const py::array& labels, const py::array& W, double softmax_scale, bool need_grad) {
        const ct::LabelVector y = integers("proxy_nca_loss", "labels", labels);
        ct::ProxyNCAOptions o;
        o.softmax_scale = softmax_scale;
        return class_weight_loss("proxy_nca_loss", X, W, need_grad, [&](const auto& x, const auto& w, auto&&... out) {
          return ct::proxy_nca_loss(x, y, w, o, out...);
        });
      },
      arg("X"), arg("labels"), arg("W"), arg("softmax_scale"), arg("need_grad") = true,
      "PML ProxyNCALoss on W = loss.proxies: (value, dL/dX, dL/dW) or (value, None, None).");
  m.def(
      "proxy_anchor_loss",
      [](const py::array& X, const py::array& labels, const py::array& W, double margin, double alpha,
         bool need_grad) {
        const ct::LabelVector y = integers("proxy_anchor_loss", "labels", labels);
        ct::ProxyAnchorOptions o;
        o.margin = margin;
        o.alpha = alpha;
        return class_weight_loss("proxy_anchor_loss", X, W, need_grad,
                                 [&](const auto& x, const auto& w, auto&&... out) {
                                   return ct::proxy_anchor_loss(x, y, w, o, out...);
                                 });
      },
      arg("X"), arg("labels"), arg("W"), arg("margin"), arg("alpha"), arg("need_grad") = true,
      "PML ProxyAnchorLoss on W = loss.proxies: (value, dL/dX, dL/dW) or (value, None, None).");
}
