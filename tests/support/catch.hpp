// Every test includes this instead of Catch2 directly, so the suite is written
// once for Catch2 v2 and v3.
#pragma once

#if defined(CONTRASTIVE_CATCH2_V3)
#include <catch2/catch_all.hpp>
using Catch::Approx;
namespace contrastive_test {
using Catch::Matchers::ContainsSubstring;
}
#else
#include <catch2/catch.hpp>
namespace contrastive_test {
inline Catch::Matchers::StdString::ContainsMatcher ContainsSubstring(const std::string& s) {
  return Catch::Matchers::Contains(s);
}
}  // namespace contrastive_test
#endif

// Asserts that `expr` throws std::invalid_argument whose message contains every given piece.
#define REQUIRE_INVALID_ARGUMENT(expr, ...)                                             \
  do {                                                                                  \
    bool contrastive_threw_ = false;                                                    \
    try {                                                                               \
      (void)(expr);                                                                     \
    } catch (const std::invalid_argument& e) {                                          \
      contrastive_threw_ = true;                                                        \
      for (const char* piece : {__VA_ARGS__}) {                                         \
        INFO("message: " << e.what());                                                  \
        CHECK_THAT(std::string(e.what()), contrastive_test::ContainsSubstring(piece));  \
      }                                                                                 \
    }                                                                                   \
    INFO("expected std::invalid_argument from: " #expr);                                \
    REQUIRE(contrastive_threw_);                                                        \
  } while (false)
