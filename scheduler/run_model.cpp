// The run model's names and terminal states (scheduler/run_model.hpp).
#include "scheduler/run_model.hpp"

#include <array>

namespace drover {

// ---------------------------------------------------------------------------------------
// Enum names: the strings stored in the database and shown by the CLI and the API.

const char* to_string(RunState s) {
  switch (s) {
    case RunState::Queued:
      return "queued";
    case RunState::Running:
      return "running";
    case RunState::Success:
      return "success";
    case RunState::Failed:
      return "failed";
    case RunState::Cancelled:
      return "cancelled";
  }
  return "unknown";
}

const char* to_string(TaskState s) {
  switch (s) {
    case TaskState::Pending:
      return "pending";
    case TaskState::Running:
      return "running";
    case TaskState::Success:
      return "success";
    case TaskState::Failed:
      return "failed";
    case TaskState::UpstreamFailed:
      return "upstream_failed";
    case TaskState::Cancelled:
      return "cancelled";
    case TaskState::TimedOut:
      return "timed_out";
    case TaskState::UpForRetry:
      return "up_for_retry";
    case TaskState::Skipped:
      return "skipped";
  }
  return "unknown";
}

const char* to_string(TryState s) {
  switch (s) {
    case TryState::Running:
      return "running";
    case TryState::Success:
      return "success";
    case TryState::Failed:
      return "failed";
    case TryState::TimedOut:
      return "timed_out";
    case TryState::Cancelled:
      return "cancelled";
    case TryState::Lost:
      return "lost";
    case TryState::Armed:
      return "armed";
  }
  return "unknown";
}

namespace {

template <class E, size_t N>
std::optional<E> enum_from(std::string_view s, const std::array<E, N>& all) {
  for (E e : all) {
    if (s == to_string(e)) return e;
  }
  return std::nullopt;
}

constexpr std::array kRunStates = {RunState::Queued, RunState::Running, RunState::Success,
                                   RunState::Failed, RunState::Cancelled};
constexpr std::array kTaskStates = {
    TaskState::Pending,  TaskState::Running,        TaskState::Success,
    TaskState::Failed,   TaskState::UpstreamFailed, TaskState::Cancelled,
    TaskState::TimedOut, TaskState::UpForRetry,     TaskState::Skipped};
constexpr std::array kTryStates = {TryState::Running,  TryState::Success,   TryState::Failed,
                                   TryState::TimedOut, TryState::Cancelled, TryState::Lost,
                                   TryState::Armed};

}  // namespace

std::optional<RunState> run_state_from(std::string_view s) { return enum_from(s, kRunStates); }
std::optional<TaskState> task_state_from(std::string_view s) { return enum_from(s, kTaskStates); }
std::optional<TryState> try_state_from(std::string_view s) { return enum_from(s, kTryStates); }

bool is_terminal(RunState s) {
  return s == RunState::Success || s == RunState::Failed || s == RunState::Cancelled;
}

bool is_terminal(TaskState s) {
  switch (s) {
    case TaskState::Success:
    case TaskState::Failed:
    case TaskState::UpstreamFailed:
    case TaskState::Cancelled:
    case TaskState::TimedOut:
    case TaskState::Skipped:
      return true;
    default:
      return false;
  }
}

}  // namespace drover
