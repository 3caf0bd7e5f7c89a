#!/usr/bin/python3
"""XGBoost's side of the model scoring benchmark (see run.sh).

    xgbcompare.py gen DIR             train the benchmark models into DIR
    xgbcompare.py time MODEL ROWS [SECONDS] [REPEATS]

gen writes DIR/rows.tsv (20 000 rows, 20 numeric features, 5% missing) and
two regression models trained on them: d8x300.json (300 trees, depth 8) and
d6x150.json (150 trees, depth 6).

time loads MODEL, reads ROWS (tab-separated, nan for missing) into a float32
array and times Booster.inplace_predict on one thread (nthread=1), the
transformed prediction, over all rows at once. It prints one line per repeat,
"ns/row=<number>", each the mean of as many calls as fit in SECONDS (wall
clock), then "median ns/row=<number>". The time is the CPU time of the
calling thread (time.thread_time), where nthread=1 prediction runs, because
a busy machine disturbs it far less than the wall clock; "nba score -bench"
measures the same way.

Run with Debian's python3 (python3-xgboost, numpy).
"""
import os
import sys
import time

import numpy as np
import xgboost as xgb

NFEAT = 20


def gen(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(42)
    n = 20000
    X = rng.normal(size=(n, NFEAT))
    y = (X[:, 0] * X[:, 1] + np.sin(3 * X[:, 2]) + X[:, 3] ** 2 - X[:, 4] * X[:, 5]
         + 0.5 * X[:, 6:].sum(axis=1) + rng.normal(scale=0.3, size=n))
    X[rng.random(X.shape) < 0.05] = np.nan
    d = xgb.DMatrix(X, label=y)
    for name, depth, rounds in (("d8x300", 8, 300), ("d6x150", 6, 150)):
        b = xgb.train({"tree_method": "hist", "max_depth": depth, "eta": 0.05,
                       "objective": "reg:squarederror", "nthread": 2, "seed": 1},
                      d, rounds)
        b.save_model(os.path.join(out, name + ".json"))
    with open(os.path.join(out, "rows.tsv"), "w") as f:
        for row in X:
            f.write("\t".join("nan" if np.isnan(v) else repr(float(v)) for v in row) + "\n")


def timeit(model, rows, seconds=2.0, repeats=5):
    b = xgb.Booster(model_file=model)
    b.set_param({"nthread": 1})
    X = np.loadtxt(rows, delimiter="\t", dtype=np.float32, ndmin=2)
    n = X.shape[0]
    b.inplace_predict(X)  # warm up
    results = []
    for _ in range(repeats):
        calls = 0
        start, cpu0 = time.perf_counter(), time.thread_time()
        while time.perf_counter() - start < seconds:
            b.inplace_predict(X)
            calls += 1
        ns = (time.thread_time() - cpu0) * 1e9 / (calls * n)
        results.append(ns)
        print("ns/row=%.1f" % ns)
    print("median ns/row=%.1f" % sorted(results)[len(results) // 2])


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "gen":
        gen(sys.argv[2])
    elif len(sys.argv) >= 4 and sys.argv[1] == "time":
        timeit(sys.argv[2], sys.argv[3], *(float(a) for a in sys.argv[4:5]),
               *(int(a) for a in sys.argv[5:6]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
