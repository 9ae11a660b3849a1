#include "scheduler/try_spec.hpp"

#include <set>

#include "common/time.hpp"
#include "common/try_layout.hpp"
#include "scheduler/template.hpp"

namespace drover {

namespace fs = std::filesystem;

namespace {

std::string param_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

}  // namespace

Result<TrySpec> build_try_spec(const TrySpecContext& c, const TaskSpec& t, int try_number) {
  const RunRecord& run = c.run;
  TrySpec s;
  s.run_id = run.id;
  s.dag = c.dag.id;
  s.task = t.id;
  s.type = t.type;
  s.try_number = try_number;
  s.queue = t.queue;
  s.resources = TryResources{t.resources.gpu, t.resources.cpu, t.resources.memory_bytes};
  s.home = c.home.string();
  s.project_dir = c.project_dir;
  s.try_dir = layout::try_dir(c.home, run.id, t.id, try_number).string();
  s.outputs = t.outputs;
  if (t.timeout) s.timeout_ms = t.timeout->count() / 1000;

  // Inputs: every ancestor this task reads through {{ inputs.X.path }}, and its direct needs.
  std::set<std::string> input_tasks(t.needs.begin(), t.needs.end());
  std::map<std::string, json> values_cache;
  std::optional<Error> lookup_error;  // a failed store read: the try fails with it
  auto values_of = [&](const std::string& task) -> json {
    auto it = values_cache.find(task);
    if (it != values_cache.end()) return it->second;
    json vals = json::object();
    if (int n = c.successful_try(task); n > 0) {
      auto r = c.values(task, n);
      if (r)
        vals = *r;
      else if (!lookup_error)
        lookup_error = r.error();
    }
    values_cache[task] = vals;
    return vals;
  };
  using K = TemplateName::Kind;
  TemplateLookup lookup = [&](std::string_view name) -> std::optional<std::string> {
    TemplateName what = classify_template_name(name);
    switch (what.kind) {
      case K::RunId:
        return run.id;
      case K::LogicalDate:
        if (run.logical_date) return format_iso_utc(*run.logical_date);
        return std::nullopt;
      case K::IntervalStart:
        return run.interval_start ? format_iso_utc(*run.interval_start) : "";
      case K::IntervalEnd:
        return run.interval_end ? format_iso_utc(*run.interval_end) : "";
      case K::ProjectDir:
        return s.project_dir;
      case K::Param:
        if (run.params.contains(what.subject)) return param_text(run.params[what.subject]);
        return std::nullopt;
      case K::InputPath:
        // A task's `uses:` model reads as input "model" (the loader lets no task of that
        // name be its ancestor too).
        if (what.subject == "model" && !t.uses_model.empty())
          return layout::input(s.try_dir, "model").string();
        input_tasks.insert(what.subject);
        return layout::input(s.try_dir, what.subject).string();
      case K::Output: {
        json vals = values_of(what.subject);
        // Dotted keys ("metrics.auc") are stored flat.
        if (vals.contains(what.key)) return param_text(vals[what.key]);
        return std::nullopt;
      }
      case K::Secret: {
        std::optional<std::string> val;
        if (auto it = c.secrets.find(what.subject); it != c.secrets.end())
          val = it->second;
        else if (const char* e = std::getenv(("DROVER_SECRET_" + what.subject).c_str()))
          val = e;
        if (val) s.redact.push_back(*val);
        return val;
      }
      case K::Unknown:
        return std::nullopt;
    }
    return std::nullopt;
  };
  auto render = [&](const std::string& text, bool quote) -> Result<std::string> {
    auto r = render_template(text, lookup, quote);
    if (lookup_error) return *lookup_error;
    return r;
  };

  if (t.run_shell) {
    auto cmd = render(*t.run_shell, /*quote=*/true);
    if (!cmd) return cmd.error();
    s.argv = {"/bin/sh", "-c", *cmd};
  } else {
    for (auto& a : t.run_argv) {
      auto arg = render(a, false);
      if (!arg) return arg.error();
      s.argv.push_back(*arg);
    }
  }
  for (auto& [k, val] : t.env) {
    auto r = render(val, false);
    if (!r) return r.error();
    s.env[k] = *r;
  }
  std::function<Result<json>(const json&)> render_json = [&](const json& j) -> Result<json> {
    if (j.is_string()) {
      auto r = render(j.get<std::string>(), false);
      if (!r) return r.error();
      return json(*r);
    }
    if (j.is_array() || j.is_object()) {
      json out = j;
      for (auto it = out.begin(); it != out.end(); ++it) {
        auto r = render_json(*it);
        if (!r) return r.error();
        *it = *r;
      }
      return out;
    }
    return j;
  };
  auto with = render_json(t.with);
  if (!with) return with.error();
  s.with = *with;

  for (auto& up : input_tasks) {
    int n = c.successful_try(up);
    if (n == 0) continue;  // all_done / one_failed: an upstream without outputs
    auto files = c.files(up, n);
    if (!files) return files.error();
    for (auto& f : *files) s.inputs.push_back(FileEntry{f.path, f.sha256, f.size, f.mode, up});
    json up_values = values_of(up);
    if (lookup_error) return *lookup_error;
    for (auto& [k, val] : up_values.items()) s.upstream_values[up + "." + k] = val;
  }
  if (!t.uses_model.empty()) {
    auto files = c.model_files(t.id);
    if (!files) return files.error();
    for (auto& f : *files) s.inputs.push_back(FileEntry{f.path, f.sha256, f.size, f.mode, "model"});
  }
  return s;
}

}  // namespace drover
