"""ShakeMap readers: station lists, events, ruptures, distances, the Worden et al. (2012) conversion, real files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from geodl_hpc.archive import shakemap
from geodl_hpc.errors import InputDataError

STATIONS = """<?xml version="1.0"?>
<shakemap-data><earthquake id="t1" lat="34.0" lon="-118.0" mag="6.5" year="2001" month="2" day="3" hour="4"
 minute="5" second="6" timezone="GMT" depth="10" locstring="Test"/>
<stationlist created="0">
<station code="91042" name="ZIP" insttype="USGS (Did You Feel It?)" lat="34.1" lon="-118.0" netid="CIIM"
 intensity="5.5"><comp name="DERIVED"><acc value="9.0"/><vel value="3.0"/></comp></station>
<station code="A" name="a" insttype="UNK" lat="34.0" lon="-118.2" netid="CI">
 <comp name="HNZ"><acc value="90"/><vel value="100"/></comp>
 <comp name="HNE"><acc value="5"/><vel value="10"/></comp>
 <comp name="HNN"><acc value="4"/><vel value="8"/></comp></station>
<station code="B" name="b" insttype="UNK" lat="34.0" lon="-118.3" netid="CEA">
 <comp name="N"><pga value="9.80665" flag="0"/></comp></station>
<station code="C" name="c" insttype="UNK" lat="34.0" lon="-118.4" netid="CI">
 <comp name="HNE"><acc value="5" flag="1"/></comp></station>
</stationlist></shakemap-data>
"""


def test_stations_kinds_and_worden2012(tmp_path: Path) -> None:
    path = tmp_path / "s.xml"
    path.write_text(STATIONS)
    table = shakemap.read_stations(path)
    assert list(table["code"]) == ["CIIM.91042", "CI.A", "CEA.B"]  # C: flagged, no usable motion
    dyfi, inst, pga_only = table.to_dict("records")
    assert dyfi["kind"] == "macroseismic" and dyfi["mmi"] == 5.5 and np.isnan(dyfi["pgv_cms"])
    # peak horizontal PGV 10 cm/s (the vertical 100 is ignored): log10 = 1 > t1 -> 2.89 + 3.16
    assert inst["pgv_cms"] == 10 and inst["mmi"] == pytest.approx(6.05)
    # 9.80665 %g = 96.17 cm/s^2: log10 = 1.983 > t1 = 1.57, the upper branch
    assert pga_only["mmi_source"] == "Worden2012(PGA)"
    assert pga_only["mmi"] == pytest.approx(-1.60 + 3.70 * np.log10(9.80665 * 9.80665), abs=1e-6)


def test_worden2012_is_continuous_at_its_breaks() -> None:
    for imt, c in shakemap.WORDEN2012.items():
        below, above = shakemap.worden2012_mmi(10 ** np.array([c["t1"] - 1e-9, c["t1"] + 1e-9]), imt)
        assert above == pytest.approx(below, abs=0.02)


def test_event_both_layouts_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "s.xml"
    path.write_text(STATIONS)
    event = shakemap.read_event(path)
    assert (event.mag, event.depth_km, event.time) == (6.5, 10.0, "2001-02-03T04:05:06Z")
    bad = tmp_path / "bad.xml"
    bad.write_text('<earthquake id="x" lat="north" lon="1" mag="5" depth="1"/>')
    with pytest.raises(InputDataError, match="'lat' is 'north'"):
        shakemap.read_event(bad)


def test_rupture_distance_is_zero_on_the_fault(tmp_path: Path) -> None:
    fault = tmp_path / "f.txt"
    fault.write_text("#c\n>\n-118.1 34.0 0\n-117.9 34.0 0\n-117.9 34.0 15\n-118.1 34.0 15\n-118.1 34.0 0\n")
    event = shakemap.ShakeEvent("e", 34.0, -118.0, 10.0, 6.5, "", "")
    rupture = shakemap.read_rupture(fault)
    d = shakemap.distances(event, np.array([-118.0, -118.0]), np.array([34.0, 35.0]), rupture)
    assert d["rrup_km"][0] == pytest.approx(0.0, abs=0.5) and d["rhypo_km"][0] == pytest.approx(10.0)
    assert d["rrup_km"][1] == pytest.approx(111.2, abs=1.0)
    with pytest.raises(InputDataError, match=r"f\.txt:2"):
        fault.write_text(">\nnot numbers\n")
        shakemap.read_rupture(fault)


def test_real_events_and_point_archive(tmp_path: Path) -> None:
    events, table = shakemap.load_events(max_repi_km=1e5)
    counts = table[table.kind == "macroseismic"].groupby("event").size().to_dict()
    assert counts["northridge"] == 547 and counts["calexico"] == 945
    assert events["gorkha"].mag == 7.8 and events["wenchuan"].mag == 7.9
    assert (table["rrup_km"] <= table["rhypo_km"] + 1e-9).all() and table["mmi"].between(1, 10).all()
    out = shakemap.write_points(tmp_path / "points.parquet", events, table)
    meta = json.loads(pq.read_schema(out).metadata[b"geodl"])
    assert "U.S. Geological Survey" in meta["provenance"]["attribution"] and "Worden" in meta["provenance"]["gmice"]
    assert pq.read_table(out).num_rows == len(table)
