# C API of csrc/nnfast.h, mirrored for Cython. Keep in the same order as the header.
from libc.stdint cimport int64_t, uint64_t

cdef extern from "nnfast.h" nogil:
    # runtime
    enum:
        NNF_OK, NNF_ERR_NOMEM
    int nnf_have_openmp()
    enum:
        NNF_THREADING_POOL, NNF_THREADING_OPENMP
    int nnf_set_threading(int which)
    int nnf_get_threading()
    void nnf_pool_set_spin_us(int64_t us)
    int64_t nnf_pool_get_spin_us()
    int nnf_pool_workers()
    void nnf_pool_set_test_mode(int mode)

    # dispatch
    unsigned nnf_cpu_features()
    int nnf_isa_select(const char *name)
    int nnf_isa_active()
    const char *nnf_isa_name(int isa)
    void nnf_gemm_blocking(int dtype_size, int64_t out[5])
    enum:
        NNF_CPU_SSE2, NNF_CPU_SSE42, NNF_CPU_AVX, NNF_CPU_AVX2, NNF_CPU_FMA,
        NNF_CPU_AVX512F, NNF_CPU_AVX512DQ, NNF_CPU_AVX512BW, NNF_CPU_AVX512VL, NNF_CPU_NEON

    # GEMM
    ctypedef struct nnf_epilogue_t:
        const void *bias
        void *z
        int64_t ldz
        int act
        double act_alpha
    enum:
        NNF_ACT_IDENTITY, NNF_ACT_RELU, NNF_ACT_LEAKY_RELU, NNF_ACT_ELU, NNF_ACT_SIGMOID,
        NNF_ACT_TANH, NNF_ACT_GELU, NNF_ACT_GELU_TANH, NNF_ACT_SILU, NNF_ACT_SOFTPLUS,
        NNF_ACT_SOFTMAX, NNF_ACT_LOG_SOFTMAX
    int nnf_gemm_f32(float *C, int64_t ldc, const float *A, int64_t lda, const float *B,
                     int64_t ldb, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                     float alpha, float beta, int nthreads)
    int nnf_gemm_f64(double *C, int64_t ldc, const double *A, int64_t lda, const double *B,
                     int64_t ldb, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                     double alpha, double beta, int nthreads)
    int nnf_gemm_ep_f32(float *C, int64_t ldc, const float *A, int64_t lda, const float *B,
                        int64_t ldb, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                        float alpha, float beta, const nnf_epilogue_t *ep, int nthreads)
    int nnf_gemm_ep_f64(double *C, int64_t ldc, const double *A, int64_t lda, const double *B,
                        int64_t ldb, int64_t m, int64_t n, int64_t k, int trans_a, int trans_b,
                        double alpha, double beta, const nnf_epilogue_t *ep, int nthreads)
    double nnf_fma_peak(int dtype_size, int nthreads, double seconds)
    void nnf_gemm_set_alloc_limit(int64_t nbytes)
    int64_t nnf_gemm_workspace_bytes()

    # ---- activations (kna)
    void nnf_activation_fwd_f32(float *y, const float *x, int64_t N, int64_t M, int act,
                                float alpha, int nthreads)
    void nnf_activation_fwd_f64(double *y, const double *x, int64_t N, int64_t M, int act,
                                double alpha, int nthreads)
    void nnf_activation_bwd_f32(float *dz, const float *dy, const float *z, const float *y,
                                int64_t N, int64_t M, int act, float alpha, int nthreads)
    void nnf_activation_bwd_f64(double *dz, const double *dy, const double *z, const double *y,
                                int64_t N, int64_t M, int act, double alpha, int nthreads)

    # ---- dense (kna)
    int nnf_dense_fwd_f32(float *y, float *z, const float *x, int64_t ldx, int trans_x,
                          const float *W, int64_t ldw, int trans_w, const float *b,
                          int64_t N, int64_t K, int64_t M, int act, float alpha, int nthreads)
    int nnf_dense_fwd_f64(double *y, double *z, const double *x, int64_t ldx, int trans_x,
                          const double *W, int64_t ldw, int trans_w, const double *b,
                          int64_t N, int64_t K, int64_t M, int act, double alpha, int nthreads)
    int nnf_dense_bwd_f32(float *dx, float *dW, float *db, float *dz, const float *dy,
                          const float *x, int64_t ldx, int trans_x, const float *W, int64_t ldw,
                          int trans_w, const float *z, const float *y, int64_t N, int64_t K,
                          int64_t M, int act, float alpha, int accumulate, int nthreads)
    int nnf_dense_bwd_f64(double *dx, double *dW, double *db, double *dz, const double *dy,
                          const double *x, int64_t ldx, int trans_x, const double *W,
                          int64_t ldw, int trans_w, const double *z, const double *y,
                          int64_t N, int64_t K, int64_t M, int act, double alpha,
                          int accumulate, int nthreads)

    # ---- inference plan
    ctypedef struct nnf_mlp_op_t:
        int kind
        const void *W
        const void *b
        int64_t M
        int act
        double alpha
    enum:
        NNF_MLP_DENSE, NNF_MLP_ACT
    int64_t nnf_mlp_block_rows(const nnf_mlp_op_t *ops, int64_t nops, int64_t K, int dtype_size)
    int nnf_mlp_fwd_f32(float *y, const float *x, int64_t ldx, int trans_x,
                        const nnf_mlp_op_t *ops, int64_t nops, float *ws0, float *ws1,
                        int64_t N, int64_t K, int64_t rows, int nthreads)
    int nnf_mlp_fwd_f64(double *y, const double *x, int64_t ldx, int trans_x,
                        const nnf_mlp_op_t *ops, int64_t nops, double *ws0, double *ws1,
                        int64_t N, int64_t K, int64_t rows, int nthreads)

    # ---- losses (knb)
    enum:
        NNF_LOSS_BCE_LOGITS, NNF_LOSS_MSE, NNF_LOSS_HUBER
    void nnf_softmax_xent_f32(float *grad, double *row_loss, double *total, const float *logits,
                              const void *labels, int label_bytes, const float *probs,
                              const float *sample_weight, const float *class_weight, double eps,
                              double scale, int64_t n, int64_t c, int nthreads)
    void nnf_softmax_xent_f64(double *grad, double *row_loss, double *total,
                              const double *logits, const void *labels, int label_bytes,
                              const double *probs, const double *sample_weight,
                              const double *class_weight, double eps, double scale, int64_t n,
                              int64_t c, int nthreads)
    void nnf_elem_loss_f32(int kind, float *grad, double *row_loss, double *total,
                           const float *pred, const float *target, const float *sample_weight,
                           double delta, double scale, int64_t n, int64_t m, int nthreads)
    void nnf_elem_loss_f64(int kind, double *grad, double *row_loss, double *total,
                           const double *pred, const double *target,
                           const double *sample_weight, double delta, double scale, int64_t n,
                           int64_t m, int nthreads)

    # ---- optimizers (knb)
    void nnf_sgd_update_f32(float *params, float *velocity, const float *grads, double lr,
                            double momentum, int nesterov, double weight_decay, int64_t p,
                            int nthreads)
    void nnf_sgd_update_f64(double *params, double *velocity, const double *grads, double lr,
                            double momentum, int nesterov, double weight_decay, int64_t p,
                            int nthreads)
    void nnf_adam_update_f32(float *params, float *m, float *v, const float *grads, double lr,
                             double beta1, double beta2, double eps, double weight_decay,
                             int decoupled, int64_t step, int64_t p, int nthreads)
    void nnf_adam_update_f64(double *params, double *m, double *v, const double *grads,
                             double lr, double beta1, double beta2, double eps,
                             double weight_decay, int decoupled, int64_t step, int64_t p,
                             int nthreads)
    void nnf_rmsprop_update_f32(float *params, float *sq, float *velocity, const float *grads,
                                double lr, double rho, double eps, double momentum,
                                double weight_decay, int64_t p, int nthreads)
    void nnf_rmsprop_update_f64(double *params, double *sq, double *velocity,
                                const double *grads, double lr, double rho, double eps,
                                double momentum, double weight_decay, int64_t p, int nthreads)
    void nnf_adagrad_update_f32(float *params, float *acc, const float *grads, double lr,
                                double eps, double weight_decay, int64_t p, int nthreads)
    void nnf_adagrad_update_f64(double *params, double *acc, const double *grads, double lr,
                                double eps, double weight_decay, int64_t p, int nthreads)
    void nnf_clip_grad_norm_f32(double *norm, float *grads, double max_norm, int64_t p,
                                int nthreads)
    void nnf_clip_grad_norm_f64(double *norm, double *grads, double max_norm, int64_t p,
                                int nthreads)

    # ---- dropout (kna)
    void nnf_dropout_fwd_f32(float *y, const float *x, int64_t n, double rate, uint64_t seed,
                             uint64_t step, int nthreads)
    void nnf_dropout_fwd_f64(double *y, const double *x, int64_t n, double rate, uint64_t seed,
                             uint64_t step, int nthreads)
    void nnf_dropout_bwd_f32(float *dx, const float *dy, int64_t n, double rate, uint64_t seed,
                             uint64_t step, int nthreads)
    void nnf_dropout_bwd_f64(double *dx, const double *dy, int64_t n, double rate,
                             uint64_t seed, uint64_t step, int nthreads)

    # ---- reductions (kna)
    void nnf_argmax_rows_f32(int64_t *out, const float *x, int64_t N, int64_t M, int nthreads)
    void nnf_argmax_rows_f64(int64_t *out, const double *x, int64_t N, int64_t M, int nthreads)
    int64_t nnf_accuracy_f32(const float *x, const int64_t *labels, int64_t N, int64_t M,
                             int nthreads)
    int64_t nnf_accuracy_f64(const double *x, const int64_t *labels, int64_t N, int64_t M,
                             int nthreads)
    void nnf_column_sums_f32(float *out, const float *x, int64_t N, int64_t M, int accumulate,
                             int nthreads)
    void nnf_column_sums_f64(double *out, const double *x, int64_t N, int64_t M,
                             int accumulate, int nthreads)
    int nnf_all_finite_f32(const float *x, int64_t n)
    int nnf_all_finite_f64(const double *x, int64_t n)

    # ---- training step (issue 13)
    enum:
        NNF_STEP_DENSE, NNF_STEP_ACT, NNF_STEP_DROPOUT, NNF_STEP_FLATTEN, NNF_STEP_CONV2D,
        NNF_STEP_MAXPOOL2D, NNF_STEP_AVGPOOL2D, NNF_STEP_GLOBAL_AVG_POOL, NNF_STEP_BATCHNORM,
        NNF_STEP_RESHAPE
    enum:
        NNF_OPT_SGD, NNF_OPT_ADAM, NNF_OPT_RMSPROP, NNF_OPT_ADAGRAD
    enum:
        NNF_STEP_LOSS_XENT
    ctypedef struct nnf_step_layer_t:
        int kind, act
        double alpha
        int64_t k, m
        void *W
        void *b
        void *dW
        void *db
        int64_t woff, boff, wsize, bsize
        double l1, l2
        double rate
        uint64_t seed
        void *y
        void *z
        void *dz
        void *dx
        const void *in_ "in"
        const void *out
        nnf_step_img_t *img
    ctypedef struct nnf_step_loss_t:
        int kind, label_bytes
        double label_smoothing, delta
        void *dout
        void *row_loss
    ctypedef struct nnf_step_opt_t:
        int kind, nesterov, decoupled, bias_decay
        double momentum, beta1, beta2, eps, rho, weight_decay, clipnorm
        void *params
        void *grads
        void *s0
        void *s1
        int64_t p
    int nnf_mlp_train_step_f32(double *loss, nnf_step_layer_t *layers, int64_t nlayers,
                               int64_t first, const nnf_step_loss_t *ls, const nnf_step_opt_t *o,
                               const float *x, const void *y, int64_t y_row_bytes,
                               const float *sw, const int64_t *idx, int64_t row0, int64_t n,
                               int64_t k0, float *xb, void *yb, float *wb, double lr, int64_t t,
                               uint64_t dstep, int nt)
    int nnf_mlp_train_step_f64(double *loss, nnf_step_layer_t *layers, int64_t nlayers,
                               int64_t first, const nnf_step_loss_t *ls, const nnf_step_opt_t *o,
                               const double *x, const void *y, int64_t y_row_bytes,
                               const double *sw, const int64_t *idx, int64_t row0, int64_t n,
                               int64_t k0, double *xb, void *yb, double *wb, double lr,
                               int64_t t, uint64_t dstep, int nt)
    # ---- convolution, pooling, batch normalization (issue 18)
    ctypedef struct nnf_conv_geom_t:
        int64_t N, H, W, C, KH, KW, F, SH, SW, DH, DW, PT, PL, OH, OW
    # the training step's image-layer fields (issue 18)
    ctypedef struct nnf_step_img_t:
        nnf_conv_geom_t g
        int64_t *argmax
        int64_t channels
        double momentum, eps
        void *xhat
        void *inv_std
        void *moving_mean
        void *moving_var
    int nnf_conv2d_fwd_f32(float *y, float *z, const float *x, const float *Wt, const float *b,
                           const nnf_conv_geom_t *g, int act, float alpha, int nthreads)
    int nnf_conv2d_fwd_f64(double *y, double *z, const double *x, const double *Wt,
                           const double *b, const nnf_conv_geom_t *g, int act, double alpha,
                           int nthreads)
    int nnf_conv2d_bwd_f32(float *dx, float *dW, float *db, float *dz, const float *dy,
                           const float *x, const float *Wt, const float *z, const float *y,
                           const nnf_conv_geom_t *g, int act, float alpha, int accumulate,
                           int nthreads)
    int nnf_conv2d_bwd_f64(double *dx, double *dW, double *db, double *dz, const double *dy,
                           const double *x, const double *Wt, const double *z, const double *y,
                           const nnf_conv_geom_t *g, int act, double alpha, int accumulate,
                           int nthreads)
    void nnf_maxpool2d_fwd_f32(float *y, int64_t *argmax, const float *x,
                               const nnf_conv_geom_t *g, int nthreads)
    void nnf_maxpool2d_fwd_f64(double *y, int64_t *argmax, const double *x,
                               const nnf_conv_geom_t *g, int nthreads)
    void nnf_maxpool2d_bwd_f32(float *dx, const float *dy, const int64_t *argmax,
                               const nnf_conv_geom_t *g, int nthreads)
    void nnf_maxpool2d_bwd_f64(double *dx, const double *dy, const int64_t *argmax,
                               const nnf_conv_geom_t *g, int nthreads)
    void nnf_avgpool2d_fwd_f32(float *y, const float *x, const nnf_conv_geom_t *g, int nthreads)
    void nnf_avgpool2d_fwd_f64(double *y, const double *x, const nnf_conv_geom_t *g,
                               int nthreads)
    void nnf_avgpool2d_bwd_f32(float *dx, const float *dy, const nnf_conv_geom_t *g,
                               int nthreads)
    void nnf_avgpool2d_bwd_f64(double *dx, const double *dy, const nnf_conv_geom_t *g,
                               int nthreads)
    void nnf_gavgpool2d_fwd_f32(float *y, const float *x, int64_t N, int64_t P, int64_t C,
                                int nthreads)
    void nnf_gavgpool2d_fwd_f64(double *y, const double *x, int64_t N, int64_t P, int64_t C,
                                int nthreads)
    void nnf_gavgpool2d_bwd_f32(float *dx, const float *dy, int64_t N, int64_t P, int64_t C,
                                int nthreads)
    void nnf_gavgpool2d_bwd_f64(double *dx, const double *dy, int64_t N, int64_t P, int64_t C,
                                int nthreads)
    int nnf_batchnorm_train_fwd_f32(float *y, float *xhat, float *inv_std, float *moving_mean,
                                    float *moving_var, const float *x, const float *gamma,
                                    const float *beta, double momentum, double eps, int64_t R,
                                    int64_t C, int nthreads)
    int nnf_batchnorm_train_fwd_f64(double *y, double *xhat, double *inv_std,
                                    double *moving_mean, double *moving_var, const double *x,
                                    const double *gamma, const double *beta, double momentum,
                                    double eps, int64_t R, int64_t C, int nthreads)
    int nnf_batchnorm_infer_fwd_f32(float *y, const float *x, const float *gamma,
                                    const float *beta, const float *moving_mean,
                                    const float *moving_var, double eps, int64_t R, int64_t C,
                                    int nthreads)
    int nnf_batchnorm_infer_fwd_f64(double *y, const double *x, const double *gamma,
                                    const double *beta, const double *moving_mean,
                                    const double *moving_var, double eps, int64_t R, int64_t C,
                                    int nthreads)
    int nnf_batchnorm_bwd_f32(float *dx, float *dgamma, float *dbeta, const float *dy,
                              const float *xhat, const float *gamma, const float *inv_std,
                              int64_t R, int64_t C, int accumulate, int nthreads)
    int nnf_batchnorm_bwd_f64(double *dx, double *dgamma, double *dbeta, const double *dy,
                              const double *xhat, const double *gamma, const double *inv_std,
                              int64_t R, int64_t C, int accumulate, int nthreads)
    # ---- inference plan of a network with image layers (netplan.c)
    ctypedef struct nnf_net_op_t:
        int kind
        const void *W
        const void *b
        const void *gamma
        const void *beta
        const void *mean
        const void *var
        nnf_conv_geom_t g
        int64_t n_in, n_out
        int act
        double alpha
        double eps
    enum:
        NNF_NET_DENSE, NNF_NET_ACT, NNF_NET_CONV2D, NNF_NET_MAXPOOL2D, NNF_NET_AVGPOOL2D,
        NNF_NET_GAVGPOOL2D, NNF_NET_BATCHNORM
    int64_t nnf_net_block_images(const nnf_net_op_t *ops, int64_t nops, int64_t K,
                                 int dtype_size)
    int nnf_net_fwd_f32(float *y, const float *x, const nnf_net_op_t *ops, int64_t nops,
                        float *ws0, float *ws1, int64_t *arg, int64_t N, int64_t images,
                        int nthreads)
    int nnf_net_fwd_f64(double *y, const double *x, const nnf_net_op_t *ops, int64_t nops,
                        double *ws0, double *ws1, int64_t *arg, int64_t N, int64_t images,
                        int nthreads)
