#!/usr/bin/python3
"""Train the Hillstrom response models of the nba quality benchmark.

Reads hillstrom.csv (Kevin Hillstrom's randomized e-mail experiment), keeps the
training half of a fixed split and trains two XGBoost models with the arm as
one-hot features:

  visit.json       P(visit      | customer, arm)
  conversion.json  P(conversion | customer, arm)

saved with save_model as XGBoost JSON, plus meta.json (split, sizes, metrics on
the evaluation half, and the IPS value of the model-driven policy "send the arm
of highest predicted visit probability" so that the Go side can check that it
scores the models identically).

Split: data row i (0-based, file order, header excluded) is in the evaluation
half when splitmix64(i + SEED) is odd, else in the training half. main.go
implements the same function (inEval).

Run with Debian's Python (python3-xgboost 1.7.4, numpy):
  /usr/bin/python3 bench/hillstrom/train.py [-data path] [-out dir]
"""

import argparse
import csv
import json
import os
import sys

import numpy as np
import xgboost as xgb

SEED = 0x4E4241  # "NBA"
MASK = (1 << 64) - 1

FEATURES = [
    "recency", "history", "mens", "womens",
    "zip_urban", "zip_suburban", "zip_rural", "newbie",
    "channel_phone", "channel_web", "channel_multichannel",
    "arm_mens", "arm_womens",
]
ARMS = {"No E-Mail": 0, "Mens E-Mail": 1, "Womens E-Mail": 2}
ZIPS = {"Urban": 4, "Surburban": 5, "Rural": 6}  # "Surburban" as spelled in the source
CHANNELS = {"Phone": 8, "Web": 9, "Multichannel": 10}

PARAMS = {
    "objective": "binary:logistic",
    "max_depth": 4,
    "eta": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 20,
    "eval_metric": "logloss",
    "tree_method": "hist",
    "nthread": 1,
    "seed": 1,
}
ROUNDS = {"visit": 250, "conversion": 150}


def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def in_eval(row):
    return splitmix64(row + SEED) & 1 == 1


def features(rec, arm):
    x = [0.0] * len(FEATURES)
    x[0] = float(rec["recency"])
    x[1] = float(rec["history"])
    x[2] = float(rec["mens"])
    x[3] = float(rec["womens"])
    x[ZIPS[rec["zip_code"]]] = 1.0
    x[7] = float(rec["newbie"])
    x[CHANNELS[rec["channel"]]] = 1.0
    if arm == 1:
        x[11] = 1.0
    elif arm == 2:
        x[12] = 1.0
    return x


def auc(y, p):
    order = np.argsort(p, kind="mergesort")
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    pos = y == 1
    n1, n0 = pos.sum(), (~pos).sum()
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("-data", default="bench/hillstrom/testdata/hillstrom.csv")
    ap.add_argument("-out", default=here)
    args = ap.parse_args()

    with open(args.data, newline="") as f:
        rows = list(csv.DictReader(f))
    X, arms, visit, conv, spend, ev = [], [], [], [], [], []
    for i, r in enumerate(rows):
        arm = ARMS[r["segment"]]
        X.append(features(r, arm))
        arms.append(arm)
        visit.append(int(r["visit"]))
        conv.append(int(r["conversion"]))
        spend.append(float(r["spend"]))
        ev.append(in_eval(i))
    X, arms, ev = np.array(X), np.array(arms), np.array(ev)
    ys = {"visit": np.array(visit), "conversion": np.array(conv)}
    tr = ~ev
    meta = {
        "split": {"rule": "row i (0-based) is in the evaluation half when splitmix64(i + seed) is odd",
                  "seed": SEED, "rows": len(rows), "train": int(tr.sum()), "eval": int(ev.sum()),
                  "eval_index_sum": int(np.nonzero(ev)[0].sum())},
        "features": FEATURES, "params": PARAMS, "xgboost": xgb.__version__, "models": {},
    }
    boosters = {}
    for name, y in ys.items():
        dtr = xgb.DMatrix(X[tr], label=y[tr], feature_names=FEATURES)
        dev = xgb.DMatrix(X[ev], label=y[ev], feature_names=FEATURES)
        b = xgb.train(PARAMS, dtr, num_boost_round=ROUNDS[name])
        path = os.path.join(args.out, name + ".json")
        b.save_model(path)
        p = b.predict(dev)
        ll = float(-np.mean(y[ev] * np.log(p) + (1 - y[ev]) * np.log(1 - p)))
        base = y[tr].mean()
        ll0 = float(-np.mean(y[ev] * np.log(base) + (1 - y[ev]) * np.log(1 - base)))
        meta["models"][name] = {"file": name + ".json", "trees": ROUNDS[name], "eval_logloss": ll,
                                "eval_logloss_constant": ll0, "eval_auc": auc(y[ev], p),
                                "bytes": os.path.getsize(path)}
        boosters[name] = b
        print(f"{name}: eval logloss {ll:.5f} (constant {ll0:.5f}), AUC {auc(y[ev], p):.4f}, "
              f"{os.path.getsize(path)} bytes", file=sys.stderr)

    # Model-driven policy on the evaluation half: the arm of highest
    # predicted visit probability (ties: lowest arm index).
    Xe = X[ev]
    preds = []
    for arm in range(3):
        Xa = Xe.copy()
        Xa[:, 11] = 1.0 if arm == 1 else 0.0
        Xa[:, 12] = 1.0 if arm == 2 else 0.0
        preds.append(boosters["visit"].predict(xgb.DMatrix(Xa, feature_names=FEATURES)))
    choice = np.argmax(np.stack(preds, axis=1), axis=1)
    match = choice == arms[ev]
    w = match * 3.0
    meta["model_policy"] = {
        "rule": "arm of highest predicted visit probability (visit.json), propensity 1/3",
        "choices": [int((choice == a).sum()) for a in range(3)],
        "visit_ips": float(np.mean(w * ys["visit"][ev])),
        "conversion_ips": float(np.mean(w * ys["conversion"][ev])),
        "spend_ips": float(np.mean(w * np.array(spend)[ev])),
        "first_predictions": [[float(preds[a][i]) for a in range(3)] for i in range(5)],
    }
    print("model policy:", json.dumps(meta["model_policy"]), file=sys.stderr)
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
