// FakeStore: an in-memory Store for tests (the Engine suite, and the store contract suite
// `Backends/StoreTest`, param "memory", which it passes unchanged). It keeps every record
// of scheduler/store.hpp with SQLite's semantics — transactions that really roll back,
// statement-level atomicity inside them, constraint errors with Errc::Conflict, paging by
// run id — and can be told to fail, so a test can check what the Engine does when a write
// or a commit fails. FakeStores made on one Database are connections to one database: a
// connection's open transaction is invisible to the others until it commits, and while
// it is open their writes fail ("database is locked"), as SQLite's BEGIN IMMEDIATE has
// them wait and then fail. One thread at a time per object; the Database is locked.
#pragma once

#include <memory>
#include <string>

#include "scheduler/store.hpp"

namespace drover {

class FakeStore final : public Store {
 public:
  // The records every connection shares (defined in fake_store.cpp).
  struct Database;

  FakeStore();                                       // a connection to a fresh database
  explicit FakeStore(std::shared_ptr<Database> db);  // another connection to `db`
  ~FakeStore() override;                             // rolls back an open transaction
  FakeStore(const FakeStore&) = delete;
  FakeStore& operator=(const FakeStore&) = delete;

  // The database this connection works on (to open another connection to it).
  std::shared_ptr<Database> database() const { return db_; }

  // --- Faults ---------------------------------------------------------------------------
  // The next `n` commit() calls fail with "fake: commit failed (fail_next_commit)" and roll
  // their transaction back: nothing of it is kept.
  void fail_next_commit(int n = 1) { fail_commits_ = n; }
  // While on, every mutating call (inside a transaction or not) fails with "fake: write
  // failed (fail_writes)" and changes nothing; begin(), commit() and reads still work.
  void fail_writes(bool on) { fail_writes_ = on; }

  // --- What happened (for assertions) -----------------------------------------------------
  int commits() const { return commits_; }                // commit() calls that succeeded
  int failed_commits() const { return failed_commits_; }  // commit() calls that failed
  int rollbacks() const { return rollbacks_; }            // transactions rolled back
  bool in_transaction() const { return tx_ != nullptr; }

  // --- Store ------------------------------------------------------------------------------
  int schema_version() override;
  Status begin() override;
  Status commit() override;
  void rollback() override;
  Status put_dag_version(const std::string& hash, const std::string& dag, const std::string& path,
                         const std::string& content) override;
  Result<std::optional<std::string>> dag_version_content(const std::string& hash) override;
  Result<int64_t> next_run_seq(const std::string& dag) override;
  Status insert_run(const RunRecord& run, const std::vector<TaskInstance>& tasks) override;
  Status update_run(const RunRecord& run) override;
  Result<std::optional<RunRecord>> get_run(const std::string& id) override;
  Result<std::vector<RunRecord>> list_runs(const RunFilter& f) override;
  Result<std::vector<RunRecord>> unfinished_runs() override;
  Result<bool> claim_run(const std::string& run_id, const std::string& owner, TimePoint lease_until,
                         TimePoint now) override;
  Status release_run(const std::string& run_id, const std::string& owner) override;
  Result<int> count_recovery(const std::string& run_id) override;
  Status update_task(const TaskInstance& t) override;
  Result<std::vector<TaskInstance>> tasks_of(const std::string& run_id) override;
  Status insert_try(const TryRecord& t) override;
  Status update_try(const TryRecord& t) override;
  Status delete_armed_try(const std::string& run_id, const std::string& task,
                          int try_number) override;
  Result<std::vector<TryRecord>> tries_of(const std::string& run_id) override;
  Result<std::vector<TryRecord>> running_tries() override;
  Status add_files(const std::string& run_id, const std::string& task, int try_number,
                   const std::string& kind, const std::vector<FileRecord>& files) override;
  Result<std::vector<FileRecord>> files_of(const std::string& run_id, const std::string& task,
                                           int try_number, const std::string& kind) override;
  Status set_value(const std::string& run_id, const std::string& task, int try_number,
                   const std::string& key, const json& value) override;
  Result<json> values_of(const std::string& run_id, const std::string& task,
                         int try_number) override;
  Status add_metric(const std::string& run_id, const std::string& task, int try_number,
                    const std::string& name, double value, int64_t step) override;
  Result<json> metrics_of(const std::string& run_id, const std::string& task,
                          int try_number) override;
  Result<std::vector<std::string>> referenced_hashes() override;
  Result<std::optional<TimePoint>> last_scheduled(const std::string& dag) override;
  Status set_last_scheduled(const std::string& dag, TimePoint logical_date) override;
  Result<int64_t> add_model_version(const ModelVersion& v) override;
  Result<std::optional<ModelVersion>> model_version(const std::string& name,
                                                    int64_t version) override;
  Result<std::vector<ModelVersion>> model_versions(const std::string& name, int limit) override;
  Result<std::vector<ModelSummary>> models() override;
  Result<std::map<std::string, int64_t>> model_aliases(const std::string& name) override;
  Result<int64_t> move_alias(const AliasEvent& e) override;
  Result<std::vector<AliasEvent>> alias_events(const std::string& name) override;
  Status add_model_validation(const ModelValidation& v) override;
  Result<std::vector<ModelValidation>> model_validations(const std::string& name,
                                                         int64_t version) override;
  Result<std::vector<int64_t>> add_tag_events(const std::vector<TagEvent>& events) override;
  Result<std::vector<TagEvent>> tag_events(const std::string& name, int64_t version) override;
  Result<std::map<int64_t, std::map<std::string, std::string>>> model_tags(
      const std::string& name) override;
  Result<int64_t> add_description_event(const DescriptionEvent& e) override;
  Result<std::vector<DescriptionEvent>> description_events(const std::string& name,
                                                           int64_t version) override;
  Result<bool> paused(const std::string& dag) override;
  Status set_paused(const std::string& dag, bool paused) override;

 private:
  struct Tables;
  // Runs `fn` on the tables this connection writes to (its transaction's, or the committed
  // ones when none is open); an error from `fn` must leave them unchanged.
  template <class F>
  Status write(const char* what, F&& fn);
  // Runs `fn` on the tables this connection reads (its transaction's, or the committed).
  template <class F>
  auto read(F&& fn);

  std::shared_ptr<Database> db_;
  std::unique_ptr<Tables> tx_;  // the open transaction's copy of the tables
  int fail_commits_ = 0;
  bool fail_writes_ = false;
  int commits_ = 0, failed_commits_ = 0, rollbacks_ = 0;
};

}  // namespace drover
