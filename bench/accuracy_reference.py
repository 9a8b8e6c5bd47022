"""Reference predictions of CDNOW's 39-week holdout spend (1997-10-01 .. 1998-06-30) from the log
up to 1997-09-30, by independent implementations, scored with the same metrics as
customer_value (normalized Gini with ties spread evenly, total error, decile MAPE, Spearman,
top-decile capture). Prints CSV lines `approach,gini,total_error_pct,decile_mape,spearman,
top_decile_capture,seconds`. Run by bench/accuracy.sh in a throwaway venv; never used by the
product.

- lifetimes 0.11.3: BG/NBD × Gamma-Gamma and Pareto/NBD × Gamma-Gamma, expected purchases over
  39 weeks × expected spend per purchase (the classic CLV prediction).
- scikit-learn: gradient boosting and linear regression on RFM features, trained leak-free on an
  earlier window — features as of 1997-06-30, target the spend of the following 92 days — then
  applied to the features as of 1997-09-30 and scaled from 92 days to the 273-day horizon.
- the oracle: ranking by the actual holdout spend (Gini 1 by definition; its top-decile capture is
  the ceiling).
"""
import sys
import time
import warnings

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter
from lifetimes.utils import summary_data_from_transaction_data
from scipy.stats import spearmanr
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LinearRegression

warnings.filterwarnings("ignore")
tx = pd.read_csv(sys.argv[1], sep=r"\s+", header=0, names=["customer_id", "date", "cds", "amount"], dtype={"date": str})
tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
days = tx.groupby(["customer_id", "date"], as_index=False)["amount"].sum()
CAL_END, HOLD_END = pd.Timestamp("1997-09-30"), pd.Timestamp("1998-06-30")
EARLY_END = pd.Timestamp("1997-06-30")
HORIZON, EARLY_WINDOW = 273, 92
customers = days.loc[days["date"] <= CAL_END, "customer_id"].unique()


def spend_between(after, until):
    window = days[(days["date"] > after) & (days["date"] <= until)]
    return window.groupby("customer_id")["amount"].sum()


actual = spend_between(CAL_END, HOLD_END).reindex(customers, fill_value=0.0).to_numpy()


def gini(y, p):
    """Normalized Gini as in customer_value: ties in p spread their actual value evenly."""
    def raw(score):
        order = np.argsort(-score, kind="stable")
        s, a = score[order], y[order]
        total, n = a.sum(), len(a)
        cum, acc, i = 0.0, 0.0, 0
        while i < n:
            j = i
            while j < n and s[j] == s[i]:
                j += 1
            m, block = j - i, a[i:j].sum()
            acc += m * cum + block * (m + 1) / 2.0
            cum += block
            i = j
        return (acc / total - (n + 1) / 2.0) / n
    return raw(p) / raw(y)


def decile_mape(y, p):
    order = np.argsort(p, kind="stable")
    errors = []
    for part in np.array_split(order, 10):
        mean_actual = y[part].mean()
        if mean_actual != 0:
            errors.append(abs(p[part].mean() - mean_actual) / abs(mean_actual))
    return float(np.mean(errors))


def top_decile_capture(y, p):
    order = np.argsort(-p, kind="stable")
    return y[order[: int(round(len(y) * 0.1))]].sum() / y.sum()


def report(name, p, seconds):
    p = np.asarray(p, dtype=float)
    total = 100.0 * (p.sum() - actual.sum()) / actual.sum()
    print(f"{name},{gini(actual, p):.4f},{total:.2f},{decile_mape(actual, p):.4f},"
          f"{spearmanr(actual, p).correlation:.4f},{top_decile_capture(actual, p):.4f},{seconds:.2f}", flush=True)


def summary(end):
    s = summary_data_from_transaction_data(tx[tx["date"] <= end], "customer_id", "date", "amount",
                                           observation_period_end=end, freq="D")
    s["recency"] /= 7.0
    s["T"] /= 7.0
    return s


def classic(count_fitter, name):
    start = time.perf_counter()
    s = summary(CAL_END).reindex(customers)
    count = count_fitter().fit(s["frequency"], s["recency"], s["T"])
    repeat = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
    gg = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    purchases = count.conditional_expected_number_of_purchases_up_to_time(HORIZON / 7.0, s["frequency"], s["recency"], s["T"])
    spend = gg.conditional_expected_average_profit(s["frequency"], s["monetary_value"].clip(lower=0.0))
    report(name, (purchases * spend).to_numpy(), time.perf_counter() - start)


def features(end):
    s = summary(end)
    mine = days[days["date"] <= end].groupby("customer_id")["amount"].agg(["sum", "max", "count"])
    recent = spend_between(end - pd.Timedelta(days=90), end)
    f = pd.DataFrame({
        "frequency": s["frequency"], "recency": s["recency"], "T": s["T"],
        "monetary_value": s["monetary_value"], "total_spend": mine["sum"], "max_spend": mine["max"],
        "spend_90d": recent.reindex(s.index, fill_value=0.0),
    })
    return f


def earlier_window(model, name):
    start = time.perf_counter()
    early = features(EARLY_END)
    target = spend_between(EARLY_END, EARLY_END + pd.Timedelta(days=EARLY_WINDOW)).reindex(early.index, fill_value=0.0)
    model.fit(early.to_numpy(), target.to_numpy())
    now = features(CAL_END).reindex(customers)
    p = model.predict(now.to_numpy()) * HORIZON / EARLY_WINDOW
    report(name, p, time.perf_counter() - start)


classic(BetaGeoFitter, "lifetimes BG/NBD x Gamma-Gamma")
classic(ParetoNBDFitter, "lifetimes Pareto/NBD x Gamma-Gamma")
earlier_window(GradientBoostingRegressor(random_state=0), "scikit-learn gbm (earlier window)")
earlier_window(LinearRegression(), "scikit-learn linear (earlier window)")
report("oracle (actual holdout spend)", actual, 0.0)
