// compute_drift: profiles both tables in one streaming pass each, then compares column by
// column (see drift.hpp and docs/drift.md for the definitions and defaults).
#include "plugins/drift/drift.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <set>
#include <unordered_map>

#include "plugins/drift/stats.hpp"
#include "plugins/drift/table_reader.hpp"

namespace drover::drift {
namespace {

// Raw category counts kept for a column that is numeric so far, up to this many distinct
// texts (so that a column turning out categorical keeps its exact spellings).
constexpr size_t kRawCountsCap = 1000;
// Evidently: numeric columns with at most this many distinct values get categorical tests.
constexpr size_t kCategoricalUnique = 5;
// Evidently: reference samples up to this size get statistical tests, larger ones distances.
constexpr size_t kSmallSample = 1000;
// Numeric columns whose reference has more distinct values than this are binned (Sturges);
// others get one bin per value.
constexpr size_t kPerValueBins = 10;
// Categories drawn in a report histogram.
constexpr size_t kHistogramCategories = 30;

bool is_missing_text(std::string_view s) {
  // Fast path: every missing spelling, trimmed, starts with 'N' or 'n'.
  if (!s.empty() && s[0] != ' ' && s[0] != 'N' && s[0] != 'n') return false;
  size_t b = s.find_first_not_of(' ');
  if (b == std::string_view::npos) return true;
  s = s.substr(b, s.find_last_not_of(' ') - b + 1);
  static constexpr std::string_view kTokens[] = {"NA", "N/A", "null", "NULL", "NaN", "nan", "None"};
  for (std::string_view t : kTokens) {
    if (s == t) return true;
  }
  return false;
}

// A decimal number: optional sign, digits with an optional point, optional exponent.
// Surrounding spaces are ignored; inf and nan spellings are not numbers.
// Clinger's fast path for plain decimals ("-12.345678"): at most 15 digits and no exponent,
// so the digits and the power of ten are both exact doubles and one division rounds
// correctly, the same double std::from_chars returns. False when the text is not of that form.
bool parse_plain_decimal(std::string_view s, double* out) {
  static constexpr double kPow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
  const char* p = s.data();
  const char* end = p + s.size();
  bool neg = false;
  if (p < end && *p == '-') {
    neg = true;
    ++p;
  }
  uint64_t m = 0;
  int digits = 0, frac = -1;
  for (; p < end; ++p) {
    unsigned d = static_cast<unsigned char>(*p) - '0';
    if (d <= 9) {
      m = m * 10 + d;
      ++digits;
      if (frac >= 0) ++frac;
    } else if (*p == '.' && frac < 0) {
      frac = 0;
    } else {
      return false;
    }
  }
  if (digits == 0 || digits > 15) return false;
  double v = static_cast<double>(m);
  if (frac > 0) v /= kPow10[frac];
  *out = neg ? -v : v;
  return true;
}

bool parse_number(std::string_view s, double* out) {
  if (!s.empty() && s[0] != ' ' && s[0] != '+' && s.back() != ' ') {
    if (parse_plain_decimal(s, out)) return true;
    // Fast path (no spaces, no '+'): the checks below, minus the trimming.
    const char c = s[0] == '-' && s.size() > 1 ? s[1] : s[0];
    if (!((c >= '0' && c <= '9') || c == '.')) return false;
    auto res = std::from_chars(s.data(), s.data() + s.size(), *out);
    return res.ec == std::errc() && res.ptr == s.data() + s.size() && std::isfinite(*out);
  }
  size_t b = s.find_first_not_of(' ');
  if (b == std::string_view::npos) return false;
  s = s.substr(b, s.find_last_not_of(' ') - b + 1);
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  size_t i = s[0] == '-' ? 1 : 0;
  if (i >= s.size() || !(std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.'))
    return false;
  auto res = std::from_chars(s.data(), s.data() + s.size(), *out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size() && std::isfinite(*out);
}

std::string number_text(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, res.ptr);
}

enum class Forced { None, Numeric, Categorical };

struct Column {
  std::string name;
  Forced forced = Forced::None;
  bool numeric = true;  // every non-missing value so far parsed as a number
  std::vector<double> values;
  std::unordered_map<std::string, uint64_t> counts;
  bool counts_complete = true;  // counts cover every non-missing value
  uint64_t missing = 0, invalid = 0;

  uint64_t present() const {
    if (numeric) return values.size();
    uint64_t n = 0;
    for (auto& [k, c] : counts) n += c;
    return n;
  }

  void make_categorical() {
    if (!numeric) return;
    numeric = false;
    if (!counts_complete) {
      counts.clear();
      for (double v : values) ++counts[number_text(v)];
    }
    counts_complete = true;
    values.clear();
    values.shrink_to_fit();
  }

  void add(std::string_view text) {
    if (is_missing_text(text)) {
      ++missing;
      return;
    }
    if (forced == Forced::Categorical) {
      ++counts[std::string(text)];
      return;
    }
    if (numeric) {
      double v;
      if (parse_number(text, &v)) {
        values.push_back(v);
        if (counts_complete && forced == Forced::None) {
          auto it = counts.find(std::string(text));
          if (it != counts.end()) {
            ++it->second;
          } else if (counts.size() < kRawCountsCap) {
            counts.emplace(std::string(text), 1);
          } else {
            counts_complete = false;
            counts.clear();
          }
        }
        return;
      }
      if (forced == Forced::Numeric) {
        ++invalid;
        ++missing;
        return;
      }
      make_categorical();
    }
    ++counts[std::string(text)];
  }
};

struct Table {
  std::string name;
  std::vector<std::string> columns;  // every column of the file, in order
  std::map<std::string, Column> tracked;
  uint64_t rows = 0;
};

Forced forced_of(const std::map<std::string, std::string>& types, const std::string& col) {
  auto it = types.find(col);
  if (it == types.end()) return Forced::None;
  return it->second == "numeric" ? Forced::Numeric : Forced::Categorical;
}

Result<Table> profile(const std::string& path, const std::string& display,
                      const std::set<std::string>* wanted,
                      const std::map<std::string, std::string>& types) {
  auto reader = TableReader::open(path, display);
  if (!reader.ok()) return reader.error();
  TableReader& r = **reader;
  Table t;
  t.name = display;
  std::vector<Column*> slots;  // per file column: its tracked column or null
  auto sync_columns = [&]() {
    const auto& cols = r.columns();
    while (slots.size() < cols.size()) {
      const std::string& name = cols[slots.size()];
      t.columns.push_back(name);
      if (wanted && !wanted->count(name)) {
        slots.push_back(nullptr);
        continue;
      }
      Column& c = t.tracked[name];
      c.name = name;
      c.forced = forced_of(types, name);
      c.missing = t.rows;  // rows read before a JSON key first appeared
      if (c.forced == Forced::Categorical) c.numeric = false;
      slots.push_back(&c);
    }
  };
  sync_columns();
  std::vector<Field> fields;
  for (;;) {
    auto more = r.next(fields);
    if (!more.ok()) return more.error();
    if (!*more) break;
    sync_columns();
    ++t.rows;
    for (size_t i = 0; i < fields.size(); ++i) {
      Column* c = slots[i];
      if (!c) continue;
      if (fields[i].missing) {
        ++c->missing;
      } else {
        c->add(fields[i].text);
      }
    }
  }
  return t;
}

struct MethodSpec {
  const char* name;
  bool p_value;      // drift when score < threshold, else when score >= threshold
  double threshold;  // default
};
const MethodSpec kMethods[] = {
    {"ks", true, 0.05},          {"chi2", true, 0.05},
    {"wasserstein", false, 0.1}, {"jensenshannon", false, 0.1},
    {"psi", false, 0.1},
};
const MethodSpec& method_spec(const std::string& name) {
  for (auto& m : kMethods) {
    if (name == m.name) return m;
  }
  return kMethods[0];
}

json null_if_nan(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::vector<double> shares(const std::vector<uint64_t>& counts, uint64_t n) {
  std::vector<double> s(counts.size());
  for (size_t i = 0; i < counts.size(); ++i)
    s[i] = static_cast<double>(counts[i]) / static_cast<double>(n);
  return s;
}

// chi2 over the bins where at least one side has a count (scipy refuses zero expected counts).
Chi2Result chi2_nonempty(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  std::vector<uint64_t> x, y;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] + b[i] == 0) continue;
    x.push_back(a[i]);
    y.push_back(b[i]);
  }
  return chi2_contingency_2xk(x, y);
}

json sample_stats(const std::vector<double>& sorted) {
  json s = json::object();
  if (sorted.empty()) return s;
  s["min"] = sorted.front();
  s["max"] = sorted.back();
  s["mean"] = null_if_nan(mean(sorted));
  s["std"] = null_if_nan(population_std(sorted));
  json q = json::object();
  for (double p : {0.05, 0.25, 0.5, 0.75, 0.95}) {
    char key[32];
    std::snprintf(key, sizeof(key), "p%g", p * 100);
    q[key] = quantile_sorted(sorted, p);
  }
  s["quantiles"] = q;
  return s;
}

size_t count_distinct(const std::vector<double>& sorted) {
  size_t n = 0;
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (i == 0 || sorted[i] != sorted[i - 1]) ++n;
  }
  return n;
}

size_t count_distinct_union(const std::vector<double>& a, const std::vector<double>& b) {
  size_t i = 0, j = 0, n = 0;
  while (i < a.size() || j < b.size()) {
    double v = (j >= b.size() || (i < a.size() && a[i] <= b[j])) ? a[i] : b[j];
    ++n;
    while (i < a.size() && a[i] == v) ++i;
    while (j < b.size() && b[j] == v) ++j;
  }
  return n;
}

std::string default_method(bool numeric, size_t n_ref, size_t n_unique) {
  bool small = n_ref <= kSmallSample;
  if (numeric && n_unique > kCategoricalUnique) return small ? "ks" : "wasserstein";
  return small ? "chi2" : "jensenshannon";
}

struct Verdict {
  std::string method;
  double threshold;
  double score = NAN;
  bool drift = false;
};

Result<Verdict> choose(const DriftOptions& o, const std::string& col, bool numeric, size_t n_ref,
                       size_t n_unique) {
  Verdict v;
  auto m = o.methods.find(col);
  if (m != o.methods.end()) {
    auto canon = canonical_method(m->second);
    if (!canon.ok()) return canon.error();
    v.method = *canon;
    if (!numeric && (v.method == "ks" || v.method == "wasserstein")) {
      return make_error("column \"" + col + "\": method " + v.method +
                            " needs a numeric column (this one is categorical)",
                        Errc::Invalid);
    }
  } else {
    v.method = default_method(numeric, n_ref, n_unique);
  }
  auto t = o.thresholds.find(col);
  v.threshold = t != o.thresholds.end() ? t->second : method_spec(v.method).threshold;
  return v;
}

void decide(Verdict& v, const json& stats) {
  const std::string& m = v.method;
  json s;
  if (m == "ks")
    s = stats["ks"]["p_value"];
  else if (m == "chi2")
    s = stats["chi2"]["p_value"];
  else if (m == "wasserstein")
    s = stats["wasserstein_normed"];
  else if (m == "jensenshannon")
    s = stats["js"];
  else
    s = stats["psi"];
  if (!s.is_number()) return;
  v.score = s.get<double>();
  v.drift = method_spec(m).p_value ? v.score < v.threshold : v.score >= v.threshold;
}

Result<json> numeric_feature(const DriftOptions& o, const std::string& name, Column& ref,
                             Column& cur) {
  sort_values(ref.values);
  sort_values(cur.values);
  const auto& a = ref.values;
  const auto& b = cur.values;
  json f;
  json stats = json::object();
  stats["reference"] = sample_stats(a);
  stats["current"] = sample_stats(b);
  size_t n_unique = count_distinct_union(a, b);
  auto verdict = choose(o, name, true, a.size(), n_unique);
  if (!verdict.ok()) return verdict.error();
  if (!a.empty() && !b.empty()) {
    double w;
    KsResult ks = ks_2samp_and_wasserstein(a, b, &w);
    stats["ks"] = {{"statistic", ks.statistic}, {"p_value", ks.p_value}, {"mode", ks.method}};
    double sd = population_std(a);
    stats["wasserstein"] = w;
    stats["wasserstein_normed"] = w / std::max(sd, 0.001);
    // Bins for PSI, JS and chi-square.
    std::vector<uint64_t> ca, cb;
    json hist;
    if (count_distinct(a) > kPerValueBins) {
      auto edges = sturges_edges(std::min(a.front(), b.front()), std::max(a.back(), b.back()),
                                 a.size() + b.size());
      ca = histogram_sorted(a, edges);
      cb = histogram_sorted(b, edges);
      hist = {{"kind", "bins"}, {"edges", edges}};
    } else {
      std::vector<double> vals;
      size_t i = 0, j = 0;
      while (i < a.size() || j < b.size()) {
        double v = (j >= b.size() || (i < a.size() && a[i] <= b[j])) ? a[i] : b[j];
        uint64_t x = 0, y = 0;
        while (i < a.size() && a[i] == v) ++i, ++x;
        while (j < b.size() && b[j] == v) ++j, ++y;
        vals.push_back(v);
        ca.push_back(x);
        cb.push_back(y);
      }
      hist = {{"kind", "values"}, {"values", vals}};
    }
    hist["reference"] = ca;
    hist["current"] = cb;
    auto sa = shares(ca, a.size()), sb = shares(cb, b.size());
    stats["psi"] = psi(sa, sb);
    stats["js"] = jensenshannon(sa, sb);
    Chi2Result chi = chi2_nonempty(ca, cb);
    stats["chi2"] = {{"statistic", chi.statistic}, {"p_value", chi.p_value}, {"dof", chi.dof}};
    stats["histogram"] = hist;
    // Range: current values outside the reference's [min, max].
    size_t below = std::lower_bound(b.begin(), b.end(), a.front()) - b.begin();
    size_t above = b.end() - std::upper_bound(b.begin(), b.end(), a.back());
    stats["range"] = {
        {"reference_min", a.front()},
        {"reference_max", a.back()},
        {"out_of_range", below + above},
        {"out_of_range_share", static_cast<double>(below + above) / static_cast<double>(b.size())}};
  } else {
    stats["ks"] = {{"statistic", nullptr}, {"p_value", nullptr}};
    stats["wasserstein"] = nullptr;
    stats["wasserstein_normed"] = nullptr;
    stats["psi"] = nullptr;
    stats["js"] = nullptr;
    stats["chi2"] = {{"statistic", nullptr}, {"p_value", nullptr}};
    f["note"] = a.empty() ? "no values in the reference" : "no values in the current data";
  }
  decide(*verdict, stats);
  f["type"] = "numeric";
  f["method"] = verdict->method;
  f["threshold"] = verdict->threshold;
  f["score"] = null_if_nan(verdict->score);
  f["drift"] = verdict->drift;
  f["n_reference"] = a.size();
  f["n_current"] = b.size();
  f["n_unique"] = n_unique;
  f["stats"] = std::move(stats);
  return f;
}

Result<json> categorical_feature(const DriftOptions& o, const std::string& name, Column& ref,
                                 Column& cur) {
  ref.make_categorical();
  cur.make_categorical();
  std::set<std::string> cats;
  for (auto& [k, c] : ref.counts) cats.insert(k);
  for (auto& [k, c] : cur.counts) cats.insert(k);
  std::vector<std::string> names(cats.begin(), cats.end());
  std::vector<uint64_t> ca, cb;
  uint64_t na = 0, nb = 0, new_count = 0;
  json new_cats = json::array();
  for (auto& k : names) {
    auto ia = ref.counts.find(k);
    auto ib = cur.counts.find(k);
    uint64_t x = ia == ref.counts.end() ? 0 : ia->second;
    uint64_t y = ib == cur.counts.end() ? 0 : ib->second;
    ca.push_back(x);
    cb.push_back(y);
    na += x;
    nb += y;
    if (x == 0) {
      new_count += y;
      if (new_cats.size() < 20) new_cats.push_back(k);
    }
  }
  auto verdict = choose(o, name, false, na, names.size());
  if (!verdict.ok()) return verdict.error();
  json f;
  json stats = json::object();
  stats["reference"] = {
      {"categories", std::count_if(ca.begin(), ca.end(), [](uint64_t c) { return c > 0; })}};
  stats["current"] = {
      {"categories", std::count_if(cb.begin(), cb.end(), [](uint64_t c) { return c > 0; })}};
  if (na > 0 && nb > 0) {
    Chi2Result chi = chi2_contingency_2xk(ca, cb);
    stats["chi2"] = {{"statistic", chi.statistic}, {"p_value", chi.p_value}, {"dof", chi.dof}};
    auto sa = shares(ca, na), sb = shares(cb, nb);
    stats["psi"] = psi(sa, sb);
    stats["js"] = jensenshannon(sa, sb);
    stats["range"] = {
        {"new_categories", new_cats},
        {"out_of_range", new_count},
        {"out_of_range_share", static_cast<double>(new_count) / static_cast<double>(nb)}};
  } else {
    stats["chi2"] = {{"statistic", nullptr}, {"p_value", nullptr}};
    stats["psi"] = nullptr;
    stats["js"] = nullptr;
    f["note"] = na == 0 ? "no values in the reference" : "no values in the current data";
  }
  // Histogram: the most frequent categories (both sides together), the rest as one bar.
  std::vector<size_t> order(names.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t x, size_t y) { return ca[x] + cb[x] > ca[y] + cb[y]; });
  json hv = json::array(), hr = json::array(), hc = json::array();
  uint64_t rest_a = 0, rest_b = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    size_t i = order[k];
    if (k < kHistogramCategories) {
      hv.push_back(names[i]);
      hr.push_back(ca[i]);
      hc.push_back(cb[i]);
    } else {
      rest_a += ca[i];
      rest_b += cb[i];
    }
  }
  if (order.size() > kHistogramCategories) {
    hv.push_back("(other)");
    hr.push_back(rest_a);
    hc.push_back(rest_b);
  }
  stats["histogram"] = {{"kind", "categories"}, {"values", hv}, {"reference", hr}, {"current", hc}};
  decide(*verdict, stats);
  f["type"] = "categorical";
  f["method"] = verdict->method;
  f["threshold"] = verdict->threshold;
  f["score"] = null_if_nan(verdict->score);
  f["drift"] = verdict->drift;
  f["n_reference"] = na;
  f["n_current"] = nb;
  f["n_unique"] = names.size();
  f["stats"] = std::move(stats);
  return f;
}

const char* type_name(const Column& c) { return c.numeric ? "numeric" : "categorical"; }

}  // namespace

Result<std::string> canonical_method(const std::string& name) {
  static const std::map<std::string, std::string> kAliases = {
      {"ks", "ks"},
      {"kolmogorov-smirnov", "ks"},
      {"chi2", "chi2"},
      {"chisquare", "chi2"},
      {"chi-square", "chi2"},
      {"wasserstein", "wasserstein"},
      {"wasserstein_normed", "wasserstein"},
      {"wasserstein-normed", "wasserstein"},
      {"jensenshannon", "jensenshannon"},
      {"js", "jensenshannon"},
      {"psi", "psi"},
  };
  auto it = kAliases.find(name);
  if (it == kAliases.end()) {
    return make_error("unknown drift method \"" + name +
                          "\" (expected ks, chi2, wasserstein, jensenshannon or psi)",
                      Errc::Invalid);
  }
  return it->second;
}

Result<std::string> resolve_plain_path(const std::string& ref) {
  std::error_code ec;
  if (!std::filesystem::exists(ref, ec)) {
    return make_error(ref + ": no such file", Errc::NotFound);
  }
  if (std::filesystem::is_directory(ref, ec)) {
    return make_error(ref + ": is a directory (expected a CSV, TSV or JSON-lines file)",
                      Errc::Invalid);
  }
  return ref;
}

Result<std::pair<std::string, std::string>> split_assignment(const std::string& item) {
  auto eq = item.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
    return make_error("expected COLUMN=VALUE, got \"" + item + "\"", Errc::Invalid);
  }
  return std::make_pair(item.substr(0, eq), item.substr(eq + 1));
}

Result<json> compute_drift(const DriftOptions& o) {
  for (auto& [col, m] : o.methods) {
    auto c = canonical_method(m);
    if (!c.ok()) return make_error("column \"" + col + "\": " + c.message(), Errc::Invalid);
  }
  for (auto& [col, t] : o.types) {
    if (t != "numeric" && t != "categorical") {
      return make_error(
          "column \"" + col + "\": unknown type \"" + t + "\" (expected numeric or categorical)",
          Errc::Invalid);
    }
  }
  for (auto& [col, t] : o.thresholds) {
    if (!std::isfinite(t) || t < 0) {
      return make_error("column \"" + col + "\": threshold must be a number >= 0", Errc::Invalid);
    }
  }
  if (!(o.drift_share > 0 && o.drift_share <= 1)) {
    return make_error("drift_share must be in (0, 1]", Errc::Invalid);
  }
  std::string ref_name = o.reference_name.empty() ? o.reference : o.reference_name;
  std::string cur_name = o.current_name.empty() ? o.current : o.current_name;
  std::set<std::string> wanted(o.columns.begin(), o.columns.end());
  const std::set<std::string>* filter = o.columns.empty() ? nullptr : &wanted;

  auto ref = profile(o.reference, ref_name, filter, o.types);
  if (!ref.ok()) return ref.error();
  auto cur = profile(o.current, cur_name, filter, o.types);
  if (!cur.ok()) return cur.error();

  std::vector<std::string> features;
  if (!o.columns.empty()) {
    for (auto& c : o.columns) {
      if (!ref->tracked.count(c)) {
        return make_error("column \"" + c + "\" is not in " + ref_name, Errc::Invalid);
      }
      if (!cur->tracked.count(c)) {
        return make_error("column \"" + c + "\" is not in " + cur_name, Errc::Invalid);
      }
      if (std::find(features.begin(), features.end(), c) == features.end()) features.push_back(c);
    }
  } else {
    for (auto& c : ref->columns) {
      if (cur->tracked.count(c)) features.push_back(c);
    }
  }

  json schema = {
      {"added", json::array()}, {"removed", json::array()}, {"type_changed", json::array()}};
  for (auto& c : ref->columns) {
    if (std::find(cur->columns.begin(), cur->columns.end(), c) == cur->columns.end())
      schema["removed"].push_back(c);
  }
  for (auto& c : cur->columns) {
    if (std::find(ref->columns.begin(), ref->columns.end(), c) == ref->columns.end())
      schema["added"].push_back(c);
  }

  json out_features = json::object();
  json drifted = json::array();
  size_t n_tested = 0;
  for (auto& name : features) {
    Column& rc = ref->tracked.at(name);
    Column& cc = cur->tracked.at(name);
    // Type: the override, else numeric only when both sides are numeric.
    bool rc_has = rc.present() > 0, cc_has = cc.present() > 0;
    if (rc_has && cc_has && rc.numeric != cc.numeric) {
      schema["type_changed"].push_back(
          {{"column", name}, {"reference", type_name(rc)}, {"current", type_name(cc)}});
    }
    Forced forced = forced_of(o.types, name);
    bool numeric =
        forced == Forced::Numeric || (forced == Forced::None && rc.numeric && cc.numeric);
    double ref_missing = ref->rows ? static_cast<double>(rc.missing) / ref->rows : 0.0;
    double cur_missing = cur->rows ? static_cast<double>(cc.missing) / cur->rows : 0.0;
    uint64_t invalid_ref = rc.invalid, invalid_cur = cc.invalid;
    auto f = numeric ? numeric_feature(o, name, rc, cc) : categorical_feature(o, name, rc, cc);
    if (!f.ok()) return f.error();
    json& fj = *f;
    fj["missing_share"] = cur_missing;
    fj["stats"]["reference"]["missing_share"] = ref_missing;
    fj["stats"]["current"]["missing_share"] = cur_missing;
    fj["stats"]["missing_share_change"] = cur_missing - ref_missing;
    if (forced != Forced::None) fj["type_overridden"] = true;
    if (invalid_ref || invalid_cur) {
      fj["stats"]["reference"]["invalid"] = invalid_ref;
      fj["stats"]["current"]["invalid"] = invalid_cur;
    }
    if (fj["score"].is_number()) ++n_tested;
    if (fj["drift"].get<bool>()) drifted.push_back(name);
    // Free the column's memory early.
    rc = Column();
    cc = Column();
    out_features[name] = std::move(fj);
  }
  double share = n_tested ? static_cast<double>(drifted.size()) / n_tested : 0.0;
  json report;
  report["reference"] = ref_name;
  report["current"] = cur_name;
  report["rows"] = {{"reference", ref->rows}, {"current", cur->rows}};
  report["columns"] = features;
  report["features"] = std::move(out_features);
  report["n_features"] = features.size();
  report["n_tested"] = n_tested;
  report["n_drifted"] = drifted.size();
  report["drifted"] = drifted;
  report["share"] = share;
  report["drift_share"] = o.drift_share;
  report["drift"] = n_tested > 0 && share >= o.drift_share;
  report["schema"] = std::move(schema);
  return report;
}

}  // namespace drover::drift
