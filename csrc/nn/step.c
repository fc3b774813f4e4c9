/* One training step of a Sequential network in one call (issue 13; the image layers of issue 18:
 * Conv2D, pooling, batch normalization, Reshape): gather the batch rows, forward
 * through the layer list, the fused loss, backward from the last layer down to the first
 * trainable one, the kernel regularizers' gradients and the optimizer update. It calls the same
 * kernels in the same order, with the same arguments, as the per-layer path of
 * src/nnfast/engine/training.py, so on the same inputs it gives the same bits.
 *
 * Each layer's parameters (Dense, Conv2D: W, b; BatchNormalization: gamma, beta) are updated
 * right after its backward call has written their gradients (and read W or gamma for dx): the
 * update kernels are elementwise over fixed blocks, so updating a layer's slice of the flat
 * buffer gives the bits one call over the whole buffer gives. With
 * clipnorm the global norm needs every gradient first: the step then clips and updates the whole
 * buffer after the backward pass, as Optimizer.step does. The math is stated in nnfast.h. */
#include <string.h>
#include "nnfast.h"

static int act_needs_z(int act) {
    return act == NNF_ACT_RELU || act == NNF_ACT_LEAKY_RELU || act == NNF_ACT_ELU ||
           act == NNF_ACT_GELU || act == NNF_ACT_GELU_TANH || act == NNF_ACT_SILU ||
           act == NNF_ACT_SOFTPLUS;
}

#define NNF_DEFINE_STEP(T, SFX)                                                                    \
static void opt_update_##SFX(const nnf_step_opt_t *o, int64_t off, int64_t p, double wd,          \
                             double lr, int64_t t, int nt) {                                       \
    T *w = (T *)o->params + off;                                                                   \
    const T *g = (const T *)o->grads + off;                                                        \
    T *s0 = o->s0 ? (T *)o->s0 + off : NULL, *s1 = o->s1 ? (T *)o->s1 + off : NULL;                \
    switch (o->kind) {                                                                             \
    case NNF_OPT_SGD:                                                                              \
        nnf_sgd_update_##SFX(w, s0, g, lr, o->momentum, o->nesterov, wd, p, nt);     \
        break;                                                                                     \
    case NNF_OPT_ADAM:                                                                             \
        nnf_adam_update_##SFX(w, s0, s1, g, lr, o->beta1, o->beta2, o->eps, wd,                     \
                              o->decoupled, t, p, nt);                                             \
        break;                                                                                     \
    case NNF_OPT_RMSPROP:                                                                          \
        nnf_rmsprop_update_##SFX(w, s0, s1, g, lr, o->rho, o->eps, o->momentum, wd,                \
                                 p, nt);                                                           \
        break;                                                                                     \
    default:                                                                                       \
        nnf_adagrad_update_##SFX(w, s0, g, lr, o->eps, wd, p, nt);                           \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
/* A layer's update: W (gamma) with weight_decay, b (beta) with it too unless bias_decay is 0. */\
static void layer_update_##SFX(const nnf_step_opt_t *o, const nnf_step_layer_t *L, double lr,     \
                               int64_t t, int nt) {                                                \
    if (L->woff >= 0) opt_update_##SFX(o, L->woff, L->wsize, o->weight_decay, lr, t, nt);          \
    if (L->boff >= 0)                                                                              \
        opt_update_##SFX(o, L->boff, L->bsize, o->bias_decay ? o->weight_decay : 0.0, lr, t, nt); \
}                                                                                                  \
                                                                                                   \
/* dW += W·(T)(2·l2), then dW += sign(W)·(T)l1, each product rounded to T before the add, as     \
 * nnfast/regularizers.py L1L2.add_gradient does with its scratch array (np.sign(±0) = +0). */    \
static void reg_grad_##SFX(T *restrict dW, const T *restrict W, int64_t p, double l1, double l2) { \
    if (l2 != 0) {                                                                                 \
        const T c = (T)(2.0 * l2);                                                                 \
        for (int64_t i = 0; i < p; ++i) { T s = W[i] * c; dW[i] += s; }                            \
    }                                                                                              \
    if (l1 != 0) {                                                                                 \
        const T c = (T)l1;                                                                         \
        for (int64_t i = 0; i < p; ++i) {                                                          \
            T wi = W[i];                                                                           \
            T sg = wi > 0 ? (T)1 : wi < 0 ? (T)-1 : wi == 0 ? (T)0 : wi;                           \
            T s = sg * c;                                                                          \
            dW[i] += s;                                                                            \
        }                                                                                          \
    }                                                                                              \
}                                                                                                  \
                                                                                                   \
int nnf_mlp_train_step_##SFX(double *loss, nnf_step_layer_t *layers, int64_t nlayers,             \
                             int64_t first, const nnf_step_loss_t *ls, const nnf_step_opt_t *o,   \
                             const T *x, const void *y, int64_t y_row_bytes, const T *sw,         \
                             const int64_t *idx, int64_t row0, int64_t n, int64_t k0,              \
                             T *xb, void *yb, T *wb, double lr, int64_t t, uint64_t dstep,        \
                             int nt) {                                                             \
    const T *a;                                                                                    \
    const void *yt;                                                                                \
    const T *w;                                                                                    \
    int st;                                                                                        \
    if (idx) {  /* np.take(..., out=) of the rows idx[row0 : row0 + n] */                          \
        const int64_t *ix = idx + row0;                                                            \
        for (int64_t r = 0; r < n; ++r)                                                            \
            memcpy(xb + r * k0, x + ix[r] * k0, (size_t)k0 * sizeof(T));                           \
        for (int64_t r = 0; r < n; ++r)                                                            \
            memcpy((char *)yb + r * y_row_bytes, (const char *)y + ix[r] * y_row_bytes,           \
                   (size_t)y_row_bytes);                                                           \
        if (sw)                                                                                    \
            for (int64_t r = 0; r < n; ++r) wb[r] = sw[ix[r]];                                     \
        a = xb; yt = yb; w = sw ? wb : NULL;                                                       \
    } else {                                                                                       \
        a = x + row0 * k0;                                                                         \
        yt = (const char *)y + row0 * y_row_bytes;                                                 \
        w = sw ? sw + row0 : NULL;                                                                 \
    }                                                                                              \
    /* forward, mode "train" */                                                                    \
    for (int64_t i = 0; i < nlayers; ++i) {                                                        \
        nnf_step_layer_t *L = &layers[i];                                                          \
        L->in = a;                                                                                 \
        switch (L->kind) {                                                                         \
        case NNF_STEP_DENSE:                                                                       \
            st = nnf_dense_fwd_##SFX((T *)L->y, act_needs_z(L->act) ? (T *)L->z : NULL, a, L->k,  \
                                     0, (const T *)L->W, L->m, 0, (const T *)L->b, n, L->k, L->m, \
                                     L->act, (T)L->alpha, nt);                                     \
            if (st != NNF_OK) return st;                                                           \
            a = (const T *)L->y;                                                                   \
            break;                                                                                 \
        case NNF_STEP_ACT:                                                                         \
            if (L->act != NNF_ACT_IDENTITY) {                                                      \
                nnf_activation_fwd_##SFX((T *)L->y, a, n, L->m, L->act, (T)L->alpha, nt);          \
                a = (const T *)L->y;                                                               \
            }                                                                                      \
            break;                                                                                 \
        case NNF_STEP_DROPOUT:                                                                     \
            if (L->rate != 0) {                                                                    \
                nnf_dropout_fwd_##SFX((T *)L->y, a, n * L->m, L->rate, L->seed, dstep, nt);        \
                a = (const T *)L->y;                                                               \
            }                                                                                      \
            break;                                                                                 \
        case NNF_STEP_CONV2D: {                                                                    \
            nnf_conv_geom_t g = L->img->g;                                                         \
            g.N = n;                                                                               \
            st = nnf_conv2d_fwd_##SFX((T *)L->y, act_needs_z(L->act) ? (T *)L->z : NULL, a,       \
                                      (const T *)L->W, (const T *)L->b, &g, L->act, (T)L->alpha,  \
                                      nt);                                                         \
            if (st != NNF_OK) return st;                                                           \
            a = (const T *)L->y;                                                                   \
            break;                                                                                 \
        }                                                                                          \
        case NNF_STEP_MAXPOOL2D: {                                                                 \
            nnf_conv_geom_t g = L->img->g;                                                         \
            g.N = n;                                                                               \
            nnf_maxpool2d_fwd_##SFX((T *)L->y, L->img->argmax, a, &g, nt);                         \
            a = (const T *)L->y;                                                                   \
            break;                                                                                 \
        }                                                                                          \
        case NNF_STEP_AVGPOOL2D: {                                                                 \
            nnf_conv_geom_t g = L->img->g;                                                         \
            g.N = n;                                                                               \
            nnf_avgpool2d_fwd_##SFX((T *)L->y, a, &g, nt);                                         \
            a = (const T *)L->y;                                                                   \
            break;                                                                                 \
        }                                                                                          \
        case NNF_STEP_GLOBAL_AVG_POOL:                                                             \
            nnf_gavgpool2d_fwd_##SFX((T *)L->y, a, n, L->k / L->m, L->m, nt);                      \
            a = (const T *)L->y;                                                                   \
            break;                                                                                 \
        case NNF_STEP_BATCHNORM: {                                                                 \
            const nnf_step_img_t *im = L->img;                                                     \
            st = nnf_batchnorm_train_fwd_##SFX((T *)L->y, (T *)im->xhat, (T *)im->inv_std,         \
                                               (T *)im->moving_mean, (T *)im->moving_var, a,      \
                                               (const T *)L->W, (const T *)L->b, im->momentum,     \
                                               im->eps, n * (L->k / im->channels), im->channels,  \
                                               nt);                                                \
            if (st != NNF_OK) return st;                                                           \
            a = (const T *)L->y;                                                                   \
            break;                                                                                 \
        }                                                                                          \
        default: break; /* flatten, reshape: the same rows */                                      \
        }                                                                                          \
        L->out = a;                                                                                \
    }                                                                                              \
    /* the fused loss: d loss / d outputs into dout */                                             \
    const int64_t c = layers[nlayers - 1].m;                                                       \
    double total = 0.0;                                                                            \
    T *g = (T *)ls->dout;                                                                          \
    if (ls->kind == NNF_STEP_LOSS_XENT)                                                            \
        nnf_softmax_xent_##SFX(g, (double *)ls->row_loss, &total, a,                               \
                               ls->label_bytes ? yt : NULL, ls->label_bytes,                       \
                               ls->label_bytes ? NULL : (const T *)yt, w, NULL,                    \
                               ls->label_smoothing, 1.0 / (double)n, n, c, nt);                    \
    else                                                                                           \
        nnf_elem_loss_##SFX(ls->kind, g, (double *)ls->row_loss, &total, a, (const T *)yt, w,      \
                            ls->delta, 1.0 / (double)n, n, c, nt);                                 \
    *loss = total / (double)n;                                                                     \
    /* backward, last layer first; each layer updated once its gradient is complete */             \
    const int per_layer = o->clipnorm <= 0;                                                        \
    for (int64_t i = nlayers - 1; i >= first; --i) {                                               \
        nnf_step_layer_t *L = &layers[i];                                                          \
        const int need_dx = i > first;                                                            \
        switch (L->kind) {                                                                         \
        case NNF_STEP_DENSE:                                                                       \
            st = nnf_dense_bwd_##SFX(need_dx ? (T *)L->dx : NULL, (T *)L->dW, (T *)L->db,          \
                                     (T *)L->dz, g, (const T *)L->in, L->k, 0, (const T *)L->W,   \
                                     L->m, 0, act_needs_z(L->act) ? (const T *)L->z : NULL,        \
                                     (const T *)L->out, n, L->k, L->m, L->act, (T)L->alpha, 0,     \
                                     nt);                                                          \
            if (st != NNF_OK) return st;                                                           \
            if (L->l1 != 0 || L->l2 != 0)                                                          \
                reg_grad_##SFX((T *)L->dW, (const T *)L->W, L->k * L->m, L->l1, L->l2);            \
            if (per_layer) layer_update_##SFX(o, L, lr, t, nt);                                    \
            if (need_dx) g = (T *)L->dx;                                                           \
            break;                                                                                 \
        case NNF_STEP_ACT:                                                                         \
            if (L->act != NNF_ACT_IDENTITY) {                                                      \
                nnf_activation_bwd_##SFX((T *)L->dx, g,                                            \
                                         act_needs_z(L->act) ? (const T *)L->in : NULL,            \
                                         (const T *)L->out, n, L->m, L->act, (T)L->alpha, nt);     \
                g = (T *)L->dx;                                                                    \
            }                                                                                      \
            break;                                                                                 \
        case NNF_STEP_DROPOUT:                                                                     \
            if (L->rate != 0) {                                                                    \
                nnf_dropout_bwd_##SFX((T *)L->dx, g, n * L->m, L->rate, L->seed, dstep, nt);       \
                g = (T *)L->dx;                                                                    \
            }                                                                                      \
            break;                                                                                 \
        case NNF_STEP_CONV2D: {                                                                    \
            nnf_conv_geom_t cg = L->img->g;                                                        \
            cg.N = n;                                                                              \
            st = nnf_conv2d_bwd_##SFX(need_dx ? (T *)L->dx : NULL, (T *)L->dW, (T *)L->db,         \
                                      (T *)L->dz, g, (const T *)L->in, (const T *)L->W,           \
                                      act_needs_z(L->act) ? (const T *)L->z : NULL,                \
                                      (const T *)L->out, &cg, L->act, (T)L->alpha, 0, nt);         \
            if (st != NNF_OK) return st;                                                           \
            if (L->l1 != 0 || L->l2 != 0)                                                          \
                reg_grad_##SFX((T *)L->dW, (const T *)L->W, L->wsize, L->l1, L->l2);               \
            if (per_layer) layer_update_##SFX(o, L, lr, t, nt);                                    \
            if (need_dx) g = (T *)L->dx;                                                           \
            break;                                                                                 \
        }                                                                                          \
        case NNF_STEP_MAXPOOL2D: {                                                                 \
            nnf_conv_geom_t pg = L->img->g;                                                        \
            pg.N = n;                                                                              \
            nnf_maxpool2d_bwd_##SFX((T *)L->dx, g, L->img->argmax, &pg, nt);                       \
            g = (T *)L->dx;                                                                        \
            break;                                                                                 \
        }                                                                                          \
        case NNF_STEP_AVGPOOL2D: {                                                                 \
            nnf_conv_geom_t pg = L->img->g;                                                        \
            pg.N = n;                                                                              \
            nnf_avgpool2d_bwd_##SFX((T *)L->dx, g, &pg, nt);                                       \
            g = (T *)L->dx;                                                                        \
            break;                                                                                 \
        }                                                                                          \
        case NNF_STEP_GLOBAL_AVG_POOL:                                                             \
            nnf_gavgpool2d_bwd_##SFX((T *)L->dx, g, n, L->k / L->m, L->m, nt);                     \
            g = (T *)L->dx;                                                                        \
            break;                                                                                 \
        case NNF_STEP_BATCHNORM: {                                                                 \
            const nnf_step_img_t *im = L->img;                                                     \
            st = nnf_batchnorm_bwd_##SFX(need_dx ? (T *)L->dx : NULL, (T *)L->dW, (T *)L->db, g,   \
                                         (const T *)im->xhat, (const T *)L->W,                     \
                                         (const T *)im->inv_std, n * (L->k / im->channels),        \
                                         im->channels, 0, nt);                                     \
            if (st != NNF_OK) return st;                                                           \
            if (per_layer) layer_update_##SFX(o, L, lr, t, nt);                                    \
            if (need_dx) g = (T *)L->dx;                                                           \
            break;                                                                                 \
        }                                                                                          \
        default: break;                                                                            \
        }                                                                                          \
    }                                                                                              \
    if (!per_layer) {                                                                              \
        double norm;                                                                               \
        nnf_clip_grad_norm_##SFX(&norm, (T *)o->grads, o->clipnorm, o->p, nt);                     \
        for (int64_t i = first; i < nlayers; ++i)                                                  \
            layer_update_##SFX(o, &layers[i], lr, t, nt); /* woff = boff = -1: no parameters */ \
    }                                                                                              \
    return NNF_OK;                                                                                 \
}

NNF_DEFINE_STEP(float, f32)
NNF_DEFINE_STEP(double, f64)
