"""The reference backend: plain NumPy, no compiled code of ours. It is the specification the
compiled backend is tested against, and the fallback when the extension is missing. Every
function here has a twin of the same name and signature in nnfast._native._kernels
(docs/ops_api.md).

The functions live in small modules by group; this module is the one list of them."""
from nnfast.backends import (
                            _ref_activations,
                            _ref_batchnorm,
                            _ref_conv,
                            _ref_dense,
                            _ref_dropout,
                            _ref_gemm,
                            _ref_loss,
                            _ref_netplan,
                            _ref_optim,
                            _ref_plan,
                            _ref_pool,
                            _ref_reduce,
)
from nnfast.backends._ref_activations import *  # noqa: F401,F403
from nnfast.backends._ref_batchnorm import *  # noqa: F401,F403
from nnfast.backends._ref_checks import all_finite, servable_input  # noqa: F401
from nnfast.backends._ref_conv import *  # noqa: F401,F403
from nnfast.backends._ref_dense import *  # noqa: F401,F403
from nnfast.backends._ref_dropout import *  # noqa: F401,F403
from nnfast.backends._ref_gemm import *  # noqa: F401,F403
from nnfast.backends._ref_loss import *  # noqa: F401,F403
from nnfast.backends._ref_netplan import *  # noqa: F401,F403
from nnfast.backends._ref_optim import *  # noqa: F401,F403
from nnfast.backends._ref_plan import *  # noqa: F401,F403
from nnfast.backends._ref_pool import *  # noqa: F401,F403
from nnfast.backends._ref_reduce import *  # noqa: F401,F403
from nnfast.backends._ref_step import make_train_step  # noqa: F401

__all__ = [name for mod in (_ref_gemm, _ref_activations, _ref_dense, _ref_loss, _ref_optim,
                            _ref_dropout, _ref_reduce, _ref_plan, _ref_conv, _ref_pool,
                            _ref_batchnorm, _ref_netplan) for name in mod.__all__]

# Plans: built once, then run many times (a training step in one call). Not ops: they return an
# object, so nnfast.ops and the kernel harness (tests/cases.py) leave them out; both backends
# export them under the same names and signatures (tests/test_train_step.py checks).
PLANS = ("make_train_step",)

# Checks the engine runs on user input: not ops either (nnfast.ops leaves them out); both
# backends export them under the same names and signatures (tests/test_plan_serving.py checks).
CHECKS = ("all_finite", "servable_input")
