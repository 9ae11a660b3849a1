// The Engine (scheduler/daemon.hpp) on an io_context, a ManualClock, the in-memory
// FakeStore and the FakeExecutor: cron with catchup, retries with backoff, timeouts, SLA
// misses, max_active_runs, cancel, a failed commit, an unrenderable template. Each test
// drives the Engine by hand — io.poll() runs what is ready, clock.set(*next_wake()) and
// pump() move time — and asserts the store's records and the executor's calls. No real
// time passes for the Engine and nothing sleeps; the only child process is the SLA test's
// alert command (the Engine has no alert seam but the real AlertDispatcher).
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <filesystem>
#include <fstream>

#include "common/time.hpp"
#include "scheduler/alerts.hpp"
#include "scheduler/daemon.hpp"
#include "scheduler/dag_loader.hpp"
#include "tests/scheduler/fake_executor.hpp"
#include "tests/scheduler/fake_store.hpp"
#include "tests/temp_dir.hpp"

namespace drover {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using Strings = std::vector<std::string>;

TimePoint at(const char* iso) { return parse_iso(iso).value(); }

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { register_builtin_task_types(); }

  void TearDown() override {
    engine_.reset();
    alerts_.reset();
  }

  // The Engine on the fakes, started (recovery of the empty store, its first pump).
  Engine& start_engine(EngineOptions o = {}) {
    o.home = dir_ / "home";
    o.project_dir = dir_.string();
    if (alerts_) o.alerts = alerts_.get();
    engine_ = std::make_unique<Engine>(io_, clock_, store_, exec_, std::move(o));
    Status s = engine_->start();
    EXPECT_TRUE(s.ok()) << s.message();
    poll();
    return *engine_;
  }

  DagPtr dag(std::string_view yaml) {
    LoadResult r = load_dag_text(yaml, (dir_ / "dag.yaml").string());
    for (const Diagnostic& d : r.diagnostics) ADD_FAILURE() << d.str();
    return r.dag;
  }

  // Registers `d` with the Engine and triggers a manual run; returns its id.
  std::string trigger(const DagPtr& d) {
    engine_->add_dag(d);
    auto r = engine_->trigger(d->id, json::object(), "alice");
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.message());
    poll();
    return r.ok() ? *r : "";
  }

  // An hourly DAG of one mock task, last scheduled at 04:00, pumped at 09:00 (now).
  void schedule_hourly(bool catchup) {
    start_engine();
    ASSERT_TRUE(store_.set_last_scheduled("hourly", at("2026-11-25T04:00:00Z")).ok());
    engine_->add_dag(dag(std::string("dag: hourly\nschedule: \"0 * * * *\"\ncatchup: ") +
                         (catchup ? "true" : "false") + "\ntasks:\n  a: {type: mock}\n"));
    engine_->pump();
    poll();
  }

  // Runs every handler that is ready (posted pumps, kills); never waits.
  void poll() {
    io_.restart();
    io_.poll();
  }
  // Moves the clock to `t` and pumps, as the Engine's timer would.
  void pump_at(TimePoint t) {
    clock_.set(t);
    engine_->pump();
    poll();
  }
  // Moves the clock to the Engine's next wake and pumps; returns that time.
  TimePoint pump_at_wake() {
    auto w = engine_->next_wake();
    EXPECT_TRUE(w.has_value()) << "the Engine has no timed work";
    if (w) pump_at(*w);
    return clock_.now();
  }

  RunRecord run(const std::string& id) {
    auto r = store_.get_run(id);
    if (!r.ok() || !r->has_value()) {
      ADD_FAILURE() << "no run " << id;
      return {};
    }
    return **r;
  }
  TaskInstance task(const std::string& run_id, const std::string& name) {
    std::vector<TaskInstance> all = store_.tasks_of(run_id).value();
    for (const TaskInstance& t : all)
      if (t.task == name) return t;
    ADD_FAILURE() << "no task " << name << " in " << run_id;
    return {};
  }
  std::map<std::string, std::string> task_states(const std::string& run_id) {
    std::map<std::string, std::string> out;
    std::vector<TaskInstance> all = store_.tasks_of(run_id).value();
    for (const TaskInstance& t : all) out[t.task] = to_string(t.state);
    return out;
  }
  std::vector<TryRecord> tries(const std::string& run_id, const std::string& name) {
    std::vector<TryRecord> out;
    std::vector<TryRecord> all = store_.tries_of(run_id).value();
    for (const TryRecord& t : all)
      if (t.task == name) out.push_back(t);
    return out;
  }

  testing::TempDir tmp_;
  fs::path dir_ = tmp_.path();
  boost::asio::io_context io_;
  ManualClock clock_{at("2026-11-25T09:00:00Z")};
  FakeStore store_;
  FakeExecutor exec_;
  std::unique_ptr<AlertDispatcher> alerts_;  // outlives engine_
  std::unique_ptr<Engine> engine_;
};

// --- A plain run -------------------------------------------------------------------------------

TEST_F(EngineTest, AMockDagRunsToSuccessWithValuesPassedDownstream) {
  start_engine();
  std::string id = trigger(dag(R"(dag: plain
tasks:
  a: {type: mock, with: {values: {rows: 42}, metrics: {loss: 0.5}}}
  b: {type: mock, needs: [a], with: {values: {seen: "{{ outputs.a.rows }}"}}}
)"));
  ASSERT_EQ(exec_.started_keys(), Strings{"plain-1/a/1"});
  EXPECT_EQ(run(id).state, RunState::Running);
  EXPECT_EQ(task(id, "a").state, TaskState::Running);
  ASSERT_EQ(tries(id, "a").size(), 1u);
  EXPECT_EQ(tries(id, "a")[0].state, TryState::Running);

  exec_.finish_like_mock("plain-1/a/1");
  poll();
  ASSERT_EQ(exec_.started_keys(), (Strings{"plain-1/a/1", "plain-1/b/1"}));
  EXPECT_EQ(exec_.starts()[1].with["values"]["seen"], "42");  // rendered from a's value
  EXPECT_EQ(exec_.starts()[1].upstream_values.at("a.rows"), 42);
  EXPECT_EQ(*store_.values_of(id, "a", 1), (json{{"rows", 42}}));
  EXPECT_EQ(*store_.metrics_of(id, "a", 1),
            json::parse(R"([{"name":"loss","value":0.5,"step":-1}])"));
  TryRecord a = tries(id, "a")[0];
  EXPECT_EQ(a.state, TryState::Success);
  EXPECT_EQ(a.exit_code, 0);
  EXPECT_EQ(a.pid, 4000);  // from the Started event

  exec_.finish_like_mock("plain-1/b/1");
  poll();
  EXPECT_EQ(run(id).state, RunState::Success);
  EXPECT_EQ(task_states(id),
            (std::map<std::string, std::string>{{"a", "success"}, {"b", "success"}}));
  EXPECT_EQ(run(id).ended_at, clock_.now());
  EXPECT_EQ(engine_->next_wake(), std::nullopt);
}

// --- Cron ----------------------------------------------------------------------------------

TEST_F(EngineTest, CronWithCatchupCreatesEveryMissedIntervalOldestFirst) {
  schedule_hourly(true);

  auto runs = store_.unfinished_runs().value();  // oldest first
  ASSERT_EQ(runs.size(), 5u);
  const char* starts[] = {"2026-11-25T04:00:00Z", "2026-11-25T05:00:00Z", "2026-11-25T06:00:00Z",
                          "2026-11-25T07:00:00Z", "2026-11-25T08:00:00Z", "2026-11-25T09:00:00Z"};
  for (size_t i = 0; i < runs.size(); ++i) {
    SCOPED_TRACE(runs[i].id);
    EXPECT_EQ(runs[i].id, "hourly-" + std::to_string(i + 1));
    EXPECT_EQ(runs[i].trigger_kind, "schedule");
    EXPECT_EQ(runs[i].interval_start, at(starts[i]));
    EXPECT_EQ(runs[i].interval_end, at(starts[i + 1]));
    EXPECT_EQ(runs[i].logical_date, runs[i].interval_start);
  }
  EXPECT_EQ(store_.last_scheduled("hourly").value(), at("2026-11-25T09:00:00Z"));
  // max_active_runs (1 by default): the oldest runs, the others wait queued.
  EXPECT_EQ(exec_.started_keys(), Strings{"hourly-1/a/1"});
  EXPECT_EQ(runs[0].state, RunState::Running);
  EXPECT_EQ(runs[4].state, RunState::Queued);

  // The next tick is the next wake; at it exactly one more run comes.
  ASSERT_EQ(engine_->next_wake(), at("2026-11-25T10:00:00Z"));
  pump_at_wake();
  runs = store_.unfinished_runs().value();
  ASSERT_EQ(runs.size(), 6u);
  EXPECT_EQ(runs[5].id, "hourly-6");
  EXPECT_EQ(runs[5].interval_start, at("2026-11-25T09:00:00Z"));
  EXPECT_EQ(runs[5].interval_end, at("2026-11-25T10:00:00Z"));
  EXPECT_EQ(engine_->next_wake(), at("2026-11-25T11:00:00Z"));
  // The same time again creates nothing.
  engine_->pump();
  poll();
  EXPECT_EQ(store_.unfinished_runs()->size(), 6u);
}

TEST_F(EngineTest, CronWithoutCatchupCreatesOnlyTheLatestInterval) {
  schedule_hourly(false);

  auto runs = store_.unfinished_runs().value();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].interval_start, at("2026-11-25T08:00:00Z"));
  EXPECT_EQ(runs[0].interval_end, at("2026-11-25T09:00:00Z"));
  EXPECT_EQ(store_.last_scheduled("hourly").value(), at("2026-11-25T09:00:00Z"));
  ASSERT_EQ(engine_->next_wake(), at("2026-11-25T10:00:00Z"));
  pump_at_wake();
  runs = store_.unfinished_runs().value();
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[1].interval_start, at("2026-11-25T09:00:00Z"));
  EXPECT_EQ(runs[1].interval_end, at("2026-11-25T10:00:00Z"));
}

// --- Retries ---------------------------------------------------------------------------------

TEST_F(EngineTest, RetriesWaitWithExponentialBackoffCappedThenFailTheRun) {
  start_engine();
  std::string id = trigger(dag(R"(dag: flaky
tasks:
  a: {type: mock, retries: 3, retry_delay: 10s, max_retry_delay: 25s, with: {exit_code: 1}}
  b: {type: mock, needs: [a]}
)"));
  ASSERT_EQ(exec_.started_keys(), Strings{"flaky-1/a/1"});
  TimePoint ended = clock_.now();
  const Micros waits[] = {seconds(10), seconds(20), seconds(25)};
  for (int n = 1; n <= 3; ++n) {
    SCOPED_TRACE("try " + std::to_string(n));
    exec_.finish_like_mock("flaky-1/a/" + std::to_string(n));
    poll();
    TimePoint due = ended + waits[n - 1];
    TaskInstance a = task(id, "a");
    EXPECT_EQ(a.state, TaskState::UpForRetry);
    EXPECT_EQ(a.try_number, n);
    EXPECT_EQ(a.next_try_at, due);
    EXPECT_EQ(engine_->next_wake(), due);
    EXPECT_EQ(tries(id, "a").back().state, TryState::Failed);
    EXPECT_EQ(tries(id, "a").back().exit_code, 1);
    // Not a moment early.
    pump_at(due - Micros(1));
    EXPECT_EQ(exec_.starts().size(), static_cast<size_t>(n));
    pump_at_wake();
    ASSERT_EQ(exec_.starts().size(), static_cast<size_t>(n + 1));
    EXPECT_EQ(exec_.starts().back().try_number, n + 1);
    EXPECT_EQ(task(id, "a").state, TaskState::Running);
    EXPECT_EQ(tries(id, "a").back().started_at, due);
    ended = due;
  }
  // The fourth try fails too: no retries left.
  exec_.finish_like_mock("flaky-1/a/4");
  poll();
  EXPECT_EQ(task(id, "a").state, TaskState::Failed);
  EXPECT_EQ(task(id, "a").try_number, 4);
  EXPECT_EQ(task(id, "b").state, TaskState::UpstreamFailed);
  EXPECT_EQ(run(id).state, RunState::Failed);
  EXPECT_EQ(tries(id, "a").size(), 4u);
  EXPECT_TRUE(tries(id, "b").empty());
  EXPECT_EQ(exec_.starts().size(), 4u);
  EXPECT_EQ(engine_->next_wake(), std::nullopt);
}

TEST_F(EngineTest, AFailOnTryMockSucceedsOnItsRetry) {
  start_engine();
  std::string id = trigger(dag(R"(dag: second_time
tasks:
  a: {type: mock, retries: 1, retry_delay: 1s, with: {fail_on_try: 1}}
)"));
  exec_.finish_like_mock("second_time-1/a/1");
  poll();
  pump_at_wake();
  exec_.finish_like_mock("second_time-1/a/2");
  poll();
  EXPECT_EQ(run(id).state, RunState::Success);
  ASSERT_EQ(tries(id, "a").size(), 2u);
  EXPECT_EQ(tries(id, "a")[0].state, TryState::Failed);
  EXPECT_EQ(tries(id, "a")[1].state, TryState::Success);
}

// --- Timeouts --------------------------------------------------------------------------------

TEST_F(EngineTest, ATryPastItsTimeoutIsKilledRecordedTimedOutAndRetried) {
  start_engine();
  std::string id = trigger(dag(R"(dag: slow
tasks:
  a: {type: mock, timeout: 30s, retries: 1, retry_delay: 5s}
)"));
  ASSERT_EQ(exec_.started_keys(), Strings{"slow-1/a/1"});
  TimePoint started = clock_.now();
  ASSERT_EQ(engine_->next_wake(), started + seconds(30));
  pump_at(started + seconds(30) - Micros(1));
  EXPECT_TRUE(exec_.kills().empty());

  pump_at_wake();
  ASSERT_EQ(exec_.kills().size(), 1u);
  EXPECT_EQ(exec_.kills()[0].key, "slow-1/a/1");
  EXPECT_EQ(exec_.kills()[0].why, "timed out after 30s; killing its process group");
  EXPECT_EQ(tries(id, "a")[0].state, TryState::TimedOut);  // recorded at the deadline
  EXPECT_EQ(task(id, "a").state, TaskState::Running);      // until its end is heard

  TimePoint killed = started + seconds(31);
  clock_.set(killed);
  exec_.finish_killed("slow-1/a/1", SIGTERM);
  poll();
  TryRecord t = tries(id, "a")[0];
  EXPECT_EQ(t.state, TryState::TimedOut);
  EXPECT_EQ(t.error, "timed out after 30s");
  EXPECT_EQ(t.signal, SIGTERM);
  EXPECT_EQ(t.ended_at, killed);
  TaskInstance a = task(id, "a");
  EXPECT_EQ(a.state, TaskState::UpForRetry);
  EXPECT_EQ(a.next_try_at, killed + seconds(5));

  EXPECT_EQ(pump_at_wake(), killed + seconds(5));
  ASSERT_EQ(exec_.started_keys(), (Strings{"slow-1/a/1", "slow-1/a/2"}));
  EXPECT_EQ(exec_.kills().size(), 1u);
  exec_.finish_like_mock("slow-1/a/2");
  poll();
  EXPECT_EQ(run(id).state, RunState::Success);
}

TEST_F(EngineTest, ATimedOutTryWithoutRetriesFailsItsRunTimedOut) {
  start_engine();
  std::string id = trigger(dag(R"(dag: slow
tasks:
  a: {type: mock, timeout: 2m}
  b: {type: mock, needs: [a]}
)"));
  pump_at_wake();
  ASSERT_EQ(exec_.kills().size(), 1u);
  EXPECT_EQ(exec_.kills()[0].why, "timed out after 2m; killing its process group");
  exec_.finish_killed("slow-1/a/1", SIGKILL);
  poll();
  EXPECT_EQ(task(id, "a").state, TaskState::TimedOut);
  EXPECT_EQ(task(id, "b").state, TaskState::UpstreamFailed);
  EXPECT_EQ(run(id).state, RunState::Failed);
}

// --- SLA -------------------------------------------------------------------------------------

// The Engine has no alert seam but the real AlertDispatcher: its channel "file" runs `run`
// (a child process, on the dispatcher's thread) with the alert's JSON line on stdin.
void alerts_to(std::unique_ptr<AlertDispatcher>& alerts, const Clock& clock,
               std::vector<std::string> run) {
  ServerConfig config;
  AlertChannel ch;
  ch.name = "file";
  ch.type = AlertChannel::Type::Command;
  ch.run = std::move(run);
  config.alerts.channels["file"] = ch;
  config.alerts.retries = 0;
  alerts = std::make_unique<AlertDispatcher>(config, &clock);
}

constexpr const char* kLate = R"(dag: late
sla: 1h
alerts: {on_sla_miss: [file]}
tasks:
  a: {type: mock}
)";

TEST_F(EngineTest, ARunNotFinishedSlaAfterItsScheduledTimeRaisesOneSlaMiss) {
  fs::path out = dir_ / "alerts.jsonl";
  alerts_to(alerts_, clock_, {"/bin/sh", "-c", "cat >> \"$0\"", out.string()});
  start_engine();
  std::string id = trigger(dag(kLate));
  TimePoint created = run(id).created_at;
  ASSERT_EQ(engine_->next_wake(), created + hours(1));
  pump_at(created + hours(1) - Micros(1));
  EXPECT_EQ(alerts_->pending(), 0u);
  EXPECT_EQ(alerts_->deliveries().size(), 0u);

  pump_at_wake();
  pump_at(created + hours(3));  // still not finished: no second alert
  exec_.finish_like_mock("late-1/a/1");
  poll();
  EXPECT_EQ(run(id).state, RunState::Success);
  alerts_->shutdown(std::chrono::seconds(10));  // delivers what is queued

  json d = alerts_->deliveries();
  ASSERT_EQ(d.size(), 1u) << d.dump(2);
  EXPECT_EQ(d[0]["kind"], "sla_miss");
  EXPECT_EQ(d[0]["channel"], "file");
  EXPECT_EQ(d[0]["run_id"], id);
  EXPECT_EQ(d[0]["ok"], true) << d[0].dump();
  std::ifstream in(out);
  std::string line, extra;
  ASSERT_TRUE(std::getline(in, line));
  EXPECT_FALSE(std::getline(in, extra)) << extra;
  json payload = json::parse(line, nullptr, false);
  ASSERT_FALSE(payload.is_discarded()) << line;
  EXPECT_EQ(payload["kind"], "sla_miss");
  EXPECT_EQ(payload["dag"], "late");
  EXPECT_EQ(payload["message"],
            "run late-1 is not finished 1h after its scheduled time (2026-11-25T09:00:00Z)");
}

TEST_F(EngineTest, ARunFinishedWithinItsSlaRaisesNothing) {
  alerts_to(alerts_, clock_, {"/bin/true"});
  start_engine();
  std::string id = trigger(dag(kLate));
  clock_.advance(minutes(59));
  exec_.finish_like_mock("late-1/a/1");
  poll();
  EXPECT_EQ(run(id).state, RunState::Success);
  pump_at(at("2026-11-25T12:00:00Z"));
  EXPECT_EQ(alerts_->pending(), 0u);
  alerts_->shutdown(std::chrono::seconds(10));
  EXPECT_EQ(alerts_->deliveries().size(), 0u);
}

// --- A wall clock that jumps -----------------------------------------------------------------

// Durations count on the monotonic clock: a wall clock set hours forward ends no timeout,
// starts no retry and raises no SLA miss before its time, and one set back stretches none.
TEST_F(EngineTest, AWallClockJumpNeitherEndsNorStretchesTimeoutsRetriesOrSlas) {
  fs::path out = dir_ / "alerts.jsonl";
  alerts_to(alerts_, clock_, {"/bin/sh", "-c", "cat >> \"$0\"", out.string()});
  start_engine();
  std::string id = trigger(dag(R"(dag: jumpy
sla: 1h
alerts: {on_sla_miss: [file]}
tasks:
  slow: {type: mock, timeout: 30m}
  flaky: {type: mock, retries: 1, retry_delay: 10m}
)"));
  ASSERT_EQ(exec_.starts().size(), 2u);
  exec_.finish("jumpy-1/flaky/1", 1, FakeExecutor::result_json(1));
  poll();
  ASSERT_EQ(task(id, "flaky").state, TaskState::UpForRetry);

  // Forward by three hours: past the timeout, the retry and the SLA on the wall clock.
  clock_.jump(hours(3));
  engine_->pump();
  poll();
  EXPECT_TRUE(exec_.kills().empty());
  EXPECT_EQ(exec_.starts().size(), 2u);
  EXPECT_EQ(alerts_->pending() + alerts_->deliveries().size(), 0u);

  // Back by five hours, then the retry's ten minutes pass: it starts on time.
  clock_.jump(-hours(5));
  clock_.advance(minutes(10));
  engine_->pump();
  poll();
  ASSERT_EQ(exec_.starts().size(), 3u);
  EXPECT_EQ(exec_.starts().back().try_number, 2);

  // Twenty more minutes: the timeout's thirty have passed, not one more.
  clock_.advance(minutes(20) - Micros(1));
  engine_->pump();
  poll();
  EXPECT_TRUE(exec_.kills().empty());
  clock_.advance(Micros(1));
  engine_->pump();
  poll();
  ASSERT_EQ(exec_.kills().size(), 1u);
  EXPECT_EQ(exec_.kills()[0].why, "timed out after 30m; killing its process group");

  // The SLA's hour: due after sixty minutes of time, whatever the wall clock says.
  clock_.advance(minutes(30) - Micros(1));
  engine_->pump();
  poll();
  EXPECT_EQ(alerts_->pending() + alerts_->deliveries().size(), 0u);
  clock_.advance(Micros(1));
  engine_->pump();
  poll();
  alerts_->shutdown(std::chrono::seconds(10));
  json d = alerts_->deliveries();
  ASSERT_EQ(d.size(), 1u) << d.dump(2);
  EXPECT_EQ(d[0]["kind"], "sla_miss");
}

// --- max_active_runs -------------------------------------------------------------------------

TEST_F(EngineTest, AQueuedRunStartsInThePumpThatEndsTheActiveOne) {
  start_engine();
  DagPtr d = dag(R"(dag: serial
max_active_runs: 1
tasks:
  a: {type: mock}
)");
  std::string first = trigger(d);
  std::string second = trigger(d);
  ASSERT_EQ(exec_.started_keys(), Strings{"serial-1/a/1"});
  EXPECT_EQ(run(first).state, RunState::Running);
  EXPECT_EQ(run(second).state, RunState::Queued);
  EXPECT_EQ(task(second, "a").state, TaskState::Pending);
  // More pumps change nothing while the first runs.
  pump_at(clock_.now() + minutes(5));
  EXPECT_EQ(exec_.starts().size(), 1u);
  EXPECT_EQ(run(second).state, RunState::Queued);

  // Observers hear of a run's end after the pump's commit and starts: what the executor
  // has been asked by then was started by the same pump.
  Strings started_when_first_ended;
  engine_->on_run_change([&](const std::string& run_id, RunState state) {
    if (run_id == first && state == RunState::Success)
      started_when_first_ended = exec_.started_keys();
  });
  exec_.finish_like_mock("serial-1/a/1");
  poll();
  EXPECT_EQ(started_when_first_ended, (Strings{"serial-1/a/1", "serial-2/a/1"}));
  EXPECT_EQ(run(first).state, RunState::Success);
  EXPECT_EQ(run(second).state, RunState::Running);
  EXPECT_EQ(run(second).started_at, run(first).ended_at);
}

// --- Cancel ----------------------------------------------------------------------------------

TEST_F(EngineTest, CancelKillsRunningTriesAndCancelsEveryUnfinishedTask) {
  start_engine();
  std::string id = trigger(dag(R"(dag: big
tasks:
  a: {type: mock}
  b: {type: mock}
  c: {type: mock, needs: [a]}
)"));
  ASSERT_EQ(exec_.started_keys(), (Strings{"big-1/a/1", "big-1/b/1"}));
  Status s = engine_->cancel(id, "bob");
  ASSERT_TRUE(s.ok()) << s.message();
  poll();
  ASSERT_EQ(exec_.kills().size(), 2u);
  std::map<std::string, std::string> kills;
  for (auto& k : exec_.kills()) kills[k.key] = k.why;
  EXPECT_EQ(kills, (std::map<std::string, std::string>{
                       {"big-1/a/1", "run big-1 cancelled by bob; killing its process group"},
                       {"big-1/b/1", "run big-1 cancelled by bob; killing its process group"}}));
  EXPECT_EQ(run(id).state, RunState::Cancelled);
  EXPECT_EQ(run(id).ended_at, clock_.now());
  EXPECT_EQ(task_states(id), (std::map<std::string, std::string>{
                                 {"a", "cancelled"}, {"b", "cancelled"}, {"c", "cancelled"}}));

  // The killed tries end; they are recorded cancelled and nothing else starts.
  exec_.finish_killed("big-1/a/1");
  exec_.finish_killed("big-1/b/1");
  poll();
  for (const char* t : {"a", "b"}) {
    SCOPED_TRACE(t);
    ASSERT_EQ(tries(id, t).size(), 1u);
    EXPECT_EQ(tries(id, t)[0].state, TryState::Cancelled);
    EXPECT_EQ(tries(id, t)[0].error, "cancelled");
    EXPECT_TRUE(tries(id, t)[0].ended_at.has_value());
  }
  EXPECT_EQ(task(id, "a").state, TaskState::Cancelled);
  EXPECT_EQ(exec_.starts().size(), 2u);
  EXPECT_EQ(engine_->active_runs(), 0u);

  Status again = engine_->cancel(id, "bob");
  EXPECT_EQ(again.message(), "run 'big-1' is already cancelled");
  EXPECT_EQ(again.error().code, Errc::Conflict);
  Status unknown = engine_->cancel("nope-1", "bob");
  EXPECT_EQ(unknown.message(), "no run 'nope-1'");
  EXPECT_EQ(unknown.error().code, Errc::NotFound);
}

TEST_F(EngineTest, CancelOfAFinishedRunIsAConflict) {
  start_engine();
  std::string id = trigger(dag("dag: quick\ntasks:\n  a: {type: mock}\n"));
  exec_.finish_like_mock("quick-1/a/1");
  poll();
  ASSERT_EQ(run(id).state, RunState::Success);
  Status s = engine_->cancel(id, "bob");
  EXPECT_EQ(s.message(), "run 'quick-1' is already success");
  EXPECT_EQ(s.error().code, Errc::Conflict);
  EXPECT_TRUE(exec_.kills().empty());
  EXPECT_EQ(run(id).state, RunState::Success);
}

// --- Store failures --------------------------------------------------------------------------

constexpr const char* kOneTask = "dag: one\ntasks:\n  a: {type: mock}\n";

TEST_F(EngineTest, AFailedCommitStartsNothing) {
  start_engine();
  DagPtr d = dag(kOneTask);
  engine_->add_dag(d);
  auto id = engine_->trigger("one", json::object(), "alice");  // its own commit
  ASSERT_TRUE(id.ok()) << id.message();
  store_.fail_next_commit();
  poll();  // the pump that would start a/1: its commit fails
  EXPECT_EQ(store_.failed_commits(), 1);
  EXPECT_TRUE(exec_.starts().empty());
  EXPECT_EQ(run(*id).state, RunState::Queued);
  EXPECT_EQ(task(*id, "a").state, TaskState::Pending);
  EXPECT_TRUE(tries(*id, "a").empty());
}

// A failed commit leaves memory as the store has it (the runs it touched are read back), so
// the next pump starts the try the failed one could not.
TEST_F(EngineTest, AfterAFailedCommitTheNextPumpStartsTheTry) {
  start_engine();
  engine_->add_dag(dag(kOneTask));
  auto id = engine_->trigger("one", json::object(), "alice");
  ASSERT_TRUE(id.ok()) << id.message();
  store_.fail_next_commit();
  poll();
  ASSERT_TRUE(exec_.starts().empty());
  pump_at_wake();  // the Engine retries a second later
  ASSERT_EQ(exec_.started_keys(), Strings{"one-1/a/1"});
  EXPECT_EQ(task(*id, "a").state, TaskState::Running);
  EXPECT_EQ(tries(*id, "a").size(), 1u);
}

// A try's end heard by a pump whose commit fails is heard again by the next pump.
TEST_F(EngineTest, ATryEndHeardByAFailedCommitIsRecordedByTheNextPump) {
  start_engine();
  std::string id = trigger(dag(kOneTask));
  ASSERT_EQ(exec_.started_keys(), Strings{"one-1/a/1"});
  store_.fail_next_commit();
  exec_.finish_like_mock("one-1/a/1");
  poll();  // this pump's commit fails
  ASSERT_EQ(store_.failed_commits(), 1);
  EXPECT_EQ(tries(id, "a")[0].state, TryState::Running);
  pump_at_wake();
  EXPECT_EQ(tries(id, "a")[0].state, TryState::Success);
  EXPECT_EQ(run(id).state, RunState::Success);
}

// A cancel whose commit fails changes nothing (the caller hears the error) and can be
// retried.
TEST_F(EngineTest, ACancelWhoseCommitFailsChangesNothingAndCanBeRetried) {
  start_engine();
  std::string id = trigger(dag(kOneTask));
  store_.fail_next_commit();
  Status s = engine_->cancel(id, "bob");
  EXPECT_EQ(s.message(), "fake: commit failed (fail_next_commit)");
  EXPECT_EQ(run(id).state, RunState::Running);
  EXPECT_TRUE(exec_.kills().empty());
  Status again = engine_->cancel(id, "bob");
  ASSERT_TRUE(again.ok()) << again.message();
  poll();
  EXPECT_EQ(run(id).state, RunState::Cancelled);
  EXPECT_EQ(exec_.kills().size(), 1u);
}

// A failed write inside the pump's transaction rolls it back: nothing the store did not
// record is started.
TEST_F(EngineTest, AFailedWriteStartsNothing) {
  start_engine();
  engine_->add_dag(dag(kOneTask));
  auto id = engine_->trigger("one", json::object(), "alice");
  ASSERT_TRUE(id.ok()) << id.message();
  store_.fail_writes(true);
  poll();
  EXPECT_TRUE(exec_.starts().empty());
  store_.fail_writes(false);
  EXPECT_TRUE(tries(*id, "a").empty());
}

// --- Recovery --------------------------------------------------------------------------------

TEST_F(EngineTest, ANewEngineAdoptsTheTriesAnEarlierOneLeftRunning) {
  start_engine();
  std::string id = trigger(dag(kOneTask));
  ASSERT_EQ(exec_.started_keys(), Strings{"one-1/a/1"});
  std::string try_dir = tries(id, "a")[0].try_dir;
  engine_.reset();  // the daemon goes; its try runs on

  start_engine();  // recovery: the run and its DAG version come from the store
  ASSERT_EQ(exec_.adopts().size(), 1u);
  EXPECT_EQ(exec_.adopts()[0].key, "one-1/a/1");
  EXPECT_EQ(exec_.adopts()[0].try_dir, try_dir);
  EXPECT_EQ(exec_.starts().size(), 1u);  // not started again
  exec_.finish("one-1/a/1", 0, FakeExecutor::result_json(0, "", {{"rows", 7}}));
  poll();
  EXPECT_EQ(run(id).state, RunState::Success);
  EXPECT_EQ(tries(id, "a")[0].state, TryState::Success);
  EXPECT_EQ(*store_.values_of(id, "a", 1), (json{{"rows", 7}}));
}

// --- Templates -------------------------------------------------------------------------------

// The DAG of engine_e2e_test's ATaskThatCannotBeRenderedFailsItsRunAtOnce, on the fakes.
TEST_F(EngineTest, AnUnrenderableTemplateFailsItsTaskAtOnceWithoutStartingIt) {
  start_engine();
  std::string id = trigger(dag(R"(dag: unrenderable
tasks:
  train: {type: mock, with: {values: {auc: 0.9}, exit_code: 3}}
  report:
    needs: [train]
    trigger_rule: all_done
    run: [echo, "{{ outputs.train.auc }}"]
  after: {run: [true], needs: [report]}
)"));
  ASSERT_EQ(exec_.started_keys(), Strings{"unrenderable-1/train/1"});
  exec_.finish_like_mock("unrenderable-1/train/1");  // exit 3: its values are not kept
  poll();
  EXPECT_EQ(exec_.started_keys(), Strings{"unrenderable-1/train/1"});  // report never starts
  EXPECT_EQ(task(id, "train").state, TaskState::Failed);
  EXPECT_EQ(task(id, "report").state, TaskState::Failed);
  EXPECT_EQ(task(id, "after").state, TaskState::UpstreamFailed);
  EXPECT_EQ(run(id).state, RunState::Failed);
  auto report = tries(id, "report");
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0].state, TryState::Failed);
  EXPECT_NE(report[0].error.find("outputs.train.auc"), std::string::npos) << report[0].error;
  EXPECT_EQ(report[0].ended_at, clock_.now());
  EXPECT_EQ(tries(id, "train")[0].exit_code, 3);
}

// --- The executor contract -------------------------------------------------------------------

// A start the executor refuses fails that try at once with its message, heard by the next
// pump (never written outside one); the run moves on: downstream follows the failure.
TEST_F(EngineTest, AStartTheExecutorRefusesFailsTheTryWithItsMessageAndTheRunMovesOn) {
  start_engine();
  exec_.refuse_starts("capacity exceeded: no GPU host free");
  std::string id = trigger(dag(R"(dag: refused
tasks:
  a: {type: mock, retries: 2}
  b: {type: mock, needs: [a]}
  c: {type: mock}
)"));
  EXPECT_TRUE(exec_.starts().empty());
  EXPECT_EQ(exec_.refused(), (Strings{"refused-1/a/1", "refused-1/c/1"}));
  auto a = tries(id, "a");
  ASSERT_EQ(a.size(), 1u);  // failed, not lost: a refusal is not retried as a vanished try
  EXPECT_EQ(a[0].state, TryState::Failed);
  EXPECT_EQ(a[0].error, "capacity exceeded: no GPU host free");
  EXPECT_EQ(a[0].ended_at, clock_.now());
  EXPECT_EQ(a[0].host, "");  // it ran nowhere
  EXPECT_EQ(task(id, "a").state, TaskState::UpForRetry);
  // Taken again: the retry starts and the run goes on.
  exec_.refuse_starts("");
  pump_at_wake();
  ASSERT_EQ(exec_.started_keys(), (Strings{"refused-1/a/2"}));
  exec_.finish_like_mock("refused-1/a/2");
  poll();
  ASSERT_EQ(exec_.started_keys(), (Strings{"refused-1/a/2", "refused-1/b/1"}));
  exec_.finish_like_mock("refused-1/b/1");
  poll();
  EXPECT_EQ(task(id, "c").state, TaskState::Failed);  // no retries: failed by its refusal
  EXPECT_EQ(tries(id, "c")[0].error, "capacity exceeded: no GPU host free");
  EXPECT_EQ(run(id).state, RunState::Failed);
}

// The executor's capacity bounds the tries given to it, whatever the Engine's own slots.
TEST_F(EngineTest, AnExecutorWithCapacityOneNeverGetsTwoTriesAtOnce) {
  Capacity one;
  one.total = 1;
  exec_.set_capacity(one);
  EngineOptions o;
  o.global_slots = 4;
  start_engine(o);
  std::string id = trigger(dag(R"(dag: wide
tasks:
  a: {type: mock}
  b: {type: mock}
  c: {type: mock}
)"));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(exec_.running().size(), 1u);
    exec_.finish_like_mock(exec_.running()[0]);
    poll();
  }
  EXPECT_EQ(exec_.starts().size(), 3u);
  EXPECT_EQ(exec_.max_running(), 1);
  EXPECT_EQ(run(id).state, RunState::Success);
}

// A per-queue capacity: the smaller of it and the Engine's queue slots wins.
TEST_F(EngineTest, AnExecutorsQueueCapacityBoundsThatQueueOnly) {
  Capacity gpu;
  gpu.queue["gpu"] = 1;
  exec_.set_capacity(gpu);
  EngineOptions o;
  o.queue_slots["gpu"] = 3;
  start_engine(o);
  trigger(dag(R"(dag: queues
tasks:
  g1: {type: mock, queue: gpu, resources: {gpu: 1}}
  g2: {type: mock, queue: gpu, resources: {gpu: 1}}
  c1: {type: mock}
  c2: {type: mock}
)"));
  EXPECT_EQ(exec_.running().size(), 3u);  // one gpu try and both default ones
  const TrySpec* g = nullptr;
  int gpu_running = 0;
  for (auto& key : exec_.running())
    if (exec_.spec(key)->queue == "gpu") {
      ++gpu_running;
      g = exec_.spec(key);
    }
  EXPECT_EQ(gpu_running, 1);
  ASSERT_NE(g, nullptr);  // the queue and resources reach the executor
  EXPECT_EQ(g->resources.gpu, 1);
  EXPECT_TRUE(g->labels.empty());
}

// Where a try ran is the executor's to say: the Started facts are in the try record once
// the next pump has run (a Started makes one within a second of real time), with the
// handle; the end keeps them.
TEST_F(EngineTest, TheStartedFactsAndHandleAreRecordedInTheTry) {
  start_engine();
  std::string id = trigger(dag(kOneTask));
  EXPECT_EQ(tries(id, "a")[0].host, "");  // not started yet: nowhere
  EXPECT_EQ(tries(id, "a")[0].facts, json::object());
  exec_.report_started("one-1/a/1");
  poll();
  EXPECT_EQ(tries(id, "a")[0].facts, json::object());  // no pump yet: in memory only
  engine_->pump();
  TryRecord a = tries(id, "a")[0];
  std::string handle = FakeExecutor::handle_of("one-1/a/1", a.try_dir);
  EXPECT_EQ(a.host, "fake-host");
  EXPECT_EQ(a.facts, (json{{"executor", "fake"}, {"hostname", "fake-host"}, {"handle", handle}}));
  EXPECT_EQ(a.pid, 4000);
  exec_.finish_like_mock("one-1/a/1");
  poll();
  EXPECT_EQ(tries(id, "a")[0].state, TryState::Success);
  EXPECT_EQ(tries(id, "a")[0].facts["handle"], handle);
  EXPECT_EQ(tries(id, "a")[0].host, "fake-host");
}

// A restarted Engine gives the executor back the handle the try's Started gave.
TEST_F(EngineTest, AdoptionGetsTheHandleTheStartedEventGave) {
  start_engine();
  std::string id = trigger(dag(kOneTask));
  exec_.report_started("one-1/a/1");
  engine_->pump();
  std::string handle = FakeExecutor::handle_of("one-1/a/1", tries(id, "a")[0].try_dir);
  engine_.reset();  // the daemon goes; its try runs on

  start_engine();
  ASSERT_EQ(exec_.adopts().size(), 1u);
  EXPECT_EQ(exec_.adopts()[0].key, "one-1/a/1");
  EXPECT_EQ(exec_.adopts()[0].handle, handle);
  exec_.finish("one-1/a/1", 0, FakeExecutor::result_json(0));
  poll();
  EXPECT_EQ(run(id).state, RunState::Success);
}

// The Service reads a try's log through the executor, with the try's handle.
TEST_F(EngineTest, LogsAreReadThroughTheExecutorWithTheTrysHandle) {
  start_engine();
  std::string id = trigger(dag(kOneTask));
  exec_.report_started("one-1/a/1");
  poll();
  exec_.set_log("one-1/a/1", "hello world\n");
  auto all = engine_->read_log(id, "a", std::nullopt, 0, 1 << 20);
  ASSERT_TRUE(all.ok()) << all.message();
  EXPECT_EQ(all->bytes, "hello world\n");
  EXPECT_EQ(all->size, 12u);
  auto tail = engine_->read_log(id, "a", 1, 6, 3);
  ASSERT_TRUE(tail.ok()) << tail.message();
  EXPECT_EQ(tail->bytes, "wor");
  EXPECT_EQ(tail->next_offset, 9u);
  ASSERT_FALSE(exec_.log_reads().empty());
  EXPECT_EQ(exec_.log_reads().back().second,
            FakeExecutor::handle_of("one-1/a/1", tries(id, "a")[0].try_dir));
  auto none = engine_->read_log(id, "b", std::nullopt, 0, 10);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::NotFound);
  EXPECT_EQ(none.message(), "no log for task 'b' of run 'one-1'");
}

}  // namespace
}  // namespace drover
