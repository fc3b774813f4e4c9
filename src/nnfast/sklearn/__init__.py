"""scikit-learn drop-ins: :class:`MLPClassifier` and :class:`MLPRegressor`.

Same constructor parameters, defaults, fitted attributes and methods as
``sklearn.neural_network.MLPClassifier``/``MLPRegressor``; training runs on nnfast's fused
kernels over one flat parameter buffer. Change the import, keep the code::

    from nnfast.sklearn import MLPClassifier   # was: from sklearn.neural_network import ...

scikit-learn is an optional extra: ``import nnfast`` never imports it, and importing this module
without it raises ImportError naming the extra to install.
"""
try:
    import sklearn  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        'nnfast.sklearn needs scikit-learn: pip install "nnfast[sklearn]"') from exc

from nnfast.sklearn._classifier import MLPClassifier
from nnfast.sklearn._regressor import MLPRegressor

__all__ = ["MLPClassifier", "MLPRegressor"]


def __dir__():  # tab completion shows the public names only, not np, math, ops ...
    return list(__all__)
