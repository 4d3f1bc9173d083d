"""The shipped prompt-adherence judge, as the default the experiments layer wires in.

:func:`default_judge` returns :func:`pipeline.embedded.classifier.load_judge`
(object and colour, with abstention; a :class:`pipeline.judge.Judge`), or
``None`` with one warning when it cannot be loaded (the adherence columns then
stay empty).

Example
-------
>>> from pipeline.judge import Judge
>>> judge = default_judge()
>>> isinstance(judge, Judge)
True
"""

from __future__ import annotations

import warnings

from ..judge import Judge

__all__ = ["default_judge"]


def default_judge() -> Judge | None:
    """The shipped judge, or None (with a warning) when it cannot be loaded."""
    try:
        from .classifier import load_judge

        return load_judge()
    except Exception as err:  # noqa: BLE001 - no judge shipped: adherence columns stay empty
        warnings.warn(f"prompt adherence not measured: the shipped judge is unavailable ({err})", stacklevel=2)
        return None
