"""Reference side of bench/models.sh (issue #4): LightGBM and scikit-learn's histogram gradient
boosting on the customers bench/models.sh generated in its throwaway cluster and exported with
COPY, with the same hyperparameters as customer_value's gbm. Run by bench/models.sh in the venv
bench/.venv; never used by the product. Every command prints CSV lines.

  prepare CSV DIR                      CSV -> DIR/{x,spend,churned,holdout,customer_id}.npy
  train DIR TOOL TARGET THREADS OUT    one fit in this (fresh) process:
                                       `tool,target,threads,fit_s,peak_mib,base_mib,holdout_metric`
                                       (r2 for spend, AUC for churned); the model is pickled to OUT
  holdout DIR PREDICTIONS_CSV          r2 and AUC of customer_value's predictions, computed the
                                       same way: `customer_value,r2,auc`
  score DIR LGB_MODEL SKL_MODEL        scoring rows/s: `name,rows,seconds,rows_per_s`

Peak memory is the process's getrusage peak RSS; `base_mib` is that peak just before the fit
(interpreter, libraries and the data as float64 arrays), so peak - base is what training added.
"""
import pickle
import resource
import sys
import time

import numpy as np

FEATURES = [f"f{i}" for i in range(1, 11)]
# the same hyperparameters as customer_value's gbm run in bench/models.sh
N_TREES, MAX_DEPTH, LEARNING_RATE, MIN_LEAF = 100, 6, 0.1, 20


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def load(d):
    x = np.load(f"{d}/x.npy")
    holdout = np.load(f"{d}/holdout.npy")
    return x, holdout, {t: np.load(f"{d}/{t}.npy") for t in ("spend", "churned")}


def prepare(csv, d):
    import pandas as pd

    df = pd.read_csv(csv)
    np.save(f"{d}/x.npy", np.ascontiguousarray(df[FEATURES].to_numpy(dtype=np.float64)))
    np.save(f"{d}/spend.npy", df["spend"].to_numpy(dtype=np.float64))
    np.save(f"{d}/churned.npy", df["churned"].to_numpy(dtype=np.int64))
    np.save(f"{d}/holdout.npy", df["holdout"].to_numpy(dtype=bool))
    np.save(f"{d}/customer_id.npy", df["customer_id"].to_numpy(dtype=np.int64))


def metric(target, y, pred):
    from sklearn.metrics import r2_score, roc_auc_score

    return r2_score(y, pred) if target == "spend" else roc_auc_score(y, pred)


def train(d, tool, target, threads, out):
    threads = int(threads)
    x, holdout, ys = load(d)
    x_train, x_test = np.ascontiguousarray(x[~holdout]), np.ascontiguousarray(x[holdout])
    y_train, y_test = ys[target][~holdout], ys[target][holdout]
    del x
    classify = target == "churned"
    if tool == "lightgbm":
        import lightgbm as lgb
    else:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits
    base = peak_mib()
    start = time.perf_counter()
    if tool == "lightgbm":
        params = {
            "objective": "binary" if classify else "regression",
            "num_leaves": 63,
            "max_depth": MAX_DEPTH,
            "learning_rate": LEARNING_RATE,
            "min_child_samples": MIN_LEAF,
            "num_threads": threads,
            "seed": 42,
            "verbose": -1,
        }
        model = lgb.train(params, lgb.Dataset(x_train, label=y_train), num_boost_round=N_TREES)
        seconds = time.perf_counter() - start
        pred = model.predict(x_test, num_threads=threads)
    else:
        cls = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        # early stopping off (it is on by default above 10,000 rows) so every model has 100 trees;
        # 63 leaves at most, as LightGBM's num_leaves (scikit-learn's default is 31)
        model = cls(max_iter=N_TREES, max_depth=MAX_DEPTH, learning_rate=LEARNING_RATE,
                    min_samples_leaf=MIN_LEAF, max_leaf_nodes=63, early_stopping=False,
                    random_state=42)
        with threadpool_limits(limits=threads, user_api="openmp"):
            model.fit(x_train, y_train)
            seconds = time.perf_counter() - start
            pred = model.predict_proba(x_test)[:, 1] if classify else model.predict(x_test)
    peak = peak_mib()
    with open(out, "wb") as f:
        pickle.dump(model, f)
    print(f"{tool},{target},{threads},{seconds:.3f},{peak:.0f},{base:.0f},{metric(target, y_test, pred):.4f}")


def holdout(d, predictions):
    import pandas as pd

    p = pd.read_csv(predictions)
    print(f"customer_value,{metric('spend', p['spend'], p['predicted_spend']):.4f},"
          f"{metric('churned', p['churned'], p['churn_probability']):.4f}")


def best_of(runs, f):
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - start)
    return best


def score(d, lgb_model, skl_model):
    from threadpoolctl import threadpool_limits

    x = np.load(f"{d}/x.npy")
    n = len(x)
    with open(lgb_model, "rb") as f:
        booster = pickle.load(f)
    with open(skl_model, "rb") as f:
        hgb = pickle.load(f)
    rows = [x[i:i + 1] for i in np.random.default_rng(0).choice(n, min(20_000, n), replace=False)]

    def report(name, n_rows, seconds):
        print(f"{name},{n_rows},{seconds:.3f},{n_rows / seconds:.0f}", flush=True)

    # one row at a time, as a service answering single requests would
    report("lightgbm_single_row", len(rows), best_of(1, lambda: [booster.predict(r, num_threads=1) for r in rows]))
    few = rows[:2_000]
    with threadpool_limits(limits=1, user_api="openmp"):
        report("sklearn_single_row", len(few), best_of(1, lambda: [hgb.predict(r) for r in few]))
    for threads in (1, 2):
        report(f"lightgbm_batch_{threads}", n, best_of(3, lambda: booster.predict(x, num_threads=threads)))
        with threadpool_limits(limits=threads, user_api="openmp"):
            report(f"sklearn_batch_{threads}", n, best_of(3, lambda: hgb.predict(x)))


if __name__ == "__main__":
    {"prepare": prepare, "train": train, "holdout": holdout, "score": score}[sys.argv[1]](*sys.argv[2:])
