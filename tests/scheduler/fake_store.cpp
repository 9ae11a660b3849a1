// FakeStore (tests/scheduler/fake_store.hpp): the records as plain containers, a
// transaction as a private copy of them that replaces the committed ones on commit().
#include "tests/scheduler/fake_store.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <set>
#include <tuple>

#include "common/json_text.hpp"

namespace drover {

namespace {

using TryId = std::tuple<std::string, std::string, int>;  // run, task, try number

struct DagVersion {
  std::string dag, path, content;
};

struct FileRow {
  TryId of;
  std::string kind;
  FileRecord file;
};

struct MetricRow {
  TryId of;
  std::string name;
  json value;  // null for NaN and infinities, as SQLite keeps them
  int64_t step = 0;
};

// JSON as it comes back from a text column: invalid UTF-8 replaced, NaN as null.
json as_stored(const json& j) { return json::parse(to_json_text(j)); }

bool is_sha256_hex(const std::string& v) {
  return v.size() == 64 && std::all_of(v.begin(), v.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Error conflict(const char* what, const std::string& why) {
  return make_error(std::string("memory: ") + what + ": " + why, Errc::Conflict);
}

}  // namespace

struct FakeStore::Tables {
  std::map<std::string, DagVersion> dag_versions;          // by hash
  std::vector<RunRecord> runs;                             // in insertion order (the paging order)
  std::map<std::string, size_t> run_pos;                   // run id -> index in runs
  std::map<std::string, int64_t> run_seq;                  // dag -> last sequence number
  std::map<std::string, std::vector<TaskInstance>> tasks;  // run id -> in creation order
  std::vector<TryRecord> tries;                            // in insertion order
  std::vector<FileRow> files;                              // in insertion order
  std::map<TryId, json> values;                            // an object per try
  std::vector<MetricRow> metrics;                          // in insertion order
  std::map<std::string, TimePoint> last_scheduled;
  std::map<std::string, bool> paused;
  std::map<std::string, ModelSummary> models;  // aliases left empty (derived from the events)
  std::vector<ModelVersion> model_versions;    // in insertion order
  std::vector<AliasEvent> alias_events;        // in seq order
  int64_t last_alias_seq = 0;
  std::vector<ModelValidation> validations;          // in insertion order
  std::vector<TagEvent> tag_events;                  // in seq order
  std::vector<DescriptionEvent> description_events;  // in seq order
  int64_t last_tag_seq = 0, last_description_seq = 0;

  const ModelVersion* find_version(const std::string& name, int64_t version) const {
    for (const ModelVersion& v : model_versions)
      if (v.name == name && v.version == version) return &v;
    return nullptr;
  }
  // Errc::NotFound unless the registry has the version (SQLite's need_version).
  Status need_version(const std::string& name, int64_t version) const {
    if (find_version(name, version)) return Status::Ok();
    return make_error("no version " + std::to_string(version) + " of model '" + name + "'",
                      Errc::NotFound);
  }
  // A change to the model at `at` (SQLite's touch_model).
  void touch_model(const std::string& name, TimePoint at) {
    if (auto it = models.find(name); it != models.end())
      it->second.updated_at = std::max(it->second.updated_at, at);
  }
  std::map<std::string, int64_t> aliases(const std::string& name) const {
    std::map<std::string, int64_t> out;
    for (const AliasEvent& e : alias_events)
      if (e.name == name) out[e.alias] = e.to;
    return out;
  }

  bool has_task(const std::string& run_id, const std::string& task) const {
    auto it = tasks.find(run_id);
    if (it == tasks.end()) return false;
    return std::any_of(it->second.begin(), it->second.end(),
                       [&](const TaskInstance& t) { return t.task == task; });
  }
  RunRecord* find_run(const std::string& id) {
    auto it = run_pos.find(id);
    return it == run_pos.end() ? nullptr : &runs[it->second];
  }
  // A try of `run_id` ended: the run made progress (SQLite's tries_ended_* triggers).
  void try_ended(const std::string& run_id) {
    if (RunRecord* r = find_run(run_id)) r->recoveries = 0;
  }
  TryRecord* find_try(const std::string& run_id, const std::string& task, int n) {
    for (TryRecord& t : tries)
      if (t.run_id == run_id && t.task == task && t.try_number == n) return &t;
    return nullptr;
  }
  // The FOREIGN KEY of files, values and metrics: their try must exist.
  Status need_try(const char* what, const TryId& id) {
    if (find_try(std::get<0>(id), std::get<1>(id), std::get<2>(id))) return Status::Ok();
    return conflict(what, "no try " + std::get<0>(id) + " " + std::get<1>(id) + " try " +
                              std::to_string(std::get<2>(id)) + " (FOREIGN KEY constraint)");
  }
};

struct FakeStore::Database {
  std::mutex mu;
  Tables committed;
  const FakeStore* writer = nullptr;  // the connection whose transaction is open
};

FakeStore::FakeStore() : FakeStore(std::make_shared<Database>()) {}
FakeStore::FakeStore(std::shared_ptr<Database> db) : db_(std::move(db)) {}
FakeStore::~FakeStore() { rollback(); }

template <class F>
Status FakeStore::write(const char* what, F&& fn) {
  if (fail_writes_)
    return make_error(std::string("fake: ") + what + ": write failed (fail_writes)");
  std::lock_guard<std::mutex> lock(db_->mu);
  if (!tx_ && db_->writer != nullptr)
    return make_error(std::string("memory: ") + what + ": database is locked");
  return fn(tx_ ? *tx_ : db_->committed);
}

template <class F>
auto FakeStore::read(F&& fn) {
  std::lock_guard<std::mutex> lock(db_->mu);
  return fn(tx_ ? static_cast<const Tables&>(*tx_) : db_->committed);
}

int FakeStore::schema_version() { return 6; }  // the SQLite schema whose rules it keeps

Status FakeStore::begin() {
  if (tx_) return make_error("store: begin() inside an open transaction", Errc::Conflict);
  std::lock_guard<std::mutex> lock(db_->mu);
  if (db_->writer != nullptr) return make_error("memory: begin: database is locked");
  db_->writer = this;
  tx_ = std::make_unique<Tables>(db_->committed);
  return Status::Ok();
}

Status FakeStore::commit() {
  if (!tx_) return make_error("store: commit() without begin()", Errc::Conflict);
  if (fail_commits_ > 0) {
    --fail_commits_;
    ++failed_commits_;
    rollback();
    return make_error("fake: commit failed (fail_next_commit)");
  }
  std::lock_guard<std::mutex> lock(db_->mu);
  db_->committed = std::move(*tx_);
  tx_.reset();
  db_->writer = nullptr;
  ++commits_;
  return Status::Ok();
}

void FakeStore::rollback() {
  if (!tx_) return;
  std::lock_guard<std::mutex> lock(db_->mu);
  tx_.reset();
  db_->writer = nullptr;
  ++rollbacks_;
}

// --- DAG versions --------------------------------------------------------------------------

Status FakeStore::put_dag_version(const std::string& hash, const std::string& dag,
                                  const std::string& path, const std::string& content) {
  return write("put_dag_version", [&](Tables& t) {
    t.dag_versions.emplace(hash, DagVersion{dag, path, content});  // the first one stays
    return Status::Ok();
  });
}

Result<std::optional<std::string>> FakeStore::dag_version_content(const std::string& hash) {
  return read([&](const Tables& t) {
    auto it = t.dag_versions.find(hash);
    if (it == t.dag_versions.end()) return std::optional<std::string>();
    return std::optional<std::string>(it->second.content);
  });
}

// --- Runs ----------------------------------------------------------------------------------

Result<int64_t> FakeStore::next_run_seq(const std::string& dag) {
  int64_t seq = 0;
  Status s = write("next_run_seq", [&](Tables& t) {
    seq = ++t.run_seq[dag];
    return Status::Ok();
  });
  if (!s) return s.error();
  return seq;
}

Status FakeStore::insert_run(const RunRecord& run, const std::vector<TaskInstance>& tasks) {
  return write("insert_run", [&](Tables& t) -> Status {
    // Every check before the first change: the call is all or nothing.
    if (t.run_pos.count(run.id)) return conflict("insert_run", "run '" + run.id + "' exists");
    std::set<std::string> names;
    for (const TaskInstance& ti : tasks)
      if (!names.insert(ti.task).second)
        return conflict("insert_run", "task '" + ti.task + "' twice in run '" + run.id + "'");
    RunRecord r = run;
    r.params = as_stored(r.params);
    r.owner.clear();  // set only by claim_run and count_recovery
    r.lease_until.reset();
    r.recoveries = 0;
    t.run_pos[r.id] = t.runs.size();
    t.runs.push_back(std::move(r));
    std::vector<TaskInstance>& mine = t.tasks[run.id];
    for (TaskInstance ti : tasks) {
      ti.run_id = run.id;
      mine.push_back(std::move(ti));
    }
    return Status::Ok();
  });
}

Status FakeStore::update_run(const RunRecord& run) {
  return write("update_run", [&](Tables& t) -> Status {
    RunRecord* r = t.find_run(run.id);
    if (!r) return make_error("no such run: " + run.id, Errc::NotFound);
    r->state = run.state;  // state, timestamps and error only
    r->started_at = run.started_at;
    r->ended_at = run.ended_at;
    r->error = run.error;
    return Status::Ok();
  });
}

Result<std::optional<RunRecord>> FakeStore::get_run(const std::string& id) {
  return read([&](const Tables& t) {
    auto it = t.run_pos.find(id);
    if (it == t.run_pos.end()) return std::optional<RunRecord>();
    return std::optional<RunRecord>(t.runs[it->second]);
  });
}

Result<std::vector<RunRecord>> FakeStore::list_runs(const RunFilter& f) {
  return read([&](const Tables& t) -> Result<std::vector<RunRecord>> {
    size_t end = t.runs.size();
    if (!f.before_run.empty()) {
      auto it = t.run_pos.find(f.before_run);
      if (it == t.run_pos.end()) return make_error("no run '" + f.before_run + "'", Errc::NotFound);
      end = it->second;
    }
    std::vector<RunRecord> out;
    for (size_t i = end; i-- > 0;) {
      if (f.limit >= 0 && out.size() >= static_cast<size_t>(f.limit)) break;
      const RunRecord& r = t.runs[i];
      if (!f.dag.empty() && r.dag != f.dag) continue;
      if (f.state && r.state != *f.state) continue;
      out.push_back(r);
      out.back().params = json::object();  // a summary (store.hpp)
    }
    return out;
  });
}

Result<std::vector<RunRecord>> FakeStore::unfinished_runs() {
  return read([&](const Tables& t) {
    std::vector<RunRecord> out;
    for (const RunRecord& r : t.runs)
      if (r.state == RunState::Queued || r.state == RunState::Running) out.push_back(r);
    return out;
  });
}

// --- Ownership and the recovery counter ----------------------------------------------------

Result<bool> FakeStore::claim_run(const std::string& run_id, const std::string& owner,
                                  TimePoint lease_until, TimePoint now) {
  if (owner.empty()) return make_error("store: claim_run: empty owner", Errc::Invalid);
  bool taken = false;
  Status s = write("claim_run", [&](Tables& t) -> Status {
    RunRecord* r = t.find_run(run_id);
    if (!r) return make_error("no such run: " + run_id, Errc::NotFound);
    if (!r->owner.empty() && r->owner != owner && r->lease_until && *r->lease_until > now)
      return Status::Ok();  // another owner's lease runs
    r->owner = owner;
    r->lease_until = lease_until;
    taken = true;
    return Status::Ok();
  });
  if (!s) return s.error();
  return taken;
}

Status FakeStore::release_run(const std::string& run_id, const std::string& owner) {
  return write("release_run", [&](Tables& t) -> Status {
    RunRecord* r = t.find_run(run_id);
    if (!r) return make_error("no such run: " + run_id, Errc::NotFound);
    if (r->owner.empty() || r->owner != owner)
      return make_error("run " + run_id + " is not held by '" + owner + "'", Errc::Conflict);
    r->owner.clear();
    r->lease_until.reset();
    return Status::Ok();
  });
}

Result<int> FakeStore::count_recovery(const std::string& run_id) {
  int n = 0;
  Status s = write("count_recovery", [&](Tables& t) -> Status {
    RunRecord* r = t.find_run(run_id);
    if (!r) return make_error("no such run: " + run_id, Errc::NotFound);
    n = ++r->recoveries;
    return Status::Ok();
  });
  if (!s) return s.error();
  return n;
}

// --- Task instances ------------------------------------------------------------------------

Status FakeStore::update_task(const TaskInstance& ti) {
  return write("update_task", [&](Tables& t) -> Status {
    if (!t.run_pos.count(ti.run_id))
      return conflict("update_task", "no run '" + ti.run_id + "' (FOREIGN KEY constraint)");
    std::vector<TaskInstance>& mine = t.tasks[ti.run_id];
    for (TaskInstance& have : mine) {
      if (have.task != ti.task) continue;
      have = ti;
      return Status::Ok();
    }
    mine.push_back(ti);  // an upsert, as SQLite's
    return Status::Ok();
  });
}

Result<std::vector<TaskInstance>> FakeStore::tasks_of(const std::string& run_id) {
  return read([&](const Tables& t) {
    auto it = t.tasks.find(run_id);
    return it == t.tasks.end() ? std::vector<TaskInstance>() : it->second;
  });
}

// --- Tries ---------------------------------------------------------------------------------

Status FakeStore::insert_try(const TryRecord& rec) {
  return write("insert_try", [&](Tables& t) -> Status {
    if (!t.has_task(rec.run_id, rec.task))
      return conflict("insert_try", "no task '" + rec.task + "' in run '" + rec.run_id +
                                        "' (FOREIGN KEY constraint)");
    if (t.find_try(rec.run_id, rec.task, rec.try_number))
      return conflict("insert_try", "try " + rec.run_id + " " + rec.task + " try " +
                                        std::to_string(rec.try_number) + " exists");
    TryRecord r = rec;
    r.command = as_stored(r.command);
    r.facts = as_stored(r.facts);
    t.tries.push_back(std::move(r));
    if (rec.ended_at) t.try_ended(rec.run_id);
    return Status::Ok();
  });
}

Status FakeStore::update_try(const TryRecord& rec) {
  return write("update_try", [&](Tables& t) -> Status {
    TryRecord* have = t.find_try(rec.run_id, rec.task, rec.try_number);
    if (!have)
      return make_error(
          "no such try: " + rec.run_id + " " + rec.task + " try " + std::to_string(rec.try_number),
          Errc::NotFound);
    bool ends = !have->ended_at && rec.ended_at;
    *have = rec;
    if (ends) t.try_ended(rec.run_id);
    have->command = as_stored(have->command);
    have->facts = as_stored(have->facts);
    return Status::Ok();
  });
}

Status FakeStore::delete_armed_try(const std::string& run_id, const std::string& task,
                                   int try_number) {
  return write("delete_armed_try", [&](Tables& t) -> Status {
    std::string name = run_id + " " + task + " try " + std::to_string(try_number);
    TryRecord* have = t.find_try(run_id, task, try_number);
    if (!have) return make_error("no such try: " + name, Errc::NotFound);
    if (have->state != TryState::Armed)
      return make_error("try " + name + " is " + to_string(have->state) + ", not armed",
                        Errc::Invalid);
    TryId id{run_id, task, try_number};
    t.tries.erase(t.tries.begin() + (have - t.tries.data()));
    std::erase_if(t.files, [&](const FileRow& f) { return f.of == id; });
    t.values.erase(id);
    std::erase_if(t.metrics, [&](const MetricRow& m) { return m.of == id; });
    return Status::Ok();
  });
}

Result<std::vector<TryRecord>> FakeStore::tries_of(const std::string& run_id) {
  return read([&](const Tables& t) {
    // Tasks in the order the run created them, then by try.
    std::map<std::string, size_t> order;
    if (auto it = t.tasks.find(run_id); it != t.tasks.end())
      for (size_t i = 0; i < it->second.size(); ++i) order[it->second[i].task] = i;
    std::vector<TryRecord> out;
    for (const TryRecord& r : t.tries)
      if (r.run_id == run_id) out.push_back(r);
    std::stable_sort(out.begin(), out.end(), [&](const TryRecord& a, const TryRecord& b) {
      return std::make_pair(order[a.task], a.try_number) <
             std::make_pair(order[b.task], b.try_number);
    });
    return out;
  });
}

Result<std::vector<TryRecord>> FakeStore::running_tries() {
  return read([&](const Tables& t) {
    std::vector<TryRecord> out;
    for (const TryRecord& r : t.tries)
      if (r.state == TryState::Running) out.push_back(r);
    std::stable_sort(out.begin(), out.end(), [](const TryRecord& a, const TryRecord& b) {
      return a.started_at < b.started_at;  // then insertion order
    });
    return out;
  });
}

// --- Files, values, metrics ----------------------------------------------------------------

Status FakeStore::add_files(const std::string& run_id, const std::string& task, int try_number,
                            const std::string& kind, const std::vector<FileRecord>& files) {
  if (kind != "input" && kind != "output")
    return make_error("store: file kind must be \"input\" or \"output\", not \"" + kind + "\"",
                      Errc::Invalid);
  return write("add_files", [&](Tables& t) -> Status {
    TryId id{run_id, task, try_number};
    if (files.empty()) return Status::Ok();
    if (Status s = t.need_try("add_files", id); !s) return s;
    for (const FileRecord& f : files) t.files.push_back(FileRow{id, kind, f});
    return Status::Ok();
  });
}

Result<std::vector<FileRecord>> FakeStore::files_of(const std::string& run_id,
                                                    const std::string& task, int try_number,
                                                    const std::string& kind) {
  return read([&](const Tables& t) {
    TryId id{run_id, task, try_number};
    std::vector<FileRecord> out;
    for (const FileRow& f : t.files)
      if (f.of == id && f.kind == kind) out.push_back(f.file);
    return out;
  });
}

Status FakeStore::set_value(const std::string& run_id, const std::string& task, int try_number,
                            const std::string& key, const json& value) {
  return write("set_value", [&](Tables& t) -> Status {
    TryId id{run_id, task, try_number};
    if (Status s = t.need_try("set_value", id); !s) return s;
    json& obj = t.values[id];
    if (!obj.is_object()) obj = json::object();
    obj[key] = as_stored(value);
    return Status::Ok();
  });
}

Result<json> FakeStore::values_of(const std::string& run_id, const std::string& task,
                                  int try_number) {
  return read([&](const Tables& t) {
    auto it = t.values.find(TryId{run_id, task, try_number});
    return it == t.values.end() ? json::object() : it->second;
  });
}

Status FakeStore::add_metric(const std::string& run_id, const std::string& task, int try_number,
                             const std::string& name, double value, int64_t step) {
  return write("add_metric", [&](Tables& t) -> Status {
    TryId id{run_id, task, try_number};
    if (Status s = t.need_try("add_metric", id); !s) return s;
    t.metrics.push_back(MetricRow{id, name, std::isfinite(value) ? json(value) : json(), step});
    return Status::Ok();
  });
}

Result<json> FakeStore::metrics_of(const std::string& run_id, const std::string& task,
                                   int try_number) {
  return read([&](const Tables& t) {
    TryId id{run_id, task, try_number};
    json out = json::array();
    for (const MetricRow& m : t.metrics)
      if (m.of == id) out.push_back({{"name", m.name}, {"value", m.value}, {"step", m.step}});
    return out;
  });
}

Result<std::vector<std::string>> FakeStore::referenced_hashes() {
  return read([&](const Tables& t) {
    std::set<std::string> out;
    for (const FileRow& f : t.files)
      if (is_sha256_hex(f.file.sha256)) out.insert(f.file.sha256);
    for (const ModelVersion& v : t.model_versions)
      for (const FileRecord& f : v.artifacts)
        if (is_sha256_hex(f.sha256)) out.insert(f.sha256);
    for (const auto& [id, obj] : t.values) {
      if (!obj.contains("version")) continue;
      std::string v = to_json_text(obj["version"]);  // SQLite compares the stored JSON text
      if (v.size() == 66 && v.front() == '"' && v.back() == '"') v = v.substr(1, 64);
      if (is_sha256_hex(v)) out.insert(v);
    }
    return std::vector<std::string>(out.begin(), out.end());
  });
}

// --- Schedule state ------------------------------------------------------------------------

Result<std::optional<TimePoint>> FakeStore::last_scheduled(const std::string& dag) {
  return read([&](const Tables& t) {
    auto it = t.last_scheduled.find(dag);
    if (it == t.last_scheduled.end()) return std::optional<TimePoint>();
    return std::optional<TimePoint>(it->second);
  });
}

Status FakeStore::set_last_scheduled(const std::string& dag, TimePoint logical_date) {
  return write("set_last_scheduled", [&](Tables& t) {
    t.last_scheduled[dag] = logical_date;
    return Status::Ok();
  });
}

Result<int64_t> FakeStore::add_model_version(const ModelVersion& v) {
  int64_t version = 0;
  Status s = write("add_model_version", [&](Tables& t) -> Status {
    if (Status s = t.need_try("add_model_version", {v.run_id, v.task, v.try_number}); !s.ok())
      return s;
    for (const ModelVersion& o : t.model_versions)
      if (o.run_id == v.run_id && o.task == v.task && o.try_number == v.try_number)
        return conflict("add_model_version", "UNIQUE constraint failed: that try has version " +
                                                 std::to_string(o.version) + " of " + o.name);
    std::set<std::string> paths;
    for (const FileRecord& f : v.artifacts)
      if (!paths.insert(f.path).second)
        return conflict("add_model_version", "UNIQUE constraint failed: artifact " + f.path);
    ModelSummary& m = t.models[v.name];
    if (m.name.empty()) {
      m.name = v.name;
      m.created_at = v.created_at;
    }
    m.updated_at = v.created_at;
    version = ++m.latest;
    ++m.versions;
    ModelVersion stored = v;
    stored.version = version;
    stored.record = as_stored(v.record);
    for (FileRecord& f : stored.artifacts) f.from_task.clear();
    t.model_versions.push_back(std::move(stored));
    return Status::Ok();
  });
  if (!s.ok()) return s.error();
  return version;
}

Result<std::optional<ModelVersion>> FakeStore::model_version(const std::string& name,
                                                             int64_t version) {
  return read([&](const Tables& t) -> Result<std::optional<ModelVersion>> {
    const ModelVersion* v = t.find_version(name, version);
    if (!v) return std::optional<ModelVersion>();
    return std::optional<ModelVersion>(*v);
  });
}

Result<std::vector<ModelVersion>> FakeStore::model_versions(const std::string& name, int limit) {
  return read([&](const Tables& t) -> Result<std::vector<ModelVersion>> {
    std::vector<ModelVersion> out;
    for (auto it = t.model_versions.rbegin(); it != t.model_versions.rend(); ++it) {
      if (it->name != name) continue;
      if (limit >= 0 && static_cast<int>(out.size()) >= limit) break;
      ModelVersion v = *it;
      v.record = json::object();
      v.artifacts.clear();
      out.push_back(std::move(v));
    }
    return out;
  });
}

Result<std::vector<ModelSummary>> FakeStore::models() {
  return read([&](const Tables& t) -> Result<std::vector<ModelSummary>> {
    std::vector<ModelSummary> out;
    for (const auto& [name, m] : t.models) {
      ModelSummary s = m;
      s.aliases = t.aliases(name);
      for (const AliasEvent& e : t.alias_events)
        if (e.name == name) s.updated_at = std::max(s.updated_at, e.at);
      out.push_back(std::move(s));
    }
    return out;
  });
}

Result<std::map<std::string, int64_t>> FakeStore::model_aliases(const std::string& name) {
  return read(
      [&](const Tables& t) -> Result<std::map<std::string, int64_t>> { return t.aliases(name); });
}

Result<int64_t> FakeStore::move_alias(const AliasEvent& e) {
  int64_t seq = 0;
  Status s = write("move_alias", [&](Tables& t) -> Status {
    if (Status n = t.need_version(e.name, e.to); !n.ok()) return n;
    auto now = t.aliases(e.name);
    std::optional<int64_t> cur;
    if (auto it = now.find(e.alias); it != now.end()) cur = it->second;
    if (cur != e.from)
      return make_error("alias " + e.alias + " of model '" + e.name + "' " +
                            (cur ? "names version " + std::to_string(*cur) : "is unset") + " now",
                        Errc::Conflict);
    AliasEvent stored = e;
    stored.seq = seq = ++t.last_alias_seq;
    t.alias_events.push_back(std::move(stored));
    return Status::Ok();
  });
  if (!s.ok()) return s.error();
  return seq;
}

Result<std::vector<AliasEvent>> FakeStore::alias_events(const std::string& name) {
  return read([&](const Tables& t) -> Result<std::vector<AliasEvent>> {
    std::vector<AliasEvent> out;
    for (const AliasEvent& e : t.alias_events)
      if (e.name == name) out.push_back(e);
    return out;
  });
}

Result<bool> FakeStore::paused(const std::string& dag) {
  return read([&](const Tables& t) {
    auto it = t.paused.find(dag);
    return it != t.paused.end() && it->second;
  });
}

Status FakeStore::set_paused(const std::string& dag, bool paused) {
  return write("set_paused", [&](Tables& t) {
    t.paused[dag] = paused;
    return Status::Ok();
  });
}

Status FakeStore::add_model_validation(const ModelValidation& v) {
  return write("add_model_validation", [&](Tables& t) -> Status {
    if (Status n = t.need_version(v.name, v.version); !n.ok()) return n;
    if (Status s = t.need_try("add_model_validation", {v.run_id, v.task, v.try_number}); !s.ok())
      return s;
    for (const ModelValidation& o : t.validations)
      if (o.run_id == v.run_id && o.task == v.task && o.try_number == v.try_number)
        return conflict("add_model_validation", "UNIQUE constraint failed: that try validated " +
                                                    o.name + "/" + std::to_string(o.version));
    ModelValidation stored = v;
    stored.report = as_stored(v.report);
    t.validations.push_back(std::move(stored));
    return Status::Ok();
  });
}

Result<std::vector<ModelValidation>> FakeStore::model_validations(const std::string& name,
                                                                  int64_t version) {
  return read([&](const Tables& t) -> Result<std::vector<ModelValidation>> {
    std::vector<ModelValidation> out;
    for (const ModelValidation& v : t.validations)
      if (v.name == name && v.version == version) out.push_back(v);
    return out;
  });
}

Result<std::vector<int64_t>> FakeStore::add_tag_events(const std::vector<TagEvent>& events) {
  std::vector<int64_t> seqs;
  Status s = write("add_tag_events", [&](Tables& t) -> Status {
    for (const TagEvent& e : events)
      if (Status n = t.need_version(e.name, e.version); !n.ok()) return n;
    for (const TagEvent& e : events) {
      TagEvent stored = e;
      stored.seq = ++t.last_tag_seq;
      seqs.push_back(stored.seq);
      t.touch_model(e.name, e.at);
      t.tag_events.push_back(std::move(stored));
    }
    return Status::Ok();
  });
  if (!s.ok()) return s.error();
  return seqs;
}

Result<std::vector<TagEvent>> FakeStore::tag_events(const std::string& name, int64_t version) {
  return read([&](const Tables& t) -> Result<std::vector<TagEvent>> {
    std::vector<TagEvent> out;
    for (const TagEvent& e : t.tag_events)
      if (e.name == name && e.version == version) out.push_back(e);
    return out;
  });
}

Result<std::map<int64_t, std::map<std::string, std::string>>> FakeStore::model_tags(
    const std::string& name) {
  return read(
      [&](const Tables& t) -> Result<std::map<int64_t, std::map<std::string, std::string>>> {
        std::map<int64_t, std::map<std::string, std::string>> out;
        for (const TagEvent& e : t.tag_events) {
          if (e.name != name) continue;
          if (e.value) {
            out[e.version][e.key] = *e.value;
          } else if (auto it = out.find(e.version); it != out.end()) {
            it->second.erase(e.key);
            if (it->second.empty()) out.erase(it);
          }
        }
        return out;
      });
}

Result<int64_t> FakeStore::add_description_event(const DescriptionEvent& e) {
  int64_t seq = 0;
  Status s = write("add_description_event", [&](Tables& t) -> Status {
    if (Status n = t.need_version(e.name, e.version); !n.ok()) return n;
    DescriptionEvent stored = e;
    stored.seq = seq = ++t.last_description_seq;
    t.touch_model(e.name, e.at);
    t.description_events.push_back(std::move(stored));
    return Status::Ok();
  });
  if (!s.ok()) return s.error();
  return seq;
}

Result<std::vector<DescriptionEvent>> FakeStore::description_events(const std::string& name,
                                                                    int64_t version) {
  return read([&](const Tables& t) -> Result<std::vector<DescriptionEvent>> {
    std::vector<DescriptionEvent> out;
    for (const DescriptionEvent& e : t.description_events)
      if (e.name == name && e.version == version) out.push_back(e);
    return out;
  });
}

}  // namespace drover
