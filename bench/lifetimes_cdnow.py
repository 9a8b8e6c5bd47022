"""Reference timings with the Python library lifetimes on the CDNOW master log: the same RFM
definitions (one purchase per day, weeks = days / 7, calibration to 1997-09-30), then BG/NBD,
Pareto/NBD and Gamma-Gamma fits and CLV scoring of every customer. Prints CSV lines
`step,seconds,detail`. Run by bench/clv.sh in a throwaway venv; never used by the product."""
import sys
import time
import warnings

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ParetoNBDFitter
from lifetimes.utils import summary_data_from_transaction_data

warnings.filterwarnings("ignore")
path = sys.argv[1]
tx = pd.read_csv(path, sep=r"\s+", header=0, names=["customer_id", "date", "cds", "amount"], dtype={"date": str})
tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")


def timed(step, f):
    start = time.perf_counter()
    result = f()
    print(f"{step},{time.perf_counter() - start:.4f}", flush=True)
    return result


def rfm():
    s = summary_data_from_transaction_data(tx, "customer_id", "date", "amount", observation_period_end="1997-09-30", freq="D")
    s["recency"] /= 7.0
    s["T"] /= 7.0
    return s


s = timed("rfm", rfm)
bg = timed("bgnbd", lambda: BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"]))
pn = timed("pareto_nbd", lambda: ParetoNBDFitter().fit(s["frequency"], s["recency"], s["T"]))
repeat = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]
gg = timed("gamma_gamma", lambda: GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"]))
timed("score_clv", lambda: gg.customer_lifetime_value(bg, s["frequency"], s["recency"], s["T"], s["monetary_value"].clip(lower=0.01), time=9, freq="W", discount_rate=0.1 / 12))
print("params_bgnbd," + ",".join(f"{v:.4f}" for v in bg.params_.values))
print("params_pareto_nbd," + ",".join(f"{v:.4f}" for v in pn.params_.values))
print("params_gamma_gamma," + ",".join(f"{v:.4f}" for v in gg.params_.values))
