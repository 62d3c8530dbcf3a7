#!/bin/sh
# Installs the Debian packages the build needs, only those missing.
# Usage: sh cmake/install-debian-deps.sh [extra-package ...]
set -eu
# libtorch-dev: the libtorch adapter's tests, example and benchmark (CONTRASTIVE_WITH_LIBTORCH);
# pybind11-dev python3-pybind11 python3-numpy python3-torch: the Python module (CONTRASTIVE_WITH_PYTHON);
# libopenmpi-dev openmpi-bin: the distributed (MPI) losses' tests and benchmark (CONTRASTIVE_WITH_MPI);
# the library itself needs only Eigen.
need="cmake make g++ libeigen3-dev catch2 libtorch-dev pybind11-dev python3-pybind11 python3-numpy python3-torch libopenmpi-dev openmpi-bin $*"
missing=""
for pkg in $need; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "installing:$missing"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
