"""The RFM summary of customer_value.rfm() (issue #13), written idiomatically in pandas and in
DuckDB, timed on the same transactions (a CSV exported from the benchmark's table).

Definition (customer_value's defaults): purchases collapse to one per customer per day;
calibration = transactions on or before AS_OF; frequency = purchase days − 1; recency = weeks
from the first to the last purchase day; t = weeks from the first purchase day to AS_OF;
monetary_value = mean spend of the repeat purchase days (0 without repeats).

Usage: rfm_reference.py transactions.csv AS_OF RUNS
Prints one line per system: system,load_ms,best_ms,customers,sum_frequency,sum_t,sum_monetary
"""
import sys
import time

import duckdb
import numpy as np
import pandas as pd


def pandas_rfm(tx, as_of):
    calibration = tx[tx["purchased"] <= as_of]
    days = (calibration.groupby(["customer_id", "purchased"], sort=True)["amount"].sum()
            .reset_index())
    per_customer = days.groupby("customer_id", sort=False).agg(
        first=("purchased", "first"), last=("purchased", "last"),
        purchases=("purchased", "size"), total=("amount", "sum"),
        first_amount=("amount", "first"))
    week = np.timedelta64(7, "D")
    repeats = per_customer["purchases"] - 1
    return pd.DataFrame({
        "frequency": repeats,
        "recency": (per_customer["last"] - per_customer["first"]) / week,
        "t": (as_of - per_customer["first"]) / week,
        "monetary_value": np.where(repeats > 0,
                                   (per_customer["total"] - per_customer["first_amount"])
                                   / repeats.clip(lower=1), 0.0),
    })


DUCKDB_RFM = """
WITH days AS (
    SELECT customer_id, purchased, sum(amount) AS amount
      FROM tx WHERE purchased <= $as_of
     GROUP BY customer_id, purchased
), customers AS (
    SELECT customer_id, min(purchased) AS first, max(purchased) AS last, count(*) AS purchases,
           sum(amount) AS total, arg_min(amount, purchased) AS first_amount
      FROM days GROUP BY customer_id
)
SELECT customer_id, purchases - 1 AS frequency,
       date_diff('day', first, last) / 7.0 AS recency,
       date_diff('day', first, $as_of) / 7.0 AS t,
       CASE WHEN purchases > 1 THEN (total - first_amount) / (purchases - 1) ELSE 0 END AS monetary_value
  FROM customers
"""


def best_of(runs, run):
    best, result = None, None
    for _ in range(runs):
        start = time.perf_counter()
        result = run()
        elapsed = (time.perf_counter() - start) * 1000
        best = elapsed if best is None else min(best, elapsed)
    return best, result


def checksums(frame):
    return (len(frame), int(frame["frequency"].sum()), round(float(frame["t"].sum()), 1),
            round(float(frame["monetary_value"].sum()), 1))


def main():
    path, as_of, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    start = time.perf_counter()
    tx = pd.read_csv(path, names=["customer_id", "purchased", "amount"],
                     dtype={"customer_id": "int64", "amount": "float64"}, parse_dates=["purchased"])
    load_ms = (time.perf_counter() - start) * 1000
    as_of_ts = pd.Timestamp(as_of)
    ms, frame = best_of(runs, lambda: pandas_rfm(tx, as_of_ts))
    print(",".join(map(str, ("pandas", round(load_ms), round(ms)) + checksums(frame))))

    con = duckdb.connect()
    con.execute("SET threads = 2")
    start = time.perf_counter()
    con.execute(f"CREATE TABLE tx AS SELECT * FROM read_csv('{path}', header = false, "
                "columns = {'customer_id': 'BIGINT', 'purchased': 'DATE', 'amount': 'DOUBLE'})")
    load_ms = (time.perf_counter() - start) * 1000
    ms, frame = best_of(runs, lambda: con.execute(DUCKDB_RFM, {"as_of": as_of}).df())
    print(",".join(map(str, ("duckdb", round(load_ms), round(ms)) + checksums(frame))))


if __name__ == "__main__":
    main()
