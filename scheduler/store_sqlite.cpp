// SqliteStore: the embedded Store (DESIGN.md §9) on SQLite's C API. WAL journal,
// synchronous=FULL, foreign keys, numbered migrations, prepared statements cached per SQL
// string. One thread at a time per object; several processes may share the file.
#include <sqlite3.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <set>
#include <system_error>
#include <unordered_map>

#include "common/json_text.hpp"
#include "common/time.hpp"
#include "scheduler/store.hpp"

namespace drover {

namespace {

// ---------------------------------------------------------------------------------------
// Schema. Append new migrations at the end; never edit one that has shipped.

const char* const kMigrations[] = {
    // 1: the initial schema.
    R"sql(
CREATE TABLE dag_versions(
  hash TEXT PRIMARY KEY,
  dag TEXT NOT NULL,
  path TEXT NOT NULL,
  content BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE runs(
  pk INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  dag TEXT NOT NULL,
  seq INTEGER NOT NULL,
  dag_hash TEXT NOT NULL,
  state TEXT NOT NULL,
  params TEXT NOT NULL,
  trigger_kind TEXT NOT NULL,
  trigger_user TEXT NOT NULL,
  logical_date INTEGER,
  interval_start INTEGER,
  interval_end INTEGER,
  git_commit TEXT NOT NULL,
  git_dirty INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  ended_at INTEGER
);
CREATE INDEX runs_dag ON runs(dag, pk);
CREATE INDEX runs_state ON runs(state);
CREATE TABLE run_seq(
  dag TEXT PRIMARY KEY,
  last INTEGER NOT NULL
);
CREATE TABLE task_instances(
  run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  task TEXT NOT NULL,
  state TEXT NOT NULL,
  try_number INTEGER NOT NULL DEFAULT 0,
  next_try_at INTEGER,
  PRIMARY KEY(run_id, task)
);
CREATE TABLE tries(
  run_id TEXT NOT NULL,
  task TEXT NOT NULL,
  try_number INTEGER NOT NULL,
  state TEXT NOT NULL,
  queue TEXT NOT NULL,
  host TEXT NOT NULL,
  worker_pid INTEGER NOT NULL,
  pid INTEGER NOT NULL,
  pid_start INTEGER NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  exit_code INTEGER,
  signal INTEGER,
  try_dir TEXT NOT NULL,
  log_path TEXT NOT NULL,
  command TEXT NOT NULL,
  error TEXT NOT NULL,
  facts TEXT NOT NULL,
  PRIMARY KEY(run_id, task, try_number),
  FOREIGN KEY(run_id, task) REFERENCES task_instances(run_id, task) ON DELETE CASCADE
);
CREATE INDEX tries_state ON tries(state);
CREATE TABLE try_files(
  run_id TEXT NOT NULL,
  task TEXT NOT NULL,
  try_number INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK(kind IN ('input', 'output')),
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  mode INTEGER NOT NULL,
  from_task TEXT NOT NULL,
  FOREIGN KEY(run_id, task, try_number) REFERENCES tries(run_id, task, try_number)
    ON DELETE CASCADE
);
CREATE INDEX try_files_try ON try_files(run_id, task, try_number, kind);
CREATE TABLE try_values(
  run_id TEXT NOT NULL,
  task TEXT NOT NULL,
  try_number INTEGER NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY(run_id, task, try_number, key),
  FOREIGN KEY(run_id, task, try_number) REFERENCES tries(run_id, task, try_number)
    ON DELETE CASCADE
);
CREATE TABLE try_metrics(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  run_id TEXT NOT NULL,
  task TEXT NOT NULL,
  try_number INTEGER NOT NULL,
  name TEXT NOT NULL,
  value REAL,
  step INTEGER NOT NULL,
  FOREIGN KEY(run_id, task, try_number) REFERENCES tries(run_id, task, try_number)
    ON DELETE CASCADE
);
CREATE INDEX try_metrics_try ON try_metrics(run_id, task, try_number, seq);
CREATE TABLE schedule_state(
  dag TEXT PRIMARY KEY,
  last_logical_date INTEGER NOT NULL
);
CREATE TABLE dag_state(
  dag TEXT PRIMARY KEY,
  paused INTEGER NOT NULL
);
)sql",
    // 2: run ownership (claim_run), the recovery crash counter, a run's own failure reason.
    R"sql(
ALTER TABLE runs ADD COLUMN error TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN lease_until INTEGER;
ALTER TABLE runs ADD COLUMN recoveries INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER tries_ended_update AFTER UPDATE OF ended_at ON tries
  WHEN OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL
  BEGIN UPDATE runs SET recoveries = 0 WHERE id = NEW.run_id AND recoveries != 0; END;
CREATE TRIGGER tries_ended_insert AFTER INSERT ON tries
  WHEN NEW.ended_at IS NOT NULL
  BEGIN UPDATE runs SET recoveries = 0 WHERE id = NEW.run_id AND recoveries != 0; END;
)sql",
    // 3: the runs of one DAG in one state, newest first, without a scan of the DAG's history
    // (a daemon counts the running runs `drover run`s own each time it admits a queued run).
    R"sql(
CREATE INDEX runs_dag_state ON runs(dag, state, pk);
)sql",
    // 4: the model registry (ModelVersion, AliasEvent): versions, their artifacts, and
    // alias moves as events; an alias's version is its latest event's.
    R"sql(
CREATE TABLE models(
  name TEXT PRIMARY KEY,
  last_version INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE model_versions(
  name TEXT NOT NULL REFERENCES models(name),
  version INTEGER NOT NULL,
  run_id TEXT NOT NULL,
  task TEXT NOT NULL,
  try_number INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  record TEXT NOT NULL,
  PRIMARY KEY(name, version),
  UNIQUE(run_id, task, try_number),
  FOREIGN KEY(run_id, task, try_number) REFERENCES tries(run_id, task, try_number)
);
CREATE TABLE model_artifacts(
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  path TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  mode INTEGER NOT NULL,
  PRIMARY KEY(name, version, path),
  FOREIGN KEY(name, version) REFERENCES model_versions(name, version)
);
CREATE TABLE model_alias_events(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  alias TEXT NOT NULL,
  from_version INTEGER,
  to_version INTEGER NOT NULL,
  by TEXT NOT NULL,
  reason TEXT NOT NULL,
  run_id TEXT NOT NULL,
  forced INTEGER NOT NULL,
  at INTEGER NOT NULL,
  FOREIGN KEY(name, to_version) REFERENCES model_versions(name, version)
);
CREATE INDEX model_alias_events_alias ON model_alias_events(name, alias, seq);
)sql",
    // 5: validations of model versions (ModelValidation), one per validate try; the model
    // versions a run's `uses:` were pinned to (RunRecord::models).
    R"sql(
CREATE TABLE model_validations(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  run_id TEXT NOT NULL,
  task TEXT NOT NULL,
  try_number INTEGER NOT NULL,
  passed INTEGER NOT NULL,
  report TEXT NOT NULL,
  at INTEGER NOT NULL,
  UNIQUE(run_id, task, try_number),
  FOREIGN KEY(name, version) REFERENCES model_versions(name, version),
  FOREIGN KEY(run_id, task, try_number) REFERENCES tries(run_id, task, try_number)
);
CREATE INDEX model_validations_version ON model_validations(name, version, seq);
ALTER TABLE runs ADD COLUMN models TEXT NOT NULL DEFAULT '{}';
)sql",
    // 6: tags and descriptions of model versions (TagEvent, DescriptionEvent) as events:
    // a version's tags are the latest event per key whose value is not null, its description
    // the latest edit's (else its train's, in model_versions.record).
    R"sql(
CREATE TABLE model_tag_events(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  key TEXT NOT NULL,
  value TEXT,
  by TEXT NOT NULL,
  at INTEGER NOT NULL,
  FOREIGN KEY(name, version) REFERENCES model_versions(name, version)
);
CREATE INDEX model_tag_events_key ON model_tag_events(name, version, key, seq);
CREATE TABLE model_description_events(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  version INTEGER NOT NULL,
  description TEXT NOT NULL,
  by TEXT NOT NULL,
  at INTEGER NOT NULL,
  FOREIGN KEY(name, version) REFERENCES model_versions(name, version)
);
CREATE INDEX model_description_events_version ON model_description_events(name, version, seq);
)sql",
};

constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

int64_t to_us(TimePoint t) { return t.time_since_epoch().count(); }
TimePoint from_us(int64_t us) { return TimePoint(Micros(us)); }

TimePoint now() { return std::chrono::time_point_cast<Micros>(std::chrono::system_clock::now()); }

// A cached prepared statement borrowed for one use: bind, step, read columns. Its
// destructor resets it, so no statement holds a read snapshot between calls.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt(Stmt&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  ~Stmt() {
    if (s_ != nullptr) {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
  }

  void bind(int i, std::nullopt_t) { sqlite3_bind_null(s_, i); }
  void bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void bind(int i, const std::string& v) { bind(i, std::string_view(v)); }
  void bind(int i, const char* v) { bind(i, std::string_view(v)); }
  void bind(int i, int v) { sqlite3_bind_int64(s_, i, v); }
  void bind(int i, long v) { sqlite3_bind_int64(s_, i, v); }
  void bind(int i, long long v) { sqlite3_bind_int64(s_, i, v); }
  void bind(int i, unsigned long v) { sqlite3_bind_int64(s_, i, static_cast<int64_t>(v)); }
  void bind(int i, bool v) { sqlite3_bind_int(s_, i, v ? 1 : 0); }
  void bind(int i, double v) { sqlite3_bind_double(s_, i, v); }
  void bind(int i, TimePoint v) { sqlite3_bind_int64(s_, i, to_us(v)); }
  void bind(int i, const json& v) { bind(i, to_json_text(v)); }
  template <class T>
  void bind(int i, const std::optional<T>& v) {
    if (v) {
      bind(i, *v);
    } else {
      sqlite3_bind_null(s_, i);
    }
  }
  template <class... A>
  void bind_all(const A&... args) {
    int i = 0;
    (bind(++i, args), ...);
  }

  void bind_blob(int i, std::string_view v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  int param(const char* name) const { return sqlite3_bind_parameter_index(s_, name); }

  int step() { return sqlite3_step(s_); }

  bool is_null(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  int64_t i64(int c) const { return sqlite3_column_int64(s_, c); }
  int i32(int c) const { return sqlite3_column_int(s_, c); }
  double dbl(int c) const {
    return is_null(c) ? std::numeric_limits<double>::quiet_NaN() : sqlite3_column_double(s_, c);
  }
  std::string text(int c) const {
    const void* p = sqlite3_column_blob(s_, c);
    int n = sqlite3_column_bytes(s_, c);
    return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), n);
  }
  TimePoint time(int c) const { return from_us(i64(c)); }
  std::optional<TimePoint> opt_time(int c) const {
    if (is_null(c)) return std::nullopt;
    return time(c);
  }
  std::optional<int> opt_int(int c) const {
    if (is_null(c)) return std::nullopt;
    return i32(c);
  }
  // A JSON column; `ok` turns false when the stored text does not parse.
  json js(int c, bool& ok) const {
    json j = json::parse(text(c), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      ok = false;
      return nullptr;
    }
    return j;
  }

 private:
  sqlite3_stmt* s_;
};

constexpr const char* kRunColumns =
    "id, dag, seq, dag_hash, state, params, trigger_kind, trigger_user, logical_date, "
    "interval_start, interval_end, git_commit, git_dirty, created_at, started_at, ended_at, "
    "error, models";
// What a read returns: the written columns, then those only claim_run / count_recovery set.
constexpr const char* kRunReadColumns =
    "id, dag, seq, dag_hash, state, params, trigger_kind, trigger_user, logical_date, "
    "interval_start, interval_end, git_commit, git_dirty, created_at, started_at, ended_at, "
    "error, owner, lease_until, recoveries, models";

// A listing's columns: the same, with params and models not read.
constexpr const char* kRunListColumns =
    "id, dag, seq, dag_hash, state, '{}', trigger_kind, trigger_user, logical_date, "
    "interval_start, interval_end, git_commit, git_dirty, created_at, started_at, ended_at, "
    "error, owner, lease_until, recoveries, '{}'";

constexpr const char* kTryColumns =
    "tries.run_id, tries.task, tries.try_number, tries.state, queue, host, worker_pid, pid, "
    "pid_start, started_at, ended_at, exit_code, signal, try_dir, log_path, command, error, "
    "facts";

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  ~SqliteStore() override {
    if (in_tx_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close(db_);
  }

  Status init() {
    sqlite3_busy_timeout(db_, 10000);
    sqlite3_extended_result_codes(db_, 1);
    {
      auto st = prepare("PRAGMA journal_mode=WAL");
      if (!st.ok()) return st.error();
      if (st->step() != SQLITE_ROW) return err("journal_mode");
      std::string mode = st->text(0);
      if (mode != "wal") {
        return make_error("sqlite: could not switch to WAL mode (journal_mode is " + mode + ")");
      }
    }
    for (const char* pragma : {"PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON"}) {
      if (Status s = exec_raw(pragma); !s.ok()) return s;
    }
    return migrate();
  }

  // A reader on the same file: WAL lets it read beside the writer, each read seeing the last
  // commit, and query_only makes any write it tried fail. The schema is the writer's to
  // migrate.
  Result<std::unique_ptr<Store>> open_reader() override {
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(path_.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close(db);
      return make_error("store: cannot open " + path_.string() + " to read: " + msg);
    }
    auto reader = std::make_unique<SqliteStore>(db, path_);
    sqlite3_busy_timeout(db, 10000);
    sqlite3_extended_result_codes(db, 1);
    if (Status s = reader->exec_raw("PRAGMA query_only=ON"); !s.ok()) return s.error();
    return std::unique_ptr<Store>(std::move(reader));
  }

  int schema_version() override {
    auto v = read_version();
    return v.ok() ? *v : -1;
  }

  Status begin() override {
    if (in_tx_) return make_error("store: begin() inside an open transaction", Errc::Conflict);
    if (Status s = exec_cached("BEGIN IMMEDIATE"); !s.ok()) return s;
    in_tx_ = true;
    return Status::Ok();
  }

  Status commit() override {
    if (!in_tx_) return make_error("store: commit() without begin()", Errc::Conflict);
    in_tx_ = false;
    if (sqlite3_get_autocommit(db_)) {
      // SQLite already rolled the transaction back (e.g. disk full): nothing was committed.
      return make_error("sqlite: commit: the transaction was rolled back by an earlier error");
    }
    if (Status s = exec_cached("COMMIT"); !s.ok()) {
      best_effort("ROLLBACK");
      return s;
    }
    return Status::Ok();
  }

  void rollback() override {
    if (!in_tx_) return;
    in_tx_ = false;
    if (!sqlite3_get_autocommit(db_)) best_effort("ROLLBACK");
  }

  // --- DAG versions ----------------------------------------------------------------------

  Status put_dag_version(const std::string& hash, const std::string& dag, const std::string& path,
                         const std::string& content) override {
    auto st = prepare(
        "INSERT INTO dag_versions(hash, dag, path, content, created_at) VALUES(?, ?, ?, ?, ?) "
        "ON CONFLICT(hash) DO NOTHING");
    if (!st.ok()) return st.error();
    st->bind(1, hash);
    st->bind(2, dag);
    st->bind(3, path);
    st->bind(5, now());
    st->bind_blob(4, content);  // the exact bytes, whatever their encoding
    return done(*st, "put_dag_version");
  }

  Result<std::optional<std::string>> dag_version_content(const std::string& hash) override {
    auto st = prepare("SELECT content FROM dag_versions WHERE hash = ?");
    if (!st.ok()) return st.error();
    st->bind_all(hash);
    int rc = st->step();
    if (rc == SQLITE_DONE) return std::optional<std::string>();
    if (rc != SQLITE_ROW) return err("dag_version_content");
    return std::optional<std::string>(st->text(0));
  }

  // --- Runs ------------------------------------------------------------------------------

  Result<int64_t> next_run_seq(const std::string& dag) override {
    auto st = prepare(
        "INSERT INTO run_seq(dag, last) VALUES(?, 1) "
        "ON CONFLICT(dag) DO UPDATE SET last = last + 1 RETURNING last");
    if (!st.ok()) return st.error();
    st->bind_all(dag);
    if (st->step() != SQLITE_ROW) return err("next_run_seq");
    int64_t seq = st->i64(0);
    if (st->step() != SQLITE_DONE) return err("next_run_seq");
    return seq;
  }

  Status insert_run(const RunRecord& r, const std::vector<TaskInstance>& tasks) override {
    return atomically([&]() -> Status {
      std::string sql = std::string("INSERT INTO runs(") + kRunColumns +
                        ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
      auto st = prepare(sql);
      if (!st.ok()) return st.error();
      st->bind_all(r.id, r.dag, r.seq, r.dag_hash, to_string(r.state), r.params, r.trigger_kind,
                   r.trigger_user, r.logical_date, r.interval_start, r.interval_end, r.git_commit,
                   r.git_dirty, r.created_at, r.started_at, r.ended_at, r.error, r.models);
      if (Status s = done(*st, "insert_run"); !s.ok()) return s;
      for (const TaskInstance& t : tasks) {
        TaskInstance copy = t;
        copy.run_id = r.id;
        if (Status s = insert_task(copy); !s.ok()) return s;
      }
      return Status::Ok();
    });
  }

  Status update_run(const RunRecord& r) override {
    auto st =
        prepare("UPDATE runs SET state = ?, started_at = ?, ended_at = ?, error = ? WHERE id = ?");
    if (!st.ok()) return st.error();
    st->bind_all(to_string(r.state), r.started_at, r.ended_at, r.error, r.id);
    if (Status s = done(*st, "update_run"); !s.ok()) return s;
    if (sqlite3_changes(db_) == 0) return make_error("no such run: " + r.id, Errc::NotFound);
    return Status::Ok();
  }

  Result<std::optional<RunRecord>> get_run(const std::string& id) override {
    auto st = prepare(std::string("SELECT ") + kRunReadColumns + " FROM runs WHERE id = ?");
    if (!st.ok()) return st.error();
    st->bind_all(id);
    int rc = st->step();
    if (rc == SQLITE_DONE) return std::optional<RunRecord>();
    if (rc != SQLITE_ROW) return err("get_run");
    auto run = read_run(*st);
    if (!run.ok()) return run.error();
    return std::optional<RunRecord>(std::move(*run));
  }

  Result<std::vector<RunRecord>> list_runs(const RunFilter& f) override {
    // The SQL varies with the filters so that each shape uses its index; each shape is a
    // separate cached statement.
    std::string sql = std::string("SELECT ") + kRunListColumns + " FROM runs WHERE 1";
    if (!f.dag.empty()) sql += " AND dag = :dag";
    if (f.state) sql += " AND state = :state";
    if (!f.before_run.empty()) sql += " AND pk < (SELECT pk FROM runs WHERE id = :before)";
    sql += " ORDER BY pk DESC LIMIT :limit";
    auto st = prepare(sql);
    if (!st.ok()) return st.error();
    if (!f.dag.empty()) st->bind(st->param(":dag"), f.dag);
    if (f.state) st->bind(st->param(":state"), to_string(*f.state));
    if (!f.before_run.empty()) {
      // The cursor must name a run: an unknown one is an error, not an empty page.
      auto known = run_exists(f.before_run, "list_runs");
      if (!known.ok()) return known.error();
      if (!*known) return make_error("no run '" + f.before_run + "'", Errc::NotFound);
      st->bind(st->param(":before"), f.before_run);
    }
    st->bind(st->param(":limit"), f.limit < 0 ? -1 : f.limit);
    return read_runs(*st, "list_runs");
  }

  Result<std::vector<RunRecord>> unfinished_runs() override {
    auto st = prepare(std::string("SELECT ") + kRunReadColumns +
                      " FROM runs WHERE state IN ('queued', 'running') ORDER BY pk");
    if (!st.ok()) return st.error();
    return read_runs(*st, "unfinished_runs");
  }

  // --- Ownership and the recovery counter ------------------------------------------------

  Result<bool> claim_run(const std::string& run_id, const std::string& owner, TimePoint lease_until,
                         TimePoint now) override {
    if (owner.empty()) return make_error("store: claim_run: empty owner", Errc::Invalid);
    auto st = prepare(
        "UPDATE runs SET owner = :owner, lease_until = :until WHERE id = :id AND "
        "(owner = '' OR owner = :owner OR lease_until IS NULL OR lease_until <= :now)");
    if (!st.ok()) return st.error();
    st->bind(st->param(":owner"), owner);
    st->bind(st->param(":until"), lease_until);
    st->bind(st->param(":id"), run_id);
    st->bind(st->param(":now"), now);
    if (Status s = done(*st, "claim_run"); !s.ok()) return s.error();
    if (sqlite3_changes(db_) == 1) return true;
    auto known = run_exists(run_id, "claim_run");
    if (!known.ok()) return known.error();
    return *known ? Result<bool>(false) : make_error("no such run: " + run_id, Errc::NotFound);
  }

  Status release_run(const std::string& run_id, const std::string& owner) override {
    auto st = prepare(
        "UPDATE runs SET owner = '', lease_until = NULL WHERE id = ? AND owner = ? AND "
        "owner != ''");
    if (!st.ok()) return st.error();
    st->bind_all(run_id, owner);
    if (Status s = done(*st, "release_run"); !s.ok()) return s;
    if (sqlite3_changes(db_) == 1) return Status::Ok();
    auto known = run_exists(run_id, "release_run");
    if (!known.ok()) return known.error();
    if (!*known) return make_error("no such run: " + run_id, Errc::NotFound);
    return make_error("run " + run_id + " is not held by '" + owner + "'", Errc::Conflict);
  }

  Result<int> count_recovery(const std::string& run_id) override {
    auto st =
        prepare("UPDATE runs SET recoveries = recoveries + 1 WHERE id = ? RETURNING recoveries");
    if (!st.ok()) return st.error();
    st->bind_all(run_id);
    int rc = st->step();
    if (rc == SQLITE_DONE) return make_error("no such run: " + run_id, Errc::NotFound);
    if (rc != SQLITE_ROW) return err("count_recovery");
    int n = st->i32(0);
    if (st->step() != SQLITE_DONE) return err("count_recovery");
    return n;
  }

  // --- Task instances --------------------------------------------------------------------

  Status update_task(const TaskInstance& t) override {
    // An upsert: a task instance the run did not start with (none today) is added.
    auto st = prepare(
        "INSERT INTO task_instances(run_id, task, state, try_number, next_try_at) "
        "VALUES(?, ?, ?, ?, ?) ON CONFLICT(run_id, task) DO UPDATE SET "
        "state = excluded.state, try_number = excluded.try_number, "
        "next_try_at = excluded.next_try_at");
    if (!st.ok()) return st.error();
    st->bind_all(t.run_id, t.task, to_string(t.state), t.try_number, t.next_try_at);
    return done(*st, "update_task");
  }

  Result<std::vector<TaskInstance>> tasks_of(const std::string& run_id) override {
    auto st = prepare(
        "SELECT run_id, task, state, try_number, next_try_at FROM task_instances "
        "WHERE run_id = ? ORDER BY rowid");
    if (!st.ok()) return st.error();
    st->bind_all(run_id);
    std::vector<TaskInstance> out;
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) {
      TaskInstance t;
      t.run_id = st->text(0);
      t.task = st->text(1);
      auto state = task_state_from(st->text(2));
      if (!state) return corrupt("task state", st->text(2));
      t.state = *state;
      t.try_number = st->i32(3);
      t.next_try_at = st->opt_time(4);
      out.push_back(std::move(t));
    }
    if (rc != SQLITE_DONE) return err("tasks_of");
    return out;
  }

  // --- Tries -----------------------------------------------------------------------------

  Status insert_try(const TryRecord& t) override {
    auto st = prepare(
        "INSERT INTO tries(run_id, task, try_number, state, queue, host, worker_pid, pid, "
        "pid_start, started_at, ended_at, exit_code, signal, try_dir, log_path, command, error, "
        "facts) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!st.ok()) return st.error();
    st->bind_all(t.run_id, t.task, t.try_number, to_string(t.state), t.queue, t.host,
                 0 /* worker_pid: unused, kept for the shipped schema */, t.pid, t.pid_start,
                 t.started_at, t.ended_at, t.exit_code, t.signal, t.try_dir, t.log_path, t.command,
                 t.error, t.facts);
    return done(*st, "insert_try");
  }

  Status update_try(const TryRecord& t) override {
    auto st = prepare(
        "UPDATE tries SET state = ?, queue = ?, host = ?, worker_pid = ?, pid = ?, "
        "pid_start = ?, started_at = ?, ended_at = ?, exit_code = ?, signal = ?, try_dir = ?, "
        "log_path = ?, command = ?, error = ?, facts = ? "
        "WHERE run_id = ? AND task = ? AND try_number = ?");
    if (!st.ok()) return st.error();
    st->bind_all(to_string(t.state), t.queue, t.host,
                 0 /* worker_pid: unused, kept for the shipped schema */, t.pid, t.pid_start,
                 t.started_at, t.ended_at, t.exit_code, t.signal, t.try_dir, t.log_path, t.command,
                 t.error, t.facts, t.run_id, t.task, t.try_number);
    if (Status s = done(*st, "update_try"); !s.ok()) return s;
    if (sqlite3_changes(db_) == 0) {
      return make_error(
          "no such try: " + t.run_id + " " + t.task + " try " + std::to_string(t.try_number),
          Errc::NotFound);
    }
    return Status::Ok();
  }

  Status delete_armed_try(const std::string& run_id, const std::string& task,
                          int try_number) override {
    std::string name = run_id + " " + task + " try " + std::to_string(try_number);
    auto q = prepare("SELECT state FROM tries WHERE run_id = ? AND task = ? AND try_number = ?");
    if (!q.ok()) return q.error();
    q->bind_all(run_id, task, try_number);
    int rc = q->step();
    if (rc == SQLITE_DONE) return make_error("no such try: " + name, Errc::NotFound);
    if (rc != SQLITE_ROW) return err("delete_armed_try");
    std::string state = q->text(0);
    if (state != to_string(TryState::Armed))
      return make_error("try " + name + " is " + state + ", not armed", Errc::Invalid);
    // Its files, values and metrics go with it (ON DELETE CASCADE).
    auto st = prepare("DELETE FROM tries WHERE run_id = ? AND task = ? AND try_number = ?");
    if (!st.ok()) return st.error();
    st->bind_all(run_id, task, try_number);
    return done(*st, "delete_armed_try");
  }

  Result<std::vector<TryRecord>> tries_of(const std::string& run_id) override {
    // Tasks in the order the run created them, then by try.
    auto st = prepare(std::string("SELECT ") + kTryColumns +
                      " FROM tries LEFT JOIN task_instances ti"
                      " ON ti.run_id = tries.run_id AND ti.task = tries.task"
                      " WHERE tries.run_id = ? ORDER BY ti.rowid, tries.try_number");
    if (!st.ok()) return st.error();
    st->bind_all(run_id);
    return read_tries(*st, "tries_of");
  }

  Result<std::vector<TryRecord>> running_tries() override {
    auto st = prepare(std::string("SELECT ") + kTryColumns +
                      " FROM tries WHERE state = 'running' ORDER BY started_at, rowid");
    if (!st.ok()) return st.error();
    return read_tries(*st, "running_tries");
  }

  // --- Files, values, metrics --------------------------------------------------------------

  Status add_files(const std::string& run_id, const std::string& task, int try_number,
                   const std::string& kind, const std::vector<FileRecord>& files) override {
    if (kind != "input" && kind != "output") {
      return make_error("store: file kind must be \"input\" or \"output\", not \"" + kind + "\"",
                        Errc::Invalid);
    }
    return atomically([&]() -> Status {
      for (const FileRecord& f : files) {
        auto st = prepare(
            "INSERT INTO try_files(run_id, task, try_number, kind, path, sha256, size, mode, "
            "from_task) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
        if (!st.ok()) return st.error();
        st->bind_all(run_id, task, try_number, kind, f.path, f.sha256, static_cast<int64_t>(f.size),
                     f.mode, f.from_task);
        if (Status s = done(*st, "add_files"); !s.ok()) return s;
      }
      return Status::Ok();
    });
  }

  Result<std::vector<FileRecord>> files_of(const std::string& run_id, const std::string& task,
                                           int try_number, const std::string& kind) override {
    auto st = prepare(
        "SELECT path, sha256, size, mode, from_task FROM try_files "
        "WHERE run_id = ? AND task = ? AND try_number = ? AND kind = ? ORDER BY rowid");
    if (!st.ok()) return st.error();
    st->bind_all(run_id, task, try_number, kind);
    std::vector<FileRecord> out;
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) {
      FileRecord f;
      f.path = st->text(0);
      f.sha256 = st->text(1);
      f.size = static_cast<uint64_t>(st->i64(2));
      f.mode = st->i32(3);
      f.from_task = st->text(4);
      out.push_back(std::move(f));
    }
    if (rc != SQLITE_DONE) return err("files_of");
    return out;
  }

  Status set_value(const std::string& run_id, const std::string& task, int try_number,
                   const std::string& key, const json& value) override {
    auto st = prepare(
        "INSERT INTO try_values(run_id, task, try_number, key, value) VALUES(?, ?, ?, ?, ?) "
        "ON CONFLICT(run_id, task, try_number, key) DO UPDATE SET value = excluded.value");
    if (!st.ok()) return st.error();
    st->bind_all(run_id, task, try_number, key, value);
    return done(*st, "set_value");
  }

  Result<json> values_of(const std::string& run_id, const std::string& task,
                         int try_number) override {
    auto st = prepare(
        "SELECT key, value FROM try_values WHERE run_id = ? AND task = ? AND try_number = ? "
        "ORDER BY key");
    if (!st.ok()) return st.error();
    st->bind_all(run_id, task, try_number);
    json out = json::object();
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) {
      bool ok = true;
      json v = st->js(1, ok);
      if (!ok) return corrupt("value", st->text(1));
      out[st->text(0)] = std::move(v);
    }
    if (rc != SQLITE_DONE) return err("values_of");
    return out;
  }

  Result<std::vector<std::string>> referenced_hashes() override {
    auto st = prepare(
        "SELECT sha256 FROM try_files UNION SELECT sha256 FROM model_artifacts "
        "UNION SELECT value FROM try_values WHERE key = 'version'");
    if (!st.ok()) return st.error();
    std::set<std::string> out;
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) {
      std::string v = st->text(0);
      if (v.size() == 66 && v.front() == '"' && v.back() == '"') v = v.substr(1, 64);  // JSON
      bool hex = v.size() == 64 && std::all_of(v.begin(), v.end(), [](char c) {
                   return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                 });
      if (hex) out.insert(std::move(v));
    }
    if (rc != SQLITE_DONE) return err("referenced_hashes");
    return std::vector<std::string>(out.begin(), out.end());
  }

  Status add_metric(const std::string& run_id, const std::string& task, int try_number,
                    const std::string& name, double value, int64_t step) override {
    auto st = prepare(
        "INSERT INTO try_metrics(run_id, task, try_number, name, value, step) "
        "VALUES(?, ?, ?, ?, ?, ?)");
    if (!st.ok()) return st.error();
    st->bind_all(run_id, task, try_number, name, value, step);
    return done(*st, "add_metric");
  }

  Result<json> metrics_of(const std::string& run_id, const std::string& task,
                          int try_number) override {
    auto st = prepare(
        "SELECT name, value, step FROM try_metrics "
        "WHERE run_id = ? AND task = ? AND try_number = ? ORDER BY seq");
    if (!st.ok()) return st.error();
    st->bind_all(run_id, task, try_number);
    json out = json::array();
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) {
      json m = {{"name", st->text(0)}, {"value", nullptr}, {"step", st->i64(2)}};
      // NaN and infinities are stored as NULL by SQLite / have no JSON form: null.
      double v = st->dbl(1);
      if (std::isfinite(v)) m["value"] = v;
      out.push_back(std::move(m));
    }
    if (rc != SQLITE_DONE) return err("metrics_of");
    return out;
  }

  // --- Schedule state --------------------------------------------------------------------

  Result<std::optional<TimePoint>> last_scheduled(const std::string& dag) override {
    auto st = prepare("SELECT last_logical_date FROM schedule_state WHERE dag = ?");
    if (!st.ok()) return st.error();
    st->bind_all(dag);
    int rc = st->step();
    if (rc == SQLITE_DONE) return std::optional<TimePoint>();
    if (rc != SQLITE_ROW) return err("last_scheduled");
    return std::optional<TimePoint>(st->time(0));
  }

  Status set_last_scheduled(const std::string& dag, TimePoint logical_date) override {
    auto st = prepare(
        "INSERT INTO schedule_state(dag, last_logical_date) VALUES(?, ?) "
        "ON CONFLICT(dag) DO UPDATE SET last_logical_date = excluded.last_logical_date");
    if (!st.ok()) return st.error();
    st->bind_all(dag, logical_date);
    return done(*st, "set_last_scheduled");
  }

  // --- The model registry --------------------------------------------------------------

  Result<int64_t> add_model_version(const ModelVersion& v) override {
    int64_t version = 0;
    Status s = atomically([&]() -> Status {
      {
        auto st = prepare(
            "INSERT INTO models(name, last_version, created_at, updated_at) VALUES(?, 1, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET last_version = last_version + 1, "
            "updated_at = excluded.updated_at RETURNING last_version");
        if (!st.ok()) return st.error();
        st->bind_all(v.name, v.created_at, v.created_at);
        if (st->step() != SQLITE_ROW) return err("add_model_version");
        version = st->i64(0);
        if (Status d = done(*st, "add_model_version"); !d.ok()) return d;
      }
      auto st = prepare(
          "INSERT INTO model_versions(name, version, run_id, task, try_number, created_at, record) "
          "VALUES(?, ?, ?, ?, ?, ?, ?)");
      if (!st.ok()) return st.error();
      st->bind_all(v.name, version, v.run_id, v.task, v.try_number, v.created_at, v.record);
      if (Status d = done(*st, "add_model_version"); !d.ok()) return d;
      for (const FileRecord& f : v.artifacts) {
        auto a = prepare(
            "INSERT INTO model_artifacts(name, version, path, sha256, size, mode) "
            "VALUES(?, ?, ?, ?, ?, ?)");
        if (!a.ok()) return a.error();
        a->bind_all(v.name, version, f.path, f.sha256, static_cast<int64_t>(f.size), f.mode);
        if (Status d = done(*a, "add_model_version"); !d.ok()) return d;
      }
      return Status::Ok();
    });
    if (!s.ok()) return s.error();
    return version;
  }

  Result<std::optional<ModelVersion>> model_version(const std::string& name,
                                                    int64_t version) override {
    auto st = prepare(
        "SELECT name, version, run_id, task, try_number, created_at, record FROM model_versions "
        "WHERE name = ? AND version = ?");
    if (!st.ok()) return st.error();
    st->bind_all(name, version);
    int rc = st->step();
    if (rc == SQLITE_DONE) return std::optional<ModelVersion>();
    if (rc != SQLITE_ROW) return err("model_version");
    ModelVersion v = read_model_version(*st);
    bool ok = true;
    v.record = st->js(6, ok);
    if (!ok) return corrupt("model record", st->text(6));
    auto a = prepare(
        "SELECT path, sha256, size, mode FROM model_artifacts WHERE name = ? AND version = ? "
        "ORDER BY rowid");
    if (!a.ok()) return a.error();
    a->bind_all(name, version);
    while ((rc = a->step()) == SQLITE_ROW)
      v.artifacts.push_back(
          FileRecord{a->text(0), a->text(1), static_cast<uint64_t>(a->i64(2)), a->i32(3), ""});
    if (rc != SQLITE_DONE) return err("model_version");
    return std::optional<ModelVersion>(std::move(v));
  }

  Result<std::vector<ModelVersion>> model_versions(const std::string& name, int limit) override {
    auto st = prepare(
        "SELECT name, version, run_id, task, try_number, created_at FROM model_versions "
        "WHERE name = ? ORDER BY version DESC LIMIT ?");
    if (!st.ok()) return st.error();
    st->bind_all(name, limit);
    std::vector<ModelVersion> out;
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) out.push_back(read_model_version(*st));
    if (rc != SQLITE_DONE) return err("model_versions");
    return out;
  }

  Result<std::vector<ModelSummary>> models() override {
    auto st = prepare(
        "SELECT name, last_version, created_at, "
        "MAX(updated_at, COALESCE((SELECT MAX(at) FROM model_alias_events e "
        "WHERE e.name = models.name), 0)), "
        "(SELECT COUNT(*) FROM model_versions v WHERE v.name = models.name) "
        "FROM models ORDER BY name");
    if (!st.ok()) return st.error();
    std::vector<ModelSummary> out;
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) {
      ModelSummary m;
      m.name = st->text(0);
      m.latest = st->i64(1);
      m.created_at = st->time(2);
      m.updated_at = st->time(3);
      m.versions = st->i64(4);
      out.push_back(std::move(m));
    }
    if (rc != SQLITE_DONE) return err("models");
    for (ModelSummary& m : out) {
      auto a = model_aliases(m.name);
      if (!a) return a.error();
      m.aliases = std::move(*a);
    }
    return out;
  }

  Result<std::map<std::string, int64_t>> model_aliases(const std::string& name) override {
    auto st = prepare(
        "SELECT alias, to_version FROM model_alias_events e WHERE name = ? AND seq = "
        "(SELECT MAX(seq) FROM model_alias_events l WHERE l.name = e.name AND l.alias = e.alias)");
    if (!st.ok()) return st.error();
    st->bind_all(name);
    std::map<std::string, int64_t> out;
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) out[st->text(0)] = st->i64(1);
    if (rc != SQLITE_DONE) return err("model_aliases");
    return out;
  }

  Result<int64_t> move_alias(const AliasEvent& e) override {
    int64_t seq = 0;
    Status s = atomically([&]() -> Status {
      if (Status n = need_version(e.name, e.to, "move_alias"); !n.ok()) return n;
      {
        auto st = prepare(
            "SELECT to_version FROM model_alias_events WHERE name = ? AND alias = ? "
            "ORDER BY seq DESC LIMIT 1");
        if (!st.ok()) return st.error();
        st->bind_all(e.name, e.alias);
        int rc = st->step();
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return err("move_alias");
        std::optional<int64_t> now;
        if (rc == SQLITE_ROW) now = st->i64(0);
        if (now != e.from)
          return make_error("alias " + e.alias + " of model '" + e.name + "' " +
                                (now ? "names version " + std::to_string(*now) : "is unset") +
                                " now",
                            Errc::Conflict);
      }
      if (Status u = touch_model(e.name, e.at, "move_alias"); !u.ok()) return u;
      auto st = prepare(
          "INSERT INTO model_alias_events(name, alias, from_version, to_version, by, reason, "
          "run_id, forced, at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq");
      if (!st.ok()) return st.error();
      st->bind_all(e.name, e.alias, e.from, e.to, e.by, e.reason, e.run_id, e.forced, e.at);
      if (st->step() != SQLITE_ROW) return err("move_alias");
      seq = st->i64(0);
      return done(*st, "move_alias");
    });
    if (!s.ok()) return s.error();
    return seq;
  }

  Status add_model_validation(const ModelValidation& v) override {
    return atomically([&]() -> Status {
      if (Status n = need_version(v.name, v.version, "add_model_validation"); !n.ok()) return n;
      auto st = prepare(
          "INSERT INTO model_validations(name, version, run_id, task, try_number, passed, "
          "report, at) VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
      if (!st.ok()) return st.error();
      st->bind_all(v.name, v.version, v.run_id, v.task, v.try_number, v.passed, v.report.dump(),
                   v.at);
      return done(*st, "add_model_validation");
    });
  }

  Result<std::vector<ModelValidation>> model_validations(const std::string& name,
                                                         int64_t version) override {
    auto st = prepare(
        "SELECT run_id, task, try_number, passed, report, at FROM model_validations "
        "WHERE name = ? AND version = ? ORDER BY seq");
    if (!st.ok()) return st.error();
    st->bind_all(name, version);
    std::vector<ModelValidation> out;
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) {
      ModelValidation v;
      v.name = name;
      v.version = version;
      v.run_id = st->text(0);
      v.task = st->text(1);
      v.try_number = static_cast<int>(st->i64(2));
      v.passed = st->i64(3) != 0;
      v.report = json::parse(st->text(4), nullptr, false);
      v.at = st->time(5);
      out.push_back(std::move(v));
    }
    if (rc != SQLITE_DONE) return err("model_validations");
    return out;
  }

  Result<std::vector<AliasEvent>> alias_events(const std::string& name) override {
    auto st = prepare(
        "SELECT seq, name, alias, from_version, to_version, by, reason, run_id, forced, at "
        "FROM model_alias_events WHERE name = ? ORDER BY seq");
    if (!st.ok()) return st.error();
    st->bind_all(name);
    std::vector<AliasEvent> out;
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) {
      AliasEvent e;
      e.seq = st->i64(0);
      e.name = st->text(1);
      e.alias = st->text(2);
      if (!st->is_null(3)) e.from = st->i64(3);
      e.to = st->i64(4);
      e.by = st->text(5);
      e.reason = st->text(6);
      e.run_id = st->text(7);
      e.forced = st->i64(8) != 0;
      e.at = st->time(9);
      out.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE) return err("alias_events");
    return out;
  }

  Result<std::vector<int64_t>> add_tag_events(const std::vector<TagEvent>& events) override {
    std::vector<int64_t> seqs;
    Status s = atomically([&]() -> Status {
      for (const TagEvent& e : events) {
        if (Status n = need_version(e.name, e.version, "add_tag_events"); !n.ok()) return n;
        if (Status u = touch_model(e.name, e.at, "add_tag_events"); !u.ok()) return u;
        auto st = prepare(
            "INSERT INTO model_tag_events(name, version, key, value, by, at) "
            "VALUES(?, ?, ?, ?, ?, ?) RETURNING seq");
        if (!st.ok()) return st.error();
        st->bind_all(e.name, e.version, e.key, e.value, e.by, e.at);
        if (st->step() != SQLITE_ROW) return err("add_tag_events");
        seqs.push_back(st->i64(0));
        if (Status d = done(*st, "add_tag_events"); !d.ok()) return d;
      }
      return Status::Ok();
    });
    if (!s.ok()) return s.error();
    return seqs;
  }

  Result<std::vector<TagEvent>> tag_events(const std::string& name, int64_t version) override {
    auto st = prepare(
        "SELECT seq, key, value, by, at FROM model_tag_events WHERE name = ? AND version = ? "
        "ORDER BY seq");
    if (!st.ok()) return st.error();
    st->bind_all(name, version);
    std::vector<TagEvent> out;
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) {
      TagEvent e;
      e.seq = st->i64(0);
      e.name = name;
      e.version = version;
      e.key = st->text(1);
      if (!st->is_null(2)) e.value = st->text(2);
      e.by = st->text(3);
      e.at = st->time(4);
      out.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE) return err("tag_events");
    return out;
  }

  Result<std::map<int64_t, std::map<std::string, std::string>>> model_tags(
      const std::string& name) override {
    auto st = prepare(
        "SELECT version, key, value FROM model_tag_events e WHERE name = ? AND seq = "
        "(SELECT MAX(seq) FROM model_tag_events l WHERE l.name = e.name AND "
        "l.version = e.version AND l.key = e.key) AND value IS NOT NULL");
    if (!st.ok()) return st.error();
    st->bind_all(name);
    std::map<int64_t, std::map<std::string, std::string>> out;
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) out[st->i64(0)][st->text(1)] = st->text(2);
    if (rc != SQLITE_DONE) return err("model_tags");
    return out;
  }

  Result<int64_t> add_description_event(const DescriptionEvent& e) override {
    int64_t seq = 0;
    Status s = atomically([&]() -> Status {
      if (Status n = need_version(e.name, e.version, "add_description_event"); !n.ok()) return n;
      if (Status u = touch_model(e.name, e.at, "add_description_event"); !u.ok()) return u;
      auto st = prepare(
          "INSERT INTO model_description_events(name, version, description, by, at) "
          "VALUES(?, ?, ?, ?, ?) RETURNING seq");
      if (!st.ok()) return st.error();
      st->bind_all(e.name, e.version, e.description, e.by, e.at);
      if (st->step() != SQLITE_ROW) return err("add_description_event");
      seq = st->i64(0);
      return done(*st, "add_description_event");
    });
    if (!s.ok()) return s.error();
    return seq;
  }

  Result<std::vector<DescriptionEvent>> description_events(const std::string& name,
                                                           int64_t version) override {
    auto st = prepare(
        "SELECT seq, description, by, at FROM model_description_events "
        "WHERE name = ? AND version = ? ORDER BY seq");
    if (!st.ok()) return st.error();
    st->bind_all(name, version);
    std::vector<DescriptionEvent> out;
    int rc;
    while ((rc = st->step()) == SQLITE_ROW) {
      DescriptionEvent e;
      e.seq = st->i64(0);
      e.name = name;
      e.version = version;
      e.description = st->text(1);
      e.by = st->text(2);
      e.at = st->time(3);
      out.push_back(std::move(e));
    }
    if (rc != SQLITE_DONE) return err("description_events");
    return out;
  }

  Result<bool> paused(const std::string& dag) override {
    auto st = prepare("SELECT paused FROM dag_state WHERE dag = ?");
    if (!st.ok()) return st.error();
    st->bind_all(dag);
    int rc = st->step();
    if (rc == SQLITE_DONE) return false;
    if (rc != SQLITE_ROW) return err("paused");
    return st->i64(0) != 0;
  }

  Status set_paused(const std::string& dag, bool paused) override {
    auto st = prepare(
        "INSERT INTO dag_state(dag, paused) VALUES(?, ?) "
        "ON CONFLICT(dag) DO UPDATE SET paused = excluded.paused");
    if (!st.ok()) return st.error();
    st->bind_all(dag, paused);
    return done(*st, "set_paused");
  }

 private:
  // The error of the last failed call on this connection, with SQLite's message.
  Error err(const std::string& what) const {
    int code = sqlite3_errcode(db_);
    Errc c = (code & 0xff) == SQLITE_CONSTRAINT ? Errc::Conflict : Errc::None;
    return make_error("sqlite: " + what + ": " + sqlite3_errmsg(db_), c);
  }

  // Errc::NotFound "no version V of model 'N'" unless the registry has that version.
  Status need_version(const std::string& name, int64_t version, const char* what) {
    auto st = prepare("SELECT 1 FROM model_versions WHERE name = ? AND version = ?");
    if (!st.ok()) return st.error();
    st->bind_all(name, version);
    int rc = st->step();
    if (rc == SQLITE_DONE)
      return make_error("no version " + std::to_string(version) + " of model '" + name + "'",
                        Errc::NotFound);
    if (rc != SQLITE_ROW) return err(what);
    return Status::Ok();
  }

  // A change to the model at `at`: its last change (ModelSummary::updated_at) moves there.
  Status touch_model(const std::string& name, TimePoint at, const char* what) {
    auto st = prepare("UPDATE models SET updated_at = MAX(updated_at, ?) WHERE name = ?");
    if (!st.ok()) return st.error();
    st->bind_all(at, name);
    return done(*st, what);
  }

  // The columns name .. created_at of a model_versions row (record and artifacts not read).
  static ModelVersion read_model_version(const Stmt& st) {
    ModelVersion v;
    v.name = st.text(0);
    v.version = st.i64(1);
    v.run_id = st.text(2);
    v.task = st.text(3);
    v.try_number = st.i32(4);
    v.created_at = st.time(5);
    return v;
  }

  static Error corrupt(const std::string& what, const std::string& text) {
    return make_error("store: unreadable " + what + " in the database: \"" + text + "\"");
  }

  // A cached statement for `sql`, reset when the returned Stmt goes away.
  Result<Stmt> prepare(const std::string& sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* s = nullptr;
      int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()) + 1,
                                  SQLITE_PREPARE_PERSISTENT, &s, nullptr);
      if (rc != SQLITE_OK) {
        sqlite3_finalize(s);
        return err("prepare");
      }
      it = cache_.emplace(sql, s).first;
    }
    return Stmt(it->second);
  }

  // Steps a write statement to its end.
  Status done(Stmt& st, const std::string& what) {
    int rc = st.step();
    while (rc == SQLITE_ROW) rc = st.step();
    if (rc != SQLITE_DONE) return err(what);
    return Status::Ok();
  }

  Status exec_raw(const char* sql) {
    char* msg = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
    if (rc != SQLITE_OK) {
      std::string m = msg != nullptr ? msg : sqlite3_errstr(rc);
      sqlite3_free(msg);
      return make_error("sqlite: " + m);
    }
    return Status::Ok();
  }

  // One statement of fixed text (BEGIN, COMMIT, SAVEPOINT ...), prepared once and cached:
  // these run several times per scheduler step, where parsing them each time shows.
  Status exec_cached(const char* sql) {
    auto st = prepare(sql);
    if (!st.ok()) return st.error();
    return done(*st, sql);
  }

  // Cleanup on an error path, where the first error is the one to report.
  void best_effort(const char* sql) { sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }

  // Runs a multi-statement write as one unit: its own transaction outside begin(), a
  // savepoint inside one (so a failed call leaves the caller's transaction as it was).
  template <class F>
  Status atomically(F&& fn) {
    if (in_tx_) {
      if (Status s = exec_cached("SAVEPOINT store_call"); !s.ok()) return s;
      Status s = fn();
      if (!s.ok()) best_effort("ROLLBACK TO store_call");
      best_effort("RELEASE store_call");
      return s;
    }
    if (Status s = exec_cached("BEGIN IMMEDIATE"); !s.ok()) return s;
    Status s = fn();
    if (!s.ok()) {
      best_effort("ROLLBACK");
      return s;
    }
    if (Status c = exec_cached("COMMIT"); !c.ok()) {
      best_effort("ROLLBACK");
      return c;
    }
    return Status::Ok();
  }

  Status insert_task(const TaskInstance& t) {
    auto st = prepare(
        "INSERT INTO task_instances(run_id, task, state, try_number, next_try_at) "
        "VALUES(?, ?, ?, ?, ?)");
    if (!st.ok()) return st.error();
    st->bind_all(t.run_id, t.task, to_string(t.state), t.try_number, t.next_try_at);
    return done(*st, "insert_run");
  }

  Result<bool> run_exists(const std::string& run_id, const std::string& what) {
    auto st = prepare("SELECT 1 FROM runs WHERE id = ?");
    if (!st.ok()) return st.error();
    st->bind_all(run_id);
    int rc = st->step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return err(what);
    return rc == SQLITE_ROW;
  }

  Result<RunRecord> read_run(const Stmt& st) {
    RunRecord r;
    r.id = st.text(0);
    r.dag = st.text(1);
    r.seq = st.i64(2);
    r.dag_hash = st.text(3);
    auto state = run_state_from(st.text(4));
    if (!state) return corrupt("run state", st.text(4));
    r.state = *state;
    bool ok = true;
    r.params = st.js(5, ok);
    if (!ok) return corrupt("params", st.text(5));
    r.trigger_kind = st.text(6);
    r.trigger_user = st.text(7);
    r.logical_date = st.opt_time(8);
    r.interval_start = st.opt_time(9);
    r.interval_end = st.opt_time(10);
    r.git_commit = st.text(11);
    r.git_dirty = st.i64(12) != 0;
    r.created_at = st.time(13);
    r.started_at = st.opt_time(14);
    r.ended_at = st.opt_time(15);
    r.error = st.text(16);
    r.owner = st.text(17);
    r.lease_until = st.opt_time(18);
    r.recoveries = st.i32(19);
    r.models = st.js(20, ok);
    if (!ok) return corrupt("models", st.text(20));
    return r;
  }

  Result<std::vector<RunRecord>> read_runs(Stmt& st, const std::string& what) {
    std::vector<RunRecord> out;
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
      auto r = read_run(st);
      if (!r.ok()) return r.error();
      out.push_back(std::move(*r));
    }
    if (rc != SQLITE_DONE) return err(what);
    return out;
  }

  Result<std::vector<TryRecord>> read_tries(Stmt& st, const std::string& what) {
    std::vector<TryRecord> out;
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
      TryRecord t;
      t.run_id = st.text(0);
      t.task = st.text(1);
      t.try_number = st.i32(2);
      auto state = try_state_from(st.text(3));
      if (!state) return corrupt("try state", st.text(3));
      t.state = *state;
      t.queue = st.text(4);
      t.host = st.text(5);
      t.pid = st.i32(7);
      t.pid_start = st.i64(8);
      t.started_at = st.time(9);
      t.ended_at = st.opt_time(10);
      t.exit_code = st.opt_int(11);
      t.signal = st.opt_int(12);
      t.try_dir = st.text(13);
      t.log_path = st.text(14);
      bool ok = true;
      t.command = st.js(15, ok);
      if (!ok) return corrupt("command", st.text(15));
      t.error = st.text(16);
      t.facts = st.js(17, ok);
      if (!ok) return corrupt("facts", st.text(17));
      out.push_back(std::move(t));
    }
    if (rc != SQLITE_DONE) return err(what);
    return out;
  }

  Result<int> read_version() {
    auto st = prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!st.ok()) return st.error();
    if (st->step() != SQLITE_ROW) return err("schema_version");
    return st->i32(0);
  }

  // Applies pending migrations, each in its own transaction. Another process may migrate
  // at the same time: the version is re-read under the write lock.
  Status migrate() {
    if (Status s = exec_raw("CREATE TABLE IF NOT EXISTS schema_migrations("
                            "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
        !s.ok()) {
      return s;
    }
    auto v = read_version();
    if (!v.ok()) return v.error();
    if (*v > kSchemaVersion) {
      return make_error("store: the database has schema version " + std::to_string(*v) +
                        ", newer than this drover understands (" + std::to_string(kSchemaVersion) +
                        ")");
    }
    for (int next = *v + 1; next <= kSchemaVersion; ++next) {
      if (Status s = exec_cached("BEGIN IMMEDIATE"); !s.ok()) return s;
      auto cur = read_version();
      if (!cur.ok()) {
        best_effort("ROLLBACK");
        return cur.error();
      }
      if (*cur >= next) {
        best_effort("ROLLBACK");
        continue;
      }
      Status s = exec_raw(kMigrations[next - 1]);
      if (s.ok()) {
        auto st = prepare("INSERT INTO schema_migrations(version, applied_at) VALUES(?, ?)");
        if (!st.ok()) {
          s = st.error();
        } else {
          st->bind_all(next, format_iso_utc(now()));
          s = done(*st, "schema_migrations");
        }
      }
      if (s.ok()) s = exec_cached("COMMIT");
      if (!s.ok()) {
        best_effort("ROLLBACK");
        return make_error("store: migration " + std::to_string(next) + " failed: " + s.message());
      }
    }
    return Status::Ok();
  }

  sqlite3* db_;
  std::filesystem::path path_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
  bool in_tx_ = false;
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::filesystem::path& path) {
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return make_error("store: cannot create " + path.parent_path().string() + ": " +
                        ec.message());
    }
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return make_error("store: cannot open " + path.string() + ": " + msg);
  }
  auto store = std::make_unique<SqliteStore>(db, path);
  if (Status s = store->init(); !s.ok()) {
    return make_error("store: " + path.string() + ": " + s.message(), s.error().code);
  }
  return std::unique_ptr<Store>(std::move(store));
}

Result<std::unique_ptr<Store>> open_store(std::string_view url) {
  if (url.rfind("postgres://", 0) == 0 || url.rfind("postgresql://", 0) == 0)
    return make_error("store " + std::string(url) + ": PostgreSQL is not supported by this build",
                      Errc::Invalid);
  if (url.rfind("sqlite:", 0) == 0) url.remove_prefix(7);
  if (url.empty()) return make_error("store: empty sqlite path", Errc::Invalid);
  return open_sqlite_store(std::filesystem::path(std::string(url)));
}

}  // namespace drover
