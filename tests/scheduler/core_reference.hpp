// The scheduler core's first algorithm, kept as the oracle for the incremental
// core::RunProgress: every step visits every task of the run (O(tasks) per step, std::map
// lookups by name). Tests only (core_test); header-only, pure functions, thread-safe.
#pragma once

#include <map>
#include <string>

#include "scheduler/core.hpp"

namespace drover::core_reference {

using core::RunStep;

namespace detail {

inline bool succeeded(TaskState s) { return s == TaskState::Success || s == TaskState::Skipped; }
inline bool failed(TaskState s) {
  return s == TaskState::Failed || s == TaskState::UpstreamFailed || s == TaskState::TimedOut ||
         s == TaskState::Cancelled;
}

enum class Ready { Wait, Go, UpstreamFailed, Skip };

// The run's task instances with this step's changes laid over them (no copy of the run).
struct Overlay {
  const std::map<std::string, TaskInstance>& base;
  std::map<std::string, TaskInstance> changed;
  const TaskInstance* find(const std::string& id) const {
    auto c = changed.find(id);
    if (c != changed.end()) return &c->second;
    auto b = base.find(id);
    return b == base.end() ? nullptr : &b->second;
  }
};

inline Ready readiness(const TaskSpec& t, const Overlay& tasks) {
  bool all_done = true, all_ok = true, any_failed = false;
  for (auto& n : t.needs) {
    const TaskInstance* ti = tasks.find(n);
    if (!ti) continue;
    TaskState s = ti->state;
    if (!is_terminal(s)) all_done = false;
    if (!succeeded(s)) all_ok = false;
    if (failed(s) && s != TaskState::Cancelled) any_failed = true;
    if (s == TaskState::Cancelled) any_failed = true;
  }
  switch (t.trigger_rule) {
    case TriggerRule::AllSuccess:
      if (all_done && all_ok) return Ready::Go;
      if (any_failed) return Ready::UpstreamFailed;
      return Ready::Wait;
    case TriggerRule::AllDone:
      return all_done ? Ready::Go : Ready::Wait;
    case TriggerRule::OneFailed:
      if (any_failed) return Ready::Go;
      return all_done ? Ready::Skip : Ready::Wait;
  }
  return Ready::Wait;
}

}  // namespace detail

inline RunStep step_run(const core::RunView& v, TimePoint now, core::Slots& slots, bool may_start) {
  core::RunStep out;
  if (is_terminal(v.run.state)) return out;
  detail::Overlay tasks{v.tasks, {}};  // later tasks see earlier decisions of this step
  bool started_any = false;
  for (const TaskSpec& spec : v.dag->tasks) {  // topological order
    const TaskInstance* cur = tasks.find(spec.id);
    if (!cur) continue;
    if (cur->state != TaskState::Pending && cur->state != TaskState::UpForRetry) continue;
    TaskInstance t = *cur;
    bool want_start = false;
    if (t.state == TaskState::Pending) {
      switch (detail::readiness(spec, tasks)) {
        case detail::Ready::Wait:
          break;
        case detail::Ready::Go:
          want_start = true;
          break;
        case detail::Ready::UpstreamFailed:
          t.state = TaskState::UpstreamFailed;
          out.updates.push_back(t);
          tasks.changed[spec.id] = t;
          break;
        case detail::Ready::Skip:
          t.state = TaskState::Skipped;
          out.updates.push_back(t);
          tasks.changed[spec.id] = t;
          break;
      }
    } else {  // UpForRetry
      if (t.next_try_at && *t.next_try_at > now) {
        if (!out.wake_at || *t.next_try_at < *out.wake_at) out.wake_at = t.next_try_at;
      } else {
        want_start = true;
      }
    }
    if (want_start && may_start && slots.take(spec.queue)) {
      t.state = TaskState::Running;
      t.try_number += 1;
      t.next_try_at.reset();
      out.updates.push_back(t);
      out.starts.push_back({spec.id, t.try_number});
      tasks.changed[spec.id] = t;
      started_any = true;
    }
  }
  bool all_terminal = true, all_ok = true, any_active = started_any;
  for (auto& [id, base] : v.tasks) {
    const TaskInstance& t = *tasks.find(id);
    if (!is_terminal(t.state)) all_terminal = false;
    if (!detail::succeeded(t.state)) all_ok = false;
    if (t.state != TaskState::Pending) any_active = true;
  }
  if (all_terminal) {
    out.run_state = all_ok ? RunState::Success : RunState::Failed;
  } else if (v.run.state == RunState::Queued && (started_any || may_start) && any_active) {
    out.run_state = RunState::Running;
  }
  return out;
}

inline core::RunStep cancel_run(const core::RunView& v) {
  core::RunStep out;
  for (auto& [id, t] : v.tasks) {
    if (is_terminal(t.state)) continue;
    TaskInstance c = t;
    c.state = TaskState::Cancelled;
    c.next_try_at.reset();
    out.updates.push_back(c);
  }
  out.run_state = RunState::Cancelled;
  return out;
}

}  // namespace drover::core_reference
