// The `train` task type (DESIGN.md §6, docs/models.md): with: {model: NAME, artifacts: [paths],
// metrics: FILE, description: optional}. Runs `run:` as `command` does (code we do not trust:
// the try's environment alone), with PYTHONPATH reaching the drover Python helper
// (python/drover) and DROVER_ENVIRONMENT_FILE. When it exits 0: FILE (in the work dir) must
// be a JSON object of numbers, the final metrics; each artifact must exist and is collected
// into the blob store as an output. It then publishes `model`, `metrics.NAME` and the
// version to register; the Engine registers NAME/N as it commits the try's end and publishes
// `model_version`. A failure registers nothing. Stateless; thread-safe.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common/fs.hpp"
#include "common/model_ref.hpp"
#include "common/try_layout.hpp"
#include "plugins/task_type.hpp"

extern char** environ;

namespace drover {
namespace {

namespace fs = std::filesystem;

constexpr off_t kMetricsFileMax = 1 << 20;
constexpr off_t kEnvironmentFileMax = 1 << 20;

// The folders above `rel` under `root` are folders, not links (a link could lead the reader
// anywhere the worker may read).
bool plain_folders(const fs::path& root, const std::string& rel) {
  fs::path at = root;
  fs::path parent = fs::path(rel).parent_path();
  for (auto& part : parent) {
    at /= part;
    struct stat st;
    if (::lstat(at.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  }
  return true;
}

// The drover Python helper's folder (holding drover/__init__.py): beside the binary in a
// build tree or an install, else the source tree this binary was built from.
std::string python_helper_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> candidates;
  if (!ec) {
    fs::path dir = exe.parent_path();
    candidates = {dir.parent_path() / "python", dir.parent_path() / "share/drover/python",
                  dir / "python"};
  }
#ifdef DROVER_SOURCE_PYTHON_DIR
  candidates.push_back(DROVER_SOURCE_PYTHON_DIR);
#endif
  for (auto& c : candidates)
    if (fs::is_regular_file(c / "drover" / "__init__.py", ec)) return c.lexically_normal().string();
  return "";
}

class TrainTaskType final : public TaskType {
 public:
  std::string_view name() const override { return "train"; }
  RunField run_field() const override { return RunField::Required; }

  void validate(const json& with, std::vector<ConfigError>& errors) const override {
    if (!with.is_object()) {
      errors.push_back(
          {"", "train task needs 'with: {model: NAME, artifacts: [...], metrics: FILE}'"});
      return;
    }
    check_known_keys(with, {"model", "artifacts", "metrics", "description"}, "train", errors);
    for (const char* key : {"model", "artifacts", "metrics"})
      if (!with.contains(key))
        errors.push_back({"", std::string("train task needs '") + key + "'"});
    if (auto it = with.find("model"); it != with.end()) {
      if (!it->is_string() || it->get<std::string>().empty())
        errors.push_back({"model", "'model' must be a non-empty string"});
      else if (!is_template(*it) && !models::valid_model_name(it->get<std::string>()))
        errors.push_back({"model", "invalid model name '" + it->get<std::string>() +
                                       "': use [a-z0-9][a-z0-9_.-]*"});
    }
    if (auto it = with.find("artifacts"); it != with.end()) {
      if (!it->is_array() || it->empty()) {
        errors.push_back({"artifacts", "'artifacts' must be a list of paths in the work dir"});
      } else {
        for (auto& a : *it)
          if (!a.is_string() || (!is_template(a) && !is_inside_relative(a.get<std::string>())))
            errors.push_back(
                {"artifacts", "artifact " +
                                  (a.is_string() ? "'" + a.get<std::string>() + "'" : a.dump()) +
                                  " must be a relative path inside the work dir"});
      }
    }
    if (auto it = with.find("metrics"); it != with.end())
      if (!it->is_string() || (!is_template(*it) && !is_inside_relative(it->get<std::string>())))
        errors.push_back({"metrics", "'metrics' must be a relative path inside the work dir"});
    if (auto it = with.find("description"); it != with.end() && !it->is_string())
      errors.push_back({"description", "'description' must be a string"});
  }

  std::vector<std::string> published_keys(const json&) const override {
    return {"model", "model_version", "metrics.*"};
  }

  std::vector<std::string> collected_outputs(const json& with) const override {
    std::vector<std::string> out;
    if (auto it = with.find("artifacts"); it != with.end() && it->is_array())
      for (auto& a : *it)
        if (a.is_string()) out.push_back(a.get<std::string>());
    return out;
  }

  int run(TaskContext& ctx) const override {
    const json& w = ctx.spec.with;
    std::string model = w.value("model", std::string());
    std::string metrics_file = w.value("metrics", std::string());
    // Rendered now: a template may have made any of these wrong.
    if (!models::valid_model_name(model))
      return fail("invalid model name '" + model + "': use [a-z0-9][a-z0-9_.-]*");
    if (!is_inside_relative(metrics_file))
      return fail("metrics file '" + metrics_file +
                  "' must be a relative path inside the work dir");
    for (auto& a : collected_outputs(w))
      if (!is_inside_relative(a))
        return fail("artifact '" + a + "' must be a relative path inside the work dir");

    int rc = run_script(ctx);
    if (rc != 0) return rc;

    fs::path work = fs::current_path();
    std::string what = "train: metrics file '" + metrics_file + "'";
    if (!plain_folders(work, metrics_file))
      return fail("metrics file '" + metrics_file +
                  "' is not inside the work dir (a folder on its way is a link)");
    auto text = read_untrusted_file(work / metrics_file, kMetricsFileMax, what.c_str());
    if (!text) return fail_raw(text.message());
    if (!*text)
      return fail("metrics file '" + metrics_file +
                  "' was not written (the script writes its final metrics there: a JSON object of "
                  "numbers, e.g. {\"auc\": 0.91})");
    json metrics = json::parse(**text, nullptr, false);
    if (metrics.is_discarded() || !metrics.is_object())
      return fail("metrics file '" + metrics_file + "' is not a JSON object of numbers");
    for (auto& [k, v] : metrics.items()) {
      if (!is_value_key("metrics." + k))
        return fail("metrics file '" + metrics_file + "': '" + k.substr(0, 64) +
                    "' is not a metric name (letters, digits, '_', '-', '.')");
      if (!v.is_number() || !std::isfinite(v.get<double>()))
        return fail("metrics file '" + metrics_file + "' is not a JSON object of numbers: '" + k +
                    "' is " + (v.is_number() ? "not finite" : std::string(v.type_name())));
    }
    json artifacts = json::array();
    for (auto& a : collected_outputs(w)) {
      struct stat st;
      if (!plain_folders(work, a) || ::lstat((work / a).c_str(), &st) != 0)
        return fail("artifact '" + a + "' was not written");
      artifacts.push_back(a);
    }
    json environment = json::object();
    auto env_text = read_untrusted_file(fs::path(ctx.spec.try_dir) / "environment.json",
                                        kEnvironmentFileMax, "train: DROVER_ENVIRONMENT_FILE");
    if (!env_text) return fail_raw(env_text.message());
    if (*env_text) {
      environment = json::parse(**env_text, nullptr, false);
      if (environment.is_discarded() || !environment.is_object())
        return fail("DROVER_ENVIRONMENT_FILE (environment.json) is not a JSON object");
    }
    char host[256] = {0};
    if (::gethostname(host, sizeof host - 1) == 0) environment["hostname"] = host;

    for (auto& [k, v] : metrics.items()) {
      ctx.publish.metric(k, v.get<double>());
      ctx.publish.value("metrics." + k, v);
    }
    ctx.publish.value("model", model);
    ctx.publish.model({{"name", model},
                       {"artifacts", artifacts},
                       {"metrics", metrics},
                       {"environment", environment},
                       {"description", w.value("description", std::string())}});
    std::printf("train: %s: %zu artifact(s), %zu metric(s); registered when the try is recorded\n",
                model.c_str(), artifacts.size(), metrics.size());
    std::fflush(stdout);
    return 0;
  }

 private:
  static int fail(const std::string& why) { return fail_raw("train: " + why); }
  static int fail_raw(const std::string& why) {
    std::fprintf(stderr, "%s\n", why.c_str());
    std::fflush(stderr);
    return 1;
  }

  // The script, as `command` runs one, with the helper on PYTHONPATH (before the task's own).
  static int run_script(TaskContext& ctx) {
    std::vector<std::string> env;
    std::string pythonpath;
    for (char** e = environ; e && *e; ++e) {
      std::string kv = *e;
      if (kv.rfind("PYTHONPATH=", 0) == 0)
        pythonpath = kv.substr(11);
      else if (kv.rfind("DROVER_ENVIRONMENT_FILE=", 0) != 0)
        env.push_back(std::move(kv));
    }
    std::string helper = python_helper_dir();
    if (!helper.empty()) pythonpath = pythonpath.empty() ? helper : helper + ":" + pythonpath;
    if (!pythonpath.empty()) env.push_back("PYTHONPATH=" + pythonpath);
    env.push_back("DROVER_ENVIRONMENT_FILE=" + layout::environment(ctx.spec.try_dir).string());
    return run_task_command(ctx.spec.argv, std::move(env));
  }
};

}  // namespace

std::unique_ptr<TaskType> make_train_task_type() { return std::make_unique<TrainTaskType>(); }

}  // namespace drover
