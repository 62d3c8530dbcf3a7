# Configures, builds and runs one consumer project; for find_package it first
# installs this source tree into a temporary prefix.
# cmake -DMODE=<dir> -DSOURCE=<repo> -DWORK=<scratch dir> [-DGENERATOR=...] -P run_consumer.cmake
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(rc)
    string(REPLACE ";" " " shown "${ARGN}")
    message(FATAL_ERROR "${MODE} consumer: this step failed (${rc}): ${shown}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(extra)
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} -S ${SOURCE} -B ${WORK}/lib-build -DCONTRASTIVE_BUILD_TESTS=OFF
      -DCONTRASTIVE_BUILD_EXAMPLES=OFF -DCONTRASTIVE_BUILD_BENCHMARKS=OFF
      -DCMAKE_INSTALL_PREFIX=${WORK}/prefix)
  run(${CMAKE_COMMAND} --install ${WORK}/lib-build)
  set(extra -DCMAKE_PREFIX_PATH=${WORK}/prefix)
endif()
run(${CMAKE_COMMAND} -S ${SOURCE}/tests/consumers/${MODE} -B ${WORK}/build
    -DCONTRASTIVE_SOURCE_DIR=${SOURCE} ${extra})
run(${CMAKE_COMMAND} --build ${WORK}/build)
run(${WORK}/build/consumer)
message(STATUS "${MODE} consumer: built and ran")
