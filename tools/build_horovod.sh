#!/usr/bin/env bash
# Build Horovod 0.28.1 (PyTorch + Gloo, CPU ops) into the venv, against the torch already installed there.
# Horovod's CMake forces C++14 and torch >= 2.1 needs C++17 (upstream #3996/#4014); CXXFLAGS is stripped, so a
# compiler launcher appends -std=c++17. Skipped when a build against the same torch version is already present.
# Usage: tools/build_horovod.sh [VENV]   (default .venv). On a GPU cluster set HOROVOD_GPU_OPERATIONS=NCCL first.
set -euo pipefail
venv=${1:-.venv}
py="$venv/bin/python"
torch_version=$("$py" -c 'import torch; print(torch.__version__)')
stamp="$venv/.horovod-torch-version"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$torch_version" ] && "$py" -c 'import horovod.torch' 2>/dev/null; then
  echo "horovod: already built against torch $torch_version"
  exit 0
fi
echo "horovod: building 0.28.1 against torch $torch_version (about 5 minutes on 2 cores)"
launcher=$(mktemp -d)/cxx17
printf '#!/bin/sh\nexec "$@" -std=c++17\n' > "$launcher"
chmod +x "$launcher"
"$venv/bin/pip" uninstall -y -q horovod >/dev/null 2>&1 || true
CMAKE_CXX_COMPILER_LAUNCHER="$launcher" \
MAKEFLAGS="-j$(nproc)" \
HOROVOD_WITH_PYTORCH=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 \
HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_CPU_OPERATIONS=gloo \
  "$venv/bin/pip" install -q --no-cache-dir --no-build-isolation horovod==0.28.1
"$py" -c 'import horovod.torch as hvd; hvd.init(); assert hvd.size() == 1'
echo "$torch_version" > "$stamp"
echo "horovod: built and imported"
