#include "scheduler/daemon.hpp"

#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <boost/asio.hpp>

#include "common/fs.hpp"
#include "common/redact.hpp"
#include "common/time.hpp"
#include "scheduler/alerts.hpp"
#include "scheduler/dag_loader.hpp"
#include "scheduler/git.hpp"
#include "scheduler/store_json.hpp"
#include "scheduler/template.hpp"

namespace drover {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

struct DagEntry {
  DagPtr dag;
  std::string file;
  std::optional<TimePoint> next_fire;
};

struct RunningTry {
  std::string run_id, task;
  int try_number = 0;
  TryRecord rec;
  std::optional<TimePoint> deadline;
  bool timed_out = false;
  bool cancelled = false;
};

// Runs start in creation order (then seq, then id): oldest first across runs and DAGs.
struct RunKey {
  TimePoint created_at;
  long long seq = 0;
  std::string id;
  bool operator<(const RunKey& o) const {
    if (created_at != o.created_at) return created_at < o.created_at;
    if (seq != o.seq) return seq < o.seq;
    return id < o.id;
  }
};

// An unfinished run: its record and instances (the view the try-spec builder reads) and
// the incremental core state that decides its steps (built on the first step).
// What a successful try published, as recorded: kept for the tries downstream of it, which
// would otherwise read it back from the store for every start.
struct TryOutputs {
  int try_number = 0;
  json values = json::object();
  std::vector<FileRecord> files;
};

struct ActiveRun : core::RunView {
  std::unique_ptr<core::RunProgress> progress;
  std::map<std::string, TryOutputs> outputs;  // by task: its latest successful try's
  int running_tries = 0;                      // tries of this run in Impl::running
  std::optional<TimePoint> retry_armed;       // the retry time last put on the wake heap
  ActiveRun() = default;
  ActiveRun& operator=(core::RunView&& v) {
    static_cast<core::RunView&>(*this) = std::move(v);
    progress.reset();
    return *this;
  }
  RunKey key() const { return RunKey{run.created_at, run.seq, run.id}; }
};

// Per DAG id: runs counted against max_active_runs, and queued runs waiting for them.
struct DagRuns {
  int running = 0;
  std::set<RunKey> queued;
};

using WakeAt = std::pair<TimePoint, std::string>;  // (time, run id)
using WakeHeap = std::priority_queue<WakeAt, std::vector<WakeAt>, std::greater<>>;

std::string hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

std::string param_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

}  // namespace

struct Engine::Impl {
  Engine& self;
  asio::io_context& io;
  const Clock& clock;
  Store& store;
  Executor& exec;
  EngineOptions opts;
  asio::steady_timer timer;
  std::map<std::string, DagEntry> dags;
  std::map<std::string, std::vector<Diagnostic>> load_errors;  // by file
  std::map<std::string, ActiveRun> active;                     // unfinished runs
  std::map<std::string, RunningTry> running;                   // by try key
  // What the next pump steps (never a scan of `active`): runs with changes (created, a try
  // ended, a start failed, a retry due, max_active_runs freed), runs waiting for a slot,
  // and per DAG the runs waiting for max_active_runs; all ordered oldest first.
  std::set<RunKey> work;
  std::set<RunKey> slot_waiters;
  std::map<std::string, DagRuns> dag_runs;
  WakeHeap retry_wakes;  // runs with a retry waiting
  WakeHeap sla_wakes;    // runs with an SLA not yet due
  std::map<std::string, int> running_by_queue;
  std::set<std::string> retire;  // terminal runs to drop once no try of theirs runs
  std::string host = hostname();
  bool in_pump = false, pump_again = false, stopped = false, pump_posted = false;
  std::optional<TimePoint> next_wake;       // on the injected clock: when pump() has work next
  std::vector<TryEvent> pending_finishes;   // recorded by the next pump
  std::vector<TaskInstance> changed_tasks;  // to tell observers after the commit
  int inotify_fd = -1;
  std::unique_ptr<asio::posix::stream_descriptor> watch;
  std::unique_ptr<asio::steady_timer> reload_timer;
  std::array<char, 16384> watch_buf{};

  std::vector<FileLock> owner_locks;  // own_runs: the owner.lock of each run created

  Impl(Engine& e, asio::io_context& io_, const Clock& c, Store& s, Executor& x, EngineOptions o)
      : self(e), io(io_), clock(c), store(s), exec(x), opts(std::move(o)), timer(io_) {
    // Try folders and log paths in the records are absolute whatever the caller's --home.
    if (!opts.home.empty()) opts.home = fs::absolute(opts.home);
  }

  fs::path owner_lock_path(const std::string& run_id) const {
    return opts.home / "runs" / run_id / "owner.lock";
  }

  // ---- DAGs ---------------------------------------------------------------------------

  void reload_dags() {
    if (!opts.dags_dir) return;
    std::map<std::string, std::string> seen_ids;  // id -> file
    std::set<std::string> files_now;
    std::map<std::string, std::vector<Diagnostic>> errors;
    // Every new DAG version of this scan is stored in one commit (one fsync, not one per file).
    Transaction txn(store);
    for (auto& path : find_dag_files(*opts.dags_dir)) {
      std::string file = path.string();
      files_now.insert(file);
      LoadResult r = load_dag_file(path);
      if (!r.dag) {
        errors[file] = r.diagnostics;
        continue;
      }
      if (seen_ids.count(r.dag->id)) {
        errors[file].push_back(Diagnostic{
            file, 1, 1, "dag id '" + r.dag->id + "' is already defined in " + seen_ids[r.dag->id]});
        continue;
      }
      seen_ids[r.dag->id] = file;
      auto it = dags.find(r.dag->id);
      if (it != dags.end() && it->second.dag->file_hash == r.dag->file_hash) continue;
      if (auto s = store.put_dag_version(r.dag->file_hash, r.dag->id, file, r.dag->content); !s)
        spdlog::error("storing DAG version of {}: {}", file, s.message());
      spdlog::info("loaded DAG {} from {}", r.dag->id, file);
      dags[r.dag->id] = DagEntry{r.dag, file, std::nullopt};
    }
    // A DAG whose file is gone is removed; one whose file is broken keeps its last good
    // version (and its error is reported).
    for (auto it = dags.begin(); it != dags.end();) {
      if (!files_now.count(it->second.file)) {
        spdlog::info("DAG {} removed ({} is gone)", it->first, it->second.file);
        it = dags.erase(it);
      } else {
        ++it;
      }
    }
    if (auto st = txn.commit(); !st) spdlog::error("storing DAG versions: {}", st.message());
    for (auto& [file, diags] : errors)
      for (auto& d : diags) spdlog::warn("{}", d.str());
    load_errors = std::move(errors);
  }

  void start_watch() {
    if (!opts.dags_dir) return;
    inotify_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd < 0) return;
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                          IN_MODIFY | IN_ATTRIB;
    ::inotify_add_watch(inotify_fd, opts.dags_dir->c_str(), mask);
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(*opts.dags_dir, ec); !ec && it != fs::end(it);
         it.increment(ec))
      if (it->is_directory()) ::inotify_add_watch(inotify_fd, it->path().c_str(), mask);
    watch = std::make_unique<asio::posix::stream_descriptor>(io, inotify_fd);
    reload_timer = std::make_unique<asio::steady_timer>(io);
    read_watch();
  }

  void read_watch() {
    watch->async_read_some(asio::buffer(watch_buf),
                           [this](const boost::system::error_code& ec, size_t) {
                             if (ec || stopped) return;
                             // Changes come in bursts (editors write, rename, chmod): settle.
                             reload_timer->expires_after(std::chrono::milliseconds(150));
                             reload_timer->async_wait([this](const boost::system::error_code& e) {
                               if (e || stopped) return;
                               reload_dags();
                               pump();
                             });
                             read_watch();
                           });
  }

  // ---- runs ---------------------------------------------------------------------------

  std::string project_dir_for(const DagSpec& dag, const GitInfo& git) {
    if (!opts.project_dir.empty()) return opts.project_dir;
    if (!git.toplevel.empty()) return git.toplevel;
    return fs::absolute(fs::path(dag.file)).parent_path().string();
  }

  Result<std::string> create_run(const DagPtr& dag, const json& given, bool from_cli,
                                 const std::string& kind, const std::string& user,
                                 std::optional<core::DueRun> interval, bool commit_now = true) {
    json typed = json::object();
    if (!given.is_null() && !given.is_object())
      return make_error("params must be a JSON object", "invalid");
    if (from_cli) {
      for (auto& [name, v] : given.items()) {
        const ParamSpec* p = dag->param(name);
        if (!p) {
          typed[name] = v;  // resolve_params reports the unknown name
          continue;
        }
        auto parsed = p->parse_cli(v.is_string() ? v.get<std::string>() : v.dump());
        if (!parsed) return make_error(parsed.message(), "invalid");
        typed[name] = *parsed;
      }
    } else if (given.is_object()) {
      typed = given;
    }
    auto params = dag->resolve_params(typed);
    if (!params) return make_error(params.message(), "invalid");

    // The sequence number, the DAG version and the run are one commit (one fsync), unless
    // the caller's transaction holds them (the scheduler's pump).
    std::optional<Transaction> txn;
    if (commit_now) {
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
    run.trigger_kind = kind;
    run.trigger_user = user;
    run.created_at = clock.now();
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
      auto lock = FileLock::acquire(owner_lock_path(run.id), true, /*wait=*/false);
      if (!lock) return lock.error();
      owner_locks.push_back(std::move(*lock));
    }
    if (auto s = store.insert_run(run, tasks); !s) return s.error();
    if (txn)
      if (auto s = txn->commit(); !s) return s.error();
    project_dirs[run.id] = project_dir_for(*dag, git);
    ActiveRun& a = active[run.id];
    a = std::move(view);
    track(a);
    spdlog::info("run {} created ({} by {})", run.id, kind, user);
    if (commit_now) post_pump();
    return run.id;
  }

  std::map<std::string, std::string> project_dirs;  // run id -> {{ project_dir }}

  void post_pump() {
    asio::post(io, [this] { pump(); });
  }

  fs::path try_dir(const std::string& run_id, const std::string& task, int try_number) {
    return opts.home / "runs" / run_id / task / std::to_string(try_number);
  }

  // The latest successful try of a task in a run (0 when none).
  int successful_try(const core::RunView& v, const std::string& task) {
    auto it = v.tasks.find(task);
    if (it == v.tasks.end() || it->second.state != TaskState::Success) return 0;
    return it->second.try_number;
  }

  // Builds the resolved spec of a try; an error fails the try before it starts.
  Result<TrySpec> build_spec(const ActiveRun& v, const TaskSpec& t, int try_number) {
    TrySpec s;
    s.run_id = v.run.id;
    s.dag = v.dag->id;
    s.task = t.id;
    s.type = t.type;
    s.try_number = try_number;
    s.home = fs::absolute(opts.home).string();
    auto pd = project_dirs.find(v.run.id);
    s.project_dir = pd != project_dirs.end() ? pd->second : fs::current_path().string();
    s.try_dir = fs::absolute(try_dir(v.run.id, t.id, try_number)).string();
    s.outputs = t.outputs;
    if (t.timeout) s.timeout_ms = t.timeout->count() / 1000;

    // Inputs: every ancestor this task reads through {{ inputs.X.path }}, and its direct needs.
    std::set<std::string> input_tasks(t.needs.begin(), t.needs.end());
    std::map<std::string, json> values_cache;
    auto values_of = [&](const std::string& task) -> json {
      auto it = values_cache.find(task);
      if (it != values_cache.end()) return it->second;
      json vals = json::object();
      if (int n = successful_try(v, task); n > 0) {
        auto cached = v.outputs.find(task);
        if (cached != v.outputs.end() && cached->second.try_number == n)
          vals = cached->second.values;
        else if (auto r = store.values_of(v.run.id, task, n))
          vals = *r;
      }
      values_cache[task] = vals;
      return vals;
    };
    std::string missing_error;
    TemplateLookup lookup = [&](std::string_view name) -> std::optional<std::string> {
      std::string n(name);
      if (n == "run.id") return v.run.id;
      if (n == "run.logical_date" && v.run.logical_date) return format_iso_utc(*v.run.logical_date);
      if (n == "run.interval_start")
        return v.run.interval_start ? format_iso_utc(*v.run.interval_start) : "";
      if (n == "run.interval_end")
        return v.run.interval_end ? format_iso_utc(*v.run.interval_end) : "";
      if (n == "project_dir") return s.project_dir;
      if (n.rfind("params.", 0) == 0) {
        std::string p = n.substr(7);
        if (v.run.params.contains(p)) return param_text(v.run.params[p]);
        return std::nullopt;
      }
      if (n.rfind("inputs.", 0) == 0) {
        auto dot = n.find('.', 7);
        if (dot == std::string::npos || n.substr(dot + 1) != "path") return std::nullopt;
        std::string task = n.substr(7, dot - 7);
        input_tasks.insert(task);
        return (fs::path(s.try_dir) / "inputs" / task).string();
      }
      if (n.rfind("outputs.", 0) == 0) {
        auto dot = n.find('.', 8);
        if (dot == std::string::npos) return std::nullopt;
        std::string task = n.substr(8, dot - 8), key = n.substr(dot + 1);
        json vals = values_of(task);
        // Dotted keys ("metrics.auc") are stored flat.
        if (vals.contains(key)) return param_text(vals[key]);
        return std::nullopt;
      }
      if (n.rfind("secrets.", 0) == 0) {
        std::string name = n.substr(8);
        std::optional<std::string> val;
        if (auto it = opts.secrets.find(name); it != opts.secrets.end())
          val = it->second;
        else if (const char* e = std::getenv(("DROVER_SECRET_" + name).c_str()))
          val = e;
        if (val) s.redact.push_back(*val);
        return val;
      }
      return std::nullopt;
    };

    if (t.run_shell) {
      auto cmd = render_template(*t.run_shell, lookup, /*shell_quote=*/true);
      if (!cmd) return cmd.error();
      s.argv = {"/bin/sh", "-c", *cmd};
    } else {
      for (auto& a : t.run_argv) {
        auto arg = render_template(a, lookup, false);
        if (!arg) return arg.error();
        s.argv.push_back(*arg);
      }
    }
    for (auto& [k, val] : t.env) {
      auto r = render_template(val, lookup, false);
      if (!r) return r.error();
      s.env[k] = *r;
    }
    std::function<Result<json>(const json&)> render_json = [&](const json& j) -> Result<json> {
      if (j.is_string()) {
        auto r = render_template(j.get<std::string>(), lookup, false);
        if (!r) return r.error();
        return json(*r);
      }
      if (j.is_array() || j.is_object()) {
        json out = j;
        for (auto it = out.begin(); it != out.end(); ++it) {
          auto r = render_json(*it);
          if (!r) return r.error();
          *it = *r;
        }
        return out;
      }
      return j;
    };
    auto with = render_json(t.with);
    if (!with) return with.error();
    s.with = *with;

    for (auto& up : input_tasks) {
      int n = successful_try(v, up);
      if (n == 0) continue;  // all_done / one_failed: an upstream without outputs
      auto cached = v.outputs.find(up);
      Result<std::vector<FileRecord>> files =
          cached != v.outputs.end() && cached->second.try_number == n
              ? Result<std::vector<FileRecord>>(cached->second.files)
              : store.files_of(v.run.id, up, n, "output");
      if (!files) return files.error();
      for (auto& f : *files) s.inputs.push_back(FileEntry{f.path, f.sha256, f.size, f.mode, up});
      json up_values = values_of(up);
      for (auto& [k, val] : up_values.items()) s.upstream_values[up + "." + k] = val;
    }
    return s;
  }

  struct Launch {
    TrySpec spec;
  };

  core::Slots free_slots() {
    core::Slots slots;
    slots.global = opts.global_slots - static_cast<int>(running.size());
    for (auto& [q, limit] : opts.queue_slots) {
      auto it = running_by_queue.find(q);
      slots.queue[q] = limit - (it == running_by_queue.end() ? 0 : it->second);
    }
    return slots;
  }

  // ---- the runs with work ------------------------------------------------------------

  // Files a new or recovered run: counted for max_active_runs, its SLA armed, stepped by
  // the next pump.
  void track(ActiveRun& a) {
    if (a.run.state == RunState::Running) dag_runs[a.run.dag].running++;
    if (a.dag->sla && !is_terminal(a.run.state))
      sla_wakes.push({a.run.interval_end.value_or(a.run.created_at) + *a.dag->sla, a.run.id});
    work.insert(a.key());
  }

  void add_running(const std::string& key, RunningTry rt) {
    running_by_queue[rt.rec.queue]++;
    auto a = active.find(rt.run_id);
    if (a != active.end()) a->second.running_tries++;
    running[key] = std::move(rt);
  }

  void erase_running(std::map<std::string, RunningTry>::iterator it) {
    if (--running_by_queue[it->second.rec.queue] == 0) running_by_queue.erase(it->second.rec.queue);
    auto a = active.find(it->second.run_id);
    if (a != active.end()) {
      a->second.running_tries--;
      if (is_terminal(a->second.run.state)) retire.insert(a->first);
    }
    running.erase(it);
  }

  core::RunProgress& progress_of(ActiveRun& a) {
    if (!a.progress)
      a.progress = std::make_unique<core::RunProgress>(a.dag, a.run.id, a.run.state, a.tasks);
    return *a.progress;
  }

  // A run stopped counting against its DAG's max_active_runs (it ended, or was cancelled):
  // the oldest runs queued behind it are stepped by this pump (or the next).
  void left_running(const ActiveRun& a, bool was_running) {
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
  void file(ActiveRun& a, bool may_start) {
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
  void step_runs(TimePoint now, core::Slots& slots, std::vector<Launch>& launches,
                 std::vector<std::pair<std::string, RunState>>& finished_runs) {
    // Slot waiters are tried once each, in order, while global slots are free.
    std::optional<RunKey> waiter_cursor;
    for (;;) {
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
      DagRuns& dr = dag_runs[v.run.dag];
      bool may_start = v.run.state == RunState::Running || dr.running < v.dag->max_active_runs;
      if (!p.has_changes(now) && !(may_start && p.wants_slot(slots))) {
        file(v, may_start);
        continue;
      }
      bool was_queued = v.run.state == RunState::Queued;
      core::RunStep step = p.step(now, slots, may_start);
      if (!step.updates.empty() || !step.starts.empty() || step.run_state) {
        apply_step(v, step, launches);
        for (auto& u : step.updates) changed_tasks.push_back(v.tasks[u.task]);
      }
      if (was_queued && v.run.state != RunState::Queued) {
        dr.queued.erase(key);
        if (v.run.state == RunState::Running) dr.running++;
      }
      if (is_terminal(v.run.state)) {
        finished_runs.push_back({v.run.id, v.run.state});
        left_running(v, !was_queued);
        continue;
      }
      file(v, may_start);
    }
  }

  void notify_task(const TaskInstance& t) {
    if (self.task_observer_) self.task_observer_(t.run_id, t.task, t.state, t.try_number);
  }

  // Applies a step's task updates and starts to the store (inside the caller's
  // transaction) and to memory; queues the launches.
  void apply_step(ActiveRun& v, const core::RunStep& step, std::vector<Launch>& launches) {
    TimePoint now = clock.now();
    for (auto& u : step.updates) {
      (void)store.update_task(u);
      v.tasks[u.task] = u;
    }
    for (auto& st : step.starts) {
      const TaskSpec* t = v.dag->task(st.task);
      TryRecord rec;
      rec.run_id = v.run.id;
      rec.task = st.task;
      rec.try_number = st.try_number;
      rec.queue = t->queue;
      rec.host = host;
      rec.started_at = now;
      rec.try_dir = try_dir(v.run.id, st.task, st.try_number).string();
      rec.log_path = rec.try_dir + "/log";
      rec.facts = {{"hostname", host}, {"executor", "local"}};
      auto spec = build_spec(v, *t, st.try_number);
      if (!spec) {
        // The try cannot even be prepared (e.g. a value upstream did not publish).
        rec.state = TryState::Failed;
        rec.ended_at = now;
        rec.error = spec.message();
        (void)store.insert_try(rec);
        TaskInstance ti = core::after_try(*t, v.tasks[st.task], core::TryEnd::Failed, now);
        (void)store.update_task(ti);
        v.tasks[st.task] = ti;
        // The core hears of it like of any try that ended, and the run is stepped again
        // (in this pump): downstream tasks and the run's state follow at once.
        if (v.progress) {
          v.progress->update(ti);
          work.insert(v.key());
        }
        spdlog::warn("run {} task {}: {}", v.run.id, st.task, rec.error);
        continue;
      }
      rec.command = spec->argv;
      for (auto& arg : rec.command) arg = Redactor::redact(arg.get<std::string>(), spec->redact);
      rec.state = TryState::Running;
      (void)store.insert_try(rec);
      std::vector<FileRecord> inputs;
      for (auto& f : spec->inputs)
        inputs.push_back(FileRecord{f.path, f.sha256, f.size, f.mode, f.from_task});
      if (!inputs.empty()) (void)store.add_files(v.run.id, st.task, st.try_number, "input", inputs);
      RunningTry rt{v.run.id, st.task, st.try_number, rec, std::nullopt, false, false};
      if (t->timeout) rt.deadline = now + *t->timeout;
      add_running(try_key(v.run.id, st.task, st.try_number), std::move(rt));
      launches.push_back(Launch{std::move(*spec)});
    }
    if (step.run_state && *step.run_state != v.run.state) {
      v.run.state = *step.run_state;
      if (v.run.state == RunState::Running && !v.run.started_at) v.run.started_at = now;
      if (is_terminal(v.run.state)) v.run.ended_at = now;
      (void)store.update_run(v.run);
    }
  }

  void fire_schedules(TimePoint now, std::optional<TimePoint>& wake) {
    if (!opts.schedules) return;
    for (auto& [id, e] : dags) {
      if (!e.dag->schedule) continue;
      // Nothing is due before the next fire computed last time: no store reads on the
      // many pumps in between (a reload replaces the entry, and with it next_fire).
      if (e.next_fire && now < *e.next_fire) {
        if (!wake || *e.next_fire < *wake) wake = e.next_fire;
        continue;
      }
      auto paused = store.paused(id);
      if (paused && *paused) continue;
      auto last = store.last_scheduled(id);
      if (!last) continue;
      core::ScheduleStep st = core::schedule_dag(*e.dag, *last, now);
      for (auto& due : st.due) {
        auto r = create_run(e.dag, json::object(), false, "schedule", "scheduler", due, false);
        if (!r) spdlog::error("scheduling {}: {}", id, r.message());
      }
      if (!*last || **last != st.last_fire) (void)store.set_last_scheduled(id, st.last_fire);
      e.next_fire =
          st.next_fire == TimePoint::max() ? std::nullopt : std::optional<TimePoint>(st.next_fire);
      if (e.next_fire && (!wake || *e.next_fire < *wake)) wake = e.next_fire;
    }
  }

  void pump() {
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

  void pump_once() {
    TimePoint now = clock.now();
    std::optional<TimePoint> wake;
    std::vector<Launch> launches;
    std::vector<std::pair<std::string, RunState>> finished_runs;
    std::vector<TryEvent> finishes;
    finishes.swap(pending_finishes);
    changed_tasks.clear();
    {
      Transaction txn(store);
      for (auto& ev : finishes) record_finish(ev, now);
      fire_schedules(now, wake);
      expire_timeouts(now, wake);
      check_slas(now, wake);
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
      step_runs(now, slots, launches, finished_runs);
      if (auto s = txn.commit(); !s) {
        // Nothing was committed: act on nothing. A later event or timer retries.
        spdlog::error("store commit failed: {}", s.message());
        for (auto& l : launches) {
          auto r = running.find(try_key(l.spec.run_id, l.spec.task, l.spec.try_number));
          if (r != running.end()) erase_running(r);
        }
        // The in-memory view is now ahead of the store; a restart re-reads the store and
        // re-adopts the tries whose end was not recorded.
        arm_timer(TimePoint(now + std::chrono::seconds(1)));
        return;
      }
    }
    for (auto& l : launches) exec.start(l.spec);
    for (auto& t : changed_tasks) notify_task(t);
    changed_tasks.clear();
    for (auto& [id, state] : finished_runs) {
      spdlog::info("run {} {}", id, to_string(state));
      if (self.run_observer_) self.run_observer_(id, state);
    }
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
    // Tries running are bounded by the slots: their deadlines are scanned, not the runs.
    for (auto& [k, rt] : running)
      if (rt.deadline && !rt.timed_out && (!wake || *rt.deadline < *wake)) wake = rt.deadline;
    if (!retry_wakes.empty() && (!wake || retry_wakes.top().first < *wake))
      wake = retry_wakes.top().first;
    if (!sla_wakes.empty() && (!wake || sla_wakes.top().first < *wake))
      wake = sla_wakes.top().first;
    // More work than this pump did (a slot freed by a commit failure etc.): go again.
    if (!work.empty()) wake = now;
    arm_timer(wake);
  }

  void expire_timeouts(TimePoint now, std::optional<TimePoint>& wake) {
    for (auto& [key, rt] : running) {
      if (!rt.deadline || rt.timed_out || *rt.deadline > now) continue;
      rt.timed_out = true;
      rt.rec.state = TryState::TimedOut;
      rt.rec.error = "timed out after " + format_duration(*rt.deadline - rt.rec.started_at);
      (void)store.update_try(rt.rec);
      spdlog::warn("try {} timed out; killing its process group", key);
      asio::post(io, [this, key, why = rt.rec.error] {
        exec.kill(key, why + "; killing its process group");
      });
    }
  }

  void arm_timer(std::optional<TimePoint> wake) {
    if (stopped) return;
    next_wake = wake;
    if (!wake) {
      timer.cancel();
      return;
    }
    auto delay = *wake - clock.now();
    if (delay < Micros(0)) delay = Micros(0);
    // Cap long sleeps so a wall-clock jump is noticed within a minute.
    if (delay > std::chrono::minutes(1)) delay = std::chrono::minutes(1);
    timer.expires_after(delay + Micros(500));
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) pump();
    });
  }

  // ---- alerts ----------------------------------------------------------------------------

  std::set<std::string> sla_alerted;  // runs already alerted for their SLA

  void alert(const DagSpec& dag, Alert a) {
    if (!opts.alerts) return;
    a.dag = dag.id;
    if (a.dedup_key.empty()) a.dedup_key = a.dag + "/" + a.run_id + "/" + a.task + "/" + a.kind;
    opts.alerts->send(dag, std::move(a));
  }

  // A run misses its SLA when it is not finished `sla` after its scheduled time (the end of
  // its data interval; for a manual run, its creation).
  void check_slas(TimePoint now, std::optional<TimePoint>& wake) {
    (void)wake;  // the heap's top is the next SLA wake (pump_once)
    while (!sla_wakes.empty() && sla_wakes.top().first <= now) {
      auto [due, id] = sla_wakes.top();
      sla_wakes.pop();
      auto it = active.find(id);
      if (it == active.end()) continue;
      ActiveRun& v = it->second;
      if (!v.dag->sla || is_terminal(v.run.state) || sla_alerted.count(id)) continue;
      sla_alerted.insert(id);
      Alert a;
      a.kind = "sla_miss";
      a.run_id = id;
      a.message = "run " + id + " is not finished " + format_duration(*v.dag->sla) +
                  " after its scheduled time (" + format_iso_utc(due - *v.dag->sla) + ")";
      a.details = {{"sla", format_duration(*v.dag->sla)}, {"state", to_string(v.run.state)}};
      alert(*v.dag, std::move(a));
    }
  }

  // ---- try events ----------------------------------------------------------------------

  void on_event(const TryEvent& ev) {
    if (ev.kind == TryEvent::Kind::Started) {
      auto it = running.find(ev.key);
      if (it != running.end()) {
        it->second.rec.pid = ev.pid;
        it->second.rec.pid_start = ev.pid_start;
      }
      return;
    }
    if (running.find(ev.key) == running.end()) return;  // not ours (or already recorded)
    // Finishes are recorded in the same transaction as the decisions they enable (one
    // fsync for "A ended, B starts"), and finishes arriving together share it too.
    pending_finishes.push_back(ev);
    if (!pump_posted) {
      pump_posted = true;
      asio::post(io, [this] {
        pump_posted = false;
        pump();
      });
    }
  }

  // Records one finished try (inside the caller's transaction).
  void record_finish(const TryEvent& ev, TimePoint now) {
    auto it = running.find(ev.key);
    if (it == running.end()) return;
    RunningTry rt = it->second;
    erase_running(it);
    TryRecord& rec = rt.rec;
    rec.ended_at = now;
    rec.exit_code = ev.exit_code;
    rec.signal = ev.signal;
    const json& res = ev.result;
    int code = res.is_object() ? res.value("exit_code", 1) : (ev.exit_code.value_or(1));
    if (res.is_object() && !res.value("error", "").empty()) rec.error = res["error"];
    if (!ev.error.empty()) rec.error = ev.error;
    core::TryEnd end;
    if (rt.cancelled) {
      end = core::TryEnd::Cancelled;
      rec.error = "cancelled";
    } else if (rt.timed_out) {
      end = core::TryEnd::TimedOut;
      rec.error = "timed out after " + format_duration(*rt.deadline - rec.started_at);
    } else if (!res.is_object()) {
      end = ev.signal || ev.exit_code ? core::TryEnd::Failed : core::TryEnd::Lost;
      if (rec.error.empty())
        rec.error = ev.signal ? "killed by signal " + std::to_string(*ev.signal)
                              : "the try ended without a result";
    } else {
      end = code == 0 ? core::TryEnd::Success : core::TryEnd::Failed;
      rec.exit_code = code;
    }
    rec.state = end == core::TryEnd::Success     ? TryState::Success
                : end == core::TryEnd::TimedOut  ? TryState::TimedOut
                : end == core::TryEnd::Cancelled ? TryState::Cancelled
                : end == core::TryEnd::Lost      ? TryState::Lost
                                                 : TryState::Failed;
    (void)store.update_try(rec);
    if (res.is_object() && end == core::TryEnd::Success) {
      std::vector<FileRecord> outs;
      for (auto& f : res.value("outputs", json::array()))
        outs.push_back(FileRecord{f.value("path", ""), f.value("sha256", ""), f.value("size", 0ULL),
                                  f.value("mode", 0644), ""});
      if (!outs.empty())
        (void)store.add_files(rec.run_id, rec.task, rec.try_number, "output", outs);
      json values = res.value("values", json::object());
      for (auto& [k, val] : values.items())
        (void)store.set_value(rec.run_id, rec.task, rec.try_number, k, val);
      if (auto a = active.find(rt.run_id); a != active.end() && values.is_object())
        a->second.outputs[rec.task] = TryOutputs{rec.try_number, values, std::move(outs)};
    }
    if (res.is_object())
      for (auto& m : res.value("metrics", json::array()))
        (void)store.add_metric(rec.run_id, rec.task, rec.try_number, m.value("name", ""),
                               m.value("value", 0.0), m.value("step", -1LL));
    auto vit = active.find(rt.run_id);
    if (vit != active.end()) {
      ActiveRun& v = vit->second;
      work.insert(v.key());  // the try's end is the run's work
      TaskInstance& ti = v.tasks[rec.task];
      const TaskSpec* spec = v.dag->task(rec.task);
      if (spec && !is_terminal(ti.state) && ti.try_number == rec.try_number) {
        ti = core::after_try(*spec, ti, end, now);
        if (v.progress) v.progress->update(ti);
        (void)store.update_task(ti);
        changed_tasks.push_back(ti);
        if (ti.state == TaskState::Failed || ti.state == TaskState::TimedOut) {
          Alert a;
          a.kind = spec->retries > 0 ? "retries_exhausted" : "task_failed";
          a.run_id = rec.run_id;
          a.task = rec.task;
          a.message = "task " + rec.task + " " + to_string(ti.state) + " after " +
                      std::to_string(rec.try_number) + " tr" + (rec.try_number == 1 ? "y" : "ies") +
                      (rec.error.empty() ? "" : ": " + rec.error) +
                      (rec.exit_code ? " (exit " + std::to_string(*rec.exit_code) + ")" : "");
          a.details = {{"try", rec.try_number},
                       {"exit_code", rec.exit_code ? json(*rec.exit_code) : json()},
                       {"log", rec.log_path}};
          alert(*v.dag, std::move(a));
        }
      }
      // Alerts a task type raised through its publisher (a drift check that found drift):
      // the Engine forwards them to the DAG's channels for their kind, knowing no type.
      if (res.is_object() && res.contains("alerts") && res["alerts"].is_array())
        for (auto& raised : res["alerts"]) {
          if (!raised.is_object() || !raised["kind"].is_string()) continue;
          std::string kind = raised["kind"];
          // The Engine's own kinds are its word alone; a try raises its type's kinds.
          if (kind.empty() || kind == "task_failed" || kind == "retries_exhausted" ||
              kind == "sla_miss")
            continue;
          Alert a;
          a.kind = kind;
          a.run_id = rec.run_id;
          a.task = rec.task;
          a.message = raised.value("message", "");
          a.details = raised.value("details", json::object());
          alert(*v.dag, std::move(a));
        }
    }
  }

  // ---- recovery --------------------------------------------------------------------------

  Status recover() {
    auto runs = store.unfinished_runs();
    if (!runs) return runs.error();
    for (auto& run : *runs) {
      if (fs::exists(owner_lock_path(run.id))) {  // made by `drover run`
        auto lock = FileLock::acquire(owner_lock_path(run.id), true, /*wait=*/false);
        if (!lock && lock.error().code == "busy") {
          spdlog::info("run {} belongs to a live `drover run`; leaving it alone", run.id);
          continue;
        }
        if (!lock) return lock.error();
        // Its owner is gone (the lock is released again here): this daemon takes it over.
        spdlog::info("run {}: its `drover run` is gone; taking it over", run.id);
      }
      DagPtr dag;
      auto content = store.dag_version_content(run.dag_hash);
      if (content && *content) {
        LoadResult r = load_dag_text(**content, run.dag + ".yaml@" + run.dag_hash.substr(0, 12));
        dag = r.dag;
      }
      if (!dag) {
        spdlog::error("run {}: its DAG version {} cannot be loaded; failing it", run.id,
                      run.dag_hash.substr(0, 12));
        run.state = RunState::Failed;
        run.ended_at = clock.now();
        (void)store.update_run(run);
        continue;
      }
      core::RunView v{run, dag, {}};
      auto tasks = store.tasks_of(run.id);
      if (!tasks) return tasks.error();
      for (auto& t : *tasks) v.tasks[t.task] = t;
      GitInfo git = git_info(fs::absolute(fs::path(dag->file)).parent_path());
      auto pd = store.dag_version_content(run.dag_hash);
      project_dirs[run.id] =
          opts.project_dir.empty()
              ? (git.toplevel.empty() ? fs::current_path().string() : git.toplevel)
              : opts.project_dir;
      // Prefer the live DAG's path for project_dir when this DAG is loaded.
      auto live = dags.find(run.dag);
      if (live != dags.end() && opts.project_dir.empty())
        project_dirs[run.id] = project_dir_for(
            *live->second.dag, git_info(fs::absolute(fs::path(live->second.file)).parent_path()));
      auto tries = store.tries_of(run.id);
      if (!tries) return tries.error();
      for (auto& tr : *tries) {
        if (tr.ended_at) continue;
        std::string key = try_key(tr.run_id, tr.task, tr.try_number);
        RunningTry rt{tr.run_id, tr.task, tr.try_number, tr, std::nullopt, false, false};
        rt.timed_out = tr.state == TryState::TimedOut;
        const TaskSpec* spec = dag->task(tr.task);
        if (spec && spec->timeout) rt.deadline = tr.started_at + *spec->timeout;
        running[key] = rt;
        spdlog::info("adopting try {} from an earlier daemon", key);
        exec.adopt(key, tr.try_dir);
      }
      active[run.id] = std::move(v);
    }
    return {};
  }
};

Engine::Engine(asio::io_context& io, const Clock& clock, Store& store, Executor& executor,
               EngineOptions opts)
    : impl_(std::make_unique<Impl>(*this, io, clock, store, executor, std::move(opts))) {
  impl_->exec.set_callback([this](const TryEvent& ev) { impl_->on_event(ev); });
}

Engine::~Engine() { stop(); }

Status Engine::start() {
  if (auto s = make_dirs(impl_->opts.home / "runs"); !s) return s;
  impl_->reload_dags();
  if (auto s = impl_->recover(); !s) return s;
  // Recovered runs and their adopted tries, counted once; every run is stepped at once.
  for (auto& [key, rt] : impl_->running) {
    impl_->running_by_queue[rt.rec.queue]++;
    auto a = impl_->active.find(rt.run_id);
    if (a != impl_->active.end()) a->second.running_tries++;
  }
  for (auto& [id, a] : impl_->active) impl_->track(a);
  impl_->start_watch();
  impl_->post_pump();
  return {};
}

void Engine::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->timer.cancel();
  if (impl_->watch) {
    boost::system::error_code ec;
    impl_->watch->close(ec);
  }
  if (impl_->reload_timer) impl_->reload_timer->cancel();
}

void Engine::add_dag(DagPtr dag) {
  std::string id = dag->id;
  impl_->dags[id] = DagEntry{std::move(dag), impl_->dags.count(id) ? impl_->dags[id].file : "", {}};
  impl_->dags[id].file = impl_->dags[id].dag->file;
}

Result<std::string> Engine::create_run(const DagPtr& dag, const json& params, bool from_cli,
                                       const std::string& kind, const std::string& user,
                                       std::optional<core::DueRun> interval) {
  return impl_->create_run(dag, params, from_cli, kind, user, interval);
}

void Engine::reload_dags() { impl_->reload_dags(); }
void Engine::pump() { impl_->pump(); }

// ---- Service -------------------------------------------------------------------------------

static json dag_entry_json(const DagEntry& e, Store& store) {
  const DagSpec& d = *e.dag;
  json params = json::object();
  for (auto& p : d.params) {
    json pj = {{"type", ParamSpec::type_name(p.type)}, {"default", p.default_value}};
    auto bound = [&](double v) {  // an int param's bounds are integers
      return p.type == ParamSpec::Type::Int ? json(static_cast<int64_t>(v)) : json(v);
    };
    if (p.min) pj["min"] = bound(*p.min);
    if (p.max) pj["max"] = bound(*p.max);
    if (!p.choices.empty()) pj["enum"] = p.choices;
    if (p.pattern) pj["pattern"] = *p.pattern;
    if (!p.description.empty()) pj["description"] = p.description;
    params[p.name] = pj;
  }
  json tasks = json::array();
  for (auto& t : d.tasks) tasks.push_back(t.id);
  auto paused = store.paused(d.id);
  return {{"dag", d.id},
          {"file", e.file},
          {"file_hash", d.file_hash},
          {"description", d.description},
          {"owner", d.owner},
          {"tags", d.tags},
          {"schedule", d.schedule ? json(d.schedule->text()) : json(nullptr)},
          {"timezone", d.timezone},
          {"next_fire", e.next_fire ? json(format_iso_utc(*e.next_fire)) : json(nullptr)},
          {"paused", paused && *paused},
          {"params", params},
          {"tasks", tasks}};
}

json Engine::list_dags() {
  json out = {{"dags", json::array()}, {"errors", json::array()}};
  for (auto& [id, e] : impl_->dags) {
    json j = dag_entry_json(e, impl_->store);
    RunFilter f;
    f.dag = id;
    f.limit = 1;
    auto runs = impl_->store.list_runs(f);
    j["last_run"] = runs && !runs->empty() ? run_summary_json(runs->front()) : json(nullptr);
    out["dags"].push_back(j);
  }
  for (auto& [file, diags] : impl_->load_errors)
    for (auto& d : diags)
      out["errors"].push_back(
          {{"file", d.file}, {"line", d.line}, {"col", d.col}, {"message", d.message}});
  return out;
}

Result<json> Engine::get_dag(const std::string& dag) {
  auto it = impl_->dags.find(dag);
  if (it == impl_->dags.end()) return make_error("no DAG '" + dag + "'", "not_found");
  json j = dag_entry_json(it->second, impl_->store);
  RunFilter f;
  f.dag = dag;
  f.limit = 10;
  json runs = json::array();
  if (auto r = impl_->store.list_runs(f))
    for (auto& run : *r) runs.push_back(run_summary_json(run));
  j["runs"] = runs;
  json errors = json::array();
  auto le = impl_->load_errors.find(it->second.file);
  if (le != impl_->load_errors.end())
    for (auto& d : le->second) errors.push_back(d.str());
  j["errors"] = errors;
  return j;
}

Result<std::string> Engine::trigger(const std::string& dag, const json& body,
                                    const std::string& user) {
  auto it = impl_->dags.find(dag);
  if (it == impl_->dags.end()) return make_error("no DAG '" + dag + "'", "not_found");
  // body: {"params": {typed}} and/or {"cli_params": {"name": "text"}}; a bare object is params.
  json params = json::object(), cli = json::object();
  if (body.is_object() && (body.contains("params") || body.contains("cli_params"))) {
    if (body.contains("params")) params = body["params"];
    if (body.contains("cli_params")) cli = body["cli_params"];
  } else if (body.is_object()) {
    params = body;
  }
  if (!params.is_object() || !cli.is_object())
    return make_error("params must be a JSON object", "invalid");
  for (auto& [k, v] : cli.items()) {
    const ParamSpec* p = it->second.dag->param(k);
    if (!p) {
      params[k] = v;
      continue;
    }
    auto parsed = p->parse_cli(v.is_string() ? v.get<std::string>() : v.dump());
    if (!parsed) return make_error(parsed.message(), "invalid");
    params[k] = *parsed;
  }
  return impl_->create_run(it->second.dag, params, false, "manual", user, std::nullopt);
}

Result<json> Engine::list_runs(const RunFilter& given) {
  auto runs = impl_->store.list_runs(given);
  if (!runs) return runs.error();
  json out = {{"runs", json::array()}};
  for (auto& r : *runs) out["runs"].push_back(run_summary_json(r));
  return out;
}

Result<json> Engine::get_run(const std::string& run_id) {
  return run_record_json(impl_->store, run_id);
}

Status Engine::cancel(const std::string& run_id, const std::string& user) {
  auto it = impl_->active.find(run_id);
  if (it == impl_->active.end() || is_terminal(it->second.run.state)) {
    auto r = impl_->store.get_run(run_id);
    if (!r) return r.error();
    if (!*r) return make_error("no run '" + run_id + "'", "not_found");
    return make_error("run '" + run_id + "' is already " + to_string((*r)->state), "conflict");
  }
  ActiveRun& v = it->second;
  bool was_running = v.run.state == RunState::Running;
  core::RunStep step = impl_->progress_of(v).cancel();
  std::vector<Impl::Launch> none;
  {
    Transaction txn(impl_->store);
    impl_->apply_step(v, step, none);
    if (auto s = txn.commit(); !s) return s;
  }
  impl_->left_running(v, was_running);
  spdlog::info("run {} cancelled by {}", run_id, user);
  for (auto& u : step.updates) impl_->notify_task(v.tasks[u.task]);
  for (auto& [key, rt] : impl_->running) {
    if (rt.run_id != run_id) continue;
    rt.cancelled = true;
    impl_->exec.kill(key,
                     "run " + run_id + " cancelled by " + user + "; killing its process group");
  }
  if (run_observer_) run_observer_(run_id, RunState::Cancelled);
  impl_->post_pump();
  return {};
}

json Engine::alert_deliveries() {
  return impl_->opts.alerts ? impl_->opts.alerts->deliveries() : json::array();
}

Result<std::string> Engine::log_path(const std::string& run_id, const std::string& task,
                                     std::optional<int> try_number) {
  auto tries = impl_->store.tries_of(run_id);
  if (!tries) return tries.error();
  const TryRecord* best = nullptr;
  for (auto& t : *tries) {
    if (t.task != task) continue;
    if (try_number && t.try_number != *try_number) continue;
    if (!best || t.try_number > best->try_number) best = &t;
  }
  if (!best)
    return make_error("no log for task '" + task + "' of run '" + run_id + "'", "not_found");
  return best->log_path;
}

}  // namespace drover

namespace drover {
size_t Engine::active_runs() const { return impl_->active.size(); }
std::optional<TimePoint> Engine::next_wake() const { return impl_->next_wake; }
}  // namespace drover
