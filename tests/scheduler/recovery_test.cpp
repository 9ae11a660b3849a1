// Recovery's crash counter (scheduler/recovery.cpp, Store::count_recovery): a run whose
// runner died on it is picked up at most 3 times without progress (no try of it ended
// since the last pickup), then failed with the reason instead of being picked up into the
// same crash. Each test plays daemon restarts as Engines started one after another on one
// FakeStore (the database that outlives them), each with its own FakeExecutor and
// io_context; each is dropped as it is (Engine::stop writes nothing to the store), which
// leaves the store as a killed daemon would. Also: recovery loads a run's stored DAG under
// the daemon's DAG file limits (EngineOptions::dag_limits).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>

#include "common/time.hpp"
#include "plugins/task_type.hpp"
#include "scheduler/daemon.hpp"
#include "scheduler/dag_loader.hpp"
#include "tests/scheduler/fake_executor.hpp"
#include "tests/scheduler/fake_store.hpp"
#include "tests/temp_dir.hpp"

namespace drover {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTwoTasks = R"(dag: crashy
tasks:
  a: {type: mock}
  b: {type: mock, needs: [a]}
)";

class RecoveryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { register_builtin_task_types(); }

  void TearDown() override { daemon_.reset(); }

  // One daemon's life: its own io_context and executor, the shared store.
  struct Daemon {
    boost::asio::io_context io;
    FakeExecutor exec;
    std::unique_ptr<Engine> engine;
    void poll() {
      io.restart();
      io.poll();
    }
  };

  // Drops the running daemon (if any) and starts the next one, which recovers what the store
  // holds; `clean`: the earlier one stopped cleanly (as `drover serve` on SIGTERM records).
  Daemon& restart(bool clean = false) {
    daemon_.reset();
    daemon_ = std::make_unique<Daemon>();
    EngineOptions o;
    o.previous_stop_clean = clean;
    o.home = dir_ / "home";
    o.project_dir = dir_.string();
    o.dag_limits = limits_;
    daemon_->engine =
        std::make_unique<Engine>(daemon_->io, clock_, store_, daemon_->exec, std::move(o));
    Status s = daemon_->engine->start();
    EXPECT_TRUE(s.ok()) << s.message();
    daemon_->poll();
    return *daemon_;
  }

  // The first daemon creates a run of `text` (kTwoTasks); its try a/1 is running when it dies.
  std::string create_run(const std::string& text = kTwoTasks) {
    Daemon& d = restart();
    LoadResult r = load_dag_text(text, (dir_ / "crashy.yaml").string(), limits_);
    for (const Diagnostic& diag : r.diagnostics) ADD_FAILURE() << diag.str();
    d.engine->add_dag(r.dag);
    auto id = d.engine->trigger("crashy", json::object(), "alice");
    EXPECT_TRUE(id.ok()) << (id.ok() ? "" : id.message());
    d.poll();
    EXPECT_EQ(d.exec.started_keys(), std::vector<std::string>{"crashy-1/a/1"});
    return id.ok() ? *id : "";
  }

  RunRecord run(const std::string& id) {
    auto r = store_.get_run(id);
    if (!r.ok() || !r->has_value()) {
      ADD_FAILURE() << "no run " << id;
      return {};
    }
    return **r;
  }

  testing::TempDir tmp_;
  fs::path dir_ = tmp_.path();
  ManualClock clock_{parse_iso("2026-11-25T09:00:00Z").value()};
  FakeStore store_;
  DagLimits limits_;  // of each daemon restart() starts
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(RecoveryTest, ARunPickedUpThreeTimesWithoutProgressFailsOnTheFourthWithTheReason) {
  std::string id = create_run();
  EXPECT_EQ(run(id).recoveries, 0);
  for (int pickup = 1; pickup <= 3; ++pickup) {
    SCOPED_TRACE("pickup " + std::to_string(pickup));
    Daemon& d = restart();
    ASSERT_EQ(d.exec.adopts().size(), 1u);  // picked up: its running try adopted
    EXPECT_EQ(d.exec.adopts()[0].key, "crashy-1/a/1");
    RunRecord r = run(id);
    EXPECT_EQ(r.recoveries, pickup);  // counted (committed) before the run was rebuilt
    EXPECT_EQ(r.state, RunState::Running);
    EXPECT_EQ(r.error, "");
  }

  Daemon& fourth = restart();
  EXPECT_TRUE(fourth.exec.adopts().empty());  // not picked up into the same crash
  EXPECT_TRUE(fourth.exec.starts().empty());
  RunRecord r = run(id);
  EXPECT_EQ(r.state, RunState::Failed);
  EXPECT_EQ(r.error, "recovered 3 times without progress; the runner may crash on it");
  EXPECT_EQ(r.ended_at, clock_.now());
  std::vector<TryRecord> tries = store_.tries_of(id).value();
  ASSERT_EQ(tries.size(), 1u);
  EXPECT_EQ(tries[0].state, TryState::Failed);
  EXPECT_EQ(tries[0].ended_at, clock_.now());
  EXPECT_EQ(tries[0].error, r.error);
  std::vector<TaskInstance> tasks = store_.tasks_of(id).value();  // not a temporary's member
  for (const TaskInstance& t : tasks) {
    SCOPED_TRACE(t.task);
    EXPECT_EQ(t.state, TaskState::Failed);
  }
  EXPECT_TRUE(store_.unfinished_runs()->empty());

  // A later daemon has nothing to recover.
  Daemon& fifth = restart();
  EXPECT_TRUE(fifth.exec.adopts().empty());
  EXPECT_EQ(run(id).error, r.error);
}

// A deploy restarts the daemon cleanly, again and again, while a long training try runs:
// those pickups are not crashes, and the run goes on.
TEST_F(RecoveryTest, PickupsAfterACleanStopAreNotCounted) {
  std::string id = create_run();
  for (int pickup = 1; pickup <= 5; ++pickup) {
    SCOPED_TRACE("pickup " + std::to_string(pickup));
    Daemon& d = restart(/*clean=*/true);
    ASSERT_EQ(d.exec.adopts().size(), 1u);
    RunRecord r = run(id);
    EXPECT_EQ(r.recoveries, 0);
    EXPECT_EQ(r.state, RunState::Running);
  }
  // Crashes still count from there.
  restart();
  EXPECT_EQ(run(id).recoveries, 1);
}

TEST_F(RecoveryTest, ATryThatEndsBetweenPickupsIsProgressAndStartsTheCountAgain) {
  std::string id = create_run();
  for (int pickup = 1; pickup <= 3; ++pickup) restart();
  ASSERT_EQ(run(id).recoveries, 3);

  // The third daemon lives long enough for the adopted try to end: progress.
  daemon_->exec.finish("crashy-1/a/1", 0, FakeExecutor::result_json(0));
  daemon_->poll();
  EXPECT_EQ(run(id).recoveries, 0);
  EXPECT_EQ(daemon_->exec.started_keys(), std::vector<std::string>{"crashy-1/b/1"});

  Daemon& d = restart();
  ASSERT_EQ(d.exec.adopts().size(), 1u);
  EXPECT_EQ(d.exec.adopts()[0].key, "crashy-1/b/1");
  RunRecord r = run(id);
  EXPECT_EQ(r.state, RunState::Running);
  EXPECT_EQ(r.recoveries, 1);
}

// A run made from a DAG file that only raised limits allow is picked up after a crash, not
// failed as unloadable: recovery reads its stored DAG text under the daemon's limits.
TEST_F(RecoveryTest, ARunOfADagOverTheDefaultSizeIsRecoveredUnderTheRaisedLimits) {
  limits_.max_file_bytes = 2 << 20;
  std::string big = std::string(kTwoTasks) + "#" + std::string(kMaxDagFileBytes, 'x') + "\n";
  std::string id = create_run(big);
  Daemon& d = restart();
  ASSERT_EQ(d.exec.adopts().size(), 1u);
  EXPECT_EQ(d.exec.adopts()[0].key, "crashy-1/a/1");
  EXPECT_EQ(run(id).state, RunState::Running);

  // Under the default limits the same stored DAG does not load, and the run is failed.
  limits_ = DagLimits{};
  Daemon& strict = restart();
  EXPECT_TRUE(strict.exec.adopts().empty());
  RunRecord failed = run(id);
  EXPECT_EQ(failed.state, RunState::Failed);
  // It says why, and nothing of it is left open.
  EXPECT_EQ(failed.error, "its DAG version cannot be loaded: crashy.yaml@" +
                              failed.dag_hash.substr(0, 12) + ":1:1: file is too large (" +
                              std::to_string(big.size()) + " bytes; the limit is 1048576)");
  auto tasks = store_.tasks_of(id).value();  // copies: the Results are temporaries
  auto tries = store_.tries_of(id).value();
  for (auto& t : tasks) EXPECT_TRUE(is_terminal(t.state)) << t.task;
  ASSERT_FALSE(tries.empty());
  for (auto& t : tries) {
    EXPECT_TRUE(t.ended_at.has_value()) << t.task;
    EXPECT_EQ(t.error, failed.error);
  }
}

}  // namespace
}  // namespace drover
