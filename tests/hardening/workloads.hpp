// Shared by test_concurrency.cpp and test_determinism.cpp: every public
// function called on fixed inputs that reach its special paths (near-duplicate
// and coincident rows, zero rows), each call reduced to the exact bytes of
// its outputs so results can be compared bitwise.
#pragma once

#include "support/fixtures.hpp"

#include <contrastive/contrastive.hpp>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace contrastive_test {

// The bytes of a call's outputs (value, gradients, terms), in call order.
// Bitwise, not ==: -0.0 vs 0.0 and NaN payloads count as differences.
class Snapshot {
 public:
  template <class Derived>
  void add(const Eigen::DenseBase<Derived>& m) {
    using Scalar = typename Derived::Scalar;
    const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> plain = m;
    add_raw(plain.rows());
    add_raw(plain.cols());
    append(plain.data(), static_cast<std::size_t>(plain.size()) * sizeof(Scalar));
  }
  template <class Scalar>
  void add(const contrastive::LossResult<Scalar>& r) {
    add_raw(r.value);
    for (const auto& g : r.grad) add(g);
    add(r.terms);
  }
  void add_scalar(float v) { add_raw(v); }
  void add_scalar(double v) { add_raw(v); }
  const std::vector<unsigned char>& bytes() const { return bytes_; }
  bool operator==(const Snapshot& o) const { return bytes_ == o.bytes_; }
  bool operator!=(const Snapshot& o) const { return !(*this == o); }

 private:
  template <class T>
  void add_raw(const T& v) {
    append(&v, sizeof(T));
  }
  void append(const void* p, std::size_t n) {
    const auto* c = static_cast<const unsigned char*>(p);
    bytes_.insert(bytes_.end(), c, c + n);
  }
  std::vector<unsigned char> bytes_;
};

// One public call on shared const inputs.
struct Workload {
  std::string name;
  std::function<Snapshot()> run;
};

// Inputs shared by all workloads of one scalar type: random rows plus an
// exact duplicate, a near duplicate and a zero row, and labels of 4 classes
// with one singleton class (an anchor without positives).
template <class Scalar>
struct WorkloadInputs {
  RowMatrix<Scalar> X, Y, A, B, dD, dDxy;
  Vector<Scalar> dd;
  Eigen::VectorXi labels;

  explicit WorkloadInputs(Index n = 48, Index dim = 12) {
    X = random_embeddings<Scalar>(n, dim, 101);
    X.row(5) = X.row(2);                                        // coincident
    X.row(9) = X.row(3) + RowMatrix<Scalar>::Constant(1, dim, Scalar(1e-3));  // near duplicate
    X.row(11).setZero();                                        // zero vector (Cosine)
    Y = random_embeddings<Scalar>(n / 2, dim, 102);
    Y.row(1) = X.row(0);
    A = random_embeddings<Scalar>(n, dim, 103);
    B = random_embeddings<Scalar>(n, dim, 104);
    B.row(4) = A.row(4);
    A.row(6).setZero();
    dD = random_embeddings<Scalar>(n, n, 105);
    dDxy = random_embeddings<Scalar>(n, n / 2, 106);
    dd = random_embeddings<Scalar>(n, 1, 107);
    labels = random_labels(n, 4, 108);
    labels(n - 1) = 99;
  }
};

template <class Scalar, class Metric>
void add_metric_workloads(const WorkloadInputs<Scalar>& in, std::vector<Workload>& out) {
  using namespace contrastive;
  const std::string m = Metric::name;
  out.push_back({"pairwise_distance<" + m + ">(X)", [&in] {
                   Snapshot s;
                   s.add(pairwise_distance<Metric>(in.X));
                   return s;
                 }});
  out.push_back({"pairwise_distance<" + m + ">(X, Y)", [&in] {
                   Snapshot s;
                   s.add(pairwise_distance<Metric>(in.X, in.Y));
                   return s;
                 }});
  out.push_back({"rowwise_distance<" + m + ">(A, B)", [&in] {
                   Snapshot s;
                   s.add(rowwise_distance<Metric>(in.A, in.B));
                   return s;
                 }});
  out.push_back({"pairwise_distance_backward<" + m + ">(X, dD)", [&in] {
                   Snapshot s;
                   s.add(pairwise_distance_backward<Metric>(in.X, in.dD));
                   return s;
                 }});
  out.push_back({"pairwise_distance_backward<" + m + ">(X, Y, dD)", [&in] {
                   Snapshot s;
                   const auto g = pairwise_distance_backward<Metric>(in.X, in.Y, in.dDxy);
                   s.add(g.dX);
                   s.add(g.dY);
                   return s;
                 }});
  out.push_back({"rowwise_distance_backward<" + m + ">(A, B, dd)", [&in] {
                   Snapshot s;
                   const auto g = rowwise_distance_backward<Metric>(in.A, in.B, in.dd);
                   s.add(g.dX);
                   s.add(g.dY);
                   return s;
                 }});
}

// Losses and miners on the same inputs, through their full, value-only and
// buffer forms (the buffer form's gradient goes into the snapshot too).
template <class Scalar, class Metric>
void add_loss_workloads(const WorkloadInputs<Scalar>& in, std::vector<Workload>& out) {
  using namespace contrastive;
  const std::string m = std::string("<") + Metric::name + ">";
  TripletOptions hinge;
  hinge.margin = 0.3;
  out.push_back({"batch_all_triplet_loss" + m, [&in, hinge] {
                   Snapshot s;
                   s.add(batch_all_triplet_loss<Metric>(in.X, in.labels, hinge));
                   s.add_scalar(batch_all_triplet_loss<Metric>(in.X, in.labels, hinge, value_only));
                   RowMatrix<Scalar> g(in.X.rows(), in.X.cols());
                   s.add_scalar(batch_all_triplet_loss<Metric>(in.X, in.labels, hinge, g));
                   s.add(g);
                   return s;
                 }});
  out.push_back({"batch_hard_triplet_loss" + m, [&in, hinge] {
                   Snapshot s;
                   s.add(batch_hard_triplet_loss<Metric>(in.X, in.labels, hinge));
                   TripletOptions soft;
                   soft.soft = true;
                   s.add(batch_hard_triplet_loss<Metric>(in.X, in.labels, soft));
                   return s;
                 }});
  out.push_back({"batch_semihard_triplet_loss" + m, [&in, hinge] {
                   Snapshot s;
                   s.add(batch_semihard_triplet_loss<Metric>(in.X, in.labels, hinge));
                   return s;
                 }});
  out.push_back({"triplet_margin_loss" + m + "(A, P, N) and (X, triplets)", [&in, hinge] {
                   Snapshot s;
                   TripletOptions swap = hinge;
                   swap.swap = true;
                   s.add(triplet_margin_loss<Metric>(in.A, in.B, in.X, swap));
                   const Triplets t = mine_triplets<Metric>(in.X, in.labels, 0.3, NegativeKind::Hard | NegativeKind::SemiHard);
                   s.add(triplet_margin_loss<Metric>(in.X, t, hinge));
                   return s;
                 }});
  out.push_back({"ntxent_loss" + m + " (views and labels)", [&in] {
                   Snapshot s;
                   s.add(ntxent_loss<Metric>(in.X, in.A, 0.1));
                   s.add(ntxent_loss<Metric>(in.X, in.labels, 0.1));
                   return s;
                 }});
  out.push_back({"supcon_loss" + m, [&in] {
                   Snapshot s;
                   s.add(supcon_loss<Metric>(in.X, in.labels, 0.1, SupConOptions{}));
                   return s;
                 }});
  out.push_back({"miners" + m, [&in] {
                   Snapshot s;
                   const NegativeStats<Scalar> st = negative_stats<Metric>(in.X, in.labels, 0.3);
                   s.add_scalar(static_cast<double>(st.hard * 1000000 + st.semihard * 1000 + st.easy));
                   s.add_scalar(st.positive_pairs.mean);
                   s.add_scalar(st.negative_pairs.max);
                   MineOptions capped;
                   capped.max_per_anchor = 3;
                   capped.seed = 42;
                   const Triplets lists[] = {
                       mine_triplets<Metric>(in.X, in.labels, 0.3, NegativeKinds::all(), capped),
                       mine_batch_hard<Metric>(in.X, in.labels), mine_semihard<Metric>(in.X, in.labels),
                       mine_easy_hard<Metric>(in.X, in.labels),
                       mine_triplets<Metric>(in.X, in.labels, in.Y, in.labels.head(in.Y.rows()), 0.3,
                                             NegativeKind::SemiHard)};
                   for (const Triplets& t : lists) {
                     s.add(Eigen::Map<const Eigen::Matrix<Index, Eigen::Dynamic, 1>>(t.anchor.data(), t.size()));
                     s.add(Eigen::Map<const Eigen::Matrix<Index, Eigen::Dynamic, 1>>(t.positive.data(), t.size()));
                     s.add(Eigen::Map<const Eigen::Matrix<Index, Eigen::Dynamic, 1>>(t.negative.data(), t.size()));
                   }
                   const Pairs p = mine_pairs<Metric>(in.X, in.labels, 0.5, 1.0);
                   s.add(Eigen::Map<const Eigen::Matrix<Index, Eigen::Dynamic, 1>>(p.first.data(), p.size()));
                   s.add(Eigen::Map<const Eigen::Matrix<Index, Eigen::Dynamic, 1>>(p.second.data(), p.size()));
                   return s;
                 }});
}

// Every workload of one scalar type, over every metric.
template <class Scalar>
std::vector<Workload> all_workloads(const WorkloadInputs<Scalar>& in) {
  std::vector<Workload> out;
  add_metric_workloads<Scalar, contrastive::Euclidean>(in, out);
  add_metric_workloads<Scalar, contrastive::SquaredEuclidean>(in, out);
  add_metric_workloads<Scalar, contrastive::Cosine>(in, out);
  add_loss_workloads<Scalar, contrastive::Euclidean>(in, out);
  add_loss_workloads<Scalar, contrastive::SquaredEuclidean>(in, out);
  add_loss_workloads<Scalar, contrastive::Cosine>(in, out);
  return out;
}

}  // namespace contrastive_test
