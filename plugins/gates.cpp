#include "plugins/gates.hpp"

#include <cmath>
#include <cstdio>

#include "common/model_ref.hpp"

namespace drover::gates {

namespace {

// Slack for rounding in `candidate - baseline` (0.80 - 0.79 is 0.010000000000000009).
constexpr double kSlack = 1e-12;

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::optional<double> metric_of(const json& metrics, const std::string& name) {
  if (!metrics.is_object()) return std::nullopt;
  auto it = metrics.find(name);
  if (it == metrics.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

bool is_non_negative_number(const json& v) {
  return v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() >= 0;
}

}  // namespace

void check(const json& gates, std::vector<ConfigError>& errors) {
  auto bad = [&](size_t i, const std::string& why) {
    errors.push_back({"gates", "gate " + std::to_string(i + 1) + ": " + why});
  };
  if (!gates.is_array() || gates.empty()) {
    errors.push_back({"gates",
                      "'gates' must be a non-empty list of {metric: NAME, min: X} or "
                      "{metric: NAME, vs: ALIAS, max_drop: X}"});
    return;
  }
  for (size_t i = 0; i < gates.size(); ++i) {
    const json& g = gates[i];
    if (!g.is_object()) {
      bad(i, "a gate is a map such as {metric: auc, min: 0.7}");
      continue;
    }
    for (auto& [k, v] : g.items())
      if (k != "metric" && k != "min" && k != "max" && k != "vs" && k != "max_drop" &&
          k != "min_gain")
        bad(i, "unknown key '" + k +
                   "' (a gate has metric, and min/max or vs with max_drop/min_gain)");
    auto metric = g.find("metric");
    if (metric == g.end() || !metric->is_string() || metric->get<std::string>().empty())
      bad(i, "needs 'metric: NAME'");
    bool relative = g.contains("vs");
    if (relative) {
      const json& vs = g["vs"];
      if (!vs.is_string() || (!is_template(vs) && !models::valid_alias(vs.get<std::string>())))
        bad(i, "'vs' must name an alias ([a-z0-9_-]+)");
      for (const char* k : {"min", "max"})
        if (g.contains(k))
          bad(i, std::string("'") + k + "' is an absolute bound: put it in a gate of its own");
      if (!g.contains("max_drop") && !g.contains("min_gain"))
        bad(i, "a gate with 'vs' needs 'max_drop' or 'min_gain'");
      for (const char* k : {"max_drop", "min_gain"})
        if (g.contains(k) && !is_non_negative_number(g[k]))
          bad(i, std::string("'") + k + "' must be a number >= 0");
    } else {
      for (const char* k : {"max_drop", "min_gain"})
        if (g.contains(k)) bad(i, std::string("'") + k + "' needs 'vs: ALIAS' to compare against");
      if (!g.contains("min") && !g.contains("max")) bad(i, "needs 'min' or 'max' (or 'vs')");
      for (const char* k : {"min", "max"})
        if (g.contains(k) && !(g[k].is_number() && std::isfinite(g[k].get<double>())))
          bad(i, std::string("'") + k + "' must be a number");
    }
  }
}

std::set<std::string> aliases(const json& gates) {
  std::set<std::string> out;
  if (!gates.is_array()) return out;
  for (const json& g : gates)
    if (g.is_object() && g.contains("vs") && g["vs"].is_string())
      out.insert(g["vs"].get<std::string>());
  return out;
}

json evaluate(const json& gates, const std::string& model, int64_t version,
              const json& candidate_metrics, const Baselines& baselines) {
  const std::string candidate_ref = model + "/" + std::to_string(version);
  json out = json::array();
  bool all = true;
  for (const json& g : gates.is_array() ? gates : json::array()) {
    if (!g.is_object()) continue;
    const std::string metric = g.value("metric", "");
    std::optional<double> cand = metric_of(candidate_metrics, metric);
    auto add = [&](json entry, bool passed, const std::string& text) {
      entry["metric"] = metric;
      entry["candidate"] = cand ? json(*cand) : json(nullptr);
      entry["passed"] = passed;
      entry["text"] = text + (passed ? ": passed" : ": failed");
      all = all && passed;
      out.push_back(std::move(entry));
    };
    const std::string missing = metric + ": missing from the candidate " + candidate_ref;
    if (!g.contains("vs")) {
      for (const char* rule : {"min", "max"}) {
        if (!g.contains(rule) || !g[rule].is_number()) continue;
        double bound = g[rule].get<double>();
        json e{{"rule", rule}, {"threshold", bound}};
        if (!cand) {
          add(e, false, missing);
          continue;
        }
        bool min = std::string(rule) == "min";
        bool ok = min ? *cand >= bound : *cand <= bound;
        add(e, ok,
            metric + " " + num(*cand) + (min ? " >= " : " <= ") + num(bound) + " (" + rule + ")");
      }
      continue;
    }
    const std::string alias = g["vs"].is_string() ? g["vs"].get<std::string>() : "";
    auto b = baselines.find(alias);
    for (const char* rule : {"max_drop", "min_gain"}) {
      if (!g.contains(rule) || !g[rule].is_number()) continue;
      double bound = g[rule].get<double>();
      json e{{"rule", rule}, {"threshold", bound}, {"vs", alias}};
      e["baseline_version"] = nullptr;
      e["baseline"] = nullptr;
      const std::string head = metric + " vs " + alias;
      if (b == baselines.end()) {
        add(e, false, head + ": the version under " + alias + " was not resolved");
        continue;
      }
      if (!b->second) {
        e["note"] =
            "alias " + alias + " of model '" + model + "' names no version: nothing to compare";
        add(e, true, head + ": " + e["note"].get<std::string>());
        continue;
      }
      const Baseline& base = *b->second;
      e["baseline_version"] = base.version;
      std::optional<double> was = metric_of(base.metrics, metric);
      const std::string base_ref = model + "/" + std::to_string(base.version);
      if (was) e["baseline"] = *was;
      if (!cand) {
        add(e, false, missing);
        continue;
      }
      if (!was) {
        add(e, false, metric + ": missing from " + base_ref + " (" + alias + ")");
        continue;
      }
      std::string compare = head + " (" + base_ref + "): " + num(*cand) + " vs " + num(*was);
      if (std::string(rule) == "max_drop") {
        double drop = *was - *cand;
        bool ok = drop <= bound + kSlack;
        add(e, ok,
            compare + ", drop " + num(drop) + (ok ? " <= " : " > ") + "max_drop " + num(bound));
      } else {
        double gain = *cand - *was;
        bool ok = gain + kSlack >= bound;
        add(e, ok,
            compare + ", gain " + num(gain) + (ok ? " >= " : " < ") + "min_gain " + num(bound));
      }
    }
  }
  return json{{"model", model}, {"version", version}, {"passed", all}, {"gates", std::move(out)}};
}

std::vector<std::string> failures(const json& report) {
  std::vector<std::string> out;
  for (const json& g : report.value("gates", json::array()))
    if (!g.value("passed", false)) out.push_back(g.value("text", ""));
  return out;
}

json context(const std::string& model, int64_t version, const json& candidate_metrics,
             const Baselines& baselines) {
  json base = json::object();
  for (auto& [alias, b] : baselines)
    base[alias] = b ? json{{"version", b->version}, {"metrics", b->metrics}} : json(nullptr);
  return json{
      {"candidate", {{"name", model}, {"version", version}, {"metrics", candidate_metrics}}},
      {"baselines", std::move(base)}};
}

json evaluate_context(const json& gates, const json& ctx) {
  Baselines baselines;
  std::string model;
  int64_t version = 0;
  json metrics = json::object();
  if (ctx.is_object()) {
    if (auto c = ctx.find("candidate"); c != ctx.end() && c->is_object()) {
      model = c->value("name", "");
      if (auto v = c->find("version"); v != c->end() && v->is_number_integer())
        version = v->get<int64_t>();
      metrics = c->value("metrics", json::object());
    }
    if (auto b = ctx.find("baselines"); b != ctx.end() && b->is_object())
      for (auto& [alias, v] : b->items()) {
        if (v.is_null()) {
          baselines[alias] = std::nullopt;
        } else if (v.is_object() && v.contains("version") && v["version"].is_number_integer()) {
          baselines[alias] =
              Baseline{v["version"].get<int64_t>(), v.value("metrics", json::object())};
        }
      }
  }
  return evaluate(gates, model, version, metrics, baselines);
}

}  // namespace drover::gates
