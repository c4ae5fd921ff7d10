/* Batch-norm passes, written once for float and double (included by batchnorm.c).
 * Data is [rows, c] with c contiguous: every inner loop runs over channels, so it
 * vectorizes; partial sums live in stack arrays of BN_CHANNELS channels. */

/* 1 / sqrt(var + epsilon), rounded once to T: forward and backward share it. */
static T FN(inv_std)(T var, double epsilon)
{
    return (T)(1.0 / sqrt((double)var + epsilon));
}

/* Sum and sum of squared deviations from the mean of rows [r0, r1) per channel,
 * into sum and m2 [c]. */
static void FN(stats_chunk)(const pycnn_batch_norm_desc *d, const bn_plan *p, const T *x,
                            int64_t r0, int64_t r1, double *sum, double *m2)
{
    const int64_t C = d->c;
    for (int64_t c = 0; c < C; c++)
        sum[c] = m2[c] = 0;
    int64_t seen = 0;
    for (int64_t b0 = r0; b0 < r1; b0 += p->block_rows) {
        const int64_t nb = min64(p->block_rows, r1 - b0);
        for (int64_t c0 = 0; c0 < C; c0 += BN_CHANNELS) {
            const int64_t cn = min64(BN_CHANNELS, C - c0);
            const T *block = x + b0 * C + c0;
            T block_mean[BN_CHANNELS], dev_sum[BN_CHANNELS], sq[BN_CHANNELS];
            for (int64_t c = 0; c < cn; c++)
                block_mean[c] = dev_sum[c] = sq[c] = 0;
            /* Rows four at a time: a quarter of the loads and stores of the partial sums. */
            int64_t r = 0;
            for (; r + 4 <= nb; r += 4) {
                const T *x0 = block + r * C, *x1 = x0 + C, *x2 = x1 + C, *x3 = x2 + C;
                for (int64_t c = 0; c < cn; c++)
                    block_mean[c] += (x0[c] + x1[c]) + (x2[c] + x3[c]);
            }
            for (; r < nb; r++)
                for (int64_t c = 0; c < cn; c++)
                    block_mean[c] += block[r * C + c];
            for (int64_t c = 0; c < cn; c++)
                block_mean[c] /= (T)nb;
            /* Second pass over the block while it is in L1: deviations from the rounded mean.
             * Their sum corrects the mean and the squares (the corrected two-pass algorithm of
             * Chan, Golub and LeVeque), so rounding in the T mean does not leak into the variance. */
            for (r = 0; r + 4 <= nb; r += 4) {
                const T *x0 = block + r * C, *x1 = x0 + C, *x2 = x1 + C, *x3 = x2 + C;
                for (int64_t c = 0; c < cn; c++) {
                    const T m = block_mean[c];
                    const T d0 = x0[c] - m, d1 = x1[c] - m, d2 = x2[c] - m, d3 = x3[c] - m;
                    dev_sum[c] += (d0 + d1) + (d2 + d3);
                    sq[c] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3);
                }
            }
            for (; r < nb; r++)
                for (int64_t c = 0; c < cn; c++) {
                    const T dev = block[r * C + c] - block_mean[c];
                    dev_sum[c] += dev;
                    sq[c] += dev * dev;
                }
            for (int64_t c = 0; c < cn; c++) {
                /* dev_sum is NaN when the mean is infinite: the sum is then nb * mean. */
                const double dev = isfinite(dev_sum[c]) ? (double)dev_sum[c] : 0.0;
                merge_moments(&sum[c0 + c], &m2[c0 + c], (double)seen, (double)nb,
                              (double)nb * (double)block_mean[c] + dev, (double)sq[c] - dev * dev / (double)nb);
            }
        }
        seen += nb;
    }
}

/* sum(dy) and sum(dy * (x - mean)) of rows [r0, r1) per channel, into sum_dy and sum_dyc [c]. */
static void FN(grad_sums_chunk)(const pycnn_batch_norm_desc *d, const bn_plan *p, const T *x, const T *dy,
                                const T *mean, int64_t r0, int64_t r1, double *sum_dy, double *sum_dyc)
{
    const int64_t C = d->c;
    for (int64_t c = 0; c < C; c++)
        sum_dy[c] = sum_dyc[c] = 0;
    for (int64_t b0 = r0; b0 < r1; b0 += p->block_rows) {
        const int64_t nb = min64(p->block_rows, r1 - b0);
        for (int64_t c0 = 0; c0 < C; c0 += BN_CHANNELS) {
            const int64_t cn = min64(BN_CHANNELS, C - c0);
            const T *xb = x + b0 * C + c0, *dyb = dy + b0 * C + c0, *m = mean + c0;
            T s1[BN_CHANNELS], s2[BN_CHANNELS];
            for (int64_t c = 0; c < cn; c++)
                s1[c] = s2[c] = 0;
            for (int64_t r = 0; r < nb; r++)
                for (int64_t c = 0; c < cn; c++) {
                    const T g = dyb[r * C + c];
                    s1[c] += g;
                    s2[c] += g * (xb[r * C + c] - m[c]);
                }
            for (int64_t c = 0; c < cn; c++) {
                sum_dy[c0 + c] += s1[c];
                sum_dyc[c0 + c] += s2[c];
            }
        }
    }
}

/* out = (x - mean) * scale + shift for rows [r0, r1). */
static void FN(normalize_rows)(int64_t C, const T *restrict x, const T *restrict mean, const T *restrict scale,
                               const T *restrict shift, T *restrict out, int64_t r0, int64_t r1)
{
    for (int64_t r = r0; r < r1; r++) {
        const T *row = x + r * C;
        T *o = out + r * C;
        for (int64_t c = 0; c < C; c++)
            o[c] = (row[c] - mean[c]) * scale[c] + shift[c];
    }
}

/* Training backward: dx = dy * scale - (x - mean) * k - shift for rows [r0, r1). */
static void FN(dx_rows)(int64_t C, const T *restrict x, const T *restrict dy, const T *restrict mean,
                        const T *restrict scale, const T *restrict k, const T *restrict shift,
                        T *restrict dx, int64_t r0, int64_t r1)
{
    for (int64_t r = r0; r < r1; r++) {
        const T *xr = x + r * C, *g = dy + r * C;
        T *o = dx + r * C;
        for (int64_t c = 0; c < C; c++)
            o[c] = g[c] * scale[c] - (xr[c] - mean[c]) * k[c] - shift[c];
    }
}

/* Frozen-statistics backward: dx = dy * scale for rows [r0, r1). */
static void FN(dx_scaled_rows)(int64_t C, const T *restrict dy, const T *restrict scale, T *restrict dx,
                               int64_t r0, int64_t r1)
{
    for (int64_t r = r0; r < r1; r++) {
        const T *g = dy + r * C;
        T *o = dx + r * C;
        for (int64_t c = 0; c < C; c++)
            o[c] = g[c] * scale[c];
    }
}

/* scale = inv_std * gamma (gamma NULL: 1), as the forward and backward both use it. */
static void FN(scale_of)(const pycnn_batch_norm_desc *d, const T *var, const T *gamma, T *scale)
{
    for (int64_t c = 0; c < d->c; c++) {
        const T inv = FN(inv_std)(var[c], d->epsilon);
        scale[c] = gamma == NULL ? inv : inv * gamma[c];
    }
}

/* The element-wise pass over every chunk (kind: BN_NORMALIZE, BN_DX or BN_DX_SCALED). */
static pycnn_status FN(elementwise)(const pycnn_batch_norm_desc *d, const bn_plan *p, int kind,
                                    const T *x, const T *dy, const T *mean, const T *scale, const T *k,
                                    const T *shift, T *out)
{
    int stop = 0;
    #pragma omp parallel for schedule(static) num_threads(worker_threads(p->chunks, d->rows * d->c))
    for (int64_t chunk = 0; chunk < p->chunks; chunk++) {
        if (stop_requested(&stop))
            continue;
        const int64_t r0 = chunk * p->chunk_rows, r1 = min64(r0 + p->chunk_rows, d->rows);
        if (kind == BN_NORMALIZE)
            FN(normalize_rows)(d->c, x, mean, scale, shift, out, r0, r1);
        else if (kind == BN_DX)
            FN(dx_rows)(d->c, x, dy, mean, scale, k, shift, out, r0, r1);
        else
            FN(dx_scaled_rows)(d->c, dy, scale, out, r0, r1);
    }
    return stop ? PYCNN_ERR_INTERRUPTED : PYCNN_OK;
}

static pycnn_status FN(forward_training)(const pycnn_batch_norm_desc *d, const bn_plan *p, const T *x,
                                         const T *gamma, const T *beta, T *y, T *mean, T *var,
                                         char *workspace)
{
    double *partials = (double *)(workspace + p->partials_offset);
    T *scale = (T *)(workspace + p->scale_offset), *shift = (T *)(workspace + p->shift_offset);
    const int64_t C = d->c;
    int stop = 0;
    #pragma omp parallel for schedule(static) num_threads(worker_threads(p->chunks, d->rows * C))
    for (int64_t chunk = 0; chunk < p->chunks; chunk++) {
        if (stop_requested(&stop))
            continue;
        const int64_t r0 = chunk * p->chunk_rows;
        FN(stats_chunk)(d, p, x, r0, min64(r0 + p->chunk_rows, d->rows),
                        partials + 2 * chunk * C, partials + (2 * chunk + 1) * C);
    }
    if (stop)
        return PYCNN_ERR_INTERRUPTED;
    /* Merge the chunks into chunk 0's slot, in chunk order. */
    for (int64_t chunk = 1; chunk < p->chunks; chunk++) {
        const double *chunk_sum = partials + 2 * chunk * C, *chunk_m2 = chunk_sum + C;
        const double seen = (double)(chunk * p->chunk_rows);
        const double n = (double)(min64((chunk + 1) * p->chunk_rows, d->rows) - chunk * p->chunk_rows);
        for (int64_t c = 0; c < C; c++)
            merge_moments(&partials[c], &partials[C + c], seen, n, chunk_sum[c], chunk_m2[c]);
    }
    for (int64_t c = 0; c < C; c++) {
        mean[c] = (T)(partials[c] / (double)d->rows);
        var[c] = (T)(partials[C + c] / (double)d->rows);
        shift[c] = beta == NULL ? (T)0 : beta[c];
    }
    FN(scale_of)(d, var, gamma, scale);
    return FN(elementwise)(d, p, BN_NORMALIZE, x, NULL, mean, scale, NULL, shift, y);
}

static pycnn_status FN(forward_inference)(const pycnn_batch_norm_desc *d, const bn_plan *p, const T *x,
                                          const T *mean, const T *var, const T *gamma, const T *beta, T *y,
                                          char *workspace)
{
    T *scale = (T *)(workspace + p->scale_offset), *shift = (T *)(workspace + p->shift_offset);
    FN(scale_of)(d, var, gamma, scale);
    for (int64_t c = 0; c < d->c; c++)
        shift[c] = beta == NULL ? (T)0 : beta[c];
    return FN(elementwise)(d, p, BN_NORMALIZE, x, NULL, mean, scale, NULL, shift, y);
}

static pycnn_status FN(backward)(const pycnn_batch_norm_desc *d, const bn_plan *p, int batch_stats,
                                 const T *x, const T *dy, const T *mean, const T *var, const T *gamma,
                                 T *dx, T *dgamma, T *dbeta, char *workspace)
{
    double *partials = (double *)(workspace + p->partials_offset);
    T *scale = (T *)(workspace + p->scale_offset), *shift = (T *)(workspace + p->shift_offset);
    T *k = (T *)(workspace + p->k_offset);
    const int64_t C = d->c;
    const int need_sums = batch_stats || dgamma != NULL || dbeta != NULL;
    int stop = 0;
    for (int64_t c = 0; c < 2 * C; c++)   /* the sums of zero rows */
        partials[c] = 0;
    if (need_sums) {
        #pragma omp parallel for schedule(static) num_threads(worker_threads(p->chunks, d->rows * C))
        for (int64_t chunk = 0; chunk < p->chunks; chunk++) {
            if (stop_requested(&stop))
                continue;
            const int64_t r0 = chunk * p->chunk_rows;
            FN(grad_sums_chunk)(d, p, x, dy, mean, r0, min64(r0 + p->chunk_rows, d->rows),
                                partials + 2 * chunk * C, partials + (2 * chunk + 1) * C);
        }
        if (stop)
            return PYCNN_ERR_INTERRUPTED;
        for (int64_t chunk = 1; chunk < p->chunks; chunk++)
            for (int64_t c = 0; c < 2 * C; c++)
                partials[c] += partials[2 * chunk * C + c];
    }
    const double *sum_dy = partials, *sum_dyc = partials + C;
    FN(scale_of)(d, var, gamma, scale);
    for (int64_t c = 0; c < C; c++) {
        const double inv = (double)FN(inv_std)(var[c], d->epsilon);
        if (dbeta != NULL)
            dbeta[c] = (T)sum_dy[c];
        if (dgamma != NULL)
            dgamma[c] = (T)(sum_dyc[c] * inv);
        /* Through the batch statistics: dx = scale * (dy - mean(dy) - x_hat * mean(dy * x_hat)). */
        const double per_row = d->rows > 0 ? 1.0 / (double)d->rows : 0.0;
        k[c] = (T)((double)scale[c] * inv * inv * sum_dyc[c] * per_row);
        shift[c] = (T)((double)scale[c] * sum_dy[c] * per_row);
    }
    if (batch_stats)
        return FN(elementwise)(d, p, BN_DX, x, dy, mean, scale, k, shift, dx);
    return FN(elementwise)(d, p, BN_DX_SCALED, NULL, dy, NULL, scale, NULL, NULL, dx);
}
