"""Quick-look PNGs of archives: one panel per raster layer (label points on top), or waveforms with picks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from geodl_hpc.archive.store import archive_kind, require_complete
from geodl_hpc.errors import ArchiveError


def _figure_module() -> object:
    import matplotlib

    matplotlib.use("Agg")  # file output only; no display on cluster nodes
    import matplotlib.pyplot as plt

    return plt


def _is_count_layer(name: str, attrs: dict[str, object]) -> bool:
    return name.endswith("_count") or attrs.get("units") == "count"


def plot_raster_stack(path: Path, png: Path, *, max_pixels: int = 1_000_000) -> Path:
    """Map every layer of a raster stack (decimated to about ``max_pixels``) into one PNG."""
    import xarray as xr

    require_complete(path, "raster")
    plt = _figure_module()
    ds = xr.open_zarr(path, consolidated=False)
    layers = list(ds.attrs.get("layers") or [v for v in ds.data_vars if v != "spatial_ref"])
    step = max(1, math.ceil(math.sqrt(ds.sizes["y"] * ds.sizes["x"] / max_pixels)))
    left, bottom, right, top = (v / 1000.0 for v in ds.attrs["bounds"])  # km reads better than metres
    ncols = min(3, len(layers))
    nrows = math.ceil(len(layers) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 4.2 * nrows), squeeze=False)  # type: ignore[attr-defined]
    for ax, name in zip(axes.flat, layers, strict=False):
        if _is_count_layer(name, ds[name].attrs):
            # Sparse labels vanish in an image: draw each labelled pixel as a point on the grid's frame.
            rows, cols = np.nonzero(np.nan_to_num(np.asarray(ds[name].values)) > 0)
            xs, ys = ds["x"].values[cols] / 1000.0, ds["y"].values[rows] / 1000.0
            ax.scatter(xs, ys, s=6, c="tab:red", marker="o", linewidths=0)
            ax.set_xlim(left, right)
            ax.set_ylim(bottom, top)
            ax.set_aspect("equal")
            ax.set_title(f"{name} ({len(rows)} labelled pixels)", fontsize=10)
        else:
            values = np.asarray(ds[name][::step, ::step].values, dtype=np.float32)
            image = ax.imshow(values, extent=(left, right, bottom, top), cmap="viridis", interpolation="nearest")
            fig.colorbar(image, ax=ax, shrink=0.75, label=ds[name].attrs.get("units", ""))
            ax.set_title(name, fontsize=10)
        ax.set_xlabel("x (km)", fontsize=8)
        ax.set_ylabel("y (km)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(layers) :]:
        ax.axis("off")
    epsg = ds.attrs.get("crs_epsg")
    fig.suptitle(f"{Path(path).name}  ({'EPSG:' + str(epsg) if epsg else 'custom CRS'}, every {step}. pixel)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)  # type: ignore[attr-defined]
    return png


def plot_waveforms(path: Path, png: Path, *, max_traces: int = 12) -> Path:
    """Plot up to ``max_traces`` traces of a waveform archive with their picks."""
    import xarray as xr

    require_complete(path, "waveforms")
    plt = _figure_module()
    ds = xr.open_zarr(path, consolidated=False)
    rate = float(ds.attrs["sampling_rate"])
    pairs = [(s, c) for s in range(ds.sizes["station"]) for c in range(ds.sizes["channel"])][:max_traces]
    fig, axes = plt.subplots(len(pairs), 1, figsize=(10, 1.4 * len(pairs) + 0.6), sharex=True, squeeze=False)  # type: ignore[attr-defined]
    t = np.arange(ds.sizes["time"]) / rate
    for ax, (s, c) in zip(axes[:, 0], pairs, strict=True):
        trace = np.asarray(ds["data"][s, c].values)
        ax.plot(t, trace, lw=0.5, color="k")
        code = f"{ds['network'].values[s]}.{ds['station'].values[s]}.{ds['channel'].values[c]}"
        ax.set_ylabel(code, rotation=0, ha="right", fontsize=8)
        if "pick_station" in ds:
            for station, phase, when in zip(
                ds["pick_station"].values, ds["pick_phase"].values, ds["pick_time_s"].values, strict=True
            ):
                if int(station) == s:
                    ax.axvline(float(when), color="tab:red" if str(phase).startswith("P") else "tab:blue", lw=1)
    axes[-1, 0].set_xlabel(f"seconds after {ds.attrs['starttime']}")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)  # type: ignore[attr-defined]
    return png


def plot_archive(path: Path, png: Path) -> Path:
    """A quick-look PNG for a raster or waveform archive."""
    kind, _ = archive_kind(path)
    if kind == "raster":
        return plot_raster_stack(path, png)
    if kind == "waveforms":
        return plot_waveforms(path, png)
    raise ArchiveError(f"{path}: no quick-look plot for {kind} archives yet; use `geodl inspect` instead")
