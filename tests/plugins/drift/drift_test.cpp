// Drift statistics checked against scipy (tests/plugins/drift/scipy_reference.py run by
// Debian's /usr/bin/python3) to 1e-9 relative, PSI against a reference written here, and
// the default method choice, overrides, schema and range checks of compute_drift.
#include "plugins/drift/drift.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "plugins/drift/stats.hpp"

namespace drover::drift {
namespace {

namespace fs = std::filesystem;

class DriftTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("drift_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }

  static std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.17g", v);
    return buf;
  }

  // One-column CSV text ("" for a missing value).
  static std::string csv_column(const std::string& name, const std::vector<std::string>& vals) {
    std::string s = name + "\n";
    for (auto& v : vals) s += v + "\n";
    return s;
  }
  static std::vector<std::string> texts(const std::vector<double>& v) {
    std::vector<std::string> t;
    for (double x : v) t.push_back(num(x));
    return t;
  }

  json scipy(const std::string& ref, const std::string& cur, const std::string& extra = "") {
    std::string cmd = "/usr/bin/python3 " DROVER_SOURCE_DIR
                      "/tests/plugins/drift/scipy_reference.py '" +
                      ref + "' '" + cur + "' " + extra;
    FILE* p = ::popen(cmd.c_str(), "r");
    EXPECT_NE(p, nullptr);
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
    EXPECT_EQ(::pclose(p), 0) << cmd;
    return json::parse(out);
  }

  json drift(const std::string& ref, const std::string& cur, DriftOptions o = {}) {
    o.reference = ref;
    o.current = cur;
    auto r = compute_drift(o);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.message());
    return r.ok() ? *r : json();
  }

  static void expect_close(const json& ours, const json& theirs, const std::string& what) {
    ASSERT_TRUE(ours.is_number()) << what << " ours=" << ours.dump();
    ASSERT_TRUE(theirs.is_number()) << what << " scipy=" << theirs.dump();
    double a = ours.get<double>(), b = theirs.get<double>();
    double tol = 1e-9 * std::max(std::fabs(a), std::fabs(b)) + 1e-15;
    EXPECT_LE(std::fabs(a - b), tol) << what << ": drover " << num(a) << " scipy " << num(b);
  }

  // Every statistic of every column shared by the two reports.
  void compare_all(const json& ours, const json& ref) {
    for (auto& [name, s] : ref.items()) {
      SCOPED_TRACE("column " + name);
      ASSERT_TRUE(ours["features"].contains(name));
      const json& f = ours["features"][name];
      EXPECT_EQ(f["type"], s["type"]);
      EXPECT_EQ(f["n_reference"], s["n_reference"]);
      EXPECT_EQ(f["n_current"], s["n_current"]);
      if (s.contains("empty")) {
        EXPECT_TRUE(f["score"].is_null());
        EXPECT_FALSE(f["drift"].get<bool>());
        EXPECT_TRUE(f.contains("note"));
        continue;
      }
      const json& st = f["stats"];
      if (s["type"] == "numeric") {
        expect_close(st["ks"]["statistic"], s["ks"]["statistic"], "ks.statistic");
        expect_close(st["ks"]["p_value"], s["ks"]["p_value"], "ks.p_value");
        expect_close(st["wasserstein"], s["wasserstein"], "wasserstein");
        expect_close(st["wasserstein_normed"], s["wasserstein_normed"], "wasserstein_normed");
      }
      if (s["type"] == "numeric") {  // categorical histograms are ordered by frequency
        EXPECT_EQ(st["histogram"]["reference"], s["bins_reference"]);
        EXPECT_EQ(st["histogram"]["current"], s["bins_current"]);
      }
      expect_close(st["js"], s["js"], "js");
      expect_close(st["psi"], s["psi"], "psi");
      expect_close(st["chi2"]["statistic"], s["chi2"]["statistic"], "chi2.statistic");
      expect_close(st["chi2"]["p_value"], s["chi2"]["p_value"], "chi2.p_value");
      EXPECT_EQ(st["chi2"]["dof"], s["chi2"]["dof"]);
    }
  }

  void check_numeric(const std::vector<double>& a, const std::vector<double>& b,
                     const std::string& expect_mode = "") {
    auto r = write("ref.csv", csv_column("x", texts(a)));
    auto c = write("cur.csv", csv_column("x", texts(b)));
    json ours = drift(r, c);
    compare_all(ours, scipy(r, c));
    if (!expect_mode.empty()) {
      EXPECT_EQ(ours["features"]["x"]["stats"]["ks"]["mode"], expect_mode);
    }
  }

  static std::vector<double> normal(size_t n, double mu, double sd, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> d(mu, sd);
    std::vector<double> v(n);
    for (auto& x : v) x = d(rng);
    return v;
  }
  static std::vector<double> ints(size_t n, int lo, int hi, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> d(lo, hi);
    std::vector<double> v(n);
    for (auto& x : v) x = d(rng);
    return v;
  }

  fs::path dir_;
};

TEST_F(DriftTest, KsExactUnequalSizesMatchesScipy) {
  check_numeric(normal(40, 0, 1, 1), normal(55, 0.5, 1, 2), "exact");
}

TEST_F(DriftTest, KsExactEqualSizesMatchesScipy) {
  check_numeric(normal(60, 0, 1, 3), normal(60, 0.3, 1.2, 4), "exact");
}

TEST_F(DriftTest, KsExactMediumSamplesMatchScipy) {
  check_numeric(normal(3000, 0, 1, 5), normal(2500, 0.05, 1, 6), "exact");
}

TEST_F(DriftTest, TiesMatchScipy) {
  check_numeric(ints(300, 0, 20, 7), ints(250, 2, 22, 8), "exact");
}

TEST_F(DriftTest, KsAsymptoticSmallDriftMatchesScipy) {
  check_numeric(normal(12000, 0, 1, 9), normal(11000, 0.01, 1, 10), "asymp");
}

TEST_F(DriftTest, KsAsymptoticLargeDriftMatchesScipy) {
  check_numeric(normal(12000, 0, 1, 11), normal(9000, 0.1, 1, 12), "asymp");
}

TEST_F(DriftTest, KsAsymptoticWithTinyCurrentMatchesScipy) {
  check_numeric(normal(10001, 0, 1, 13), normal(30, 0.4, 1, 14), "asymp");
  check_numeric(normal(10500, 0, 1, 15), normal(90, 0.05, 1, 16), "asymp");
}

TEST_F(DriftTest, ConstantColumnsMatchScipy) {
  check_numeric(std::vector<double>(50, 5.0), std::vector<double>(40, 5.0));
  check_numeric(std::vector<double>(50, 5.0), std::vector<double>(40, 6.0));
}

TEST_F(DriftTest, OneRowInputsMatchScipy) {
  check_numeric({1.5}, {2.5});
  check_numeric({1.5}, normal(20, 0, 1, 17));
}

TEST_F(DriftTest, CategoricalMatchesScipy) {
  std::mt19937_64 rng(18);
  std::discrete_distribution<int> da({50, 30, 15, 5}), db({40, 30, 20, 5, 5});
  const char* names[] = {"red", "green", "blue", "black", "white"};
  std::string ref = "color,size\n", cur = "color,size\n";
  for (int i = 0; i < 700; ++i)
    ref += std::string(names[da(rng)]) + ",s" + std::to_string(i % 3) + "\n";
  for (int i = 0; i < 500; ++i)
    cur += std::string(names[db(rng)]) + ",s" + std::to_string(i % 4) + "\n";
  auto r = write("ref.csv", ref), c = write("cur.csv", cur);
  json ours = drift(r, c);
  compare_all(ours, scipy(r, c));
  EXPECT_EQ(ours["features"]["color"]["method"], "chi2");
  EXPECT_EQ(ours["features"]["size"]["stats"]["range"]["new_categories"], json({"s3"}));
}

TEST_F(DriftTest, SingleCategoryHasNoDegreesOfFreedom) {
  auto r = write("ref.csv", csv_column("k", {"a", "a", "a"}));
  auto c = write("cur.csv", csv_column("k", {"a", "a"}));
  json ours = drift(r, c);
  compare_all(ours, scipy(r, c));
  EXPECT_EQ(ours["features"]["k"]["stats"]["chi2"]["p_value"], 1.0);
  EXPECT_FALSE(ours["features"]["k"]["drift"].get<bool>());
}

TEST_F(DriftTest, EmptyAndAllMissingColumnsAreNotTested) {
  auto r = write("ref.csv", "a,b,c\n1,,x\n2,NA,y\n3,null,x\n");
  auto c = write("cur.csv", "a,b,c\n,1,\n,2,\n");
  json ours = drift(r, c);
  compare_all(ours, scipy(r, c));
  EXPECT_EQ(ours["features"]["a"]["note"], "no values in the current data");
  EXPECT_EQ(ours["features"]["b"]["note"], "no values in the reference");
  EXPECT_EQ(ours["features"]["a"]["missing_share"], 1.0);
  EXPECT_EQ(ours["n_tested"], 0);
  EXPECT_FALSE(ours["drift"].get<bool>());
}

TEST_F(DriftTest, JsonLinesMatchScipy) {
  std::string ref, cur;
  auto a = normal(80, 0, 1, 19), b = normal(70, 1, 1, 20);
  for (size_t i = 0; i < a.size(); ++i)
    ref += "{\"v\": " + num(a[i]) + ", \"g\": \"" + (i % 3 ? "p" : "q") + "\"}\n";
  for (size_t i = 0; i < b.size(); ++i)
    cur += "{\"v\": " + num(b[i]) + ", \"g\": " + (i % 5 ? "\"p\"" : "null") + "}\n";
  auto r = write("ref.jsonl", ref), c = write("cur.jsonl", cur);
  json ours = drift(r, c);
  compare_all(ours, scipy(r, c));
  EXPECT_TRUE(ours["features"]["v"]["drift"].get<bool>());
}

double reference_psi(const std::vector<double>& ref, const std::vector<double>& cur) {
  double s = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    double r = ref[i] > 0 ? ref[i] : 0.0001;
    double c = cur[i] > 0 ? cur[i] : 0.0001;
    s += (c - r) * std::log(c / r);
  }
  return s;
}

TEST_F(DriftTest, PsiMatchesTheTextbookFormula) {
  std::vector<double> r = {0.1, 0.2, 0.3, 0.4, 0.0}, c = {0.15, 0.25, 0.2, 0.3, 0.1};
  EXPECT_NEAR(psi(r, c), reference_psi(r, c), 1e-15);
  EXPECT_EQ(psi(r, r), 0.0);
  auto rf = write("ref.csv", csv_column("x", texts(normal(500, 0, 1, 21))));
  auto cf = write("cur.csv", csv_column("x", texts(normal(400, 0.3, 1, 22))));
  json ours = drift(rf, cf);
  const json& h = ours["features"]["x"]["stats"]["histogram"];
  std::vector<double> rs, cs;
  for (auto& v : h["reference"]) rs.push_back(v.get<double>() / 500);
  for (auto& v : h["current"]) cs.push_back(v.get<double>() / 400);
  EXPECT_NEAR(ours["features"]["x"]["stats"]["psi"].get<double>(), reference_psi(rs, cs), 1e-12);
}

TEST_F(DriftTest, DefaultsFollowEvidentlyRules) {
  std::string small_ref = "num,cat,low\n", small_cur = small_ref, big_ref = small_ref,
              big_cur = small_ref;
  auto a = normal(2000, 0, 1, 23);
  for (int i = 0; i < 500; ++i) {
    small_ref += num(a[i]) + ",c" + std::to_string(i % 4) + "," + std::to_string(i % 3) + "\n";
    small_cur +=
        num(a[i + 500]) + ",c" + std::to_string(i % 4) + "," + std::to_string(i % 3) + "\n";
  }
  for (int i = 0; i < 1500; ++i) {
    big_ref += num(a[i]) + ",c" + std::to_string(i % 4) + "," + std::to_string(i % 3) + "\n";
    big_cur +=
        num(a[(i + 7) % 2000]) + ",c" + std::to_string(i % 4) + "," + std::to_string(i % 3) + "\n";
  }
  json s = drift(write("sr.csv", small_ref), write("sc.csv", small_cur));
  EXPECT_EQ(s["features"]["num"]["method"], "ks");
  EXPECT_EQ(s["features"]["num"]["threshold"], 0.05);
  EXPECT_EQ(s["features"]["cat"]["method"], "chi2");
  EXPECT_EQ(s["features"]["low"]["method"], "chi2");
  EXPECT_EQ(s["features"]["low"]["type"], "numeric");
  json b = drift(write("br.csv", big_ref), write("bc.csv", big_cur));
  EXPECT_EQ(b["features"]["num"]["method"], "wasserstein");
  EXPECT_EQ(b["features"]["num"]["threshold"], 0.1);
  EXPECT_EQ(b["features"]["num"]["score"], b["features"]["num"]["stats"]["wasserstein_normed"]);
  EXPECT_EQ(b["features"]["cat"]["method"], "jensenshannon");
  EXPECT_FALSE(b["drift"].get<bool>());
}

TEST_F(DriftTest, OverridesChangeMethodThresholdAndType) {
  auto r = write("ref.csv", "x,code\n1,10\n2,20\n3,10\n4,30\n5,10\n6,20\n7,10\n");
  auto c = write("cur.csv", "x,code\n1,10\n2,20\n3,20\n4,30\n5,10\n6,20\n9,40\n");
  DriftOptions o;
  o.methods = {{"x", "psi"}};
  o.thresholds = {{"x", 5.0}};
  o.types = {{"code", "categorical"}};
  json rep = drift(r, c, o);
  EXPECT_EQ(rep["features"]["x"]["method"], "psi");
  EXPECT_EQ(rep["features"]["x"]["threshold"], 5.0);
  EXPECT_EQ(rep["features"]["code"]["type"], "categorical");
  EXPECT_EQ(rep["features"]["code"]["stats"]["range"]["new_categories"], json({"40"}));
  compare_all(rep, scipy(r, c, "code=categorical"));

  o.methods = {{"code", "ks"}};
  o.reference = r;
  o.current = c;
  auto bad = compute_drift(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(),
            "column \"code\": method ks needs a numeric column (this one is categorical)");
  o.methods = {{"x", "median"}};
  bad = compute_drift(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(),
            "column \"x\": unknown drift method \"median\" (expected ks, chi2, "
            "wasserstein, jensenshannon or psi)");
}

TEST_F(DriftTest, DatasetDriftWhenShareReachesThreshold) {
  std::string ref = "a,b,c,d\n", cur = ref;
  auto x = normal(300, 0, 1, 24), y = normal(300, 0, 1, 25);
  for (int i = 0; i < 300; ++i) {
    ref += num(x[i]) + "," + num(x[i]) + "," + num(x[i]) + "," + num(x[i]) + "\n";
    cur += num(y[i] + 3) + "," + num(y[i]) + "," + num(y[i]) + "," + num(y[i]) + "\n";
  }
  auto r = write("ref.csv", ref), c = write("cur.csv", cur);
  json rep = drift(r, c);
  EXPECT_EQ(rep["n_drifted"], 1);
  EXPECT_EQ(rep["share"], 0.25);
  EXPECT_FALSE(rep["drift"].get<bool>());
  EXPECT_EQ(rep["drifted"], json({"a"}));
  DriftOptions o;
  o.drift_share = 0.25;
  EXPECT_TRUE(drift(r, c, o)["drift"].get<bool>());
}

TEST_F(DriftTest, SchemaChangesAndRangeViolationsAreReported) {
  auto r = write("ref.csv", "id,score,kind\n1,0.5,a\n2,0.7,b\n3,0.9,a\n4,1.0,b\n");
  auto c = write("cur.csv", "id,score,extra\n1,x,1\n2,0.7,2\n3,1.5,3\n4,-1,4\n");
  json rep = drift(r, c);
  EXPECT_EQ(rep["schema"]["added"], json({"extra"}));
  EXPECT_EQ(rep["schema"]["removed"], json({"kind"}));
  EXPECT_EQ(rep["schema"]["type_changed"],
            json::parse(R"([{"column":"score","reference":"numeric","current":"categorical"}])"));
  EXPECT_EQ(rep["features"]["score"]["type"], "categorical");
  EXPECT_EQ(rep["features"]["id"]["stats"]["range"]["out_of_range_share"], 0.0);

  auto c2 = write("cur2.csv", "id,score,kind\n1,0.6,a\n2,1.5,a\n3,-1,b\n4,0.8,a\n");
  json rep2 = drift(r, c2);
  EXPECT_EQ(rep2["features"]["score"]["stats"]["range"]["out_of_range"], 2);
  EXPECT_EQ(rep2["features"]["score"]["stats"]["range"]["out_of_range_share"], 0.5);
}

TEST_F(DriftTest, RequestedColumnsMustExist) {
  auto r = write("ref.csv", "a,b\n1,2\n");
  auto c = write("cur.csv", "a\n1\n");
  DriftOptions o;
  o.reference = r;
  o.current = c;
  o.reference_name = "ref.csv";
  o.current_name = "cur.csv";
  o.columns = {"b"};
  auto res = compute_drift(o);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.message(), "column \"b\" is not in cur.csv");
  o.columns = {"a"};
  res = compute_drift(o);
  ASSERT_TRUE(res.ok());
  EXPECT_EQ((*res)["columns"], json({"a"}));
}

TEST_F(DriftTest, MissingReferenceIsAnError) {
  DriftOptions o;
  o.reference = (dir_ / "nope.csv").string();
  o.current = write("cur.csv", "a\n1\n");
  o.reference_name = "nope.csv";
  auto res = compute_drift(o);
  ASSERT_FALSE(res.ok());
  EXPECT_EQ(res.message(), "nope.csv: No such file or directory");
  auto p = resolve_plain_path((dir_ / "nope.csv").string());
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::NotFound);
}

TEST_F(DriftTest, HtmlReportIsSelfContained) {
  auto r = write("ref.csv", csv_column("x<y>", texts(normal(100, 0, 1, 26))));
  auto c = write("cur.csv", csv_column("x<y>", texts(normal(100, 1, 1, 27))));
  std::string html = render_html(drift(r, c));
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("x&lt;y&gt;"), std::string::npos);
  EXPECT_EQ(html.find("x<y>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
}

TEST(DriftStatsTest, GammainccMatchesKnownValues) {
  // scipy.special.gammaincc values.
  EXPECT_NEAR(gammaincc(0.5, 2.0) / 0.04550026389635857, 1.0, 1e-12);
  EXPECT_NEAR(gammaincc(1.0, 3.0) / std::exp(-3.0), 1.0, 1e-12);
  EXPECT_NEAR(gammaincc(10.0, 5.0) / 0.9681719426937951, 1.0, 1e-12);
  EXPECT_NEAR(gammaincc(100.5, 130.0) / 0.003183080000722432, 1.0, 1e-12);
  EXPECT_NEAR(gammaincc(3.0, 80.0) / 5.921717403520811e-32, 1.0, 1e-12);
  EXPECT_EQ(gammaincc(2.0, 0.0), 1.0);
}

}  // namespace
}  // namespace drover::drift
