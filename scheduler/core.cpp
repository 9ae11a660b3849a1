#include "scheduler/core.hpp"

#include <algorithm>

#include "common/time.hpp"

namespace drover::core {

bool Slots::take(const std::string& q) {
  if (global <= 0) return false;
  auto it = queue.find(q);
  if (it != queue.end()) {
    if (it->second <= 0) return false;
    --it->second;
  }
  --global;
  return true;
}

namespace {

bool succeeded(TaskState s) { return s == TaskState::Success || s == TaskState::Skipped; }
bool failed(TaskState s) {
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

Ready readiness(const TaskSpec& t, const Overlay& tasks) {
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

}  // namespace

RunStep step_run(const RunView& v, TimePoint now, Slots& slots, bool may_start) {
  RunStep out;
  if (is_terminal(v.run.state)) return out;
  Overlay tasks{v.tasks, {}};  // later tasks see earlier decisions of this step
  bool started_any = false;
  for (const TaskSpec& spec : v.dag->tasks) {  // topological order
    const TaskInstance* cur = tasks.find(spec.id);
    if (!cur) continue;
    if (cur->state != TaskState::Pending && cur->state != TaskState::UpForRetry) continue;
    TaskInstance t = *cur;
    bool want_start = false;
    if (t.state == TaskState::Pending) {
      switch (readiness(spec, tasks)) {
        case Ready::Wait: break;
        case Ready::Go: want_start = true; break;
        case Ready::UpstreamFailed:
          t.state = TaskState::UpstreamFailed;
          out.updates.push_back(t);
          tasks.changed[spec.id] = t;
          break;
        case Ready::Skip:
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
    if (!succeeded(t.state)) all_ok = false;
    if (t.state != TaskState::Pending) any_active = true;
  }
  if (all_terminal) {
    out.run_state = all_ok ? RunState::Success : RunState::Failed;
  } else if (v.run.state == RunState::Queued && (started_any || may_start) && any_active) {
    out.run_state = RunState::Running;
  }
  return out;
}

Micros retry_backoff(const TaskSpec& spec, int failed_try) {
  long long d = spec.retry_delay.count();
  for (int i = 1; i < failed_try && d < spec.max_retry_delay.count(); ++i) d *= 2;
  return Micros(std::min(d, static_cast<long long>(spec.max_retry_delay.count())));
}

TaskInstance after_try(const TaskSpec& spec, TaskInstance t, TryEnd end, TimePoint now) {
  switch (end) {
    case TryEnd::Success:
      t.state = TaskState::Success;
      return t;
    case TryEnd::Cancelled:
      t.state = TaskState::Cancelled;
      return t;
    case TryEnd::Failed:
    case TryEnd::TimedOut:
    case TryEnd::Lost:
      if (t.try_number <= spec.retries) {
        t.state = TaskState::UpForRetry;
        t.next_try_at = now + retry_backoff(spec, t.try_number);
      } else {
        t.state = end == TryEnd::TimedOut ? TaskState::TimedOut : TaskState::Failed;
      }
      return t;
  }
  return t;
}

RunStep cancel_run(const RunView& v) {
  RunStep out;
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

std::optional<TimePoint> prev_fire(const DagSpec& dag, TimePoint t) {
  if (!dag.schedule) return std::nullopt;
  auto zone = find_zone(dag.timezone);
  if (!zone) return std::nullopt;
  using namespace std::chrono;
  const Micros spans[] = {hours(1), hours(24), hours(24 * 8), hours(24 * 32), hours(24 * 367),
                          hours(24 * 366 * 5), hours(24 * 366 * 30)};
  for (Micros span : spans) {
    TimePoint x = dag.schedule->next(t - span, *zone);
    if (x > t) continue;
    for (;;) {
      TimePoint y = dag.schedule->next(x, *zone);
      if (y > t) return x;
      x = y;
    }
  }
  return std::nullopt;
}

ScheduleStep schedule_dag(const DagSpec& dag, std::optional<TimePoint> last_fire, TimePoint now,
                          size_t max_catchup) {
  ScheduleStep out;
  out.next_fire = TimePoint::max();
  if (!dag.schedule) {
    out.last_fire = last_fire.value_or(now);
    return out;
  }
  auto zone_r = find_zone(dag.timezone);
  if (!zone_r) {
    out.last_fire = last_fire.value_or(now);
    return out;
  }
  auto zone = *zone_r;
  if (!last_fire) {
    // First sight: nothing is due before the next tick.
    last_fire = prev_fire(dag, now).value_or(now);
  }
  TimePoint prev = *last_fire;
  TimePoint next = dag.schedule->next(prev, zone);
  if (next <= now) {
    if (dag.catchup) {
      while (next <= now && out.due.size() < max_catchup) {
        out.due.push_back({prev, next});
        prev = next;
        next = dag.schedule->next(prev, zone);
      }
    } else {
      // Only the latest completed interval runs.
      TimePoint latest = prev_fire(dag, now).value_or(next);
      TimePoint start = prev_fire(dag, latest - Micros(1)).value_or(prev);
      if (start < prev) start = prev;
      out.due.push_back({start, latest});
      prev = latest;
      next = dag.schedule->next(prev, zone);
    }
  }
  out.last_fire = prev;
  out.next_fire = next;
  return out;
}

}  // namespace drover::core
