// Tries: their end, their timeouts, and runs' SLAs (scheduler/engine_impl.hpp). What each
// means is the core's decision (scheduler/decide.hpp); here it is written and remembered.
#include "common/time.hpp"
#include "scheduler/engine_impl.hpp"

namespace drover {

using namespace engine;

// Records one finished try (inside the pump's transaction).
void Engine::Impl::record_finish(const TryEvent& ev, TimePoint now, Effects& fx) {
  auto it = running.find(ev.key);
  if (it == running.end()) return;
  fx.ended_tries.push_back({it->first, it->second});
  RunningTry rt = it->second;
  erase_running(it);
  TryRecord& rec = rt.rec;
  rec.ended_at = now;
  rec.signal = ev.signal;

  auto parsed = core::parse_try_result(ev.result);
  core::TryExit exit;
  exit.cancelled = rt.cancelled;
  if (rt.timed_out) exit.timed_out_after = *rt.deadline - rec.started_at;
  exit.exit_code = ev.exit_code;
  exit.signal = ev.signal;
  exit.result = parsed ? &*parsed : nullptr;
  if (!parsed) exit.result_error = parsed.message();
  exit.error = ev.error;
  core::TryOutcome out = core::try_outcome(exit);
  // A start the executor refused: the try never ran and fails with its reason (as one whose
  // spec cannot be built does), unless a cancel came first.
  if (ev.refused && !rt.cancelled)
    out = core::TryOutcome{core::TryEnd::Failed, TryState::Failed, std::nullopt, ev.error};
  rec.state = out.state;
  rec.exit_code = out.exit_code;
  rec.error = out.error;
  Writes& w = fx.writes;
  w(store.update_try(rec));
  if (parsed && out.end == core::TryEnd::Success) {
    if (!parsed->outputs.empty())
      w(store.add_files(rec.run_id, rec.task, rec.try_number, "output", parsed->outputs));
    for (auto& [k, val] : parsed->values.items())
      w(store.set_value(rec.run_id, rec.task, rec.try_number, k, val));
  }
  if (parsed)
    for (auto& m : parsed->metrics)
      w(store.add_metric(rec.run_id, rec.task, rec.try_number, m.name, m.value, m.step));
  auto vit = active.find(rt.run_id);
  if (vit == active.end()) return;
  ActiveRun& v = vit->second;
  fx.touched_runs.insert(v.run.id);
  work.insert(v.key());  // the try's end is the run's work
  if (parsed && out.end == core::TryEnd::Success)
    v.outputs[rec.task] = TryOutputs{rec.try_number, parsed->values, parsed->outputs};
  TaskInstance& ti = v.tasks[rec.task];
  const TaskSpec* spec = v.dag->task(rec.task);
  if (!spec) return;
  const TaskInstance* changed = nullptr;
  if (!is_terminal(ti.state) && ti.try_number == rec.try_number) {
    ti = core::after_try(*spec, ti, out.end, now);
    if (v.progress) v.progress->update(ti);
    w(store.update_task(ti));
    fx.task_changes.push_back(ti);
    changed = &ti;
  }
  for (auto& a : core::try_end_alerts(*spec, changed, rec, parsed ? &*parsed : nullptr))
    fx.alerts.push_back({v.dag, std::move(a)});
}

// The facts of tries that started (TryEvent::Started, kept in `running` by on_event) and
// are still running: written now (a try that ended in this pump had them written with its end).
void Engine::Impl::record_started(Effects& fx) {
  for (auto& key : fx.started) {
    auto it = running.find(key);
    if (it == running.end()) continue;
    fx.writes(store.update_try(it->second.rec));
  }
}

// Tries past their deadline are marked timed out (committed) and killed (after the commit);
// their end, when the executor reports it, is recorded as timed_out.
void Engine::Impl::expire_timeouts(TimePoint now, Effects& fx) {
  for (auto& [key, rt] : running) {
    if (!rt.deadline || rt.timed_out || *rt.deadline > now) continue;
    rt.timed_out = true;
    rt.rec.state = TryState::TimedOut;
    rt.rec.error = core::timeout_error(*rt.deadline - rt.rec.started_at);
    fx.writes(store.update_try(rt.rec));
    fx.timed_out.push_back(key);
    spdlog::warn("try {} timed out; killing its process group", key);
    fx.kills.push_back({key, rt.rec.error + "; killing its process group"});
  }
}

// A run misses its SLA when it is not finished `sla` after its scheduled time; it is
// alerted once.
void Engine::Impl::check_slas(TimePoint now, Effects& fx) {
  while (!sla_wakes.empty() && sla_wakes.top().first <= now) {
    WakeAt due = sla_wakes.top();
    sla_wakes.pop();
    auto it = active.find(due.second);
    if (it == active.end()) continue;
    ActiveRun& v = it->second;
    if (!v.dag->sla || is_terminal(v.run.state) || sla_alerted.count(due.second)) continue;
    sla_alerted.insert(due.second);
    fx.sla_alerted.push_back(due);
    fx.alerts.push_back({v.dag, core::sla_alert(v.run, *v.dag)});
  }
}

}  // namespace drover
