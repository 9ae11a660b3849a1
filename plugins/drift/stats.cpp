// Ports of the scipy 1.10 / numpy 1.24 definitions named in stats.hpp. Where scipy's
// algorithm is followed step by step (ks_2samp's exact path, kolmogn), the comments name the
// scipy function; the Smirnov sum uses long double where scipy uses double-double.
#include "plugins/drift/stats.hpp"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <numeric>

namespace drover::drift {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kMinLog = -7.08396418532264106224e2;  // cephes MINLOG

long long floor_div(long long a, long long b) {  // b > 0
  long long q = a / b;
  if ((a % b != 0) && (a < 0)) --q;
  return q;
}
long long ceil_div(long long a, long long b) { return -floor_div(-a, b); }

// scipy.stats._stats_py._compute_prob_outside_square
double prob_outside_square(long long n, long long h) {
  double P = 0.0;
  long long k = n / h;
  while (k >= 0) {
    double p1 = 1.0;
    for (long long j = 0; j < h; ++j)
      p1 = static_cast<double>(n - k * h - j) * p1 / static_cast<double>(n + k * h + j + 1);
    P = p1 * (1.0 - P);
    --k;
  }
  return 2 * P;
}

// scipy.stats._stats_pythran._compute_outer_prob_inside_method (Viehmann's 1-p recursion).
double outer_prob_inside_method(long long m, long long n, long long g, long long h) {
  if (m < n) std::swap(m, n);
  long long mg = m / g, ng = n / g;
  long long minj = 0, maxj = std::min(ceil_div(h, mg), n + 1);
  long long curlen = maxj - minj;
  long long lenA = std::min(2 * maxj + 2, n + 1);
  std::vector<double> A(static_cast<size_t>(lenA), 1.0);
  for (long long j = minj; j < maxj; ++j) A[j] = 0.0;
  for (long long i = 1; i <= m; ++i) {
    long long lastminj = minj, lastlen = curlen;
    minj = std::max(floor_div(ng * i - h, mg) + 1, 0LL);
    minj = std::min(minj, n);
    maxj = std::min(ceil_div(ng * i + h, mg), n + 1);
    if (maxj <= minj) return 1.0;
    double val = minj == 0 ? 0.0 : 1.0;
    for (long long jj = 0; jj < maxj - minj; ++jj) {
      long long j = jj + minj;
      val = (A[jj + minj - lastminj] * static_cast<double>(i) + val * static_cast<double>(j)) /
            static_cast<double>(i + j);
      A[jj] = val;
    }
    curlen = maxj - minj;
    if (lastlen > curlen) {
      for (long long t = maxj - minj; t < maxj - minj + (lastlen - curlen); ++t) {
        if (t < lenA) A[t] = 1;
      }
    }
  }
  return A[maxj - minj - 1];
}

double clip01(double p) { return std::min(1.0, std::max(0.0, p)); }

// scipy.stats._ksstats._log_nfactorial_div_n_pow_n
double log_nfactorial_div_n_pow_n(double n) {
  static const double c[] = {-2.955065359477124183e-2,  6.4102564102564102564e-3,
                             -1.9175269175269175269e-3, 8.4175084175084175084e-4,
                             -5.952380952380952381e-4,  7.9365079365079365079e-4,
                             -2.7777777777777777778e-3, 8.3333333333333333333e-2};
  double rn = 1.0 / n, x = rn / n, poly = 0;
  for (double ci : c) poly = poly * x + ci;
  return std::log(n) / 2 - n + std::log(2 * kPi) / 2 + rn * poly;
}

using Matrix = std::vector<double>;  // row-major m x m

Matrix matmul(const Matrix& a, const Matrix& b, int m) {
  Matrix c(static_cast<size_t>(m) * m, 0.0);
  for (int i = 0; i < m; ++i)
    for (int k = 0; k < m; ++k) {
      double aik = a[i * m + k];
      if (aik == 0) continue;
      for (int j = 0; j < m; ++j) c[i * m + j] += aik * b[k * m + j];
    }
  return c;
}

// scipy.stats._ksstats._kolmogn_DMTW: Pr(D_n <= d) (Durbin matrix, Marsaglia-Tsang-Wang).
double kolmogn_dmtw_cdf(long long n, double d) {
  if (d >= 1.0) return 1.0;
  double nd = static_cast<double>(n) * d;
  if (nd <= 0.5) return 0.0;
  int k = static_cast<int>(std::ceil(nd));
  double h = k - nd;
  int m = 2 * k - 1;
  Matrix H(static_cast<size_t>(m) * m, 0.0);
  std::vector<double> v(m), w(m);
  double fac = 1.0;
  for (int j = 1; j <= m; ++j) {
    v[j - 1] = 1.0 - std::pow(h, j);
    w[j - 1] = fac;
    fac /= j;
    v[j - 1] *= fac;
  }
  double tt = std::pow(std::max(2 * h - 1.0, 0.0), m) - 2 * std::pow(h, m);
  v[m - 1] = (1.0 + tt) * fac;
  for (int i = 1; i < m; ++i)
    for (int r = i - 1; r < m; ++r) H[r * m + i] = w[r - (i - 1)];
  for (int r = 0; r < m; ++r) H[r * m] = v[r];
  for (int c = 0; c < m; ++c) H[(m - 1) * m + c] = v[m - 1 - c];

  Matrix P(static_cast<size_t>(m) * m, 0.0);
  for (int i = 0; i < m; ++i) P[i * m + i] = 1.0;
  const long double ep128 = std::ldexp(1.0L, 128), em128 = std::ldexp(1.0L, -128);
  long long nn = n;
  long long expnt = 0, hexpnt = 0;
  while (nn > 0) {
    if (nn % 2) {
      P = matmul(P, H, m);
      expnt += hexpnt;
    }
    H = matmul(H, H, m);
    hexpnt *= 2;
    if (std::fabs(H[(k - 1) * m + (k - 1)]) > static_cast<double>(ep128)) {
      for (auto& x : H) x = static_cast<double>(x / ep128);
      hexpnt += 128;
    }
    nn /= 2;
  }
  long double p = P[(k - 1) * m + (k - 1)];
  for (long long i = 1; i <= n; ++i) {
    p = static_cast<long double>(i) * p / static_cast<long double>(n);
    if (std::fabs(p) < em128) {
      p *= ep128;
      expnt -= 128;
    }
  }
  if (expnt != 0) p = std::ldexp(p, static_cast<int>(expnt));
  return clip01(static_cast<double>(p));
}

// scipy.stats._ksstats._pomeranz_compute_j1j2
void pomeranz_j1j2(long long i, long long n, long long ll, int ceilf, int roundf, long long* j1,
                   long long* j2) {
  long long a, b;
  if (i == 0) {
    a = -ll - ceilf - 1;
    b = ll + ceilf - 1;
  } else {
    long long ip1div2 = (i + 1) / 2, ip1mod2 = (i + 1) % 2;
    if (ip1mod2 == 0) {
      if (ip1div2 == n + 1) {
        a = n - ll - ceilf - 1;
        b = n + ll + ceilf - 1;
      } else {
        a = ip1div2 - 1 - ll - roundf - 1;
        b = ip1div2 + ll - 1 + ceilf - 1;
      }
    } else {
      a = ip1div2 - 1 - ll - 1;
      b = ip1div2 + ll + roundf - 1;
    }
  }
  *j1 = std::max(a + 2, 0LL);
  *j2 = std::min(b, n);
}

// scipy.stats._ksstats._kolmogn_Pomeranz: Pr(D_n <= x).
double kolmogn_pomeranz_cdf(long long n, double x) {
  double t = static_cast<double>(n) * x;
  long long ll = static_cast<long long>(std::floor(t));
  double f = 1.0 * (t - static_cast<double>(ll));
  double g = std::min(f, 1.0 - f);
  int ceilf = f > 0 ? 1 : 0;
  int roundf = f > 0.5 ? 1 : 0;
  long long npwrs = 2 * (ll + 1);
  std::vector<double> gpower(npwrs), twogpower(npwrs), onem2gpower(npwrs);
  gpower[0] = twogpower[0] = onem2gpower[0] = 1.0;
  long long expnt = 0;
  double dn = static_cast<double>(n);
  double g_over_n = g / dn, two_g_over_n = 2 * g / dn, one_minus = (1 - 2 * g) / dn;
  for (long long m = 1; m < npwrs; ++m) {
    gpower[m] = gpower[m - 1] * g_over_n / static_cast<double>(m);
    twogpower[m] = twogpower[m - 1] * two_g_over_n / static_cast<double>(m);
    onem2gpower[m] = onem2gpower[m - 1] * one_minus / static_cast<double>(m);
  }
  std::vector<double> V0(npwrs, 0.0), V1(npwrs, 0.0);
  V1[0] = 1;
  long long V0s = 0, V1s = 0;
  long long j1, j2;
  pomeranz_j1j2(0, n, ll, ceilf, roundf, &j1, &j2);
  const double ep128 = std::ldexp(1.0, 128), em128 = std::ldexp(1.0, -128);
  for (long long i = 1; i < 2 * n + 2; ++i) {
    long long k1 = j1;
    std::swap(V0, V1);
    std::swap(V0s, V1s);
    std::fill(V1.begin(), V1.end(), 0.0);
    pomeranz_j1j2(i, n, ll, ceilf, roundf, &j1, &j2);
    const std::vector<double>& pw =
        (i == 1 || i == 2 * n + 1) ? gpower : (i % 2 ? twogpower : onem2gpower);
    long long ln2 = j2 - k1 + 1;
    if (ln2 > 0) {
      // np.convolve(V0[k1-V0s : k1-V0s+ln2], pw[:ln2]) (full), then a window of it.
      long long off = k1 - V0s;
      long long conv_start = j1 - k1, conv_len = j2 - j1 + 1;
      double vmax = 0;
      for (long long c = 0; c < conv_len; ++c) {
        long long idx = conv_start + c;  // index into the full convolution
        double s = 0;
        for (long long a = std::max(0LL, idx - (ln2 - 1)); a <= std::min(idx, ln2 - 1); ++a) {
          long long ai = off + a;
          double va = (ai >= 0 && ai < npwrs) ? V0[ai] : 0.0;
          s += va * pw[idx - a];
        }
        V1[c] = s;
        vmax = std::max(vmax, s);
      }
      if (vmax > 0 && vmax < em128) {
        for (auto& x : V1) x *= ep128;
        expnt -= 128;
      }
      V1s = V0s + j1 - k1;
    }
  }
  double ans = V1[n - V1s];
  for (long long m = 1; m <= n; ++m) {
    if (std::fabs(ans) > ep128) {
      ans *= em128;
      expnt += 128;
    }
    ans *= static_cast<double>(m);
  }
  if (expnt != 0) ans = std::ldexp(ans, static_cast<int>(expnt));
  return clip01(ans);
}

// scipy.stats._ksstats._kolmogn_PelzGood: Pr(D_n <= x), approximately.
double kolmogn_pelzgood_cdf(long long n, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double pi2 = kPi * kPi, pi4 = pi2 * pi2, pi6 = pi4 * pi2;
  double z = std::sqrt(static_cast<double>(n)) * x;
  double z2 = z * z, z3 = z2 * z, z4 = z2 * z2, z6 = z4 * z2;
  double qlog = -pi2 / 8 / z2;
  if (qlog < -708) return 0.0;
  double q = std::exp(qlog);
  double k1a = -z2, k1b = pi2 / 4;
  double k2a = 6 * z6 + 2 * z4, k2b = (2 * z4 - 5 * z2) * pi2 / 4, k2c = pi4 * (1 - 2 * z2) / 16;
  double k3d = pi6 * (5 - 30 * z2) / 64;
  double k3c = pi4 * (-60 * z2 + 212 * z4) / 16;
  double k3b = pi2 * (135 * z4 - 96 * z6) / 4;
  double k3a = -30 * z6 - 90 * std::pow(z, 8);
  double K[4] = {0, 0, 0, 0};
  int maxk = static_cast<int>(std::ceil(16 * z / kPi));
  for (int k = maxk; k > 0; --k) {
    double m = 2 * k - 1, m2 = m * m, m4 = m2 * m2, m6 = m4 * m2;
    double qp = std::pow(q, 8 * k);
    double co[4] = {1.0, k1a + k1b * m2, k2a + k2b * m2 + k2c * m4,
                    k3a + k3b * m2 + k3c * m4 + k3d * m6};
    for (int i = 0; i < 4; ++i) K[i] = K[i] * qp + co[i];
  }
  const double sqrt2pi = std::sqrt(2 * kPi);
  double div[4] = {z, 6 * z4, 72 * std::pow(z, 7), 6480 * std::pow(z, 10)};
  for (int i = 0; i < 4; ++i) K[i] = K[i] * q * sqrt2pi / div[i];
  q = std::exp(-pi2 / 2 / z2);
  double k2extra = 0, k3extra = 0;
  double sqrt3z = std::sqrt(3.0) * z;
  for (int k = maxk; k > 0; --k) {
    double ks2 = static_cast<double>(k) * k;
    double qp = std::pow(q, ks2);
    double kspi = kPi * k;
    k2extra += ks2 * qp;
    k3extra += (sqrt3z + kspi) * (sqrt3z - kspi) * ks2 * qp;
  }
  K[2] += k2extra * pi2 * sqrt2pi / (-36 * z3);
  K[3] += k3extra * pi2 * sqrt2pi / (216 * z6);
  double sum = 0;
  for (int i = 0; i < 4; ++i) sum += K[i] / std::pow(static_cast<double>(n), i / 2.0);
  return sum;
}

// Loader's stirlerr: log(k!) - (k + 1/2) log(k) + k - log(2 pi) / 2, small for every k.
double stirling_remainder(long long k) {
  if (k <= 15) {
    long double dk = static_cast<long double>(k);
    return static_cast<double>(std::lgamma(dk + 1) - (dk + 0.5L) * std::log(dk) + dk -
                               0.5L * std::log(2 * static_cast<long double>(kPi)));
  }
  constexpr double s0 = 1.0 / 12, s1 = 1.0 / 360, s2 = 1.0 / 1260, s3 = 1.0 / 1680, s4 = 1.0 / 1188;
  double dk = static_cast<double>(k), kk = dk * dk;
  if (k > 500) return (s0 - s1 / kk) / dk;
  if (k > 80) return (s0 - (s1 - s2 / kk) / kk) / dk;
  if (k > 35) return (s0 - (s1 - (s2 - s3 / kk) / kk) / kk) / dk;
  return (s0 - (s1 - (s2 - (s3 - s4 / kk) / kk) / kk) / kk) / dk;
}

}  // namespace

// cephes smirnov (scipy.special.smirnov): Pr(D+_n > x) by the Birnbaum-Tingey sum.
double smirnov_sf(long long n, double x) {
  if (!(n > 0 && x >= 0.0 && x <= 1.0)) return NAN;
  if (n == 1) return 1 - x;
  if (x == 0.0) return 1.0;
  if (x == 1.0) return 0.0;
  double dn = static_cast<double>(n);
  double hi = dn * x, lo = std::fma(dn, x, -hi);
  double fl = std::floor(hi);
  double alpha = (hi - fl) + lo;
  if (alpha < 0) {
    fl -= 1;
    alpha += 1;
  }
  if (alpha >= 1) {
    fl += 1;
    alpha -= 1;
  }
  long long nxfl = static_cast<long long>(fl);
  long long n1mxfl = n - nxfl - (alpha == 0 ? 0 : 1);
  long long n1mxceil = n - nxfl;
  if (alpha == 0) {
    n1mxfl -= 1;
    n1mxceil += 1;
  }
  if (nxfl == 0 || (nxfl == 1 && alpha == 0)) {
    long double t = std::pow(1.0L + x, static_cast<long double>(n - 1));
    return clip01(static_cast<double>(1 - x * t));
  }
  if (-2 * dn * x * x < kMinLog) return 0.0;
  if (nxfl >= n - 1) return clip01(static_cast<double>(std::pow(1.0L - x, n)));
  if (n > 1000000) {
    double logp = -std::pow(6.0 * dn * x + 1, 2) / 18.0 / dn;
    return logp < -std::log(2.0) ? std::exp(logp) : 1 + std::expm1(logp) * 1.0;
  }
  long long n_upper = n - n1mxceil + 1;
  bool upper = (n_upper <= 1 && x < 0.5) || (n >= 10 && n_upper <= 3 && x <= 0.5 / std::sqrt(dn));
  long double lx = x, ln = dn;
  long double lgn1 = std::lgamma(ln + 1);
  auto term = [&](long long v) -> long double {  // C(n,v) (1-x-v/n)^(n-v) (x+v/n)^(v-1)
    long double a = static_cast<long double>(n - v) / ln - lx;
    long double b = static_cast<long double>(v) / ln + lx;
    long double lc = lgn1 - std::lgamma(static_cast<long double>(v) + 1) -
                     std::lgamma(static_cast<long double>(n - v) + 1);
    long double sign = 1;
    if (a < 0 && ((n - v) % 2 == 1)) sign = -1;
    long double la = (n - v) == 0 ? 0.0L : (n - v) * std::log(std::fabs(a));
    if (a == 0 && n - v > 0) return 0.0L;
    long double lb = (v - 1) * std::log(b);
    return sign * std::exp(lc + la + lb);
  };
  // The same term for 1 <= v < n(1 - x), in Loader's form (the one R's dbinom uses):
  // log C(n,v) + (n-v) log(a) + (v-1) log(b) is rewritten with the Stirling remainders so
  // that no two large logarithms cancel, which keeps double arithmetic accurate to ~1e-12
  // relative. One log, two log1p and one exp instead of three long double lgamma calls.
  const double stir_n = stirling_remainder(n);
  const double two_pi = 2 * kPi, xn = x * dn;
  auto term_fast = [&](long long v) -> long double {
    if (v < 1 || v >= n) return term(v);
    double dv = static_cast<double>(v), dnv = static_cast<double>(n - v);
    if (!(xn < dnv)) return term(v);
    double l = stir_n - stirling_remainder(v) - stirling_remainder(n - v) +
               0.5 * std::log(dn * dn * dn / (two_pi * dv * dv * dv * dnv)) +
               dnv * std::log1p(-xn / dnv) + (dv - 1) * std::log1p(xn / dv);
    return std::exp(l);
  };
  long double sum = 0;
  if (upper) {
    long long terms = n - n1mxceil + 1;
    for (long long j = 0; j < terms; ++j) sum += term(n - j);
    double cdf = static_cast<double>(lx * sum);
    return clip01(1 - cdf);
  }
  long long terms = n1mxfl + 1;
  long long vmid = n / 2;
  for (long long j = 0; j < terms; ++j) {
    long double a = term_fast(j);
    sum += a;
    if (a != 0) {
      if (4.0L * (terms - j) * std::fabs(a) < DBL_EPSILON * sum && j != terms - 1) break;
    } else if (j > vmid) {
      break;
    }
  }
  return clip01(static_cast<double>(lx * sum));
}

// scipy.stats._ksstats._kolmogn(n, x, cdf=False)
double kolmogn_sf(long long n, double x) {
  if (n <= 0) return NAN;
  if (x >= 1.0) return 0.0;
  if (x <= 0.0) return 1.0;
  double dn = static_cast<double>(n);
  double t = dn * x;
  if (t <= 1.0) {
    if (t <= 0.5) return 1.0;
    double prob;
    if (n <= 140) {
      prob = 1.0;
      for (long long i = 1; i <= n; ++i) prob *= static_cast<double>(i) * (1.0 / dn) * (2 * t - 1);
    } else {
      prob = std::exp(log_nfactorial_div_n_pow_n(dn) + dn * std::log(2 * t - 1));
    }
    return clip01(1.0 - prob);
  }
  if (t >= dn - 1) return clip01(2 * std::pow(1.0 - x, dn));
  if (x >= 0.5) return clip01(2 * smirnov_sf(n, x));
  double nxsquared = t * x;
  if (n <= 140) {
    if (nxsquared <= 0.754693) return clip01(1.0 - kolmogn_dmtw_cdf(n, x));
    if (nxsquared <= 4) return clip01(1.0 - kolmogn_pomeranz_cdf(n, x));
    return clip01(2 * smirnov_sf(n, x));
  }
  if (nxsquared >= 370.0) return 0.0;
  if (nxsquared >= 2.2) return clip01(2 * smirnov_sf(n, x));
  double cdf;
  if (nxsquared >= 18.0) {
    cdf = 1.0;
  } else if (n <= 100000 && dn * std::pow(x, 1.5) <= 1.4) {
    cdf = kolmogn_dmtw_cdf(n, x);
  } else {
    cdf = kolmogn_pelzgood_cdf(n, x);
  }
  return clip01(1.0 - cdf);
}

namespace {
// One merge of the two sorted samples: the extremes of cdf1 - cdf2 over the observed values
// (searchsorted 'right', as ks_2samp computes them) and, when `w` is set, the Wasserstein
// sum of |cdf1 - cdf2| times the gaps (as _cdf_distance(1, ...) computes it). The same
// expressions, in the same order, as two separate passes.
void merge_cdfs(const std::vector<double>& a, const std::vector<double>& b, double* max_s,
                double* min_s, double* w) {
  double d1 = static_cast<double>(a.size()), d2 = static_cast<double>(b.size());
  double hi = -INFINITY, lo = INFINITY, diff = 0, prev = 0;
  long double sum = 0;
  size_t i = 0, j = 0;
  const size_t na = a.size(), nb = b.size();
  bool have_prev = false;
  while (i < na || j < nb) {
    double v = (j >= nb || (i < na && a[i] <= b[j])) ? a[i] : b[j];
    if (w && have_prev) sum += static_cast<long double>(std::fabs(diff) * (v - prev));
    while (i < na && a[i] <= v) ++i;
    while (j < nb && b[j] <= v) ++j;
    diff = static_cast<double>(i) / d1 - static_cast<double>(j) / d2;
    hi = std::max(hi, diff);
    lo = std::min(lo, diff);
    prev = v;
    have_prev = true;
  }
  *max_s = hi;
  *min_s = lo;
  if (w) *w = static_cast<double>(sum);
}

KsResult ks_from_extremes(long long n1, long long n2, double max_s, double min_s) {
  KsResult r;
  double d1 = static_cast<double>(n1), d2 = static_cast<double>(n2);
  double minS = std::min(1.0, std::max(0.0, -min_s));
  double d = minS > max_s ? minS : max_s;
  long long g = std::gcd(n1, n2);
  bool exact = std::max(n1, n2) <= 10000;
  if (exact) {
    // scipy.stats._stats_py._attempt_exact_2kssamp (two-sided)
    long long lcm = (n1 / g) * n2;
    long long h = static_cast<long long>(std::nearbyint(d * static_cast<double>(lcm)));
    double dd = static_cast<double>(h) * 1.0 / static_cast<double>(lcm);
    double prob;
    if (h == 0) {
      prob = 1.0;
    } else if (n1 == n2) {
      prob = prob_outside_square(n1, h);
    } else {
      prob = outer_prob_inside_method(n1, n2, g, h);
    }
    if (std::isfinite(prob) && prob >= 0 && prob <= 1) {
      r.statistic = dd;
      r.p_value = clip01(prob);
      r.method = "exact";
      return r;
    }
    d = dd;
  }
  double m = std::max(d1, d2), n = std::min(d1, d2);
  double en = m * n / (m + n);
  r.statistic = d;
  r.p_value = clip01(kolmogn_sf(static_cast<long long>(std::nearbyint(en)), d));
  r.method = "asymp";
  return r;
}
}  // namespace

KsResult ks_2samp(const std::vector<double>& a, const std::vector<double>& b) {
  double max_s, min_s;
  merge_cdfs(a, b, &max_s, &min_s, nullptr);
  return ks_from_extremes(static_cast<long long>(a.size()), static_cast<long long>(b.size()), max_s,
                          min_s);
}

KsResult ks_2samp_and_wasserstein(const std::vector<double>& a, const std::vector<double>& b,
                                  double* wasserstein) {
  double max_s, min_s;
  merge_cdfs(a, b, &max_s, &min_s, wasserstein);
  return ks_from_extremes(static_cast<long long>(a.size()), static_cast<long long>(b.size()), max_s,
                          min_s);
}

double wasserstein_distance(const std::vector<double>& u, const std::vector<double>& v) {
  // scipy.stats._stats_py._cdf_distance(1, u, v): sum |U(x) - V(x)| dx over the merged values.
  double nu = static_cast<double>(u.size()), nv = static_cast<double>(v.size());
  size_t i = 0, j = 0;
  long double sum = 0;
  bool have_prev = false;
  double prev = 0;
  while (i < u.size() || j < v.size()) {
    double x = (j >= v.size() || (i < u.size() && u[i] <= v[j])) ? u[i] : v[j];
    if (have_prev) {
      // CDFs at prev (counts of values <= prev) times the gap to x.
      sum += static_cast<long double>(
          std::fabs(static_cast<double>(i) / nu - static_cast<double>(j) / nv) * (x - prev));
    }
    while (i < u.size() && u[i] <= x) ++i;
    while (j < v.size() && v[j] <= x) ++j;
    prev = x;
    have_prev = true;
  }
  return static_cast<double>(sum);
}

namespace {
// numpy's pairwise summation (numpy/core/src/umath/loops_utils.h.src, pairwise_sum) of
// f(x[0..n)): eight accumulators up to 128 values, halving above that.
template <class F>
double pairwise_sum(const double* x, size_t n, F f) {
  if (n < 8) {
    double r = 0.;
    for (size_t i = 0; i < n; ++i) r += f(x[i]);
    return r;
  }
  if (n <= 128) {
    double r[8];
    for (int k = 0; k < 8; ++k) r[k] = f(x[k]);
    size_t i = 8;
    for (; i < n - (n % 8); i += 8)
      for (int k = 0; k < 8; ++k) r[k] += f(x[i + k]);
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += f(x[i]);
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(x, n2, f) + pairwise_sum(x + n2, n - n2, f);
}
}  // namespace

double mean(const std::vector<double>& x) {
  return pairwise_sum(x.data(), x.size(), [](double v) { return v; }) /
         static_cast<double>(x.size());
}

double population_std(const std::vector<double>& x) {
  if (x.empty()) return NAN;
  double m = mean(x);
  double s = pairwise_sum(x.data(), x.size(), [m](double v) {
    double d = v - m;
    return d * d;
  });
  return std::sqrt(s / static_cast<double>(x.size()));
}

double quantile_sorted(const std::vector<double>& x, double q) {
  if (x.empty()) return NAN;
  double idx = q * static_cast<double>(x.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(idx));
  size_t hi = std::min(lo + 1, x.size() - 1);
  double t = idx - static_cast<double>(lo);
  double a = x[lo], b = x[hi], diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

double jensenshannon(const std::vector<double>& p0, const std::vector<double>& q0) {
  long double sp = 0, sq = 0;
  for (double v : p0) sp += v;
  for (double v : q0) sq += v;
  auto rel_entr = [](double x, double y) -> double {
    if (x > 0 && y > 0) return x * std::log(x / y);
    if (x == 0 && y >= 0) return 0;
    return INFINITY;
  };
  long double left = 0, right = 0;
  for (size_t i = 0; i < p0.size(); ++i) {
    double p = p0[i] / static_cast<double>(sp), q = q0[i] / static_cast<double>(sq);
    double m = (p + q) / 2.0;
    left += rel_entr(p, m);
    right += rel_entr(q, m);
  }
  double js = static_cast<double>(left) + static_cast<double>(right);
  return std::sqrt(js / 2.0);
}

double psi(std::vector<double> ref, std::vector<double> cur, double epsilon) {
  long double s = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    double r = ref[i] == 0 ? epsilon : ref[i];
    double c = cur[i] == 0 ? epsilon : cur[i];
    s += (c - r) * std::log(c / r);
  }
  return static_cast<double>(s);
}

Chi2Result chi2_contingency_2xk(const std::vector<uint64_t>& ref,
                                const std::vector<uint64_t>& cur) {
  Chi2Result r;
  size_t k = ref.size();
  r.dof = static_cast<int>(k) - 1;
  if (r.dof <= 0) return r;  // scipy: dof == 0 gives statistic 0, p-value 1
  double r1 = 0, r2 = 0;
  for (size_t i = 0; i < k; ++i) {
    r1 += static_cast<double>(ref[i]);
    r2 += static_cast<double>(cur[i]);
  }
  double total = r1 + r2;
  long double stat = 0;
  for (size_t i = 0; i < k; ++i) {
    double col = static_cast<double>(ref[i]) + static_cast<double>(cur[i]);
    double e1 = r1 * col / total, e2 = r2 * col / total;
    double o1 = static_cast<double>(ref[i]) - e1, o2 = static_cast<double>(cur[i]) - e2;
    stat += o1 * o1 / e1;
    stat += o2 * o2 / e2;
  }
  r.statistic = static_cast<double>(stat);
  r.p_value = gammaincc(r.dof / 2.0, r.statistic / 2.0);
  return r;
}

double gammaincc(double a, double x) {
  if (x < 0 || a <= 0) return NAN;
  if (x == 0) return 1.0;
  if (std::isinf(x)) return 0.0;
  double lpre = a * std::log(x) - x - std::lgamma(a);
  if (x < a + 1) {
    // Series for P(a, x); Q = 1 - P.
    double ap = a, del = 1.0 / a, sum = del;
    for (int n = 0; n < 1000000; ++n) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (std::fabs(del) < std::fabs(sum) * 1e-17) break;
    }
    return clip01(1.0 - sum * std::exp(lpre));
  }
  // Continued fraction for Q (modified Lentz).
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 1000000; ++i) {
    double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::fabs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < 1e-17) break;
  }
  return clip01(std::exp(lpre) * h);
}

void sort_values(std::vector<double>& x) {
  const size_t n = x.size();
  if (n < 256) {
    std::sort(x.begin(), x.end());
    return;
  }
  // Map each double to an unsigned key with the same order: flip every bit of a negative,
  // only the sign bit of a positive. Sort the keys 11 bits at a time, then map back.
  constexpr int kBits = 11, kPasses = 6;
  constexpr size_t kRadix = size_t{1} << kBits;
  std::vector<uint64_t> keys(n), tmp(n);
  std::vector<size_t> counts(kRadix * kPasses, 0);
  for (size_t i = 0; i < n; ++i) {
    uint64_t u;
    std::memcpy(&u, &x[i], sizeof(u));
    u ^= (u >> 63) ? ~uint64_t{0} : (uint64_t{1} << 63);
    keys[i] = u;
    for (int p = 0; p < kPasses; ++p) ++counts[p * kRadix + ((u >> (p * kBits)) & (kRadix - 1))];
  }
  uint64_t* src = keys.data();
  uint64_t* dst = tmp.data();
  for (int p = 0; p < kPasses; ++p) {
    size_t* c = &counts[p * kRadix];
    // Every key has the same digit here: nothing to move.
    if (c[(src[0] >> (p * kBits)) & (kRadix - 1)] == n) continue;
    size_t sum = 0;
    for (size_t d = 0; d < kRadix; ++d) {
      size_t t = c[d];
      c[d] = sum;
      sum += t;
    }
    for (size_t i = 0; i < n; ++i) {
      uint64_t u = src[i];
      dst[c[(u >> (p * kBits)) & (kRadix - 1)]++] = u;
    }
    std::swap(src, dst);
  }
  for (size_t i = 0; i < n; ++i) {
    uint64_t u = src[i];
    u ^= (u >> 63) ? (uint64_t{1} << 63) : ~uint64_t{0};
    std::memcpy(&x[i], &u, sizeof(u));
  }
}

std::vector<double> sturges_edges(double mn, double mx, size_t size) {
  double first = mn, last = mx;
  if (first == last) {
    first -= 0.5;
    last += 0.5;
  }
  long long nbins = 1;
  double ptp = mx - mn;
  if (size > 0) {
    double width = ptp / (std::log2(static_cast<double>(size)) + 1.0);
    if (width != 0) nbins = static_cast<long long>(std::ceil((last - first) / width));
  }
  // numpy.linspace(first, last, nbins + 1)
  std::vector<double> edges(static_cast<size_t>(nbins) + 1);
  double delta = last - first, step = delta / static_cast<double>(nbins);
  for (long long i = 0; i <= nbins; ++i) {
    if (step == 0) {
      edges[i] = static_cast<double>(i) / static_cast<double>(nbins) * delta + first;
    } else {
      edges[i] = static_cast<double>(i) * step + first;
    }
  }
  edges.back() = last;
  return edges;
}

std::vector<uint64_t> histogram_sorted(const std::vector<double>& x,
                                       const std::vector<double>& edges) {
  std::vector<uint64_t> counts(edges.size() - 1, 0);
  // cum[i] = searchsorted(x, edges[i], 'left') except the last edge ('right').
  std::vector<size_t> cum(edges.size());
  for (size_t i = 0; i < edges.size(); ++i) {
    bool last = i + 1 == edges.size();
    auto it = last ? std::upper_bound(x.begin(), x.end(), edges[i])
                   : std::lower_bound(x.begin(), x.end(), edges[i]);
    cum[i] = static_cast<size_t>(it - x.begin());
  }
  for (size_t i = 0; i + 1 < edges.size(); ++i) counts[i] = cum[i + 1] - cum[i];
  return counts;
}

}  // namespace drover::drift
