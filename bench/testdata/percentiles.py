#!/usr/bin/env python3
"""Writes percentiles.json: numpy.percentile (method "linear", numpy's default) of a few
seeded samples, the reference bench's Percentile is tested against.
Run: .venv/bin/python bench/testdata/percentiles.py > bench/testdata/percentiles.json"""
import json
import numpy as np

rng = np.random.RandomState(12)
samples = {
    "one": [3.5],
    "two": [10.0, 20.0],
    "ties": [1.0, 1.0, 2.0, 2.0, 2.0, 7.0],
    "uniform100": rng.uniform(0, 100, 100).round(6).tolist(),
    "lognormal1000": rng.lognormal(3.0, 0.7, 1000).round(6).tolist(),
    "exp37": rng.exponential(12.0, 37).round(6).tolist(),
}
ps = [0, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100]
out = {"numpy": np.__version__, "percentiles": ps, "cases": {}}
for name, xs in samples.items():
    out["cases"][name] = {"x": xs, "want": [float(np.percentile(np.array(xs), p)) for p in ps]}
print(json.dumps(out, indent=1))
