#include "scheduler/store_models.hpp"

#include <cstdio>
#include <set>

#include "common/time.hpp"
#include "common/utf8.hpp"

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

json tag_event_json(const TagEvent& e) {
  return {{"seq", e.seq},
          {"key", e.key},
          {"value", e.value ? json(*e.value) : json(nullptr)},
          {"by", e.by},
          {"at", format_iso_utc(e.at)}};
}

json description_event_json(const DescriptionEvent& e) {
  return {
      {"seq", e.seq}, {"description", e.description}, {"by", e.by}, {"at", format_iso_utc(e.at)}};
}

constexpr size_t kMaxTagValue = 1024;
constexpr size_t kMaxDescription = 4096;

// Why `text` cannot be kept (nullopt: it can): not UTF-8, over `max` bytes, or a control
// character (but tab and newline where `lines`); said as what follows "value " or
// "description ".
std::optional<std::string> text_problem(std::string_view text, size_t max, bool lines) {
  if (auto at = find_invalid_utf8(text))
    return "is not valid UTF-8 (byte " + byte_hex(text, *at) + " at offset " + std::to_string(*at) +
           ")";
  if (text.size() > max)
    return "is " + std::to_string(text.size()) + " bytes, more than " + std::to_string(max);
  if (auto at = find_control_char(text, lines ? "\t\n" : "")) {
    unsigned c = static_cast<unsigned char>(text[*at]);
    if (c == 0xc2) c = static_cast<unsigned char>(text[*at + 1]);  // C1: U+0080..U+009F
    char cp[16];
    std::snprintf(cp, sizeof cp, "U+%04X", c);
    return std::string("holds the control character ") + cp + " at offset " + std::to_string(*at) +
           (lines ? " (only tab and newline are allowed)" : "");
  }
  return std::nullopt;
}

std::string ref_text(const ModelVersion& v) { return v.name + "/" + std::to_string(v.version); }

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

Result<json> models_listing_json(Store& store, const TagFilter& tagged) {
  auto all = store.models();
  if (!all) return all.error();
  json out = json::array();
  for (const ModelSummary& m : *all) {
    json entry = {{"name", m.name},
                  {"versions", m.versions},
                  {"latest", m.latest},
                  {"aliases", m.aliases},
                  {"created_at", format_iso_utc(m.created_at)},
                  {"updated_at", format_iso_utc(m.updated_at)}};
    if (!tagged.empty()) {
      auto tags = store.model_tags(m.name);
      if (!tags) return tags.error();
      json versions = json::array();
      for (auto& [version, have] : *tags) {
        bool all_of = true;
        for (auto& [key, value] : tagged) {
          auto it = have.find(key);
          if (it == have.end() || it->second != value) all_of = false;
        }
        if (all_of) versions.push_back(version);
      }
      if (versions.empty()) continue;
      entry["tagged"] = std::move(versions);
    }
    out.push_back(std::move(entry));
  }
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
  auto tag_events = store.tag_events(v->name, v->version);
  if (!tag_events) return tag_events.error();
  json tags = json::object(), tag_history = json::array();
  for (const TagEvent& e : *tag_events) {
    if (e.value)
      tags[e.key] = *e.value;
    else
      tags.erase(e.key);
    tag_history.push_back(tag_event_json(e));
  }
  auto edits = store.description_events(v->name, v->version);
  if (!edits) return edits.error();
  json description = field("description", ""), description_history = json::array();
  for (const DescriptionEvent& e : *edits) {
    description = e.description;
    description_history.push_back(description_event_json(e));
  }
  return json{{"name", v->name},
              {"version", v->version},
              {"ref", ref_text(*v)},
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
              {"description", std::move(description)},
              {"description_events", std::move(description_history)},
              {"tags", std::move(tags)},
              {"tag_events", std::move(tag_history)},
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

Result<json> change_model_tags(Store& store, const TagChange& c) {
  std::set<std::string> keys;
  for (auto& [key, value] : c.tags) {
    if (!models::valid_tag_key(key))
      return make_error(
          "tag key '" + printable(key.substr(0, 100)) + "': a key is 1 to 64 of [A-Za-z0-9_.-]",
          Errc::Invalid);
    if (!keys.insert(key).second)
      return make_error("tag '" + key + "' is given twice", Errc::Invalid);
    if (value)
      if (auto why = text_problem(*value, kMaxTagValue, /*lines=*/false))
        return make_error("tag '" + key + "': value " + *why, Errc::Invalid);
  }
  auto v = resolve_model_ref(store, c.ref);
  if (!v) return v.error();
  auto all = store.model_tags(v->name);
  if (!all) return all.error();
  std::map<std::string, std::string> tags = (*all)[v->version];
  std::vector<TagEvent> events;
  for (auto& [key, value] : c.tags) {
    auto it = tags.find(key);
    if (!value && it == tags.end())
      return make_error(ref_text(*v) + " has no tag '" + key + "'", Errc::NotFound);
    if (value && it != tags.end() && it->second == *value) continue;  // unchanged
    events.push_back(TagEvent{0, v->name, v->version, key, value, c.by, c.at});
  }
  auto seqs = store.add_tag_events(events);
  if (!seqs) return seqs.error();
  json recorded = json::array();
  for (size_t i = 0; i < events.size(); ++i) {
    events[i].seq = (*seqs)[i];
    if (events[i].value)
      tags[events[i].key] = *events[i].value;
    else
      tags.erase(events[i].key);
    recorded.push_back(tag_event_json(events[i]));
  }
  return json{{"ref", ref_text(*v)}, {"tags", tags}, {"events", std::move(recorded)}};
}

Result<json> describe_model_version(Store& store, const DescriptionEdit& d) {
  if (auto why = text_problem(d.description, kMaxDescription, /*lines=*/true))
    return make_error("description " + *why, Errc::Invalid);
  auto v = resolve_model_ref(store, d.ref);
  if (!v) return v.error();
  auto edits = store.description_events(v->name, v->version);
  if (!edits) return edits.error();
  std::string now;
  if (!edits->empty())
    now = edits->back().description;
  else if (auto it = v->record.find("description"); it != v->record.end() && it->is_string())
    now = it->get<std::string>();
  json recorded = json::array();
  if (now != d.description) {
    DescriptionEvent e{0, v->name, v->version, d.description, d.by, d.at};
    auto seq = store.add_description_event(e);
    if (!seq) return seq.error();
    e.seq = *seq;
    recorded.push_back(description_event_json(e));
  }
  return json{
      {"ref", ref_text(*v)}, {"description", d.description}, {"events", std::move(recorded)}};
}

}  // namespace drover
