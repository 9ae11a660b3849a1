#include "scheduler/decide.hpp"

#include "common/time.hpp"

namespace drover::core {

namespace {

Error bad(const std::string& what) {
  return make_error("result.json is malformed: " + what, Errc::Invalid);
}

}  // namespace

Result<TryResult> parse_try_result(const json& j) {
  if (j.is_null()) return make_error("no result", Errc::Invalid);
  if (!j.is_object()) return bad("not an object");
  TryResult r;
  if (auto it = j.find("exit_code"); it != j.end()) {
    if (!it->is_number_integer()) return bad("exit_code is not an integer");
    r.exit_code = it->get<int>();
  }
  if (auto it = j.find("error"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return bad("error is not a string");
    r.error = it->get<std::string>();
  }
  if (auto it = j.find("outputs"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return bad("outputs is not a list");
    for (auto& f : *it) {
      if (!f.is_object() || !f.value("path", json()).is_string() ||
          !f.value("sha256", json()).is_string() || !f.value("size", json()).is_number_integer() ||
          f["size"].get<int64_t>() < 0)
        return bad("an output is not {path, sha256, size, mode}");
      json mode = f.value("mode", json(0644));
      if (!mode.is_number_integer()) return bad("an output's mode is not an integer");
      r.outputs.push_back(FileRecord{f["path"].get<std::string>(), f["sha256"].get<std::string>(),
                                     f["size"].get<uint64_t>(), mode.get<int>(), ""});
    }
  }
  if (auto it = j.find("values"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return bad("values is not an object");
    r.values = *it;
  }
  if (auto it = j.find("metrics"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return bad("metrics is not a list");
    for (auto& m : *it) {
      if (!m.is_object() || !m.value("name", json()).is_string() ||
          !m.value("value", json()).is_number())
        return bad("a metric is not {name, value, step}");
      json step = m.value("step", json(-1));
      if (!step.is_number_integer()) return bad("a metric's step is not an integer");
      r.metrics.push_back(
          TryMetric{m["name"].get<std::string>(), m["value"].get<double>(), step.get<int64_t>()});
    }
  }
  if (auto it = j.find("alerts"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return bad("alerts is not a list");
    for (auto& a : *it) {
      if (!a.is_object() || !a.value("kind", json()).is_string())
        return bad("an alert is not {kind, message, details}");
      json message = a.value("message", json(""));
      json details = a.value("details", json::object());
      if (!message.is_string()) return bad("an alert's message is not a string");
      r.alerts.push_back(RaisedAlert{a["kind"].get<std::string>(), message.get<std::string>(),
                                     details.is_object() ? details : json{{"value", details}}});
    }
  }
  if (auto it = j.find("model"); it != j.end() && !it->is_null()) {
    const json& m = *it;
    if (!m.is_object() || !m.value("name", json()).is_string() ||
        !m.value("artifacts", json()).is_array() || !m.value("metrics", json()).is_object() ||
        !m.value("environment", json::object()).is_object())
      return bad("model is not {name, artifacts, metrics, environment}");
    for (auto& a : m["artifacts"])
      if (!a.is_string()) return bad("a model artifact is not a path");
    for (auto& [k, v] : m["metrics"].items())
      if (!v.is_number()) return bad("model metric '" + k + "' is not a number");
    r.model = m;
  }
  return r;
}

Result<ModelVersion> model_version_of(const TryResult& result, const TryRecord& rec,
                                      const RunRecord& run, const std::vector<ModelInput>& inputs,
                                      TimePoint now) {
  const json& m = result.model;
  if (!m.is_object())
    return make_error("the train try published no model version to register", Errc::Invalid);
  ModelVersion v;
  v.name = m["name"].get<std::string>();
  v.run_id = rec.run_id;
  v.task = rec.task;
  v.try_number = rec.try_number;
  v.created_at = now;
  for (auto& a : m["artifacts"]) {
    std::string path = a.get<std::string>();
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    size_t before = v.artifacts.size();
    for (const FileRecord& f : result.outputs)
      if (f.path == path || f.path.rfind(path + "/", 0) == 0) v.artifacts.push_back(f);
    if (v.artifacts.size() == before)
      return make_error("artifact '" + path + "' is not among the try's outputs", Errc::Invalid);
  }
  json step_metrics = json::array();
  for (const TryMetric& t : result.metrics)
    if (t.step >= 0)
      step_metrics.push_back({{"name", t.name}, {"value", t.value}, {"step", t.step}});
  json in = json::array();
  for (const ModelInput& i : inputs) {
    json f = {{"path", i.file.path},
              {"sha256", i.file.sha256},
              {"size", i.file.size},
              {"from_task", i.file.from_task}};
    if (!i.dataset.empty()) {
      f["dataset"] = i.dataset;
      f["dataset_version"] = i.dataset_version;
    }
    in.push_back(std::move(f));
  }
  v.record = {{"params", run.params},
              {"metrics", m["metrics"]},
              {"step_metrics", std::move(step_metrics)},
              {"inputs", std::move(in)},
              {"dag", run.dag},
              {"dag_hash", run.dag_hash},
              {"git", {{"commit", run.git_commit}, {"dirty", run.git_dirty}}},
              {"environment", m.value("environment", json::object())},
              {"description", m.value("description", std::string())}};
  return v;
}

TryOutcome try_outcome(const TryExit& e) {
  TryOutcome o;
  o.exit_code = e.exit_code;
  if (e.result && !e.result->error.empty()) o.error = e.result->error;
  if (!e.error.empty()) o.error = e.error;
  if (e.cancelled) {
    o.end = TryEnd::Cancelled;
    o.error = "cancelled";
  } else if (e.timed_out_after) {
    o.end = TryEnd::TimedOut;
    o.error = timeout_error(*e.timed_out_after);
  } else if (!e.result) {
    o.end = e.signal || e.exit_code ? TryEnd::Failed : TryEnd::Lost;
    if (o.error.empty()) {
      if (e.signal)
        o.error = "killed by signal " + std::to_string(*e.signal);
      else if (!e.result_error.empty() && e.result_error != "no result")
        o.error = e.result_error;
      else
        o.error = "the try ended without a result";
    }
  } else {
    o.end = e.result->exit_code == 0 ? TryEnd::Success : TryEnd::Failed;
    o.exit_code = e.result->exit_code;
  }
  o.state = o.end == TryEnd::Success     ? TryState::Success
            : o.end == TryEnd::TimedOut  ? TryState::TimedOut
            : o.end == TryEnd::Cancelled ? TryState::Cancelled
            : o.end == TryEnd::Lost      ? TryState::Lost
                                         : TryState::Failed;
  return o;
}

std::string timeout_error(Micros after) { return "timed out after " + format_duration(after); }

bool is_engine_alert_kind(const std::string& kind) {
  return kind == "task_failed" || kind == "retries_exhausted" || kind == "sla_miss";
}

std::vector<Alert> try_end_alerts(const TaskSpec& task, const TaskInstance* after,
                                  const TryRecord& rec, const TryResult* result) {
  std::vector<Alert> out;
  if (after && after->try_number == rec.try_number &&
      (after->state == TaskState::Failed || after->state == TaskState::TimedOut)) {
    Alert a;
    a.kind = task.retries > 0 ? "retries_exhausted" : "task_failed";
    a.run_id = rec.run_id;
    a.task = rec.task;
    a.message = "task " + rec.task + " " + to_string(after->state) + " after " +
                std::to_string(rec.try_number) + " tr" + (rec.try_number == 1 ? "y" : "ies") +
                (rec.error.empty() ? "" : ": " + rec.error) +
                (rec.exit_code ? " (exit " + std::to_string(*rec.exit_code) + ")" : "");
    a.details = {{"try", rec.try_number},
                 {"exit_code", rec.exit_code ? json(*rec.exit_code) : json()},
                 {"log", rec.log_path}};
    out.push_back(std::move(a));
  }
  // Alerts the task type raised (a drift check that found drift): forwarded by kind, the
  // Engine knowing no type. The Engine's own kinds are its word alone.
  if (result)
    for (auto& raised : result->alerts) {
      if (raised.kind.empty() || is_engine_alert_kind(raised.kind)) continue;
      Alert a;
      a.kind = raised.kind;
      a.run_id = rec.run_id;
      a.task = rec.task;
      a.message = raised.message;
      a.details = raised.details;
      out.push_back(std::move(a));
    }
  return out;
}

std::optional<TimePoint> sla_deadline(const RunRecord& run, const DagSpec& dag) {
  if (!dag.sla) return std::nullopt;
  return run.interval_end.value_or(run.created_at) + *dag.sla;
}

Alert sla_alert(const RunRecord& run, const DagSpec& dag) {
  Alert a;
  a.kind = "sla_miss";
  a.run_id = run.id;
  TimePoint due = *sla_deadline(run, dag);
  a.message = "run " + run.id + " is not finished " + format_duration(*dag.sla) +
              " after its scheduled time (" + format_iso_utc(due - *dag.sla) + ")";
  a.details = {{"sla", format_duration(*dag.sla)}, {"state", to_string(run.state)}};
  return a;
}

bool may_start(RunState state, int running_runs_of_dag, int max_active_runs) {
  return state == RunState::Running || running_runs_of_dag < max_active_runs;
}

}  // namespace drover::core
