// What every fuzz target shares: turning the fuzzer's bytes into shapes,
// values, labels and options, and the properties every public call must keep.
//
//   - no crash and no sanitizer report (the build adds ASan + UBSan);
//   - invalid input (non-finite value, shape or length mismatch, invalid
//     option) throws std::invalid_argument whose message starts with
//     "contrastive::", and nothing else; valid input does not throw;
//   - for valid input whose values are bounded (|x| <= bound<Scalar>(), so
//     the exact result is representable) value and gradient are finite;
//   - the value-only call returns exactly the full call's value, and the
//     buffer form writes exactly the full call's gradient; a throwing call,
//     or a wrong-shaped buffer, leaves the caller's buffer untouched.
// A broken property prints what broke and aborts, so libFuzzer saves the input.
#pragma once

#include <contrastive/contrastive.hpp>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace contrastive_fuzz {

using contrastive::Index;
using contrastive::RowMatrix;
using contrastive::Vector;

[[noreturn]] inline void violated(const std::string& what) {
  std::fprintf(stderr, "\nFUZZ PROPERTY VIOLATED: %s\n", what.c_str());
  std::abort();
}

// Largest magnitude for which results must be finite: squared distances of
// 16-column rows, squared again by a loss, stay below the scalar's maximum.
template <class Scalar>
constexpr double bound() {
  return sizeof(Scalar) == sizeof(float) ? 1e8 : 1e60;
}

// What the generated inputs turned out to be.
struct Domain {
  bool finite = true;   // no NaN / Inf anywhere
  bool bounded = true;  // every |value| <= bound (implies finite)
  template <class Scalar>
  void note(Scalar v) {
    if (!std::isfinite(v)) {
      finite = false;
      bounded = false;
    } else if (std::fabs(static_cast<double>(v)) > bound<Scalar>()) {
      bounded = false;
    }
  }
};

enum class Expect { Valid, Invalid, Either };

inline Expect combine(Expect a, Expect b) {
  if (a == Expect::Invalid || b == Expect::Invalid) return Expect::Invalid;
  if (a == Expect::Either || b == Expect::Either) return Expect::Either;
  return Expect::Valid;
}

// The fuzzer's bytes, read front to back; past the end every read is 0.
class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  bool flag() { return (byte() & 1) != 0; }
  // Uniform-ish in [lo, hi] for small ranges.
  int range(int lo, int hi) { return lo + static_cast<int>(byte() % static_cast<unsigned>(hi - lo + 1)); }
  std::uint64_t bits(std::size_t bytes) {
    std::uint64_t v = 0;
    for (std::size_t k = 0; k < bytes; ++k) v = (v << 8) | byte();
    return v;
  }

  // One value: mostly moderate numbers, otherwise the extremes that break
  // numerics (signed zeros, tiny, denormal, huge, max, NaN, Inf, raw bits).
  template <class Scalar>
  Scalar value(bool clean) {
    using L = std::numeric_limits<Scalar>;
    const bool is_float = sizeof(Scalar) == sizeof(float);
    const int kind = clean ? byte() % 16 : byte() % 32;
    if (kind < 16) {
      const auto raw = static_cast<std::int16_t>(static_cast<std::uint16_t>(bits(2)));
      return static_cast<Scalar>(raw) / Scalar(256);
    }
    switch (kind) {
      case 16: return Scalar(0);
      case 17: return -Scalar(0);
      case 18: return Scalar(1);
      case 19: return Scalar(-1);
      case 20: return static_cast<Scalar>(is_float ? 1e-20 : 1e-200);
      case 21: return L::denorm_min();
      case 22: return L::min() / Scalar(4);
      case 23: return static_cast<Scalar>(is_float ? 1e7 : 1e50);
      case 24: return L::max();
      case 25: return -L::max() / Scalar(2);
      case 26: return L::quiet_NaN();
      case 27: return L::infinity();
      case 28: return -L::infinity();
      case 29: {
        Scalar v;
        if (is_float) {
          const auto b = static_cast<std::uint32_t>(bits(4));
          std::memcpy(&v, &b, sizeof v);
        } else {
          const std::uint64_t b = bits(8);
          std::memcpy(&v, &b, sizeof v);
        }
        return v;
      }
      case 30: return static_cast<Scalar>(1e-3);
      default: return static_cast<Scalar>(is_float ? 1e-30 : 1e-300);
    }
  }

  // An embedding matrix of up to max_rows x max_cols (0 allowed for both),
  // with duplicated, near-duplicated, zero and scaled rows.
  template <class Scalar>
  RowMatrix<Scalar> matrix(Domain& dom, Index max_rows, Index max_cols, Index rows = -1, Index cols = -1) {
    if (rows < 0) rows = static_cast<Index>(byte()) % (max_rows + 1);
    if (cols < 0) cols = static_cast<Index>(byte()) % (max_cols + 1);
    const bool clean = byte() % 4 != 0;  // three quarters of matrices hold moderate values only
    RowMatrix<Scalar> X(rows, cols);
    for (Index i = 0; i < rows; ++i)
      for (Index j = 0; j < cols; ++j) X(i, j) = value<Scalar>(clean);
    const int ops = byte() % 5;
    for (int k = 0; k < ops && rows > 0; ++k) {
      const Index i = static_cast<Index>(byte()) % rows;
      const Index j = static_cast<Index>(byte()) % rows;
      switch (byte() % 4) {
        case 0: X.row(i) = X.row(j); break;  // coincident rows
        case 1: X.row(i).setZero(); break;   // zero vector
        case 2:                              // near duplicate
          X.row(i) = X.row(j);
          if (cols > 0) X(i, static_cast<Index>(byte()) % cols) += static_cast<Scalar>(1e-4);
          break;
        default: X.row(i) = X.row(j) * value<Scalar>(true); break;  // parallel rows
      }
    }
    // A global scale: the 1e-6 / 1e6 cases of the robustness table.
    switch (byte() % 4) {
      case 1: X *= static_cast<Scalar>(1e-6); break;
      case 2: X *= static_cast<Scalar>(1e6); break;
      default: break;
    }
    for (Index i = 0; i < X.size(); ++i) dom.note(X.data()[i]);
    return X;
  }

  // Labels for n rows: all equal, all distinct, few classes, or extreme values;
  // sometimes of the wrong length (then `expect` becomes Invalid).
  Eigen::VectorXi labels(Index n, Expect& expect) {
    Index len = n;
    if (byte() % 16 == 0) {
      len = n + (flag() ? 1 : -1);
      if (len < 0) len = 1;
      if (len != n) expect = combine(expect, Expect::Invalid);
    }
    Eigen::VectorXi l(len);
    const int mode = byte() % 6;
    for (Index i = 0; i < len; ++i) {
      switch (mode) {
        case 0: l(i) = 7; break;                                  // a single class
        case 1: l(i) = static_cast<int>(i); break;                // all distinct
        case 2: l(i) = -static_cast<int>(byte() % 3); break;      // negative
        case 3: {                                                 // extremes
          const int pick = byte() % 3;
          l(i) = pick == 0 ? std::numeric_limits<int>::min()
                           : pick == 1 ? std::numeric_limits<int>::max() : 0;
          break;
        }
        default: l(i) = byte() % 4; break;                        // a few classes
      }
    }
    return l;
  }

  // A margin-like option: valid ones (>= 0, finite) and invalid ones.
  double margin(bool zero_valid, Expect& expect) {
    static const double valid[] = {0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 1e-9, 1e6};
    const int k = byte() % 12;
    if (k < 8) return valid[k];
    double m = 0;
    switch (k) {
      case 8: m = 0.0; break;
      case 9: m = -0.5; break;
      case 10: m = std::numeric_limits<double>::quiet_NaN(); break;
      default: m = std::numeric_limits<double>::infinity(); break;
    }
    if (m == 0.0 && zero_valid) return m;
    // 0 where a positive value is required, and every negative or non-finite value.
    expect = combine(expect, m == 0.0 ? Expect::Either : Expect::Invalid);
    return m;
  }

  double temperature(Expect& expect) {
    static const double valid[] = {0.07, 0.1, 0.5, 1.0, 0.01, 10.0, 1e-3};
    const int k = byte() % 10;
    if (k < 7) return valid[k];
    expect = combine(expect, Expect::Invalid);
    return k == 7 ? 0.0 : k == 8 ? -0.1 : std::numeric_limits<double>::quiet_NaN();
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

inline bool finite(float v) { return std::isfinite(v); }
inline bool finite(double v) { return std::isfinite(v); }

template <class Derived>
bool finite(const Eigen::DenseBase<Derived>& m) {
  return m.derived().allFinite();
}

inline bool same_bits(const void* a, const void* b, std::size_t n) { return std::memcmp(a, b, n) == 0; }

template <class Scalar>
bool same_value(Scalar a, Scalar b) {
  return same_bits(&a, &b, sizeof(Scalar)) || (std::isnan(a) && std::isnan(b));
}

// Runs `call`; checks it throws exactly when expected, and only invalid_argument.
// Returns true when it returned normally.
template <class Call>
bool run_expecting(const char* name, Expect expect, Call&& call) {
  try {
    call();
  } catch (const std::invalid_argument& e) {
    if (expect == Expect::Valid) violated(std::string(name) + ": valid input rejected: " + e.what());
    if (std::strncmp(e.what(), "contrastive::", 13) != 0) {
      violated(std::string(name) + ": message does not name the function: " + e.what());
    }
    return false;
  } catch (const std::exception& e) {
    violated(std::string(name) + ": threw something other than std::invalid_argument: " + e.what());
  } catch (...) {
    violated(std::string(name) + ": threw a non-std exception");
  }
  if (expect == Expect::Invalid) violated(std::string(name) + ": invalid input accepted");
  return true;
}

// Caller-owned gradient buffers (row-major Maps over std::vector) filled
// with a sentinel, so writes after a failed call are detectable.
template <class Scalar>
struct Buffers {
  std::vector<std::vector<Scalar>> storage;
  std::vector<Eigen::Map<RowMatrix<Scalar>>> maps;

  template <std::size_t K>
  explicit Buffers(const std::array<std::pair<Index, Index>, K>& shapes) {
    storage.reserve(K);
    for (const auto& s : shapes) {
      storage.emplace_back(static_cast<std::size_t>(s.first * s.second), sentinel());
      maps.emplace_back(storage.back().data(), s.first, s.second);
    }
  }
  static Scalar sentinel() { return static_cast<Scalar>(-12345.5); }
  bool untouched() const {
    for (const auto& st : storage)
      for (Scalar v : st)
        if (!same_value(v, sentinel())) return false;
    return true;
  }
};

// The three forms of a loss call against each other and the properties above.
// full() -> LossResult, value() -> Scalar, into(maps) -> Scalar.
template <class Scalar, std::size_t K, class Full, class ValueOnly, class Into>
void check_loss(const char* name, Expect expect, bool bounded,
                const std::array<std::pair<Index, Index>, K>& shapes, bool wrong_shape, Full&& full,
                ValueOnly&& value, Into&& into) {
  contrastive::LossResult<Scalar> result;
  const bool ok = run_expecting(name, expect, [&] { result = full(); });
  Scalar v = 0;
  const bool ok_value = run_expecting(name, ok ? Expect::Valid : Expect::Invalid, [&] { v = value(); });
  (void)ok_value;
  if (ok) {
    if (!same_value(v, result.value)) violated(std::string(name) + ": value-only call differs from the full call");
    if (result.grad.size() != K) violated(std::string(name) + ": wrong number of gradients");
    for (std::size_t k = 0; k < K; ++k) {
      if (result.grad[k].rows() != shapes[k].first || result.grad[k].cols() != shapes[k].second) {
        violated(std::string(name) + ": gradient " + std::to_string(k) + " has the wrong shape");
      }
    }
    if (expect == Expect::Valid && bounded) {
      if (!finite(result.value)) violated(std::string(name) + ": non-finite value for bounded finite input");
      for (const auto& g : result.grad)
        if (!finite(g)) violated(std::string(name) + ": non-finite gradient for bounded finite input");
      if (!finite(result.terms)) violated(std::string(name) + ": non-finite terms for bounded finite input");
    }
  }
  // Buffer form, with the right shapes.
  {
    Buffers<Scalar> buffers(shapes);
    Scalar w = 0;
    const bool ok_into = run_expecting(name, ok ? Expect::Valid : Expect::Invalid, [&] { w = into(buffers.maps); });
    if (ok_into) {
      if (!same_value(w, result.value)) violated(std::string(name) + ": buffer-form value differs from the full call");
      for (std::size_t k = 0; k < K; ++k) {
        const auto& g = result.grad[k];
        if (g.size() > 0 && !same_bits(g.data(), buffers.storage[k].data(), sizeof(Scalar) * static_cast<std::size_t>(g.size()))) {
          violated(std::string(name) + ": buffer-form gradient differs from the full call");
        }
      }
    } else if (!buffers.untouched()) {
      violated(std::string(name) + ": a throwing call wrote into the caller's buffer");
    }
  }
  // A buffer one row too many must throw and stay untouched.
  if (wrong_shape) {
    std::array<std::pair<Index, Index>, K> bad = shapes;
    bad[K - 1].first += 1;
    Buffers<Scalar> buffers(bad);
    run_expecting(name, Expect::Invalid, [&] { into(buffers.maps); });
    if (!buffers.untouched()) violated(std::string(name) + ": a wrong-shaped buffer was written");
  }
}

}  // namespace contrastive_fuzz
