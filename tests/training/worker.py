"""Run the train job in this process from a JSON config (argv[1]); write the rank's result to argv[2]/result-rankR.json.

Used by the tests as a subprocess: alone, under ``horovodrun -np 2 --gloo``, or killed/signalled on purpose.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main() -> None:
    import torch

    torch.set_num_threads(1)
    from geodl_hpc.config import from_dict
    from geodl_hpc.training.config import TrainJobConfig
    from jobs.train import main as train_main

    delay = float(os.environ.get("WORKER_STEP_SLEEP", "0"))
    if delay:  # slow each step down so a test can signal a rank mid-run
        import time

        from geodl_hpc.models.prospectivity import ProspectivityCNN

        forward = ProspectivityCNN.forward

        def slow(self: ProspectivityCNN, x: torch.Tensor) -> torch.Tensor:
            time.sleep(delay)
            return forward(self, x)

        ProspectivityCNN.forward = slow  # type: ignore[method-assign]

    config = from_dict(TrainJobConfig, json.loads(Path(sys.argv[1]).read_text()))
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    rank = os.environ.get("HOROVOD_RANK", os.environ.get("RANK", "0"))
    (out / f"pid-rank{rank}").write_text(str(os.getpid()))
    result = train_main(config)
    (out / f"result-rank{result['rank']}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
