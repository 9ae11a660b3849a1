// Store: the single source of truth for runs, task instances, tries, their files, values
// and metrics, DAG file versions and schedule state (DESIGN.md §5, §9). SqliteStore is
// the embedded implementation (WAL, synchronous=FULL, numbered migrations). A Store object
// is used by one thread at a time; several processes may open the same file (SQLite
// locking, busy timeout 10 s). Every mutating call commits before it returns unless it is
// inside a Transaction, which commits all of its calls at once (one fsync).
//
// Rules every backend keeps (the contract suite, tests/scheduler/store_test.cpp, checks them;
// SQLite's behaviour is the reference where a rule below was first written down):
// - A failed call changes nothing of its own; inside a transaction the earlier writes of
//   that transaction stay (a savepoint per call), and commit() still commits them.
// - A uniqueness or reference violation (a run id or a task twice, a try of a task the run
//   lacks, files/values/metrics of a try that does not exist) fails with Errc::Conflict;
//   updating a run or try that does not exist fails with Errc::NotFound.
// - A connection's open transaction is invisible to other connections until it commits.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
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
  std::string error;  // why the run failed when no task's failure says (e.g. recovery's)
  // The model versions its tasks' `uses:` were pinned to when it was created:
  // {TASK: {"ref": "click_model@production", "name": "click_model", "version": 3}}.
  json models = json::object();

  // Written only by claim_run / release_run / count_recovery (insert_run and update_run
  // leave them as they are; a new run is unowned with no recoveries).
  std::string owner;                     // the scheduler holding the run; empty: none
  std::optional<TimePoint> lease_until;  // the owner's claim lapses at this time
  int recoveries = 0;                    // pickups by recovery since a try of the run last ended
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

// A version of a model in the registry (DESIGN.md §6 `train`): registered once by the
// successful try that made it and never changed. `version` counts up per name from 1 and is
// never reused; `record` holds what the version links to (params, metrics, step_metrics,
// inputs, dag_hash, git, environment: docs/models.md), as the train type and the Engine wrote it.
struct ModelVersion {
  std::string name;
  int64_t version = 0;  // assigned by add_model_version
  std::string run_id, task;
  int try_number = 0;
  TimePoint created_at{};
  std::vector<FileRecord> artifacts;  // path, sha256, size, mode (from_task unused)
  json record = json::object();
};

// One move of a model's alias (`production`, `staging`, …): the history is these events,
// oldest first; an alias names the version its latest event moved it to.
struct AliasEvent {
  int64_t seq = 0;  // assigned by move_alias, increasing across every model
  std::string name, alias;
  std::optional<int64_t> from;  // the version it named before (none: it was unset)
  int64_t to = 0;
  std::string by;       // who: a user, or "run RUN_ID" for a promote task
  std::string reason;   // free text ("" when none was given)
  std::string run_id;   // the run that moved it, if a run did
  bool forced = false;  // moved with --force past the registry's checks
  TimePoint at{};
};

// The verdict of one `validate` try on a model version (DESIGN.md §6): recorded with the
// try's end, passed or not. Promotion and alias moves read a version's latest one.
struct ModelValidation {
  std::string name;
  int64_t version = 0;
  std::string run_id, task;
  int try_number = 0;
  bool passed = false;
  json report = json::object();  // {passed, model, version, gates: [...]} (docs/models.md)
  TimePoint at{};
};

// One change of a version's tags (docs/models.md "Tags and descriptions"): the key set to
// `value`, or removed (nullopt). Nothing is updated in place: a version's tags are, per key,
// its latest event's value where that is set.
struct TagEvent {
  int64_t seq = 0;  // assigned by add_tag_events, increasing across every model
  std::string name;
  int64_t version = 0;
  std::string key;
  std::optional<std::string> value;  // nullopt: the key was removed
  std::string by;                    // who: a user, or "api"
  TimePoint at{};
};

// One edit of a version's description: the description is its latest edit's text, or, with
// none, the one its train task gave (ModelVersion::record "description"). Kept apart from
// tags: one text per version, longer, possibly several lines, never filtered on.
struct DescriptionEvent {
  int64_t seq = 0;  // assigned by add_description_event, increasing across every model
  std::string name;
  int64_t version = 0;
  std::string description;
  std::string by;
  TimePoint at{};
};

struct ModelSummary {
  std::string name;
  int64_t versions = 0;  // how many (the latest is `latest`: versions are never removed)
  int64_t latest = 0;
  // The first version; the latest change (a version, an alias move, a tag or description edit).
  TimePoint created_at{}, updated_at{};
  std::map<std::string, int64_t> aliases;  // alias -> version
};

struct RunFilter {
  std::string dag;  // empty: all
  std::optional<RunState> state;
  int limit = 100;
  // Paging cursor: only runs created before this run (its id, as the previous page's last
  // run gives it); an id naming no run makes list_runs fail with Errc::NotFound.
  std::string before_run;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual int schema_version() = 0;

  // Another connection to this store, for reads on another thread (the API's listings): it
  // sees every committed write and never blocks the writer. Null where the backend has one
  // connection only (the memory store of the tests: the API then reads on the scheduler's
  // thread). Its writes fail.
  virtual Result<std::unique_ptr<Store>> open_reader() { return std::unique_ptr<Store>(); }

  // Groups calls into one atomic commit. Nested use is an error (Errc::Conflict), as is
  // commit() without begin(); rollback() without begin() does nothing. A failed commit()
  // keeps nothing of the transaction.
  virtual Status begin() = 0;
  virtual Status commit() = 0;
  virtual void rollback() = 0;

  // DAG file versions (content-addressed, kept for lineage). Idempotent per hash: the
  // content first stored under a hash stays.
  virtual Status put_dag_version(const std::string& hash, const std::string& dag,
                                 const std::string& path, const std::string& content) = 0;
  virtual Result<std::optional<std::string>> dag_version_content(const std::string& hash) = 0;

  // Runs. insert_run assigns nothing: the caller sets id/seq from next_run_seq, a counter
  // per DAG of its own (runs inserted do not move it; a rollback undoes a draw). insert_run
  // stores the run and its tasks all or nothing; update_run "no such run: ID" (Errc::NotFound).
  // Listing order is insertion order (not created_at): list_runs newest inserted first,
  // at most `limit` runs (0: none; negative: all); unfinished_runs oldest first.
  // list_runs gives summaries: every field but `params`, which is left empty ({}) — a
  // listing must not cost what its runs' params weigh (get_run reads them).
  virtual Result<int64_t> next_run_seq(const std::string& dag) = 0;
  virtual Status insert_run(const RunRecord& run, const std::vector<TaskInstance>& tasks) = 0;
  virtual Status update_run(const RunRecord& run) = 0;  // state, timestamps and error
  virtual Result<std::optional<RunRecord>> get_run(const std::string& id) = 0;
  virtual Result<std::vector<RunRecord>> list_runs(const RunFilter& f) = 0;  // newest first
  virtual Result<std::vector<RunRecord>> unfinished_runs() = 0;  // Queued or Running, oldest first

  // Ownership of a run, for several schedulers on one store (DESIGN.md §11). The Engine
  // does not use it yet: today one daemon per home (serve.lock) owns every run.
  // claim_run atomically (one compare-and-set) makes `owner` (non-empty) the run's owner
  // until `lease_until` when the run is unowned, already `owner`'s (a renewal: the lease
  // moves, shorter or longer), or its lease ended at or before `now`; it returns false,
  // changing nothing, when another owner's lease is still running. Errors: Errc::Invalid
  // (an empty owner), Errc::NotFound (no such run), I/O. A finished run can be claimed too.
  // release_run makes the run unowned; Errc::Conflict when `owner` does not hold it (held by
  // another, or by nobody: a release after someone else took over a lapsed lease fails),
  // Errc::NotFound when there is no such run. The owner and lease read back on RunRecord (get_run,
  // list_runs, unfinished_runs).
  virtual Result<bool> claim_run(const std::string& run_id, const std::string& owner,
                                 TimePoint lease_until, TimePoint now) = 0;
  virtual Status release_run(const std::string& run_id, const std::string& owner) = 0;

  // The recovery crash counter (RunRecord::recoveries): count_recovery adds one pickup by
  // recovery and returns the new count (committed with the call, or with the caller's
  // transaction); Errc::NotFound when there is no such run. The store sets it back to 0
  // whenever a try of the run ends: insert_try or update_try writing `ended_at` on a try
  // that had none. So it is the number of pickups since the run last made progress.
  virtual Result<int> count_recovery(const std::string& run_id) = 0;

  // update_task replaces the instance by (run_id, task), adding it when the run lacks it;
  // the run must exist. tasks_of lists them in the order insert_run was given them.
  virtual Status update_task(const TaskInstance& t) = 0;
  virtual Result<std::vector<TaskInstance>> tasks_of(const std::string& run_id) = 0;

  virtual Status insert_try(const TryRecord& t) = 0;
  virtual Status update_try(const TryRecord& t) = 0;
  // Removes an Armed try that never started, with its files, values and metrics; a try in
  // any other state is kept and the call is Errc::Invalid ("try RUN TASK try N is STATE, not
  // armed"), an unknown one Errc::NotFound.
  virtual Status delete_armed_try(const std::string& run_id, const std::string& task,
                                  int try_number) = 0;
  // update_try replaces every field of the try named by (run_id, task, try_number); an
  // unknown one is "no such try: RUN TASK try N" (Errc::NotFound). tries_of orders by task (the
  // run's task order, as tasks_of), then try number; running_tries (state Running) by
  // started_at, then insertion.
  virtual Result<std::vector<TryRecord>> tries_of(
      const std::string& run_id) = 0;  // task, try order
  virtual Result<std::vector<TryRecord>> running_tries() = 0;

  // Files of a try: kind is "input" or "output" (any other: Errc::Invalid); files_of lists
  // them in the order added.
  virtual Status add_files(const std::string& run_id, const std::string& task, int try_number,
                           const std::string& kind, const std::vector<FileRecord>& files) = 0;
  virtual Result<std::vector<FileRecord>> files_of(const std::string& run_id,
                                                   const std::string& task, int try_number,
                                                   const std::string& kind) = 0;

  // Published values ({{ outputs.TASK.KEY }}) and metrics of a try. set_value replaces a
  // key's value; values_of is {} for a try with none. A metric that is NaN or infinite
  // reads back as null.
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
  // outputs), each model version's artifact and each published value named "version" (a
  // snapshot's version id). Distinct,
  // sorted; values that are not 64 lowercase hex digits are left out.
  virtual Result<std::vector<std::string>> referenced_hashes() = 0;

  // The model registry. add_model_version gives `v` the next version of its name and
  // returns it; the try it names must exist and have no version yet (Errc::Conflict
  // otherwise). model_version: nullopt when there is none. model_versions: the name's
  // versions newest first, at most `limit` (negative: all), with `record` and `artifacts`
  // left empty (model_version reads them). models: every name, sorted.
  // move_alias is a compare-and-set: it records the event when the alias names `e.from` now
  // (nullopt: unset), else Errc::Conflict ("… names version N now"); `e.to` must be a version
  // of the name (Errc::NotFound). It returns the event's seq. alias_events: oldest first.
  virtual Result<int64_t> add_model_version(const ModelVersion& v) = 0;
  virtual Result<std::optional<ModelVersion>> model_version(const std::string& name,
                                                            int64_t version) = 0;
  virtual Result<std::vector<ModelVersion>> model_versions(const std::string& name, int limit) = 0;
  virtual Result<std::vector<ModelSummary>> models() = 0;
  virtual Result<std::map<std::string, int64_t>> model_aliases(const std::string& name) = 0;
  virtual Result<int64_t> move_alias(const AliasEvent& e) = 0;
  virtual Result<std::vector<AliasEvent>> alias_events(const std::string& name) = 0;
  // A validation of an existing version (Errc::NotFound otherwise), one per try (Errc::Conflict
  // for a second); model_validations: a version's, oldest first.
  virtual Status add_model_validation(const ModelValidation& v) = 0;
  virtual Result<std::vector<ModelValidation>> model_validations(const std::string& name,
                                                                 int64_t version) = 0;
  // Tags and descriptions, as events. add_tag_events records `events` in their order, all or
  // nothing, and returns their seqs; each must name an existing version (Errc::NotFound "no
  // version V of model 'N'"). The store records what it is given (no check of keys or
  // values, nor whether an event changes anything: scheduler/store_models.hpp does that).
  // tag_events: a version's, oldest first. model_tags: the tags of every version of `name`
  // now, version -> {key -> value}; a version with none is absent. add_description_event:
  // the same rule as add_tag_events for one edit; description_events: a version's, oldest
  // first. Both move the model's ModelSummary::updated_at.
  virtual Result<std::vector<int64_t>> add_tag_events(const std::vector<TagEvent>& events) = 0;
  virtual Result<std::vector<TagEvent>> tag_events(const std::string& name, int64_t version) = 0;
  virtual Result<std::map<int64_t, std::map<std::string, std::string>>> model_tags(
      const std::string& name) = 0;
  virtual Result<int64_t> add_description_event(const DescriptionEvent& e) = 0;
  virtual Result<std::vector<DescriptionEvent>> description_events(const std::string& name,
                                                                   int64_t version) = 0;

  // Schedule state: the logical date of the last run the scheduler created for a DAG.
  virtual Result<std::optional<TimePoint>> last_scheduled(const std::string& dag) = 0;
  virtual Status set_last_scheduled(const std::string& dag, TimePoint logical_date) = 0;
  // Paused flag per DAG (absent = not paused).
  virtual Result<bool> paused(const std::string& dag) = 0;
  virtual Status set_paused(const std::string& dag, bool paused) = 0;
};

// Opens the store that `url` names: "sqlite:PATH" or a bare PATH is the embedded SQLite
// store (created if needed, pending migrations applied in order); a "postgres://" URL is
// refused (Errc::Invalid) until that backend exists. The backends live outside the
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
