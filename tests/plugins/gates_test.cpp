// Validation gates (plugins/gates.hpp): the lint-time check of a gates list and the verdict
// on a candidate's metrics against absolute bounds and the versions under aliases.
#include "plugins/gates.hpp"

#include <gtest/gtest.h>

namespace drover::gates {
namespace {

json parse(const char* text) { return json::parse(text); }

std::vector<std::string> check_messages(const json& g) {
  std::vector<ConfigError> errors;
  check(g, errors);
  std::vector<std::string> out;
  for (auto& e : errors) out.push_back(e.message);
  return out;
}

TEST(GatesTest, AbsoluteAndRelativeRulesEachGiveTheirVerdictAndText) {
  json g = parse(R"([{"metric": "auc", "min": 0.7, "max": 0.99},
                     {"metric": "auc", "vs": "production", "max_drop": 0.01},
                     {"metric": "auc", "vs": "production", "min_gain": 0.02}])");
  Baselines prod{{"production", Baseline{2, {{"auc", 0.80}}}}};
  json r = evaluate(g, "clicks", 3, {{"auc", 0.81}}, prod);
  ASSERT_EQ(r["gates"].size(), 4u) << r.dump(2);
  EXPECT_EQ(r["model"], "clicks");
  EXPECT_EQ(r["version"], 3);
  EXPECT_FALSE(r["passed"]);  // a gain of 0.01 is short of 0.02
  EXPECT_EQ(r["gates"][0]["text"], "auc 0.81 >= 0.7 (min): passed");
  EXPECT_EQ(r["gates"][1]["text"], "auc 0.81 <= 0.99 (max): passed");
  EXPECT_EQ(r["gates"][2]["text"],
            "auc vs production (clicks/2): 0.81 vs 0.8, drop -0.01 <= max_drop 0.01: passed");
  EXPECT_EQ(r["gates"][2]["baseline_version"], 2);
  EXPECT_EQ(r["gates"][2]["baseline"], 0.80);
  EXPECT_EQ(r["gates"][3]["text"],
            "auc vs production (clicks/2): 0.81 vs 0.8, gain 0.01 < min_gain 0.02: failed");
  EXPECT_EQ(failures(r), std::vector<std::string>{r["gates"][3]["text"].get<std::string>()});

  // A drop of exactly max_drop passes, despite 0.80 - 0.79 being 0.010000000000000009.
  json exact = evaluate(parse(R"([{"metric": "auc", "vs": "production", "max_drop": 0.01}])"),
                        "clicks", 3, {{"auc", 0.79}}, prod);
  EXPECT_TRUE(exact["passed"]) << exact.dump(2);
  json below = evaluate(g, "clicks", 3, {{"auc", 0.69}}, prod);
  EXPECT_EQ(below["gates"][0]["text"], "auc 0.69 >= 0.7 (min): failed");
}

TEST(GatesTest, AnEmptyAliasPassesWithANoteAndAMissingMetricFailsNamingIt) {
  json g = parse(R"([{"metric": "auc", "vs": "production", "max_drop": 0.01},
                     {"metric": "precision", "min": 0.5},
                     {"metric": "recall", "vs": "staging", "max_drop": 0}])");
  Baselines b{{"production", std::nullopt}, {"staging", Baseline{1, {{"auc", 0.9}}}}};
  json r = evaluate(g, "clicks", 1, {{"auc", 0.9}, {"recall", 0.4}}, b);
  ASSERT_EQ(r["gates"].size(), 3u);
  EXPECT_TRUE(r["gates"][0]["passed"]);
  EXPECT_EQ(r["gates"][0]["note"],
            "alias production of model 'clicks' names no version: nothing to compare");
  EXPECT_EQ(r["gates"][1]["text"], "precision: missing from the candidate clicks/1: failed");
  EXPECT_EQ(r["gates"][2]["text"], "recall: missing from clicks/1 (staging): failed");
  EXPECT_FALSE(r["passed"]);
  // An alias nobody resolved is no pass.
  json unresolved = evaluate(g, "clicks", 1, {{"auc", 0.9}}, {});
  EXPECT_FALSE(unresolved["gates"][0]["passed"]);
  // The context a try is given decides the same.
  EXPECT_EQ(evaluate_context(g, context("clicks", 1, {{"auc", 0.9}, {"recall", 0.4}}, b)), r);
  EXPECT_EQ(aliases(g), (std::set<std::string>{"production", "staging"}));
}

TEST(GatesTest, ABadGatesListIsALintErrorNamingTheGate) {
  EXPECT_EQ(check_messages(parse(R"([{"metric": "auc", "min": 0.7}])")).size(), 0u);
  EXPECT_FALSE(check_messages(parse("[]")).empty());
  EXPECT_EQ(check_messages(parse(R"([{"metric": "auc", "min": 0.7}, {"metric": "auc"}])")),
            std::vector<std::string>{"gate 2: needs 'min' or 'max' (or 'vs')"});
  EXPECT_EQ(check_messages(parse(R"([{"metric": "auc", "vs": "production"}])")),
            std::vector<std::string>{"gate 1: a gate with 'vs' needs 'max_drop' or 'min_gain'"});
  EXPECT_EQ(check_messages(parse(R"([{"metric": "auc", "max_drop": 0.1}])")),
            (std::vector<std::string>{"gate 1: 'max_drop' needs 'vs: ALIAS' to compare against",
                                      "gate 1: needs 'min' or 'max' (or 'vs')"}));
  EXPECT_EQ(check_messages(parse(R"([{"metric": "auc", "vs": "Prod!", "max_drop": -1}])")),
            (std::vector<std::string>{"gate 1: 'vs' must name an alias ([a-z0-9_-]+)",
                                      "gate 1: 'max_drop' must be a number >= 0"}));
  EXPECT_EQ(check_messages(parse(R"([{"metric": "auc", "mn": 0.7, "min": "high"}])")),
            (std::vector<std::string>{
                "gate 1: unknown key 'mn' (a gate has metric, and min/max or vs with "
                "max_drop/min_gain)",
                "gate 1: 'min' must be a number"}));
  EXPECT_EQ(check_messages(parse(R"([{"min": 0.7}])")),
            std::vector<std::string>{"gate 1: needs 'metric: NAME'"});
}

}  // namespace
}  // namespace drover::gates
