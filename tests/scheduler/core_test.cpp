// The scheduler core without side effects: readiness, slots, retries, cancel, cron due
// runs, and a randomized simulation that prints its seed.
#include "scheduler/core.hpp"

#include <gtest/gtest.h>

#include <random>

#include "common/time.hpp"
#include "plugins/task_type.hpp"
#include "scheduler/dag_loader.hpp"

namespace drover::core {
namespace {

TimePoint at(const char* iso) { return parse_iso(iso).value(); }

DagPtr load(const std::string& text) {
  register_builtin_task_types();
  LoadResult r = load_dag_text(text, "test.yaml");
  for (auto& d : r.diagnostics) ADD_FAILURE() << d.str();
  return r.dag;
}

RunView view_of(DagPtr dag) {
  RunView v;
  v.dag = dag;
  v.run.id = dag->id + "-1";
  v.run.dag = dag->id;
  for (auto& t : dag->tasks) v.tasks[t.id] = TaskInstance{v.run.id, t.id, TaskState::Pending, 0, {}};
  return v;
}

void apply(RunView& v, const RunStep& s) {
  for (auto& u : s.updates) v.tasks[u.task] = u;
  if (s.run_state) v.run.state = *s.run_state;
}

void finish(RunView& v, const std::string& task, TryEnd end, TimePoint now) {
  v.tasks[task] = after_try(*v.dag->task(task), v.tasks[task], end, now);
}

const TimePoint kNow = at("2026-11-25T10:00:00Z");

TEST(CoreTest, ChainStartsEachTaskOnlyAfterItsUpstreamSucceeds) {
  auto v = view_of(load("dag: c\ntasks:\n  a: {run: [true]}\n  b: {run: [true], needs: [a]}\n"));
  Slots slots;
  RunStep s = step_run(v, kNow, slots, true);
  ASSERT_EQ(s.starts.size(), 1u);
  EXPECT_EQ(s.starts[0].task, "a");
  EXPECT_EQ(s.starts[0].try_number, 1);
  EXPECT_EQ(s.run_state, RunState::Running);
  apply(v, s);
  EXPECT_TRUE(step_run(v, kNow, slots, true).starts.empty());
  finish(v, "a", TryEnd::Success, kNow);
  s = step_run(v, kNow, slots, true);
  ASSERT_EQ(s.starts.size(), 1u);
  EXPECT_EQ(s.starts[0].task, "b");
  apply(v, s);
  finish(v, "b", TryEnd::Success, kNow);
  s = step_run(v, kNow, slots, true);
  EXPECT_EQ(s.run_state, RunState::Success);
}

TEST(CoreTest, SlotsLimitAFanOutGloballyAndPerQueue) {
  auto v = view_of(load(
      "dag: f\ntasks:\n  a: {run: [true]}\n  b: {run: [true]}\n  c: {run: [true], queue: gpu}\n"
      "  d: {run: [true], queue: gpu}\n"));
  Slots slots;
  slots.global = 3;
  slots.queue["gpu"] = 1;
  RunStep s = step_run(v, kNow, slots, true);
  ASSERT_EQ(s.starts.size(), 3u);
  int gpu = 0;
  for (auto& st : s.starts) gpu += v.dag->task(st.task)->queue == "gpu";
  EXPECT_EQ(gpu, 1);
  EXPECT_EQ(slots.global, 0);
}

TEST(CoreTest, TriggerRulesDecideWhatRunsAfterAFailure) {
  auto v = view_of(load(
      "dag: r\ntasks:\n  a: {run: [true]}\n  ok: {run: [true], needs: [a]}\n"
      "  done: {run: [true], needs: [a], trigger_rule: all_done}\n"
      "  alarm: {run: [true], needs: [a], trigger_rule: one_failed}\n"));
  Slots slots;
  apply(v, step_run(v, kNow, slots, true));
  finish(v, "a", TryEnd::Failed, kNow);
  RunStep s = step_run(v, kNow, slots, true);
  apply(v, s);
  EXPECT_EQ(v.tasks["ok"].state, TaskState::UpstreamFailed);
  EXPECT_EQ(v.tasks["done"].state, TaskState::Running);
  EXPECT_EQ(v.tasks["alarm"].state, TaskState::Running);
}

TEST(CoreTest, OneFailedIsSkippedWhenEverythingSucceeded) {
  auto v = view_of(load(
      "dag: r\ntasks:\n  a: {run: [true]}\n"
      "  alarm: {run: [true], needs: [a], trigger_rule: one_failed}\n"));
  Slots slots;
  apply(v, step_run(v, kNow, slots, true));
  finish(v, "a", TryEnd::Success, kNow);
  RunStep s = step_run(v, kNow, slots, true);
  apply(v, s);
  EXPECT_EQ(v.tasks["alarm"].state, TaskState::Skipped);
  EXPECT_EQ(v.run.state, RunState::Success);
}

TEST(CoreTest, ARetryWaitsForItsBackoffThenStartsANewTry) {
  auto v = view_of(load("dag: r\ntasks:\n  a: {run: [true], retries: 2, retry_delay: 10s}\n"));
  Slots slots;
  apply(v, step_run(v, kNow, slots, true));
  finish(v, "a", TryEnd::Failed, kNow);
  EXPECT_EQ(v.tasks["a"].state, TaskState::UpForRetry);
  RunStep s = step_run(v, kNow + std::chrono::seconds(9), slots, true);
  EXPECT_TRUE(s.starts.empty());
  ASSERT_TRUE(s.wake_at.has_value());
  EXPECT_EQ(*s.wake_at, kNow + std::chrono::seconds(10));
  s = step_run(v, kNow + std::chrono::seconds(10), slots, true);
  ASSERT_EQ(s.starts.size(), 1u);
  EXPECT_EQ(s.starts[0].try_number, 2);
}

TEST(CoreTest, BackoffDoublesEachTryAndIsCapped) {
  auto dag = load("dag: r\ntasks:\n  a: {run: [true], retries: 9, retry_delay: 30s, max_retry_delay: 2m}\n");
  const TaskSpec& t = *dag->task("a");
  EXPECT_EQ(retry_backoff(t, 1), std::chrono::seconds(30));
  EXPECT_EQ(retry_backoff(t, 2), std::chrono::seconds(60));
  EXPECT_EQ(retry_backoff(t, 3), std::chrono::seconds(120));
  EXPECT_EQ(retry_backoff(t, 4), std::chrono::seconds(120));
}

TEST(CoreTest, RetriesExhaustedFailTheTaskAndATimeoutIsRecordedAsSuch) {
  auto dag = load("dag: r\ntasks:\n  a: {run: [true], retries: 1}\n");
  TaskInstance t{"r-1", "a", TaskState::Running, 2, {}};
  EXPECT_EQ(after_try(*dag->task("a"), t, TryEnd::Failed, kNow).state, TaskState::Failed);
  EXPECT_EQ(after_try(*dag->task("a"), t, TryEnd::TimedOut, kNow).state, TaskState::TimedOut);
  t.try_number = 1;
  EXPECT_EQ(after_try(*dag->task("a"), t, TryEnd::Lost, kNow).state, TaskState::UpForRetry);
}

TEST(CoreTest, ARunWaitingForMaxActiveRunsStartsNothing) {
  auto v = view_of(load("dag: m\ntasks:\n  a: {run: [true]}\n"));
  Slots slots;
  RunStep s = step_run(v, kNow, slots, /*may_start=*/false);
  EXPECT_TRUE(s.starts.empty());
  EXPECT_FALSE(s.run_state.has_value());
}

TEST(CoreTest, CancelEndsEveryUnfinishedTask) {
  auto v = view_of(load("dag: c\ntasks:\n  a: {run: [true]}\n  b: {run: [true], needs: [a]}\n"));
  v.tasks["a"].state = TaskState::Success;
  RunStep s = cancel_run(v);
  ASSERT_EQ(s.updates.size(), 1u);
  EXPECT_EQ(s.updates[0].task, "b");
  EXPECT_EQ(s.updates[0].state, TaskState::Cancelled);
  EXPECT_EQ(s.run_state, RunState::Cancelled);
}

TEST(CoreTest, AScheduleFirstSeenWaitsForItsNextTick) {
  auto dag = load("dag: s\nschedule: '0 3 * * MON'\ntasks:\n  a: {run: [true]}\n");
  ScheduleStep st = schedule_dag(*dag, std::nullopt, at("2026-11-25T10:00:00Z"));
  EXPECT_TRUE(st.due.empty());
  EXPECT_EQ(st.last_fire, at("2026-11-23T03:00:00Z"));
  EXPECT_EQ(st.next_fire, at("2026-11-30T03:00:00Z"));
}

TEST(CoreTest, ADueRunCoversThePreviousIntervalAndIsDatedByItsStart) {
  auto dag = load("dag: s\nschedule: '0 3 * * MON'\ntasks:\n  a: {run: [true]}\n");
  ScheduleStep st = schedule_dag(*dag, at("2026-11-23T03:00:00Z"), at("2026-11-30T03:00:01Z"));
  ASSERT_EQ(st.due.size(), 1u);
  EXPECT_EQ(st.due[0].interval_start, at("2026-11-23T03:00:00Z"));
  EXPECT_EQ(st.due[0].interval_end, at("2026-11-30T03:00:00Z"));
  EXPECT_EQ(st.last_fire, at("2026-11-30T03:00:00Z"));
}

TEST(CoreTest, CatchupRunsEveryMissedIntervalOldestFirst) {
  auto dag = load("dag: s\nschedule: '@daily'\ncatchup: true\ntasks:\n  a: {run: [true]}\n");
  ScheduleStep st = schedule_dag(*dag, at("2026-11-20T00:00:00Z"), at("2026-11-23T12:00:00Z"));
  ASSERT_EQ(st.due.size(), 3u);
  EXPECT_EQ(st.due[0].interval_start, at("2026-11-20T00:00:00Z"));
  EXPECT_EQ(st.due[2].interval_end, at("2026-11-23T00:00:00Z"));
}

TEST(CoreTest, WithoutCatchupOnlyTheLatestMissedIntervalRuns) {
  auto dag = load("dag: s\nschedule: '@daily'\ntasks:\n  a: {run: [true]}\n");
  ScheduleStep st = schedule_dag(*dag, at("2026-11-20T00:00:00Z"), at("2026-11-23T12:00:00Z"));
  ASSERT_EQ(st.due.size(), 1u);
  EXPECT_EQ(st.due[0].interval_start, at("2026-11-22T00:00:00Z"));
  EXPECT_EQ(st.due[0].interval_end, at("2026-11-23T00:00:00Z"));
  EXPECT_EQ(st.next_fire, at("2026-11-24T00:00:00Z"));
}

TEST(CoreTest, ScheduleHonoursItsTimeZone) {
  auto dag = load(
      "dag: s\nschedule: '0 3 * * *'\ntimezone: Europe/Moscow\ntasks:\n  a: {run: [true]}\n");
  ScheduleStep st = schedule_dag(*dag, std::nullopt, at("2026-11-25T10:00:00Z"));
  EXPECT_EQ(st.next_fire, at("2026-11-26T00:00:00Z"));  // 03:00 at +03:00
}

// Random DAGs with random outcomes: the core never starts a task before its upstreams
// succeeded (all_success), never starts more than the slots allow, and always ends the run.
TEST(CoreTest, RandomRunsKeepTheInvariants) {
  unsigned seed = std::random_device{}();
  if (const char* s = std::getenv("DROVER_TEST_SEED")) seed = static_cast<unsigned>(std::atoll(s));
  std::printf("CoreTest.RandomRunsKeepTheInvariants seed=%u (DROVER_TEST_SEED to replay)\n", seed);
  std::mt19937 rng(seed);
  for (int round = 0; round < 200; ++round) {
    int n = 1 + static_cast<int>(rng() % 12);
    std::string text = "dag: r\ntasks:\n";
    for (int i = 0; i < n; ++i) {
      text += "  t" + std::to_string(i) + ": {run: [true], retries: " + std::to_string(rng() % 3);
      std::string needs;
      for (int j = 0; j < i; ++j)
        if (rng() % 3 == 0) needs += (needs.empty() ? "" : ", ") + ("t" + std::to_string(j));
      if (!needs.empty()) text += ", needs: [" + needs + "]";
      text += "}\n";
    }
    auto dag = load(text);
    ASSERT_TRUE(dag) << text;
    auto v = view_of(dag);
    TimePoint now = kNow;
    std::vector<std::string> running;
    int steps = 0;
    while (!is_terminal(v.run.state)) {
      ASSERT_LT(++steps, 1000) << "seed " << seed << " round " << round;
      Slots slots;
      slots.global = 3 - static_cast<int>(running.size());
      RunStep s = step_run(v, now, slots, true);
      for (auto& st : s.starts) {
        for (auto& need : dag->task(st.task)->needs)
          ASSERT_EQ(v.tasks[need].state, TaskState::Success) << "seed " << seed;
        running.push_back(st.task);
      }
      apply(v, s);
      ASSERT_LE(running.size(), 3u);
      if (running.empty()) {
        if (s.wake_at) {
          now = *s.wake_at;
        } else if (!s.run_state) {
          ASSERT_TRUE(is_terminal(v.run.state)) << "stuck, seed " << seed;
        }
        continue;
      }
      size_t k = rng() % running.size();
      std::string task = running[k];
      running.erase(running.begin() + static_cast<long>(k));
      TryEnd end = rng() % 3 == 0 ? TryEnd::Failed : TryEnd::Success;
      finish(v, task, end, now);
    }
  }
}

}  // namespace
}  // namespace drover::core
