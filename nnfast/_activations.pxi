# activations wrappers. Interim: the reference functions until the C kernels land (same branch).
from nnfast.backends._ref_activations import *  # noqa
