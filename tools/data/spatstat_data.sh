# spatstat.data's lazy-load database (Debian r-cran-spatstat.data, GPL-2.0-or-later): the `copper` data set
# (Berman 1986: copper deposits and lineaments, Queensland) and the `murchison` data the built-in copy came from.
# Read with geodl_hpc.archive.rdb (a tolerant reader of R lazy-load databases). Sourced by tools/fetch_data.sh
# with $dest set; keeps Rdata.rdb, Rdata.rdx, the Debian copyright file and the .deb's sha256.
tmp=$dest/tmp
mkdir -p "$tmp"
(cd "$tmp" && apt-get download r-cran-spatstat.data=3.0-0-1 >/dev/null 2>&1) || {
  apt-get update >/dev/null 2>&1 || true
  (cd "$tmp" && apt-get download r-cran-spatstat.data=3.0-0-1)
}
deb=$(ls "$tmp"/r-cran-spatstat.data_*.deb)
sha256sum "$deb" | sed "s#$tmp/##" > "$dest/deb.sha256"
dpkg-deb -x "$deb" "$tmp/x"
lib=$tmp/x/usr/lib/R/site-library/spatstat.data
mkdir -p "$dest/data"
cp "$lib/data/Rdata.rdb" "$lib/data/Rdata.rdx" "$dest/data/"
cp "$tmp/x/usr/share/doc/r-cran-spatstat.data/copyright" "$dest/copyright"
rm -rf "$tmp"
