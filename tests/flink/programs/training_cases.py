"""Training inside Flink operators: the equivalence fit, a fit whose worker fails once, and a
stream-mode fit, in one Flink client process.

Usage: training_cases.py RESULT.json WORKDIR. Writes the rows each fit saw, the trained weights,
histories and the model versions for the test to check.
"""

import json
import os
import pathlib
import sys
import time

import numpy as np
import torch

from tests.flink.programs.common import write

SIZES = 37  # rows: 19 and 18 per worker, a global batch of 7 that does not divide them


def regression_rows(n: int, seed: int = 0) -> list[tuple[list[float], float]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = x @ np.array([1.5, -2.0, 0.5]) + 0.3 + 0.05 * rng.normal(size=n)
    return [(row.tolist(), float(t)) for row, t in zip(x, y)]


def make_net(seed: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


class FailsOnce(torch.nn.Module):
    """Rank 1 raises in its 5th forward pass, once (a file marks that it happened)."""

    def __init__(self, net: torch.nn.Module, marker: str):
        super().__init__()
        self.net = net
        self.marker = marker
        self.calls = 0

    def forward(self, x):
        import torch.distributed as dist

        self.calls += 1
        if dist.is_initialized() and dist.get_rank() == 1 and self.calls == 5 and not os.path.exists(self.marker):
            pathlib.Path(self.marker).write_text(str(os.getpid()))
            raise RuntimeError("injected failure in worker 1")
        return self.net(x)


def sgd(params):
    return torch.optim.SGD(params, lr=0.05, momentum=0.9)


def weights(model: torch.nn.Module) -> list:
    return [p.detach().numpy().tolist() for p in model.parameters()]


def main(result_path: str, workdir: str) -> None:
    from pyflink.common import Types

    from zoo.engine import SeveralIteration
    from zoo.flink import as_bytes, fit, fit_stream, stream_environment

    folder = pathlib.Path(workdir)
    rows = regression_rows(SIZES)
    row_type = Types.TUPLE([Types.PRIMITIVE_ARRAY(Types.DOUBLE()), Types.DOUBLE()])
    out: dict = {"rows": rows}
    env = stream_environment(parallelism=2)

    started = time.time()
    fitted, result = fit(env.from_collection(rows, type_info=row_type), make_net(), torch.nn.MSELoss(),
                         feature_cols=[0], label_col=1, batch_size=7, epochs=2, optim_method=sgd, num_workers=2,
                         shuffle=False)
    out["equivalence"] = {"weights": weights(fitted), "history": result.history, "topology": result.topology,
                          "iteration": result.iteration, "rows": result.rows, "seconds": time.time() - started}

    started = time.time()
    marker = str(folder / "failed-once")
    fitted, result = fit(env.from_collection(rows, type_info=row_type), FailsOnce(make_net(), marker),
                         torch.nn.MSELoss(), feature_cols=[0], label_col=1, batch_size=7, epochs=2, optim_method=sgd,
                         num_workers=2, shuffle=False, checkpoint_dir=str(folder / "checkpoints"),
                         checkpoint_trigger=SeveralIteration(2), restart_attempts=2)
    out["failover"] = {"weights": weights(fitted.net), "history": result.history, "failed": os.path.exists(marker),
                       "iteration": result.iteration, "seconds": time.time() - started}

    # Stream mode on an unbounded source: samples made from a number sequence.
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource
    from pyflink.common import WatermarkStrategy

    def sample(n: int):
        rng = np.random.default_rng(int(n))
        x = rng.normal(size=3)
        return x.tolist(), float(x @ np.array([1.5, -2.0, 0.5]) + 0.3)

    stream_env = stream_environment(parallelism=2)
    numbers = stream_env.from_source(NumberSequenceSource(0, 2**62), WatermarkStrategy.no_watermarks(), "numbers")
    samples = numbers.map(sample, output_type=row_type).set_parallelism(1)
    started = time.time()
    job = fit_stream(samples, make_net(), torch.nn.MSELoss(), feature_cols=[0], label_col=1, batch_size=64,
                     optim_method=sgd, num_workers=2, round_interval_s=0.5, min_samples=64, version_every=1,
                     versions_dir=str(folder / "versions"))
    versions = []
    with job.versions.execute_and_collect("Zoo stream fit") as records:
        for record in records:
            state = as_bytes(record["state"])
            model = make_net()
            model.load_state_dict(torch.load(__import__("io").BytesIO(state), weights_only=True))
            versions.append({"version": record["version"], "iteration": record["iteration"], "path": record["path"],
                             "metrics": json.loads(record["metrics"]), "weights": weights(model),
                             "files": sorted(os.listdir(record["path"])) if record["path"] else []})
            if len(versions) == 3:
                break
    job.close()
    out["stream"] = {"versions": versions, "seconds": time.time() - started}
    write(result_path, out)


if __name__ == "__main__":
    main(*sys.argv[1:])
