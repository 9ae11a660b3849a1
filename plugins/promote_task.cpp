// The `promote` task type (DESIGN.md §6, docs/models.md): with: {alias: production,
// validation: TASK (optional: the one validate task upstream), reason: optional}. Moves the
// alias to the version the validate task upstream passed. A try cannot change the store: it
// prints the move the daemon resolved (TrySpec::context: {model, version, alias, from}),
// and the Engine makes it, as one alias event by "run RUN", as it commits the try's end,
// refusing a version whose latest validation did not pass. Stateless; thread-safe.
#include <cstdio>

#include "common/model_ref.hpp"
#include "plugins/task_type.hpp"

namespace drover {
namespace {

class PromoteTaskType final : public TaskType {
 public:
  std::string_view name() const override { return "promote"; }

  void validate(const json& with, std::vector<ConfigError>& errors) const override {
    if (!with.is_object()) {
      errors.push_back({"", "promote task needs 'with: {alias: ALIAS}'"});
      return;
    }
    check_known_keys(with, {"alias", "validation", "reason"}, "promote", errors);
    if (auto it = with.find("alias"); it == with.end())
      errors.push_back({"", "promote task needs 'alias'"});
    else if (!it->is_string() ||
             (!is_template(*it) && !models::valid_alias(it->get<std::string>())))
      errors.push_back({"alias", "'alias' must be an alias name ([a-z0-9_-]+)"});
    if (auto it = with.find("validation"); it != with.end() && !it->is_string())
      errors.push_back({"validation", "'validation' must name the validate task upstream"});
    if (auto it = with.find("reason"); it != with.end() && !it->is_string())
      errors.push_back({"reason", "'reason' must be a string"});
  }

  std::vector<std::string> published_keys(const json&) const override {
    return {"model", "model_version", "alias", "previous_version"};
  }

  int run(TaskContext& ctx) const override {
    const json& c = ctx.spec.context;
    if (!c.is_object() || !c.contains("model") || !c.contains("version")) {
      std::fprintf(stderr, "promote: the try was given no validated model version\n");
      return 1;
    }
    std::string from = c.contains("from") && c["from"].is_number_integer()
                           ? "version " + std::to_string(c["from"].get<long long>())
                           : "no version";
    std::printf("promote: %s/%lld to %s (it names %s now); moved when the try is recorded\n",
                c.value("model", "").c_str(), static_cast<long long>(c.value("version", 0LL)),
                c.value("alias", "").c_str(), from.c_str());
    std::fflush(stdout);
    return 0;
  }
};

}  // namespace

std::unique_ptr<TaskType> make_promote_task_type() { return std::make_unique<PromoteTaskType>(); }

}  // namespace drover
