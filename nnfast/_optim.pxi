# optim wrappers
# TEMPORARY (until the C kernels land): the compiled names delegate to the reference.
from nnfast.backends import _ref_optim as _tmp_ref_optim
sgd_update = _tmp_ref_optim.sgd_update
adam_update = _tmp_ref_optim.adam_update
rmsprop_update = _tmp_ref_optim.rmsprop_update
adagrad_update = _tmp_ref_optim.adagrad_update
clip_grad_norm = _tmp_ref_optim.clip_grad_norm
