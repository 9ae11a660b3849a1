// The scheduler core: pure decisions, no side effects (the Nomad habit). Given a run's DAG
// and state and the time, it says which tasks change state and which tries to start;
// given a DAG's schedule state and the time, which runs are due. The daemon commits what
// it returns to the store, then carries it out. Thread-safe (pure functions).
#pragma once

#include <map>
#include <optional>
#include <string>
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
  std::vector<TaskInstance> updates;       // instances whose state changed
  std::vector<StartTry> starts;            // tries to start now (their instances are in updates)
  std::optional<RunState> run_state;       // set when the run's state changes
  std::optional<TimePoint> wake_at;        // earliest time a waiting retry becomes due
};

// Advances one run: readiness by needs and trigger_rule, due retries, slots, and the run's
// own state. `may_start` is false while the run waits for max_active_runs.
RunStep step_run(const RunView& v, TimePoint now, Slots& slots, bool may_start);

enum class TryEnd { Success, Failed, TimedOut, Cancelled, Lost };

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
  std::vector<DueRun> due;     // oldest first
  TimePoint last_fire;         // the new stored schedule state
  TimePoint next_fire;         // when to wake for this DAG (TimePoint::max(): never)
};
// `last_fire` is the interval end of the last run created (nullopt: never seen; then
// nothing is due before the next tick). With catchup every missed interval is due (at
// most `max_catchup`), else only the latest.
ScheduleStep schedule_dag(const DagSpec& dag, std::optional<TimePoint> last_fire, TimePoint now,
                          size_t max_catchup = 1000);
// The latest tick of `dag`'s schedule at or before `t` (nullopt when none within 30 years).
std::optional<TimePoint> prev_fire(const DagSpec& dag, TimePoint t);

}  // namespace drover::core
