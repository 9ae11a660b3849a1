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
  // A chained start may have followed it before this pump: its end is when it exited, as
  // its worker says, so that the record never shows the next try starting before it ended.
  if (armed_after.count(ev.key) && ev.result.is_object())
    if (auto e = ev.result.find("ended_at"); e != ev.result.end() && e->is_number_integer())
      if (TimePoint t{Micros(e->get<long long>())}; t < now && t >= rec.started_at)
        rec.ended_at = t;
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
  Writes& w = fx.writes;
  if (parsed) registry_step(rec, *parsed, now, out, w);
  rec.state = out.state;
  rec.exit_code = out.exit_code;
  rec.error = out.error;
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

// Arms the successors of a try just started (or just chained), up to chain_depth tries
// ahead: each one that may start the moment the try before it succeeds and reads nothing
// that try makes (a command task following a command that declares no outputs; a command
// publishes no values), in the same queue, its spec buildable now. Committed as Armed with
// this pump; handed over after it.
void Engine::Impl::arm_after(ActiveRun& v, const std::string& task, int try_number, TimePoint now,
                             Effects& fx) {
  if (!opts.chain_starts) return;
  // A chained start keeps its upstream's slot: not while a run as old as this one (this one
  // included: a task of its own is ready) waits for a slot, which admission gives oldest first.
  if (!slot_waiters.empty() && !(v.key() < *slot_waiters.begin())) return;
  if (progress_of(v).has_ready()) return;
  std::string after = try_key(v.run.id, task, try_number);
  auto rit = running.find(after);
  if (rit == running.end() || rit->second.cancelled || rit->second.timed_out) return;
  std::string up_task = task;
  int depth = 0;
  for (auto a = armed_after.find(after); a != armed_after.end(); a = armed_after.find(after)) {
    after = a->second;
    up_task = armed[after].task;
    ++depth;
  }
  core::RunProgress& p = progress_of(v);
  for (; depth < opts.chain_depth; ++depth) {
    const TaskSpec* up = v.dag->task(up_task);
    if (!up || up->type != "command" || !up->outputs.empty()) return;
    auto ui = p.index_of(up_task);
    if (!ui) return;
    std::optional<TrySpec> spec;
    for (size_t d : p.armable_after(*ui)) {
      const TaskSpec& t = v.dag->tasks[d];
      if (t.type != "command" || t.queue != up->queue) continue;
      auto built = build_spec(v, t, p.instance(d).try_number + 1);
      if (!built) continue;  // it fails when it starts the usual way, with its reason
      built->after = after;
      if (!exec.can_chain(*built)) continue;
      spec = std::move(*built);
      p.hold(d, true);
      break;
    }
    if (!spec) return;
    ArmedTry a{v.run.id, spec->task, after, spec->try_number, {}, spec->inputs};
    TryRecord& rec = a.rec;
    rec.run_id = v.run.id;
    rec.task = spec->task;
    rec.try_number = spec->try_number;
    rec.queue = spec->queue;
    rec.started_at = now;  // when it was armed, until it starts
    rec.try_dir = spec->try_dir;
    rec.log_path = layout::log(rec.try_dir).string();
    rec.command = spec->argv;
    rec.state = TryState::Armed;
    if (!fx.writes(store.insert_try(rec))) return;
    std::string key = try_key(v.run.id, spec->task, spec->try_number);
    up_task = spec->task;
    armed[key] = std::move(a);
    armed_after[after] = key;
    fx.touched_runs.insert(v.run.id);
    fx.armed_now.push_back(key);
    fx.arms.push_back(std::move(*spec));
    after = key;
  }
}

// Armed tries whose task can no longer start (it ended without them: an upstream failed, the
// run was cancelled) are taken back at once (inside the pump's transaction), so that nothing
// waits for their verdicts; one whose worker has claimed it already is heard of as usual.
void Engine::Impl::disarm_stale(Effects& fx) {
  for (auto it = armed.begin(); it != armed.end();) {
    const engine::ArmedTry& a = it->second;
    auto v = active.find(a.run_id);
    bool stale = v == active.end() || is_terminal(v->second.run.state);
    if (!stale) {
      auto t = v->second.tasks.find(a.task);
      stale = t == v->second.tasks.end() || is_terminal(t->second.state);
    }
    if (!stale || !exec.disarm(it->first)) {
      ++it;
      continue;
    }
    fx.writes(store.delete_armed_try(a.run_id, a.task, a.try_number));
    fx.disarmed.push_back({it->first, a});
    armed_after.erase(a.after);
    it = armed.erase(it);
  }
}

// What the executor said of an armed try (inside the pump's transaction): it never started
// (its row goes, its task is released to the core), or it started (Running, and its task,
// when the core agrees it may run now; else it is killed at once, as cancelled), or it
// failed to start (started and ended at once).
void Engine::Impl::record_armed(const TryEvent& ev, TimePoint now, Effects& fx) {
  auto it = armed.find(ev.key);
  if (it == armed.end()) return;
  ArmedTry a = it->second;
  armed.erase(it);
  armed_after.erase(a.after);
  fx.disarmed.push_back({ev.key, a});
  auto vit = active.find(a.run_id);
  ActiveRun* v = vit == active.end() ? nullptr : &vit->second;
  std::optional<size_t> idx;
  if (v) {
    fx.touched_runs.insert(v->run.id);
    work.insert(v->key());
    idx = progress_of(*v).index_of(a.task);
  }
  if (ev.kind == TryEvent::Kind::Finished && ev.not_started) {
    fx.writes(store.delete_armed_try(a.run_id, a.task, a.try_number));
    if (v && idx) v->progress->hold(*idx, false);
    return;
  }
  TryRecord rec = a.rec;
  rec.state = TryState::Running;
  rec.started_at = now;
  if (ev.kind == TryEvent::Kind::Started) {
    note_where_it_runs(rec, ev);
    // It started before this pump heard of it: when the worker started it.
    if (ev.started_us > 0 && TimePoint(Micros(ev.started_us)) < now)
      rec.started_at = TimePoint(Micros(ev.started_us));
  }
  RunningTry rt{a.run_id, a.task, a.try_number, rec, std::nullopt, false, false};
  const TaskSpec* t = v ? v->dag->task(a.task) : nullptr;
  if (t && t->timeout) rt.deadline = now + *t->timeout;
  bool runs = v && idx && !is_terminal(v->run.state) && v->progress->start_now(*idx, a.try_number);
  if (runs) {
    TaskInstance ti = v->progress->instance(*idx);
    v->tasks[a.task] = ti;
    fx.writes(store.update_task(ti));
    fx.task_changes.push_back(ti);
  } else {
    // The try it followed did not end as it seemed to the executor (cancelled, timed out):
    // it is not this task's turn.
    rt.cancelled = true;
    if (ev.kind == TryEvent::Kind::Started)
      fx.kills.push_back({ev.key, "cancelled: the try it followed did not succeed"});
  }
  fx.writes(store.update_try(rec));
  if (!a.inputs.empty()) {
    std::vector<FileRecord> inputs;
    for (auto& f : a.inputs)
      inputs.push_back(FileRecord{f.path, f.sha256, f.size, f.mode, f.from_task});
    fx.writes(store.add_files(a.run_id, a.task, a.try_number, "input", inputs));
  }
  add_running(ev.key, std::move(rt));
  fx.chain_started.push_back(ev.key);
  if (ev.kind == TryEvent::Kind::Finished)
    record_finish(ev, now, fx);  // it ended as it started (it could not be spawned)
  else if (runs)
    arm_after(*v, a.task, a.try_number, now, fx);
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
