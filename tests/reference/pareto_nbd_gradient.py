#!/usr/bin/env python3
"""Reference values for the Pareto/NBD gradient test (src/engine/clv/pareto_nbd.rs): one
customer's log-likelihood (Fader & Hardie 2005, "A Note on Deriving the Pareto/NBD Model and
Related Expressions", with A0 from mpmath's 2F1) and its gradient in (r, alpha, s, beta) by
mpmath.diff, at 30 digits. Needs mpmath (pip install mpmath). Prints one row per case:
r alpha s beta x t_x T, then the log-likelihood and its four derivatives."""
from mpmath import mp, mpf, hyp2f1, loggamma, log, diff

mp.dps = 30


def log_likelihood(r, alpha, s, beta, x, t_x, t):
    a = r + s + x
    if alpha >= beta:
        hi, b = alpha, s + 1
    else:
        hi, b = beta, r + x
    term = lambda u: hyp2f1(a, b, a + 1, abs(alpha - beta) / (hi + u)) / (hi + u) ** a
    a0 = term(t_x) - term(t)
    alive = 1 / ((alpha + t) ** (r + x) * (beta + t) ** s)
    return (loggamma(r + x) - loggamma(r) + r * log(alpha) + s * log(beta)
            + log(alive + s / a * a0))


CASES = [  # (r, alpha, s, beta, x, t_x, T)
    ("0.553", "10.578", "0.606", "11.669", 2, "30.43", "38.86"),  # CDNOW fit, alpha < beta
    ("0.6", "12", "0.8", "8", 5, "20", "35"),  # alpha > beta
    ("0.8", "6", "1.3", "6", 3, "4", "12"),  # alpha = beta
    ("0.5", "0.05", "0.7", "20", 0, "0", "30"),  # z = 0.9975 at t_x, alpha < beta
    ("0.9", "40", "0.4", "0.02", 1, "0.01", "25"),  # z = 0.99925 at t_x, alpha > beta
    ("0.6", "8", "0.8", "12", 50, "38", "40"),  # large x, alpha < beta
    ("0.6", "12", "0.8", "3", 50, "30", "40"),  # large x, alpha > beta
    ("1", "2", "0.5", "30", 2, "1", "30"),  # r + x an integer, z = 0.9 at t_x
    ("0.7", "30", "2", "1", 50, "2", "40"),  # s + 1 an integer, large x, z = 0.91 at t_x
    ("0.6", "1", "0.8", "40", 50, "2", "40"),  # large x, z = 0.93 at t_x, alpha < beta
    ("0.5", "50", "0.3", "0.001", 0, "0", "30"),  # z = 0.99998 at t_x, alpha > beta
    ("0.6", "8.1", "1.3e-6", "22634", 3, "10", "30"),  # near the s, beta boundary: z = 0.9993
    ("0.6", "1", "0.8", "12", 500, "2", "40"),  # x = 500, z = 0.79 at t_x, alpha < beta
    ("0.6", "1", "4", "40", 2, "1", "30"),  # z = 0.95 at t_x, s + 1 = 5 (y-series, fraction beyond)
    ("0.6", "1", "4", "40", 2, "10", "30"),  # z = 0.78 at t_x (continued fraction)
    ("0.6", "8", "1e4", "2e5", 3, "10", "30"),  # towards the s, beta -> infinity boundary
    ("0.7", "5", "1.1", "9", 4, "29.999", "30"),  # t_x close to T
    ("0.7", "5", "1.1", "9", 3, "25", "25"),  # t_x = T
]

for case in CASES:
    r, alpha, s, beta = (mpf(v) for v in case[:4])
    x, t_x, t = mpf(case[4]), mpf(case[5]), mpf(case[6])
    f = lambda r, alpha, s, beta: log_likelihood(r, alpha, s, beta, x, t_x, t)
    point = (r, alpha, s, beta)
    grad = [diff(f, point, tuple(int(k == j) for k in range(4))) for j in range(4)]
    values = [f(*point)] + grad
    # the case, then each value as the nearest double in its shortest form
    print(" ".join(str(v) for v in case), " ".join(repr(float(v)) for v in values))
