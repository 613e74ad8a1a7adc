# ShakeMap input files (USGS, public domain) shipped in the esi-shakelib sdist's tests (PyPI): Northridge 1994
# (DYFI ZIP-code intensities, historical intensities, event, fault), Calexico 2010 (DYFI, stations, event, fault),
# Wenchuan 2008 (stations, event, fault) and Gorkha 2015 (nepal_dat.xml: event + stations + DYFI).
# The sdist is only unpacked, never installed (its git-derived version is pinned for pip's metadata step); keeps the files below plus LICENSE.md / DISCLAIMER.md and SOURCES.txt.
# Sourced by tools/fetch_data.sh with $dest and $venv set.
tmp=$dest/tmp
mkdir -p "$tmp"
SETUPTOOLS_SCM_PRETEND_VERSION=1.2.1 "$venv/bin/pip" download -q --no-deps --no-binary :all: esi-shakelib==1.2.1 -d "$tmp" 2>&1 \
  | { grep -v '^WARNING: Location' || true; }
sdist=$(ls "$tmp"/esi[-_]shakelib-1.2.1.tar.gz)
"$venv/bin/python" - "$sdist" "$dest" <<'PY'
import hashlib, sys, tarfile
from pathlib import Path
sdist, dest = Path(sys.argv[1]), Path(sys.argv[2])
sd, ut = "tests/station_data", "tests/utils/utils_data"
keep = {
    "northridge": {"event.xml": f"{sd}/northridge/input/event.xml", "dyfi_dat.xml": f"{sd}/northridge/input/dyfi_dat.xml",
                   "hist_dat.xml": f"{sd}/northridge/input/hist_dat.xml",
                   "fault.txt": f"{sd}/northridge/input/northridge_fault.txt"},
    "calexico": {"event.xml": f"{sd}/Calexico/input/event.xml", "dyfi_dat.xml": f"{sd}/Calexico/input/ciim3_dat.xml",
                 "stationlist_dat.xml": f"{sd}/Calexico/input/stationlist_dat.xml",
                 "fault.txt": f"{sd}/Calexico/input/wei_fault.txt"},
    "wenchuan": {"event.xml": f"{ut}/event_wenchuan.xml", "stationlist_dat.xml": f"{sd}/wenchuan/input/stationlist.xml",
                 "fault.txt": f"{sd}/wenchuan/input/Hartzell11_fault.txt"},
    "gorkha": {"nepal_dat.xml": f"{ut}/nepal_dat.xml"},
    ".": {"LICENSE.md": "LICENSE.md", "DISCLAIMER.md": "DISCLAIMER.md"},
}
with tarfile.open(sdist) as tf:
    root = tf.getnames()[0].split("/")[0]
    lines = [f"esi-shakelib 1.2.1 sdist from PyPI, sha256 {hashlib.sha256(sdist.read_bytes()).hexdigest()}"]
    for folder, files in keep.items():
        (dest / folder).mkdir(exist_ok=True)
        for name, member in files.items():
            fh = tf.extractfile(f"{root}/{member}")
            if fh is None:
                raise SystemExit(f"shakelib.sh: {member} missing from {sdist.name}")
            (dest / folder / name).write_bytes(fh.read())
            lines.append(f"{folder}/{name} <- {member}")
(dest / "SOURCES.txt").write_text("\n".join(lines) + "\n")
PY
rm -rf "$tmp"
