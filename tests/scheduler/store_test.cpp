// The store contract (scheduler/store.hpp) that every backend must pass — transactions,
// every record's round trip, listing and paging, two connections, the run record JSON —
// as TEST_P suites instantiated per backend URL scheme (SQLite, and "memory": the tests'
// FakeStore; PostgreSQL adds one line), plus SQLite's own: migrations, its error texts, crash
// safety with real child processes killed mid-transaction.
#include "scheduler/store.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <thread>

#include "common/time.hpp"
#include "scheduler/store_json.hpp"
#include "tests/scheduler/fake_store.hpp"

namespace drover {
namespace {

namespace fs = std::filesystem;

TimePoint at(const char* iso) { return parse_iso(iso).value(); }

class StoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "drover-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "home" / "drover.db";
    store_ = open();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // A new connection to the store at path_, by backend: "sqlite" opens the file by URL,
  // "memory" (tests/scheduler/fake_store.hpp) connects to one in-memory database per path.
  std::unique_ptr<Store> open() {
    if (GetParam() == "memory") {
      auto& db = memory_[path_.string()];
      if (!db) db = FakeStore().database();
      return std::make_unique<FakeStore>(db);
    }
    auto s = open_store(GetParam() + ":" + path_.string());
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.message());
    return s.ok() ? std::move(s).value() : nullptr;
  }

  static RunRecord make_run(const std::string& dag, int64_t seq,
                            RunState state = RunState::Queued) {
    RunRecord r;
    r.id = dag + "-" + std::to_string(seq);
    r.dag = dag;
    r.seq = seq;
    r.dag_hash = "ab12";
    r.state = state;
    r.trigger_kind = "manual";
    r.trigger_user = "alice";
    r.created_at = at("2026-11-25T09:00:00Z") + Micros(seq);
    return r;
  }

  static std::vector<TaskInstance> tasks(std::initializer_list<const char*> names) {
    std::vector<TaskInstance> out;
    for (const char* n : names) {
      TaskInstance t;
      t.task = n;
      out.push_back(t);
    }
    return out;
  }

  static TryRecord make_try(const std::string& run_id, const std::string& task, int n) {
    TryRecord t;
    t.run_id = run_id;
    t.task = task;
    t.try_number = n;
    t.queue = "default";
    t.host = "box1";
    t.pid = 200 + n;
    t.pid_start = 123456789012LL;
    t.started_at = at("2026-11-25T09:00:01.250000Z");
    t.try_dir = "/home/runs/" + run_id + "/" + task + "/" + std::to_string(n);
    t.log_path = t.try_dir + "/log";
    t.command = json::array({"/bin/sh", "-c", "echo hi"});
    t.facts = {{"hostname", "box1"}};
    return t;
  }

  // Run retrain-1 whose task train registered clicks/1 .. clicks/N, one try each, version
  // N created at N µs.
  void register_versions(int count) {
    ASSERT_TRUE(store_->insert_run(make_run("retrain", 1), tasks({"train"})).ok());
    for (int n = 1; n <= count; ++n) {
      ASSERT_TRUE(store_->insert_try(make_try("retrain-1", "train", n)).ok());
      ModelVersion v;
      v.name = "clicks";
      v.run_id = "retrain-1";
      v.task = "train";
      v.try_number = n;
      v.created_at = TimePoint(Micros(n));
      ASSERT_EQ(*store_->add_model_version(v), n);
    }
  }

  // Reads one integer with the raw C API, bypassing the store.
  int64_t raw_int(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
  }
  std::string raw_text(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sql;
    std::string v;
    if (sqlite3_step(st) == SQLITE_ROW) {
      v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
  }

  static RunFilter filter(std::string dag, std::optional<RunState> state = std::nullopt,
                          int limit = 100, std::string before = "") {
    RunFilter f;
    f.dag = std::move(dag);
    f.state = state;
    f.limit = limit;
    f.before_run = std::move(before);
    return f;
  }

  std::vector<std::string> ids(const RunFilter& f) {
    auto runs = store_->list_runs(f);
    EXPECT_TRUE(runs.ok()) << (runs.ok() ? "" : runs.message());
    std::vector<std::string> out;
    if (runs.ok()) {
      for (const RunRecord& r : *runs) out.push_back(r.id);
    }
    return out;
  }

  fs::path dir_, path_;
  std::map<std::string, std::shared_ptr<FakeStore::Database>> memory_;  // "memory": by path
  std::unique_ptr<Store> store_;
};

// SQLite's own behaviour: its files, its migrations, its messages.
class SqliteStoreTest : public StoreTest {};

TEST(OpenStoreTest, TheUrlChoosesTheBackend) {
  std::string tmpl = (fs::temp_directory_path() / "drover-store-XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  fs::path dir = tmpl;
  auto a = open_store("sqlite:" + (dir / "a.db").string());
  ASSERT_TRUE(a.ok()) << a.message();
  EXPECT_TRUE(fs::exists(dir / "a.db"));
  auto b = open_store((dir / "b.db").string());  // a bare path is SQLite too
  ASSERT_TRUE(b.ok()) << b.message();
  EXPECT_TRUE(fs::exists(dir / "b.db"));
  auto pg = open_store("postgres://drover@localhost/drover");
  ASSERT_FALSE(pg.ok());
  EXPECT_EQ(pg.message(),
            "store postgres://drover@localhost/drover: PostgreSQL is not supported by this build");
  EXPECT_EQ(pg.error().code, Errc::Invalid);
  auto empty = open_store("sqlite:");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.message(), "store: empty sqlite path");
  fs::remove_all(dir);
}

// --- Names ---------------------------------------------------------------------------------

TEST(StoreNamesTest, EveryStateRoundTripsThroughItsName) {
  for (auto s : {RunState::Queued, RunState::Running, RunState::Success, RunState::Failed,
                 RunState::Cancelled}) {
    EXPECT_EQ(run_state_from(to_string(s)), s);
  }
  for (auto s : {TaskState::Pending, TaskState::Running, TaskState::Success, TaskState::Failed,
                 TaskState::UpstreamFailed, TaskState::Cancelled, TaskState::TimedOut,
                 TaskState::UpForRetry, TaskState::Skipped}) {
    EXPECT_EQ(task_state_from(to_string(s)), s);
  }
  for (auto s : {TryState::Running, TryState::Success, TryState::Failed, TryState::TimedOut,
                 TryState::Cancelled, TryState::Lost}) {
    EXPECT_EQ(try_state_from(to_string(s)), s);
  }
  EXPECT_STREQ(to_string(TaskState::UpstreamFailed), "upstream_failed");
  EXPECT_STREQ(to_string(TaskState::UpForRetry), "up_for_retry");
  EXPECT_EQ(run_state_from("Success"), std::nullopt);
  EXPECT_EQ(task_state_from(""), std::nullopt);
}

TEST(StoreNamesTest, TerminalStatesAreTheFinalOnes) {
  EXPECT_FALSE(is_terminal(RunState::Queued));
  EXPECT_FALSE(is_terminal(RunState::Running));
  EXPECT_TRUE(is_terminal(RunState::Success));
  EXPECT_TRUE(is_terminal(RunState::Failed));
  EXPECT_TRUE(is_terminal(RunState::Cancelled));
  EXPECT_FALSE(is_terminal(TaskState::Pending));
  EXPECT_FALSE(is_terminal(TaskState::UpForRetry));
  EXPECT_FALSE(is_terminal(TaskState::Running));
  EXPECT_TRUE(is_terminal(TaskState::UpstreamFailed));
  EXPECT_TRUE(is_terminal(TaskState::TimedOut));
  EXPECT_TRUE(is_terminal(TaskState::Skipped));
}

// --- Migrations ------------------------------------------------------------------------------

TEST_P(SqliteStoreTest, FreshDatabaseIsMigratedToTheLatestVersion) {
  ASSERT_TRUE(store_);
  EXPECT_EQ(store_->schema_version(), 6);
  EXPECT_EQ(raw_int("SELECT COUNT(*) FROM schema_migrations"), 6);
  EXPECT_EQ(raw_text("PRAGMA journal_mode"), "wal");
}

TEST_P(SqliteStoreTest, ReopenKeepsDataAndDoesNotRerunMigrations) {
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a"})).ok());
  std::string applied = raw_text("SELECT applied_at FROM schema_migrations WHERE version = 1");
  ASSERT_FALSE(applied.empty());
  store_.reset();

  store_ = open();
  ASSERT_TRUE(store_);
  EXPECT_EQ(store_->schema_version(), 6);
  EXPECT_EQ(raw_int("SELECT COUNT(*) FROM schema_migrations"), 6);
  EXPECT_EQ(raw_text("SELECT applied_at FROM schema_migrations WHERE version = 1"), applied);
  auto run = store_->get_run("etl-1");
  ASSERT_TRUE(run.ok());
  ASSERT_TRUE(run->has_value());
  EXPECT_EQ((*run)->dag, "etl");
}

TEST_P(SqliteStoreTest, DatabaseFromANewerDroverIsRefused) {
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES(99, 'later')", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto s = open_sqlite_store(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "store: " + path_.string() +
                             ": store: the database has schema version 99, newer than this "
                             "drover understands (6)");
}

TEST_P(SqliteStoreTest, OpeningAFolderFailsWithSqlitesMessage) {
  auto s = open_sqlite_store(dir_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message().rfind("store: cannot open " + dir_.string() + ": ", 0), 0u) << s.message();
}

// --- Transactions ----------------------------------------------------------------------------

TEST_P(StoreTest, RollbackLosesTheTransactionsWrites) {
  ASSERT_TRUE(store_->begin().ok());
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a", "b"})).ok());
  ASSERT_TRUE(store_->set_paused("etl", true).ok());
  ASSERT_TRUE(store_->next_run_seq("etl").ok());
  store_->rollback();

  EXPECT_FALSE(store_->get_run("etl-1")->has_value());
  EXPECT_TRUE(store_->tasks_of("etl-1")->empty());
  EXPECT_FALSE(*store_->paused("etl"));
  EXPECT_EQ(*store_->next_run_seq("etl"), 1);
}

TEST_P(StoreTest, TransactionObjectRollsBackWhenNotCommitted) {
  {
    Transaction tx(*store_);
    ASSERT_TRUE(tx.status().ok());
    ASSERT_TRUE(store_->set_paused("etl", true).ok());
  }
  EXPECT_FALSE(*store_->paused("etl"));
  {
    Transaction tx(*store_);
    ASSERT_TRUE(store_->set_paused("etl", true).ok());
    ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a"})).ok());
    ASSERT_TRUE(tx.commit().ok());
  }
  EXPECT_TRUE(*store_->paused("etl"));
  EXPECT_TRUE(store_->get_run("etl-1")->has_value());
}

TEST_P(StoreTest, NestedBeginAndStrayCommitAreErrors) {
  ASSERT_TRUE(store_->begin().ok());
  Status nested = store_->begin();
  EXPECT_EQ(nested.message(), "store: begin() inside an open transaction");
  EXPECT_EQ(nested.error().code, Errc::Conflict);
  ASSERT_TRUE(store_->commit().ok());
  Status stray = store_->commit();
  EXPECT_EQ(stray.message(), "store: commit() without begin()");
  store_->rollback();  // harmless without a transaction
}

TEST_P(StoreTest, FailedCallInsideATransactionKeepsTheEarlierWrites) {
  ASSERT_TRUE(store_->begin().ok());
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a"})).ok());
  // A duplicate task name fails half-way: neither the run nor its first task stays.
  Status dup = store_->insert_run(make_run("etl", 2), tasks({"x", "x"}));
  EXPECT_FALSE(dup.ok());
  ASSERT_TRUE(store_->commit().ok());
  EXPECT_TRUE(store_->get_run("etl-1")->has_value());
  EXPECT_FALSE(store_->get_run("etl-2")->has_value());
  EXPECT_TRUE(store_->tasks_of("etl-2")->empty());
}

TEST_P(StoreTest, FailedInsertOutsideATransactionLeavesNothing) {
  Status dup = store_->insert_run(make_run("etl", 2), tasks({"x", "x"}));
  if (GetParam() == "sqlite") {
    EXPECT_EQ(dup.message(),
              "sqlite: insert_run: UNIQUE constraint failed: task_instances.run_id, "
              "task_instances.task");
  }
  EXPECT_EQ(dup.error().code, Errc::Conflict);
  EXPECT_FALSE(store_->get_run("etl-2")->has_value());
}

// --- Runs ------------------------------------------------------------------------------------

TEST_P(StoreTest, RunRoundTripsEveryField) {
  RunRecord r = make_run("weekly_retrain", 12, RunState::Running);
  r.params = {{"lr", 0.01}, {"name", "x"}, {"tags", {"a", "b"}}};
  r.logical_date = at("2026-11-23T00:00:00Z");
  r.interval_start = at("2026-11-16T00:00:00Z");
  r.interval_end = at("2026-11-23T00:00:00.000001Z");
  r.git_commit = "0123abcd";
  r.git_dirty = true;
  r.started_at = at("2026-11-25T09:00:00.5Z");
  ASSERT_TRUE(store_->insert_run(r, tasks({"make_data", "train"})).ok());

  auto got = store_->get_run("weekly_retrain-12");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  const RunRecord& g = **got;
  EXPECT_EQ(g.id, r.id);
  EXPECT_EQ(g.dag, r.dag);
  EXPECT_EQ(g.seq, 12);
  EXPECT_EQ(g.dag_hash, "ab12");
  EXPECT_EQ(g.state, RunState::Running);
  EXPECT_EQ(g.params, r.params);
  EXPECT_EQ(g.trigger_kind, "manual");
  EXPECT_EQ(g.trigger_user, "alice");
  EXPECT_EQ(g.logical_date, r.logical_date);
  EXPECT_EQ(g.interval_start, r.interval_start);
  EXPECT_EQ(g.interval_end, r.interval_end);
  EXPECT_EQ(g.git_commit, "0123abcd");
  EXPECT_TRUE(g.git_dirty);
  EXPECT_EQ(g.created_at, r.created_at);
  EXPECT_EQ(g.started_at, r.started_at);
  EXPECT_EQ(g.ended_at, std::nullopt);

  r.state = RunState::Success;
  r.ended_at = at("2026-11-25T09:10:00Z");
  ASSERT_TRUE(store_->update_run(r).ok());
  got = store_->get_run(r.id);
  EXPECT_EQ((*got)->state, RunState::Success);
  EXPECT_EQ((*got)->ended_at, r.ended_at);
}

TEST_P(StoreTest, UnknownRunIsAbsentOrNotFound) {
  auto got = store_->get_run("nope-1");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  Status s = store_->update_run(make_run("nope", 1));
  EXPECT_EQ(s.message(), "no such run: nope-1");
  EXPECT_EQ(s.error().code, Errc::NotFound);
  RunFilter page;
  page.before_run = "nope-1";  // a paging cursor naming no run
  auto listed = store_->list_runs(page);
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.message(), "no run 'nope-1'");
  EXPECT_EQ(listed.error().code, Errc::NotFound);
}

// A listing is of summaries: a run's params (900 KB of them here) are read by get_run only.
TEST_P(StoreTest, AListingCarriesSummariesWithoutParams) {
  RunRecord r = make_run("etl", 1);
  r.params = {{"blob", std::string(900 << 10, 'x')}};
  ASSERT_TRUE(store_->insert_run(r, {}).ok());
  auto listed = store_->list_runs(filter("etl"));
  ASSERT_TRUE(listed.ok()) << listed.message();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, r.id);
  EXPECT_EQ((*listed)[0].params, json::object());
  EXPECT_EQ((*listed)[0].dag_hash, r.dag_hash);
  auto got = store_->get_run(r.id);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->params, r.params);
}

// The API's listings read on a connection of their own: it sees a commit and nothing before
// it, and cannot write. A backend of one connection says so with a null reader.
TEST_P(StoreTest, AReaderSeesWhatIsCommittedAndNothingElseAndCannotWrite) {
  auto reader = store_->open_reader();
  ASSERT_TRUE(reader.ok()) << reader.message();
  if (GetParam() == "memory") {
    EXPECT_EQ(*reader, nullptr);
    return;
  }
  ASSERT_NE(*reader, nullptr);
  Store& other = **reader;
  ASSERT_TRUE(store_->begin().ok());
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), {}).ok());
  auto before = other.list_runs(filter("etl"));
  ASSERT_TRUE(before.ok()) << before.message();
  EXPECT_TRUE(before->empty());
  ASSERT_TRUE(store_->commit().ok());
  auto after = other.list_runs(filter("etl"));
  ASSERT_TRUE(after.ok()) << after.message();
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].id, "etl-1");
  Status write = other.insert_run(make_run("etl", 2), {});
  EXPECT_FALSE(write.ok());
  EXPECT_NE(write.message().find("readonly"), std::string::npos) << write.message();
  auto listed = store_->list_runs(filter("etl"));
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
}

TEST_P(StoreTest, DuplicateRunIdIsAConflict) {
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), {}).ok());
  Status s = store_->insert_run(make_run("etl", 1), {});
  if (GetParam() == "sqlite") {
    EXPECT_EQ(s.message(), "sqlite: insert_run: UNIQUE constraint failed: runs.id");
  }
  EXPECT_EQ(s.error().code, Errc::Conflict);
}

TEST_P(StoreTest, RunSequenceCountsPerDag) {
  EXPECT_EQ(*store_->next_run_seq("a"), 1);
  EXPECT_EQ(*store_->next_run_seq("a"), 2);
  EXPECT_EQ(*store_->next_run_seq("b"), 1);
  EXPECT_EQ(*store_->next_run_seq("a"), 3);
}

TEST_P(StoreTest, ListRunsIsNewestFirstWithFiltersAndPaging) {
  ASSERT_TRUE(store_->insert_run(make_run("a", 1, RunState::Success), {}).ok());
  ASSERT_TRUE(store_->insert_run(make_run("b", 1, RunState::Failed), {}).ok());
  ASSERT_TRUE(store_->insert_run(make_run("a", 2, RunState::Failed), {}).ok());
  ASSERT_TRUE(store_->insert_run(make_run("a", 3, RunState::Running), {}).ok());
  ASSERT_TRUE(store_->insert_run(make_run("b", 2, RunState::Queued), {}).ok());

  using V = std::vector<std::string>;
  EXPECT_EQ(ids(filter("")), (V{"b-2", "a-3", "a-2", "b-1", "a-1"}));
  EXPECT_EQ(ids(filter("a")), (V{"a-3", "a-2", "a-1"}));
  EXPECT_EQ(ids(filter("", RunState::Failed)), (V{"a-2", "b-1"}));
  EXPECT_EQ(ids(filter("a", RunState::Failed)), (V{"a-2"}));
  EXPECT_EQ(ids(filter("", std::nullopt, 2)), (V{"b-2", "a-3"}));
  EXPECT_EQ(ids(filter("", std::nullopt, 0)), V{});

  // Paging: the next page starts below the last row of this one.
  std::string last = "a-3";  // the cursor is the last run's id
  EXPECT_EQ(ids(filter("", std::nullopt, 2, last)), (V{"a-2", "b-1"}));
  EXPECT_EQ(ids(filter("a", std::nullopt, 100, last)), (V{"a-2", "a-1"}));
  EXPECT_EQ(ids(filter("zzz")), V{});
}

TEST_P(StoreTest, UnfinishedRunsAreQueuedOrRunningOldestFirst) {
  ASSERT_TRUE(store_->insert_run(make_run("a", 1, RunState::Running), {}).ok());
  ASSERT_TRUE(store_->insert_run(make_run("a", 2, RunState::Success), {}).ok());
  ASSERT_TRUE(store_->insert_run(make_run("a", 3, RunState::Queued), {}).ok());
  ASSERT_TRUE(store_->insert_run(make_run("a", 4, RunState::Cancelled), {}).ok());
  auto runs = store_->unfinished_runs();
  ASSERT_TRUE(runs.ok());
  ASSERT_EQ(runs->size(), 2u);
  EXPECT_EQ((*runs)[0].id, "a-1");
  EXPECT_EQ((*runs)[1].id, "a-3");
}

// --- Task instances and tries ---------------------------------------------------------------

TEST_P(StoreTest, TasksKeepTheRunsOrderAndTakeUpdates) {
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"zeta", "alpha", "mid"})).ok());
  TaskInstance t{"etl-1", "alpha", TaskState::UpForRetry, 2, at("2026-11-25T09:05:00Z")};
  ASSERT_TRUE(store_->update_task(t).ok());

  auto got = store_->tasks_of("etl-1");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].task, "zeta");
  EXPECT_EQ((*got)[0].state, TaskState::Pending);
  EXPECT_EQ((*got)[0].try_number, 0);
  EXPECT_EQ((*got)[1].task, "alpha");
  EXPECT_EQ((*got)[1].state, TaskState::UpForRetry);
  EXPECT_EQ((*got)[1].try_number, 2);
  EXPECT_EQ((*got)[1].next_try_at, at("2026-11-25T09:05:00Z"));
  EXPECT_EQ((*got)[2].task, "mid");
}

TEST_P(SqliteStoreTest, TaskOfAnUnknownRunViolatesTheForeignKey) {
  Status s = store_->update_task({"nope-1", "a", TaskState::Pending, 0, std::nullopt});
  EXPECT_EQ(s.message(), "sqlite: update_task: FOREIGN KEY constraint failed");
}

TEST_P(StoreTest, TriesRoundTripInTaskThenTryOrder) {
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"b", "a"})).ok());
  TryRecord a1 = make_try("etl-1", "a", 1);
  TryRecord a2 = make_try("etl-1", "a", 2);
  TryRecord b1 = make_try("etl-1", "b", 1);
  ASSERT_TRUE(store_->insert_try(a2).ok());
  ASSERT_TRUE(store_->insert_try(a1).ok());
  ASSERT_TRUE(store_->insert_try(b1).ok());

  a1.state = TryState::Failed;
  a1.ended_at = at("2026-11-25T09:00:03Z");
  a1.exit_code = 3;
  a1.error = "exit code 3";
  ASSERT_TRUE(store_->update_try(a1).ok());
  b1.state = TryState::Cancelled;
  b1.signal = 9;
  b1.ended_at = at("2026-11-25T09:00:04Z");
  ASSERT_TRUE(store_->update_try(b1).ok());

  auto got = store_->tries_of("etl-1");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 3u);
  // "b" was created first by the run, so its tries come first.
  EXPECT_EQ((*got)[0].task, "b");
  EXPECT_EQ((*got)[1].task, "a");
  EXPECT_EQ((*got)[1].try_number, 1);
  EXPECT_EQ((*got)[2].try_number, 2);

  const TryRecord& g = (*got)[1];
  EXPECT_EQ(g.state, TryState::Failed);
  EXPECT_EQ(g.queue, "default");
  EXPECT_EQ(g.host, "box1");
  EXPECT_EQ(g.pid, 201);
  EXPECT_EQ(g.pid_start, 123456789012LL);
  EXPECT_EQ(g.started_at, a1.started_at);
  EXPECT_EQ(g.ended_at, a1.ended_at);
  EXPECT_EQ(g.exit_code, 3);
  EXPECT_EQ(g.signal, std::nullopt);
  EXPECT_EQ(g.try_dir, a1.try_dir);
  EXPECT_EQ(g.log_path, a1.log_path);
  EXPECT_EQ(g.command, a1.command);
  EXPECT_EQ(g.error, "exit code 3");
  EXPECT_EQ(g.facts, a1.facts);
  EXPECT_EQ((*got)[0].signal, 9);
  EXPECT_EQ((*got)[0].exit_code, std::nullopt);

  auto running = store_->running_tries();
  ASSERT_TRUE(running.ok());
  ASSERT_EQ(running->size(), 1u);
  EXPECT_EQ((*running)[0].task, "a");
  EXPECT_EQ((*running)[0].try_number, 2);
}

TEST_P(StoreTest, UpdatingAnUnknownTryIsNotFound) {
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a"})).ok());
  Status s = store_->update_try(make_try("etl-1", "a", 7));
  EXPECT_EQ(s.message(), "no such try: etl-1 a try 7");
  EXPECT_EQ(s.error().code, Errc::NotFound);
}

TEST_P(StoreTest, OnlyAnArmedTryIsDeletedAndItsFilesGoWithIt) {
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a", "b"})).ok());
  TryRecord armed = make_try("etl-1", "b", 1);
  armed.state = TryState::Armed;
  armed.ended_at.reset();
  ASSERT_TRUE(store_->insert_try(armed).ok());
  ASSERT_TRUE(store_->insert_try(make_try("etl-1", "a", 1)).ok());
  std::vector<FileRecord> in = {{"data/in.csv", "aa", 10, 0644, "a"}};
  ASSERT_TRUE(store_->add_files("etl-1", "b", 1, "input", in).ok());
  auto tries = store_->tries_of("etl-1");
  ASSERT_TRUE(tries.ok());
  ASSERT_EQ(tries->size(), 2u);
  EXPECT_EQ((*tries)[1].state, TryState::Armed);

  Status kept = store_->delete_armed_try("etl-1", "a", 1);
  EXPECT_EQ(kept.error().code, Errc::Invalid);
  EXPECT_EQ(kept.message(), "try etl-1 a try 1 is " +
                                std::string(to_string(make_try("etl-1", "a", 1).state)) +
                                ", not armed");
  EXPECT_EQ(store_->delete_armed_try("etl-1", "b", 2).error().code, Errc::NotFound);
  ASSERT_TRUE(store_->delete_armed_try("etl-1", "b", 1).ok());
  tries = store_->tries_of("etl-1");
  ASSERT_EQ(tries->size(), 1u);
  EXPECT_EQ((*tries)[0].task, "a");
  EXPECT_TRUE(store_->files_of("etl-1", "b", 1, "input")->empty());
  // The number is free again: the task's next start may use it.
  ASSERT_TRUE(store_->insert_try(make_try("etl-1", "b", 1)).ok());
}

TEST_P(StoreTest, FilesValuesAndMetricsRoundTrip) {
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a"})).ok());
  ASSERT_TRUE(store_->insert_try(make_try("etl-1", "a", 1)).ok());

  std::vector<FileRecord> in = {{"data/in.csv", "aa", 10, 0644, "make_data"}};
  std::vector<FileRecord> out = {{"model.pkl", "bb", 5'000'000'000ULL, 0600, ""},
                                 {"eval.json", "cc", 0, 0644, ""}};
  ASSERT_TRUE(store_->add_files("etl-1", "a", 1, "input", in).ok());
  ASSERT_TRUE(store_->add_files("etl-1", "a", 1, "output", out).ok());
  Status bad = store_->add_files("etl-1", "a", 1, "other", out);
  EXPECT_EQ(bad.message(), "store: file kind must be \"input\" or \"output\", not \"other\"");

  auto gin = store_->files_of("etl-1", "a", 1, "input");
  ASSERT_TRUE(gin.ok());
  ASSERT_EQ(gin->size(), 1u);
  EXPECT_EQ((*gin)[0].path, "data/in.csv");
  EXPECT_EQ((*gin)[0].from_task, "make_data");
  auto gout = store_->files_of("etl-1", "a", 1, "output");
  ASSERT_EQ(gout->size(), 2u);
  EXPECT_EQ((*gout)[0].path, "model.pkl");
  EXPECT_EQ((*gout)[0].size, 5'000'000'000ULL);
  EXPECT_EQ((*gout)[0].mode, 0600);
  EXPECT_EQ((*gout)[0].sha256, "bb");
  EXPECT_EQ((*gout)[1].path, "eval.json");

  ASSERT_TRUE(store_->set_value("etl-1", "a", 1, "rows", 42).ok());
  ASSERT_TRUE(store_->set_value("etl-1", "a", 1, "path", "s3://x").ok());
  ASSERT_TRUE(store_->set_value("etl-1", "a", 1, "rows", 43).ok());
  EXPECT_EQ(*store_->values_of("etl-1", "a", 1), (json{{"path", "s3://x"}, {"rows", 43}}));
  EXPECT_EQ(*store_->values_of("etl-1", "a", 2), json::object());

  ASSERT_TRUE(store_->add_metric("etl-1", "a", 1, "loss", 0.5, 1).ok());
  ASSERT_TRUE(store_->add_metric("etl-1", "a", 1, "loss", 0.25, 2).ok());
  ASSERT_TRUE(store_->add_metric("etl-1", "a", 1, "auc", 0.9, 0).ok());
  ASSERT_TRUE(
      store_->add_metric("etl-1", "a", 1, "bad", std::numeric_limits<double>::quiet_NaN(), 3).ok());
  EXPECT_EQ(*store_->metrics_of("etl-1", "a", 1),
            json::parse(R"([{"name":"loss","value":0.5,"step":1},
                            {"name":"loss","value":0.25,"step":2},
                            {"name":"auc","value":0.9,"step":0},
                            {"name":"bad","value":null,"step":3}])"));
}

TEST_P(StoreTest, WritesNamingARunTaskOrTryThatIsNotThereAreConflicts) {
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a"})).ok());
  EXPECT_EQ(store_->update_task({"nope-1", "a", TaskState::Running, 1, {}}).error().code,
            Errc::Conflict);
  EXPECT_EQ(store_->insert_try(make_try("etl-1", "zz", 1)).error().code, Errc::Conflict);
  ASSERT_TRUE(store_->insert_try(make_try("etl-1", "a", 1)).ok());
  EXPECT_EQ(store_->insert_try(make_try("etl-1", "a", 1)).error().code, Errc::Conflict);
  FileRecord f{"x", "aa", 1, 0644, ""};
  EXPECT_EQ(store_->add_files("etl-1", "a", 2, "output", {f}).error().code, Errc::Conflict);
  EXPECT_EQ(store_->set_value("etl-1", "a", 2, "k", 1).error().code, Errc::Conflict);
  EXPECT_EQ(store_->add_metric("etl-1", "a", 2, "m", 1.0, 0).error().code, Errc::Conflict);
  EXPECT_TRUE(store_->files_of("etl-1", "a", 2, "output")->empty());
  EXPECT_EQ(*store_->values_of("etl-1", "a", 2), json::object());
  EXPECT_EQ(*store_->metrics_of("etl-1", "a", 2), json::array());

  // update_task adds an instance the run lacks, after the run's own.
  ASSERT_TRUE(store_->update_task({"etl-1", "late", TaskState::Pending, 0, {}}).ok());
  auto got = store_->tasks_of("etl-1");
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[1].task, "late");
}

TEST_P(StoreTest, ReferencedHashesAreTryFilesAndVersionValuesThatAreSha256) {
  const std::string h1(64, 'a'), h2(64, '1'), h3 = std::string(63, 'b') + "c";
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a", "b"})).ok());
  ASSERT_TRUE(store_->insert_try(make_try("etl-1", "a", 1)).ok());
  ASSERT_TRUE(store_->insert_try(make_try("etl-1", "b", 1)).ok());
  ASSERT_TRUE(store_
                  ->add_files("etl-1", "a", 1, "output",
                              {{"m", h2, 1, 0644, ""}, {"short", "bb", 1, 0644, ""}})
                  .ok());
  ASSERT_TRUE(store_->add_files("etl-1", "b", 1, "input", {{"m", h2, 1, 0644, "a"}}).ok());
  ASSERT_TRUE(store_->set_value("etl-1", "a", 1, "version", h1).ok());
  ASSERT_TRUE(store_->set_value("etl-1", "b", 1, "version", h3).ok());
  ASSERT_TRUE(store_->set_value("etl-1", "b", 1, "other", std::string(64, 'd')).ok());
  auto refs = store_->referenced_hashes();
  ASSERT_TRUE(refs.ok()) << refs.message();
  EXPECT_EQ(*refs, (std::vector<std::string>{h2, h1, h3}));  // distinct, sorted

  ASSERT_TRUE(store_->set_value("etl-1", "b", 1, "version", 7).ok());  // not a hash
  EXPECT_EQ(*store_->referenced_hashes(), (std::vector<std::string>{h2, h1}));
}

TEST_P(StoreTest, ModelVersionsCountUpPerNameAndKeepWhatTheyLinkTo) {
  ASSERT_TRUE(store_->insert_run(make_run("retrain", 1), tasks({"train", "other"})).ok());
  for (int n = 1; n <= 3; ++n)
    ASSERT_TRUE(store_->insert_try(make_try("retrain-1", "train", n)).ok());
  ASSERT_TRUE(store_->insert_try(make_try("retrain-1", "other", 1)).ok());
  auto version = [&](const std::string& name, int try_number) {
    ModelVersion v;
    v.name = name;
    v.run_id = "retrain-1";
    v.task = "train";
    v.try_number = try_number;
    v.created_at = TimePoint(Micros(1'000'000 * try_number));
    v.artifacts = {{"model.pkl", std::string(64, 'a'), 12, 0600, "ignored"},
                   {"meta/params.json", std::string(64, 'b'), 3, 0644, ""}};
    v.record = {{"metrics", {{"auc", 0.91}}}, {"params", {{"window", 14}}}};
    return v;
  };
  auto a1 = store_->add_model_version(version("clicks", 1));
  ASSERT_TRUE(a1.ok()) << a1.message();
  EXPECT_EQ(*a1, 1);
  EXPECT_EQ(*store_->add_model_version(version("clicks", 2)), 2);
  EXPECT_EQ(*store_->add_model_version(version("ranker", 3)), 1);  // per name
  // One version per try; a try that is not there is refused; neither draws a number.
  EXPECT_EQ(store_->add_model_version(version("clicks", 2)).error().code, Errc::Conflict);
  EXPECT_EQ(store_->add_model_version(version("clicks", 9)).error().code, Errc::Conflict);
  ModelVersion other = version("clicks", 1);
  other.task = "other";
  EXPECT_EQ(*store_->add_model_version(other), 3);

  auto got = store_->model_version("clicks", 2);
  ASSERT_TRUE(got.ok()) << got.message();
  ASSERT_TRUE(got->has_value());
  const ModelVersion& v = **got;
  EXPECT_EQ(v.name, "clicks");
  EXPECT_EQ(v.version, 2);
  EXPECT_EQ(v.run_id, "retrain-1");
  EXPECT_EQ(v.task, "train");
  EXPECT_EQ(v.try_number, 2);
  EXPECT_EQ(v.created_at, TimePoint(Micros(2'000'000)));
  EXPECT_EQ(v.record, version("clicks", 2).record);
  ASSERT_EQ(v.artifacts.size(), 2u);
  EXPECT_EQ(v.artifacts[0].path, "model.pkl");  // in the order given
  EXPECT_EQ(v.artifacts[0].sha256, std::string(64, 'a'));
  EXPECT_EQ(v.artifacts[0].size, 12u);
  EXPECT_EQ(v.artifacts[0].mode, 0600);
  EXPECT_EQ(v.artifacts[0].from_task, "");
  EXPECT_EQ(v.artifacts[1].path, "meta/params.json");
  EXPECT_FALSE(store_->model_version("clicks", 4)->has_value());
  EXPECT_FALSE(store_->model_version("nope", 1)->has_value());

  auto list = store_->model_versions("clicks", -1);
  ASSERT_TRUE(list.ok()) << list.message();
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].version, 3);  // newest first, summaries
  EXPECT_EQ((*list)[2].version, 1);
  EXPECT_TRUE((*list)[0].artifacts.empty());
  EXPECT_EQ((*list)[0].record, json::object());
  EXPECT_EQ(store_->model_versions("clicks", 1)->size(), 1u);

  auto models = store_->models();
  ASSERT_TRUE(models.ok()) << models.message();
  ASSERT_EQ(models->size(), 2u);
  EXPECT_EQ((*models)[0].name, "clicks");
  EXPECT_EQ((*models)[0].versions, 3);
  EXPECT_EQ((*models)[0].latest, 3);
  EXPECT_EQ((*models)[0].created_at, TimePoint(Micros(1'000'000)));
  EXPECT_EQ((*models)[1].name, "ranker");
  EXPECT_EQ((*models)[1].latest, 1);

  // A model's artifacts keep their blobs from gc.
  auto refs = store_->referenced_hashes();
  ASSERT_TRUE(refs.ok()) << refs.message();
  EXPECT_EQ(*refs, (std::vector<std::string>{std::string(64, 'a'), std::string(64, 'b')}));
}

TEST_P(StoreTest, AliasMovesAreEventsAndEachMoveNamesTheVersionItReplaces) {
  ASSERT_NO_FATAL_FAILURE(register_versions(3));
  auto move = [&](const std::string& alias, std::optional<int64_t> from, int64_t to) {
    AliasEvent e;
    e.name = "clicks";
    e.alias = alias;
    e.from = from;
    e.to = to;
    e.by = "alice";
    e.reason = "moved to " + std::to_string(to);
    e.run_id = to == 2 ? "retrain-1" : "";
    e.forced = to == 1;
    e.at = TimePoint(Micros(100 + to));
    return store_->move_alias(e);
  };
  EXPECT_TRUE(store_->model_aliases("clicks")->empty());
  auto s1 = move("production", std::nullopt, 2);
  ASSERT_TRUE(s1.ok()) << s1.message();
  ASSERT_TRUE(move("staging", std::nullopt, 3).ok());
  // A move from a version the alias no longer names loses the race and records nothing.
  auto stale = move("production", std::nullopt, 3);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.error().code, Errc::Conflict);
  EXPECT_EQ(stale.message(), "alias production of model 'clicks' names version 2 now");
  EXPECT_EQ(move("staging", 2, 1).message(), "alias staging of model 'clicks' names version 3 now");
  EXPECT_EQ(move("production", 2, 7).error().code, Errc::NotFound);
  auto s2 = move("production", 2, 1);  // the rollback
  ASSERT_TRUE(s2.ok()) << s2.message();
  EXPECT_GT(*s2, *s1);

  EXPECT_EQ(*store_->model_aliases("clicks"),
            (std::map<std::string, int64_t>{{"production", 1}, {"staging", 3}}));
  auto events = store_->alias_events("clicks");
  ASSERT_TRUE(events.ok()) << events.message();
  ASSERT_EQ(events->size(), 3u);
  const AliasEvent& e = (*events)[2];
  EXPECT_EQ(e.seq, *s2);
  EXPECT_EQ(e.alias, "production");
  EXPECT_EQ(e.from, 2);
  EXPECT_EQ(e.to, 1);
  EXPECT_EQ(e.by, "alice");
  EXPECT_EQ(e.reason, "moved to 1");
  EXPECT_TRUE(e.forced);
  EXPECT_EQ(e.at, TimePoint(Micros(101)));
  EXPECT_EQ((*events)[0].from, std::nullopt);
  EXPECT_EQ((*events)[0].run_id, "retrain-1");
  EXPECT_FALSE((*events)[0].forced);
  auto models = store_->models();
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ((*models)[0].aliases,
            (std::map<std::string, int64_t>{{"production", 1}, {"staging", 3}}));
  EXPECT_EQ((*models)[0].updated_at, TimePoint(Micros(103)));
  EXPECT_TRUE(store_->alias_events("other")->empty());
}

TEST_P(StoreTest, ValidationsAreKeptPerTryOldestFirst) {
  ASSERT_TRUE(store_->insert_run(make_run("retrain", 1), tasks({"train", "validate"})).ok());
  ASSERT_TRUE(store_->insert_try(make_try("retrain-1", "train", 1)).ok());
  ModelVersion v;
  v.name = "clicks";
  v.run_id = "retrain-1";
  v.task = "train";
  v.try_number = 1;
  ASSERT_EQ(*store_->add_model_version(v), 1);
  auto validation = [&](int try_number, bool passed, int64_t version = 1) {
    ModelValidation m;
    m.name = "clicks";
    m.version = version;
    m.run_id = "retrain-1";
    m.task = "validate";
    m.try_number = try_number;
    m.passed = passed;
    m.report = {{"passed", passed}, {"gates", json::array({{{"metric", "auc"}}})}};
    m.at = TimePoint(Micros(10 * try_number));
    return store_->add_model_validation(m);
  };
  // A try must exist, and so must the version.
  EXPECT_FALSE(validation(1, false).ok());
  ASSERT_TRUE(store_->insert_try(make_try("retrain-1", "validate", 1)).ok());
  ASSERT_TRUE(store_->insert_try(make_try("retrain-1", "validate", 2)).ok());
  EXPECT_EQ(validation(1, false, 9).error().code, Errc::NotFound);
  ASSERT_TRUE(validation(1, false).ok());
  EXPECT_EQ(validation(1, true).error().code, Errc::Conflict);  // one per try
  ASSERT_TRUE(validation(2, true).ok());
  auto got = store_->model_validations("clicks", 1);
  ASSERT_TRUE(got.ok()) << got.message();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_FALSE((*got)[0].passed);
  EXPECT_TRUE((*got)[1].passed);
  EXPECT_EQ((*got)[1].try_number, 2);
  EXPECT_EQ((*got)[1].task, "validate");
  EXPECT_EQ((*got)[1].at, TimePoint(Micros(20)));
  EXPECT_EQ((*got)[1].report["gates"][0]["metric"], "auc");
  EXPECT_TRUE(store_->model_validations("clicks", 2)->empty());
}

// Tags and descriptions are events, nothing updated in place: a version's tags are the
// latest event per key whose value is set; a batch of tag events is all or nothing; each
// names a version that exists; every event moves the model's last change.
TEST_P(StoreTest, TagAndDescriptionEditsAreEventsAndTheLatestPerKeyIsTheTag) {
  ASSERT_NO_FATAL_FAILURE(register_versions(2));
  auto event = [](int64_t version, const std::string& key, std::optional<std::string> value,
                  int64_t at) {
    return TagEvent{0, "clicks", version, key, std::move(value), "alice", TimePoint(Micros(at))};
  };
  auto first = store_->add_tag_events(
      {event(1, "team", "ads", 10), event(1, "stage", "canary", 11), event(2, "team", "ads", 12)});
  ASSERT_TRUE(first.ok()) << first.message();
  ASSERT_EQ(first->size(), 3u);
  EXPECT_LT((*first)[0], (*first)[1]);
  EXPECT_LT((*first)[1], (*first)[2]);
  auto second = store_->add_tag_events({event(1, "team", "search", 20), event(1, "stage", {}, 21)});
  ASSERT_TRUE(second.ok()) << second.message();
  EXPECT_GT(second->front(), first->back());

  // A batch naming a version that is not there records none of its events.
  auto missing = store_->add_tag_events({event(1, "owner", "bob", 30), event(9, "team", "x", 31)});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::NotFound);
  EXPECT_EQ(missing.message(), "no version 9 of model 'clicks'");
  EXPECT_EQ(store_->add_tag_events({event(1, "team", "x", 32)})->size(), 1u);  // still writable
  ASSERT_TRUE(store_->add_tag_events({event(1, "team", "search", 33)}).ok());
  EXPECT_TRUE(store_->add_tag_events({})->empty());

  auto tags = store_->model_tags("clicks");
  ASSERT_TRUE(tags.ok()) << tags.message();
  EXPECT_EQ(*tags, (std::map<int64_t, std::map<std::string, std::string>>{{1, {{"team", "search"}}},
                                                                          {2, {{"team", "ads"}}}}));
  EXPECT_TRUE(store_->model_tags("other")->empty());
  auto events = store_->tag_events("clicks", 1);
  ASSERT_TRUE(events.ok()) << events.message();
  ASSERT_EQ(events->size(), 6u);  // oldest first, the removal and the refused batch's none
  EXPECT_EQ((*events)[0].key, "team");
  EXPECT_EQ((*events)[0].value, "ads");
  EXPECT_EQ((*events)[0].seq, (*first)[0]);
  EXPECT_EQ((*events)[0].by, "alice");
  EXPECT_EQ((*events)[0].at, TimePoint(Micros(10)));
  EXPECT_EQ((*events)[0].name, "clicks");
  EXPECT_EQ((*events)[0].version, 1);
  EXPECT_EQ((*events)[3].key, "stage");
  EXPECT_EQ((*events)[3].value, std::nullopt);
  EXPECT_EQ((*events)[4].value, "x");
  EXPECT_EQ(store_->tag_events("clicks", 2)->size(), 1u);

  // A removed key comes back with a new event.
  ASSERT_TRUE(store_->add_tag_events({event(1, "stage", "full", 40)}).ok());
  EXPECT_EQ(store_->model_tags("clicks")->at(1),
            (std::map<std::string, std::string>{{"stage", "full"}, {"team", "search"}}));

  auto edit = [](int64_t version, const std::string& text, int64_t at) {
    return DescriptionEvent{0, "clicks", version, text, "bob", TimePoint(Micros(at))};
  };
  auto d1 = store_->add_description_event(edit(1, "first\ntwo lines", 50));
  ASSERT_TRUE(d1.ok()) << d1.message();
  auto d2 = store_->add_description_event(edit(1, "", 51));
  ASSERT_TRUE(d2.ok()) << d2.message();
  EXPECT_GT(*d2, *d1);
  auto none = store_->add_description_event(edit(3, "x", 52));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::NotFound);
  auto edits = store_->description_events("clicks", 1);
  ASSERT_TRUE(edits.ok()) << edits.message();
  ASSERT_EQ(edits->size(), 2u);
  EXPECT_EQ((*edits)[0].description, "first\ntwo lines");
  EXPECT_EQ((*edits)[0].by, "bob");
  EXPECT_EQ((*edits)[0].at, TimePoint(Micros(50)));
  EXPECT_EQ((*edits)[0].seq, *d1);
  EXPECT_EQ((*edits)[1].description, "");
  EXPECT_TRUE(store_->description_events("clicks", 2)->empty());
  EXPECT_EQ((*store_->models())[0].updated_at, TimePoint(Micros(51)));

  // Inside a transaction they roll back with it.
  {
    Transaction tx(*store_);
    ASSERT_TRUE(tx.status().ok());
    ASSERT_TRUE(store_->add_tag_events({event(2, "team", "gone", 60)}).ok());
    ASSERT_TRUE(store_->add_description_event(edit(2, "gone", 61)).ok());
  }
  EXPECT_EQ(store_->model_tags("clicks")->at(2),
            (std::map<std::string, std::string>{{"team", "ads"}}));
  EXPECT_TRUE(store_->description_events("clicks", 2)->empty());
}

TEST_P(StoreTest, DagVersionsAreIdempotentAndKeepExactBytes) {
  std::string content("id: x\n\0\xff tail", 14);
  ASSERT_TRUE(store_->put_dag_version("h1", "x", "/dags/x.yaml", content).ok());
  ASSERT_TRUE(store_->put_dag_version("h1", "x", "/dags/other.yaml", "changed").ok());
  auto got = store_->dag_version_content("h1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, content);
  EXPECT_EQ(*store_->dag_version_content("h2"), std::nullopt);
}

TEST_P(StoreTest, ScheduleStateAndPausedFlagRoundTrip) {
  EXPECT_EQ(*store_->last_scheduled("etl"), std::nullopt);
  ASSERT_TRUE(store_->set_last_scheduled("etl", at("2026-11-23T00:00:00Z")).ok());
  ASSERT_TRUE(store_->set_last_scheduled("etl", at("2026-11-30T00:00:00Z")).ok());
  EXPECT_EQ(*store_->last_scheduled("etl"), at("2026-11-30T00:00:00Z"));

  EXPECT_FALSE(*store_->paused("etl"));
  ASSERT_TRUE(store_->set_paused("etl", true).ok());
  EXPECT_TRUE(*store_->paused("etl"));
  ASSERT_TRUE(store_->set_paused("etl", false).ok());
  EXPECT_FALSE(*store_->paused("etl"));
}

// --- Run record JSON -------------------------------------------------------------------------

TEST_P(StoreTest, RunRecordJsonHasTheDesignShape) {
  RunRecord r = make_run("weekly_retrain", 3, RunState::Failed);
  r.params = {{"lr", 0.1}};
  r.git_commit = "abc";
  r.logical_date = at("2026-11-23T00:00:00Z");
  r.interval_start = at("2026-11-16T00:00:00Z");
  r.interval_end = at("2026-11-23T00:00:00Z");
  r.started_at = at("2026-11-25T09:00:01Z");
  r.ended_at = at("2026-11-25T09:00:09Z");
  ASSERT_TRUE(store_->insert_run(r, tasks({"make_data", "train", "predict"})).ok());
  ASSERT_TRUE(store_->update_task({r.id, "make_data", TaskState::Success, 1, {}}).ok());
  ASSERT_TRUE(store_->update_task({r.id, "train", TaskState::Failed, 2, {}}).ok());
  ASSERT_TRUE(store_->update_task({r.id, "predict", TaskState::UpstreamFailed, 0, {}}).ok());

  TryRecord m = make_try(r.id, "make_data", 1);
  m.state = TryState::Success;
  m.exit_code = 0;
  m.ended_at = m.started_at + std::chrono::milliseconds(1500);
  ASSERT_TRUE(store_->insert_try(m).ok());
  FileRecord data{"d.csv", "s1", 7, 0644, ""};
  ASSERT_TRUE(store_->add_files(r.id, "make_data", 1, "output", {data}).ok());
  ASSERT_TRUE(store_->set_value(r.id, "make_data", 1, "rows", 7).ok());
  TryRecord t1 = make_try(r.id, "train", 1);
  t1.state = TryState::Failed;
  t1.signal = 9;
  t1.ended_at = t1.started_at + std::chrono::seconds(2);
  ASSERT_TRUE(store_->insert_try(t1).ok());
  ASSERT_TRUE(
      store_->add_files(r.id, "train", 1, "input", {{"d.csv", "s1", 7, 0644, "make_data"}}).ok());
  ASSERT_TRUE(store_->add_metric(r.id, "train", 1, "loss", 0.5, 1).ok());
  TryRecord t2 = make_try(r.id, "train", 2);
  t2.state = TryState::Failed;
  t2.exit_code = 1;
  t2.error = "exit code 1";
  t2.ended_at = t2.started_at + std::chrono::seconds(1);
  ASSERT_TRUE(store_->insert_try(t2).ok());

  auto rec = run_record_json(*store_, r.id);
  ASSERT_TRUE(rec.ok()) << rec.message();
  const json& j = *rec;
  EXPECT_EQ(j["id"], "weekly_retrain-3");
  EXPECT_EQ(j["dag"], "weekly_retrain");
  EXPECT_EQ(j["seq"], 3);
  EXPECT_EQ(j["state"], "failed");
  EXPECT_EQ(j["error"], nullptr);  // its tries say why
  EXPECT_EQ(j["params"], (json{{"lr", 0.1}}));
  EXPECT_EQ(j["dag_hash"], "ab12");
  EXPECT_EQ(j["git"], (json{{"commit", "abc"}, {"dirty", false}}));
  EXPECT_EQ(j["trigger"], (json{{"kind", "manual"}, {"user", "alice"}}));
  EXPECT_EQ(j["logical_date"], "2026-11-23T00:00:00Z");
  EXPECT_EQ(j["data_interval"],
            (json{{"start", "2026-11-16T00:00:00Z"}, {"end", "2026-11-23T00:00:00Z"}}));
  EXPECT_EQ(j["created_at"], "2026-11-25T09:00:00.000003Z");
  EXPECT_EQ(j["started_at"], "2026-11-25T09:00:01Z");
  EXPECT_EQ(j["ended_at"], "2026-11-25T09:00:09Z");
  EXPECT_EQ(j["task_states"],
            (json{{"make_data", "success"}, {"train", "failed"}, {"predict", "upstream_failed"}}));

  ASSERT_EQ(j["tasks"].size(), 3u);
  const json& md = j["tasks"][0];
  EXPECT_EQ(md["task"], "make_data");
  EXPECT_EQ(md["try"], 1);
  EXPECT_EQ(md["state"], "success");
  EXPECT_EQ(md["queue"], "default");
  EXPECT_EQ(md["host"], "box1");
  EXPECT_EQ(md["exit_code"], 0);
  EXPECT_EQ(md["signal"], nullptr);
  EXPECT_EQ(md["started_at"], "2026-11-25T09:00:01.250000Z");
  EXPECT_EQ(md["ended_at"], "2026-11-25T09:00:02.750000Z");
  EXPECT_DOUBLE_EQ(md["duration_s"].get<double>(), 1.5);
  EXPECT_EQ(md["log"], m.log_path);
  EXPECT_EQ(md["command"], m.command);
  EXPECT_EQ(md["error"], nullptr);
  EXPECT_EQ(md["facts"], m.facts);
  EXPECT_EQ(md["inputs"], json::array());
  EXPECT_EQ(md["outputs"], json::parse(R"([{"path":"d.csv","size":7,"sha256":"s1","mode":420}])"));
  EXPECT_EQ(md["values"], (json{{"rows", 7}}));
  EXPECT_EQ(md["metrics"], json::array());

  const json& tr1 = j["tasks"][1];
  EXPECT_EQ(tr1["task"], "train");
  EXPECT_EQ(tr1["try"], 1);
  EXPECT_EQ(tr1["signal"], 9);
  EXPECT_EQ(tr1["exit_code"], nullptr);
  EXPECT_EQ(tr1["inputs"],
            json::parse(
                R"([{"path":"d.csv","size":7,"sha256":"s1","mode":420,"from_task":"make_data"}])"));
  EXPECT_EQ(tr1["metrics"], json::parse(R"([{"name":"loss","value":0.5,"step":1}])"));
  EXPECT_EQ(j["tasks"][2]["try"], 2);
  EXPECT_EQ(j["tasks"][2]["error"], "exit code 1");
}

TEST_P(StoreTest, RunRecordJsonOfAnUnknownRunIsNotFound) {
  auto rec = run_record_json(*store_, "nope-1");
  ASSERT_FALSE(rec.ok());
  EXPECT_EQ(rec.message(), "no such run: nope-1");
  EXPECT_EQ(rec.error().code, Errc::NotFound);
}

TEST(StoreJsonTest, RunSummaryHoldsTheListingFields) {
  RunRecord r;
  r.id = "etl-1";
  r.dag = "etl";
  r.seq = 1;
  r.state = RunState::Running;
  r.trigger_kind = "schedule";
  r.created_at = at("2026-11-25T09:00:00Z");
  EXPECT_EQ(run_summary_json(r), json::parse(R"({
    "id": "etl-1", "dag": "etl", "seq": 1, "state": "running",
    "trigger": {"kind": "schedule", "user": ""}, "logical_date": null,
    "created_at": "2026-11-25T09:00:00Z", "started_at": null, "ended_at": null})"));
}

// --- Several connections, several processes --------------------------------------------------

TEST_P(StoreTest, TwoStoresOnOneFileSeeEachOthersCommits) {
  auto other = open();
  ASSERT_TRUE(other);
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a"})).ok());
  EXPECT_TRUE(other->get_run("etl-1")->has_value());

  // A writer's open transaction neither blocks the other's reads nor shows in them.
  ASSERT_TRUE(other->begin().ok());
  ASSERT_TRUE(other->update_task({"etl-1", "a", TaskState::Running, 1, {}}).ok());
  EXPECT_EQ((*store_->tasks_of("etl-1"))[0].state, TaskState::Pending);
  ASSERT_TRUE(other->commit().ok());
  EXPECT_EQ((*store_->tasks_of("etl-1"))[0].state, TaskState::Running);

  EXPECT_EQ(*store_->next_run_seq("etl"), 1);
  EXPECT_EQ(*other->next_run_seq("etl"), 2);
  EXPECT_EQ(*store_->next_run_seq("etl"), 3);
}

// --- Ownership (claim_run) and the recovery counter ------------------------------------------

TEST_P(StoreTest, TwoOwnersRaceForARunAndOneWins) {
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a"})).ok());
  auto other = open();
  ASSERT_TRUE(other);
  TimePoint now = at("2026-11-25T10:00:00Z");
  // Each thread its own connection; the store serializes the two compare-and-sets.
  Result<bool> a = false, b = false;
  std::thread ta(
      [&] { a = store_->claim_run("etl-1", "sched-a", now + std::chrono::seconds(30), now); });
  std::thread tb(
      [&] { b = other->claim_run("etl-1", "sched-b", now + std::chrono::seconds(30), now); });
  ta.join();
  tb.join();
  ASSERT_TRUE(a.ok()) << a.message();
  ASSERT_TRUE(b.ok()) << b.message();
  EXPECT_NE(*a, *b) << "exactly one claim wins";
  RunRecord got = **store_->get_run("etl-1");
  EXPECT_EQ(got.owner, *a ? "sched-a" : "sched-b");
  EXPECT_EQ(got.lease_until, now + std::chrono::seconds(30));
  // The loser, asking again while the lease runs, still loses and changes nothing.
  const std::string loser = *a ? "sched-b" : "sched-a";
  EXPECT_FALSE(*store_->claim_run("etl-1", loser, now + std::chrono::hours(1),
                                  now + std::chrono::seconds(29)));
  EXPECT_EQ((*store_->get_run("etl-1"))->owner, got.owner);
  EXPECT_EQ((*store_->get_run("etl-1"))->lease_until, got.lease_until);
}

TEST_P(StoreTest, ALapsedLeaseCanBeTakenAndTheOwnerRenews) {
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a"})).ok());
  RunRecord fresh = **store_->get_run("etl-1");
  EXPECT_EQ(fresh.owner, "");  // a new run is unowned
  EXPECT_EQ(fresh.lease_until, std::nullopt);
  TimePoint t0 = at("2026-11-25T10:00:00Z");
  auto s = [](int n) { return std::chrono::seconds(n); };
  ASSERT_TRUE(*store_->claim_run("etl-1", "a", t0 + s(10), t0));
  // The owner renews before the lease ends, and after (nobody took it meanwhile).
  EXPECT_TRUE(*store_->claim_run("etl-1", "a", t0 + s(20), t0 + s(5)));
  EXPECT_EQ((*store_->get_run("etl-1"))->lease_until, t0 + s(20));
  EXPECT_FALSE(*store_->claim_run("etl-1", "b", t0 + s(60), t0 + s(19)));
  // At the lease's end it has lapsed: another owner takes the run.
  EXPECT_TRUE(*store_->claim_run("etl-1", "b", t0 + s(60), t0 + s(20)));
  RunRecord got = **store_->get_run("etl-1");
  EXPECT_EQ(got.owner, "b");
  EXPECT_EQ(got.lease_until, t0 + s(60));
  EXPECT_FALSE(*store_->claim_run("etl-1", "a", t0 + s(90), t0 + s(30)));  // a lost it
  // update_run leaves ownership alone.
  got.state = RunState::Running;
  got.owner = "someone-else";
  ASSERT_TRUE(store_->update_run(got).ok());
  EXPECT_EQ((*store_->get_run("etl-1"))->owner, "b");
  auto listed = store_->unfinished_runs();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].owner, "b");
}

TEST_P(StoreTest, ANonOwnerCannotRelease) {
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a"})).ok());
  TimePoint t0 = at("2026-11-25T10:00:00Z");
  ASSERT_TRUE(*store_->claim_run("etl-1", "a", t0 + std::chrono::seconds(10), t0));
  Status s = store_->release_run("etl-1", "b");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::Conflict);
  EXPECT_EQ(s.message(), "run etl-1 is not held by 'b'");
  EXPECT_EQ((*store_->get_run("etl-1"))->owner, "a");

  ASSERT_TRUE(store_->release_run("etl-1", "a").ok());
  RunRecord got = **store_->get_run("etl-1");
  EXPECT_EQ(got.owner, "");
  EXPECT_EQ(got.lease_until, std::nullopt);
  EXPECT_EQ(store_->release_run("etl-1", "a").error().code, Errc::Conflict);         // held by none
  EXPECT_TRUE(*store_->claim_run("etl-1", "b", t0 + std::chrono::seconds(10), t0));  // free again

  EXPECT_EQ(store_->release_run("nope-1", "a").error().code, Errc::NotFound);
  EXPECT_EQ(store_->claim_run("nope-1", "a", t0, t0).error().code, Errc::NotFound);
  auto empty = store_->claim_run("etl-1", "", t0 + std::chrono::seconds(10), t0);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, Errc::Invalid);
}

TEST_P(StoreTest, RecoveriesCountUntilATryOfTheRunEnds) {
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a", "b"})).ok());
  ASSERT_TRUE(store_->insert_run(make_run("etl", 2), tasks({"a"})).ok());
  EXPECT_EQ((*store_->get_run("etl-1"))->recoveries, 0);
  EXPECT_EQ(*store_->count_recovery("etl-1"), 1);
  EXPECT_EQ(*store_->count_recovery("etl-1"), 2);
  EXPECT_EQ(*store_->count_recovery("etl-2"), 1);
  EXPECT_EQ((*store_->get_run("etl-1"))->recoveries, 2);
  EXPECT_EQ(store_->count_recovery("nope-1").error().code, Errc::NotFound);

  // A try that starts, or changes without ending, is no progress.
  TryRecord a = make_try("etl-1", "a", 1);
  ASSERT_TRUE(store_->insert_try(a).ok());
  a.pid = 999;
  ASSERT_TRUE(store_->update_try(a).ok());
  EXPECT_EQ((*store_->get_run("etl-1"))->recoveries, 2);

  // A try that ends is: the count starts again, for its run only.
  a.state = TryState::Lost;
  a.ended_at = at("2026-11-25T09:05:00Z");
  ASSERT_TRUE(store_->update_try(a).ok());
  EXPECT_EQ((*store_->get_run("etl-1"))->recoveries, 0);
  EXPECT_EQ((*store_->get_run("etl-2"))->recoveries, 1);

  // Rewriting an ended try is no new end; inserting an ended try is one.
  EXPECT_EQ(*store_->count_recovery("etl-1"), 1);
  ASSERT_TRUE(store_->update_try(a).ok());
  EXPECT_EQ((*store_->get_run("etl-1"))->recoveries, 1);
  TryRecord b = make_try("etl-1", "b", 1);
  b.state = TryState::Failed;
  b.ended_at = at("2026-11-25T09:06:00Z");
  ASSERT_TRUE(store_->insert_try(b).ok());
  EXPECT_EQ((*store_->get_run("etl-1"))->recoveries, 0);

  // Inside a transaction the count is the transaction's, gone with a rollback.
  ASSERT_TRUE(store_->begin().ok());
  EXPECT_EQ(*store_->count_recovery("etl-2"), 2);
  store_->rollback();
  EXPECT_EQ((*store_->get_run("etl-2"))->recoveries, 1);
}

TEST_P(StoreTest, ARunsErrorRoundTrips) {
  RunRecord r = make_run("etl", 1);
  ASSERT_TRUE(store_->insert_run(r, tasks({"a"})).ok());
  EXPECT_EQ((*store_->get_run("etl-1"))->error, "");
  r.state = RunState::Failed;
  r.error = "recovered 3 times without progress; the runner may crash on it";
  ASSERT_TRUE(store_->update_run(r).ok());
  EXPECT_EQ((*store_->get_run("etl-1"))->error, r.error);
  RunRecord r2 = make_run("etl", 2, RunState::Failed);
  r2.error = "from the start";
  ASSERT_TRUE(store_->insert_run(r2, tasks({"a"})).ok());
  EXPECT_EQ((*store_->get_run("etl-2"))->error, "from the start");
  auto rec = run_record_json(*store_, "etl-1");
  ASSERT_TRUE(rec.ok()) << rec.message();
  EXPECT_EQ((*rec)["error"], r.error);
}

// Runs `child` in a forked process with its own Store on the same file. The child writes
// one byte to the pipe when it reaches its checkpoint ('k') or fails ('e'); `after` then
// decides its fate. Returns what the child reported.
char fork_child(const fs::path& path, const std::function<bool(Store&)>& child,
                const std::function<void(pid_t)>& after) {
  int fds[2];
  if (pipe(fds) != 0) return '?';
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    char c = 'e';
    auto s = open_sqlite_store(path);
    if (s.ok() && child(**s)) c = 'k';
    if (write(fds[1], &c, 1) != 1) _exit(3);
    for (;;) pause();  // until the parent kills us (or the child exited in `child`)
  }
  close(fds[1]);
  char c = '?';
  if (read(fds[0], &c, 1) != 1) c = 'x';  // 'x': the child ended without reporting
  close(fds[0]);
  after(pid);
  int status = 0;
  waitpid(pid, &status, 0);
  return c;
}

void kill_child(pid_t pid) { kill(pid, SIGKILL); }
void no_op(pid_t) {}

TEST_P(SqliteStoreTest, ChildKilledBeforeCommitLeavesNothing) {
  ASSERT_TRUE(store_->insert_run(make_run("etl", 1), tasks({"a"})).ok());
  char c = fork_child(
      path_,
      [](Store& s) {
        return s.begin().ok() && s.insert_run(make_run("etl", 2), tasks({"a", "b"})).ok() &&
               s.update_task({"etl-1", "a", TaskState::Success, 1, {}}).ok() &&
               s.set_paused("etl", true).ok();
      },
      kill_child);
  ASSERT_EQ(c, 'k');

  EXPECT_FALSE(store_->get_run("etl-2")->has_value());
  EXPECT_TRUE(store_->tasks_of("etl-2")->empty());
  EXPECT_EQ((*store_->tasks_of("etl-1"))[0].state, TaskState::Pending);
  EXPECT_FALSE(*store_->paused("etl"));
  // The dead writer's lock is gone: this process can write at once.
  EXPECT_TRUE(store_->set_paused("etl", true).ok());
  auto fresh = open();
  ASSERT_TRUE(fresh);
  EXPECT_FALSE(fresh->get_run("etl-2")->has_value());
}

TEST_P(SqliteStoreTest, ChildExitingBeforeCommitLeavesNothing) {
  char c = fork_child(
      path_,
      [](Store& s) {
        bool ok = s.begin().ok() && s.insert_run(make_run("etl", 9), tasks({"a"})).ok();
        if (ok) _exit(0);  // no commit, no destructors
        return false;
      },
      no_op);
  EXPECT_EQ(c, 'x');
  EXPECT_FALSE(store_->get_run("etl-9")->has_value());
  EXPECT_TRUE(store_->insert_run(make_run("etl", 9), tasks({"a"})).ok());
}

TEST_P(SqliteStoreTest, ChildKilledAfterCommitKeepsItsWrites) {
  char c = fork_child(
      path_,
      [](Store& s) {
        if (!s.begin().ok()) return false;
        if (!s.insert_run(make_run("etl", 5), tasks({"a"})).ok()) return false;
        if (!s.insert_try(make_try("etl-5", "a", 1)).ok()) return false;
        if (!s.commit().ok()) return false;
        return s.set_paused("etl", true).ok();  // an autocommit write
      },
      kill_child);
  ASSERT_EQ(c, 'k');

  store_.reset();
  store_ = open();
  ASSERT_TRUE(store_);
  EXPECT_TRUE(store_->get_run("etl-5")->has_value());
  EXPECT_EQ(store_->tries_of("etl-5")->size(), 1u);
  EXPECT_TRUE(*store_->paused("etl"));
}

// Every backend runs the contract; a new backend adds its URL scheme here.
INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values("sqlite", "memory"));
INSTANTIATE_TEST_SUITE_P(Sqlite, SqliteStoreTest, ::testing::Values("sqlite"));

}  // namespace
}  // namespace drover
