"""What the solvers share (jaxopt's ``linesearch_util``): a line search from
its name or instance (``setup_linesearch``) and the first trial step
(``init_stepsize``).
"""
import dataclasses

from .backtracking import BacktrackingLineSearch
from .hager_zhang import HagerZhangLineSearch
from .zoom import ZoomLineSearch


_LINESEARCHES = {"backtracking": BacktrackingLineSearch, "zoom": ZoomLineSearch,
                 "hager-zhang": HagerZhangLineSearch}
_LINESEARCH_TYPES = tuple(_LINESEARCHES.values())


def check_linesearch(linesearch):
    """A line search name, or an instance of one of the three classes."""
    if isinstance(linesearch, _LINESEARCH_TYPES):
        return linesearch
    if linesearch not in _LINESEARCHES:
        raise ValueError(f"linesearch: expected one of {tuple(_LINESEARCHES)} or a line search "
                         f"instance, got {linesearch!r}")
    return linesearch


def setup_linesearch(linesearch, fun, value_and_grad, has_aux, maxlsiter, max_stepsize,
                     verbose, aux_is_none=False):
    """The line search a solver runs (jaxopt's ``_setup_linesearch``): built
    from its name with the solver's ``maxls`` and ``max_stepsize`` (unused by
    Hager-Zhang), or a copy of the given instance. Solver-owned line searches
    do not raise on non-descent directions (they fail as in jaxopt)."""
    check_linesearch(linesearch)
    if isinstance(linesearch, _LINESEARCH_TYPES):
        ls = dataclasses.replace(linesearch)
    else:
        kw = dict(fun=fun, value_and_grad=value_and_grad, has_aux=has_aux, maxiter=maxlsiter,
                  verbose=verbose)
        if linesearch != "hager-zhang":
            kw["max_stepsize"] = max_stepsize
        ls = _LINESEARCHES[linesearch](**kw)
        ls._aux_is_none = aux_is_none
    ls._check_descent = False
    return ls


_STRATEGIES = ("max", "current", "increase")


def check_linesearch_init(strategy):
    if strategy not in _STRATEGIES:
        raise ValueError(f"linesearch_init: expected one of {_STRATEGIES}, got {strategy!r}")
    return strategy


def init_stepsize(strategy, max_stepsize, min_stepsize, increase_factor, stepsize):
    """The first trial step of a solver's line search (jaxopt's ``_init_stepsize``):
    'max': max_stepsize; 'current': the last accepted step; 'increase': the
    last step times increase_factor, or max_stepsize once it fell to
    min_stepsize."""
    if strategy == "max":
        return max_stepsize
    if strategy == "current":
        return stepsize
    return max_stepsize if stepsize <= min_stepsize else stepsize * increase_factor
