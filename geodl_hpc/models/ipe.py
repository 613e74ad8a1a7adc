"""Published intensity prediction equations (MMI from magnitude and distance), with their published coefficients.

- Atkinson, Worden & Wald (2014, BSSA 104(6), 3084-3093), active crust (California):
  MMI = c1 + c2 M + c3 log10 R + c4 R + c5 B + c6 M log10 R, R = sqrt(D^2 + h^2), h = max(1, 10^(-1.72 + 0.43 M)),
  B = max(0, log10(R / 50)), D the rupture (else hypocentral) distance in km.
- Allen, Wald & Worden (2012, J. Seismol. 16, 409-433), active crust, two forms:
  rupture distance: MMI = c0 + c1 M + c2 ln sqrt(Rrup^2 + (1 + c3 exp(M - 5))^2);
  hypocentral: MMI = c0 + c1 M + c2 ln sqrt(Rhyp^2 + Rm^2) [+ c4 ln(Rhyp / 50) beyond 50 km], Rm = m1 + m2 exp(M - 5).
"""

from __future__ import annotations

import numpy as np

AWW14 = {"c1": 0.309, "c2": 1.864, "c3": -1.672, "c4": -0.00219, "c5": 1.77, "c6": -0.383}
AWW12_RRUP = {"c0": 3.950, "c1": 0.913, "c2": -1.107, "c3": 0.813}
AWW12_RHYPO = {"c0": 2.085, "c1": 1.428, "c2": -1.402, "c4": 0.078, "m1": -0.209, "m2": 2.042}
IPE_NAMES = {
    "aww14": "Atkinson, Worden & Wald (2014)",
    "aww12_rrup": "Allen, Wald & Worden (2012), rupture distance",
    "aww12_rhypo": "Allen, Wald & Worden (2012), hypocentral distance",
}


def aww14(mag: np.ndarray | float, dist_km: np.ndarray) -> np.ndarray:
    """Atkinson, Worden & Wald (2014) MMI (active crust), clipped to 1..10."""
    c, m = AWW14, np.asarray(mag, dtype=float)
    h = np.maximum(1.0, 10.0 ** (-1.72 + 0.43 * m))
    r = np.sqrt(np.asarray(dist_km, dtype=float) ** 2 + h**2)
    logr = np.log10(r)
    b = np.maximum(0.0, np.log10(r / 50.0))
    mmi = c["c1"] + c["c2"] * m + c["c3"] * logr + c["c4"] * r + c["c5"] * b + c["c6"] * m * logr
    return np.clip(mmi, 1.0, 10.0)


def aww12_rrup(mag: np.ndarray | float, rrup_km: np.ndarray) -> np.ndarray:
    """Allen, Wald & Worden (2012) MMI from rupture distance, clipped to 1..10."""
    c, m = AWW12_RRUP, np.asarray(mag, dtype=float)
    r = np.sqrt(np.asarray(rrup_km, dtype=float) ** 2 + (1.0 + c["c3"] * np.exp(m - 5.0)) ** 2)
    return np.clip(c["c0"] + c["c1"] * m + c["c2"] * np.log(r), 1.0, 10.0)


def aww12_rhypo(mag: np.ndarray | float, rhypo_km: np.ndarray) -> np.ndarray:
    """Allen, Wald & Worden (2012) MMI from hypocentral distance, clipped to 1..10."""
    c, m = AWW12_RHYPO, np.asarray(mag, dtype=float)
    rh = np.asarray(rhypo_km, dtype=float)
    rm = c["m1"] + c["m2"] * np.exp(m - 5.0)
    far = np.where(rh > 50.0, c["c4"] * np.log(np.maximum(rh, 1e-9) / 50.0), 0.0)
    return np.clip(c["c0"] + c["c1"] * m + c["c2"] * np.log(np.sqrt(rh**2 + rm**2)) + far, 1.0, 10.0)


def predict(name: str, mag: np.ndarray | float, rrup_km: np.ndarray, rhypo_km: np.ndarray) -> np.ndarray:
    """MMI from the IPE ``name`` (a key of ``IPE_NAMES``)."""
    if name == "aww14":
        return aww14(mag, rrup_km)
    if name == "aww12_rrup":
        return aww12_rrup(mag, rrup_km)
    if name == "aww12_rhypo":
        return aww12_rhypo(mag, rhypo_km)
    raise ValueError(f"unknown IPE {name!r}; known: {', '.join(IPE_NAMES)}")
