# dense wrappers. Interim: the reference functions until the C kernels land (same branch).
from nnfast.backends._ref_dense import *  # noqa
