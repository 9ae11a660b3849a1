// The `validate` task type (DESIGN.md §6, docs/models.md): with: {gates: [...], candidate:
// TASK (optional: the one train task upstream)}. Gates the version that train registered
// on its final metrics: absolute ({metric: auc, min: 0.7}, max:) and against the version
// under an alias ({metric: auc, vs: production, max_drop: 0.01}, min_gain:). The daemon
// resolves the candidate and those versions when it builds the try (TrySpec::context); the
// try writes the report (plugins/gates.hpp) to validation.json, an output, prints each rule
// to the log and exits 1 when one failed. The Engine decides again from the registry as it
// commits the try's end and records that verdict with the version. Stateless; thread-safe.
#include <cstdio>

#include "common/fs.hpp"
#include "plugins/gates.hpp"
#include "plugins/task_type.hpp"

namespace drover {
namespace {

constexpr const char* kReportFile = "validation.json";

class ValidateTaskType final : public TaskType {
 public:
  std::string_view name() const override { return "validate"; }

  void validate(const json& with, std::vector<ConfigError>& errors) const override {
    if (!with.is_object()) {
      errors.push_back({"", "validate task needs 'with: {gates: [{metric: NAME, min: X}, ...]}'"});
      return;
    }
    check_known_keys(with, {"gates", "candidate"}, "validate", errors);
    if (!with.contains("gates"))
      errors.push_back({"", "validate task needs 'gates'"});
    else
      gates::check(with["gates"], errors);
    if (auto it = with.find("candidate"); it != with.end() && !it->is_string())
      errors.push_back({"candidate", "'candidate' must name the train task upstream"});
  }

  std::vector<std::string> published_keys(const json&) const override {
    return {"model", "model_version", "passed"};
  }

  std::vector<std::string> collected_outputs(const json&) const override { return {kReportFile}; }

  int run(TaskContext& ctx) const override {
    const json& ctx_json = ctx.spec.context;
    if (!ctx_json.is_object() || !ctx_json.contains("candidate")) {
      std::fprintf(stderr, "validate: the try was given no candidate model version\n");
      return 1;
    }
    json report = gates::evaluate_context(ctx.spec.with.value("gates", json::array()), ctx_json);
    std::printf("validate: %s/%lld\n", report.value("model", "").c_str(),
                static_cast<long long>(report.value("version", 0LL)));
    for (const json& g : report["gates"]) std::printf("  %s\n", g.value("text", "").c_str());
    bool passed = report.value("passed", false);
    std::printf("validate: %s\n", passed ? "every gate passed" : "a gate failed");
    std::fflush(stdout);
    if (Status s = write_file_atomic(kReportFile, report.dump(2) + "\n"); !s.ok()) {
      std::fprintf(stderr, "validate: %s\n", s.message().c_str());
      return 1;
    }
    ctx.publish.value("model", report["model"]);
    ctx.publish.value("model_version", report["version"]);
    ctx.publish.value("passed", passed);
    return passed ? 0 : 1;
  }
};

}  // namespace

std::unique_ptr<TaskType> make_validate_task_type() { return std::make_unique<ValidateTaskType>(); }

}  // namespace drover
