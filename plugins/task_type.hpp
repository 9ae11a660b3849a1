// TaskType: the interface every built-in task type implements (DESIGN.md §6), and the
// registry that finds them by name. A type validates its `with:` block at lint time and
// runs inside the try process (`drover worker` / `drover exec`), never in the daemon.
// The registry is filled once at start-up (register_builtin_task_types) and read-only
// afterwards, so lookups are thread-safe.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <initializer_list>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/blob_store.hpp"
#include "common/result.hpp"
#include "common/try_layout.hpp"

namespace drover {

using json = nlohmann::json;

// One file of a task's inputs or outputs, by content. A symbolic link is recorded as git
// records one: its blob is the link's text (never what it points to), `size` that text's
// length, `mode` kLinkMode; a regular file's mode is its permission bits alone.
struct FileEntry {
  static constexpr int kLinkMode = S_IFLNK | 0777;

  std::string path;  // relative, '/'-separated
  std::string sha256;
  uint64_t size = 0;
  int mode = 0644;
  std::string from_task;  // inputs only: the upstream task that produced it

  bool is_link() const { return (mode & S_IFMT) == S_IFLNK; }
};

// What a task asks of where it runs (the DAG's `resources:`); 0: nothing asked.
struct TryResources {
  int gpu = 0;
  double cpu = 0;
  long long memory_bytes = 0;
};

// Everything a try needs, resolved by the daemon; sent to a worker as JSON.
struct TrySpec {
  std::string run_id, dag, task, type;
  int try_number = 1;
  std::string queue = "default";              // the task's queue (slots are counted per queue)
  TryResources resources;                     // for an executor placing the try
  std::map<std::string, std::string> labels;  // placement labels (none from the DAG yet)
  std::vector<std::string> argv;              // empty for types that don't run a command
  std::map<std::string, std::string> env;     // added to the inherited environment
  json with = json::object();                 // rendered `with:`
  std::vector<std::string> outputs;           // declared outputs, relative to work_dir
  std::string home;                           // drover home; blobs at home/blobs
  std::string project_dir;
  std::string try_dir;                          // holds work/, inputs/, log, result.json
  std::vector<FileEntry> inputs;                // materialized under try_dir/inputs/FROM_TASK/PATH
  std::map<std::string, json> upstream_values;  // "TASK.KEY" -> value
  // Registry facts the daemon resolved for this try's type (a validate's candidate and the
  // versions its gates compare against: plugins/gates.hpp); null for other types.
  json context;
  long long timeout_ms = 0;  // 0 = none (the daemon enforces; informative)
  // Secret values this try's templates used: masked in its log and its recorded command
  // (common/redact.hpp). Never written to disk.
  std::vector<std::string> redact;
  // A chained start (Executor::start): the key of the try, started by the same executor,
  // whose success starts this one; empty for a try to start now. Not part of to_json().
  std::string after;

  std::filesystem::path work_dir() const { return layout::work(try_dir); }
  std::filesystem::path inputs_dir() const { return layout::inputs(try_dir); }
  std::filesystem::path log_path() const { return layout::log(try_dir); }
  std::filesystem::path result_path() const { return layout::result(try_dir); }
  json to_json() const;
  static Result<TrySpec> from_json(const json& j);
};

// What a type publishes besides its exit code.
class Publisher {
 public:
  virtual ~Publisher() = default;
  // A value readable downstream as {{ outputs.TASK.KEY }} and recorded in the run.
  virtual void value(const std::string& key, const json& v) = 0;
  // A numeric metric recorded in the run (step < 0: final value).
  virtual void metric(const std::string& name, double v, long long step = -1) = 0;
  // An output file already in the blob store (declared `outputs:` are collected for you).
  virtual void file(const FileEntry& f) = 0;
  // The model version a `train` try registers when it succeeds (the Engine adds it to the
  // registry as it commits the try's end): {"name", "artifacts": [paths], "metrics": {},
  // "environment": {}, "description"}.
  virtual void model(const json& version) = 0;
  // An alert the daemon sends, naming this run and task, to the DAG's channels for `kind`
  // (`drift` -> alerts.on_drift); sent whatever the try's exit code.
  virtual void alert(const std::string& kind, const std::string& message, const json& details) = 0;
};

struct TaskContext {
  const TrySpec& spec;
  BlobStore& blobs;
  Publisher& publish;
  // Upstream task -> its materialized, read-only input folder.
  std::map<std::string, std::filesystem::path> inputs;
};

// A problem in a `with:` block found at lint time. `key` is the top-level key of `with:`
// it concerns ("" for the block itself), so the loader can point at its line:col.
struct ConfigError {
  std::string key;
  std::string message;
};

class TaskType {
 public:
  virtual ~TaskType() = default;
  virtual std::string_view name() const = 0;
  // Whether `run:` must be given (command, train) or is refused (snapshot, drift …).
  enum class RunField { Required, Optional, Forbidden };
  virtual RunField run_field() const { return RunField::Forbidden; }
  // Lint-time check of `with:` (strings may still hold unrendered templates).
  virtual void validate(const json& with, std::vector<ConfigError>& errors) const {}
  // The value keys a task of this type publishes (Publisher::value), readable downstream as
  // {{ outputs.TASK.KEY }}, given its `with:`. A key ending in ".*" stands for every key
  // under that prefix ("metrics.*"). Lint refuses a template naming any other key, so list
  // every key run() may publish. Default: none (`command`).
  virtual std::vector<std::string> published_keys(const json& with) const { return {}; }
  // Paths (relative to the work dir) the try runner collects as outputs of a successful try
  // besides the task's `outputs:`, given the rendered `with:` (a train's artifacts).
  virtual std::vector<std::string> collected_outputs(const json& with) const { return {}; }
  // Runs the try in the try process, cwd = work dir, stdout/stderr = the try's log.
  // Returns the exit code (0 = success). Expected failures are printed to stderr (the
  // log) and reported as a non-zero code.
  virtual int run(TaskContext& ctx) const = 0;
};

class TaskTypeRegistry {
 public:
  static TaskTypeRegistry& instance();
  // A duplicate name is an error (aborts at start-up: a programming error).
  void add(std::unique_ptr<TaskType> type);
  const TaskType* find(std::string_view name) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, std::unique_ptr<TaskType>, std::less<>> types_;
};

// Registers every built-in type (plugins/builtin.cpp: one line per type). Idempotent.
void register_builtin_task_types();

// Runs a task's `run:` argv in the try process (plugins/command.cpp): stdin, stdout and
// stderr inherited (/dev/null and the log), in the try's process group, with `env` (nullopt:
// this process's). Returns its exit code, 127 when it could not start (said in the log).
int run_task_command(const std::vector<std::string>& argv,
                     std::optional<std::vector<std::string>> env = std::nullopt);

// Whether a `with:` value is a string holding a template (checked once rendered, not at lint).
bool is_template(const json& v);
// Adds an error for each key of `with` not in `keys` ("unknown key 'K' in TYPE task").
void check_known_keys(const json& with, std::initializer_list<std::string_view> keys,
                      std::string_view type, std::vector<ConfigError>& errors);

// A key a task may publish ({{ outputs.TASK.KEY }}) or list in `values:`: letters, digits,
// '_', '-' and '.', starting with a letter or '_', at most 128 bytes.
bool is_value_key(std::string_view key);

}  // namespace drover
