"""BPClassifier / BPRegressor against scikit-learn's MLPClassifier / MLPRegressor, each
configuration given word for word to both classes.

    python -m benchmarks.sklearn_parity [--seeds 5] [--timing-runs 5]

Digits (bpgpu.datasets.load("digits")): 5-fold StratifiedKFold(shuffle=True, random_state=0)
accuracy, the mean over random_state 0..seeds-1; fit time on all rows, default parameters, the
median of interleaved runs. Diabetes (sklearn.datasets.load_diabetes, X standardised): 5-fold
KFold(shuffle=True, random_state=0) R², the same means.
"""

import argparse
import statistics
import time
import warnings

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import StandardScaler

from bpgpu.datasets import load
from bpgpu.sklearn import BPClassifier, BPRegressor

CONFIGS = [
    {},
    {"alpha": 1e-2},
    {"early_stopping": True},
    {"solver": "sgd", "learning_rate": "adaptive"},
    {"solver": "sgd", "learning_rate": "invscaling", "learning_rate_init": 0.1},
]
REG_CONFIGS = [{}, {"early_stopping": True}]


def make(cls, params, seed):
    extra = {"device": "cpu"} if cls in (BPClassifier, BPRegressor) else {}
    return cls(**params, random_state=seed, **extra)


def mean_score(cls, params, X, y, cv, seeds):
    return float(np.mean([cross_val_score(make(cls, params, s), X, y, cv=cv).mean()
                          for s in seeds]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--timing-runs", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    seeds = range(args.seeds)
    d = load("digits")
    X, y = np.asarray(d.X, dtype=np.float64), np.asarray(d.y)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    print(f"digits, seeds 0-{args.seeds - 1}", flush=True)
    for params in CONFIGS:
        bp = mean_score(BPClassifier, params, X, y, cv, seeds)
        sk = mean_score(MLPClassifier, params, X, y, cv, seeds)
        print(f"{params or 'defaults'}: BPClassifier {100 * bp:.2f} %  MLPClassifier "
              f"{100 * sk:.2f} %  diff {100 * (bp - sk):+.2f}", flush=True)
    times = {BPClassifier: [], MLPClassifier: []}
    for run in range(args.timing_runs):
        for cls in (BPClassifier, MLPClassifier):
            start = time.perf_counter()
            make(cls, {}, run).fit(X, y)
            times[cls].append(time.perf_counter() - start)
    print(f"fit time, defaults, all rows, median of {args.timing_runs}: "
          + "  ".join(f"{c.__name__} {statistics.median(t):.2f} s" for c, t in times.items()),
          flush=True)
    Xr, yr = load_diabetes(return_X_y=True)
    Xr = StandardScaler().fit_transform(Xr)
    kcv = KFold(5, shuffle=True, random_state=0)
    for params in REG_CONFIGS:
        bp = mean_score(BPRegressor, params, Xr, yr, kcv, seeds)
        sk = mean_score(MLPRegressor, params, Xr, yr, kcv, seeds)
        print(f"diabetes {params or 'defaults'}: BPRegressor R² {bp:.3f}  MLPRegressor R² "
              f"{sk:.3f}  diff {bp - sk:+.3f}", flush=True)


if __name__ == "__main__":
    main()
