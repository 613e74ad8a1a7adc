#!/usr/bin/env bash
# Create or reuse .venv and install geodl_hpc with the pinned CPU environment; a second run skips what is done.
# Usage: tools/setup_venv.sh [VENV]. On a CUDA cluster, use the version ranges instead:
#   python -m venv .venv && .venv/bin/pip install -e '.[dev]' && tools/build_horovod.sh
set -euo pipefail
venv=${1:-.venv}
constraints=requirements/constraints-cpu.txt
stamp="$venv/.geodl-installed"
want=$(cat pyproject.toml "$constraints" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/geodl" ]; then
  echo "setup: $venv is up to date"
  exit 0
fi
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "geodl_hpc needs Python >= 3.11")'
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip="$venv/bin/pip"
# pip.conf here names find-links folders that may be absent: drop that noise, keep pip's exit status.
quiet_pip() { "$pip" "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }; }
quiet_pip install -q --upgrade pip
# torch first and pinned: an unpinned torch would pull a multi-GB CUDA build here.
quiet_pip install -q "$(grep -E '^torch==' "$constraints")"
quiet_pip install -q -c "$constraints" -e '.[dev]'
"$venv/bin/python" -c 'import geodl_hpc, torch, ray, zarr, xarray, rioxarray, obspy, submitit'
echo "$want" > "$stamp"
echo "setup: $venv ready"
