// Recovery (scheduler/engine_impl.hpp): at start, the unfinished runs are read back from
// the store and the tries an earlier daemon left running are handed to the executor to
// adopt (it reports their end like any other). A run that belongs to a live `drover run`
// is left to it.
#include "executor/proc.hpp"
#include "scheduler/dag_loader.hpp"
#include "scheduler/engine_impl.hpp"

namespace drover {

namespace fs = std::filesystem;
using namespace engine;

namespace {

// Pickups by recovery with no try of the run ended in between, after which the next pickup
// fails the run instead.
constexpr int kMaxRecoveriesWithoutProgress = 3;

// Fails a run recovery will not pick up, in one transaction: the run (with `why` as its
// error), its tries that have no end (with `why` too), and its unfinished task instances.
Status fail_unrecovered(Store& store, RunRecord& run, TimePoint now, const std::string& why) {
  spdlog::error("run {}: {}; failing it", run.id, why);
  auto tasks = store.tasks_of(run.id);
  if (!tasks) return tasks.error();
  auto tries = store.tries_of(run.id);
  if (!tries) return tries.error();
  Transaction tx(store);
  if (!tx.status()) return tx.status();
  for (TryRecord& tr : *tries) {
    if (tr.ended_at) continue;
    if (tr.state == TryState::Armed && disarm_pid_file(tr.try_dir)) {  // never started
      if (auto s = store.delete_armed_try(tr.run_id, tr.task, tr.try_number); !s) return s;
      continue;
    }
    tr.state = TryState::Failed;
    tr.ended_at = now;
    tr.error = why;
    if (auto s = store.update_try(tr); !s) return s;
  }
  for (TaskInstance& ti : *tasks) {
    if (is_terminal(ti.state)) continue;
    ti.state = TaskState::Failed;
    ti.next_try_at.reset();
    if (auto s = store.update_task(ti); !s) return s;
  }
  run.state = RunState::Failed;
  run.ended_at = now;
  run.error = why;
  if (auto s = store.update_run(run); !s) return s;
  return tx.commit();
}

// An Armed try found at recovery (TryState::Armed): disarmed (its row deleted: it never
// started, and now never will) or, when its worker claimed it first, Running, and its task
// instance with it. `tr` and `tasks` are updated to what is committed.
Status take_over_armed(Store& store, TryRecord& tr, std::map<std::string, TaskInstance>& tasks) {
  if (disarm_pid_file(tr.try_dir)) {
    spdlog::info("try {} {} {} was armed and never started; dropped", tr.run_id, tr.task,
                 tr.try_number);
    return store.delete_armed_try(tr.run_id, tr.task, tr.try_number);
  }
  Transaction tx(store);
  if (!tx.status()) return tx.status();
  TryRecord running = tr;
  running.state = TryState::Running;
  if (auto s = store.update_try(running); !s) return s;
  auto ti = tasks.find(tr.task);
  std::optional<TaskInstance> now;
  if (ti != tasks.end() && !is_terminal(ti->second.state)) {
    now = ti->second;
    now->state = TaskState::Running;
    now->try_number = tr.try_number;
    now->next_try_at.reset();
    if (auto s = store.update_task(*now); !s) return s;
  }
  if (auto s = tx.commit(); !s) return s;
  tr = running;
  if (now) ti->second = *now;
  return {};
}

}  // namespace

std::string Engine::Impl::handle_of(const TryRecord& rec) {
  auto h = rec.facts.find("handle");
  if (h != rec.facts.end() && h->is_string()) return h->get<std::string>();
  return local_try_handle(rec.try_dir);
}

Status Engine::Impl::recover() {
  auto runs = store.unfinished_runs();
  if (!runs) return runs.error();
  for (auto& run : *runs) {
    auto took = take_over(run);
    if (!took) return took.error();
    if (!*took) {
      spdlog::info("run {} belongs to a live `drover run`; leaving it alone", run.id);
      if (run.state == RunState::Running) foreign_running[run.dag]++;
    }
  }
  return {};
}

Result<bool> Engine::Impl::take_over(RunRecord run) {
  {
    fs::path owner = layout::owner_lock(opts.home, run.id);
    if (fs::exists(owner)) {  // made by `drover run`
      auto lock = FileLock::acquire(owner, true, /*wait=*/false);
      if (!lock && lock.error().code == Errc::Busy) return false;
      if (!lock) return lock.error();
      // Its owner is gone (the lock is released again here): this daemon takes it over.
      spdlog::info("run {}: its `drover run` is gone; taking it over", run.id);
    }
    // The crash counter: a run whose runner died on it is not picked up into the same crash
    // forever. Each pickup after an unclean stop is counted (and committed) before the run is
    // rebuilt; the store sets the count back to 0 when a try of the run ends (store.hpp
    // count_recovery). After a clean stop nothing is counted and nothing is failed: a
    // deploy's restarts are not crashes.
    if (!opts.previous_stop_clean) {
      if (run.recoveries >= kMaxRecoveriesWithoutProgress) {
        std::string why = "recovered " + std::to_string(run.recoveries) +
                          " times without progress; the runner may crash on it";
        if (auto s = fail_unrecovered(store, run, clock.now(), why); !s) return s.error();
        return true;
      }
      if (auto n = store.count_recovery(run.id); !n) return n.error();
    }
    DagPtr dag;
    auto content = store.dag_version_content(run.dag_hash);
    if (!content) return content.error();
    std::string unloadable = "its DAG version " + run.dag_hash.substr(0, 12) + " is not stored";
    if (*content) {
      LoadResult r = load_dag_text(**content, run.dag + ".yaml@" + run.dag_hash.substr(0, 12),
                                   opts.dag_limits);
      dag = r.dag;
      if (!dag && !r.diagnostics.empty())
        unloadable = "its DAG version cannot be loaded: " + r.diagnostics.front().str();
    }
    if (!dag) {
      if (auto s = fail_unrecovered(store, run, clock.now(), unloadable); !s) return s.error();
      return true;
    }
    ActiveRun a;
    a.run = run;
    a.dag = dag;
    auto tasks = store.tasks_of(run.id);
    if (!tasks) return tasks.error();
    for (auto& t : *tasks) a.tasks[t.task] = t;
    // {{ project_dir }}: the live DAG's folder when this DAG is loaded, else the stored
    // version's git top level, else the current folder.
    if (!opts.project_dir.empty()) {
      a.project_dir = opts.project_dir;
    } else if (auto live = dags.find(run.dag); live != dags.end()) {
      a.project_dir = project_dir_for(
          *live->second.dag, git_info(fs::absolute(fs::path(live->second.file)).parent_path()));
    } else {
      GitInfo git = git_info(fs::absolute(fs::path(dag->file)).parent_path());
      a.project_dir = git.toplevel.empty() ? fs::current_path().string() : git.toplevel;
    }
    auto tries = store.tries_of(run.id);
    if (!tries) return tries.error();
    for (auto& tr : *tries) {
      if (tr.ended_at) continue;
      if (tr.state == TryState::Armed) {
        // A chained start of the daemon that died: disarmed now unless its worker claimed it
        // first (then it runs, or is about to, and is adopted like any running try).
        if (auto s = take_over_armed(store, tr, a.tasks); !s) return s.error();
        if (tr.state == TryState::Armed) continue;  // deleted: it never started
      }
      std::string key = try_key(tr.run_id, tr.task, tr.try_number);
      RunningTry rt{tr.run_id, tr.task, tr.try_number, tr, std::nullopt, false, false};
      rt.timed_out = tr.state == TryState::TimedOut;
      const TaskSpec* spec = dag->task(tr.task);
      if (spec && spec->timeout) rt.deadline = tr.started_at + *spec->timeout;
      running[key] = rt;
      spdlog::info("adopting try {} from an earlier daemon", key);
      exec.adopt(key, handle_of(tr));
    }
    active[run.id] = std::move(a);
  }
  return true;
}

int Engine::Impl::foreign_of(const std::string& dag) {
  RunFilter f;
  f.dag = dag;
  f.state = RunState::Running;
  f.limit = -1;
  auto runs = store.list_runs(f);
  if (!runs) return foreign_running[dag];  // as last seen
  int n = 0;
  for (auto& r : *runs) {
    if (active.count(r.id)) continue;
    auto lock = FileLock::acquire(layout::owner_lock(opts.home, r.id), true, /*wait=*/false);
    n += !lock && lock.error().code == Errc::Busy;
  }
  return foreign_running[dag] = n;
}

void Engine::Impl::watch_foreign() {
  if (stopped) return;
  foreign_timer.expires_after(kForeignPoll);
  foreign_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped) return;
    check_foreign();
    watch_foreign();
  });
}

// A run whose `drover run` died (kill -9, a lost ssh session) is taken over here within
// kForeignPoll, with its tries adopted as at a start; the runs a live one owns are counted
// again, and runs queued behind ones that ended are stepped.
void Engine::Impl::check_foreign() {
  auto runs = store.unfinished_runs();
  if (!runs) return;
  std::map<std::string, int> now_running;
  bool took_any = false;
  for (auto& run : *runs) {
    if (active.count(run.id)) continue;
    auto took = take_over(run);
    if (!took) {
      spdlog::error("run {}: taking it over: {}", run.id, took.message());
      continue;
    }
    if (!*took) {
      if (run.state == RunState::Running) now_running[run.dag]++;
      continue;
    }
    took_any = true;
    auto a = active.find(run.id);
    if (a == active.end()) continue;  // failed as unrecoverable
    for (auto& [key, rt] : running) {
      if (rt.run_id != run.id) continue;
      running_by_queue[rt.rec.queue]++;
      a->second.running_tries++;
    }
    track(a->second);
  }
  for (auto& [dag, n] : foreign_running) {
    if (now_running[dag] >= n) continue;
    // Fewer of them run: the runs queued behind them may start.
    auto d = dag_runs.find(dag);
    if (d == dag_runs.end()) continue;
    for (auto& k : d->second.queued) work.insert(k);
    d->second.queued.clear();
    took_any = true;
  }
  foreign_running = std::move(now_running);
  if (took_any) pump();
}

}  // namespace drover
