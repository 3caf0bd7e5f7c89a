#!/usr/bin/python3
"""Regenerates the XGBoost parity fixtures of package model.

Run with Debian's python3 (python3-xgboost 1.7.4, numpy):

    /usr/bin/python3 model/testdata/xgboost/gen.py

For every model NAME it writes NAME.json (Booster.save_model), and XGBoost's
own predictions for rows.tsv: NAME.margin.tsv (output_margin=True) and
NAME.pred.tsv (transformed), one row per line, tab-separated, '%.9g'.
rows.tsv holds the shared input rows ('nan' marks a missing value); its last
column is a categorical feature (integer codes). Some rows put a numeric
feature exactly on, or one float64 step around, split thresholds so that the
float32 comparison semantics are exercised.
"""
import json
import os

import numpy as np
import xgboost as xgb

HERE = os.path.dirname(os.path.abspath(__file__))
NAMES = ["age", "tenure", "spend", "visits", "score", "balance", "segment"]
NUM = len(NAMES) - 1  # numeric features; the last one is categorical
NCAT = 8


def make_data(rng, n):
    X = rng.normal(size=(n, len(NAMES)))
    X[:, 2] = rng.exponential(50.0, size=n)  # a skewed feature
    X[:, NUM] = rng.integers(0, NCAT, size=n)
    X[rng.random((n, len(NAMES))) < 0.08] = np.nan
    return X


def signal(X):
    x = np.nan_to_num(X, nan=0.0)
    cat_effect = np.array([0.0, 1.0, -1.0, 0.5, 2.0, -0.5, 0.0, 1.5])[x[:, NUM].astype(int) % NCAT]
    return x[:, 0] - 0.7 * x[:, 1] + 0.01 * x[:, 2] + x[:, 3] * x[:, 4] + cat_effect


def dmatrix(X, label=None, names=True, cat=True, **kw):
    types = ["q"] * NUM + (["c"] if cat else ["q"])
    return xgb.DMatrix(X, label=label, feature_names=NAMES if names else None,
                       feature_types=types if names or cat else None,
                       enable_categorical=cat, **kw)


def fmt(v):
    return "%.9g" % v


def write_rows(path, X):
    with open(path, "w") as f:
        for row in X:
            f.write("\t".join("nan" if np.isnan(v) else repr(float(v)) for v in row) + "\n")


def write_preds(path, P):
    P = np.asarray(P)
    if P.ndim == 1:
        P = P.reshape(-1, 1)
    with open(path, "w") as f:
        for row in P:
            f.write("\t".join(fmt(v) for v in row) + "\n")


def threshold_rows(rng, booster, base):
    """Rows whose numeric features sit on and around split thresholds."""
    model = json.loads(booster.save_raw("json"))
    trees = model["learner"]["gradient_booster"]["model"]["trees"]
    pairs = []
    for t in trees[:10]:
        for i, left in enumerate(t["left_children"]):
            if left != -1 and t["split_type"][i] == 0 and t["split_indices"][i] < NUM:
                pairs.append((t["split_indices"][i], t["split_conditions"][i]))
    rows = []
    for k, (f, thr) in enumerate(pairs[:40]):
        t32 = float(np.float32(thr))
        below = float(np.nextafter(np.float32(t32), np.float32(-np.inf)))
        mid = (t32 + below) / 2  # a float64 tie between two float32s
        for v in (t32, np.nextafter(t32, -np.inf), np.nextafter(t32, np.inf), mid,
                  np.nextafter(mid, -np.inf), np.nextafter(mid, np.inf)):
            r = base[(k * 7 + len(rows)) % len(base)].copy()
            r[f] = v
            rows.append(r)
    return np.array(rows)


def main():
    rng = np.random.default_rng(20261122)
    Xtr = make_data(rng, 1500)
    s = signal(Xtr)
    Xte = make_data(rng, 150)
    # Categories the training data never saw, beyond the split bitsets.
    Xte[:5, NUM] = [8, 9, 31, 32, 40]

    models = {}

    def train(name, params, dtrain, rounds, names=True, cat=True):
        p = {"tree_method": "hist", "max_depth": 4, "eta": 0.3, "seed": 7, "nthread": 1,
             "max_cat_to_onehot": 1}
        p.update(params)
        b = xgb.train(p, dtrain, rounds)
        models[name] = (b, names, cat)
        return b

    yb = (s + rng.normal(scale=0.5, size=len(s)) > 0.3).astype(float)
    first = train("binary_logistic", {"objective": "binary:logistic", "base_score": 0.3},
                  dmatrix(Xtr, yb), 20)
    train("binary_logitraw", {"objective": "binary:logitraw"}, dmatrix(Xtr, yb, names=False), 15,
          names=False)
    yp = 1 / (1 + np.exp(-s))
    train("reg_logistic", {"objective": "reg:logistic"}, dmatrix(Xtr, yp), 15)
    train("reg_squarederror", {"objective": "reg:squarederror", "base_score": 0.7},
          dmatrix(Xtr, s), 25)
    lam = np.exp(np.clip(s / 3, -3, 3))
    train("count_poisson", {"objective": "count:poisson", "base_score": 2.0},
          dmatrix(Xtr, rng.poisson(lam).astype(float)), 20)
    tw = rng.poisson(lam) * rng.gamma(2.0, 1.0, size=len(s))
    train("reg_tweedie", {"objective": "reg:tweedie", "tweedie_variance_power": 1.4,
                          "base_score": 1.5}, dmatrix(Xtr, tw), 20)
    yc = np.digitize(s, [-0.5, 0.8]).astype(float)
    train("multi_softprob", {"objective": "multi:softprob", "num_class": 3},
          dmatrix(Xtr, yc), 10)
    train("multi_softmax", {"objective": "multi:softmax", "num_class": 3},
          dmatrix(Xtr, yc), 10)
    dr = dmatrix(Xtr, np.digitize(s, [-1, 0, 1]).astype(float))
    dr.set_group([50] * (len(s) // 50))
    train("rank_pairwise", {"objective": "rank:pairwise"}, dr, 15)
    train("gblinear", {"booster": "gblinear", "objective": "reg:squarederror", "eta": 0.5,
                       "lambda": 0.1}, dmatrix(Xtr, s, cat=False), 20, cat=False)
    train("gblinear_logistic", {"booster": "gblinear", "objective": "binary:logistic",
                                "eta": 0.5}, dmatrix(Xtr, yb, cat=False), 20, cat=False)
    train("gblinear_softprob", {"booster": "gblinear", "objective": "multi:softprob",
                                "num_class": 3, "eta": 0.5}, dmatrix(Xtr, yc, cat=False), 10,
          cat=False)
    train("dart", {"booster": "dart", "objective": "binary:logistic", "rate_drop": 0.3,
                   "skip_drop": 0.0, "sample_type": "weighted", "normalize_type": "forest"},
          dmatrix(Xtr, yb), 30)
    train("large_depth8", {"objective": "reg:squarederror", "max_depth": 8, "eta": 0.05,
                           "min_child_weight": 0.5}, dmatrix(Xtr, s), 200)

    Xall = np.vstack([Xte, threshold_rows(rng, first, Xte)])
    write_rows(os.path.join(HERE, "rows.tsv"), Xall)
    for name, (b, names, cat) in models.items():
        b.save_model(os.path.join(HERE, name + ".json"))
        d = dmatrix(Xall, names=names, cat=cat)
        write_preds(os.path.join(HERE, name + ".margin.tsv"), b.predict(d, output_margin=True))
        write_preds(os.path.join(HERE, name + ".pred.tsv"), b.predict(d))

    # Derived: the same model with base_score in the bracketed vector form
    # that XGBoost >= 2 writes, and with the old objective name reg:linear.
    with open(os.path.join(HERE, "binary_logistic.json")) as f:
        text = f.read()
    assert '"base_score":"3E-1"' in text
    with open(os.path.join(HERE, "binary_logistic_bracketed.json"), "w") as f:
        f.write(text.replace('"base_score":"3E-1"', '"base_score":"[3E-1]"'))
    with open(os.path.join(HERE, "reg_squarederror.json")) as f:
        text = f.read()
    assert '"name":"reg:squarederror"' in text
    with open(os.path.join(HERE, "reg_linear.json"), "w") as f:
        f.write(text.replace('"name":"reg:squarederror"', '"name":"reg:linear"'))


if __name__ == "__main__":
    main()
