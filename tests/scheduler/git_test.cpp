// Git facts for the run record: git_info() asks git; git_info_cached() asks it at most once
// per max_age, and again at once when the commit, the index or the DAG file changes. A real
// git repository in a temp folder.
#include "scheduler/git.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include "common/process.hpp"

namespace drover {
namespace {

namespace fs = std::filesystem;

class GitTest : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "drover-git-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
    git({"init", "-q"});
    write("dag.yaml", "dag: a\n");
    commit("first");
  }
  void TearDown() override { fs::remove_all(dir); }
  void git(std::vector<std::string> args) {
    std::vector<std::string> argv = {
        "git",         "-C", dir.string(),          "-c", "user.email=t@example.com", "-c",
        "user.name=t", "-c", "commit.gpgsign=false"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = capture_child(argv);
    ASSERT_EQ(r.code, 0) << r.out;
  }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
  }
  void commit(const std::string& msg) {
    git({"add", "-A"});
    git({"commit", "-q", "-m", msg});
  }
  std::string head() { return capture_child({"git", "-C", dir.string(), "rev-parse", "HEAD"}).out; }
};

TEST_F(GitTest, InfoNamesTheCommitAndACleanTree) {
  GitInfo g = git_info(dir);
  EXPECT_EQ(g.commit, head());
  EXPECT_EQ(fs::path(g.toplevel), fs::canonical(dir));
  EXPECT_FALSE(g.dirty);
}

TEST_F(GitTest, CachedInfoSeesANewCommitAndADagEditAtOnce) {
  const auto hour = std::chrono::hours(1);  // the age bound alone would never refresh
  GitInfo a = git_info_cached(dir, dir / "dag.yaml", hour);
  EXPECT_EQ(a.commit, head());
  EXPECT_FALSE(a.dirty);
  write("dag.yaml", "dag: a\ndescription: edited\n");
  GitInfo b = git_info_cached(dir, dir / "dag.yaml", hour);
  EXPECT_TRUE(b.dirty);
  commit("second");
  GitInfo c = git_info_cached(dir, dir / "dag.yaml", hour);
  EXPECT_EQ(c.commit, head());
  EXPECT_NE(c.commit, a.commit);
  EXPECT_FALSE(c.dirty);
}

TEST_F(GitTest, CachedInfoReadsPackedRefs) {
  git({"pack-refs", "--all"});
  EXPECT_EQ(git_info_cached(dir, dir / "dag.yaml").commit, head());
  write("other.txt", "x\n");
  commit("after pack");  // loose ref again
  EXPECT_EQ(git_info_cached(dir, dir / "dag.yaml").commit, head());
}

TEST_F(GitTest, OutsideARepositoryThereAreNoFacts) {
  fs::path plain = dir.parent_path() / (dir.filename().string() + "-plain");
  fs::create_directories(plain);
  GitInfo g = git_info_cached(plain, plain / "dag.yaml");
  EXPECT_TRUE(g.toplevel.empty());
  EXPECT_TRUE(g.commit.empty());
  fs::remove_all(plain);
}

}  // namespace
}  // namespace drover
