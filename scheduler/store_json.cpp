// Run records as JSON (see scheduler/store_json.hpp).
#include "scheduler/store_json.hpp"

#include "common/time.hpp"

namespace drover {
namespace {

json iso_or_null(const std::optional<TimePoint>& t) {
  return t ? json(format_iso_utc(*t)) : json(nullptr);
}

template <class T>
json opt_or_null(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json files_json(const std::vector<FileRecord>& files, bool with_from) {
  json out = json::array();
  for (const FileRecord& f : files) {
    // mode: a file's permission bits, or 0120777 (S_IFLNK | 0777) for a symbolic link, whose
    // blob is its text.
    json j = {{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}, {"mode", f.mode}};
    if (with_from) j["from_task"] = f.from_task;
    out.push_back(std::move(j));
  }
  return out;
}

Result<json> try_json(Store& store, const TryRecord& t) {
  auto inputs = store.files_of(t.run_id, t.task, t.try_number, "input");
  if (!inputs.ok()) return inputs.error();
  auto outputs = store.files_of(t.run_id, t.task, t.try_number, "output");
  if (!outputs.ok()) return outputs.error();
  auto values = store.values_of(t.run_id, t.task, t.try_number);
  if (!values.ok()) return values.error();
  auto metrics = store.metrics_of(t.run_id, t.task, t.try_number);
  if (!metrics.ok()) return metrics.error();

  json duration = nullptr;
  if (t.ended_at) {
    duration = std::chrono::duration<double>(*t.ended_at - t.started_at).count();
  }
  return json{
      {"task", t.task},
      {"try", t.try_number},
      {"state", to_string(t.state)},
      {"queue", t.queue},
      {"host", t.host},
      {"exit_code", opt_or_null(t.exit_code)},
      {"signal", opt_or_null(t.signal)},
      {"started_at", format_iso_utc(t.started_at)},
      {"ended_at", iso_or_null(t.ended_at)},
      {"duration_s", duration},
      {"log", t.log_path},
      {"command", t.command},
      {"error", t.error.empty() ? json(nullptr) : json(t.error)},
      {"facts", t.facts},
      {"inputs", files_json(*inputs, /*with_from=*/true)},
      {"outputs", files_json(*outputs, /*with_from=*/false)},
      {"values", std::move(*values)},
      {"metrics", std::move(*metrics)},
  };
}

}  // namespace

json run_summary_json(const RunRecord& r) {
  return json{
      {"id", r.id},
      {"dag", r.dag},
      {"seq", r.seq},
      {"state", to_string(r.state)},
      {"trigger", {{"kind", r.trigger_kind}, {"user", r.trigger_user}}},
      {"logical_date", iso_or_null(r.logical_date)},
      {"created_at", format_iso_utc(r.created_at)},
      {"started_at", iso_or_null(r.started_at)},
      {"ended_at", iso_or_null(r.ended_at)},
  };
}

Result<json> run_record_json(Store& store, const std::string& run_id) {
  auto run = store.get_run(run_id);
  if (!run.ok()) return run.error();
  if (!*run) return make_error("no such run: " + run_id, Errc::NotFound);
  const RunRecord& r = **run;

  auto tasks = store.tasks_of(run_id);
  if (!tasks.ok()) return tasks.error();
  auto tries = store.tries_of(run_id);
  if (!tries.ok()) return tries.error();

  json out = run_summary_json(r);
  // Why the run failed when no try's error says (recovery gave up on it, its DAG version
  // could not be loaded); null otherwise.
  out["error"] = r.error.empty() ? json(nullptr) : json(r.error);
  out["params"] = r.params;
  out["models"] = r.models;
  out["dag_hash"] = r.dag_hash;
  out["git"] = {{"commit", r.git_commit.empty() ? json(nullptr) : json(r.git_commit)},
                {"dirty", r.git_dirty}};
  out["data_interval"] = {{"start", iso_or_null(r.interval_start)},
                          {"end", iso_or_null(r.interval_end)}};

  json task_states = json::object();
  for (const TaskInstance& t : *tasks) task_states[t.task] = to_string(t.state);
  out["task_states"] = std::move(task_states);

  json entries = json::array();
  for (const TryRecord& t : *tries) {
    auto j = try_json(store, t);
    if (!j.ok()) return j.error();
    entries.push_back(std::move(*j));
  }
  out["tasks"] = std::move(entries);
  return out;
}

Result<json> run_listing_json(Store& store, const RunFilter& filter) {
  auto runs = store.list_runs(filter);
  if (!runs) return runs.error();
  json out = {{"runs", json::array()}};
  for (auto& r : *runs) out["runs"].push_back(run_summary_json(r));
  return out;
}

}  // namespace drover
