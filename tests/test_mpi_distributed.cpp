// The distributed (MPI) losses, miners and counters against the single-process
// result of the concatenated batch. Run under mpirun with 1, 2, 3 and 4
// processes (tests/CMakeLists.txt); every rank builds the same global batch
// from a fixed seed and takes its slice: unequal row counts, rank 1 empty at
// 3+ processes, a class present on rank 0 only, a class with one row.
// Cases use CHECK (never REQUIRE between collectives) so that a failure on
// one rank does not leave the others waiting.
#if !defined(CONTRASTIVE_CATCH2_V3)
#define CATCH_CONFIG_RUNNER
#endif
#include "support/catch.hpp"

#include <mpi.h>

#include <contrastive/contrastive.hpp>
#include <contrastive/distributed.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace contrastive;
namespace cd = contrastive::distributed;

namespace test_mpi_distributed {
namespace {

const cd::Communicator& world() {
  static const cd::Communicator comm(MPI_COMM_WORLD);
  return comm;
}

template <class S>
struct Batch {
  RowMatrix<S> X;           // the global batch
  Eigen::VectorXi labels;
  std::vector<Index> counts;
  Index offset = 0, rows = 0;  // this rank's slice
  RowMatrix<S> local() const { return X.middleRows(offset, rows); }
  Eigen::VectorXi local_labels() const { return labels.segment(offset, rows); }
};

// Row counts 5, 8, 11, ... with rank 1 empty at 3+ processes; labels in
// 0..3, rows 0 and 1 of class 100 (rank 0's alone), the last row the only
// one of class 200.
template <class S>
Batch<S> make_batch(Index D, unsigned seed) {
  const int P = world().size(), me = world().rank();
  Batch<S> b;
  for (int r = 0; r < P; ++r) b.counts.push_back(P >= 3 && r == 1 ? 0 : Index(5 + 3 * r));
  Index n = 0;
  for (int r = 0; r < P; ++r) {
    if (r < me) b.offset += b.counts[static_cast<std::size_t>(r)];
    n += b.counts[static_cast<std::size_t>(r)];
  }
  b.rows = b.counts[static_cast<std::size_t>(me)];
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal;
  std::uniform_int_distribution<int> label(0, 3);
  b.X.resize(n, D);
  b.labels.resize(n);
  for (Index i = 0; i < n; ++i) {
    for (Index k = 0; k < D; ++k) b.X(i, k) = static_cast<S>(normal(rng));
    b.labels(i) = label(rng);
  }
  b.labels(0) = b.labels(1) = 100;
  b.labels(n - 1) = 200;
  return b;
}

template <class S>
double tolerance() {
  return std::is_same<S, double>::value ? 1e-12 : 1e-5;
}

template <class M>
double max_abs(const M& m) {
  return m.size() == 0 ? 0.0 : static_cast<double>(m.cwiseAbs().maxCoeff());
}

template <class S>
void check_close(const char* what, double got, double want) {
  INFO(what << ": distributed " << got << ", single process " << want);
  CHECK(std::abs(got - want) <= tolerance<S>() * std::max(std::abs(want), 1e-300));
}

template <class S, class MG, class MW>
void check_gradient_close(const char* what, const MG& got, const MW& want) {
  INFO(what << ": " << got.rows() << " x " << got.cols() << " against " << want.rows() << " x " << want.cols());
  CHECK(got.rows() == want.rows());
  CHECK(got.cols() == want.cols());
  if (got.rows() != want.rows() || got.cols() != want.cols()) return;
  const double scale = std::max(max_abs(want), 1e-300);
  INFO("max |difference| " << (got.size() ? max_abs(got - want) : 0.0) << ", max |gradient| " << scale);
  CHECK(max_abs(got - want) <= tolerance<S>() * scale);
}

// dist(X, y, form...) is the distributed call, single(X, y) the one-process
// loss; form is nothing (the full result), value_only or a gradient output.
template <class S, class Dist, class Single>
void check_loss(const std::string& name, const Batch<S>& b, const Dist& dist, const Single& single) {
  INFO(name << " at " << world().size() << " processes, rank " << world().rank());
  const RowMatrix<S> X = b.local();
  const Eigen::VectorXi y = b.local_labels();
  const LossResult<S> d = dist(X, y);
  const LossResult<S> s = single(b.X, b.labels);
  check_close<S>("value", static_cast<double>(d.value), static_cast<double>(s.value));
  CHECK(d.grad.size() == s.grad.size());
  check_gradient_close<S>("dL/dX", d.grad[0], s.grad[0].middleRows(b.offset, b.rows));
  for (std::size_t k = 1; k < std::min(d.grad.size(), s.grad.size()); ++k) {
    check_gradient_close<S>("metric gradient", d.grad[k], s.grad[k]);
  }
  const S v = dist(X, y, value_only);
  check_close<S>("value_only", static_cast<double>(v), static_cast<double>(s.value));
  RowMatrix<S> out(X.rows(), X.cols());
  out.setConstant(S(7));
  const S w = dist(X, y, out);
  check_close<S>("value with a gradient output", static_cast<double>(w), static_cast<double>(s.value));
  check_gradient_close<S>("gradient output", out, s.grad[0].middleRows(b.offset, b.rows));
}

// Every rank runs `call`; all must throw std::invalid_argument containing every piece.
template <class Call>
void check_all_throw(int line, const Call& call, const std::vector<std::string>& pieces) {
  INFO("the call at line " << line);
  bool threw = false;
  std::string message;
  try {
    (void)call();
  } catch (const std::invalid_argument& e) {
    threw = true;
    message = e.what();
  }
  INFO("rank " << world().rank() << " message: " << message);
  CHECK(threw);
  for (const std::string& piece : pieces) CHECK(message.find(piece) != std::string::npos);
}

template <class Loss, class Options>
void check_path(const Options& o, cd::Path expected) {
  CHECK(cd::detail::path_of<Loss>(o) == expected);
}

// Every batch loss with its default options and the reductions worth trying.
// Every: all of them; otherwise (to keep the build small) the own-anchors
// losses, whose arithmetic differs from one process, and one or two
// whole-loss ones (that path is the one-process computation itself).
template <class S, class Metric, bool Every>
void check_all_losses(unsigned seed) {
  const Batch<S> b = make_batch<S>(6, seed);
  const cd::Communicator& comm = world();
  const Metric m{};
  for (Reduction kind : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
    const std::string k = kind == Reduction::Mean ? " Mean" : kind == Reduction::Sum ? " Sum" : " MeanNonZero";
    TripletOptions t;
    t.margin = 0.3;
    t.reduction = kind;
    check_loss("batch_hard_triplet_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::batch_hard_triplet_loss(comm, X, y, m, t, f...); },
               [&](const auto& X, const auto& y) { return batch_hard_triplet_loss(X, y, m, t); });
    check_loss("batch_all_triplet_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::batch_all_triplet_loss(comm, X, y, m, t, f...); },
               [&](const auto& X, const auto& y) { return batch_all_triplet_loss(X, y, m, t); });
    if constexpr (Every) {
      check_loss("batch_semihard_triplet_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::batch_semihard_triplet_loss(comm, X, y, m, t, f...); },
               [&](const auto& X, const auto& y) { return batch_semihard_triplet_loss(X, y, m, t); });
}
        ContrastiveOptions c;
    c.pos_margin = 0.5;
    c.neg_margin = 1.5;
    c.reduction = kind;
    check_loss("batch_contrastive_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::batch_contrastive_loss(comm, X, y, m, c, f...); },
               [&](const auto& X, const auto& y) { return batch_contrastive_loss(X, y, m, c); });
    c.average_separately = true;
    check_loss("batch_contrastive_loss average_separately" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::batch_contrastive_loss(comm, X, y, m, c, f...); },
               [&](const auto& X, const auto& y) { return batch_contrastive_loss(X, y, m, c); });
    check_path<contrastive::detail::BatchContrastiveLoss>(c, cd::Path::WholeLoss);
    MultiSimilarityOptions ms;
    ms.reduction = kind;
    check_loss("multi_similarity_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::multi_similarity_loss(comm, X, y, m, ms, f...); },
               [&](const auto& X, const auto& y) { return multi_similarity_loss(X, y, m, ms); });
    SupConOptions sc;
    sc.reduction = kind;
    check_loss("supcon_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::supcon_loss(comm, X, y, 0.5, m, sc, f...); },
               [&](const auto& X, const auto& y) { return supcon_loss(X, y, 0.5, m, sc); });
    NCAOptions nca;
    nca.reduction = kind;
    check_loss("nca_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::nca_loss(comm, X, y, m, nca, f...); },
               [&](const auto& X, const auto& y) { return nca_loss(X, y, m, nca); });
    LiftedStructureOptions ls;
    ls.reduction = kind;
    check_loss("generalized_lifted_structure_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::generalized_lifted_structure_loss(comm, X, y, m, ls, f...); },
               [&](const auto& X, const auto& y) { return generalized_lifted_structure_loss(X, y, m, ls); });
    if constexpr (Every) {
    check_loss("lifted_structure_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::lifted_structure_loss(comm, X, y, m, ls, f...); },
               [&](const auto& X, const auto& y) { return lifted_structure_loss(X, y, m, ls); });
    NPairsOptions np;
    np.reduction = kind;
    check_loss("npairs_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::npairs_loss(comm, X, y, m, np, f...); },
               [&](const auto& X, const auto& y) { return npairs_loss(X, y, m, np); });
    NTXentOptions nt;
    nt.reduction = kind;
    check_loss("ntxent_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::ntxent_loss(comm, X, y, 0.5, m, nt, f...); },
               [&](const auto& X, const auto& y) { return ntxent_loss(X, y, 0.5, m, nt); });
    }
    if constexpr (std::is_same<Metric, Cosine>::value) {
      CircleOptions ci;
      ci.reduction = kind;
      check_loss("circle_loss" + k, b,
                 [&](const auto& X, const auto& y, const auto&... f) { return cd::circle_loss(comm, X, y, m, ci, f...); },
                 [&](const auto& X, const auto& y) { return circle_loss(X, y, m, ci); });
      TupletMarginOptions tu;
      tu.reduction = kind;
      check_loss("tuplet_margin_loss" + k, b,
                 [&](const auto& X, const auto& y, const auto&... f) { return cd::tuplet_margin_loss(comm, X, y, m, tu, f...); },
                 [&](const auto& X, const auto& y) { return tuplet_margin_loss(X, y, m, tu); });
    } else {
      AngularOptions an;
      an.reduction = kind;
      check_loss("angular_loss" + k, b,
                 [&](const auto& X, const auto& y, const auto&... f) { return cd::angular_loss(comm, X, y, m, an, f...); },
                 [&](const auto& X, const auto& y) { return angular_loss(X, y, m, an); });
    }
  }
  // Sample weights: one per local row, gathered for the whole-loss path.
  Eigen::VectorXd w_global(b.X.rows());
  for (Index i = 0; i < w_global.size(); ++i) w_global(i) = 0.25 + 0.5 * static_cast<double>(i % 4);
  const Eigen::VectorXd w_local = w_global.segment(b.offset, b.rows);
  SupConOptions sc_local, sc_global;
  sc_local.reduction = Mean(w_local);
  sc_global.reduction = Mean(w_global);
  check_loss("supcon_loss weighted", b,
             [&](const auto& X, const auto& y, const auto&... f) { return cd::supcon_loss(comm, X, y, 0.5, m, sc_local, f...); },
             [&](const auto& X, const auto& y) { return supcon_loss(X, y, 0.5, m, sc_global); });
  TripletOptions t_local, t_global;
  t_local.reduction = MeanNonZero(w_local);
  t_global.reduction = MeanNonZero(w_global);
  check_loss("batch_hard_triplet_loss weighted", b,
             [&](const auto& X, const auto& y, const auto&... f) { return cd::batch_hard_triplet_loss(comm, X, y, m, t_local, f...); },
             [&](const auto& X, const auto& y) { return batch_hard_triplet_loss(X, y, m, t_global); });
  check_loss("batch_all_triplet_loss weighted", b,
             [&](const auto& X, const auto& y, const auto&... f) { return cd::batch_all_triplet_loss(comm, X, y, m, t_local, f...); },
             [&](const auto& X, const auto& y) { return batch_all_triplet_loss(X, y, m, t_global); });
  ContrastiveOptions c_local, c_global;
  c_local.reduction = Mean(w_local);
  c_global.reduction = Mean(w_global);
  check_path<contrastive::detail::BatchContrastiveLoss>(c_local, cd::Path::WholeLoss);
  check_loss("batch_contrastive_loss weighted", b,
             [&](const auto& X, const auto& y, const auto&... f) { return cd::batch_contrastive_loss(comm, X, y, m, c_local, f...); },
             [&](const auto& X, const auto& y) { return batch_contrastive_loss(X, y, m, c_global); });
  check_path<contrastive::detail::SupConLoss>(SupConOptions{}, cd::Path::SharedTiles);
  check_path<contrastive::detail::BatchHardTripletLoss>(TripletOptions{}, cd::Path::SharedTiles);
  check_path<contrastive::detail::BatchContrastiveLoss>(ContrastiveOptions{}, cd::Path::OwnPairs);
  check_path<contrastive::detail::BatchAllTripletLoss>(TripletOptions{}, cd::Path::WholeLoss);
}

TEST_CASE("distributed losses equal the single-process loss of the global batch, double, Euclidean", "[mpi]") {
  check_all_losses<double, Euclidean, true>(11);
}

TEST_CASE("distributed losses equal the single-process loss of the global batch, double, Cosine", "[mpi]") {
  check_all_losses<double, Cosine, false>(12);
}

TEST_CASE("distributed losses equal the single-process loss of the global batch, float, Euclidean", "[mpi]") {
  check_all_losses<float, Euclidean, false>(13);
}

TEST_CASE("distributed loss with a learned metric: dL/dL all-reduced", "[mpi]") {
  const Batch<double> b = make_batch<double>(5, 21);
  RowMatrix<double> L(3, 5);
  std::mt19937 rng(3);
  std::normal_distribution<double> normal;
  for (Index i = 0; i < L.size(); ++i) L.data()[i] = normal(rng);
  const Mahalanobis metric(L);
  TripletOptions t;
  t.margin = 0.5;
  const cd::Communicator& comm = world();
  check_loss("batch_hard_triplet_loss Mahalanobis", b,
             [&](const auto& X, const auto& y, const auto&... f) { return cd::batch_hard_triplet_loss(comm, X, y, metric, t, f...); },
             [&](const auto& X, const auto& y) { return batch_hard_triplet_loss(X, y, metric, t); });
  check_loss("batch_all_triplet_loss Mahalanobis", b,
             [&](const auto& X, const auto& y, const auto&... f) { return cd::batch_all_triplet_loss(comm, X, y, metric, t, f...); },
             [&](const auto& X, const auto& y) { return batch_all_triplet_loss(X, y, metric, t); });
}

// The shared-tiles losses with a workspace so small that the tiles are a few
// rows wide: the ranks own interleaved tiles of every size (diagonal, edge,
// full), most are recomputed for the second pass, and every anchor's state
// comes from several ranks' tiles.
template <class S, class Metric>
void check_shared_tiles(unsigned seed) {
  const Batch<S> b = make_batch<S>(7, seed);
  const cd::Communicator& comm = world();
  const Metric m{};
  const std::size_t small = static_cast<std::size_t>(b.X.rows()) * 4 * sizeof(S);
  INFO("workspace " << small << " bytes for " << b.X.rows() << " rows");
  for (Reduction kind : {Reduction::Mean, Reduction::MeanNonZero}) {
    const std::string k = kind == Reduction::Mean ? " Mean" : " MeanNonZero";
    TripletOptions t;
    t.margin = 0.3;
    t.reduction = kind;
    t.workspace_bytes = small;
    check_loss("batch_hard_triplet_loss, small tiles" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::batch_hard_triplet_loss(comm, X, y, m, t, f...); },
               [&](const auto& X, const auto& y) { return batch_hard_triplet_loss(X, y, m, t); });
    MultiSimilarityOptions ms;
    ms.reduction = kind;
    ms.workspace_bytes = small;
    check_loss("multi_similarity_loss, small tiles" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::multi_similarity_loss(comm, X, y, m, ms, f...); },
               [&](const auto& X, const auto& y) { return multi_similarity_loss(X, y, m, ms); });
    SupConOptions sc;
    sc.reduction = kind;
    sc.workspace_bytes = small;
    check_loss("supcon_loss, small tiles" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::supcon_loss(comm, X, y, 0.5, m, sc, f...); },
               [&](const auto& X, const auto& y) { return supcon_loss(X, y, 0.5, m, sc); });
    NTXentOptions nt;
    nt.reduction = kind;
    nt.workspace_bytes = small;
    check_loss("ntxent_loss, small tiles" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::ntxent_loss(comm, X, y, 0.5, m, nt, f...); },
               [&](const auto& X, const auto& y) { return ntxent_loss(X, y, 0.5, m, nt); });
    NCAOptions nca;
    nca.reduction = kind;
    nca.workspace_bytes = small;
    check_loss("nca_loss, small tiles" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::nca_loss(comm, X, y, m, nca, f...); },
               [&](const auto& X, const auto& y) { return nca_loss(X, y, m, nca); });
    LiftedStructureOptions ls;
    ls.reduction = kind;
    ls.workspace_bytes = small;
    check_loss("generalized_lifted_structure_loss, small tiles" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::generalized_lifted_structure_loss(comm, X, y, m, ls, f...); },
               [&](const auto& X, const auto& y) { return generalized_lifted_structure_loss(X, y, m, ls); });
    if constexpr (std::is_same<Metric, Cosine>::value) {
      CircleOptions ci;
      ci.reduction = kind;
      ci.workspace_bytes = small;
      check_loss("circle_loss, small tiles" + k, b,
                 [&](const auto& X, const auto& y, const auto&... f) { return cd::circle_loss(comm, X, y, m, ci, f...); },
                 [&](const auto& X, const auto& y) { return circle_loss(X, y, m, ci); });
    }
  }
  // The terms are the global batch's on every rank.
  SupConOptions sc;
  sc.workspace_bytes = small;
  const LossResult<S> d = cd::supcon_loss(comm, b.local(), b.local_labels(), 0.5, m, sc);
  const LossResult<S> s = supcon_loss(b.X, b.labels, 0.5, m, sc);
  CHECK(d.terms.size() == s.terms.size());
  if (d.terms.size() == s.terms.size()) check_gradient_close<S>("terms", d.terms, s.terms);
  for (cd::Path path : {cd::detail::path_of<contrastive::detail::MultiSimilarityLoss>(MultiSimilarityOptions{}),
                        cd::detail::path_of<contrastive::detail::CircleLoss>(CircleOptions{}),
                        cd::detail::path_of<contrastive::detail::NCALoss>(NCAOptions{}),
                        cd::detail::path_of<contrastive::detail::GeneralizedLiftedStructureLoss>(LiftedStructureOptions{}),
                        cd::detail::path_of<contrastive::detail::NTXentLabelsLoss>(NTXentOptions{})}) {
    CHECK(path == cd::Path::SharedTiles);
  }
}

TEST_CASE("shared tiles: many small tiles split across the ranks, double, Euclidean", "[mpi]") {
  check_shared_tiles<double, Euclidean>(31);
}

TEST_CASE("shared tiles: many small tiles split across the ranks, double, Cosine", "[mpi]") {
  check_shared_tiles<double, Cosine>(32);
}

TEST_CASE("shared tiles: many small tiles split across the ranks, float, SquaredEuclidean", "[mpi]") {
  check_shared_tiles<float, SquaredEuclidean>(33);
}

template <class S>
void check_class_losses(unsigned seed) {
  Batch<S> b = make_batch<S>(6, seed);
  for (Index i = 0; i < b.labels.size(); ++i) b.labels(i) = b.labels(i) % 5;  // classes 0..4
  RowMatrix<S> W(5, 6), W3(15, 6);
  std::mt19937 rng(seed + 1);
  std::normal_distribution<double> normal;
  for (Index i = 0; i < W.size(); ++i) W.data()[i] = static_cast<S>(normal(rng));
  for (Index i = 0; i < W3.size(); ++i) W3.data()[i] = static_cast<S>(normal(rng));
  const cd::Communicator& comm = world();
  for (Reduction kind : {Reduction::Mean, Reduction::Sum}) {
    const std::string k = kind == Reduction::Mean ? " Mean" : " Sum";
    ArcFaceOptions af;
    af.reduction = kind;
    check_loss("arcface_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::arcface_loss(comm, X, y, W, af, f...); },
               [&](const auto& X, const auto& y) { return arcface_loss(X, y, W, af); });
    CosFaceOptions cf;
    cf.reduction = kind;
    check_loss("cosface_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::cosface_loss(comm, X, y, W, cf, f...); },
               [&](const auto& X, const auto& y) { return cosface_loss(X, y, W, cf); });
    SphereFaceOptions sf;
    sf.reduction = kind;
    check_loss("sphereface_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::sphereface_loss(comm, X, y, W, sf, f...); },
               [&](const auto& X, const auto& y) { return sphereface_loss(X, y, W, sf); });
    SubCenterArcFaceOptions sc;
    sc.reduction = kind;
    sc.sub_centers = 3;
    check_loss("subcenter_arcface_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::subcenter_arcface_loss(comm, X, y, W3, sc, f...); },
               [&](const auto& X, const auto& y) { return subcenter_arcface_loss(X, y, W3, sc); });
    NormalizedSoftmaxOptions ns;
    ns.reduction = kind;
    check_loss("normalized_softmax_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::normalized_softmax_loss(comm, X, y, W, ns, f...); },
               [&](const auto& X, const auto& y) { return normalized_softmax_loss(X, y, W, ns); });
    ProxyNCAOptions pn;
    pn.reduction = kind;
    check_loss("proxy_nca_loss" + k, b,
               [&](const auto& X, const auto& y, const auto&... f) { return cd::proxy_nca_loss(comm, X, y, W, pn, f...); },
               [&](const auto& X, const auto& y) { return proxy_nca_loss(X, y, W, pn); });
  }
  check_loss("proxy_anchor_loss", b,
             [&](const auto& X, const auto& y, const auto&... f) { return cd::proxy_anchor_loss(comm, X, y, W, ProxyAnchorOptions{}, f...); },
             [&](const auto& X, const auto& y) { return proxy_anchor_loss(X, y, W, ProxyAnchorOptions{}); });
  // A label outside W's classes on the last rank: every rank throws, naming it.
  Eigen::VectorXi y = b.local_labels();
  if (comm.rank() == comm.size() - 1) y(0) = 7;
  const RowMatrix<S> X = b.local();
  check_all_throw(__LINE__, [&] { return cd::arcface_loss(comm, X, y, W); },
                  {"rank " + std::to_string(comm.size() - 1) + ":", "labels"});
}

TEST_CASE("distributed class-weight losses: own rows, dL/dW all-reduced", "[mpi]") {
  check_class_losses<double>(61);
  check_class_losses<float>(62);
}

TEST_CASE("distributed margin loss (learned beta) and the two-view losses", "[mpi]") {
  const Batch<double> b = make_batch<double>(6, 71);
  const cd::Communicator& comm = world();
  MarginOptions mo;
  check_loss("margin_loss", b,
             [&](const auto& X, const auto& y, const auto&... f) { return cd::margin_loss(comm, X, y, Euclidean{}, mo, f...); },
             [&](const auto& X, const auto& y) { return margin_loss(X, y, Euclidean{}, mo); });
  const MarginLossResult<double> dm = cd::margin_loss(comm, b.local(), b.local_labels(), Euclidean{}, mo);
  const MarginLossResult<double> sm = margin_loss(b.X, b.labels, Euclidean{}, mo);
  check_gradient_close<double>("margin_loss beta_grad", dm.beta_grad, sm.beta_grad);
  // Two views: the batch and a perturbed copy, row i of each one sample.
  RowMatrix<double> V2 = b.X;
  std::mt19937 rng(72);
  std::normal_distribution<double> normal;
  for (Index i = 0; i < V2.size(); ++i) V2.data()[i] += 0.3 * normal(rng);
  const RowMatrix<double> v1 = b.local(), v2 = V2.middleRows(b.offset, b.rows);
  const auto check_views = [&](const char* name, const LossResult<double>& d, const LossResult<double>& s1) {
    INFO(name << " at " << comm.size() << " processes, rank " << comm.rank());
    check_close<double>("value", d.value, s1.value);
    check_gradient_close<double>("d view1", d.grad[0], s1.grad[0].middleRows(b.offset, b.rows));
    check_gradient_close<double>("d view2", d.grad[1], s1.grad[1].middleRows(b.offset, b.rows));
  };
  check_views("ntxent_loss views", cd::ntxent_loss(comm, v1, v2, 0.5), ntxent_loss(b.X, V2, 0.5));
  check_views("vicreg_loss", cd::vicreg_loss(comm, v1, v2), vicreg_loss(b.X, V2));
  CHECK(cd::vicreg_loss(comm, v1, v2, value_only) == Approx(vicreg_loss(b.X, V2, value_only)).epsilon(1e-12));
  // Views of different row counts on rank 0.
  const RowMatrix<double> short2 = comm.rank() == 0 ? RowMatrix<double>(v2.topRows(v2.rows() - 1)) : v2;
  check_all_throw(__LINE__, [&] { return cd::ntxent_loss(comm, v1, short2, 0.5); }, {"rank 0:", "two views"});
}

TEST_CASE("distributed gradient against central differences of the global loss", "[mpi]") {
  const Batch<double> b = make_batch<double>(4, 31);
  const cd::Communicator& comm = world();
  RowMatrix<double> X = b.local();
  const Eigen::VectorXi y = b.local_labels();
  const auto f = [&](const RowMatrix<double>& Z) { return cd::supcon_loss(comm, Z, y, 0.5, Euclidean{}, value_only); };
  const LossResult<double> r = cd::supcon_loss(comm, X, y, 0.5, Euclidean{});
  const double h = 1e-5;
  double worst = 0;
  // Every rank makes the same calls: owner by owner, three entries each.
  for (int owner = 0; owner < comm.size(); ++owner) {
    for (Index e = 0; e < 3; ++e) {
      const bool mine = owner == comm.rank() && X.rows() > 0;
      const Index i = mine ? e % X.rows() : 0, k = e % X.cols();
      const double x0 = mine ? X(i, k) : 0.0;
      if (mine) X(i, k) = x0 + h;
      const double up = f(X);
      if (mine) X(i, k) = x0 - h;
      const double down = f(X);
      if (mine) {
        X(i, k) = x0;
        const double fd = (up - down) / (2 * h);
        worst = std::max(worst, std::abs(fd - r.grad[0](i, k)) / std::max(max_abs(r.grad[0]), 1e-12));
      }
    }
  }
  INFO("worst central-difference error relative to the gradient's size: " << worst);
  CHECK(worst < 1e-6);
}

TEST_CASE("distributed miners and counters equal the single-process result with global indices", "[mpi]") {
  const Batch<double> b = make_batch<double>(6, 41);
  const cd::Communicator& comm = world();
  const RowMatrix<double> X = b.local();
  const Eigen::VectorXi y = b.local_labels();
  const auto same_triplets = [](const Triplets& a, const Triplets& c) {
    return a.anchor == c.anchor && a.positive == c.positive && a.negative == c.negative;
  };
  const auto same_pairs = [](const Pairs& a, const Pairs& c) {
    return a.first == c.first && a.second == c.second && a.similar == c.similar;
  };
  MineOptions capped;
  capped.max_per_anchor = 2;
  capped.seed = 5;
  CHECK(same_triplets(cd::mine_triplets(comm, X, y, 0.5, NegativeKind::SemiHard | NegativeKind::Hard),
                      mine_triplets(b.X, b.labels, 0.5, NegativeKind::SemiHard | NegativeKind::Hard)));
  CHECK(same_triplets(cd::mine_triplets(comm, X, y, 0.5, NegativeKind::SemiHard | NegativeKind::Hard, capped),
                      mine_triplets(b.X, b.labels, 0.5, NegativeKind::SemiHard | NegativeKind::Hard, capped)));
  CHECK(same_triplets(cd::mine_batch_hard(comm, X, y), mine_batch_hard(b.X, b.labels)));
  CHECK(same_triplets(cd::mine_semihard(comm, X, y), mine_semihard(b.X, b.labels)));
  CHECK(same_triplets(cd::mine_easy_hard(comm, X, y), mine_easy_hard(b.X, b.labels)));
  CHECK(same_pairs(cd::mine_pairs(comm, X, y, 0.5, 1.5), mine_pairs(b.X, b.labels, 0.5, 1.5)));
  CHECK(same_pairs(cd::mine_multi_similarity(comm, X, y, 0.1), mine_multi_similarity(b.X, b.labels, 0.1)));
  const NegativeStats<double> d = cd::negative_stats(comm, X, y, 0.5);
  const NegativeStats<double> s = negative_stats(b.X, b.labels, 0.5);
  CHECK(d.hard == s.hard);
  CHECK(d.semihard == s.semihard);
  CHECK(d.easy == s.easy);
  CHECK(d.hard_per_anchor == s.hard_per_anchor);
  CHECK(d.positive_pairs.mean == s.positive_pairs.mean);
  CHECK(d.negative_pairs.max == s.negative_pairs.max);
}

TEST_CASE("bad input on one rank throws on every rank, naming the rank", "[mpi]") {
  const cd::Communicator& comm = world();
  const int P = comm.size(), me = comm.rank();
  const Batch<double> b = make_batch<double>(6, 51);
  const RowMatrix<double> X = b.local();
  const Eigen::VectorXi y = b.local_labels();
  const int last = P - 1;  // has rows at any P
  if (P >= 2) {
    // Rank `last` has a column too few.
    const RowMatrix<double> Xc = me == last ? RowMatrix<double>(X.leftCols(5)) : X;
    const std::string what = "rank " + std::to_string(last) + ": X has 5 columns; rank 0 has 6";
    check_all_throw(__LINE__, [&] { return cd::supcon_loss(comm, Xc, y, 0.5); }, {"distributed::supcon_loss", what});
    check_all_throw(__LINE__, [&] { return cd::batch_all_triplet_loss(comm, Xc, y); }, {"batch_all_triplet_loss", what});
    check_all_throw(__LINE__, [&] { return cd::mine_batch_hard(comm, Xc, y); }, {"mine_batch_hard", what});
  }
  // Rank 0's labels one too short.
  const Eigen::VectorXi yc = me == 0 ? Eigen::VectorXi(y.head(y.size() - 1)) : y;
  check_all_throw(__LINE__, [&] { return cd::supcon_loss(comm, X, yc, 0.5); }, {"rank 0:", "labels"});
  check_all_throw(__LINE__, [&] { return cd::batch_semihard_triplet_loss(comm, X, yc); }, {"rank 0:", "labels"});
  check_all_throw(__LINE__, [&] { return cd::negative_stats(comm, X, yc, 0.2); }, {"rank 0:", "labels"});
  // A NaN on the last rank.
  RowMatrix<double> Xn = X;
  if (me == last) Xn(0, 2) = std::numeric_limits<double>::quiet_NaN();
  const std::string nan_rank = "rank " + std::to_string(last) + ":";
  check_all_throw(__LINE__, [&] { return cd::batch_hard_triplet_loss(comm, Xn, y); }, {nan_rank, "X"});
  check_all_throw(__LINE__, [&] { return cd::npairs_loss(comm, Xn, y); }, {nan_rank, "X"});
  // A gradient output of the wrong shape on rank 0 (thrown before any collective there).
  // (A Map: a resizable matrix would be resized.)
  std::vector<double> buffer(static_cast<std::size_t>((X.rows() + 1) * X.cols()));
  Eigen::Map<RowMatrix<double>> out(buffer.data(), X.rows() + (me == 0 ? 1 : 0), X.cols());
  check_all_throw(__LINE__, [&] { return cd::supcon_loss(comm, X, y, 0.5, Cosine{}, SupConOptions{}, out); },
                  {"rank 0:", "gradient output 'grad'"});
  // Options every rank gets wrong: every rank named.
  SupConOptions bad;
  check_all_throw(__LINE__, [&] { return cd::supcon_loss(comm, X, y, -1.0, Cosine{}, bad); }, {"rank " + std::to_string(last), "temperature"});
  // Sample weights of the wrong count on the last rank.
  const Eigen::VectorXd w = Eigen::VectorXd::Ones(X.rows() + (me == last ? 1 : 0));
  SupConOptions weighted;
  weighted.reduction = Mean(w);
  check_all_throw(__LINE__, [&] { return cd::supcon_loss(comm, X, y, 0.5, Cosine{}, weighted); }, {nan_rank, "sample weights"});
  // Every rank still agrees afterwards.
  const LossResult<double> r = cd::supcon_loss(comm, X, y, 0.5);
  CHECK(std::isfinite(r.value));
}

}  // namespace
}  // namespace test_mpi_distributed

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  const int failed = Catch::Session().run(argc, argv);
  MPI_Finalize();
  return failed == 0 ? 0 : 1;
}
