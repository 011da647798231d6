/*
** data_rng.c: the random streams behind openretina's data shuffling.
**
** openretina draws its validation clips with numpy.random.RandomState(seed),
** shifts and orders training chunks with numpy's global generator and
** shuffles the session order of its LongCycler with Python's random
** module; after seed_everything(seed) both are MT19937 seeded with `seed`.
** Reproducing them (the same generator, the same seeding, the same way of
** turning words into bounded integers) makes a fovea run pick the same
** validation clips and the same batch order as openretina's.  The
** algorithms are the published MT19937 and the documented integer drawing
** of numpy's legacy RandomState and of CPython's random module.
*/
#include "data/data_internal.h"

#define MT_N 624
#define MT_M 397

static void init_genrand(fv__mt19937 *mt, uint32_t s)
{
	mt->key[0] = s;
	for (int i = 1; i < MT_N; i++) {
		uint32_t prev = mt->key[i - 1];
		mt->key[i] = 1812433253U * (prev ^ (prev >> 30)) + (uint32_t)i;
	}
	mt->pos = MT_N;
}

void fv__mt_seed_numpy(fv__mt19937 *mt, uint32_t seed)
{
	init_genrand(mt, seed);
}

/* CPython's random.seed(int): the absolute value as little-endian 32-bit
** words, fed to init_by_array. */
void fv__mt_seed_python(fv__mt19937 *mt, uint64_t seed)
{
	uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
	int key_len = key[1] != 0 ? 2 : 1;
	uint32_t *m = mt->key;
	init_genrand(mt, 19650218U);
	int i = 1, j = 0;
	for (int k = MT_N > key_len ? MT_N : key_len; k > 0; k--) {
		m[i] = (m[i] ^ ((m[i - 1] ^ (m[i - 1] >> 30)) * 1664525U)) + key[j] + (uint32_t)j;
		i++;
		j++;
		if (i >= MT_N) {
			m[0] = m[MT_N - 1];
			i = 1;
		}
		if (j >= key_len)
			j = 0;
	}
	for (int k = MT_N - 1; k > 0; k--) {
		m[i] = (m[i] ^ ((m[i - 1] ^ (m[i - 1] >> 30)) * 1566083941U)) - (uint32_t)i;
		i++;
		if (i >= MT_N) {
			m[0] = m[MT_N - 1];
			i = 1;
		}
	}
	m[0] = 0x80000000U;
	mt->pos = MT_N;
}

static uint32_t twist(uint32_t upper, uint32_t lower, uint32_t far)
{
	uint32_t y = (upper & 0x80000000U) | (lower & 0x7fffffffU);
	return far ^ (y >> 1) ^ ((y & 1U) ? 0x9908b0dfU : 0U);
}

static void regenerate(fv__mt19937 *mt)
{
	uint32_t *m = mt->key;
	int k = 0;
	for (; k < MT_N - MT_M; k++)
		m[k] = twist(m[k], m[k + 1], m[k + MT_M]);
	for (; k < MT_N - 1; k++)
		m[k] = twist(m[k], m[k + 1], m[k + MT_M - MT_N]);
	m[MT_N - 1] = twist(m[MT_N - 1], m[0], m[MT_M - 1]);
	mt->pos = 0;
}

uint32_t fv__mt_next32(fv__mt19937 *mt)
{
	if (mt->pos >= MT_N)
		regenerate(mt);
	uint32_t y = mt->key[mt->pos++];
	y ^= y >> 11;
	y ^= (y << 7) & 0x9d2c5680U;
	y ^= (y << 15) & 0xefc60000U;
	y ^= y >> 18;
	return y;
}

static uint64_t next64(fv__mt19937 *mt)
{
	uint64_t hi = fv__mt_next32(mt);
	return hi << 32 | fv__mt_next32(mt);
}

static uint64_t mask_of(uint64_t max)
{
	uint64_t mask = max;
	mask |= mask >> 1;
	mask |= mask >> 2;
	mask |= mask >> 4;
	mask |= mask >> 8;
	mask |= mask >> 16;
	mask |= mask >> 32;
	return mask;
}

/* The smallest all-ones mask covering max, and words drawn until one
** masked word is <= max: numpy's masked rejection sampling. */
uint64_t fv__np_interval(fv__mt19937 *mt, uint64_t max)
{
	if (max == 0)
		return 0;
	uint64_t mask = mask_of(max), value;
	if (max <= 0xffffffffULL) {
		while ((value = (fv__mt_next32(mt) & mask)) > max)
			;
	} else {
		while ((value = (next64(mt) & mask)) > max)
			;
	}
	return value;
}

void fv__np_randint(fv__mt19937 *mt, int64_t low, int64_t high, int64_t n, int64_t *out)
{
	/* numpy draws nothing when the range holds one value */
	uint64_t range = (uint64_t)(high - 1 - low);
	for (int64_t i = 0; i < n; i++)
		out[i] = low + (int64_t)fv__np_interval(mt, range);
}

void fv__np_shuffle(fv__mt19937 *mt, int64_t *v, int64_t n)
{
	for (int64_t i = n - 1; i >= 1; i--) {
		int64_t j = (int64_t)fv__np_interval(mt, (uint64_t)i);
		int64_t t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
}

void fv__np_permutation(fv__mt19937 *mt, int64_t n, int64_t *out)
{
	for (int64_t i = 0; i < n; i++)
		out[i] = i;
	fv__np_shuffle(mt, out, n);
}

/* random.getrandbits(k) for 0 < k <= 32. */
static uint32_t py_getrandbits(fv__mt19937 *mt, int k)
{
	return fv__mt_next32(mt) >> (32 - k);
}

static int bit_length(uint64_t n)
{
	int k = 0;
	while (n != 0) {
		k++;
		n >>= 1;
	}
	return k;
}

/* random._randbelow_with_getrandbits(n), n < 2**32. */
static int64_t py_randbelow(fv__mt19937 *mt, int64_t n)
{
	int k = bit_length((uint64_t)n);
	uint32_t r = py_getrandbits(mt, k);
	while ((int64_t)r >= n)
		r = py_getrandbits(mt, k);
	return (int64_t)r;
}

void fv__py_shuffle(fv__mt19937 *mt, int64_t *v, int64_t n)
{
	for (int64_t i = n - 1; i >= 1; i--) {
		int64_t j = py_randbelow(mt, i + 1);
		int64_t t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
}

double fv__py_random(fv__mt19937 *mt)
{
	uint32_t a = fv__mt_next32(mt) >> 5, b = fv__mt_next32(mt) >> 6;
	return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}
