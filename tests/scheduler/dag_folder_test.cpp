// The DAG folder of `drover serve` (scheduler/dag_folder.hpp): its inotify watch tells the
// Engine of changes in folders made or moved in after the watch began, and after events were
// lost. A real folder in a temp dir and a real io_context; waits have deadlines.
#include "scheduler/dag_folder.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio.hpp>
#include <chrono>
#include <fstream>

#include "tests/temp_dir.hpp"

namespace drover {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

class DagFolderTest : public ::testing::Test {
 protected:
  testing::TempDir tmp;
  boost::asio::io_context io;
  std::unique_ptr<DagSource> folder;
  int changes = 0;

  fs::path dags() const { return tmp / "dags"; }
  void SetUp() override {
    fs::create_directories(dags());
    folder = make_dag_folder(io, dags(), DagLimits{});
  }
  void watch() {
    folder->watch([this] { ++changes; });
  }
  // Runs the io_context until the next settled change, for at most 5 s.
  bool next_change() {
    int before = changes;
    auto end = std::chrono::steady_clock::now() + 5s;
    while (changes == before && std::chrono::steady_clock::now() < end) io.run_one_for(50ms);
    return changes > before;
  }
  // Written elsewhere, then renamed in, as editors and git do.
  void write(const fs::path& rel, const std::string& text) {
    fs::path part = tmp / "part.yaml";
    std::ofstream(part) << text;
    fs::rename(part, dags() / rel);
  }
  // Whether a scan finds file `rel` (loading it needs task types this test does not register).
  bool scanned(const std::string& rel) {
    return folder->scan().files.count((dags() / rel).string());
  }
};

TEST_F(DagFolderTest, AFileInANestedFolderMadeAfterTheWatchBeganIsAChange) {
  watch();
  fs::create_directories(dags() / "a" / "b" / "c");
  ASSERT_TRUE(next_change());
  write("a/b/c/deep.yaml", "dag: deep\ntasks:\n  a: {run: [true]}\n");
  ASSERT_TRUE(next_change());
  EXPECT_TRUE(scanned("a/b/c/deep.yaml"));
}

TEST_F(DagFolderTest, AFileInAFolderMovedInIsAChange) {
  watch();
  fs::create_directories(tmp / "incoming" / "x");
  fs::rename(tmp / "incoming", dags() / "incoming");
  ASSERT_TRUE(next_change());
  write("incoming/x/late.yaml", "dag: late\ntasks:\n  a: {run: [true]}\n");
  ASSERT_TRUE(next_change());
  EXPECT_TRUE(scanned("incoming/x/late.yaml"));
}

TEST_F(DagFolderTest, AfterAnOverflowFoldersWhoseEventsWereLostAreWatched) {
  int max_events = 0;
  std::ifstream("/proc/sys/fs/inotify/max_queued_events") >> max_events;
  if (max_events <= 0 || max_events > 1000000) GTEST_SKIP() << "max_queued_events " << max_events;
  std::ofstream(dags() / "one.txt");
  std::ofstream(dags() / "two.txt");
  watch();
  // The io_context does not run: the queue fills (two names in turn, so none merge) and
  // the creation of late/ is lost.
  for (int i = 0; i <= max_events; ++i)
    ::utimensat(AT_FDCWD, (dags() / (i % 2 ? "one.txt" : "two.txt")).c_str(), nullptr, 0);
  fs::create_directories(dags() / "late" / "sub");
  ASSERT_TRUE(next_change());
  write("late/sub/x.yaml", "dag: x\ntasks:\n  a: {run: [true]}\n");
  ASSERT_TRUE(next_change());
  EXPECT_TRUE(scanned("late/sub/x.yaml"));
}

}  // namespace
}  // namespace drover
