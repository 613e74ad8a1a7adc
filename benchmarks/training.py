"""Benchmark: training steps/s of the demo model fed by the pipeline vs fed the same batches held in memory.

    python benchmarks/training.py [--resolution M] [--chip K] [--batch B] [--samples N] [--backend ray|local]
                                  [--workers W] [--prefetch P] [--epochs E] [--width W] [--threads T] [--json]

Builds the real Murchison stack (GSWA data rasterised at ``--resolution`` metres), draws ``--samples`` random chips
and, in one run: warms up with epoch 0 (Ray start-up, first reads), then for each of ``--epochs`` epochs times the
epoch with each step pulling its batch from ``ChipPipeline.iter_epoch`` (the pipeline keeps prefetching while the
model trains) and times the same batches again from a list in memory.
``ratio = pipeline_steps_s / in_memory_steps_s``; 1.0 means the pipeline hides entirely behind compute (goal >= 0.9).

Where the time goes (seconds over the timed epochs): ``data_wait_s`` (the model waited for the next batch) vs
``compute_s`` in the pipeline-fed epochs, ``in_memory_s``, ``pipeline_alone_s`` (the pipeline producing the same
epochs with nothing training beside it) and ``load_avg_1m`` (other work on the machine skews every number).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _steps_per_s(batches: Any, model: Any, optimizer: Any, loss_fn: Any) -> tuple[float, int, float]:
    """Steps/s over ``batches``, the step count, and the seconds spent waiting for the next batch."""
    import torch

    n, wait = 0, 0.0
    start = time.perf_counter()
    it = iter(batches)
    while True:
        t0 = time.perf_counter()
        batch = next(it, None)
        wait += time.perf_counter() - t0
        if batch is None:
            break
        target = (batch["y"] > 0).float()
        loss = loss_fn(model(batch["x"]), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        n += 1
    torch.cpu.synchronize()
    return n / (time.perf_counter() - start), n, wait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resolution", type=float, default=1000.0)
    parser.add_argument("--chip", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--samples", type=int, default=1024)
    parser.add_argument("--backend", choices=("ray", "local"), default="ray")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--prefetch", type=int, default=2, help="PipelineConfig.prefetch_batches (Ray backend)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up epoch)")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    from geodl_hpc.archive.murchison import build_murchison
    from geodl_hpc.models import build_model
    from geodl_hpc.pipeline import ChipPipeline, PipelineConfig
    from geodl_hpc.sampling import random_chips

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        archive = build_murchison(Path(tmp) / "m.zarr", resolution=args.resolution, chunk=args.chunk, progress=False)
        config = PipelineConfig(
            archive, chip=args.chip, label="deposits", batch_size=args.batch, backend=args.backend,
            num_workers=args.workers, prefetch_batches=args.prefetch, mix_units=2, drop_last=True,
        )  # fmt: skip
        probe = ChipPipeline(config, np.zeros((0, 2), np.int64))
        samples = random_chips(probe.units, args.chip, args.samples, np.random.default_rng(0))  # type: ignore[arg-type]
        pipe = ChipPipeline(config, samples)
        model = build_model("prospectivity_cnn", len(pipe.spec.variables), width=args.width, depth=3)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(20.0))

        t0 = time.perf_counter()
        _steps_per_s(pipe.iter_epoch(0), model, optimizer, loss_fn)  # warm-up: Ray start, first reads
        warmup_s = time.perf_counter() - t0
        # Timed epochs alternate pipeline-fed and in-memory runs of the same batches, so that load from other
        # work on the machine drifts into both sides alike.
        n_steps, pipe_s, wait_s, memory_s, produce_s = 0, 0.0, 0.0, 0.0, 0.0
        for epoch in range(1, args.epochs + 1):
            rate, n, wait = _steps_per_s(pipe.iter_epoch(epoch), model, optimizer, loss_fn)
            n_steps, pipe_s, wait_s = n_steps + n, pipe_s + n / rate, wait_s + wait
            t0 = time.perf_counter()
            held = list(pipe.iter_epoch(epoch))
            produce_s += time.perf_counter() - t0  # the pipeline alone, nothing training beside it
            rate, n, _ = _steps_per_s(held, model, optimizer, loss_fn)
            memory_s += n / rate
        pipeline_rate, memory_rate = n_steps / pipe_s, n_steps / memory_s
        if args.backend == "ray":
            import ray

            ray.shutdown()
    result = {
        "pipeline_steps_s": round(pipeline_rate, 2),
        "in_memory_steps_s": round(memory_rate, 2),
        "ratio": round(pipeline_rate / memory_rate, 3),
        "steps": n_steps,
        # where the pipeline-fed epoch's time went: waiting for batches vs the rest (the model's steps)
        "epochs": args.epochs,
        "pipeline_s": round(pipe_s, 3),
        "data_wait_s": round(wait_s, 3),
        "compute_s": round(pipe_s - wait_s, 3),
        "in_memory_s": round(memory_s, 3),
        "pipeline_alone_s": round(produce_s, 3),
        "warmup_epoch_s": round(warmup_s, 3),
        "workers": args.workers,
        "prefetch_batches": args.prefetch,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "batch_size": args.batch,
        "chip": args.chip,
        "backend": args.backend,
        "threads": args.threads,
        "model": f"prospectivity_cnn width={args.width} depth=3",
        "data": f"Murchison (GSWA) stack at {args.resolution:g} m, {args.samples} random chips",
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>18}: {value}")


if __name__ == "__main__":
    main()
