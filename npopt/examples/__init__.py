"""Runnable examples (``python -m npopt`` runs some of them in the demo).

* ``hyperopt``: hyperparameter optimisation of L2-regularised multiclass
  logistic regression through the implicit Jacobian, and a sensitivity
  analysis of the same model (``npopt.implicit_diff``).
"""
