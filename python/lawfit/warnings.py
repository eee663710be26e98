"""Warnings of lawfit's own: a result that is computed but should not be trusted as it stands.

Every class derives from :class:`LawfitWarning` (a ``UserWarning``), so
``warnings.simplefilter("error", lawfit.LawfitWarning)`` turns all of them into errors and
``warnings.simplefilter("ignore", lawfit.LawfitWarning)`` silences them.
"""

from __future__ import annotations

__all__ = ["LawfitWarning", "IdentifiabilityWarning", "IllConditionedWarning", "BasinWarning",
           "BetterUnconvergedWarning", "ResampleWarning"]


class LawfitWarning(UserWarning):
    """Base class of lawfit's warnings."""


class IdentifiabilityWarning(LawfitWarning):
    """The Hessian of the objective at the optimum is singular or not positive definite over the free parameters:
    the data do not determine the parameters along the direction the message names (a flat valley, for example
    A and alpha of a term whose variable is constant). The estimates along it are arbitrary."""


class IllConditionedWarning(LawfitWarning):
    """The Hessian at the optimum is positive definite but nearly singular: the direction the message names is
    determined far more poorly than each parameter alone suggests."""


class BasinWarning(LawfitWarning):
    """Most bootstrap draws of a parameter lie far from the full-data estimate (the median draw is more than
    five robust standard errors away): the refits land in another basin than the full-data fit, so the spread
    of the draws does not describe the uncertainty of that estimate."""


class BetterUnconvergedWarning(LawfitWarning):
    """A start that stopped without converging (iteration limit, failed step) reached a clearly lower objective
    than the best converged start, which is the one reported: the reported optimum is not the lowest point
    found. Raise ``max_iter`` or change the starts."""


class ResampleWarning(LawfitWarning):
    """Many of the requested bootstrap resamples gave no draw (a resample with too few distinct runs for the
    law, or a refit that failed): the intervals rest on the draws that remain, and a forecast has no interval
    when none does. The message gives the counts."""

