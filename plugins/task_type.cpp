#include "plugins/task_type.hpp"

#include <cstdio>
#include <cstdlib>

namespace drover {

bool is_value_key(std::string_view key) {
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  if (key.empty() || key.size() > 128 || !letter(key[0]) || key.back() == '.') return false;
  for (char c : key)
    if (!letter(c) && !(c >= '0' && c <= '9') && c != '-' && c != '.') return false;
  return true;
}

bool is_template(const json& v) {
  return v.is_string() && v.get<std::string>().find("{{") != std::string::npos;
}

void check_known_keys(const json& with, std::initializer_list<std::string_view> keys,
                      std::string_view type, std::vector<ConfigError>& errors) {
  for (auto& [k, v] : with.items()) {
    bool known = false;
    for (auto key : keys) known |= k == key;
    if (!known) errors.push_back({k, "unknown key '" + k + "' in " + std::string(type) + " task"});
  }
}

TaskTypeRegistry& TaskTypeRegistry::instance() {
  static TaskTypeRegistry r;
  return r;
}

void TaskTypeRegistry::add(std::unique_ptr<TaskType> type) {
  std::string name(type->name());
  if (types_.count(name)) {
    std::fprintf(stderr, "drover: task type '%s' registered twice\n", name.c_str());
    std::abort();
  }
  types_[name] = std::move(type);
}

const TaskType* TaskTypeRegistry::find(std::string_view name) const {
  auto it = types_.find(name);
  return it == types_.end() ? nullptr : it->second.get();
}

std::vector<std::string> TaskTypeRegistry::names() const {
  std::vector<std::string> out;
  for (auto& [n, t] : types_) out.push_back(n);
  return out;
}

json TrySpec::to_json() const {
  json files = json::array();
  for (auto& f : inputs)
    files.push_back({{"path", f.path},
                     {"sha256", f.sha256},
                     {"size", f.size},
                     {"mode", f.mode},
                     {"from_task", f.from_task}});
  return {
      {"run_id", run_id},
      {"dag", dag},
      {"task", task},
      {"type", type},
      {"try", try_number},
      {"queue", queue},
      {"resources",
       {{"gpu", resources.gpu}, {"cpu", resources.cpu}, {"memory_bytes", resources.memory_bytes}}},
      {"labels", labels},
      {"argv", argv},
      {"env", env},
      {"with", with},
      {"outputs", outputs},
      {"home", home},
      {"project_dir", project_dir},
      {"try_dir", try_dir},
      {"inputs", files},
      {"upstream_values", upstream_values},
      {"context", context},
      {"timeout_ms", timeout_ms},
      {"redact", redact}};
}

Result<TrySpec> TrySpec::from_json(const json& j) {
  try {
    TrySpec s;
    s.run_id = j.at("run_id").get<std::string>();
    s.dag = j.at("dag").get<std::string>();
    s.task = j.at("task").get<std::string>();
    s.type = j.at("type").get<std::string>();
    s.try_number = j.at("try").get<int>();
    s.queue = j.value("queue", "default");
    if (j.contains("resources")) {
      const json& r = j.at("resources");
      s.resources.gpu = r.value("gpu", 0);
      s.resources.cpu = r.value("cpu", 0.0);
      s.resources.memory_bytes = r.value("memory_bytes", 0LL);
    }
    if (j.contains("labels")) s.labels = j.at("labels").get<std::map<std::string, std::string>>();
    s.argv = j.at("argv").get<std::vector<std::string>>();
    s.env = j.at("env").get<std::map<std::string, std::string>>();
    s.with = j.value("with", json::object());
    s.outputs = j.at("outputs").get<std::vector<std::string>>();
    s.home = j.at("home").get<std::string>();
    s.project_dir = j.value("project_dir", "");
    s.try_dir = j.at("try_dir").get<std::string>();
    for (auto& f : j.at("inputs"))
      s.inputs.push_back(FileEntry{f.at("path"), f.at("sha256"), f.at("size"),
                                   f.value("mode", 0644), f.value("from_task", "")});
    if (j.contains("upstream_values"))
      s.upstream_values = j.at("upstream_values").get<std::map<std::string, json>>();
    if (j.contains("context")) s.context = j.at("context");
    s.timeout_ms = j.value("timeout_ms", 0LL);
    if (j.contains("redact")) s.redact = j.at("redact").get<std::vector<std::string>>();
    if (s.try_dir.empty()) return make_error("try spec: empty try_dir");
    return s;
  } catch (const std::exception& e) {
    return make_error(std::string("try spec: ") + e.what(), Errc::BadRequest);
  }
}

}  // namespace drover
