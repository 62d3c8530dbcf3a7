// Fuzz target: the negative classifier and the miners. classify_negative
// (both conventions), classify_negative_absolute, negative_stats,
// mine_triplets, mine_pairs, mine_batch_hard, mine_semihard, mine_easy_hard,
// in their batch and reference-set forms, every metric, float and double.
// Properties: fuzz_support.hpp (no crash, only invalid_argument, and only for
// invalid input), plus: every index in range and every triplet / pair valid
// for its labels; for bounded input, negative_stats counts every valid
// triplet exactly once, matches a brute-force classification of the same
// distance matrix, and mine_triplets returns exactly the counted triplets of
// the requested kinds (at most max_per_anchor per anchor when capped).
#include "fuzz_support.hpp"

using namespace contrastive;
using namespace contrastive_fuzz;

namespace {

constexpr Index kMaxRows = 16;
constexpr Index kMaxCols = 6;

template <class Scalar>
Expect embeddings_expect(const RowMatrix<Scalar>& X, const Domain& dom) {
  if (!dom.finite || (X.rows() > 0 && X.cols() == 0)) return Expect::Invalid;
  // Rows beyond max_embedding_norm are rejected too; unbounded values may be either.
  if (!dom.bounded) return Expect::Either;
  return Expect::Valid;
}

// Labels of the rows that positives / negatives are drawn from.
struct Sides {
  const Eigen::VectorXi* anchors;
  const Eigen::VectorXi* refs;  // the batch labels again in the batch form
  bool batch;
};

void check_triplets(const char* name, const Triplets& t, const Sides& s) {
  if (t.positive.size() != t.anchor.size() || t.negative.size() != t.anchor.size()) {
    violated(std::string(name) + ": ragged Triplets");
  }
  const Index na = s.anchors->size(), nr = s.refs->size();
  for (std::size_t k = 0; k < t.anchor.size(); ++k) {
    const Index a = t.anchor[k], p = t.positive[k], n = t.negative[k];
    if (a < 0 || a >= na || p < 0 || p >= nr || n < 0 || n >= nr) violated(std::string(name) + ": index out of range");
    if ((*s.anchors)(a) != (*s.refs)(p)) violated(std::string(name) + ": positive with another label");
    if ((*s.anchors)(a) == (*s.refs)(n)) violated(std::string(name) + ": negative with the anchor's label");
    if (s.batch && a == p) violated(std::string(name) + ": anchor is its own positive");
  }
}

NegativeKinds kinds_from(int bits) {
  NegativeKinds k;
  if (bits & 1) k = k | NegativeKind::Hard;
  if (bits & 2) k = k | NegativeKind::SemiHard;
  if (bits & 4) k = k | NegativeKind::Easy;
  return k;
}

double pair_margin(Input& in, Expect& expect) {
  static const double values[] = {0.0, 0.1, 0.5, 1.0, 2.0, -0.5};
  const int k = in.byte() % 8;
  if (k < 6) return values[k];
  expect = Expect::Invalid;
  return k == 6 ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
}

template <class Scalar, class Metric>
void fuzz_classifier(Input& in) {
  Expect expect = Expect::Valid;
  const Scalar d_ap = in.value<Scalar>(in.flag());
  const Scalar d_an = in.value<Scalar>(in.flag());
  if (in.flag()) {
    if (!std::isfinite(d_ap) || !std::isfinite(d_an)) expect = Expect::Invalid;
    const double m = in.margin(true, expect);
    const TieConvention c = in.flag() ? TieConvention::Library : TieConvention::PytorchMetricLearning;
    NegativeKind kind = NegativeKind::Easy;
    if (run_expecting("classify_negative", expect, [&] { kind = classify_negative(d_ap, d_an, m, c); })) {
      const Scalar margin = static_cast<Scalar>(m);
      // The triplet losses' hinge is positive exactly for hard and semi-hard
      // (library convention), at every scale: both compute (d_ap - d_an) + m.
      const bool active = detail::triplet_term<Scalar>(d_ap, d_an, margin, false).value > Scalar(0);
      if (c == TieConvention::Library && std::isfinite(d_ap - d_an) && active != (kind != NegativeKind::Easy)) {
        violated("classify_negative: easy does not coincide with zero hinge loss");
      }
    }
  } else {  // the absolute form reads d_an only
    if (!std::isfinite(d_an)) expect = Expect::Invalid;
    const double pos = pair_margin(in, expect);
    const double neg = pair_margin(in, expect);
    if (expect == Expect::Valid && pos > neg) expect = Expect::Invalid;
    run_expecting("classify_negative_absolute", expect, [&] { (void)classify_negative_absolute(d_an, pos, neg); });
  }
}

template <class Scalar, class Metric>
void fuzz(Input& in) {
  if (in.byte() % 8 == 0) return fuzz_classifier<Scalar, Metric>(in);
  Domain dom;
  const RowMatrix<Scalar> X = in.matrix<Scalar>(dom, kMaxRows, kMaxCols);
  Expect expect = embeddings_expect(X, dom);
  const Eigen::VectorXi labels = in.labels(X.rows(), expect);
  const bool reference = in.byte() % 3 == 0;
  Domain dr;
  RowMatrix<Scalar> R;
  Eigen::VectorXi ref_labels;
  ReferenceOptions ropt;
  if (reference) {
    const bool same = in.byte() % 4 == 0;
    R = same ? X : in.matrix<Scalar>(dr, kMaxRows, kMaxCols, -1, in.byte() % 8 != 0 ? X.cols() : -1);
    if (same) dr = dom;
    ref_labels = same ? labels : in.labels(R.rows(), expect);
    expect = combine(expect, embeddings_expect(R, dr));
    if (R.cols() != X.cols() && X.rows() > 0 && R.rows() > 0) expect = Expect::Invalid;
    ropt.block_rows = static_cast<Index>(in.byte() % 5);
    ropt.exclude_same_index = in.byte() % 4 == 0;
    if (ropt.exclude_same_index && R.rows() != X.rows()) expect = Expect::Invalid;
  }
  const Sides sides{&labels, reference ? &ref_labels : &labels, !reference};
  const bool bounded = dom.bounded && (!reference || dr.bounded);
  const TieConvention convention = in.flag() ? TieConvention::Library : TieConvention::PytorchMetricLearning;

  switch (in.byte() % 5) {
    case 0: {  // negative_stats and mine_triplets, cross-checked
      const double margin = in.margin(true, expect);
      NegativeStats<Scalar> stats;
      const bool ok = run_expecting("negative_stats", expect, [&] {
        stats = reference ? negative_stats<Metric>(X, labels, R, ref_labels, margin, convention, ropt)
                          : negative_stats<Metric>(X, labels, margin, convention);
      });
      if (!ok) return;
      if (static_cast<Index>(stats.hard_per_anchor.size()) != X.rows()) violated("negative_stats: per-anchor size");
      MineOptions mo;
      mo.convention = convention;
      mo.max_per_anchor = static_cast<Index>(in.byte() % 4);
      mo.seed = in.byte();
      const NegativeKinds kinds = kinds_from(in.byte() % 8);
      Triplets t;
      if (run_expecting("mine_triplets", kinds.empty() ? Expect::Invalid : Expect::Valid, [&] {
            t = reference ? mine_triplets<Metric>(X, labels, R, ref_labels, margin, kinds, mo, ropt)
                          : mine_triplets<Metric>(X, labels, margin, kinds, mo);
          })) {
        check_triplets("mine_triplets", t, sides);
        if (mo.max_per_anchor > 0) {
          std::vector<Index> per(static_cast<std::size_t>(X.rows()), 0);
          for (Index a : t.anchor)
            if (++per[static_cast<std::size_t>(a)] > mo.max_per_anchor) violated("mine_triplets: cap exceeded");
        }
        if (!bounded || reference) break;
        // Batch form, bounded input: exact counts against a brute-force pass over the same distances.
        const RowMatrix<Scalar> D = pairwise_distance<Metric>(X);
        Index counts[3] = {0, 0, 0};
        for (Index a = 0; a < X.rows(); ++a)
          for (Index p = 0; p < X.rows(); ++p) {
            if (p == a || labels(p) != labels(a)) continue;
            for (Index n = 0; n < X.rows(); ++n) {
              if (labels(n) == labels(a)) continue;
              const NegativeKind k = classify_negative(D(a, p), D(a, n), margin, convention);
              ++counts[k == NegativeKind::Hard ? 0 : k == NegativeKind::SemiHard ? 1 : 2];
            }
          }
        if (counts[0] != stats.hard || counts[1] != stats.semihard || counts[2] != stats.easy) {
          violated("negative_stats: counts differ from a brute-force classification");
        }
        if (mo.max_per_anchor == 0) {
          const Index expected = (kinds.contains(NegativeKind::Hard) ? counts[0] : 0) +
                                 (kinds.contains(NegativeKind::SemiHard) ? counts[1] : 0) +
                                 (kinds.contains(NegativeKind::Easy) ? counts[2] : 0);
          if (t.size() != expected) violated("mine_triplets: not every counted triplet of the requested kinds");
        }
      }
      break;
    }
    case 1: {
      const double pos = pair_margin(in, expect);
      const double neg = pair_margin(in, expect);
      Pairs p;
      if (run_expecting("mine_pairs", expect, [&] {
            p = reference ? mine_pairs<Metric>(X, labels, R, ref_labels, pos, neg, ropt)
                          : mine_pairs<Metric>(X, labels, pos, neg);
          })) {
        if (p.second.size() != p.first.size() || p.similar.size() != p.first.size()) violated("mine_pairs: ragged Pairs");
        for (std::size_t k = 0; k < p.first.size(); ++k) {
          const Index a = p.first[k], b = p.second[k];
          if (a < 0 || a >= X.rows() || b < 0 || b >= sides.refs->size()) violated("mine_pairs: index out of range");
          if ((labels(a) == (*sides.refs)(b)) != (p.similar[k] == 1)) violated("mine_pairs: similar flag wrong");
          if (!reference && a == b) violated("mine_pairs: a row paired with itself");
        }
      }
      break;
    }
    case 2: {
      Triplets t;
      if (run_expecting("mine_batch_hard", expect, [&] {
            t = reference ? mine_batch_hard<Metric>(X, labels, R, ref_labels, ropt) : mine_batch_hard<Metric>(X, labels);
          })) {
        check_triplets("mine_batch_hard", t, sides);
        if (t.size() > X.rows()) violated("mine_batch_hard: more than one triplet per anchor");
      }
      break;
    }
    case 3: {
      Triplets t;
      if (run_expecting("mine_semihard", expect, [&] {
            t = reference ? mine_semihard<Metric>(X, labels, R, ref_labels, ropt) : mine_semihard<Metric>(X, labels);
          })) {
        check_triplets("mine_semihard", t, sides);
      }
      break;
    }
    default: {
      EasyHardOptions o;
      o.positive = static_cast<MiningStrategy>(in.byte() % 3);
      o.negative = static_cast<MiningStrategy>(in.byte() % 3);
      if (in.byte() % 4 == 0) {
        o.positive_min = in.value<double>(false);
        o.positive_max = in.value<double>(false);
        o.negative_min = in.value<double>(true);
        o.negative_max = in.value<double>(false);
        const double b[] = {o.positive_min, o.positive_max, o.negative_min, o.negative_max};
        for (double v : b)
          if (std::isnan(v)) expect = Expect::Invalid;
        if (o.positive_min > o.positive_max || o.negative_min > o.negative_max) expect = Expect::Invalid;
      }
      Triplets t;
      if (run_expecting("mine_easy_hard", expect, [&] {
            t = reference ? mine_easy_hard<Metric>(X, labels, R, ref_labels, o, ropt) : mine_easy_hard<Metric>(X, labels, o);
          })) {
        check_triplets("mine_easy_hard", t, sides);
        if (t.size() > X.rows()) violated("mine_easy_hard: more than one triplet per anchor");
      }
      break;
    }
  }
}

template <class Scalar>
void fuzz_scalar(Input& in, int metric) {
  switch (metric) {
    case 0: fuzz<Scalar, Euclidean>(in); break;
    case 1: fuzz<Scalar, SquaredEuclidean>(in); break;
    default: fuzz<Scalar, Cosine>(in); break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  const int select = in.byte();
  if (select & 1) {
    fuzz_scalar<double>(in, (select >> 1) % 3);
  } else {
    fuzz_scalar<float>(in, (select >> 1) % 3);
  }
  return 0;
}
