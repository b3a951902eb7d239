"""Every optax 0.2.8 optimizer alias: same names, signatures and defaults, as
the chains optax builds (so each state has optax's structure and each
``update`` optax's numbers); ``step`` fuses the chain into one kernel pass
where it can (see ``npopt.transforms._fusion``).

Where they live:

* ``core``: sgd, adam, adamw, nadam, nadamw, rmsprop, adagrad, lamb;
* ``adam_variants``: amsgrad, adamax, adamaxw, adabelief, yogi, radam, adan;
* ``sign``: sign_sgd, signum; ``lion``; ``noise``: noisy_sgd;
* ``classic``: optimistic_gradient_descent, optimistic_adam(_v2), rprop, adadelta;
* ``per_leaf``: fromage, lars, novograd, polyak_sgd, sm3 (per-leaf reductions);
* ``adafactor``; ``lbfgs`` (its ``update`` takes ``value``, ``grad`` and
  ``value_fn`` plus ``grad_fn`` or ``value_and_grad_fn``, see its docstring).
"""
from .adafactor import adafactor
from .adam_variants import adabelief, adamax, adamaxw, adan, amsgrad, radam, yogi
from .classic import adadelta, optimistic_adam, optimistic_adam_v2, optimistic_gradient_descent, rprop
from .lbfgs import lbfgs
from .core import adagrad, adam, adamw, lamb, nadam, nadamw, rmsprop, sgd
from .per_leaf import fromage, lars, novograd, polyak_sgd, sm3
from .lion import lion
from .noise import noisy_sgd
from .sign import sign_sgd, signum
