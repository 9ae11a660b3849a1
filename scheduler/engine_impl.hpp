// The Engine's inside (scheduler/daemon.hpp is its outside), shared by the files that
// implement it, one concept each:
//   engine.cpp          the loop: pump = plan (ask the core), commit (one transaction, every
//                       write checked), act (launch, kill, alert, tell observers) — or, when
//                       the commit fails, undo what the plan changed in memory and act on nothing
//   engine_runs.cpp     runs: creation, admission (max_active_runs, slots), steps, cancel
//   engine_tries.cpp    tries: their end (outcome, record, alerts), timeouts, SLAs
//   recovery.cpp        unfinished runs and running tries read back at start
//   engine_service.cpp  the Service the API calls
// Private to scheduler/; not thread-safe (the Engine's io_context thread only).
#pragma once

#include <spdlog/spdlog.h>

#include <boost/asio.hpp>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <vector>

#include "common/fs.hpp"
#include "common/try_layout.hpp"
#include "scheduler/alert.hpp"
#include "scheduler/daemon.hpp"
#include "scheduler/dag_folder.hpp"
#include "scheduler/decide.hpp"
#include "scheduler/git.hpp"

namespace drover {

namespace engine {

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

// A chained start: a try committed as Armed and handed to the executor to start the moment
// the try it follows (`after`, its one unfinished upstream's) ends in success, without a
// pump and a commit between the two. The downstream task stays Pending in the core, held
// (RunProgress::hold) until the executor says the try started (then it is Running, its try
// Running) or never will (then the Armed row is deleted: nothing ran). At most one per try.
struct ArmedTry {
  std::string run_id, task, after;
  int try_number = 0;
  TryRecord rec;
  std::vector<FileEntry> inputs;
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

// What a successful try published, as recorded: kept for the tries downstream of it, which
// would otherwise read it back from the store for every start.
struct TryOutputs {
  int try_number = 0;
  json values = json::object();
  std::vector<FileRecord> files;
};

// An unfinished run: its record and instances (the view the try-spec builder reads) and
// the incremental core state that decides its steps (built on the first step).
struct ActiveRun : core::RunView {
  std::unique_ptr<core::RunProgress> progress;
  std::map<std::string, TryOutputs> outputs;  // by task: its latest successful try's
  std::string project_dir;                    // {{ project_dir }}
  int running_tries = 0;                      // tries of this run in Impl::running
  std::optional<TimePoint> retry_armed;       // the retry time last put on the wake heap
  RunKey key() const { return RunKey{run.created_at, run.seq, run.id}; }
};

// Per DAG id: runs counted against max_active_runs, and queued runs waiting for them.
struct DagRuns {
  int running = 0;
  std::set<RunKey> queued;
};

// How often a daemon looks for runs whose `drover run` died (real time).
constexpr auto kForeignPoll = std::chrono::seconds(2);

// The latest a try's Started facts wait for a pump to write them (real time).
constexpr auto kStartedFlush = std::chrono::seconds(1);

using WakeAt = std::pair<TimePoint, std::string>;  // (time, run id)
using WakeHeap = std::priority_queue<WakeAt, std::vector<WakeAt>, std::greater<>>;

// Every store write of a commit goes through one of these: the first failure is kept, and
// the commit it belongs to is then rolled back instead of committed.
class Writes {
 public:
  bool operator()(const Status& s) {
    if (!s.ok() && ok_) {
      ok_ = false;
      error_ = s.error();
    }
    return s.ok();
  }
  template <class T>
  bool operator()(const Result<T>& r) {
    return (*this)(r.ok() ? Status() : Status(r.error()));
  }
  bool ok() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  bool ok_ = true;
  Error error_;
};

// What one commit decided: the actions to carry out once it holds, and what to undo in
// memory when it does not.
struct Effects {
  // Act, after the commit.
  std::vector<TrySpec> launches;
  std::vector<TrySpec> arms;  // chained starts (TrySpec::after), after the launches
  std::vector<std::pair<std::string, std::string>> kills;  // (try key, why)
  std::vector<std::pair<DagPtr, Alert>> alerts;
  std::vector<TaskInstance> task_changes;                     // for the observers
  std::vector<std::pair<std::string, RunState>> run_changes;  // runs that ended
  // Undo, when the commit fails.
  std::set<std::string> touched_runs;                           // read back from the store
  std::vector<std::string> created_runs;                        // dropped
  std::vector<TryEvent> finishes;                               // heard again next pump
  std::set<std::string> started;                                // written again next pump
  std::vector<std::pair<std::string, RunningTry>> ended_tries;  // running again
  std::vector<std::string> timed_out;                           // not timed out yet
  std::vector<WakeAt> sla_alerted;                              // not alerted yet
  std::set<std::string> fired_dags;                             // schedule read again
  std::vector<std::string> owner_lock_runs;                     // their locks released
  std::vector<std::string> armed_now;                           // not armed
  std::vector<std::pair<std::string, ArmedTry>> disarmed;       // armed again
  std::vector<std::string> chain_started;                       // not running
  Writes writes;
};

}  // namespace engine

struct Engine::Impl {
  using DagEntry = engine::DagEntry;
  using RunningTry = engine::RunningTry;
  using RunKey = engine::RunKey;
  using ActiveRun = engine::ActiveRun;
  using Effects = engine::Effects;

  Engine& self;
  boost::asio::io_context& io;
  const Clock& clock;
  // What durations are measured on (common/clock.hpp): every `now` of a pump, and the times
  // it records. Cron fires by the wall clock itself.
  SteadyWall steady;
  Micros told_skew{0};  // the wall clock's jumps, as last logged
  Store& store;
  Executor& exec;
  EngineOptions opts;
  boost::asio::steady_timer timer;
  // Real time, not the injected clock: the latest a Started's facts wait for a pump
  // (recording them is no decision; a test pumps to see them).
  boost::asio::steady_timer started_timer;
  bool started_armed = false;
  std::unique_ptr<DagSource> dag_source;
  std::map<std::string, DagEntry> dags;
  std::map<std::string, std::vector<Diagnostic>> load_errors;  // by file
  std::map<std::string, ActiveRun> active;                     // unfinished runs
  std::map<std::string, RunningTry> running;                   // by try key
  std::map<std::string, engine::ArmedTry> armed;               // by try key
  std::map<std::string, std::string> armed_after;              // try key -> its armed successor
  // What the next pump steps (never a scan of `active`): runs with changes (created, a try
  // ended, a start failed, a retry due, max_active_runs freed), runs waiting for a slot,
  // and per DAG the runs waiting for max_active_runs; all ordered oldest first.
  std::set<RunKey> work;
  std::set<RunKey> slot_waiters;
  std::map<std::string, engine::DagRuns> dag_runs;
  engine::WakeHeap retry_wakes;  // runs with a retry waiting
  engine::WakeHeap sla_wakes;    // runs with an SLA not yet due
  std::set<std::string> sla_alerted;
  std::map<std::string, int> running_by_queue;
  std::set<std::string> retire;  // terminal runs to drop once no try of theirs runs
  bool in_pump = false, pump_again = false, stopped = false, pump_posted = false;
  std::optional<TimePoint> next_wake;           // on the injected clock: when pump() has work next
  std::optional<TimePoint> earliest_fire;       // the soonest next_fire of any DAG (none: never)
  bool schedules_dirty = true;                  // DAGs changed: every schedule is looked at again
  int failed_commits = 0;                       // in a row: the retry waits longer each time
  std::vector<TryEvent> pending_finishes;       // recorded by the next pump
  std::set<std::string> pending_started;        // tries whose Started facts it writes
  std::map<std::string, FileLock> owner_locks;  // own_runs: the owner.lock of each run created
  // A daemon's view of the runs a live `drover run` owns (owner.lock held): per DAG, how many
  // of them run, counted against its max_active_runs. Looked at every kForeignPoll, when it
  // also takes over those whose owner is gone.
  std::map<std::string, int> foreign_running;
  boost::asio::steady_timer foreign_timer;

  Impl(Engine& e, boost::asio::io_context& io_, const Clock& c, Store& s, Executor& x,
       EngineOptions o);

  // engine.cpp: the loop
  void pump();
  void pump_once();
  bool commit(Effects& fx, Transaction& txn);
  void act(Effects& fx);
  void undo(Effects& fx, TimePoint now);
  void reindex();
  void arm_timer(std::optional<TimePoint> wake);
  void post_pump();
  void post_pump_once();
  void on_event(const TryEvent& ev);
  void arm_started_flush();
  static void note_where_it_runs(TryRecord& rec, const TryEvent& ev);
  void reload_dags();

  // engine_runs.cpp: runs
  Result<std::string> create_run(const DagPtr& dag, const json& given, bool from_cli,
                                 const std::string& kind, const std::string& user,
                                 std::optional<core::DueRun> interval, Effects* in_pump);
  std::string project_dir_for(const DagSpec& dag, const GitInfo& git) const;
  void fire_schedules(TimePoint now, Effects& fx);
  core::Slots free_slots() const;
  void track(ActiveRun& a);
  void add_running(const std::string& key, RunningTry rt);
  void erase_running(std::map<std::string, RunningTry>::iterator it);
  core::RunProgress& progress_of(ActiveRun& a);
  void left_running(const ActiveRun& a, bool was_running);
  void file(ActiveRun& a, bool may_start);
  void step_runs(TimePoint now, core::Slots& slots, Effects& fx);
  void apply_step(ActiveRun& v, const core::RunStep& step, TimePoint now, Effects& fx);
  Result<TrySpec> build_spec(const ActiveRun& v, const TaskSpec& t, int try_number);
  Status reload_run(ActiveRun& a);

  // engine_models.cpp: the model steps' registry facts and writes
  Result<json> task_values(const ActiveRun& v, const std::string& task);
  Result<json> pin_models(const DagSpec& dag);
  Result<std::vector<FileRecord>> pinned_model_files(const ActiveRun& v, const std::string& task);
  Result<json> model_context(const ActiveRun& v, const TaskSpec& t, const json& with);
  Result<json> drift_reference_context(const json& with);
  void registry_step(const TryRecord& rec, core::TryResult& result, TimePoint now,
                     core::TryOutcome& out, engine::Writes& w);
  void register_model(ActiveRun& v, const TryRecord& rec, core::TryResult& result, TimePoint now,
                      core::TryOutcome& out, engine::Writes& w);
  void record_validation(ActiveRun& v, const TaskSpec& t, const TryRecord& rec,
                         core::TryResult& result, TimePoint now, core::TryOutcome& out,
                         engine::Writes& w);
  void promote_version(ActiveRun& v, const TaskSpec& t, const TryRecord& rec,
                       core::TryResult& result, TimePoint now, core::TryOutcome& out,
                       engine::Writes& w);

  // engine_tries.cpp: tries and time
  void record_finish(const TryEvent& ev, TimePoint now, Effects& fx);
  void record_started(Effects& fx);
  void record_armed(const TryEvent& ev, TimePoint now, Effects& fx);
  void disarm_stale(Effects& fx);
  void arm_after(ActiveRun& v, const std::string& task, int try_number, TimePoint now, Effects& fx);
  void expire_timeouts(TimePoint now, Effects& fx);
  void check_slas(TimePoint now, Effects& fx);

  // recovery.cpp
  Status recover();
  // Takes over an unfinished run that this engine does not hold: false (and nothing done)
  // while a live `drover run` owns it.
  Result<bool> take_over(RunRecord run);
  // The running runs of `dag` that a live `drover run` owns (refreshes foreign_running).
  int foreign_of(const std::string& dag);
  // Every kForeignPoll: takes over runs whose `drover run` is gone, and wakes runs queued
  // behind ones that ended.
  void watch_foreign();
  void check_foreign();
  // The handle of a try to give the executor (adopt, read_log): the one its Started gave,
  // else (recorded before handles; every such try was local) its folder's.
  static std::string handle_of(const TryRecord& rec);
};

}  // namespace drover
