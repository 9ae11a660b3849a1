// End-to-end tests of `drover snapshot ...`: the real binary (DROVER_BIN) in a temp --home.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct Output {
  int rc = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class SnapshotCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "drover-snapcli-XXXXXX").string();
    dir_ = ::mkdtemp(tmpl.data());
    home_ = dir_ / "home";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs `drover snapshot ARGS... --home HOME` (home added unless `with_home` is false).
  Output snap(std::vector<std::string> args, bool with_home = true) {
    fs::path out = dir_ / "stdout", err = dir_ / "stderr";
    pid_t pid = start(std::move(args), out, err, with_home);
    int status = 0;
    ::waitpid(pid, &status, 0);
    Output r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }

  // Starts `drover snapshot ARGS... --home HOME` in the background; returns its pid.
  pid_t start(std::vector<std::string> args, const fs::path& out, const fs::path& err,
              bool with_home = true) {
    std::vector<std::string> argv = {DROVER_BIN, "snapshot"};
    argv.insert(argv.end(), args.begin(), args.end());
    if (with_home) {
      argv.push_back("--home");
      argv.push_back(home_.string());
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(o, 1);
      ::dup2(e, 2);
      std::vector<char*> cargv;
      for (auto& a : argv) cargv.push_back(a.data());
      cargv.push_back(nullptr);
      ::execv(cargv[0], cargv.data());
      ::_exit(127);
    }
    return pid;
  }

  void write(const std::string& rel, const std::string& content, int mode = 0644) {
    fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    ::chmod(p.c_str(), static_cast<mode_t>(mode));
  }

  fs::path dir_, home_;
};

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

TEST_F(SnapshotCliTest, HelpStartsWithUsageAndListsExitCodes) {
  for (auto sub : {"", "add", "checkout", "gc"}) {
    std::vector<std::string> args;
    if (*sub) args.push_back(sub);
    args.push_back("--help");
    auto r = snap(args, false);
    EXPECT_EQ(r.rc, 0) << sub;
    EXPECT_EQ(r.out.rfind("Usage:", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("Exit codes:"), std::string::npos) << r.out;
  }
  EXPECT_EQ(snap({"add"}).rc, 2);
  EXPECT_EQ(snap({}).rc, 2);
}

TEST_F(SnapshotCliTest, AddPrintsTheVersionIdAndCheckoutRecreatesTheFolder) {
  write("data/a.csv", "id,x\n1,2\n");
  write("data/sub dir/é.txt", "unicode");
  write("data/run.sh", "#!/bin/sh\n", 0755);
  fs::create_directories(dir_ / "data/empty");
  fs::create_symlink("a.csv", dir_ / "data/link");
  auto add = snap({"add", (dir_ / "data").string(), "--dataset", "events", "--tag", "v1", "-m",
                   "first export"});
  ASSERT_EQ(add.rc, 0) << add.err;
  std::string version = first_line(add.out);
  EXPECT_EQ(version.size(), 64u);
  EXPECT_EQ(add.out, version + "\n");

  auto co = snap({"checkout", "events@v1", (dir_ / "out").string()});
  ASSERT_EQ(co.rc, 0) << co.err;
  EXPECT_EQ(slurp(dir_ / "out/sub dir/é.txt"), "unicode");
  EXPECT_EQ(fs::read_symlink(dir_ / "out/link"), "a.csv");
  EXPECT_TRUE(fs::is_directory(dir_ / "out/empty"));
  EXPECT_EQ(fs::status(dir_ / "out/run.sh").permissions() & fs::perms::owner_exec,
            fs::perms::owner_exec);

  auto show = snap({"show", version.substr(0, 8), "--json"});
  ASSERT_EQ(show.rc, 0) << show.err;
  json j = json::parse(show.out);
  EXPECT_EQ(j["version"], version);
  EXPECT_EQ(j["dataset"], "events");
  EXPECT_EQ(j["files"].size(), 5u);
}

TEST_F(SnapshotCliTest, ListingsEscapeControlCharactersInNamesAndMessages) {
  // A file name that retitles the terminal (OSC 0) and one that clears it (CSI 2J).
  write("data/a\x1b]0;pwned\x07.csv", "1");
  write("data/b\x1b[2J\n.txt", "2");
  auto add = snap({"add", (dir_ / "data").string(), "--dataset", "events", "-m", "m\x1b[31mred"});
  ASSERT_EQ(add.rc, 0) << add.err;
  write("data/c\x9b.txt", "3");  // a lone C1 byte (not UTF-8)
  ASSERT_EQ(snap({"add", (dir_ / "data").string(), "--dataset", "events"}).rc, 0);
  auto show = snap({"show", first_line(add.out)});
  auto ls = snap({"ls", "events"});
  auto diff = snap({"diff", first_line(add.out), "events@latest"});
  for (auto* out : {&show.out, &ls.out, &diff.out}) {
    EXPECT_EQ(out->find('\x1b'), std::string::npos) << *out;
    EXPECT_EQ(out->find('\x07'), std::string::npos) << *out;
  }
  EXPECT_NE(show.out.find("a\\x1b]0;pwned\\x07.csv"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("b\\x1b[2J\\x0a.txt"), std::string::npos) << show.out;
  EXPECT_NE(ls.out.find("m\\x1b[31mred"), std::string::npos) << ls.out;
  EXPECT_NE(diff.out.find("added    c\\x9b.txt"), std::string::npos) << diff.out;
}

TEST_F(SnapshotCliTest, LsDiffAndTagWorkOnVersions) {
  write("data/keep", "same");
  write("data/edit", "ab");
  ASSERT_EQ(snap({"add", (dir_ / "data").string(), "-d", "events", "-t", "old"}).rc, 0);
  write("data/edit", "abcd");
  write("data/new", "123");
  auto v2 = snap({"add", (dir_ / "data").string(), "-d", "events", "-m", "second"});
  ASSERT_EQ(v2.rc, 0) << v2.err;

  auto diff = snap({"diff", "events@old", "events@latest"});
  ASSERT_EQ(diff.rc, 0) << diff.err;
  EXPECT_EQ(diff.out,
            "added    new  (3 bytes)\n"
            "changed  edit  (2 -> 4 bytes)\n"
            "1 added, 0 removed, 1 changed\n");
  auto dj = json::parse(snap({"diff", "events@old", "events@latest", "--json"}).out);
  EXPECT_EQ(dj["added"][0]["path"], "new");
  EXPECT_EQ(dj["changed"][0]["new_size"], 4);

  auto ls = json::parse(snap({"ls", "--json"}).out);
  ASSERT_EQ(ls.size(), 1u);
  EXPECT_EQ(ls[0]["name"], "events");
  EXPECT_EQ(ls[0]["versions"], 2);
  auto versions = json::parse(snap({"ls", "events", "--json"}).out);
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_EQ(versions[0]["message"], "second");
  EXPECT_EQ(versions[1]["tags"][0], "old");

  ASSERT_EQ(snap({"tag", "events@latest", "gold"}).rc, 0);
  EXPECT_EQ(first_line(snap({"show", "events@gold", "--json"}).out).empty(), false);
}

TEST_F(SnapshotCliTest, BadRefsFailWithExitOneAndAnExactMessage) {
  write("data/a", "a");
  ASSERT_EQ(snap({"add", (dir_ / "data").string(), "-d", "events"}).rc, 0);
  auto r = snap({"show", "nope@latest"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "drover snapshot: unknown dataset 'nope'\n");
  r = snap({"checkout", "events@v9", (dir_ / "o").string()});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err, "drover snapshot: dataset 'events' has no tag 'v9'\n");
  r = snap({"add", (dir_ / "data").string(), "-d", "Bad"});
  EXPECT_EQ(r.err, "drover snapshot: invalid dataset name 'Bad': use [a-z0-9_.-]+\n");
}

TEST_F(SnapshotCliTest, PushGcPullThroughAFolderRemote) {
  write("data/a", std::string(1000, 'a'));
  write("data/b", "b");
  auto add = snap({"add", (dir_ / "data").string(), "-d", "events", "-t", "v1"});
  ASSERT_EQ(add.rc, 0) << add.err;
  std::string remote = "file://" + (dir_ / "remote").string();
  auto push = snap({"push", "events@v1", "--remote", remote, "--json"});
  ASSERT_EQ(push.rc, 0) << push.err;
  EXPECT_EQ(json::parse(push.out)["blobs_sent"], 2);

  // A second home pulls the tag and checks it out.
  auto pull =
      snap({"pull", "events@v1", "--remote", remote, "--home", (dir_ / "h2").string()}, false);
  ASSERT_EQ(pull.rc, 0) << pull.err;
  auto co = snap(
      {"checkout", "events@v1", (dir_ / "out").string(), "--home", (dir_ / "h2").string()}, false);
  ASSERT_EQ(co.rc, 0) << co.err;
  EXPECT_EQ(slurp(dir_ / "out/a"), std::string(1000, 'a'));

  // gc keeps the tagged version's blobs.
  auto gc = snap({"gc", "--grace", "0"});
  ASSERT_EQ(gc.rc, 0) << gc.err;
  EXPECT_EQ(gc.out.rfind("deleted 0 blobs, freed 0 bytes", 0), 0u) << gc.out;
}

TEST_F(SnapshotCliTest, StatusSaysWhatAnAddWouldChange) {
  write("data/a", "a\n");
  write("data/b", "b\n");
  auto add = snap({"add", (dir_ / "data").string(), "-d", "ev"});
  ASSERT_EQ(add.rc, 0) << add.err;
  std::string v = add.out.substr(0, 12);
  std::string data = (dir_ / "data").string();
  auto clean = snap({"status", data, "-d", "ev"});
  EXPECT_EQ(clean.rc, 0) << clean.err;
  EXPECT_EQ(clean.out, data + " against ev@latest (" + v + "): unchanged\n");
  write("data/c", "c\n");
  write("data/b", "bb\n");
  fs::remove(dir_ / "data/a");
  auto st = snap({"status", data, "-d", "ev"});
  EXPECT_EQ(st.rc, 0) << st.err;
  EXPECT_EQ(st.out, data + " against ev@latest (" + v +
                        ")\n"
                        "added    c  (2 bytes)\n"
                        "removed  a  (2 bytes)\n"
                        "changed  b  (2 -> 3 bytes)\n"
                        "1 added, 1 removed, 1 changed\n");
  auto j = snap({"status", data, "-d", "ev", "--json"});
  ASSERT_EQ(j.rc, 0) << j.err;
  json doc = json::parse(j.out);
  EXPECT_EQ(doc["unchanged"], false);
  EXPECT_EQ(doc["against"].get<std::string>().substr(0, 12), v);
  EXPECT_EQ(doc["changed"][0]["path"], "b");
  auto bad = snap({"status", data, "-d", "nope"});
  EXPECT_EQ(bad.rc, 1);
  EXPECT_EQ(bad.err, "drover snapshot: unknown dataset 'nope'\n");
}

// Polls `pred` every 10 ms until it holds or `deadline` passes.
template <class Pred>
bool wait_for(Pred pred, std::chrono::milliseconds deadline) {
  auto end = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

TEST_F(SnapshotCliTest, GcWaitsForAnAddInProgressAndThenRuns) {
  write("data/a", "a");
  ASSERT_EQ(snap({"add", (dir_ / "data").string(), "-d", "events"}).rc, 0);
  // Hold the store's lock shared, as an add in progress does.
  int fd = ::open((home_ / "blobs.lock").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_SH), 0);
  fs::path out = dir_ / "gc.out", err = dir_ / "gc.err";
  pid_t gc = start({"gc", "--grace", "0"}, out, err);
  ASSERT_TRUE(wait_for([&] { return slurp(err).find("waiting") != std::string::npos; },
                       std::chrono::seconds(30)))
      << slurp(err);
  EXPECT_EQ(slurp(err), "gc: waiting for a snapshot add or pull in progress to finish\n");
  int status = 0;
  EXPECT_EQ(::waitpid(gc, &status, WNOHANG), 0);  // still waiting: it deleted nothing yet
  EXPECT_EQ(slurp(out), "");
  ::close(fd);  // the add is done
  ASSERT_TRUE(
      wait_for([&] { return ::waitpid(gc, &status, WNOHANG) == gc; }, std::chrono::seconds(30)));
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(slurp(out).rfind("deleted 0 blobs", 0), 0u) << slurp(out);
}

}  // namespace
