// The scheduler core's decisions about tries, alerts and time (the rest of the core is
// scheduler/core.hpp: readiness, admission to slots, retries, cron). Pure functions of
// their arguments, no side effects, thread-safe: the Engine gathers the facts, asks these,
// commits what they say and then acts on it.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "scheduler/alert.hpp"
#include "scheduler/core.hpp"
#include "scheduler/dag.hpp"
#include "scheduler/store.hpp"

namespace drover::core {

// result.json of a try, read with every field checked (a task can write into its try's
// folder, so the file is input like any other). See executor/try_runner.hpp for its shape.
struct TryMetric {
  std::string name;
  double value = 0;
  int64_t step = -1;
};
struct RaisedAlert {
  std::string kind, message;
  json details = json::object();
};
struct TryResult {
  int exit_code = 1;
  std::string error;
  std::vector<FileRecord> outputs;
  json values = json::object();  // key -> value
  std::vector<TryMetric> metrics;
  std::vector<RaisedAlert> alerts;
  json model;  // a train's version to register (plugins/task_type.hpp Publisher::model); null: none
};
// Error (Errc::Invalid, naming the field) when `j` is not an object of that shape; null
// `j` is an error too ("no result").
Result<TryResult> parse_try_result(const json& j);

// An input file of a try as a model version records it: with the dataset and version of the
// snapshot that made it, when a snapshot task did.
struct ModelInput {
  FileRecord file;
  std::string dataset, dataset_version;
};
// The version a successful `train` try registers (ModelVersion, version left 0): the name,
// artifacts, final metrics and environment its result gives, its step metrics, the run's
// params, DAG hash and git commit, and the try's inputs. Each artifact path names the try's
// outputs at it or under it (a folder). Errc::Invalid, saying why, when the result has no
// version or an artifact is not among the outputs: the try then fails and registers nothing.
Result<ModelVersion> model_version_of(const TryResult& result, const TryRecord& rec,
                                      const RunRecord& run, const std::vector<ModelInput>& inputs,
                                      TimePoint now);

// How a try ended, as its executor reports it, and what the Engine decided while it ran.
struct TryExit {
  bool cancelled = false;                 // the Engine killed it for a cancel
  std::optional<Micros> timed_out_after;  // the Engine killed it at its timeout
  std::optional<int> exit_code;           // the try process's exit code
  std::optional<int> signal;              // the signal that ended it
  const TryResult* result = nullptr;      // its result.json, when one was read and is valid
  std::string result_error;               // why there is no valid result, when there is none
  std::string error;                      // the executor's reason, if it gave one
};
struct TryOutcome {
  TryEnd end = TryEnd::Failed;
  TryState state = TryState::Failed;
  std::optional<int> exit_code;  // to record: the result's exit code, else the process's
  std::string error;             // to record ("" on success)
};
// The cancel and the timeout win over whatever the try reported; a try without a result
// failed when its process exited or was killed, else it is lost.
TryOutcome try_outcome(const TryExit& e);

// "timed out after 2h" (the try's error and the reason of its kill).
std::string timeout_error(Micros after);

// The alerts a try's end raises: task_failed (or retries_exhausted when the task had
// retries) when `after` (the task as this try's end left it; null when it changed nothing,
// e.g. the task was cancelled already) is its final failure, and those its task type raised through
// its publisher, of any kind but the Engine's own (task_failed, retries_exhausted, sla_miss).
std::vector<Alert> try_end_alerts(const TaskSpec& task, const TaskInstance* after,
                                  const TryRecord& rec, const TryResult* result);

// When a run misses its SLA: `sla` after its scheduled time (the end of its data interval;
// for a manual run, its creation). nullopt when its DAG has no SLA.
std::optional<TimePoint> sla_deadline(const RunRecord& run, const DagSpec& dag);
// The sla_miss alert of a run still unfinished at its SLA deadline.
Alert sla_alert(const RunRecord& run, const DagSpec& dag);

// Whether a run may start tasks: a running run always; a queued one while fewer than
// max_active_runs runs of its DAG are running.
bool may_start(RunState state, int running_runs_of_dag, int max_active_runs);

// Who may raise an alert of `kind`: false for the Engine's own kinds.
bool is_engine_alert_kind(const std::string& kind);

}  // namespace drover::core
