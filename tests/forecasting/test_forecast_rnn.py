"""ForecastRNN: GRU and LSTM heads, the model-owned loss (BCE on occurrence + Poisson NLL), config errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geodl_hpc.errors import ConfigError
from geodl_hpc.models.forecast_rnn import ForecastRNN


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_outputs_start_at_the_base_rate_and_loss_matches_its_definition(cell: str) -> None:
    torch.manual_seed(0)
    model = ForecastRNN(3, hidden=8, cell=cell, base_rate=0.2, b_value=0.9)  # type: ignore[arg-type]
    x = torch.zeros(4, 6, 3)
    out = model(x)
    assert out.shape == (4, 2)
    assert float(model.b_value) == pytest.approx(0.9)
    np.testing.assert_allclose(out[:, 1].exp().detach().numpy(), 0.2, rtol=0.3)  # log-rate head starts near 0.2
    logits = torch.tensor([[0.0, math.log(2.0)], [2.0, 0.0]])
    y = torch.tensor([[0.0], [3.0]])
    loss, correct, total = model.training_loss(logits, y)
    bce = (math.log(2.0) + math.log(1 + math.exp(-2.0))) / 2  # -log(1 - 0.5), -log(sigmoid(2))
    nll = ((2.0 - 0.0) + (1.0 - 3.0 * 0.0)) / 2  # exp(log λ) - y log λ per sample
    assert float(loss) == pytest.approx(bce + nll, rel=1e-6)
    assert (correct, total) == (2.0, 2.0)  # logit 0 -> "no event" for y=0, logit 2 -> "event" for y=3: both right
    _, wrong, _ = model.training_loss(-logits, y)
    assert wrong == 1.0  # logit 0 still says "no event" (right), -2 says "no event" for y=3 (wrong)


def test_unknown_cell_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cell"):
        ForecastRNN(3, cell="transformer")  # type: ignore[arg-type]
