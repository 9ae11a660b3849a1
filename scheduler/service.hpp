// Service: what the daemon offers to the API (web/) — list and show DAGs and runs,
// trigger, cancel, find logs, read the model registry, move its aliases and tag its
// versions. Implemented by the daemon (scheduler/daemon.cpp). Not thread-safe: call it on
// the daemon's io thread (the HTTP server shares that thread). RunReads is the part that
// only reads the record (runs and the model registry): StoreRunReads answers it on a store
// connection of its own, so that the API's listings run on a thread of their own and never
// hold the scheduler's loop. Errors carry a code (see common/result.hpp) that the API maps
// to an HTTP status.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/result.hpp"
#include "executor/executor.hpp"
#include "scheduler/store.hpp"
#include "scheduler/store_models.hpp"

namespace drover {

// Run listings and records, and the model registry, as the API serves them.
class RunReads {
 public:
  virtual ~RunReads() = default;
  virtual Result<json> list_runs(const RunFilter& filter) = 0;  // {"runs":[summary...]}
  virtual Result<json> get_run(const std::string& run_id) = 0;  // the §5 record
  // The registry in the shapes of `drover models … --json` (scheduler/store_models.hpp):
  // models_listing_json, model_version_json of `ref`, alias_history_json of `name`.
  // Errc::NotFound naming the missing model, version or alias.
  virtual Result<json> list_models() = 0;
  virtual Result<json> get_model(const models::ModelRef& ref) = 0;
  virtual Result<json> model_history(const std::string& name) = 0;
};

// RunReads on a store of its own (Store::open_reader): it sees what the scheduler has
// committed and nothing it has not. Use it from one thread at a time.
class StoreRunReads final : public RunReads {
 public:
  explicit StoreRunReads(std::unique_ptr<Store> store) : store_(std::move(store)) {}
  Result<json> list_runs(const RunFilter& filter) override;
  Result<json> get_run(const std::string& run_id) override;
  Result<json> list_models() override;
  Result<json> get_model(const models::ModelRef& ref) override;
  Result<json> model_history(const std::string& name) override;

 private:
  std::unique_ptr<Store> store_;
};

class Service : public RunReads {
 public:
  // {"dags": [{"dag","file","description","owner","tags","schedule","timezone",
  //            "next_fire" (ISO or null),"paused","params":{...},"tasks":[ids]}],
  //  "errors": [{"file","line","col","message"}]}   (load errors of broken files)
  virtual json list_dags() = 0;
  // One DAG: the list entry plus "file_hash", "runs" (last 10 run summaries).
  virtual Result<json> get_dag(const std::string& dag) = 0;
  // Creates a manual run; params are checked (an Errc::Invalid error naming the param; nothing
  // is created). Returns the run id. Unknown DAG: Errc::NotFound.
  virtual Result<std::string> trigger(const std::string& dag, const json& params,
                                      const std::string& user) = 0;
  // Cancels a run's unfinished tasks. Errc::NotFound, or Errc::Conflict when already finished.
  virtual Status cancel(const std::string& run_id, const std::string& user) = 0;
  // A try's log (the latest try when nullopt) from `offset`, at most `max` bytes, read
  // through the executor that ran it (executor/executor.hpp read_log): the caller never
  // opens a path of the daemon's. Errc::NotFound when the run, task or try is unknown or the
  // try has no log (yet).
  virtual Result<LogChunk> read_log(const std::string& run_id, const std::string& task,
                                    std::optional<int> try_number, unsigned long long offset,
                                    size_t max) = 0;
  // Recent alert deliveries: [{time, channel, type, kind, dag, run_id, task, ok, error,
  // attempts}], oldest first (empty when no alert channels are configured).
  virtual json alert_deliveries() { return json::array(); }
  // Moves an alias of the model registry as `drover models alias` does (move_model_alias in
  // scheduler/store_models.hpp: the same checks, the same event, returned as the history
  // gives it), on the daemon's own store, at the daemon's time (`move.at` is ignored). The
  // daemon's promote tasks move aliases in the same commits that end their tries: going
  // through here puts an API move in line with those on the loop rather than racing them
  // from another connection. Errc::NotFound (no such model or version), Errc::Conflict (a
  // refused move: not validated, failed its validation, named already, lost a race).
  virtual Result<json> set_model_alias(const AliasMove& move) = 0;
  // Sets or removes tags of a version as `drover models tag` / `untag` do (change_model_tags
  // in scheduler/store_models.hpp: the same checks, the same events and answer), on the
  // daemon's own store at the daemon's time (`change.at` is ignored), in line with its other
  // writes. Errc::Invalid (a bad key or value), Errc::NotFound (no such model or version, or
  // a removed tag the version does not have).
  virtual Result<json> set_model_tags(const TagChange& change) = 0;
};

}  // namespace drover
