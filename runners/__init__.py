"""The benchmark harness: builds inputs, checks correctness, times, measures memory, writes rows.

Entry points: `python -m runners.bench` (the Hydra app, `conf/bench.yaml`) and
`python -m runners.merge` (joins the part files of a sweep split over jobs).
"""
