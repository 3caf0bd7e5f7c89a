#!/usr/bin/python3
"""Train the demo bundle's propensity model.

Reads the training rows that `go run ./nba/demo/gen -train FILE` writes (TSV
with a header; the last column is the label; empty fields are missing) and
saves an XGBoost JSON model whose feature names are the TSV's columns, so the
engine binds them to profile fields and action features by name.

Usage: /usr/bin/python3 nba/demo/train.py TRAIN.tsv nba/demo/bundle/model.json
Needs Debian's python3-xgboost (1.7) and python3-numpy.
"""
import sys

import numpy as np
import xgboost as xgb


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src) as f:
        header = f.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in f]
    data = np.array([[float(v) if v != "" else np.nan for v in r] for r in rows], dtype=np.float32)
    x, y = data[:, :-1], data[:, -1]
    names = header[:-1]
    rng = np.random.default_rng(11)
    idx = rng.permutation(len(y))
    cut = int(0.8 * len(y))
    train = xgb.DMatrix(x[idx[:cut]], label=y[idx[:cut]], feature_names=names, missing=np.nan)
    valid = xgb.DMatrix(x[idx[cut:]], label=y[idx[cut:]], feature_names=names, missing=np.nan)
    params = {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "auc"],
        "max_depth": 4,
        "eta": 0.1,
        "subsample": 0.9,
        "colsample_bytree": 0.9,
        "min_child_weight": 5,
        "seed": 3,
        "nthread": 2,
    }
    booster = xgb.train(params, train, num_boost_round=120, evals=[(valid, "valid")], verbose_eval=40)
    booster.save_model(dst)
    print(f"saved {dst}: {booster.num_boosted_rounds()} trees over {len(names)} features")


if __name__ == "__main__":
    main()
