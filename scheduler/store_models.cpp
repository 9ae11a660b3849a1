#include "scheduler/store_models.hpp"

#include "common/time.hpp"

namespace drover {

namespace {

json event_json(const AliasEvent& e) {
  return {{"seq", e.seq},
          {"alias", e.alias},
          {"from", e.from ? json(*e.from) : json(nullptr)},
          {"to", e.to},
          {"by", e.by},
          {"at", format_iso_utc(e.at)},
          {"reason", e.reason},
          {"run", e.run_id.empty() ? json(nullptr) : json(e.run_id)},
          {"forced", e.forced}};
}

Error no_model(const std::string& name) {
  return make_error("no model '" + name + "' in the registry", Errc::NotFound);
}

}  // namespace

Result<ModelVersion> resolve_model_ref(Store& store, const models::ModelRef& ref) {
  int64_t version = 0;
  if (ref.version) {
    version = *ref.version;
  } else if (!ref.alias.empty()) {
    auto aliases = store.model_aliases(ref.name);
    if (!aliases) return aliases.error();
    auto it = aliases->find(ref.alias);
    if (it == aliases->end()) {
      auto latest = store.model_versions(ref.name, 1);
      if (!latest) return latest.error();
      if (latest->empty()) return no_model(ref.name);
      return make_error("model '" + ref.name + "' has no alias '" + ref.alias + "'",
                        Errc::NotFound);
    }
    version = it->second;
  } else {
    auto latest = store.model_versions(ref.name, 1);
    if (!latest) return latest.error();
    if (latest->empty()) return no_model(ref.name);
    version = latest->front().version;
  }
  auto v = store.model_version(ref.name, version);
  if (!v) return v.error();
  if (!*v) {
    auto any = store.model_versions(ref.name, 1);
    if (!any) return any.error();
    if (any->empty()) return no_model(ref.name);
    return make_error("no version " + std::to_string(version) + " of model '" + ref.name + "'",
                      Errc::NotFound);
  }
  return std::move(**v);
}

Result<json> models_listing_json(Store& store) {
  auto all = store.models();
  if (!all) return all.error();
  json out = json::array();
  for (const ModelSummary& m : *all)
    out.push_back({{"name", m.name},
                   {"versions", m.versions},
                   {"latest", m.latest},
                   {"aliases", m.aliases},
                   {"created_at", format_iso_utc(m.created_at)},
                   {"updated_at", format_iso_utc(m.updated_at)}});
  return json{{"models", std::move(out)}};
}

Result<json> model_version_json(Store& store, const models::ModelRef& ref) {
  auto v = resolve_model_ref(store, ref);
  if (!v) return v.error();
  auto aliases = store.model_aliases(v->name);
  if (!aliases) return aliases.error();
  json named = json::array();
  for (auto& [alias, version] : *aliases)
    if (version == v->version) named.push_back(alias);
  json artifacts = json::array();
  for (const FileRecord& f : v->artifacts)
    artifacts.push_back(
        {{"path", f.path}, {"size", f.size}, {"sha256", f.sha256}, {"mode", f.mode}});
  auto validations = store.model_validations(v->name, v->version);
  if (!validations) return validations.error();
  json checks = json::array();
  for (const ModelValidation& m : *validations)
    checks.push_back({{"run", m.run_id},
                      {"task", m.task},
                      {"try", m.try_number},
                      {"passed", m.passed},
                      {"at", format_iso_utc(m.at)},
                      {"gates", m.report.value("gates", json::array())}});
  const json& r = v->record;
  auto field = [&](const char* key, json fallback) {
    auto it = r.find(key);
    return it == r.end() ? fallback : *it;
  };
  return json{{"name", v->name},
              {"version", v->version},
              {"ref", v->name + "/" + std::to_string(v->version)},
              {"run", v->run_id},
              {"task", v->task},
              {"try", v->try_number},
              {"params", field("params", json::object())},
              {"metrics", field("metrics", json::object())},
              {"step_metrics", field("step_metrics", json::array())},
              {"artifacts", std::move(artifacts)},
              {"inputs", field("inputs", json::array())},
              {"dag", field("dag", "")},
              {"dag_hash", field("dag_hash", "")},
              {"git", field("git", json::object())},
              {"environment", field("environment", json::object())},
              {"description", field("description", "")},
              {"aliases", std::move(named)},
              {"validations", std::move(checks)},
              {"created_at", format_iso_utc(v->created_at)}};
}

Result<json> alias_history_json(Store& store, const std::string& name) {
  auto any = store.model_versions(name, 1);
  if (!any) return any.error();
  if (any->empty()) return no_model(name);
  auto events = store.alias_events(name);
  if (!events) return events.error();
  json out = json::array();
  for (const AliasEvent& e : *events) out.push_back(event_json(e));
  return json{{"name", name}, {"events", std::move(out)}};
}

Result<json> move_model_alias(Store& store, const AliasMove& m) {
  if (!models::valid_alias(m.alias))
    return make_error("alias '" + m.alias + "': an alias is [a-z0-9_-]+", Errc::Invalid);
  models::ModelRef ref{m.name, m.version, ""};
  auto v = resolve_model_ref(store, ref);
  if (!v) return v.error();
  auto aliases = store.model_aliases(m.name);
  if (!aliases) return aliases.error();
  AliasEvent e;
  e.name = m.name;
  e.alias = m.alias;
  if (auto it = aliases->find(m.alias); it != aliases->end()) e.from = it->second;
  if (e.from == m.version)
    return make_error("alias " + m.alias + " of model '" + m.name + "' names version " +
                          std::to_string(m.version) + " already",
                      Errc::Conflict);
  if (!m.force) {
    auto validations = store.model_validations(m.name, m.version);
    if (!validations) return validations.error();
    const std::string ref = m.name + "/" + std::to_string(m.version);
    if (validations->empty())
      return make_error(ref +
                            " was never validated: a validate task gates a version before an "
                            "alias names it (--force moves it anyway, and the event says so)",
                        Errc::Conflict);
    const ModelValidation& last = validations->back();
    if (!last.passed)
      return make_error(ref + " failed its latest validation (run " + last.run_id + ", task " +
                            last.task + "): --force moves it anyway, and the event says so",
                        Errc::Conflict);
  }
  e.to = m.version;
  e.by = m.by;
  e.reason = m.reason;
  e.run_id = m.run_id;
  e.forced = m.force;
  e.at = m.at;
  auto seq = store.move_alias(e);
  if (!seq) return seq.error();
  e.seq = *seq;
  return event_json(e);
}

}  // namespace drover
