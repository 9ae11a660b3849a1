// Runs: creation, admission (max_active_runs, slots), steps (scheduler/engine_impl.hpp).
#include "common/redact.hpp"
#include "common/time.hpp"
#include "scheduler/engine_impl.hpp"
#include "scheduler/try_spec.hpp"

namespace drover {

namespace fs = std::filesystem;
using namespace engine;

std::string Engine::Impl::project_dir_for(const DagSpec& dag, const GitInfo& git) const {
  if (!opts.project_dir.empty()) return opts.project_dir;
  if (!git.toplevel.empty()) return git.toplevel;
  return fs::absolute(fs::path(dag.file)).parent_path().string();
}

// `in_pump`: the pump's transaction holds the writes (a cron run); else the run is one commit
// of its own: its sequence number, its DAG version and its record.
Result<std::string> Engine::Impl::create_run(const DagPtr& dag, const json& given, bool from_cli,
                                             const std::string& kind, const std::string& user,
                                             std::optional<core::DueRun> interval,
                                             Effects* in_pump) {
  json typed = json::object();
  if (!given.is_null() && !given.is_object())
    return make_error("params must be a JSON object", Errc::Invalid);
  if (from_cli) {
    for (auto& [name, v] : given.items()) {
      const ParamSpec* p = dag->param(name);
      if (!p) {
        typed[name] = v;  // resolve_params reports the unknown name
        continue;
      }
      auto parsed = p->parse_cli(v.is_string() ? v.get<std::string>() : v.dump());
      if (!parsed) return make_error(parsed.message(), Errc::Invalid);
      typed[name] = *parsed;
    }
  } else if (given.is_object()) {
    typed = given;
  }
  auto params = dag->resolve_params(typed);
  if (!params) return make_error(params.message(), Errc::Invalid);
  auto pins = pin_models(*dag);
  if (!pins) return pins.error();

  std::optional<Transaction> txn;
  if (!in_pump) {
    txn.emplace(store);
    if (!txn->status()) return txn->status().error();
  }
  auto seq = store.next_run_seq(dag->id);
  if (!seq) return seq.error();
  RunRecord run;
  run.seq = *seq;
  run.id = dag->id + "-" + std::to_string(*seq);
  run.dag = dag->id;
  run.dag_hash = dag->file_hash;
  run.params = *params;
  run.models = std::move(*pins);
  run.trigger_kind = kind;
  run.trigger_user = user;
  run.created_at = steady.now();
  if (interval) {
    run.logical_date = interval->interval_start;
    run.interval_start = interval->interval_start;
    run.interval_end = interval->interval_end;
  } else {
    run.logical_date = run.created_at;
  }
  // Cached per folder (at most once a second, and again at once when the commit, the
  // index or the DAG file changes): no git processes on the event loop per run.
  GitInfo git = git_info_cached(fs::absolute(fs::path(dag->file)).parent_path(),
                                fs::absolute(fs::path(dag->file)));
  run.git_commit = git.commit;
  run.git_dirty = git.dirty;
  std::vector<TaskInstance> tasks;
  core::RunView view{run, dag, {}};
  for (auto& t : dag->tasks) {
    TaskInstance ti{run.id, t.id, TaskState::Pending, 0, std::nullopt};
    tasks.push_back(ti);
    view.tasks[t.id] = ti;
  }
  if (auto s = store.put_dag_version(dag->file_hash, dag->id, dag->file, dag->content); !s)
    return s.error();
  if (opts.own_runs) {  // locked before the run exists for a recovering daemon to see
    auto lock = FileLock::acquire(layout::owner_lock(opts.home, run.id), true, /*wait=*/false);
    if (!lock) return lock.error();
    owner_locks.emplace(run.id, std::move(*lock));
    if (in_pump) in_pump->owner_lock_runs.push_back(run.id);
  }
  if (auto s = store.insert_run(run, tasks); !s) {
    owner_locks.erase(run.id);
    return s.error();
  }
  if (txn)
    if (auto s = txn->commit(); !s) {
      owner_locks.erase(run.id);
      return s.error();
    }
  ActiveRun& a = active[run.id];
  static_cast<core::RunView&>(a) = std::move(view);
  a.project_dir = project_dir_for(*dag, git);
  track(a);
  if (in_pump) in_pump->created_runs.push_back(run.id);
  spdlog::info("run {} created ({} by {})", run.id, kind, user);
  if (!in_pump) post_pump();
  return run.id;
}

// Cron: every DAG whose next fire time has come gets its due runs (with catchup), in the
// pump's commit. Nothing is read from the store between fire times.
void Engine::Impl::fire_schedules(TimePoint now, Effects& fx) {
  if (!opts.schedules) return;
  if (!schedules_dirty && (!earliest_fire || now < *earliest_fire)) return;
  schedules_dirty = false;
  earliest_fire.reset();
  for (auto& [id, e] : dags) {
    if (!e.dag->schedule) continue;
    if (!e.next_fire || now >= *e.next_fire) {
      auto paused = store.paused(id);
      if (!fx.writes(paused)) return;
      if (*paused) continue;  // looked at again when the DAGs change
      auto last = store.last_scheduled(id);
      if (!fx.writes(last)) return;
      core::ScheduleStep st = core::schedule_dag(*e.dag, *last, now);
      for (auto& due : st.due) {
        auto r = create_run(e.dag, json::object(), false, "schedule", "scheduler", due, &fx);
        // A run that cannot be made as the DAG says (a `uses:` model alias that names no
        // version): this fire time passes without it, said in the log.
        if (!r && r.error().code == Errc::Invalid) {
          spdlog::error("dag {}: the scheduled run of {} was not created: {}", id,
                        format_iso_utc(due.interval_start), r.message());
          continue;
        }
        if (!fx.writes(r)) return;
      }
      if (!*last || **last != st.last_fire) {
        if (!fx.writes(store.set_last_scheduled(id, st.last_fire))) return;
      }
      fx.fired_dags.insert(id);
      e.next_fire =
          st.next_fire == TimePoint::max() ? std::nullopt : std::optional<TimePoint>(st.next_fire);
    }
    if (e.next_fire && (!earliest_fire || *e.next_fire < *earliest_fire))
      earliest_fire = e.next_fire;
  }
}

// The Engine's own slots and the executor's capacity, the smaller of each limit winning.
core::Slots Engine::Impl::free_slots() const {
  Capacity cap = exec.capacity();
  core::Slots slots;
  int global = opts.global_slots;
  if (cap.total) global = std::min(global, *cap.total);
  slots.global = global - static_cast<int>(running.size());
  std::map<std::string, int> limits = opts.queue_slots;
  for (auto& [q, limit] : cap.queue) {
    auto it = limits.find(q);
    if (it == limits.end() || limit < it->second) limits[q] = limit;
  }
  for (auto& [q, limit] : limits) {
    auto it = running_by_queue.find(q);
    slots.queue[q] = limit - (it == running_by_queue.end() ? 0 : it->second);
  }
  return slots;
}

// Files a new or recovered run: counted for max_active_runs, its SLA armed, stepped by
// the next pump.
void Engine::Impl::track(ActiveRun& a) {
  if (a.run.state == RunState::Running) dag_runs[a.run.dag].running++;
  // A scheduled run's SLA counts from its interval's end, a wall-clock instant: it becomes a
  // wait on the monotonic clock now, which no later jump moves.
  if (auto due = core::sla_deadline(a.run, *a.dag); due && !is_terminal(a.run.state))
    sla_wakes.push({a.run.interval_end ? steady.from_wall(*due) : *due, a.run.id});
  work.insert(a.key());
}

void Engine::Impl::add_running(const std::string& key, RunningTry rt) {
  running_by_queue[rt.rec.queue]++;
  auto a = active.find(rt.run_id);
  if (a != active.end()) a->second.running_tries++;
  running[key] = std::move(rt);
}

void Engine::Impl::erase_running(std::map<std::string, RunningTry>::iterator it) {
  if (--running_by_queue[it->second.rec.queue] == 0) running_by_queue.erase(it->second.rec.queue);
  auto a = active.find(it->second.run_id);
  if (a != active.end()) {
    a->second.running_tries--;
    if (is_terminal(a->second.run.state)) retire.insert(a->first);
  }
  running.erase(it);
}

core::RunProgress& Engine::Impl::progress_of(ActiveRun& a) {
  if (!a.progress) {
    a.progress = std::make_unique<core::RunProgress>(a.dag, a.run.id, a.run.state, a.tasks);
    for (auto& [key, t] : armed)  // armed elsewhere: the core must not start them too
      if (t.run_id == a.run.id)
        if (auto i = a.progress->index_of(t.task)) a.progress->hold(*i, true);
  }
  return *a.progress;
}

// Reads a run back from the store (after a failed commit): its record and instances; its
// core state is rebuilt on its next step.
Status Engine::Impl::reload_run(ActiveRun& a) {
  auto run = store.get_run(a.run.id);
  if (!run) return run.error();
  if (!*run) return make_error("run " + a.run.id + " is not in the store", Errc::NotFound);
  auto tasks = store.tasks_of(a.run.id);
  if (!tasks) return tasks.error();
  a.run = **run;
  a.tasks.clear();
  for (auto& t : *tasks) a.tasks[t.task] = t;
  a.progress.reset();
  a.outputs.clear();
  a.retry_armed.reset();
  return {};
}

// A run stopped counting against its DAG's max_active_runs (it ended, or was cancelled):
// the oldest runs queued behind it are stepped by this pump (or the next).
void Engine::Impl::left_running(const ActiveRun& a, bool was_running) {
  slot_waiters.erase(a.key());
  auto d = dag_runs.find(a.run.dag);
  if (d == dag_runs.end()) return;
  d->second.queued.erase(a.key());
  if (was_running) d->second.running--;
  int free = a.dag->max_active_runs - d->second.running;
  while (free-- > 0 && !d->second.queued.empty()) {
    work.insert(*d->second.queued.begin());
    d->second.queued.erase(d->second.queued.begin());
  }
  if (d->second.running <= 0 && d->second.queued.empty()) dag_runs.erase(d);
  retire.insert(a.run.id);
}

// Where a run waits after a step: for a slot (it has tasks that want to start), for
// max_active_runs (queued, may not start), or for an event (a try ending, a retry).
void Engine::Impl::file(ActiveRun& a, bool may_start) {
  RunKey k = a.key();
  core::RunProgress& p = *a.progress;
  if (p.has_ready() && may_start)
    slot_waiters.insert(k);
  else
    slot_waiters.erase(k);
  if (a.run.state == RunState::Queued && !may_start) dag_runs[a.run.dag].queued.insert(k);
  if (auto r = p.next_retry(); r && r != a.retry_armed) {
    retry_wakes.push({*r, a.run.id});
    a.retry_armed = r;
  }
}

// Steps every run with work, oldest first: runs with changes, and while slots are free,
// runs waiting for one. A step may give more work (a start that failed, a run that ended
// and freed max_active_runs); the loop runs until none is left.
void Engine::Impl::step_runs(TimePoint now, core::Slots& slots, Effects& fx) {
  // Slot waiters are tried once each, in order, while global slots are free.
  std::optional<RunKey> waiter_cursor;
  while (fx.writes.ok()) {
    std::optional<RunKey> from_work, waiter;
    if (!work.empty()) from_work = *work.begin();
    if (slots.global > 0) {
      auto w = waiter_cursor ? slot_waiters.upper_bound(*waiter_cursor) : slot_waiters.begin();
      if (w != slot_waiters.end()) waiter = *w;
    }
    if (!from_work && !waiter) break;
    RunKey key;
    if (from_work && (!waiter || *from_work < *waiter)) {
      key = *from_work;
      work.erase(work.begin());
    } else {
      key = *waiter;
      waiter_cursor = key;
    }
    auto it = active.find(key.id);
    if (it == active.end() || is_terminal(it->second.run.state)) {
      slot_waiters.erase(key);
      continue;
    }
    ActiveRun& v = it->second;
    core::RunProgress& p = progress_of(v);
    engine::DagRuns& dr = dag_runs[v.run.dag];
    // A queued run about to be admitted counts the runs of its DAG that `drover run`s own
    // (asked of the store now: they are not in `active`).
    bool may_start = core::may_start(v.run.state, dr.running, v.dag->max_active_runs);
    if (may_start && v.run.state == RunState::Queued && !opts.own_runs)
      may_start =
          core::may_start(v.run.state, dr.running + foreign_of(v.run.dag), v.dag->max_active_runs);
    if (!p.has_changes(now) && !(may_start && p.wants_slot(slots))) {
      file(v, may_start);
      continue;
    }
    bool was_queued = v.run.state == RunState::Queued;
    core::RunStep step = p.step(now, slots, may_start);
    if (!step.updates.empty() || !step.starts.empty() || step.run_state) {
      fx.touched_runs.insert(v.run.id);
      apply_step(v, step, now, fx);
    }
    if (was_queued && v.run.state != RunState::Queued) {
      dr.queued.erase(key);
      if (v.run.state == RunState::Running) dr.running++;
    }
    if (is_terminal(v.run.state)) {
      fx.run_changes.push_back({v.run.id, v.run.state});
      left_running(v, !was_queued);
      continue;
    }
    file(v, may_start);
  }
}

Result<TrySpec> Engine::Impl::build_spec(const ActiveRun& v, const TaskSpec& t, int try_number) {
  auto successful_try = [&v](const std::string& task) {
    auto it = v.tasks.find(task);
    if (it == v.tasks.end() || it->second.state != TaskState::Success) return 0;
    return it->second.try_number;
  };
  auto cached = [&v](const std::string& task, int n) -> const TryOutputs* {
    auto it = v.outputs.find(task);
    return it != v.outputs.end() && it->second.try_number == n ? &it->second : nullptr;
  };
  TrySpecContext c{v.run,
                   *v.dag,
                   opts.home,
                   v.project_dir.empty() ? fs::current_path().string() : v.project_dir,
                   opts.secrets,
                   successful_try,
                   [&](const std::string& task, int n) -> Result<json> {
                     if (auto* o = cached(task, n)) return o->values;
                     return store.values_of(v.run.id, task, n);
                   },
                   [&](const std::string& task, int n) -> Result<std::vector<FileRecord>> {
                     if (auto* o = cached(task, n)) return o->files;
                     return store.files_of(v.run.id, task, n, "output");
                   },
                   [&](const std::string& task) { return pinned_model_files(v, task); }};
  auto spec = build_try_spec(c, t, try_number);
  if (!spec) return spec;
  auto context = model_context(v, t, spec->with);
  if (!context) return context.error();
  spec->context = std::move(*context);
  return spec;
}

// Writes a step's task updates, starts and run state (inside the pump's transaction) and
// applies them in memory; the launches wait in `fx` for the commit.
void Engine::Impl::apply_step(ActiveRun& v, const core::RunStep& step, TimePoint now, Effects& fx) {
  Writes& w = fx.writes;
  for (auto& u : step.updates) {
    w(store.update_task(u));
    v.tasks[u.task] = u;
  }
  for (auto& st : step.starts) {
    const TaskSpec* t = v.dag->task(st.task);
    TryRecord rec;
    rec.run_id = v.run.id;
    rec.task = st.task;
    rec.try_number = st.try_number;
    rec.queue = t->queue;
    rec.started_at = now;
    rec.try_dir = layout::try_dir(opts.home, v.run.id, st.task, st.try_number).string();
    rec.log_path = layout::log(rec.try_dir).string();
    // Where it runs (host, facts) is the executor's to say, when it has started it.
    auto spec = build_spec(v, *t, st.try_number);
    if (!spec) {
      // The try cannot even be prepared (e.g. a value upstream did not publish): it fails
      // now, and the core hears of it like of any try that ended; the run is stepped again
      // in this pump, so downstream tasks and the run's state follow at once.
      rec.state = TryState::Failed;
      rec.ended_at = now;
      rec.error = spec.message();
      w(store.insert_try(rec));
      TaskInstance ti = core::after_try(*t, v.tasks[st.task], core::TryEnd::Failed, now);
      w(store.update_task(ti));
      v.tasks[st.task] = ti;  // told to the observers with the step's updates
      if (v.progress) {
        v.progress->update(ti);
        work.insert(v.key());
      }
      for (auto& a : core::try_end_alerts(*t, &ti, rec, nullptr)) fx.alerts.push_back({v.dag, a});
      spdlog::warn("run {} task {}: {}", v.run.id, st.task, rec.error);
      continue;
    }
    rec.command = spec->argv;
    for (auto& arg : rec.command) arg = Redactor::redact(arg.get<std::string>(), spec->redact);
    rec.state = TryState::Running;
    w(store.insert_try(rec));
    std::vector<FileRecord> inputs;
    for (auto& f : spec->inputs)
      inputs.push_back(FileRecord{f.path, f.sha256, f.size, f.mode, f.from_task});
    if (!inputs.empty()) w(store.add_files(v.run.id, st.task, st.try_number, "input", inputs));
    RunningTry rt{v.run.id, st.task, st.try_number, rec, std::nullopt, false, false};
    if (t->timeout) rt.deadline = now + *t->timeout;
    add_running(try_key(v.run.id, st.task, st.try_number), std::move(rt));
    fx.launches.push_back(std::move(*spec));
    arm_after(v, st.task, st.try_number, now, fx);
  }
  for (auto& u : step.updates) fx.task_changes.push_back(v.tasks[u.task]);
  if (step.run_state && *step.run_state != v.run.state) {
    v.run.state = *step.run_state;
    if (v.run.state == RunState::Running && !v.run.started_at) v.run.started_at = now;
    if (is_terminal(v.run.state)) v.run.ended_at = now;
    w(store.update_run(v.run));
  }
}

}  // namespace drover
