"""The scikit-learn estimator protocol, without importing scikit-learn.

Importing ``sklearn.base`` costs about 1.3 s on this machine (it pulls in SciPy), longer than
the parse floor of a million-row batch, and ``reintegration score`` must stay within 2.5x of
that floor. So the index implements the protocol scikit-learn relies on (``get_params``,
``set_params``, ``__sklearn_is_fitted__``, ``__sklearn_tags__``) and stays cloneable, usable in a
``Pipeline`` and checkable with ``check_is_fitted``; the tests prove it against scikit-learn
itself. Learned models in ``models/`` inherit from scikit-learn directly.
"""

from __future__ import annotations

import inspect
from typing import Any, Self


class EstimatorMixin:
    """Parameters are the keyword arguments of ``__init__``; learned state ends with ``_``."""

    @classmethod
    def _param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this estimator, as scikit-learn's ``BaseEstimator.get_params``."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set parameters by name; unknown names raise ``ValueError`` as in scikit-learn."""
        valid = set(self._param_names())
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {sorted(valid)!r}."
                )
            setattr(self, name, value)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return any(k.endswith("_") and not k.startswith("__") for k in vars(self))

    def __sklearn_tags__(self) -> Any:
        # Only scikit-learn calls this, so scikit-learn is already imported by then.
        from sklearn.utils import Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type="transformer",
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(),
            requires_fit=True,
        )

    def __repr__(self) -> str:
        defaults = {
            name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = ", ".join(
            f"{k}={v!r}" for k, v in self.get_params().items() if not _same(defaults.get(k), v)
        )
        return f"{type(self).__name__}({changed})"


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b)
    except (TypeError, ValueError):  # e.g. arrays, whose == is element-wise
        return False
