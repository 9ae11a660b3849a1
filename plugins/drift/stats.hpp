// Two-sample statistics for drift checks, each defined to match the scipy function people
// compare with (scipy 1.10): ks_2samp (method='auto'), wasserstein_distance, jensenshannon,
// chi2_contingency (correction=False), plus PSI and numpy-style binning. Pure functions of
// their arguments, thread-safe. Inputs named `*_sorted` must be sorted ascending, no NaN.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace drover::drift {

struct KsResult {
  double statistic = 0;
  double p_value = 1;
  std::string method;  // "exact" or "asymp", as scipy chose
};

// scipy.stats.ks_2samp(a, b, method='auto'): exact when max(n1, n2) <= 10000 (falling back
// to asymptotic if the exact sum fails), else the kstwo distribution at round(n1*n2/(n1+n2)).
// Both samples must be non-empty.
KsResult ks_2samp(const std::vector<double>& a_sorted, const std::vector<double>& b_sorted);

// Both of ks_2samp(a, b) and *wasserstein = wasserstein_distance(a, b), same results, from
// one pass over the two samples.
KsResult ks_2samp_and_wasserstein(const std::vector<double>& a_sorted,
                                  const std::vector<double>& b_sorted, double* wasserstein);

// scipy.stats.wasserstein_distance(a, b) (first Wasserstein distance between the empirical
// distributions). Both non-empty.
double wasserstein_distance(const std::vector<double>& a_sorted,
                            const std::vector<double>& b_sorted);

// numpy.std(x) (population, ddof=0), mean computed first.
double population_std(const std::vector<double>& x);
double mean(const std::vector<double>& x);
// numpy.quantile(x, q) with the default linear interpolation.
double quantile_sorted(const std::vector<double>& x_sorted, double q);

// scipy.spatial.distance.jensenshannon(p, q) (natural log): each vector is normalized to sum
// 1 first. Same length; each with a positive sum.
double jensenshannon(const std::vector<double>& p, const std::vector<double>& q);

// Population stability index of two share vectors: sum (cur - ref) * ln(cur / ref), where a
// zero share is replaced by `epsilon` first (Evidently's 0.0001).
double psi(std::vector<double> ref_shares, std::vector<double> cur_shares, double epsilon = 1e-4);

struct Chi2Result {
  double statistic = 0;
  double p_value = 1;
  int dof = 0;
};
// scipy.stats.chi2_contingency([ref_counts, cur_counts], correction=False) for a 2 x k table;
// every column total and both row totals must be positive.
Chi2Result chi2_contingency_2xk(const std::vector<uint64_t>& ref_counts,
                                const std::vector<uint64_t>& cur_counts);

// The regularized upper incomplete gamma function Q(a, x) (scipy.special.gammaincc).
double gammaincc(double a, double x);
// The survival function of the two-sided one-sample Kolmogorov statistic D_n
// (scipy.stats.kstwo.sf(x, n); Simard & L'Ecuyer's choice of algorithms).
double kolmogn_sf(long long n, double x);
// The one-sided Smirnov survival function (scipy.special.smirnov(n, x)).
double smirnov_sf(long long n, double x);

// Sorts finite doubles ascending (an LSD radix sort on the IEEE bits: linear time, one scratch
// buffer of x.size()). Same order as std::sort except that -0.0 sorts before +0.0.
void sort_values(std::vector<double>& x);

// numpy.histogram_bin_edges(x, bins='sturges') for data with the given min, max and size.
std::vector<double> sturges_edges(double min, double max, size_t size);
// numpy.histogram(x, bins=edges)[0] for sorted x: counts of edges[i] <= x < edges[i+1],
// the last bin closed on the right; values outside the edges are not counted.
std::vector<uint64_t> histogram_sorted(const std::vector<double>& x_sorted,
                                       const std::vector<double>& edges);

}  // namespace drover::drift
