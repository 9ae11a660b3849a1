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
// Counts against all_success and for one_failed (Cancelled included).
bool failed(TaskState s) {
  return s == TaskState::Failed || s == TaskState::UpstreamFailed || s == TaskState::TimedOut ||
         s == TaskState::Cancelled;
}

enum Ready { kWait, kGo, kUpstreamFailed, kSkip };

}  // namespace

RunProgress::RunProgress(DagPtr dag, std::string run_id, RunState state,
                         const std::map<std::string, TaskInstance>& tasks)
    : dag_(std::move(dag)), run_id_(std::move(run_id)), state_(state) {
  if (!dag_->graph_indexed) {
    auto copy = std::make_shared<DagSpec>(*dag_);
    index_graph(*copy);
    dag_ = std::move(copy);
  }
  const size_t n = dag_->tasks.size();
  inst_.reserve(n);
  for (const TaskSpec& t : dag_->tasks) {
    auto it = tasks.find(t.id);
    inst_.push_back(it != tasks.end() ? it->second
                                      : TaskInstance{run_id_, t.id, TaskState::Pending, 0, {}});
  }
  waiting_.assign(n, 0);
  failed_.assign(n, 0);
  in_ready_.assign(n, 0);
  held_.assign(n, 0);
  ready_.resize(dag_->queues.size());
  worklist_.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    TaskState st = inst_[i].state;
    if (is_terminal(st)) ++n_terminal_;
    if (!succeeded(st)) ++n_not_ok_;
    if (st != TaskState::Pending) ++n_not_pending_;
    for (uint32_t d : dag_->tasks[i].downstream) {
      if (!is_terminal(st)) ++waiting_[d];
      if (failed(st)) ++failed_[d];
    }
    if (st == TaskState::Pending) {
      worklist_.push_back(static_cast<uint32_t>(i));
    } else if (st == TaskState::UpForRetry) {
      if (inst_[i].next_try_at)
        retries_.push({*inst_[i].next_try_at, static_cast<uint32_t>(i)});
      else
        set_ready(i, true);
    }
  }
}

std::optional<size_t> RunProgress::index_of(std::string_view task) const {
  auto it = dag_->task_index.find(task);
  if (it == dag_->task_index.end()) return std::nullopt;
  return it->second;
}

void RunProgress::set_ready(size_t i, bool ready) {
  if (ready && held_[i]) return;
  if (static_cast<bool>(in_ready_[i]) == ready) return;
  auto& q = ready_[dag_->tasks[i].queue_index];
  if (ready) {
    q.insert(static_cast<uint32_t>(i));
    ++n_ready_;
  } else {
    q.erase(static_cast<uint32_t>(i));
    --n_ready_;
  }
  in_ready_[i] = ready;
}

int RunProgress::evaluate(size_t i) const {
  bool all_done = waiting_[i] == 0, any_failed = failed_[i] > 0;
  switch (dag_->tasks[i].trigger_rule) {
    case TriggerRule::AllSuccess:
      if (all_done && !any_failed) return kGo;
      if (any_failed) return kUpstreamFailed;
      return kWait;
    case TriggerRule::AllDone:
      return all_done ? kGo : kWait;
    case TriggerRule::OneFailed:
      if (any_failed) return kGo;
      return all_done ? kSkip : kWait;
  }
  return kWait;
}

// Every state change goes through here: run counters, the downstream's counters (and
// their re-evaluation), the ready sets and the retry heap.
void RunProgress::change(size_t i, TaskInstance next) {
  TaskState old = inst_[i].state, now = next.state;
  n_terminal_ += is_terminal(now) - is_terminal(old);
  n_not_ok_ += !succeeded(now) - !succeeded(old);
  n_not_pending_ += (now != TaskState::Pending) - (old != TaskState::Pending);
  int dwait = !is_terminal(now) - !is_terminal(old), dfail = failed(now) - failed(old);
  if (dwait || dfail)
    for (uint32_t d : dag_->tasks[i].downstream) {
      waiting_[d] += dwait;
      failed_[d] += dfail;
      if (inst_[d].state == TaskState::Pending) worklist_.push_back(d);
    }
  set_ready(i, false);
  inst_[i] = std::move(next);
  if (now == TaskState::Pending) {
    worklist_.push_back(static_cast<uint32_t>(i));
  } else if (now == TaskState::UpForRetry) {
    if (inst_[i].next_try_at)
      retries_.push({*inst_[i].next_try_at, static_cast<uint32_t>(i)});
    else
      set_ready(i, true);
  }
  dirty_ = true;
}

bool RunProgress::update(const TaskInstance& ti) {
  auto i = index_of(ti.task);
  if (!i) return false;
  change(*i, ti);
  return true;
}

const TaskInstance& RunProgress::finish(size_t i, TryEnd end, TimePoint now) {
  if (!is_terminal(inst_[i].state)) change(i, after_try(dag_->tasks[i], inst_[i], end, now));
  return inst_[i];
}

std::vector<size_t> RunProgress::armable_after(size_t u) const {
  std::vector<size_t> out;
  if (u >= inst_.size() || (inst_[u].state != TaskState::Running && !held_[u])) return out;
  for (uint32_t d : dag_->tasks[u].downstream) {
    const TaskSpec& t = dag_->tasks[d];
    // u is unfinished and an upstream of d: with one unfinished and none failed, every
    // other upstream succeeded (or was skipped), and u's success makes d ready.
    if (inst_[d].state == TaskState::Pending && !held_[d] && !in_ready_[d] &&
        t.trigger_rule == TriggerRule::AllSuccess && waiting_[d] == 1 && failed_[d] == 0)
      out.push_back(d);
  }
  return out;
}

void RunProgress::hold(size_t i, bool on) {
  if (i >= inst_.size() || static_cast<bool>(held_[i]) == on) return;
  held_[i] = on;
  if (on) {
    set_ready(i, false);
  } else if (inst_[i].state == TaskState::Pending) {
    worklist_.push_back(static_cast<uint32_t>(i));
    dirty_ = true;
  }
}

bool RunProgress::start_now(size_t i, int try_number) {
  if (i >= inst_.size()) return false;
  hold(i, false);
  if (inst_[i].state != TaskState::Pending || evaluate(i) != kGo) return false;
  TaskInstance t = inst_[i];
  t.state = TaskState::Running;
  t.try_number = try_number;
  t.next_try_at.reset();
  change(i, t);
  return true;
}

bool RunProgress::has_changes(TimePoint now) const {
  if (dirty_) return true;
  return !retries_.empty() && retries_.top().first <= now;
}

bool RunProgress::wants_slot(const Slots& slots) const {
  if (n_ready_ == 0 || slots.global <= 0) return false;
  for (size_t q = 0; q < ready_.size(); ++q) {
    if (ready_[q].empty()) continue;
    auto it = slots.queue.find(dag_->queues[q]);
    if (it == slots.queue.end() || it->second > 0) return true;
  }
  return false;
}

std::optional<TimePoint> RunProgress::next_retry() const {
  if (retries_.empty()) return std::nullopt;
  return retries_.top().first;
}

RunStep RunProgress::step(TimePoint now, Slots& slots, bool may_start) {
  RunStep out;
  dirty_ = false;
  if (is_terminal(state_)) {
    worklist_.clear();
    return out;
  }
  // 1. Readiness of the Pending tasks whose upstream changed; UpstreamFailed and Skipped
  //    cascade through the worklist.
  while (!worklist_.empty()) {
    uint32_t i = worklist_.back();
    worklist_.pop_back();
    if (inst_[i].state != TaskState::Pending) continue;
    int r = evaluate(i);
    switch (r) {
      case kWait:
        set_ready(i, false);
        break;
      case kGo:
        set_ready(i, true);
        break;
      case kUpstreamFailed:
      case kSkip: {
        TaskInstance t = inst_[i];
        t.state = r == kSkip ? TaskState::Skipped : TaskState::UpstreamFailed;
        change(i, t);
        out.updates.push_back(inst_[i]);
        break;
      }
    }
  }
  // 2. Retries that are due want to start; stale heap entries (the task moved on) go.
  while (!retries_.empty()) {
    auto [at, i] = retries_.top();
    const TaskInstance& t = inst_[i];
    if (t.state != TaskState::UpForRetry || !t.next_try_at || *t.next_try_at != at) {
      retries_.pop();
      continue;
    }
    if (at > now) break;
    retries_.pop();
    set_ready(i, true);
  }
  if (!retries_.empty()) out.wake_at = retries_.top().first;
  // 3. Starts in index (topological) order across the queues while slots allow.
  bool started_any = false;
  if (may_start && n_ready_ > 0) {
    std::vector<int*> limit(ready_.size(), nullptr);
    std::vector<char> open(ready_.size(), 1);
    for (size_t q = 0; q < ready_.size(); ++q) {
      auto it = slots.queue.find(dag_->queues[q]);
      if (it != slots.queue.end()) limit[q] = &it->second;
    }
    while (slots.global > 0) {
      size_t best_q = ready_.size();
      uint32_t best = 0;
      for (size_t q = 0; q < ready_.size(); ++q) {
        if (!open[q] || ready_[q].empty()) continue;
        if (limit[q] && *limit[q] <= 0) {
          open[q] = 0;
          continue;
        }
        uint32_t head = *ready_[q].begin();
        if (best_q == ready_.size() || head < best) {
          best_q = q;
          best = head;
        }
      }
      if (best_q == ready_.size()) break;
      if (limit[best_q]) --*limit[best_q];
      --slots.global;
      TaskInstance t = inst_[best];
      t.state = TaskState::Running;
      t.try_number += 1;
      t.next_try_at.reset();
      change(best, t);
      out.updates.push_back(inst_[best]);
      out.starts.push_back({t.task, t.try_number});
      started_any = true;
    }
  }
  dirty_ = false;
  // 4. The run's state from the counters.
  bool any_active = started_any || n_not_pending_ > 0;
  if (n_terminal_ == inst_.size()) {
    out.run_state = n_not_ok_ == 0 ? RunState::Success : RunState::Failed;
  } else if (state_ == RunState::Queued && (started_any || may_start) && any_active) {
    out.run_state = RunState::Running;
  }
  if (out.run_state) state_ = *out.run_state;
  return out;
}

RunStep RunProgress::cancel() {
  RunStep out;
  for (size_t i = 0; i < inst_.size(); ++i) {
    if (is_terminal(inst_[i].state)) continue;
    TaskInstance c = inst_[i];
    c.state = TaskState::Cancelled;
    c.next_try_at.reset();
    change(i, c);
    out.updates.push_back(inst_[i]);
  }
  worklist_.clear();
  dirty_ = false;
  out.run_state = RunState::Cancelled;
  state_ = RunState::Cancelled;
  return out;
}

RunStep step_run(const RunView& v, TimePoint now, Slots& slots, bool may_start) {
  RunProgress p(v.dag, v.run.id, v.run.state, v.tasks);
  return p.step(now, slots, may_start);
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
  RunProgress p(v.dag, v.run.id, v.run.state, v.tasks);
  return p.cancel();
}

std::optional<TimePoint> prev_fire(const DagSpec& dag, TimePoint t) {
  if (!dag.schedule) return std::nullopt;
  auto zone = find_zone(dag.timezone);
  if (!zone) return std::nullopt;
  using namespace std::chrono;
  const Micros spans[] = {hours(1),        hours(24),           hours(24 * 8),       hours(24 * 32),
                          hours(24 * 367), hours(24 * 366 * 5), hours(24 * 366 * 30)};
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
