// Engine: the daemon's brain and hands. It owns the loaded DAGs, the active runs and the
// timers; asks the pure core (scheduler/core.hpp) what to do; commits every transition to
// the store before acting; hands tries to the executor and records what comes back. Used
// by `drover serve` (schedules, DAG folder watching, API) and `drover run` (one run, no
// schedules). Runs on one io_context thread; not thread-safe. Implements Service for web/.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "executor/executor.hpp"
#include "scheduler/core.hpp"
#include "scheduler/dag.hpp"
#include "scheduler/dag_loader.hpp"
#include "scheduler/service.hpp"
#include "scheduler/store.hpp"

namespace boost::asio {
class io_context;
}

namespace drover {

class AlertSink;

struct EngineOptions {
  std::filesystem::path home;                     // state: store, blobs, runs/
  std::optional<std::filesystem::path> dags_dir;  // serve: the folder of DAG files
  std::string project_dir;                        // overrides {{ project_dir }} for every DAG
  int global_slots = 4;                           // tries running at once
  std::map<std::string, int> queue_slots;         // per-queue limits (absent: unlimited)
  bool schedules = true;                          // fire cron schedules (false for `drover run`)
  // `drover run`: each run this engine creates is owned by this process, which holds an
  // flock on HOME/runs/RUN/owner.lock from before the run is stored until the engine goes
  // (or the process dies, kill -9 included). A daemon's recovery leaves a run alone while
  // its owner lock is held, and takes the run over once it is not.
  bool own_runs = false;
  // Whether the previous daemon of this home stopped cleanly (SIGTERM / SIGINT, not a crash
  // or kill -9). Recovery counts a pickup against a run's crash counter only after an
  // unclean stop, so routine restarts never fail a long training run.
  bool previous_stop_clean = false;
  AlertSink* alerts = nullptr;  // task failure, drift and SLA alerts (optional; not owned)
  // The secret store of the server config; {{ secrets.NAME }} reads it first, then the
  // environment's DROVER_SECRET_NAME. Values used are masked in logs and records.
  std::map<std::string, std::string> secrets;
  // The bounds on a DAG file (the server config's `dags:`), for the DAG folder and for
  // recovery, which loads each unfinished run's stored DAG text again: a run made from a DAG
  // file only raised limits allow must stay recoverable after a restart.
  DagLimits dag_limits;
  // Chained starts (scheduler/engine_impl.hpp): a command task whose one unfinished upstream
  // is a running command that makes nothing it reads is armed on that upstream's executor,
  // which starts it the moment the upstream succeeds (a chain then runs without a commit
  // between one task's end and the next one's start). Only where the executor can_chain().
  bool chain_starts = true;
  // How many tries ahead a chain is armed: the executor runs that many back to back while
  // the Engine commits their ends and starts in batches (one fsync for several).
  int chain_depth = 8;
};

class Engine final : public Service {
 public:
  Engine(boost::asio::io_context& io, const Clock& clock, Store& store, Executor& executor,
         EngineOptions opts);
  ~Engine() override;

  // Loads the DAG folder, recovers unfinished runs (adopting tries that outlived an earlier
  // daemon), and starts the timers and the folder watch.
  Status start();
  void stop();

  // Registers a DAG directly (drover run); replaces one with the same id.
  void add_dag(DagPtr dag);
  // Creates a run; params as given by a user (checked against the DAG's declarations).
  Result<std::string> create_run(const DagPtr& dag, const json& params, bool params_from_cli,
                                 const std::string& kind, const std::string& user,
                                 std::optional<core::DueRun> interval = std::nullopt);
  // Re-reads the DAG folder now (the watch calls this after changes settle).
  void reload_dags();
  // Re-evaluates everything now (tests with a manual clock call this after advancing it).
  void pump();

  using TaskObserver = std::function<void(const std::string& run_id, const std::string& task,
                                          TaskState state, int try_number)>;
  using RunObserver = std::function<void(const std::string& run_id, RunState state)>;
  void on_task_change(TaskObserver f) { task_observer_ = std::move(f); }
  void on_run_change(RunObserver f) { run_observer_ = std::move(f); }
  size_t active_runs() const;
  // When the Engine next has timed work (a cron fire, a retry, a timeout, an SLA), on the
  // injected clock, as of the last pump; nullopt when nothing is timed. Its own timer wakes
  // it then on a real clock; a test with a ManualClock advances to it and calls pump().
  std::optional<TimePoint> next_wake() const;

  // Service
  json list_dags() override;
  Result<json> get_dag(const std::string& dag) override;
  Result<std::string> trigger(const std::string& dag, const json& params,
                              const std::string& user) override;
  Result<json> list_runs(const RunFilter& filter) override;
  Result<json> get_run(const std::string& run_id) override;
  Status cancel(const std::string& run_id, const std::string& user) override;
  Result<LogChunk> read_log(const std::string& run_id, const std::string& task,
                            std::optional<int> try_number, unsigned long long offset,
                            size_t max) override;
  json alert_deliveries() override;
  Result<json> list_models() override;
  Result<json> get_model(const models::ModelRef& ref) override;
  Result<json> model_history(const std::string& name) override;
  Result<json> set_model_alias(const AliasMove& move) override;
  Result<json> set_model_tags(const TagChange& change) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  TaskObserver task_observer_;
  RunObserver run_observer_;
  friend struct Impl;
};

}  // namespace drover
