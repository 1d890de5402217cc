/* bf16 kernels for CPUs with AVX512-BF16 (bf16_kernels.py): softmax attention with a head width of 64, and an
   elementwise function of bf16 values applied by table.

   The attention computes what SDPA's CPU flash kernel computes, in the same precisions: scores q.k as float32 sums
   of bf16 products, scaled and soft-maxed in float32, the unnormalised probabilities rounded to bf16 and multiplied
   with v in float32, the sum divided out at the end and the output rounded to bf16. Each (batch, head) pair is
   worked whole by one thread (its keys and values repacked once into the layout VDPBF16PS reads), so results do
   not depend on the number of threads. Threads are OpenMP's: linked with -fopenmp, the library finds the libgomp
   torch has loaded, so its threads are torch's, already spinning after the linear before. */

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH 64               /* head width */
#define PAIRS (WIDTH / 2)      /* VDPBF16PS multiplies pairs of bf16 */
#define ROWS 6                 /* query rows worked at once: ROWS x KEY_BLOCKS float32 accumulators */
#define KEY_BLOCKS 4           /* 16 keys each */

typedef uint16_t bf16;

typedef struct {
    const bf16 *q, *k, *v;
    bf16 *out;
    int64_t heads, queries, keys;
    int64_t qs[3], ks[3], vs[3], os[3]; /* strides of batch, head and token, in elements */
    float scale;
    int64_t begin, end;                 /* the (batch, head) pairs, flattened, this job works */
    int failed;
} Job;

static inline uint32_t pair_at(const bf16 *row, int t) {
    uint32_t pair;
    memcpy(&pair, row + 2 * t, sizeof pair);
    return pair;
}

/* exp of float32 lanes (Cephes' expf: within 2 ulp), for x <= 0 as softmax gives it. */
static inline __m512 exp_ps(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* Keys as VDPBF16PS reads them: [PAIRS][keys16] pairs, padded with zero keys to a multiple of 16. */
static void pack_keys(const bf16 *k, int64_t stride, int64_t keys, int64_t keys16, uint32_t *packed) {
    const __m512i rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)stride));
    for (int64_t j0 = 0; j0 < keys16; j0 += 16) {
        __mmask16 valid = j0 + 16 <= keys ? 0xffff : (__mmask16)((1u << (keys - j0)) - 1);
        for (int t = 0; t < PAIRS; t++)
            _mm512_storeu_si512(packed + t * keys16 + j0,
                                _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), valid, rows, k + j0 * stride + 2 * t, 2));
    }
}

/* Values as [keys2 / 2][WIDTH][2]: rows 2i and 2i + 1 interleaved, a zero row after an odd last one. */
static void pack_values(const bf16 *v, int64_t stride, int64_t keys, int64_t keys2, bf16 *packed) {
    const __m512i low = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                         39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i high = _mm512_add_epi16(low, _mm512_set1_epi16(16));
    for (int64_t j = 0; j < keys2; j += 2)
        for (int half = 0; half < 2; half++) {
            __m512i a = _mm512_loadu_si512(v + j * stride + 32 * half);
            __m512i b = j + 1 < keys ? _mm512_loadu_si512(v + (j + 1) * stride + 32 * half) : _mm512_setzero_si512();
            _mm512_storeu_si512(packed + j * WIDTH + 64 * half, _mm512_permutex2var_epi16(a, low, b));
            _mm512_storeu_si512(packed + j * WIDTH + 64 * half + 32, _mm512_permutex2var_epi16(a, high, b));
        }
}

/* scores[r][j0, j0 + 16 * blocks) = q_r . k_j for ROWS query rows. */
static inline __attribute__((always_inline)) void score_keys(const bf16 *const rows[ROWS], const bf16 *packed,
                                                             int64_t keys16, int64_t j0, int blocks,
                                                             __m512 factor, float *scores) {
    __m512 acc[ROWS][KEY_BLOCKS];
    for (int r = 0; r < ROWS; r++)
        for (int n = 0; n < blocks; n++) acc[r][n] = _mm512_setzero_ps();
    for (int t = 0; t < PAIRS; t++) {
        __m512i key[KEY_BLOCKS];
        for (int n = 0; n < blocks; n++) key[n] = _mm512_loadu_si512(packed + 2 * (t * keys16 + j0 + 16 * n));
        for (int r = 0; r < ROWS; r++) {
            __m512i query = _mm512_set1_epi32((int)pair_at(rows[r], t));
            for (int n = 0; n < blocks; n++)
                acc[r][n] = _mm512_dpbf16_ps(acc[r][n], (__m512bh)query, (__m512bh)key[n]);
        }
    }
    for (int r = 0; r < ROWS; r++)
        for (int n = 0; n < blocks; n++)
            _mm512_storeu_ps(scores + r * keys16 + j0 + 16 * n, _mm512_mul_ps(acc[r][n], factor));
}

/* One row's scores scaled, exponentiated against their maximum into bf16 probabilities (zero past the keys);
   returns 1 / their float32 sum. */
static float exponentiate(const float *scores, int64_t keys, int64_t keys16, bf16 *probabilities) {
    __m512 top = _mm512_set1_ps(-__builtin_inff());
    for (int64_t j = 0; j < keys16; j += 16) {
        __mmask16 valid = j + 16 <= keys ? 0xffff : (j < keys ? (__mmask16)((1u << (keys - j)) - 1) : 0);
        top = _mm512_mask_max_ps(top, valid, top, _mm512_loadu_ps(scores + j));
    }
    const __m512 maximum = _mm512_set1_ps(_mm512_reduce_max_ps(top));
    __m512 total = _mm512_setzero_ps();
    for (int64_t j = 0; j < keys16; j += 16) {
        __mmask16 valid = j + 16 <= keys ? 0xffff : (j < keys ? (__mmask16)((1u << (keys - j)) - 1) : 0);
        __m512 e = _mm512_maskz_mov_ps(valid, exp_ps(_mm512_sub_ps(_mm512_loadu_ps(scores + j), maximum)));
        total = _mm512_add_ps(total, e);
        _mm256_storeu_si256((__m256i *)(probabilities + j), (__m256i)_mm512_cvtneps_pbh(e));
    }
    return 1.0f / _mm512_reduce_add_ps(total);
}

static void prefetch_rows(const bf16 *rows, int64_t stride, int64_t from, int64_t to) {
    for (int64_t r = from; r < to; r++) {
        _mm_prefetch((const char *)(rows + r * stride), _MM_HINT_T1);
        _mm_prefetch((const char *)(rows + r * stride + 32), _MM_HINT_T1);
    }
}

static void work(Job *job) {
    const int64_t keys = job->keys, keys16 = (keys + 15) / 16 * 16, keys2 = (keys + 1) / 2 * 2;
    uint32_t *packed_keys = aligned_alloc(64, PAIRS * keys16 * sizeof(uint32_t));
    bf16 *packed_values = aligned_alloc(64, (keys2 * WIDTH * sizeof(bf16) + 63) / 64 * 64);
    float *scores = aligned_alloc(64, ROWS * keys16 * sizeof(float));
    bf16 *probabilities = aligned_alloc(64, ROWS * keys16 * sizeof(bf16));
    if (!packed_keys || !packed_values || !scores || !probabilities) {
        job->failed = 1;
        goto done;
    }
    for (int64_t pair = job->begin; pair < job->end; pair++) {
        const int64_t b = pair / job->heads, h = pair % job->heads;
        const bf16 *q = job->q + b * job->qs[0] + h * job->qs[1];
        bf16 *out = job->out + b * job->os[0] + h * job->os[1];
        pack_keys(job->k + b * job->ks[0] + h * job->ks[1], job->ks[2], keys, keys16, packed_keys);
        pack_values(job->v + b * job->vs[0] + h * job->vs[1], job->vs[2], keys, keys2, packed_values);
        /* the next pair's rows are fetched while this one is worked: a share with each block of queries */
        const int more = pair + 1 < job->end;
        const int64_t nb = (pair + 1) / job->heads, nh = (pair + 1) % job->heads;
        const bf16 *next_q = job->q + nb * job->qs[0] + nh * job->qs[1];
        const bf16 *next_k = job->k + nb * job->ks[0] + nh * job->ks[1];
        const bf16 *next_v = job->v + nb * job->vs[0] + nh * job->vs[1];
        for (int64_t i0 = 0; i0 < job->queries; i0 += ROWS) {
            if (more) {
                const int64_t from = i0 * keys / job->queries, to = (i0 + ROWS) * keys / job->queries;
                prefetch_rows(next_k, job->ks[2], from, to < keys ? to : keys);
                prefetch_rows(next_v, job->vs[2], from, to < keys ? to : keys);
                prefetch_rows(next_q, job->qs[2], i0, i0 + ROWS < job->queries ? i0 + ROWS : job->queries);
            }
            const bf16 *rows[ROWS];
            for (int r = 0; r < ROWS; r++)  /* past the last query, its row again (computed, not stored) */
                rows[r] = q + (i0 + r < job->queries ? i0 + r : job->queries - 1) * job->qs[2];
            const __m512 factor = _mm512_set1_ps(job->scale);
            int64_t j0 = 0;
            for (; j0 + 16 * KEY_BLOCKS <= keys16; j0 += 16 * KEY_BLOCKS)
                score_keys(rows, (const bf16 *)packed_keys, keys16, j0, KEY_BLOCKS, factor, scores);
            for (; j0 < keys16; j0 += 16) score_keys(rows, (const bf16 *)packed_keys, keys16, j0, 1, factor, scores);
            float inverse[ROWS];
            for (int r = 0; r < ROWS; r++)
                inverse[r] = exponentiate(scores + r * keys16, keys, keys16, probabilities + r * keys16);
            __m512 acc[ROWS][WIDTH / 16];
            for (int r = 0; r < ROWS; r++)
                for (int c = 0; c < WIDTH / 16; c++) acc[r][c] = _mm512_setzero_ps();
            for (int64_t j = 0; j < keys2; j += 2) {
                __m512i value[WIDTH / 16];
                for (int c = 0; c < WIDTH / 16; c++) value[c] = _mm512_loadu_si512(packed_values + j * WIDTH + 32 * c);
                for (int r = 0; r < ROWS; r++) {
                    __m512i probability = _mm512_set1_epi32((int)pair_at(probabilities + r * keys16, (int)(j / 2)));
                    for (int c = 0; c < WIDTH / 16; c++)
                        acc[r][c] = _mm512_dpbf16_ps(acc[r][c], (__m512bh)probability, (__m512bh)value[c]);
                }
            }
            for (int r = 0; r < ROWS && i0 + r < job->queries; r++) {
                bf16 *row = out + (i0 + r) * job->os[2];
                const __m512 factor = _mm512_set1_ps(inverse[r]);
                for (int c = 0; c < WIDTH / 16; c++)
                    _mm256_storeu_si256((__m256i *)(row + 16 * c),
                                        (__m256i)_mm512_cvtneps_pbh(_mm512_mul_ps(acc[r][c], factor)));
            }
        }
    }
done:
    free(packed_keys);
    free(packed_values);
    free(scores);
    free(probabilities);
}

/* out = softmax(q k^T * scale) v for q [batch, heads, queries, 64], k and v [batch, heads, keys, 64] and out
   [batch, heads, queries, 64], each given by its strides (in elements) of batch, head and token, its head width
   contiguous; over `threads` OpenMP threads (torch's own: the process holds one libgomp). Returns 0, or -1 where
   memory ran out. */
int attention(const bf16 *q, const bf16 *k, const bf16 *v, bf16 *out, int64_t batch, int64_t heads,
              int64_t queries, int64_t keys, const int64_t *qs, const int64_t *ks, const int64_t *vs,
              const int64_t *os, float scale, int threads) {
    const int64_t pairs = batch * heads;
    int failed = 0;
#pragma omp parallel num_threads(threads < 1 ? 1 : threads) reduction(| : failed)
    {
        const int64_t count = omp_get_num_threads(), index = omp_get_thread_num();
        Job job = {q, k, v, out, heads, queries, keys, {0}, {0}, {0}, {0}, scale, pairs * index / count,
                   pairs * (index + 1) / count, 0};
        memcpy(job.qs, qs, sizeof job.qs);
        memcpy(job.ks, ks, sizeof job.ks);
        memcpy(job.vs, vs, sizeof job.vs);
        memcpy(job.os, os, sizeof job.os);
        if (job.begin < job.end) work(&job);
        failed |= job.failed;
    }
    return failed ? -1 : 0;
}

/* x[i] = table[x[i]] in place for n bf16 values: a function of one bf16 value, tabulated for all 65536 of them,
   over `threads` OpenMP threads. */
void tabulated(uint16_t *x, int64_t n, const uint16_t *table, int threads) {
#pragma omp parallel for num_threads(threads < 1 ? 1 : threads) schedule(static)
    for (int64_t i = 0; i < n; i++) x[i] = table[x[i]];
}
