# Warnings are errors in the project's own targets (tests, examples, benchmarks).
function(contrastive_strict_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE
      -Wall -Wextra -Wpedantic -Werror -Wshadow -Wconversion -Wsign-conversion
      -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual)
  elseif(MSVC)
    target_compile_options(${target} PRIVATE /W4 /WX)
  endif()
endfunction()

# -march=native for a target that runs on the machine that builds it (the
# benchmarks, the Python module): Eigen's products then use the host's vector
# units (AVX-512 here: about 3x the SSE2 default). GCC 12 flags its own
# AVX-512 intrinsics (the _mm512_undefined_* operands in avx512fintrin.h,
# reached through Eigen's packet code) as maybe-uninitialized once -march
# enables AVX-512 (GCC bug 105593), and the same operands trip -Wuninitialized
# in some inlining contexts: warnings inside the compiler's headers, not ours,
# so they must not fail -Werror there.
function(contrastive_native_arch target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -march=native)
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized -Wno-uninitialized)
    endif()
  endif()
endfunction()
