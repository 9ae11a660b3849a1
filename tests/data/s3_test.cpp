// Tests of S3Remote (data/s3_remote.hpp) against a real S3-compatible server
// that checks SigV4 signatures: npm's @20minutes/s3rver, started here on loopback port 0.
// Skipped, saying why, when node or the package is absent. The package is looked for in
// $DROVER_S3RVER_DIR, /opt/drover/s3rver and DROVER_SOURCE_DIR/build-snap/s3rver (each a
// folder holding node_modules/@20minutes/s3rver).
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <regex>

#include "common/sha256.hpp"
#include "data/registry.hpp"
#include "data/s3_remote.hpp"
#include "tests/data/test_util.hpp"

namespace drover::data {
namespace {

using testing::describe;
using testing::TempDir;
using testing::write;
namespace fs = std::filesystem;

std::string find_s3rver() {
  std::vector<std::string> dirs;
  if (const char* d = std::getenv("DROVER_S3RVER_DIR")) dirs.push_back(d);
  dirs.push_back("/opt/drover/s3rver");
  dirs.push_back(std::string(DROVER_SOURCE_DIR) + "/build-snap/s3rver");
  for (auto& d : dirs) {
    fs::path cli = fs::path(d) / "node_modules/@20minutes/s3rver/lib/cli.js";
    if (fs::exists(cli)) return cli.string();
  }
  return {};
}

bool have_node() { return std::system("node --version > /dev/null 2>&1") == 0; }

// One s3rver process with bucket "data", for the whole suite.
class S3Server {
 public:
  // Returns an error text, or "" when started.
  std::string start(const std::string& cli_js, const fs::path& dir) {
    int fds[2];
    if (::pipe(fds) != 0) return "pipe failed";
    std::string script =
        "require(process.argv[1]).parseAsync(['node', 's3rver'].concat("
        "process.argv.slice(2))).catch(e => { console.error(e); "
        "process.exit(1) })";
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], 1);
      ::dup2(fds[1], 2);
      ::close(fds[0]);
      ::close(fds[1]);
      ::setpgid(0, 0);
      ::execlp("node", "node", "-e", script.c_str(), cli_js.c_str(), "-d", dir.c_str(), "-p", "0",
               "-s", "--configure-bucket", "data", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(fds[1]);
    // Wait (bounded) for "S3rver listening on 127.0.0.1:PORT".
    std::string out;
    std::regex re("listening on ([0-9.]+):([0-9]+)");
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fds[0], POLLIN, 0};
      if (::poll(&p, 1, 1000) <= 0) continue;
      char buf[4096];
      ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
      std::smatch m;
      if (std::regex_search(out, m, re)) {
        endpoint_ = "http://" + m[1].str() + ":" + m[2].str();
        out_fd_ = fds[0];
        return "";
      }
    }
    ::close(fds[0]);
    return "s3rver did not start: " + out;
  }
  ~S3Server() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGTERM);
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
  }
  const std::string& endpoint() const { return endpoint_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string endpoint_;
};

class S3Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string cli = find_s3rver();
    if (!have_node()) {
      skip_ = "node is not installed (apt-get install nodejs npm)";
      return;
    }
    if (cli.empty()) {
      skip_ =
          "s3rver is not installed: npm install --prefix /opt/drover/s3rver "
          "@20minutes/s3rver@5.0.0 (or set DROVER_S3RVER_DIR)";
      return;
    }
    dir_ = new TempDir();
    server_ = new S3Server();
    std::string err = server_->start(cli, dir_->path() / "s3");
    if (!err.empty()) skip_ = err;
  }
  static void TearDownTestSuite() {
    delete server_;
    delete dir_;
    server_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << skip_;
  }
  S3Config config(const std::string& prefix) const {
    S3Config c;
    c.endpoint = server_->endpoint();
    c.bucket = "data";
    c.prefix = prefix;
    c.access_key = "S3RVER";
    c.secret_key = "S3RVER";
    return c;
  }

  static inline std::string skip_;
  static inline TempDir* dir_ = nullptr;
  static inline S3Server* server_ = nullptr;
};

TEST_F(S3Test, PushDeleteLocalBlobsPullCheckoutIsByteEqual) {
  TempDir tmp;
  write(tmp / "data/a.csv", "id,x\n1,2\n");
  write(tmp / "data/sub dir/données.bin", std::string(300000, 'z'), 0600);
  write(tmp / "data/run.sh", "#!/bin/sh\n", 0755);
  fs::create_directories(tmp / "data/empty");
  fs::create_symlink("a.csv", tmp / "data/link");
  Registry reg(tmp / "home");
  auto v = reg.add(tmp / "data", "events", "v1", "");
  ASSERT_TRUE(v.ok()) << v.message();
  S3Remote remote(config("team/round-trip"));
  auto pushed = reg.push("events@v1", remote);
  ASSERT_TRUE(pushed.ok()) << pushed.message();
  EXPECT_EQ(pushed->blobs_sent, 3u);
  auto again = reg.push("events@v1", remote);
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_EQ(again->blobs_sent, 0u);
  EXPECT_EQ(again->blobs_skipped, 3u);

  fs::remove_all(tmp / "home/blobs");
  auto pulled = reg.pull("events@v1", remote);
  ASSERT_TRUE(pulled.ok()) << pulled.message();
  EXPECT_EQ(pulled->version, v->version);
  ASSERT_TRUE(reg.checkout("events@v1", tmp / "out").ok());
  EXPECT_EQ(describe(tmp / "data"), describe(tmp / "out"));
}

TEST_F(S3Test, AWrongSecretIsRefused) {
  S3Config c = config("wrong");
  c.secret_key = "not-the-secret";
  S3Remote remote(c);
  auto s = remote.put_bytes("refs/x/y", "hello");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("HTTP 403 SignatureDoesNotMatch"), std::string::npos) << s.message();
  auto e = remote.exists("refs/x/y");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.message().find("HTTP 403"), std::string::npos) << e.message();
}

TEST_F(S3Test, MissingObjectsReadAsAbsent) {
  S3Remote remote(config("absent"));
  auto e = remote.exists("blobs/00/" + std::string(62, '0'));
  ASSERT_TRUE(e.ok()) << e.message();
  EXPECT_FALSE(*e);
  auto b = remote.get_bytes("refs/none/none");
  ASSERT_TRUE(b.ok()) << b.message();
  EXPECT_FALSE(b->has_value());
}

TEST_F(S3Test, LargeObjectsGoUpInPartsAndComeBackWhole) {
  TempDir tmp;
  std::string big;
  big.reserve(12u << 20);
  for (size_t i = 0; big.size() < (12u << 20); ++i) big += std::to_string(i) + ",";
  write(tmp / "big.bin", big);
  S3Config c = config("multipart");
  c.multipart_threshold = 6u << 20;
  c.part_size = 5u << 20;
  S3Remote remote(c);
  ASSERT_TRUE(remote.put_file("objects/big.bin", tmp / "big.bin").ok());
  ASSERT_TRUE(remote.get_file("objects/big.bin", tmp / "back.bin").ok());
  EXPECT_EQ(sha256_file(tmp / "back.bin")->sha256, sha256_hex(big));
}

TEST_F(S3Test, RemoteUrlReadsItsSettingsFromTheEnvironment) {
  ::setenv("DROVER_S3_ENDPOINT", server_->endpoint().c_str(), 1);
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  auto r = open_remote("s3://data/env/prefix/");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ((*r)->url(), "s3://data/env/prefix");
  ASSERT_TRUE((*r)->put_bytes("refs/a/b", "x\n").ok());
  EXPECT_EQ(*(*(*r)->get_bytes("refs/a/b")), "x\n");
  ::unsetenv("AWS_SECRET_ACCESS_KEY");
  EXPECT_EQ(open_remote("s3://data/x").message(),
            "s3 remote needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
}

}  // namespace
}  // namespace drover::data
