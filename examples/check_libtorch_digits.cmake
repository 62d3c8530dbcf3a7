# ctest driver for the libtorch digits example
# (cmake -DEXE=<libtorch_digits> -DMIN_RECALL=0.98 -DEPOCHS=N -P this):
# a short run must succeed and reach the held-out Recall@1 asked for; an
# unknown flag must fail with the usage text.
cmake_minimum_required(VERSION 3.14)
if(NOT EXE OR NOT MIN_RECALL OR NOT EPOCHS)
  message(FATAL_ERROR "usage: cmake -DEXE=<libtorch_digits> -DMIN_RECALL=<x> -DEPOCHS=<n> -P check_libtorch_digits.cmake")
endif()

execute_process(COMMAND "${EXE}" --no-such-flag 1 RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT err MATCHES "unknown flag '--no-such-flag'.*usage: libtorch_digits")
  message(FATAL_ERROR "libtorch_digits --no-such-flag: expected exit 2 and the usage text, got ${rc}:\n${err}")
endif()

execute_process(COMMAND "${EXE}" --epochs ${EPOCHS} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message(STATUS "${out}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "libtorch_digits --epochs ${EPOCHS} exited with ${rc}:\n${out}\n${err}")
endif()
if(NOT out MATCHES "held-out Recall@1 trained ([0-9]+\\.[0-9]+)")
  message(FATAL_ERROR "libtorch_digits printed no trained Recall@1:\n${out}")
endif()
set(recall ${CMAKE_MATCH_1})
# CMake compares versions digit group by digit group, not decimals: compare integers instead.
string(REGEX REPLACE "^([0-9]+)\\.([0-9]+)$" "\\1" whole "${recall}")
string(REGEX REPLACE "^([0-9]+)\\.([0-9]+)$" "\\2" fraction "${recall}")
string(REGEX REPLACE "^([0-9]+)\\.([0-9]+)$" "\\1" min_whole "${MIN_RECALL}")
string(REGEX REPLACE "^([0-9]+)\\.([0-9]+)$" "\\2" min_fraction "${MIN_RECALL}")
# Pad both fractions to 6 digits.
foreach(var fraction min_fraction)
  string(SUBSTRING "${${var}}000000" 0 6 ${var})
endforeach()
math(EXPR recall_ppm "${whole} * 1000000 + 1${fraction} - 1000000")
math(EXPR min_ppm "${min_whole} * 1000000 + 1${min_fraction} - 1000000")
if(recall_ppm LESS min_ppm)
  message(FATAL_ERROR "libtorch_digits: held-out Recall@1 ${recall} is below ${MIN_RECALL}")
endif()
message(STATUS "libtorch_digits: held-out Recall@1 ${recall} >= ${MIN_RECALL}")
