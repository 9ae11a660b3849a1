// The run model: the states of a run, a task instance and a try, their names (what the
// store keeps and the CLI, API and UI show) and which are final. Every store backend,
// the scheduler core and the clients share this one definition. Pure; thread-safe.
#pragma once

#include <optional>
#include <string_view>

namespace drover {

// Queued: waiting for max_active_runs or its first slot; Running: a task has started.
enum class RunState { Queued, Running, Success, Failed, Cancelled };
// Pending: waiting for upstream (or a slot); UpForRetry: a failed try waits for its retry
// delay; Skipped: a one_failed task whose upstream all succeeded.
enum class TaskState {
  Pending,
  Running,
  Success,
  Failed,
  UpstreamFailed,
  Cancelled,
  TimedOut,
  UpForRetry,
  Skipped
};
// A try's own state: Lost = its process vanished (daemon restart found it gone). Armed =
// handed to the executor to start the moment the try it follows ends in success (a chained
// start, scheduler/engine_impl.hpp); it becomes Running when it starts, and is deleted when
// it never does (nothing ran, so nothing is recorded of it).
enum class TryState { Running, Success, Failed, TimedOut, Cancelled, Lost, Armed };

const char* to_string(RunState s);
const char* to_string(TaskState s);
const char* to_string(TryState s);
// The state named `s` exactly as to_string spells it; nullopt for any other text.
std::optional<RunState> run_state_from(std::string_view s);
std::optional<TaskState> task_state_from(std::string_view s);
std::optional<TryState> try_state_from(std::string_view s);
bool is_terminal(RunState s);
bool is_terminal(TaskState s);  // Success, Failed, UpstreamFailed, Cancelled, TimedOut, Skipped

}  // namespace drover
