# The one-call training step (issue 13; the image layers of issue 18): TrainStep is built once
# per (model structure,
# optimizer, loss, dtype, workspace) and checks everything then; run() checks only the batch
# arguments and makes one C call (csrc/nn/step.c) with the GIL released.
from libc.stdint cimport int32_t
from libc.stdlib cimport calloc, free

cdef dict _STEP_KINDS = {"dense": NNF_STEP_DENSE, "activation": NNF_STEP_ACT,
                         "dropout": NNF_STEP_DROPOUT, "flatten": NNF_STEP_FLATTEN,
                         "conv2d": NNF_STEP_CONV2D, "max_pool2d": NNF_STEP_MAXPOOL2D,
                         "avg_pool2d": NNF_STEP_AVGPOOL2D,
                         "global_avg_pool2d": NNF_STEP_GLOBAL_AVG_POOL,
                         "batch_norm": NNF_STEP_BATCHNORM, "reshape": NNF_STEP_RESHAPE}
cdef dict _STEP_LOSSES = {"softmax_cross_entropy": NNF_STEP_LOSS_XENT,
                          "binary_cross_entropy": NNF_LOSS_BCE_LOGITS, "mse": NNF_LOSS_MSE,
                          "huber": NNF_LOSS_HUBER}
cdef dict _STEP_OPTS = {"sgd": NNF_OPT_SGD, "adam": NNF_OPT_ADAM, "rmsprop": NNF_OPT_RMSPROP,
                        "adagrad": NNF_OPT_ADAGRAD}


cdef void *_step_buf(str where, object a, tuple shape, int isz, bint optional=False) except? NULL:
    """A writeable C-contiguous array of the step's dtype and exactly this shape."""
    if a is None:
        if optional:
            return NULL
        raise ValueError(f"TrainStep: {where} is required, got None")
    if not cnp.PyArray_Check(a):
        raise TypeError(f"TrainStep: {where} must be a numpy.ndarray, got {type(a).__name__}")
    cdef cnp.ndarray arr = <cnp.ndarray>a
    if cnp.PyArray_ITEMSIZE(arr) != isz or arr.dtype.kind != "f":
        raise TypeError(f"TrainStep: {where} must be {'float32' if isz == 4 else 'float64'}, "
                        f"got {arr.dtype}")
    if tuple(a.shape) != shape:
        raise ValueError(f"TrainStep: {where} must have shape {shape}, got {a.shape}")
    _check_behaved("TrainStep", where, arr)
    if not cnp.PyArray_ISCARRAY(arr):   # C writes it as dense rows
        raise ValueError(f"TrainStep: {where} must be a writeable C-contiguous array")
    return cnp.PyArray_DATA(arr)


cdef int64_t _step_offset(str where, str name, void *a, void *da, char *pbase, char *gbase,
                          int64_t size, int64_t p, int isz) except -1:
    """Offset (in elements) of a parameter view inside params; its gradient must sit at the
    same offset inside grads."""
    cdef int64_t off = (<char *>a - pbase) // isz
    if <char *>a < pbase or (<char *>a - pbase) % isz or off + size > p:
        raise ValueError(f"TrainStep: {where}['{name}'] must be a view into params")
    if <char *>da - gbase != off * isz:
        raise ValueError(f"TrainStep: {where}['d{name}'] must sit in grads where "
                         f"{where}['{name}'] sits in params")
    return off


cdef class TrainStep:
    """One training step of a Sequential network in one C call; see
    nnfast.backends.reference.TrainStep for the arguments and the math."""
    cdef nnf_step_layer_t *_layers
    cdef nnf_step_img_t *_imgs
    cdef nnf_step_loss_t _loss
    cdef nnf_step_opt_t _opt
    cdef int64_t _n, _first, _k0, _c, _capacity
    cdef int _isz
    cdef readonly int64_t capacity
    cdef object _keep
    cdef double _wd, _eps
    cdef object _row_loss
    cdef tuple _in_shape

    def __cinit__(self):
        self._layers = NULL
        self._imgs = NULL

    def __dealloc__(self):
        free(self._layers)
        free(self._imgs)

    def __init__(self, layers, loss, optimizer, params, grads, first, capacity, input_shape):
        cdef str fn = "TrainStep"
        cdef Py_ssize_t i
        if not isinstance(layers, list) or not layers:
            raise ValueError(f"{fn}: layers must be a non-empty list of layer dicts, "
                             f"got {layers!r}")
        cdef int isz = _check_array(fn, "params", params, 1, 0)
        self._isz = isz
        cdef int64_t p = cnp.PyArray_DIM(<cnp.ndarray>params, 0)
        _step_buf("params", params, (p,), isz)
        _step_buf("grads", grads, (p,), isz)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"{fn}: capacity must be an int >= 1, got {capacity!r}")
        cdef int64_t cap = capacity
        self.capacity = self._capacity = cap
        if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first < len(layers):
            raise ValueError(f"{fn}: first must be a layer index in [0, {len(layers)}), "
                             f"got {first!r}")
        self._first = first
        self._in_shape = tuple(input_shape)
        self._keep = [params, grads, layers, loss, optimizer]
        self._layers = <nnf_step_layer_t *>calloc(len(layers), sizeof(nnf_step_layer_t))
        if self._layers == NULL:
            raise MemoryError(f"{fn}: no memory for {len(layers)} layers")
        self._n = len(layers)
        self._imgs = <nnf_step_img_t *>calloc(len(layers), sizeof(nnf_step_img_t))
        if self._imgs == NULL:
            raise MemoryError(f"{fn}: no memory for {len(layers)} layers")
        cdef int64_t width = 1
        for d in self._in_shape:
            width *= d
        self._k0 = width
        cdef nnf_step_layer_t *L
        cdef nnf_step_img_t *im
        cdef char *pbase = <char *>cnp.PyArray_DATA(<cnp.ndarray>params)
        cdef char *gbase = <char *>cnp.PyArray_DATA(<cnp.ndarray>grads)
        shape = self._in_shape        # per-sample shape of the layer's input
        for i, spec in enumerate(layers):
            L = &self._layers[i]
            im = &self._imgs[i]
            where = f"layers[{i}]"
            kind = spec.get("kind")
            if kind not in _STEP_KINDS:
                raise ValueError(f"{fn}: {where}['kind'] must be one of {', '.join(_STEP_KINDS)},"
                                 f" got {kind!r}")
            L.kind = _STEP_KINDS[kind]
            L.k = width
            L.woff = L.boff = -1
            need_dx = i > first
            out_shape = _step_layer(fn, where, spec, L, im, shape, pbase, gbase, p, isz)
            if L.kind in (NNF_STEP_CONV2D, NNF_STEP_MAXPOOL2D, NNF_STEP_AVGPOOL2D,
                          NNF_STEP_GLOBAL_AVG_POOL, NNF_STEP_BATCHNORM):
                L.img = im
            L.m = 1
            for d in out_shape:
                L.m *= d
            if L.kind == NNF_STEP_DENSE or L.kind == NNF_STEP_ACT or L.kind == NNF_STEP_CONV2D:
                L.act = _act_code(fn, spec.get("activation", "identity"))
                L.alpha = _real_param(fn, where + "['alpha']", spec.get("alpha", 0.0))
            if L.kind == NNF_STEP_DROPOUT:
                L.rate = _real_param(fn, where + "['rate']", spec.get("rate"), 0.0, 1.0, False,
                                     True)
                L.seed = <uint64_t>(int(spec.get("seed")) & 0xFFFFFFFFFFFFFFFF)
            if (L.woff >= 0 or L.boff >= 0) and i < first:
                raise ValueError(f"{fn}: {where} is a layer with parameters before first={first}")
            writes = not (L.kind == NNF_STEP_FLATTEN or L.kind == NNF_STEP_RESHAPE
                          or (L.kind == NNF_STEP_ACT and L.act == 0)
                          or (L.kind == NNF_STEP_DROPOUT and L.rate == 0))
            if writes:
                L.y = _step_buf(where + "['y']", spec.get("y"), (cap,) + out_shape, isz)
                if i >= first:
                    L.dx = _step_buf(where + "['dx']", spec.get("dx"), (cap,) + shape, isz,
                                     not need_dx)
            if L.kind == NNF_STEP_DENSE or L.kind == NNF_STEP_CONV2D:
                L.dz = _step_buf(where + "['dz']", spec.get("dz"), (cap,) + out_shape, isz)
                if L.act in (NNF_ACT_RELU, NNF_ACT_LEAKY_RELU, NNF_ACT_ELU, NNF_ACT_GELU,
                             NNF_ACT_GELU_TANH, NNF_ACT_SILU, NNF_ACT_SOFTPLUS):
                    L.z = _step_buf(where + "['z']", spec.get("z"), (cap,) + out_shape, isz)
            if L.kind == NNF_STEP_MAXPOOL2D:
                im.argmax = <int64_t *>_step_index_buf(where + "['argmax']", spec.get("argmax"),
                                                       (cap,) + out_shape)
            if L.kind == NNF_STEP_BATCHNORM:
                im.xhat = _step_buf(where + "['xhat']", spec.get("xhat"), (cap,) + shape, isz)
            if (L.kind == NNF_STEP_DENSE or L.kind == NNF_STEP_CONV2D) and L.b == NULL:
                scratch = _empty((L.m if L.kind == NNF_STEP_DENSE else out_shape[2],), isz)
                self._keep.append(scratch)   # no bias: the column sums still need somewhere
                L.db = cnp.PyArray_DATA(<cnp.ndarray>scratch)
            shape = out_shape
            width = L.m
        if self._layers[first].woff < 0 and self._layers[first].boff < 0:
            raise ValueError(f"{fn}: layers[{first}] (first) must be the first layer with "
                             f"parameters")
        self._c = width
        # the loss
        lk = loss.get("kind")
        if lk not in _STEP_LOSSES:
            raise ValueError(f"{fn}: loss['kind'] must be one of {', '.join(_STEP_LOSSES)}, "
                             f"got {lk!r}")
        self._loss.kind = _STEP_LOSSES[lk]
        self._loss.label_bytes = 8 if loss.get("labels") else 0
        if self._loss.label_bytes and self._loss.kind != NNF_STEP_LOSS_XENT:
            raise ValueError(f"{fn}: integer labels need the softmax_cross_entropy loss")
        self._loss.label_smoothing = _real_param(fn, "loss['label_smoothing']",
                                                 loss.get("label_smoothing", 0.0), 0.0, 1.0,
                                                 False, True)
        self._loss.delta = _real_param(fn, "loss['delta']", loss.get("delta", 1.0), 0.0,
                                       float("inf"), True, True, isz)
        self._loss.dout = _step_buf("loss['dout']", loss.get("dout"), (cap, width), isz)
        self._row_loss = np.empty(cap, np.float64)
        self._loss.row_loss = cnp.PyArray_DATA(<cnp.ndarray>self._row_loss)
        # the optimizer
        ok = optimizer.get("kind")
        if ok not in _STEP_OPTS:
            raise ValueError(f"{fn}: optimizer['kind'] must be one of {', '.join(_STEP_OPTS)}, "
                             f"got {ok!r}")
        self._opt.kind = _STEP_OPTS[ok]
        self._opt.params = cnp.PyArray_DATA(<cnp.ndarray>params)
        self._opt.grads = cnp.PyArray_DATA(<cnp.ndarray>grads)
        self._opt.p = p
        self._opt.momentum = _real_param(fn, "optimizer['momentum']",
                                         optimizer.get("momentum", 0.0), 0.0, 1.0, False)
        self._opt.nesterov = 1 if optimizer.get("nesterov") else 0
        self._opt.decoupled = 1 if optimizer.get("decoupled") else 0
        self._opt.bias_decay = 1 if optimizer.get("bias_decay", True) else 0
        self._opt.beta1 = _real_param(fn, "optimizer['beta_1']", optimizer.get("beta_1", 0.9),
                                      0.0, 1.0, False)
        self._opt.beta2 = _real_param(fn, "optimizer['beta_2']", optimizer.get("beta_2", 0.999),
                                      0.0, 1.0, False)
        self._opt.rho = _real_param(fn, "optimizer['rho']", optimizer.get("rho", 0.9), 0.0, 1.0,
                                    False)
        self._opt.eps = _real_param(fn, "optimizer['epsilon']", optimizer.get("epsilon", 1e-7),
                                    0.0, None, True)
        self._opt.weight_decay = _real_param(fn, "optimizer['weight_decay']",
                                             optimizer.get("weight_decay", 0.0), 0.0)
        self._wd, self._eps = self._opt.weight_decay, self._opt.eps
        cn = optimizer.get("clipnorm")
        self._opt.clipnorm = 0.0 if cn is None else _real_param(fn, "optimizer['clipnorm']", cn,
                                                                0.0, None, True)
        state = tuple(optimizer.get("state", ()))
        need = {NNF_OPT_SGD: 1 if self._opt.momentum else 0, NNF_OPT_ADAM: 2,
                NNF_OPT_RMSPROP: 2 if self._opt.momentum else 1, NNF_OPT_ADAGRAD: 1}[self._opt.kind]
        if len(state) != need:
            raise ValueError(f"{fn}: optimizer['state'] must hold {need} arrays, got {len(state)}")
        if self._opt.nesterov and self._opt.momentum == 0:
            raise ValueError(f"{fn}: nesterov=True needs momentum > 0")
        self._opt.s0 = _step_buf("optimizer['state'][0]", state[0], (p,), isz) if need else NULL
        self._opt.s1 = _step_buf("optimizer['state'][1]", state[1], (p,), isz) if need > 1 else NULL
        self._keep.append(state)

    def run(self, x, y, sample_weight=None, index=None, Py_ssize_t start=0, stop=None,
            xb=None, yb=None, wb=None, lr=0.001, t=1, dropout_step=0, weight_decay=None,
            epsilon=None):
        """One step on rows start:stop of x, y (of index[start:stop] when index is given);
        returns the batch loss Σ_i w_i·l_i / n (no weight penalty). weight_decay, epsilon:
        this step's values (None: the optimizer's)."""
        cdef str fn = "TrainStep.run"
        cdef int isz = self._isz
        if _itemsize_of(fn, "x", x) != isz:
            raise TypeError(f"{fn}: x must have dtype {'float32' if isz == 4 else 'float64'}, "
                            f"got {x.dtype}")
        if not cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>x) or tuple(x.shape[1:]) != self._in_shape:
            raise ValueError(f"{fn}: x must be C-contiguous of shape (N,) + {self._in_shape}, "
                             f"got {x.shape}")
        cdef int64_t N = x.shape[0]
        if not cnp.PyArray_Check(y) or not cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>y) or (
                y.shape[0] != N):
            raise ValueError(f"{fn}: y must be a C-contiguous array of {N} rows")
        cdef bint labels = self._loss.label_bytes != 0
        cdef int lb = 0
        if labels:
            if y.ndim != 1 or (y.dtype != np.int64 and y.dtype != np.int32):
                raise ValueError(f"{fn}: y must be int32 or int64 class labels of shape ({N},),"
                                 f" got {y.dtype} {y.shape}")
            lb = <int>cnp.PyArray_ITEMSIZE(<cnp.ndarray>y)
        else:
            _check_array(fn, "y", y, 2, isz)
            if y.shape[1] != self._c:
                raise ValueError(f"{fn}: y must have shape ({N}, {self._c}), got {y.shape}")
        cdef int64_t yrow = cnp.PyArray_STRIDE(<cnp.ndarray>y, 0) if N else 0
        if sample_weight is not None:
            _check_array(fn, "sample_weight", sample_weight, 1, isz)
            if sample_weight.shape[0] != N or not cnp.PyArray_ISCARRAY_RO(
                    <cnp.ndarray>sample_weight):
                raise ValueError(f"{fn}: sample_weight must be C-contiguous of shape ({N},)")
        cdef int64_t rows = N
        cdef const int64_t *ix = NULL
        if index is not None:
            if (not cnp.PyArray_Check(index) or index.dtype != np.int64 or index.ndim != 1
                    or not cnp.PyArray_ISCARRAY_RO(<cnp.ndarray>index)):
                raise ValueError(f"{fn}: index must be a C-contiguous int64 vector")
            rows = index.shape[0]
            ix = <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>index)
        cdef Py_ssize_t stop_ = rows if stop is None else stop
        cdef int64_t n = stop_ - start
        if start < 0 or stop_ > rows or n < 1 or n > self._capacity:
            raise ValueError(f"{fn}: rows {start}:{stop_} must be a non-empty range of at most "
                             f"{self._capacity} rows inside [0, {rows}]")
        cdef int64_t r, v
        cdef void *pxb = NULL
        cdef void *pyb = NULL
        cdef void *pwb = NULL
        if ix != NULL:
            with nogil:
                v = 0
                for r in range(start, stop_):
                    if ix[r] < 0 or ix[r] >= N:
                        v = 1
                        break
            if v:
                raise ValueError(f"{fn}: index[{r}] = {index[r]} is outside [0, {N})")
            pxb = _step_buf("xb", xb, (self._capacity,) + self._in_shape, isz)
            if (not cnp.PyArray_Check(yb) or yb.dtype != y.dtype or yb.shape[0] != self._capacity
                    or yb.shape[1:] != y.shape[1:] or not cnp.PyArray_ISCARRAY(<cnp.ndarray>yb)):
                raise ValueError(f"{fn}: yb must be a writeable C-contiguous {y.dtype} array of "
                                 f"shape {(self._capacity,) + y.shape[1:]}")
            pyb = cnp.PyArray_DATA(<cnp.ndarray>yb)
            if sample_weight is not None:
                pwb = _step_buf("wb", wb, (self._capacity,), isz)
        cdef const void *py = cnp.PyArray_DATA(<cnp.ndarray>y)
        cdef int64_t j, lab
        if labels:
            with nogil:
                v = -1
                for r in range(start, stop_):
                    j = ix[r] if ix != NULL else r
                    lab = (<const int64_t *>py)[j] if lb == 8 else (<const int32_t *>py)[j]
                    if lab < 0 or lab >= self._c:
                        v = r
                        break
            if v >= 0:
                raise ValueError(f"{fn}: labels must lie in [0, {self._c}), got "
                                 f"{y[index[v] if ix != NULL else v]}")
        cdef const char *pw = <const char *>_data_or_null(sample_weight)
        if pw != NULL:    # the fused loss would scale by them unchecked; the ops refuse them
            with nogil:
                v = -1
                for r in range(start, stop_):
                    j = ix[r] if ix != NULL else r
                    if ((<const float *>pw)[j] < 0 if isz == 4 else
                            (<const double *>pw)[j] < 0):
                        v = j
                        break
            if v >= 0:
                raise ValueError(f"{fn}: sample_weight must be non-negative, got "
                                 f"{float(sample_weight[v])!r} at index {v}")
        cdef double lr_ = _real_param(fn, "lr", lr, 0.0)
        cdef double wd = self._wd if weight_decay is None else _real_param(fn, "weight_decay",
                                                                           weight_decay, 0.0)
        cdef double eps = self._eps if epsilon is None else _real_param(fn, "epsilon", epsilon,
                                                                        0.0, None, True, False,
                                                                        isz)
        if labels:
            self._loss.label_bytes = lb
        self._opt.weight_decay = wd
        self._opt.eps = eps
        cdef int64_t t_ = _step_param(fn, t)
        cdef uint64_t ds = <uint64_t>dropout_step
        cdef const void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
        cdef const void *psw = _data_or_null(sample_weight)
        cdef double loss = 0.0
        cdef int st = NNF_OK, nt = _nthreads
        with nogil:
            if isz == 4:
                st = nnf_mlp_train_step_f32(&loss, self._layers, self._n, self._first,
                                            &self._loss, &self._opt, <const float *>px, py, yrow,
                                            <const float *>psw, ix, start, n, self._k0,
                                            <float *>pxb, pyb, <float *>pwb, lr_, t_, ds, nt)
            else:
                st = nnf_mlp_train_step_f64(&loss, self._layers, self._n, self._first,
                                            &self._loss, &self._opt, <const double *>px, py, yrow,
                                            <const double *>psw, ix, start, n, self._k0,
                                            <double *>pxb, pyb, <double *>pwb, lr_, t_, ds, nt)
        _check_status(fn, st)
        return loss


def make_train_step(layers, loss, optimizer, params, grads, first, capacity, input_shape):
    """A TrainStep (checks every argument now); see nnfast.backends.reference.make_train_step."""
    return TrainStep(layers, loss, optimizer, params, grads, first, capacity, input_shape)
