"""Published IPEs against hand-computed values; residual kriging against its limits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from geodl_hpc.models import ipe
from geodl_hpc.models.kriging import krige_residuals


def test_aww14_by_hand() -> None:
    m, d = 6.7, 100.0
    h = 10 ** (-1.72 + 0.43 * m)
    r = math.hypot(d, h)
    lr = math.log10(r)
    want = 0.309 + 1.864 * m - 1.672 * lr - 0.00219 * r + 1.77 * math.log10(r / 50) - 0.383 * m * lr
    assert ipe.aww14(m, np.array([d]))[0] == pytest.approx(want)
    assert 4.0 < want < 5.5  # a M6.7 at 100 km is felt as MMI IV-V


def test_aww12_by_hand_and_decay() -> None:
    m = 7.0
    rr = math.sqrt(20.0**2 + (1 + 0.813 * math.exp(m - 5)) ** 2)
    assert ipe.aww12_rrup(m, np.array([20.0]))[0] == pytest.approx(3.950 + 0.913 * m - 1.107 * math.log(rr))
    rm = -0.209 + 2.042 * math.exp(m - 5)
    want = 2.085 + 1.428 * m - 1.402 * math.log(math.hypot(80.0, rm)) + 0.078 * math.log(80 / 50)
    assert ipe.aww12_rhypo(m, np.array([80.0]))[0] == pytest.approx(want)
    dist = np.linspace(1, 400, 50)
    for name in ipe.IPE_NAMES:
        mmi = ipe.predict(name, m, dist, dist)
        assert (np.diff(mmi) <= 1e-12).all(), name
    with pytest.raises(ValueError, match="unknown IPE"):
        ipe.predict("nope", m, dist, dist)


def test_kriging_limits() -> None:
    obs = np.array([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])
    res = np.array([1.0, -0.5, 0.2])
    near = krige_residuals(obs, res, obs, sill=1.0, nugget=1e-6)
    np.testing.assert_allclose(near.mean, res, atol=1e-4)
    assert (near.std < 0.01).all()
    far = krige_residuals(obs, res, np.array([[5000.0, 5000.0]]), sill=1.0, nugget=0.1)
    # far from all data: the estimated event term (the GLS mean of the residuals), the prior spread plus its variance
    d = np.hypot(*(obs[:, None, :] - obs[None, :, :]).transpose(2, 0, 1))
    cinv = np.linalg.inv(np.exp(-d / 30.0) + 0.1 * np.eye(3))
    gls = (cinv.sum(axis=0) @ res) / cinv.sum()
    assert far.mean[0] == pytest.approx(gls)
    assert far.std[0] == pytest.approx(math.sqrt(1.1 + 1.0 / cinv.sum()))
