"""Study: published intensity prediction equations, alone and conditioned by kriging, on four real earthquakes.

    python benchmarks/damage_baselines.py [--share 0.5] [--block-km 50] [--range-km 30] [--seeds 5] [--json PATH]

Data: ShakeMap inputs of Northridge 1994, El Mayor-Cucapah (Calexico) 2010, Wenchuan 2008 and Gorkha 2015
(USGS, public domain; esi-shakelib 1.2.1 sdist test data, fetched by tools/data/shakelib.sh), points within 600 km.
Targets: reported DYFI/macroseismic MMI; instrumental stations as MMI by Worden et al. (2012) from PGV (else PGA).

- Unconditioned (leave-one-event-out in the sense that nothing of the event is used): AWW14, AWW12 (rrup and
  rhypo) with published coefficients, scored on all points of each event.
- Conditioned (within-event, spatial blocks of ``--block-km``): a fixed ``--share`` of each block conditions, the
  rest is held out; ordinary kriging of residuals against each IPE (exponential covariance, ``--range-km``, sill
  and nugget from the conditioning residuals' variance, nugget share 0.3), and the untrained rule "mean of the
  conditioning points"; RMSE/bias with 95 % bootstrap intervals over held-out stations, Gaussian CRPS, 50/90 %
  coverage; ``--seeds`` different splits, pooled.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geodl_hpc.archive import shakemap
from geodl_hpc.evaluation import intensity
from geodl_hpc.models import ipe
from geodl_hpc.models.kriging import fit_variance, krige_residuals


def _score(obs: np.ndarray, mean: np.ndarray, std: np.ndarray | None, seed: int) -> dict[str, Any]:
    out: dict[str, Any] = intensity.bootstrap_stats(obs - mean, n_boot=500, seed=seed)
    if std is not None:
        out["crps"] = float(intensity.crps_gaussian(obs, mean, std).mean())
        out["coverage50"] = float(intensity.gaussian_coverage(obs, mean, std, 0.5).mean())
        out["coverage90"] = float(intensity.gaussian_coverage(obs, mean, std, 0.9).mean())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--share", type=float, default=0.5)
    parser.add_argument("--block-km", type=float, default=50.0)
    parser.add_argument("--range-km", type=float, default=30.0)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    events, table = shakemap.load_events()
    result: dict[str, Any] = {"data": shakemap.ATTRIBUTION, "gmice": shakemap.GMICE_NAME, "ipes": ipe.IPE_NAMES}
    result["settings"] = vars(args) | {"json": str(args.json)}
    result["counts"] = table.groupby(["event", "kind"]).size().unstack(fill_value=0).to_dict(orient="index")
    preds = {
        n: ipe.predict(n, table.mag.to_numpy(), table.rrup_km.to_numpy(), table.rhypo_km.to_numpy())
        for n in ipe.IPE_NAMES
    }
    obs_all = table.mmi.to_numpy()

    unconditioned: dict[str, Any] = {}
    for name, pred in preds.items():
        unconditioned[name] = {"pooled": _score(obs_all, pred, None, 0)}
        for ev in events:
            m = (table.event == ev).to_numpy()
            unconditioned[name][ev] = _score(obs_all[m], pred[m], None, 0)
    result["unconditioned"] = unconditioned

    held: dict[str, dict[str, list[np.ndarray]]] = {}
    for seed in range(args.seeds):
        for ev, e in events.items():
            m = (table.event == ev).to_numpy()
            sub = table[m]
            x, y = shakemap._local_km(sub.lon.to_numpy(), sub.lat.to_numpy(), e.lon, e.lat)
            cond = intensity.conditioning_split(intensity.block_ids(x, y, args.block_km), args.share, seed)
            xy = np.stack([x, y], axis=1)
            obs = sub.mmi.to_numpy()
            methods: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            c_mean, c_std = obs[cond].mean(), obs[cond].std(ddof=1)
            methods["conditioning_mean"] = (np.full((~cond).sum(), c_mean), np.full((~cond).sum(), c_std))
            for name, pred_all in preds.items():
                pred = pred_all[m]
                res = obs[cond] - pred[cond]
                sill, nugget = fit_variance(res)
                k = krige_residuals(xy[cond], res, xy[~cond], range_km=args.range_km, sill=sill, nugget=nugget)
                methods[f"{name}+kriging"] = (pred[~cond] + k.mean, k.std)
                methods[name] = (pred[~cond], np.full((~cond).sum(), np.sqrt(sill + nugget)))
            for method, (mean, std) in methods.items():
                parts = held.setdefault(method, {}).setdefault(ev, [])
                parts.append(np.stack([obs[~cond], mean, std]))
    conditioned: dict[str, Any] = {}
    for method, per_event in held.items():
        conditioned[method] = {}
        pooled = []
        for ev, parts in per_event.items():
            arr = np.concatenate(parts, axis=1)
            pooled.append(arr)
            conditioned[method][ev] = _score(arr[0], arr[1], arr[2], 0)
        arr = np.concatenate(pooled, axis=1)
        conditioned[method]["pooled"] = _score(arr[0], arr[1], arr[2], 0)
    result["conditioned_heldout"] = conditioned
    text = json.dumps(result, indent=2, default=float)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
