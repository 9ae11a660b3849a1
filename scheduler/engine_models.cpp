// The model steps (docs/models.md): what the daemon resolves from the registry for a try of
// validate and promote (TrySpec::context), and what a try's end writes to the registry in
// the pump's commit: a train's version, a validate's verdict, a promote's alias move. A try
// cannot change the store; these are decided here from the store, never taken from the try.
#include <algorithm>

#include "common/model_ref.hpp"
#include "plugins/dataset_ref.hpp"
#include "plugins/gates.hpp"
#include "scheduler/engine_impl.hpp"
#include "scheduler/store_models.hpp"

namespace drover {

using namespace engine;

namespace {

core::TryOutcome failed(const std::string& why) {
  return core::TryOutcome{core::TryEnd::Failed, TryState::Failed, 1, why};
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

}  // namespace

// The values the latest successful try of `task` published (an empty object: none).
Result<json> Engine::Impl::task_values(const ActiveRun& v, const std::string& task) {
  auto it = v.tasks.find(task);
  if (it == v.tasks.end() || it->second.state != TaskState::Success) return json::object();
  int n = it->second.try_number;
  if (auto o = v.outputs.find(task); o != v.outputs.end() && o->second.try_number == n)
    return o->second.values;
  return store.values_of(v.run.id, task, n);
}

// The version each `uses: {model: REF}` of `dag` names now, pinned for a run being created:
// {TASK: {ref, name, version}}. A name, alias or version the registry does not have is
// Errc::Invalid (the trigger is refused and nothing is created).
Result<json> Engine::Impl::pin_models(const DagSpec& dag) {
  json out = json::object();
  for (const TaskSpec& t : dag.tasks) {
    if (t.uses_model.empty()) continue;
    auto fail = [&](const Error& e) {
      return make_error(
          "task '" + t.id + "' uses model " + t.uses_model + ": " + e.message,
          e.code == Errc::NotFound || e.code == Errc::Invalid ? Errc::Invalid : e.code);
    };
    auto ref = models::parse_model_ref(t.uses_model);
    if (!ref) return fail(ref.error());
    auto version = resolve_model_ref(store, *ref);
    if (!version) return fail(version.error());
    out[t.id] = {{"ref", t.uses_model}, {"name", version->name}, {"version", version->version}};
  }
  return out;
}

// The artifacts of the version the run pinned for `task` (read from the registry: a
// version never changes).
Result<std::vector<FileRecord>> Engine::Impl::pinned_model_files(const ActiveRun& v,
                                                                 const std::string& task) {
  auto pin = v.run.models.find(task);
  if (pin == v.run.models.end() || !pin->is_object())
    return make_error(
        "task '" + task + "' uses a model, but run " + v.run.id + " pinned no version for it",
        Errc::Invalid);
  std::string name = pin->value("name", "");
  int64_t version = pin->value("version", int64_t{0});
  auto mv = store.model_version(name, version);
  if (!mv) return mv.error();
  if (!*mv)
    return make_error("no version " + std::to_string(version) + " of model '" + name + "'",
                      Errc::NotFound);
  std::vector<FileRecord> files = (*mv)->artifacts;
  return files;
}

// validate: {"candidate": {name, version, metrics}, "baselines": {alias: {version, metrics}
// | null}} (plugins/gates.hpp); promote: {model, version, alias, from, validation: {task,
// try}}; null for other types. An error fails the try before it starts.
Result<json> Engine::Impl::model_context(const ActiveRun& v, const TaskSpec& t, const json& with) {
  if (t.type == "drift") return drift_reference_context(with);
  const bool validate = t.type == "validate";
  if (!validate && t.type != "promote") return json();
  auto up = validate ? v.dag->upstream_of_type(t.id, "train", "candidate")
                     : v.dag->upstream_of_type(t.id, "validate", "validation");
  if (!up) return make_error(t.type + ": " + up.message(), Errc::Invalid);
  auto vals = task_values(v, *up);
  if (!vals) return vals.error();
  auto name = vals->find("model");
  auto version = vals->find("model_version");
  if (name == vals->end() || !name->is_string() || version == vals->end() ||
      !version->is_number_integer())
    return make_error(t.type + ": task '" + *up + "' did not " +
                          (validate ? "register a model version" : "validate a model version"),
                      Errc::Invalid);
  const std::string model = name->get<std::string>();
  const int64_t n = version->get<int64_t>();
  auto aliases = store.model_aliases(model);
  if (!aliases) return aliases.error();
  if (!validate) {
    std::string alias = with.value("alias", "");
    if (!models::valid_alias(alias))
      return make_error("promote: alias '" + alias + "': an alias is [a-z0-9_-]+", Errc::Invalid);
    auto from = aliases->find(alias);
    return json{{"model", model},
                {"version", n},
                {"alias", alias},
                {"from", from == aliases->end() ? json(nullptr) : json(from->second)},
                {"validation", {{"task", *up}, {"try", v.tasks.at(*up).try_number}}}};
  }
  auto metrics_of = [&](int64_t version) -> Result<json> {
    auto mv = store.model_version(model, version);
    if (!mv) return mv.error();
    if (!*mv)
      return make_error("validate: no version " + std::to_string(version) + " of model '" + model +
                            "' in the registry",
                        Errc::NotFound);
    return (*mv)->record.value("metrics", json::object());
  };
  auto candidate = metrics_of(n);
  if (!candidate) return candidate.error();
  gates::Baselines baselines;
  for (const std::string& alias : gates::aliases(with.value("gates", json::array()))) {
    auto it = aliases->find(alias);
    if (it == aliases->end()) {
      baselines[alias] = std::nullopt;
      continue;
    }
    auto m = metrics_of(it->second);
    if (!m) return m.error();
    baselines[alias] = gates::Baseline{it->second, std::move(*m)};
  }
  return gates::context(model, n, *candidate, baselines);
}

// drift with `reference: model:REF:PATH`: the dataset version the model version REF names
// now was trained on, as {"reference": "VERSION_ID:PATH", "reference_model": "NAME/V"}; or
// {"reference_missing": why} when REF names nothing yet (the first retrain has no production
// model), which the check reports as skipped. Resolved when the try starts: in a retrain the
// alias moves only after the check. Null for any other reference.
Result<json> Engine::Impl::drift_reference_context(const json& with) {
  const json ref = with.value("reference", json());
  if (!ref.is_string() || !is_model_data_ref(ref.get<std::string>())) return json();
  auto parsed = parse_model_data_ref(ref.get<std::string>());
  if (!parsed) return make_error("drift: reference " + parsed.message(), Errc::Invalid);
  auto version = resolve_model_ref(store, parsed->model);
  if (!version) {
    if (version.error().code != Errc::NotFound) return version.error();
    return json{{"reference_missing", version.message()}};
  }
  const std::string model = version->name + "/" + std::to_string(version->version);
  std::vector<std::string> datasets;  // the distinct dataset versions it read, in order
  std::string named;                  // the one a file named PATH came from
  for (const json& in : version->record.value("inputs", json::array())) {
    std::string id = in.value("dataset_version", "");
    if (id.empty()) continue;
    if (std::find(datasets.begin(), datasets.end(), id) == datasets.end()) datasets.push_back(id);
    std::string path = in.value("path", "");
    if (path == parsed->path || path.ends_with("/" + parsed->path)) named = id;
  }
  if (named.empty() && datasets.size() == 1) named = datasets.front();
  if (named.empty())
    return make_error("drift: reference " + ref.get<std::string>() + ": model version " + model +
                          (datasets.empty() ? " was trained on no dataset snapshot"
                                            : " read several dataset versions and no file '" +
                                                  parsed->path + "'"),
                      Errc::Invalid);
  return json{{"reference", named + ":" + parsed->path}, {"reference_model", model}};
}

// The registry writes of a try's end, by the type of its task (other types write nothing,
// whatever their result.json says). They may turn a success into a failure, saying why.
void Engine::Impl::registry_step(const TryRecord& rec, core::TryResult& result, TimePoint now,
                                 core::TryOutcome& out, engine::Writes& w) {
  auto vit = active.find(rec.run_id);
  if (vit == active.end()) return;
  ActiveRun& v = vit->second;
  const TaskSpec* spec = v.dag->task(rec.task);
  if (!spec) return;
  const bool success = out.end == core::TryEnd::Success;
  if (spec->type == "train" && success) register_model(v, rec, result, now, out, w);
  if (spec->type == "validate" && (success || out.end == core::TryEnd::Failed))
    record_validation(v, *spec, rec, result, now, out, w);
  if (spec->type == "promote" && success) promote_version(v, *spec, rec, result, now, out, w);
}

// A successful `train` try registers its model version with its end (in the same commit) and
// publishes `model_version`; one whose version cannot be registered fails, saying why.
void Engine::Impl::register_model(ActiveRun& v, const TryRecord& rec, core::TryResult& result,
                                  TimePoint now, core::TryOutcome& out, engine::Writes& w) {
  auto fail = [&](const std::string& why) { out = failed("train: " + why); };
  auto files = store.files_of(rec.run_id, rec.task, rec.try_number, "input");
  if (!w(files)) return;
  std::vector<core::ModelInput> inputs;
  for (FileRecord& f : *files) {
    core::ModelInput in{f, "", ""};
    const TaskSpec* up = v.dag->task(f.from_task);
    auto o = v.outputs.find(f.from_task);
    if (up && up->type == "snapshot" && o != v.outputs.end()) {
      in.dataset = o->second.values.value("dataset", std::string());
      in.dataset_version = o->second.values.value("version", std::string());
    }
    inputs.push_back(std::move(in));
  }
  auto version = core::model_version_of(result, rec, v.run, inputs, now);
  if (!version) return fail(version.message());
  auto n = store.add_model_version(*version);
  if (!n) {
    // A try with a version already: one whose end was recorded before (never registered twice).
    if (n.error().code == Errc::Conflict) return fail(n.message());
    w(n);
    return;
  }
  result.values["model_version"] = *n;
}

// A validate try that ran to its end records the verdict of its gates, decided again here
// from the registry as it is now (the try's own report is what its log and validation.json
// show): passed only when the try succeeded too. A success whose gates fail here fails.
void Engine::Impl::record_validation(ActiveRun& v, const TaskSpec& t, const TryRecord& rec,
                                     core::TryResult& result, TimePoint now, core::TryOutcome& out,
                                     engine::Writes& w) {
  const bool success = out.end == core::TryEnd::Success;
  auto built = build_spec(v, t, rec.try_number);
  if (!built) {
    if (success) out = failed(built.message());
    return;
  }
  const json& c = built->context;
  json report = gates::evaluate_context(built->with.value("gates", json::array()), c);
  const bool verdict = report.value("passed", false);
  ModelValidation mv;
  mv.name = c["candidate"].value("name", "");
  mv.version = c["candidate"].value("version", int64_t{0});
  mv.run_id = rec.run_id;
  mv.task = rec.task;
  mv.try_number = rec.try_number;
  mv.passed = success && verdict;
  mv.report = report;
  mv.at = now;
  Status s = store.add_model_validation(mv);
  if (!s.ok()) {
    if (s.error().code == Errc::Conflict || s.error().code == Errc::NotFound) {
      out = failed("validate: " + s.message());
    } else {
      w(s);
    }
    return;
  }
  if (!verdict) {
    out = failed("validate: " + mv.name + "/" + std::to_string(mv.version) + " failed " +
                 join(gates::failures(report), "; "));
    return;
  }
  result.values["model"] = mv.name;
  result.values["model_version"] = mv.version;
  result.values["passed"] = true;
  result.values["report"] = report;
}

// A successful promote try moves its alias to the version its validate task passed in this
// run, as one event by "run RUN" (move_model_alias refuses a version whose latest validation
// did not pass); an alias that names it already is left as it is.
void Engine::Impl::promote_version(ActiveRun& v, const TaskSpec& t, const TryRecord& rec,
                                   core::TryResult& result, TimePoint now, core::TryOutcome& out,
                                   engine::Writes& w) {
  auto fail = [&](const std::string& why) { out = failed("promote: " + why); };
  auto built = build_spec(v, t, rec.try_number);
  if (!built) return fail(built.message());
  const json& c = built->context;
  const std::string model = c.value("model", ""), alias = c.value("alias", "");
  const int64_t version = c.value("version", int64_t{0});
  const std::string ref = model + "/" + std::to_string(version);
  const std::string vtask = c["validation"].value("task", "");
  const int vtry = c["validation"].value("try", 0);
  auto validations = store.model_validations(model, version);
  if (!w(validations)) return;
  bool passed_here = false;
  for (const ModelValidation& m : *validations)
    passed_here |= m.run_id == rec.run_id && m.task == vtask && m.try_number == vtry && m.passed;
  if (!passed_here)
    return fail(ref + " has no passed validation by task '" + vtask + "' of this run");
  result.values["model"] = model;
  result.values["model_version"] = version;
  result.values["alias"] = alias;
  auto aliases = store.model_aliases(model);
  if (!w(aliases)) return;
  auto now_at = aliases->find(alias);
  result.values["previous_version"] =
      now_at == aliases->end() ? json(nullptr) : json(now_at->second);
  if (now_at != aliases->end() && now_at->second == version) return;
  AliasMove m;
  m.name = model;
  m.alias = alias;
  m.version = version;
  m.by = "run " + rec.run_id;
  m.reason = built->with.value("reason", "");
  if (m.reason.empty())
    m.reason = "promoted by " + v.dag->id + "." + t.id + " after " + vtask + " passed";
  m.run_id = rec.run_id;
  m.at = now;
  auto moved = move_model_alias(store, m);
  if (!moved) {
    Errc code = moved.error().code;
    if (code == Errc::Conflict || code == Errc::NotFound || code == Errc::Invalid)
      return fail(moved.message());
    w(moved);
  }
}

}  // namespace drover
