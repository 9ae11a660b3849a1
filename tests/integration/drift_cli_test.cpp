// `drover drift` end to end: the real binary on files in a temp dir; exit codes 0 (no
// drift), 3 (drift), 1 (error), 2 (usage); --json, --report and the per-column options.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace {

namespace fs = std::filesystem;

struct Output {
  int code = -1;
  std::string out;
};

class DriftCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("drift_cli_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    std::string ref = "x,color\n", same = ref, moved = ref;
    for (int i = 0; i < 200; ++i) {
      ref += std::to_string(i % 50) + "," + (i % 3 ? "red" : "blue") + "\n";
      same += std::to_string((i * 7) % 50) + "," + (i % 3 ? "red" : "blue") + "\n";
      moved += std::to_string(100 + i % 50) + "," + (i % 2 ? "green" : "blue") + "\n";
    }
    write("ref.csv", ref);
    write("same.csv", same);
    write("moved.csv", moved);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }

  Output drover(const std::string& args) {
    std::string cmd = "cd '" + dir_.string() + "' && " DROVER_BIN " drift " + args + " 2>&1";
    Output o;
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) o.out.append(buf, n);
    int st = ::pclose(p);
    o.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return o;
  }

  fs::path dir_;
};

TEST_F(DriftCliTest, NoDriftExitsZero) {
  auto o = drover("--reference ref.csv --current same.csv");
  EXPECT_EQ(o.code, 0) << o.out;
  EXPECT_NE(o.out.find("no dataset drift: 0 of 2 features drifted"), std::string::npos) << o.out;
}

TEST_F(DriftCliTest, DriftExitsThreeWithJsonAndHtmlReports) {
  auto o = drover("--reference ref.csv --current moved.csv --json --report out.html");
  ASSERT_EQ(o.code, 3) << o.out;
  auto j = nlohmann::json::parse(o.out);
  EXPECT_TRUE(j["drift"].get<bool>());
  EXPECT_EQ(j["share"], 1.0);
  const auto& x = j["features"]["x"];
  EXPECT_EQ(x["type"], "numeric");
  EXPECT_EQ(x["method"], "ks");
  for (const char* k : {"score", "threshold", "drift", "n_reference", "n_current", "missing_share"})
    EXPECT_TRUE(x.contains(k)) << k;
  EXPECT_TRUE(x["stats"]["ks"].contains("statistic"));
  EXPECT_TRUE(x["stats"]["ks"].contains("p_value"));
  for (const char* k : {"wasserstein", "wasserstein_normed", "psi", "js"})
    EXPECT_TRUE(x["stats"][k].is_number()) << k;
  const auto& c = j["features"]["color"];
  EXPECT_EQ(c["type"], "categorical");
  EXPECT_TRUE(c["stats"]["chi2"]["p_value"].is_number());
  std::ifstream html(dir_ / "out.html");
  std::stringstream ss;
  ss << html.rdbuf();
  EXPECT_NE(ss.str().find("<svg"), std::string::npos);
}

TEST_F(DriftCliTest, PerColumnOptionsApply) {
  auto o = drover(
      "--reference ref.csv --current moved.csv --columns x --method x=psi "
      "--threshold x=1000 --json");
  ASSERT_EQ(o.code, 0) << o.out;
  auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["columns"], nlohmann::json({"x"}));
  EXPECT_EQ(j["features"]["x"]["method"], "psi");
  EXPECT_EQ(j["features"]["x"]["threshold"], 1000.0);
}

TEST_F(DriftCliTest, ErrorsExitOne) {
  auto o = drover("--reference missing.csv --current same.csv");
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.out, "drover drift: --reference: missing.csv: no such file\n");
  write("bad.csv", "x,color\n1,red\n2,\"blue\n");
  o = drover("--reference ref.csv --current bad.csv");
  EXPECT_EQ(o.code, 1);
  EXPECT_EQ(o.out, "drover drift: bad.csv:3: unterminated quoted field\n");
  o = drover("--reference ref.csv --current same.csv --method x=median");
  EXPECT_EQ(o.code, 1);
}

TEST_F(DriftCliTest, UsageErrorsExitTwoAndHelpStartsWithUsage) {
  EXPECT_EQ(drover("--current same.csv").code, 2);
  EXPECT_EQ(drover("--reference ref.csv --current same.csv --method x").code, 2);
  auto h = drover("--help");
  EXPECT_EQ(h.code, 0);
  EXPECT_EQ(h.out.rfind("Usage:", 0), 0u) << h.out;
  EXPECT_NE(h.out.find("3  dataset drift detected"), std::string::npos);
}

// A 2 GB file is streamed: peak memory stays far below the file's size (categorical
// columns keep only counts).
TEST_F(DriftCliTest, ATwoGigabyteFileIsStreamedInBoundedMemory) {
  const std::string names[] = {std::string(250, 'a'), std::string(250, 'b'), std::string(250, 'c'),
                               std::string(250, 'd')};
  uint64_t rows = 0;
  {
    std::ofstream out(dir_ / "big.csv", std::ios::binary);
    out << "kind\n";
    std::string block;
    for (int i = 0; i < 4096; ++i) block += names[i % 4] + "\n";  // ~1 MiB
    const uint64_t target = 2ULL << 30;
    for (uint64_t written = 0; written < target; written += block.size(), rows += 4096)
      out << block;
  }
  ASSERT_GE(fs::file_size(dir_ / "big.csv"), 2ULL << 30);
  write("small.csv",
        "kind\n" + names[0] + "\n" + names[1] + "\n" + names[2] + "\n" + names[3] + "\n");
  Output o = drover("--reference big.csv --current small.csv --json > report.json");
  EXPECT_EQ(o.code, 0) << o.out;
  struct rusage ru {};
  ::getrusage(RUSAGE_CHILDREN, &ru);
  EXPECT_LT(ru.ru_maxrss, 256 * 1024) << "peak RSS " << ru.ru_maxrss << " KiB";  // < 256 MiB
  std::ifstream in(dir_ / "report.json");
  auto j = nlohmann::json::parse(in, nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["features"]["kind"]["n_reference"], rows);
  fs::remove(dir_ / "big.csv");
}

}  // namespace
