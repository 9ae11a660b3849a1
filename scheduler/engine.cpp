// The Engine's loop: plan, commit, act (scheduler/engine_impl.hpp).
#include "common/time.hpp"
#include "scheduler/engine_impl.hpp"

namespace drover {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace engine;

Engine::Impl::Impl(Engine& e, asio::io_context& io_, const Clock& c, Store& s, Executor& x,
                   EngineOptions o)
    : self(e),
      io(io_),
      clock(c),
      steady(c),
      store(s),
      exec(x),
      opts(std::move(o)),
      timer(io_),
      started_timer(io_),
      foreign_timer(io_) {
  // Try folders and log paths in the records are absolute whatever the caller's --home.
  if (!opts.home.empty()) opts.home = fs::absolute(opts.home);
  if (opts.dags_dir) dag_source = make_dag_folder(io, *opts.dags_dir, opts.dag_limits);
}

// ---- DAGs -----------------------------------------------------------------------------------

void Engine::Impl::reload_dags() {
  if (!dag_source) return;
  DagSource::Scan scan = dag_source->scan();
  // Every new DAG version of this scan is stored in one commit (one fsync, not one per file);
  // a DAG whose version cannot be stored is not taken (its runs could not be traced).
  std::map<std::string, DagEntry> next = dags;
  {
    Transaction txn(store);
    Writes w;
    w(txn.status());
    std::vector<std::string> taken;
    for (auto& [file, dag] : scan.dags) {
      auto it = dags.find(dag->id);
      if (it != dags.end() && it->second.dag->file_hash == dag->file_hash &&
          it->second.file == file)
        continue;
      if (!w(store.put_dag_version(dag->file_hash, dag->id, file, dag->content))) break;
      next[dag->id] = DagEntry{dag, file, std::nullopt};
      taken.push_back(file);
    }
    if (w.ok()) w(txn.commit());
    if (!w.ok()) {
      spdlog::error("storing DAG versions: {}; keeping the DAGs as they were", w.error().message);
      return;
    }
    for (auto& file : taken) spdlog::info("loaded DAG {} from {}", scan.dags[file]->id, file);
  }
  // A DAG whose file is gone is removed; one whose file is broken keeps its last good
  // version (and its error is reported).
  for (auto it = next.begin(); it != next.end();) {
    if (!scan.files.count(it->second.file)) {
      spdlog::info("DAG {} removed ({} is gone)", it->first, it->second.file);
      it = next.erase(it);
    } else {
      ++it;
    }
  }
  dags = std::move(next);
  schedules_dirty = true;
  for (auto& [file, diags] : scan.errors)
    for (auto& d : diags) spdlog::warn("{}", d.str());
  load_errors = std::move(scan.errors);
}

// ---- the loop -------------------------------------------------------------------------------

void Engine::Impl::post_pump() {
  asio::post(io, [this] { pump(); });
}

void Engine::Impl::pump() {
  if (stopped) return;
  if (in_pump) {
    pump_again = true;
    return;
  }
  in_pump = true;
  do {
    pump_again = false;
    pump_once();
  } while (pump_again);
  in_pump = false;
}

// Plan: every decision of this moment (tries that ended, cron runs due, timeouts, SLAs, due
// retries, starts while slots are free), each asked of the core and written to the store
// in one transaction. Commit. Act on it — or, when any write or the commit failed, undo it
// in memory and act on nothing; the next pump tries again.
void Engine::Impl::pump_once() {
  TimePoint now = steady.now();
  if (Micros skew = steady.skew(); std::chrono::abs(skew - told_skew) > std::chrono::seconds(2)) {
    Micros moved = skew - told_skew;
    spdlog::warn(
        "the wall clock moved {}{} against the monotonic clock: timeouts, retries and "
        "SLA waits go on counting on the monotonic clock; cron follows the wall clock",
        moved < Micros(0) ? "back " : "forward ", format_duration(std::chrono::abs(moved)));
    told_skew = skew;
  }
  Effects fx;
  fx.finishes.swap(pending_finishes);
  fx.started.swap(pending_started);
  {
    Transaction txn(store);
    fx.writes(txn.status());
    if (fx.writes.ok()) {
      // In the order heard: a try's end before the chained start that followed it.
      for (auto& ev : fx.finishes) {
        if (armed.count(ev.key) && !running.count(ev.key))
          record_armed(ev, now, fx);
        else if (ev.kind == TryEvent::Kind::Finished)
          record_finish(ev, now, fx);
      }
      record_started(fx);
      fire_schedules(clock.now(), fx);
      expire_timeouts(now, fx);
      check_slas(now, fx);
      // Retries now due: their runs have work.
      while (!retry_wakes.empty() && retry_wakes.top().first <= now) {
        auto a = active.find(retry_wakes.top().second);
        if (a != active.end()) {
          a->second.retry_armed.reset();
          work.insert(a->second.key());
        }
        retry_wakes.pop();
      }
      core::Slots slots = free_slots();
      step_runs(now, slots, fx);
      if (!armed.empty()) disarm_stale(fx);
    }
    if (!commit(fx, txn)) {
      undo(fx, now);
      // Back off while the store keeps failing (disk full, locked): 1 s, 2 s, ... 30 s.
      auto wait = std::chrono::seconds(std::min(30, 1 << std::min(failed_commits, 5)));
      ++failed_commits;
      arm_timer(TimePoint(now + wait));
      return;
    }
  }
  failed_commits = 0;
  if (pending_started.empty() && started_armed) {  // written by this pump: no flush needed
    started_armed = false;
    started_timer.cancel();
  }
  act(fx);
  // A finished run leaves the active set once no try of it still runs.
  for (auto& id : retire) {
    auto it = active.find(id);
    if (it == active.end() || !is_terminal(it->second.run.state)) continue;
    if (it->second.running_tries > 0) continue;  // retired when its last try is recorded
    slot_waiters.erase(it->second.key());
    work.erase(it->second.key());
    active.erase(it);
  }
  retire.clear();
  std::optional<TimePoint> wake;
  if (earliest_fire) wake = steady.from_wall(*earliest_fire);
  // Tries running are bounded by the slots: their deadlines are scanned, not the runs.
  for (auto& [k, rt] : running)
    if (rt.deadline && !rt.timed_out && (!wake || *rt.deadline < *wake)) wake = rt.deadline;
  if (!retry_wakes.empty() && (!wake || retry_wakes.top().first < *wake))
    wake = retry_wakes.top().first;
  if (!sla_wakes.empty() && (!wake || sla_wakes.top().first < *wake)) wake = sla_wakes.top().first;
  // More work than this pump did: go again.
  if (!work.empty()) wake = now;
  arm_timer(wake);
}

bool Engine::Impl::commit(Effects& fx, Transaction& txn) {
  if (fx.writes.ok()) fx.writes(txn.commit());
  if (fx.writes.ok()) return true;
  spdlog::error("store commit failed, nothing of it is acted on: {}", fx.writes.error().message);
  return false;  // ~Transaction rolls back
}

// A start the executor refuses ends that try at once: its end is heard by the next pump,
// as every try's end is (the refusal comes after this pump's commit; nothing is written here).
void Engine::Impl::act(Effects& fx) {
  for (auto& spec : fx.launches) {
    Status s = exec.start(spec);
    if (s.ok()) continue;
    TryEvent ev;
    ev.kind = TryEvent::Kind::Finished;
    ev.key = try_key(spec.run_id, spec.task, spec.try_number);
    ev.error = s.message();
    ev.refused = true;
    spdlog::warn("try {}: the executor refused it: {}", ev.key, ev.error);
    on_event(ev);
  }
  for (auto& spec : fx.arms) {
    Status s = exec.start(spec);
    if (s.ok()) continue;
    TryEvent ev;  // not taken: it never starts, and its task starts the usual way
    ev.kind = TryEvent::Kind::Finished;
    ev.key = try_key(spec.run_id, spec.task, spec.try_number);
    ev.not_started = true;
    spdlog::debug("try {}: not armed: {}", ev.key, s.message());
    on_event(ev);
  }
  for (auto& [key, why] : fx.kills) exec.kill(key, why);
  if (opts.alerts)
    for (auto& [dag, a] : fx.alerts) {
      a.dag = dag->id;
      if (a.dedup_key.empty()) a.dedup_key = a.dag + "/" + a.run_id + "/" + a.task + "/" + a.kind;
      opts.alerts->send(*dag, std::move(a));
    }
  if (self.task_observer_)
    for (auto& t : fx.task_changes) self.task_observer_(t.run_id, t.task, t.state, t.try_number);
  for (auto& [id, state] : fx.run_changes) {
    spdlog::info("run {} {}", id, to_string(state));
    if (self.run_observer_) self.run_observer_(id, state);
  }
}

// The commit failed: memory goes back to what the store holds, so the next pump decides
// again from the truth. Runs this pump changed are read back; runs it created are dropped;
// tries it recorded as ended run again (their ends are heard again), tries it started never
// started, timeouts and SLA alerts it decided are decided again.
void Engine::Impl::undo(Effects& fx, TimePoint now) {
  for (auto& spec : fx.launches) {
    auto it = running.find(try_key(spec.run_id, spec.task, spec.try_number));
    if (it != running.end()) running.erase(it);
  }
  for (auto& [key, rt] : fx.ended_tries) running[key] = rt;
  // Chained starts: those armed by this pump were not; those it took off `armed` are on it
  // again, and not running (their events are heard again).
  for (auto& key : fx.armed_now) {
    auto it = armed.find(key);
    if (it == armed.end()) continue;
    armed_after.erase(it->second.after);
    armed.erase(it);
  }
  for (auto& key : fx.chain_started) running.erase(key);
  for (auto& [key, a] : fx.disarmed) {
    armed_after[a.after] = key;
    armed[key] = a;
  }
  for (auto& key : fx.timed_out) {
    auto it = running.find(key);
    if (it == running.end()) continue;
    it->second.timed_out = false;
    it->second.rec.state = TryState::Running;
    it->second.rec.error.clear();
  }
  for (auto& wake : fx.sla_alerted) {
    sla_alerted.erase(wake.second);
    sla_wakes.push(wake);
  }
  for (auto& id : fx.created_runs) {
    active.erase(id);
    fx.touched_runs.erase(id);
  }
  for (auto& id : fx.owner_lock_runs) owner_locks.erase(id);
  for (auto& id : fx.fired_dags) {
    auto d = dags.find(id);
    if (d != dags.end()) d->second.next_fire.reset();
    schedules_dirty = true;
  }
  for (auto& id : fx.touched_runs) {
    auto it = active.find(id);
    if (it == active.end()) continue;
    if (auto s = reload_run(it->second); !s)
      spdlog::error("run {}: reading it back after a failed commit: {}", id, s.message());
  }
  // The tries' ends are heard again by the next pump, before anything heard since; so are
  // their starts (the facts stay in memory, in `running`).
  fx.finishes.insert(fx.finishes.end(), pending_finishes.begin(), pending_finishes.end());
  pending_finishes = std::move(fx.finishes);
  pending_started.insert(fx.started.begin(), fx.started.end());
  reindex();
  (void)now;
}

// Rebuilds what is derived from `active` and `running`: the counts per queue, per run and
// per DAG, and the work set (every run is stepped again).
void Engine::Impl::reindex() {
  running_by_queue.clear();
  dag_runs.clear();
  work.clear();
  slot_waiters.clear();
  for (auto& [id, a] : active) a.running_tries = 0;
  for (auto& [key, rt] : running) {
    running_by_queue[rt.rec.queue]++;
    auto a = active.find(rt.run_id);
    if (a != active.end()) a->second.running_tries++;
  }
  for (auto& [id, a] : active) {
    if (a.run.state == RunState::Running) dag_runs[a.run.dag].running++;
    work.insert(a.key());
  }
}

void Engine::Impl::arm_timer(std::optional<TimePoint> wake) {
  if (stopped) return;
  next_wake = wake;
  if (!wake) {
    timer.cancel();
    return;
  }
  auto delay = *wake - steady.now();
  if (delay < Micros(0)) delay = Micros(0);
  // Cap long sleeps so that a cron fire is on time within a minute of a wall-clock jump.
  if (delay > std::chrono::minutes(1)) delay = std::chrono::minutes(1);
  timer.expires_after(delay + Micros(500));
  timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) pump();
  });
}

// Where a try runs (Started) is kept in `running` at once and written by the next pump
// (record_started), whatever makes it run — at the latest kStartedFlush after the Started,
// so that the handle is in the store for a daemon that must adopt the try after a crash.
// A try that ends sooner has its facts written with its end: one write per try, not two.
void Engine::Impl::on_event(const TryEvent& ev) {
  auto it = running.find(ev.key);
  if (it == running.end() && armed.count(ev.key)) {
    // A chained start started, or never will: the next pump records it, in order after the
    // end of the try it followed.
    pending_finishes.push_back(ev);
    post_pump_once();
    return;
  }
  if (it == running.end()) return;  // not ours (or already recorded)
  if (ev.kind == TryEvent::Kind::Started) {
    note_where_it_runs(it->second.rec, ev);
    pending_started.insert(ev.key);
    arm_started_flush();
    return;
  }
  // Finishes are recorded in the same transaction as the decisions they enable (one
  // fsync for "A ended, B starts"), and finishes arriving together share it too.
  pending_finishes.push_back(ev);
  post_pump_once();
}

// One pump posted for every event heard before it runs.
void Engine::Impl::post_pump_once() {
  if (pump_posted) return;
  pump_posted = true;
  asio::post(io, [this] {
    pump_posted = false;
    pump();
  });
}

// A Started's facts in the try's record: its process, where it runs, its handle.
void Engine::Impl::note_where_it_runs(TryRecord& rec, const TryEvent& ev) {
  rec.pid = ev.pid;
  rec.pid_start = ev.pid_start;
  rec.facts = ev.facts.is_object() ? ev.facts : json::object();
  if (!ev.handle.empty()) rec.facts["handle"] = ev.handle;
  if (auto h = rec.facts.find("hostname"); h != rec.facts.end() && h->is_string())
    rec.host = h->get<std::string>();
}

void Engine::Impl::arm_started_flush() {
  if (started_armed || stopped) return;
  started_armed = true;
  started_timer.expires_after(kStartedFlush);
  started_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    started_armed = false;
    pump();
  });
}

// ---- Engine ---------------------------------------------------------------------------------

Engine::Engine(asio::io_context& io, const Clock& clock, Store& store, Executor& executor,
               EngineOptions opts)
    : impl_(std::make_unique<Impl>(*this, io, clock, store, executor, std::move(opts))) {
  impl_->exec.set_callback([this](const TryEvent& ev) { impl_->on_event(ev); });
}

Engine::~Engine() { stop(); }

Status Engine::start() {
  if (auto s = make_dirs(layout::runs_dir(impl_->opts.home)); !s) return s;
  impl_->reload_dags();
  if (auto s = impl_->recover(); !s) return s;
  // Recovered runs and their adopted tries, counted once; every run is stepped at once.
  for (auto& [key, rt] : impl_->running) {
    impl_->running_by_queue[rt.rec.queue]++;
    auto a = impl_->active.find(rt.run_id);
    if (a != impl_->active.end()) a->second.running_tries++;
  }
  for (auto& [id, a] : impl_->active) impl_->track(a);
  if (impl_->dag_source)
    impl_->dag_source->watch([this] {
      impl_->reload_dags();
      impl_->pump();
    });
  if (!impl_->opts.own_runs) impl_->watch_foreign();
  impl_->post_pump();
  return {};
}

void Engine::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->timer.cancel();
  impl_->started_timer.cancel();
  impl_->foreign_timer.cancel();
  if (impl_->dag_source) impl_->dag_source->stop();
}

void Engine::add_dag(DagPtr dag) {
  std::string id = dag->id, file = dag->file;
  impl_->dags[id] = DagEntry{std::move(dag), file, {}};
  impl_->schedules_dirty = true;
}

Result<std::string> Engine::create_run(const DagPtr& dag, const json& params, bool from_cli,
                                       const std::string& kind, const std::string& user,
                                       std::optional<core::DueRun> interval) {
  return impl_->create_run(dag, params, from_cli, kind, user, interval, nullptr);
}

void Engine::reload_dags() { impl_->reload_dags(); }
void Engine::pump() { impl_->pump(); }
size_t Engine::active_runs() const { return impl_->active.size(); }
std::optional<TimePoint> Engine::next_wake() const { return impl_->next_wake; }

}  // namespace drover
