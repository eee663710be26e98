"""lawfit: fast, trustworthy fitting of neural scaling laws.

>>> import lawfit
>>> runs = lawfit.datasets.chinchilla(drop_highest=5)
>>> result = lawfit.fit("chinchilla", runs, starts="hoffmann")
>>> print(result.summary())
"""

from __future__ import annotations

from . import allocation, backends, datasets, downstream, engine, isoflop, laws, losses, runner, starts
from .backends import BackendUnavailable
from .backtest import BacktestResult, backtest
from .bootstrap import BootstrapResult, bootstrap, sandwich
from .engine import BatchFit, evaluate, minimize
from .expr import parse, symbols
from .fitting import FitResult, fit
from .laws import Law, Param, law
from .losses import Loss
from .problem import Problem, problem
from .runner import Interrupted
from .status import Status
from .warnings import IdentifiabilityWarning, IllConditionedWarning, LawfitWarning

__version__ = "0.1.0"

__all__ = ["fit", "FitResult", "backtest", "BacktestResult", "Loss", "BatchFit", "losses", "Problem", "problem",
           "bootstrap", "BootstrapResult", "downstream",
           "sandwich", "law", "Law", "Param", "laws", "datasets", "engine", "starts", "allocation", "evaluate",
           "minimize",
           "Status", "parse", "symbols", "backends", "BackendUnavailable", "runner",
           "Interrupted", "isoflop", "LawfitWarning", "IdentifiabilityWarning", "IllConditionedWarning",
           "__version__"]
