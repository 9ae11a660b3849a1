// Store: the single source of truth for runs, task instances, tries, their files, values
// and metrics, DAG file versions and schedule state (DESIGN.md §5, §9). SqliteStore is
// the embedded implementation (WAL, synchronous=FULL, numbered migrations). A Store object
// is used by one thread at a time; several processes may open the same file (SQLite
// locking, busy timeout 10 s). Every mutating call commits before it returns unless it is
// inside a Transaction, which commits all of its calls at once (one fsync).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/result.hpp"
#include "scheduler/run_model.hpp"

namespace drover {

using json = nlohmann::json;

struct RunRecord {
  std::string id;  // "<dag>-<seq>", e.g. "weekly_retrain-12"
  std::string dag;
  int64_t seq = 0;       // per-DAG sequence number, from next_run_seq
  std::string dag_hash;  // SHA-256 of the DAG file bytes (see dag_versions)
  RunState state = RunState::Queued;
  json params = json::object();  // after defaults
  std::string trigger_kind;      // schedule | manual | backfill | retry | run (drover run)
  std::string trigger_user;
  std::optional<TimePoint> logical_date, interval_start, interval_end;
  std::string git_commit;  // empty when not in a git repository
  bool git_dirty = false;
  TimePoint created_at{};
  std::optional<TimePoint> started_at, ended_at;
};

struct TaskInstance {
  std::string run_id, task;
  TaskState state = TaskState::Pending;
  int try_number = 0;                    // the latest try (0: none yet)
  std::optional<TimePoint> next_try_at;  // UpForRetry: when the next try may start
};

struct TryRecord {
  std::string run_id, task;
  int try_number = 1;
  TryState state = TryState::Running;
  std::string queue, host;
  int pid = 0;              // the try process (a process group leader)
  long long pid_start = 0;  // its start time (/proc stat field 22) to detect pid reuse
  TimePoint started_at{};
  std::optional<TimePoint> ended_at;
  std::optional<int> exit_code;  // set when it exited
  std::optional<int> signal;     // set when a signal ended it
  std::string try_dir, log_path;
  json command = json::array();  // resolved argv
  std::string error;             // why it failed, when not an exit code
  json facts = json::object();   // hostname, GPU, … of where it ran
};

struct FileRecord {
  std::string path, sha256;
  uint64_t size = 0;
  int mode = 0644;
  std::string from_task;  // inputs: producer task
};

struct RunFilter {
  std::string dag;  // empty: all
  std::optional<RunState> state;
  int limit = 100;
  // Paging cursor: only runs created before this run (its id, as the previous page's last
  // run gives it); an id naming no run makes list_runs fail with code "not_found".
  std::string before_run;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual int schema_version() = 0;

  // Groups calls into one atomic commit. Nested use is an error.
  virtual Status begin() = 0;
  virtual Status commit() = 0;
  virtual void rollback() = 0;

  // DAG file versions (content-addressed, kept for lineage). Idempotent per hash.
  virtual Status put_dag_version(const std::string& hash, const std::string& dag,
                                 const std::string& path, const std::string& content) = 0;
  virtual Result<std::optional<std::string>> dag_version_content(const std::string& hash) = 0;

  // Runs. insert_run assigns nothing: the caller sets id/seq from next_run_seq.
  virtual Result<int64_t> next_run_seq(const std::string& dag) = 0;
  virtual Status insert_run(const RunRecord& run, const std::vector<TaskInstance>& tasks) = 0;
  virtual Status update_run(const RunRecord& run) = 0;  // state and timestamps
  virtual Result<std::optional<RunRecord>> get_run(const std::string& id) = 0;
  virtual Result<std::vector<RunRecord>> list_runs(const RunFilter& f) = 0;  // newest first
  virtual Result<std::vector<RunRecord>> unfinished_runs() = 0;  // Queued or Running, oldest first

  virtual Status update_task(const TaskInstance& t) = 0;
  virtual Result<std::vector<TaskInstance>> tasks_of(const std::string& run_id) = 0;

  virtual Status insert_try(const TryRecord& t) = 0;
  virtual Status update_try(const TryRecord& t) = 0;
  virtual Result<std::vector<TryRecord>> tries_of(
      const std::string& run_id) = 0;  // task, try order
  virtual Result<std::vector<TryRecord>> running_tries() = 0;

  // Files of a try: kind is "input" or "output".
  virtual Status add_files(const std::string& run_id, const std::string& task, int try_number,
                           const std::string& kind, const std::vector<FileRecord>& files) = 0;
  virtual Result<std::vector<FileRecord>> files_of(const std::string& run_id,
                                                   const std::string& task, int try_number,
                                                   const std::string& kind) = 0;

  // Published values ({{ outputs.TASK.KEY }}) and metrics of a try.
  virtual Status set_value(const std::string& run_id, const std::string& task, int try_number,
                           const std::string& key, const json& value) = 0;
  virtual Result<json> values_of(const std::string& run_id, const std::string& task,
                                 int try_number) = 0;  // object key -> value
  virtual Status add_metric(const std::string& run_id, const std::string& task, int try_number,
                            const std::string& name, double value, int64_t step) = 0;
  // [{"name":..,"value":..,"step":..}] in insertion order
  virtual Result<json> metrics_of(const std::string& run_id, const std::string& task,
                                  int try_number) = 0;

  // Every blob a recorded run references, for gc: the sha256 of each try file (inputs and
  // outputs) and each published value named "version" (a snapshot's version id). Distinct,
  // sorted; values that are not 64 lowercase hex digits are left out.
  virtual Result<std::vector<std::string>> referenced_hashes() = 0;

  // Schedule state: the logical date of the last run the scheduler created for a DAG.
  virtual Result<std::optional<TimePoint>> last_scheduled(const std::string& dag) = 0;
  virtual Status set_last_scheduled(const std::string& dag, TimePoint logical_date) = 0;
  // Paused flag per DAG (absent = not paused).
  virtual Result<bool> paused(const std::string& dag) = 0;
  virtual Status set_paused(const std::string& dag, bool paused) = 0;
};

// Opens the store that `url` names: "sqlite:PATH" or a bare PATH is the embedded SQLite
// store (created if needed, pending migrations applied in order); a "postgres://" URL is
// refused (code "invalid") until that backend exists. The backends live outside the
// interface: callers choose by URL, never by type.
Result<std::unique_ptr<Store>> open_store(std::string_view url);
// The SQLite store at `path` (what open_store("sqlite:PATH") returns).
Result<std::unique_ptr<Store>> open_sqlite_store(const std::filesystem::path& path);

// RAII helper: begin() now, rollback() on scope exit unless commit() was called.
class Transaction {
 public:
  explicit Transaction(Store& s) : s_(s) { status_ = s_.begin(); }
  ~Transaction() {
    if (status_.ok() && !done_) s_.rollback();
  }
  const Status& status() const { return status_; }
  Status commit() {
    done_ = true;
    return s_.commit();
  }

 private:
  Store& s_;
  Status status_;
  bool done_ = false;
};

}  // namespace drover
