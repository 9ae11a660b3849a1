// Validation gates (DESIGN.md §6 `validate`, docs/models.md): the lint-time check of a
// `gates:` list and the verdict of the gates on a candidate model version's final metrics,
// given the versions under the aliases they compare against. Pure functions of their
// arguments; thread-safe. The validate type calls them in the try process with what the
// daemon resolved when it built the try's spec (TrySpec::context); the Engine calls them
// again with the registry as it commits the try's end, and its verdict is the one recorded.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "plugins/task_type.hpp"

namespace drover::gates {

// Errors of a `gates:` list, each for the key "gates" ("gate 2: ...").
void check(const json& gates, std::vector<ConfigError>& errors);

// The aliases the gates compare against (`vs:`), sorted.
std::set<std::string> aliases(const json& gates);

// A version under an alias: its number and final metrics ({name: number}).
struct Baseline {
  int64_t version = 0;
  json metrics = json::object();
};
// alias -> the version it names, nullopt when it names none (then its gates pass with a
// note). An alias the gates name that is missing here fails its gates.
using Baselines = std::map<std::string, std::optional<Baseline>>;

// The report: {"model", "version", "passed", "gates": [{"metric", "rule" (min | max |
// max_drop | min_gain), "threshold", "candidate", "vs", "baseline_version", "baseline",
// "passed", "text"}]} with one entry per rule (a gate with both min and max gives two).
// A metric missing from the candidate or from the baseline fails its rule, naming it.
json evaluate(const json& gates, const std::string& model, int64_t version,
              const json& candidate_metrics, const Baselines& baselines);

// The `text` of each rule that failed, in order.
std::vector<std::string> failures(const json& report);

// The context a validate try is given (TrySpec::context) and the Engine decides from:
// {"candidate": {"name", "version", "metrics"}, "baselines": {alias: {version, metrics} | null}}.
json context(const std::string& model, int64_t version, const json& candidate_metrics,
             const Baselines& baselines);
// evaluate() of `gates` on a context; a context without a candidate fails every gate.
json evaluate_context(const json& gates, const json& context);

}  // namespace drover::gates
