"""``backtest optimize --search optuna``: Optuna's TPE sampler over the same parameter space.

For spaces too large for the grid: each fold's training search asks Optuna for a batch of
points (as many as run at once), runs them as ordinary isolated jobs (locally or on the Dask
cluster), and tells it the objective; the next batch leans towards what scored well. A point
asked twice is not run again. Numeric ranges (``a:b:step``) become Optuna's stepped int or
float ranges, so the sampler knows 10 lies between 5 and 15; value lists are categories.

Optuna is optional (``pip install 'autotrader[research]'``); without it ``--search optuna``
is refused with that line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from app.backtest.errors import BacktestError

Batch = Callable[[list[dict[str, str]]], list[float]]


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise BacktestError("--search optuna needs the 'optuna' package: pip install "
                            "'autotrader[research]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def distributions(space: dict[str, list[str]]) -> dict[str, Any]:
    """An Optuna distribution per parameter: a stepped range where the values are an evenly
    spaced run of numbers, else a choice among the values."""
    optuna = _optuna()
    d = optuna.distributions
    out: dict[str, Any] = {}
    for name, values in space.items():
        nums = _numbers(values)
        if nums is not None and len(nums) > 2:
            step = nums[1] - nums[0]
            even = step > 0 and all(math.isclose(b - a, step, rel_tol=1e-9, abs_tol=1e-12)
                                    for a, b in zip(nums, nums[1:], strict=False))
            if even and all(float(v).is_integer() for v in (*nums, step)) and \
                    all("." not in v for v in values):
                out[name] = d.IntDistribution(int(nums[0]), int(nums[-1]), step=int(step))
                continue
            if even:
                out[name] = d.FloatDistribution(nums[0], nums[-1], step=step)
                continue
        out[name] = d.CategoricalDistribution(list(values))
    return out


def _numbers(values: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


def _text(value: Any, dist: Any) -> str:
    """The parameter as the grid writes it (``10``, ``0.75``)."""
    if isinstance(value, str):
        return value
    if type(dist).__name__ == "IntDistribution":
        return str(int(value))
    return repr(round(float(value), 10))


def search(run_batch: Batch, space: dict[str, list[str]], *, trials: int, seed: int,
           batch_size: int) -> tuple[list[dict[str, str]], list[float]]:
    """``trials`` points chosen by TPE, ``batch_size`` at a time; (points, scores) in the order
    they were tried. A score of -inf (a failed run) is told to Optuna as a failed trial."""
    optuna = _optuna()
    dists = distributions(space)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    seen: dict[tuple[tuple[str, str], ...], float] = {}
    points: list[dict[str, str]] = []
    scores: list[float] = []
    while len(points) < trials:
        asked = [study.ask(dists) for _ in range(min(batch_size, trials - len(points)))]
        params = [{k: _text(t.params[k], dists[k]) for k in space} for t in asked]
        new = [p for p in dict.fromkeys(tuple(p.items()) for p in params) if p not in seen]
        for key, score in zip(new, run_batch([dict(p) for p in new]), strict=True):
            seen[key] = score
        for t, p in zip(asked, params, strict=True):
            score = seen[tuple(p.items())]
            if math.isfinite(score):
                study.tell(t, score)
            else:
                study.tell(t, state=optuna.trial.TrialState.FAIL)
            points.append(p)
            scores.append(score)
    return points, scores
