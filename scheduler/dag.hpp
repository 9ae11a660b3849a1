// DagSpec: the immutable, validated model of one DAG file (DESIGN.md §4, version 1).
// Built only by the loader (scheduler/dag_loader.hpp); shared as shared_ptr<const DagSpec>
// between the daemon, the core and the API, so it is thread-safe to read.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/result.hpp"
#include "scheduler/cron.hpp"

namespace drover {

using json = nlohmann::json;

// A position in a source file, 1-based; 0 means unknown.
struct SourceLoc {
  int line = 0;
  int col = 0;
};

// One validation finding: printed as "file:line:col: message".
struct Diagnostic {
  std::string file;
  int line = 0;
  int col = 0;
  std::string message;
  std::string str() const {
    return file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + message;
  }
};

struct ParamSpec {
  enum class Type { String, Int, Float, Bool };
  std::string name;
  Type type = Type::String;
  json default_value;  // null: required at trigger time
  std::optional<double> min, max;
  std::optional<std::string> pattern;  // ECMAScript regex, whole-string match
  std::vector<json> choices;           // `enum:`; empty = any
  std::string description;
  SourceLoc loc;

  // Checks a JSON value against type/min/max/pattern/enum; error message names the param.
  // Ints accept JSON integers only; floats accept any number; bools true/false.
  Result<json> check(const json& value) const;
  // Parses a CLI string ("-p NAME=VALUE") into this param's type, then check()s it.
  Result<json> parse_cli(const std::string& text) const;
  static const char* type_name(Type t);
};

enum class TriggerRule { AllSuccess, AllDone, OneFailed };

struct Resources {
  int gpu = 0;
  double cpu = 0;
  long long memory_bytes = 0;
};

struct TaskSpec {
  std::string id;
  std::string type = "command";
  std::vector<std::string> needs;
  std::vector<std::string> run_argv;       // `run:` as a list: an argv, no shell
  std::optional<std::string> run_shell;    // `run:` as a string: /bin/sh -c, values quoted
  json with = json::object();              // the `with:` block; strings may hold templates
  std::vector<std::string> outputs;        // paths relative to the work dir
  std::vector<std::string> values;         // keys it publishes through DROVER_VALUES_FILE
  std::map<std::string, std::string> env;  // values may hold templates
  Resources resources;
  int retries = 0;
  Micros retry_delay = std::chrono::seconds(30);
  Micros max_retry_delay = std::chrono::hours(1);
  std::optional<Micros> timeout;
  std::string queue = "default";
  TriggerRule trigger_rule = TriggerRule::AllSuccess;
  // `uses: {model: REF}`: the registry version (NAME/V, NAME@ALIAS or NAME for the latest)
  // whose artifacts the task reads under {{ inputs.model.path }}, pinned when a run is
  // created (RunRecord::models); empty: none.
  std::string uses_model;
  SourceLoc loc;

  // The graph by index, filled by index_graph(): this task's position in DagSpec::tasks,
  // the positions of its distinct needs (upstream) and of the tasks that need it
  // (downstream), both ascending, and its queue's position in DagSpec::queues.
  uint32_t index = 0;
  std::vector<uint32_t> upstream, downstream;
  uint32_t queue_index = 0;
};

struct DagSpec {
  std::string id;
  std::string description;
  std::string owner;
  std::vector<std::string> tags;
  std::string file;                                // path as given to the loader
  std::string file_hash;                           // SHA-256 of the exact file bytes
  std::string content;                             // the exact file bytes (kept for lineage)
  std::shared_ptr<const cron::Schedule> schedule;  // null: manual only
  std::string timezone = "UTC";
  bool catchup = false;
  int max_active_runs = 1;
  std::optional<Micros> sla;
  std::map<std::string, std::vector<std::string>> alerts;  // on_failure/on_drift/on_sla_miss
  std::vector<ParamSpec> params;                           // in file order
  std::vector<TaskSpec> tasks;  // topologically sorted (each after all its needs)
  SourceLoc id_loc;             // where the `dag:` key sits (for duplicate-id reports)

  const TaskSpec* task(const std::string& id) const;
  const ParamSpec* param(const std::string& name) const;
  // Params after defaults, with `given` checked: an unknown name or a bad value is an
  // error with Errc::Invalid naming the param; a missing required param likewise.
  Result<json> resolve_params(const json& given) const;
  // Names of all tasks that `task` transitively needs, in the order of `tasks`.
  std::vector<std::string> ancestors(const std::string& task) const;
  // The task of type `type` upstream of `task` that it works on (a validate's train, a
  // promote's validate): the one its `with:` names under `key`, else the only ancestor of
  // that type. Errc::Invalid, saying why, when there is none, several, or `key` names
  // another task.
  Result<std::string> upstream_of_type(const std::string& task, std::string_view type,
                                       std::string_view key) const;

  // id -> index into `tasks`, filled by the loader; task() falls back to a linear search
  // when it does not match `tasks` (a DagSpec built by hand in a test).
  std::map<std::string, size_t, std::less<>> task_index;
  // The distinct queue names of the tasks (TaskSpec::queue_index points here); filled by
  // index_graph() with the graph fields of every task.
  std::vector<std::string> queues;
  bool graph_indexed = false;
};

// Fills the dense graph of `dag` (task_index, TaskSpec::index / upstream / downstream /
// queue_index, queues) from `tasks` and their `needs`; a need naming no task is ignored.
// The loader calls it once the tasks are sorted; a DagSpec built by hand may call it too.
// O(tasks + needs) plus the name lookups.
void index_graph(DagSpec& dag);

// "Did you mean" for unknown names: the candidate closest to `word` by edit distance
// (adjacent transpositions count 1), or "" when none is close enough.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);
// " (did you mean 'X'?)" or "" — ready to append to an error message.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

using DagPtr = std::shared_ptr<const DagSpec>;

}  // namespace drover
