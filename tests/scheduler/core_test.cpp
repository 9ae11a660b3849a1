// The scheduler core without side effects: readiness, slots, retries, cancel, cron due
// runs, and a randomized simulation that prints its seed.
#include "scheduler/core.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "common/time.hpp"
#include "plugins/task_type.hpp"
#include "scheduler/dag_loader.hpp"
#include "tests/scheduler/core_reference.hpp"

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
  for (auto& t : dag->tasks)
    v.tasks[t.id] = TaskInstance{v.run.id, t.id, TaskState::Pending, 0, {}};
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
  auto v =
      view_of(load("dag: r\ntasks:\n  a: {run: [true]}\n  ok: {run: [true], needs: [a]}\n"
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
  auto v =
      view_of(load("dag: r\ntasks:\n  a: {run: [true]}\n"
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
  auto dag = load(
      "dag: r\ntasks:\n  a: {run: [true], retries: 9, retry_delay: 30s, max_retry_delay: 2m}\n");
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
  auto dag =
      load("dag: s\nschedule: '0 3 * * *'\ntimezone: Europe/Moscow\ntasks:\n  a: {run: [true]}\n");
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

// ---- the incremental core (RunProgress) ------------------------------------------------

TEST(CoreTest, TheLoaderIndexesTheGraph) {
  auto dag = load(
      "dag: g\ntasks:\n  a: {run: [true]}\n  b: {run: [true], needs: [a], queue: gpu}\n"
      "  c: {run: [true], needs: [a, b, a]}\n");
  ASSERT_TRUE(dag->graph_indexed);
  const TaskSpec& a = *dag->task("a");
  const TaskSpec& c = *dag->task("c");
  EXPECT_EQ(a.index, 0u);
  EXPECT_EQ(a.downstream, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(c.upstream, (std::vector<uint32_t>{0, 1}));  // a duplicate need counts once
  EXPECT_EQ(dag->queues, (std::vector<std::string>{"default", "gpu"}));
  EXPECT_EQ(dag->task("b")->queue_index, 1u);
}

TEST(CoreTest, AHandBuiltDagIsIndexedOnACopy) {
  auto dag = std::make_shared<DagSpec>();
  dag->id = "h";
  dag->tasks.resize(2);
  dag->tasks[0].id = "a";
  dag->tasks[1].id = "b";
  dag->tasks[1].needs = {"a"};
  RunView v = view_of(dag);
  RunProgress p(dag, v.run.id, v.run.state, v.tasks);
  Slots slots;
  RunStep s = p.step(kNow, slots, true);
  ASSERT_EQ(s.starts.size(), 1u);
  EXPECT_EQ(s.starts[0].task, "a");
  EXPECT_FALSE(dag->graph_indexed);
  p.finish(*p.index_of("a"), TryEnd::Success, kNow);
  s = p.step(kNow, slots, true);
  ASSERT_EQ(s.starts.size(), 1u);
  EXPECT_EQ(s.starts[0].task, "b");
}

TEST(CoreTest, AStepTouchesOnlyTheDownstreamOfWhatChanged) {
  // A 100,000-task chain (built by hand: more than a DAG file may hold): each step after a
  // finish updates exactly the finished task's successor, and a run with nothing fed
  // reports no changes.
  auto built = std::make_shared<DagSpec>();
  built->id = "long";
  built->tasks.resize(100000);
  for (size_t i = 0; i < built->tasks.size(); ++i) {
    built->tasks[i].id = "t" + std::to_string(i);
    if (i) built->tasks[i].needs = {"t" + std::to_string(i - 1)};
  }
  index_graph(*built);
  DagPtr dag = built;
  RunView v = view_of(dag);
  RunProgress p(dag, v.run.id, v.run.state, v.tasks);
  Slots slots;
  RunStep s = p.step(kNow, slots, true);
  ASSERT_EQ(s.starts.size(), 1u);
  EXPECT_FALSE(p.has_changes(kNow));
  for (size_t i = 0; i + 1 < dag->tasks.size(); ++i) {
    p.finish(i, TryEnd::Success, kNow);
    EXPECT_TRUE(p.has_changes(kNow));
    s = p.step(kNow, slots, true);
    ASSERT_EQ(s.starts.size(), 1u);
    ASSERT_EQ(s.updates.size(), 1u);
    ASSERT_EQ(s.starts[0].task, dag->tasks[i + 1].id);
    ASSERT_FALSE(s.run_state.has_value());
  }
  p.finish(dag->tasks.size() - 1, TryEnd::Success, kNow);
  s = p.step(kNow, slots, true);
  EXPECT_EQ(s.run_state, RunState::Success);
}

TEST(CoreTest, ArmedTasksAreHeldAndStartOnlyWhenTheirUpstreamSucceeded) {
  // a -> b -> c, and d needs a and x (x not finished): b is armable after a, c after the
  // held b, d after nothing (two unfinished upstreams); a held task is never started by a
  // step, and start_now starts it only once its upstream succeeded.
  auto dag = load(
      "dag: h\ntasks:\n  a: {run: [true]}\n  b: {run: [true], needs: [a]}\n"
      "  c: {run: [true], needs: [b]}\n  x: {run: [sleep, '9']}\n"
      "  d: {run: [true], needs: [a, x]}\n  e: {run: [true], needs: [a], trigger_rule: "
      "all_done}\n");
  RunView v = view_of(dag);
  RunProgress p(dag, v.run.id, v.run.state, v.tasks);
  Slots slots;
  RunStep s = p.step(kNow, slots, true);
  ASSERT_EQ(s.starts.size(), 2u);  // a and x
  size_t a = *p.index_of("a"), b = *p.index_of("b"), c = *p.index_of("c");
  EXPECT_EQ(p.armable_after(a), std::vector<size_t>{b});  // not d (x runs), not e (all_done)
  EXPECT_TRUE(p.armable_after(b).empty());                // b is neither running nor held
  p.hold(b, true);
  EXPECT_EQ(p.armable_after(b), std::vector<size_t>{c});
  EXPECT_TRUE(p.armable_after(a).empty());  // b is held already
  EXPECT_FALSE(p.start_now(b, 1));          // a has not ended: released, still pending
  EXPECT_EQ(p.instance(b).state, TaskState::Pending);
  p.hold(b, true);
  p.finish(a, TryEnd::Success, kNow);
  s = p.step(kNow, slots, true);
  for (auto& st : s.starts) EXPECT_NE(st.task, "b") << "a held task was started by a step";
  EXPECT_TRUE(p.start_now(b, 1));
  EXPECT_EQ(p.instance(b).state, TaskState::Running);
  EXPECT_EQ(p.instance(b).try_number, 1);
  EXPECT_FALSE(p.start_now(b, 2));  // running already
  // A held task whose upstream failed is released to the cascade, never started.
  p.hold(c, true);
  p.finish(b, TryEnd::Failed, kNow);
  EXPECT_FALSE(p.start_now(c, 1));
  s = p.step(kNow, slots, true);
  EXPECT_EQ(p.instance(c).state, TaskState::UpstreamFailed);
}

std::string describe(const RunStep& s) {
  std::string out;
  for (auto& u : s.updates)
    out += "update " + u.task + " " + to_string(u.state) + " try " + std::to_string(u.try_number) +
           (u.next_try_at ? " at " + format_iso_utc(*u.next_try_at) : "") + "\n";
  for (auto& st : s.starts)
    out += "start " + st.task + " try " + std::to_string(st.try_number) + "\n";
  if (s.run_state) out += std::string("run ") + to_string(*s.run_state) + "\n";
  if (s.wake_at) out += "wake " + format_iso_utc(*s.wake_at) + "\n";
  return out;
}

// Decisions compared as data: updates as a set (by task), starts in order.
std::string canonical(RunStep s) {
  std::sort(s.updates.begin(), s.updates.end(),
            [](const TaskInstance& a, const TaskInstance& b) { return a.task < b.task; });
  return describe(s);
}

std::string slots_text(const Slots& s) {
  std::string out = "global " + std::to_string(s.global);
  for (auto& [q, n] : s.queue) out += " " + q + " " + std::to_string(n);
  return out;
}

// Random DAGs (needs, trigger rules, retries with backoff, queues with their own slots),
// random try outcomes and cancels: the incremental core, fed only the changes, decides
// exactly what the reference algorithm decides on the whole run, step after step. And a
// run that reports neither changes nor a wish for a slot has nothing to decide.
TEST(CoreTest, IncrementalCoreMatchesTheReferenceOnRandomRuns) {
  unsigned seed = std::random_device{}();
  if (const char* s = std::getenv("DROVER_SEED")) seed = static_cast<unsigned>(std::atoll(s));
  std::printf(
      "CoreTest.IncrementalCoreMatchesTheReferenceOnRandomRuns seed=%u (DROVER_SEED=%u to "
      "replay)\n",
      seed, seed);
  std::mt19937 rng(seed);
  const char* rules[] = {"all_success", "all_success", "all_done", "one_failed"};
  const char* queues[] = {"default", "gpu", "io"};
  const char* delays[] = {"0s", "1s", "5s", "30s"};
  size_t total_steps = 0;
  for (int round = 0; round < 300; ++round) {
    SCOPED_TRACE("seed " + std::to_string(seed) + " round " + std::to_string(round));
    int n = 1 + static_cast<int>(rng() % 40);
    std::string text = "dag: r\ntasks:\n";
    for (int i = 0; i < n; ++i) {
      text += "  t" + std::to_string(i) + ": {run: [true], retries: " + std::to_string(rng() % 3) +
              ", retry_delay: " + delays[rng() % 4] + ", queue: " + queues[rng() % 3] +
              ", trigger_rule: " + rules[rng() % 4];
      std::string needs;
      int p = 1 + static_cast<int>(rng() % 4);  // density of edges
      for (int j = 0; j < i; ++j)
        if (rng() % (2 + 2 * static_cast<unsigned>(p)) == 0)
          needs += (needs.empty() ? "" : ", ") + ("t" + std::to_string(j));
      if (!needs.empty()) text += ", needs: [" + needs + "]";
      text += "}\n";
    }
    auto dag = load(text);
    ASSERT_TRUE(dag) << text;
    RunView ref = view_of(dag);
    RunProgress inc(dag, ref.run.id, ref.run.state, ref.tasks);
    int global_limit = 1 + static_cast<int>(rng() % 4);
    std::map<std::string, int> queue_limit;
    if (rng() % 2) queue_limit["gpu"] = static_cast<int>(rng() % 2) + 1;
    if (rng() % 3 == 0) queue_limit["io"] = 1;
    TimePoint now = kNow;
    std::vector<std::string> running;
    for (int steps = 0; !is_terminal(ref.run.state); ++steps) {
      ASSERT_LT(steps, 5000) << text;
      ++total_steps;
      Slots slots;
      slots.global = global_limit - static_cast<int>(running.size());
      slots.queue = queue_limit;
      for (auto& r : running) {
        auto it = slots.queue.find(dag->task(r)->queue);
        if (it != slots.queue.end()) --it->second;
      }
      bool may_start = ref.run.state == RunState::Running || rng() % 4 != 0;
      Slots slots_ref = slots, slots_inc = slots;
      bool quiet = !inc.has_changes(now) && !(may_start && inc.wants_slot(slots));
      RunStep a = core_reference::step_run(ref, now, slots_ref, may_start);
      RunStep b = inc.step(now, slots_inc, may_start);
      ASSERT_EQ(canonical(a), canonical(b)) << "step " << steps << "\n" << text;
      ASSERT_EQ(slots_text(slots_ref), slots_text(slots_inc));
      if (quiet) {
        ASSERT_TRUE(a.updates.empty() && a.starts.empty() && !a.run_state)
            << "a run with no work decided something: " << describe(a) << text;
      }
      apply(ref, a);
      ASSERT_EQ(ref.run.state, inc.run_state());
      for (auto& st : a.starts) running.push_back(st.task);
      for (size_t i = 0; i < dag->tasks.size(); ++i) {
        const TaskInstance& x = ref.tasks[dag->tasks[i].id];
        const TaskInstance& y = inc.instance(i);
        ASSERT_TRUE(x.state == y.state && x.try_number == y.try_number &&
                    x.next_try_at == y.next_try_at)
            << "task " << x.task << ": " << to_string(x.state) << " vs " << to_string(y.state);
      }
      if (is_terminal(ref.run.state)) break;
      // The next event: a try ends, time passes, or the run is cancelled.
      unsigned pick = rng() % 100;
      if (pick < 2) {
        RunStep ca = core_reference::cancel_run(ref);
        RunStep cb = inc.cancel();
        ASSERT_EQ(canonical(ca), canonical(cb));
        apply(ref, ca);
        ASSERT_EQ(inc.run_state(), RunState::Cancelled);
        break;
      }
      if (!running.empty() && pick < 85) {
        size_t k = rng() % running.size();
        std::string task = running[k];
        running.erase(running.begin() + static_cast<long>(k));
        unsigned e = rng() % 10;
        TryEnd end = e < 5   ? TryEnd::Success
                     : e < 8 ? TryEnd::Failed
                     : e < 9 ? TryEnd::TimedOut
                             : TryEnd::Lost;
        if (rng() % 50 == 0) end = TryEnd::Cancelled;
        finish(ref, task, end, now);
        const TaskInstance& got = inc.finish(*inc.index_of(task), end, now);
        ASSERT_EQ(got.state, ref.tasks[task].state);
        continue;
      }
      if (a.wake_at && (running.empty() || rng() % 2)) {
        now = *a.wake_at;
      } else {
        now += std::chrono::milliseconds(rng() % 3000);
      }
    }
  }
  std::printf("compared %zu steps\n", total_steps);
}

}  // namespace
}  // namespace drover::core
