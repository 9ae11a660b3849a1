// The scheduler core: pure decisions, no side effects (the Nomad habit). Given a run's DAG
// and state and the time, it says which tasks change state and which tries to start;
// given a DAG's schedule state and the time, which runs are due. The daemon commits what
// it returns to the store, then carries it out. The free functions are thread-safe (pure);
// a RunProgress is plain data owned by one thread (the Engine's), not thread-safe.
#pragma once

#include <map>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/dag.hpp"
#include "scheduler/store.hpp"

namespace drover::core {

struct RunView {
  RunRecord run;
  DagPtr dag;
  std::map<std::string, TaskInstance> tasks;  // every task of the DAG
};

// Free concurrency: global and per queue (a queue absent from the map is unlimited).
struct Slots {
  int global = 1 << 30;
  std::map<std::string, int> queue;
  bool take(const std::string& q);
};

struct StartTry {
  std::string task;
  int try_number = 1;
};

struct RunStep {
  std::vector<TaskInstance> updates;  // instances whose state changed
  std::vector<StartTry> starts;       // tries to start now (their instances are in updates)
  std::optional<RunState> run_state;  // set when the run's state changes
  std::optional<TimePoint> wake_at;   // earliest time a waiting retry becomes due
};

enum class TryEnd { Success, Failed, TimedOut, Cancelled, Lost };

// The incremental state of one run (ninja's Plan): the task instances by index
// (TaskSpec::index), per task the number of upstreams not yet terminal and failed
// (Failed, UpstreamFailed, TimedOut, Cancelled), the tasks that want to start per queue
// (ordered by index), a min-heap of retry times and run-level counters. Changes are fed in
// (update(), finish()); step() walks only the downstream of what changed, so its cost is
// independent of the DAG's size (O(changed + their out-edges + starts), times log).
//
// Decisions are those of the one-shot step_run() below on the same state: readiness by
// needs and trigger_rule, UpstreamFailed / Skipped cascades, due retries, slots taken in
// index (topological) order, the run's state.
class RunProgress {
 public:
  // `tasks` must hold an instance of every task of `dag` (a missing one is Pending, try 0).
  // A DagSpec without index_graph() is indexed on a private copy. O(tasks).
  RunProgress(DagPtr dag, std::string run_id, RunState state,
              const std::map<std::string, TaskInstance>& tasks);

  const DagSpec& dag() const { return *dag_; }
  RunState run_state() const { return state_; }
  size_t size() const { return inst_.size(); }
  const TaskInstance& instance(size_t i) const { return inst_[i]; }
  // The index of a task (nullopt: not in this DAG). O(log tasks).
  std::optional<size_t> index_of(std::string_view task) const;

  // Feeds a change made outside the core: `ti` (by ti.task) replaces its instance.
  // Unknown tasks are ignored. Returns false when the task is unknown.
  bool update(const TaskInstance& ti);
  // The latest try of task `i` ended: its instance becomes after_try(...) (when it is not
  // terminal already). Returns the instance as it is now.
  const TaskInstance& finish(size_t i, TryEnd end, TimePoint now);

  // Chained starts (scheduler/engine_impl.hpp). armable_after(u): the Pending tasks whose
  // one unfinished upstream is task `u`, running or held (armed itself), and that start the
  // moment it succeeds
  // (all_success, every other upstream succeeded), ascending. hold(i, true) keeps task `i`
  // from being started by step() (it is armed elsewhere); hold(i, false) lets it be
  // evaluated again. start_now(i, n): the held or ready task `i` starts try `n` now, if it
  // may (Pending and ready by its upstreams); false and nothing changed (but the hold
  // released) otherwise. O(out-edges of u) / O(1) / O(log tasks).
  std::vector<size_t> armable_after(size_t u) const;
  void hold(size_t i, bool on);
  bool start_now(size_t i, int try_number);

  // Advances the run (see step_run). The instances changed and started are applied here
  // and returned in RunStep::updates; a run state returned is applied too.
  RunStep step(TimePoint now, Slots& slots, bool may_start);
  // Cancels every unfinished task and the run (see cancel_run). O(tasks).
  RunStep cancel();

  // True when a step would decide something without a slot: changes fed since the last
  // step, a due retry, or (first step) the initial evaluation.
  bool has_changes(TimePoint now) const;
  // True when some task wants to start and could with `slots` (global and its queue).
  bool wants_slot(const Slots& slots) const;
  // True when some task wants to start (waiting for a slot or for max_active_runs).
  bool has_ready() const { return n_ready_ > 0; }
  // The earliest retry time still in the future as of the last step (nullopt: none).
  std::optional<TimePoint> next_retry() const;

 private:
  void change(size_t i, TaskInstance next);
  void set_ready(size_t i, bool ready);
  int evaluate(size_t i) const;  // a Ready value (core.cpp)

  DagPtr dag_;
  std::string run_id_;
  RunState state_;
  std::vector<TaskInstance> inst_;
  std::vector<uint32_t> waiting_;  // upstreams not terminal
  std::vector<uint32_t> failed_;   // upstreams Failed / UpstreamFailed / TimedOut / Cancelled
  std::vector<char> in_ready_;
  std::vector<char> held_;                 // armed elsewhere: never made ready (hold())
  std::vector<std::set<uint32_t>> ready_;  // per DagSpec::queues index
  size_t n_ready_ = 0;
  using RetryAt = std::pair<TimePoint, uint32_t>;
  std::priority_queue<RetryAt, std::vector<RetryAt>, std::greater<>> retries_;
  std::vector<uint32_t> worklist_;  // Pending tasks whose readiness may have changed
  size_t n_terminal_ = 0, n_not_ok_ = 0, n_not_pending_ = 0;
  bool dirty_ = true;  // changes fed since the last step (at first: every task to evaluate)
};

// One-shot form: the decisions of a step for the whole view, computed by a fresh
// RunProgress (O(tasks); the Engine keeps a RunProgress per run instead). `may_start` is
// false while the run waits for max_active_runs.
RunStep step_run(const RunView& v, TimePoint now, Slots& slots, bool may_start);

// A task instance after its latest try ended: success, a retry (UpForRetry at
// now + backoff) while tries remain, or its final failure state.
TaskInstance after_try(const TaskSpec& spec, TaskInstance t, TryEnd end, TimePoint now);
// Delay before try N+1 after try N failed: retry_delay * 2^(N-1), capped by max_retry_delay.
Micros retry_backoff(const TaskSpec& spec, int failed_try);

// Cancels every unfinished task of a run.
RunStep cancel_run(const RunView& v);

// Cron: a due run covers [interval_start, interval_end); its logical date is the start.
struct DueRun {
  TimePoint interval_start, interval_end;
};
struct ScheduleStep {
  std::vector<DueRun> due;  // oldest first
  TimePoint last_fire;      // the new stored schedule state
  TimePoint next_fire;      // when to wake for this DAG (TimePoint::max(): never)
};
// `last_fire` is the interval end of the last run created (nullopt: never seen; then
// nothing is due before the next tick). With catchup every missed interval is due (at
// most `max_catchup`), else only the latest.
ScheduleStep schedule_dag(const DagSpec& dag, std::optional<TimePoint> last_fire, TimePoint now,
                          size_t max_catchup = 1000);
// The latest tick of `dag`'s schedule at or before `t` (nullopt when none within 30 years).
std::optional<TimePoint> prev_fire(const DagSpec& dag, TimePoint t);

}  // namespace drover::core
