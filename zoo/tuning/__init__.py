"""``zoo tune``: hyperparameter search on Optuna (``zoo.tune`` is :func:`zoo.tuning.study.tune`).

space.py parses and checks ``--space``; study.py runs the study (one ``zoo.train`` run directory per
trial, pruned on its per-epoch validation figure); summary.py is its result; report.py writes the
table, best.json and the plots.
"""
