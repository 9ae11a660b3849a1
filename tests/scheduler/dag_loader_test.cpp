// Tests of the DAG loader (scheduler/dag_loader.hpp) and DagSpec/ParamSpec (scheduler/dag.hpp):
// one test per error kind, each asserting the exact "file:line:col: message".
#include "scheduler/dag_loader.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/sha256.hpp"
#include "plugins/task_type.hpp"

namespace drover {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using Errors = std::vector<std::string>;

// A type like the coming `train`: publishes model, model_version and metrics.NAME.
class TrainLikeTaskType final : public TaskType {
 public:
  std::string_view name() const override { return "train_like"; }
  std::vector<std::string> published_keys(const json&) const override {
    return {"model", "model_version", "metrics.*"};
  }
  int run(TaskContext&) const override { return 0; }
};

class DagLoaderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    register_builtin_task_types();
    static bool added = false;
    if (!added) TaskTypeRegistry::instance().add(std::make_unique<TrainLikeTaskType>());
    added = true;
  }

  static Errors messages(const LoadResult& r) {
    Errors out;
    for (const auto& d : r.diagnostics) out.push_back(d.str());
    return out;
  }
  static Errors errors(std::string_view text, const DagLimits& limits = {}) {
    LoadResult r = load_dag_text(text, "d.yaml", limits);
    Errors out = messages(r);
    if (r.dag)
      EXPECT_TRUE(out.empty());
    else
      EXPECT_FALSE(out.empty());
    return out;
  }
  static DagPtr load(std::string_view text) {
    LoadResult r = load_dag_text(text, "d.yaml");
    for (const auto& d : r.diagnostics) ADD_FAILURE() << d.str();
    return r.dag;
  }
  // Milliseconds the loader takes on `text`.
  static long long timed_ms(std::string_view text, Errors* out) {
    auto start = std::chrono::steady_clock::now();
    LoadResult r = load_dag_text(text, "d.yaml");
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    for (const auto& d : r.diagnostics) out->push_back(d.str());
    return ms;
  }
};

// ---- valid files ------------------------------------------------------------------------

TEST_F(DagLoaderTest, MinimalDagGetsTheDocumentedDefaults) {
  const char* text = "dag: demo\ntasks:\n  a:\n    run: echo hi\n";
  DagPtr dag = load(text);
  ASSERT_TRUE(dag);
  EXPECT_EQ(dag->id, "demo");
  EXPECT_EQ(dag->file, "d.yaml");
  EXPECT_EQ(dag->content, text);
  EXPECT_EQ(dag->file_hash, sha256_hex(text));
  EXPECT_EQ(dag->timezone, "UTC");
  EXPECT_EQ(dag->max_active_runs, 1);
  EXPECT_FALSE(dag->catchup);
  EXPECT_EQ(dag->schedule, nullptr);
  ASSERT_EQ(dag->tasks.size(), 1u);
  const TaskSpec& a = dag->tasks[0];
  EXPECT_EQ(a.id, "a");
  EXPECT_EQ(a.type, "command");
  EXPECT_EQ(a.run_shell, "echo hi");
  EXPECT_EQ(a.retries, 0);
  EXPECT_EQ(a.retry_delay, seconds(30));
  EXPECT_EQ(a.max_retry_delay, hours(1));
  EXPECT_FALSE(a.timeout);
  EXPECT_EQ(a.queue, "default");
  EXPECT_EQ(a.trigger_rule, TriggerRule::AllSuccess);
  EXPECT_EQ(a.loc.line, 3);
  EXPECT_EQ(a.loc.col, 3);
}

TEST_F(DagLoaderTest, FullExampleLoadsEveryField) {
  DagPtr dag = load(R"(dag: weekly_retrain
description: Retrain the recommender
schedule: "0 3 * * MON"
timezone: Europe/Moscow
catchup: true
max_active_runs: 2
owner: ml-recsys
tags: [recsys, weekly]
params:
  window_days: {type: int, default: 14, min: 1, max: 90}
  model_name: {type: string, default: recommender, pattern: "^[a-z_]+$"}
  rate: {type: float, default: 1}
  dry: {type: bool, default: false}
  mode: {type: string, enum: [fast, full], default: fast}
  version: {type: string, default: 12}
  seed: 7
  who: {type: string}
defaults:
  retries: 2
  retry_delay: 10s
  timeout: 2h
  env: {A: "1", B: "2"}
  resources: {cpu: 2}
sla: 6h
alerts:
  on_failure: [ml-oncall]
  on_drift: [ml-oncall, recsys-email]
tasks:
  evaluate:
    needs: [train]
    run: python3 eval.py --data {{ inputs.make_data.path }} --day {{ outputs.make_data.day }}
    trigger_rule: all_done
  train:
    needs: [make_data]
    queue: gpu
    run: [python3, "{{ project_dir }}/train.py", --window, "{{ params.window_days }}"]
    env: {B: "3", TOKEN: "{{ secrets.hub_token }}"}
    resources: {gpu: 1, memory: 16G}
    outputs: [model.pkl, reports/]
    retries: 0
    max_retry_delay: 5m
  make_data:
    type: mock
    with: {sleep_ms: 1, values: {day: "{{ run.logical_date }}"}}
)");
  ASSERT_TRUE(dag);
  EXPECT_EQ(dag->id, "weekly_retrain");
  EXPECT_EQ(dag->description, "Retrain the recommender");
  ASSERT_TRUE(dag->schedule);
  EXPECT_EQ(dag->schedule->text(), "0 3 * * MON");
  EXPECT_EQ(dag->timezone, "Europe/Moscow");
  EXPECT_TRUE(dag->catchup);
  EXPECT_EQ(dag->max_active_runs, 2);
  EXPECT_EQ(dag->owner, "ml-recsys");
  EXPECT_EQ(dag->tags, (std::vector<std::string>{"recsys", "weekly"}));
  EXPECT_EQ(dag->sla, hours(6));
  EXPECT_EQ(dag->alerts.at("on_drift"), (std::vector<std::string>{"ml-oncall", "recsys-email"}));

  ASSERT_EQ(dag->params.size(), 8u);
  EXPECT_EQ(dag->params[0].name, "window_days");
  EXPECT_EQ(dag->params[0].type, ParamSpec::Type::Int);
  EXPECT_EQ(dag->params[0].default_value, json(14));
  EXPECT_EQ(dag->params[0].min, 1.0);
  EXPECT_EQ(dag->params[0].max, 90.0);
  EXPECT_EQ(dag->params[1].pattern, "^[a-z_]+$");
  EXPECT_TRUE(dag->params[2].default_value.is_number_float());
  EXPECT_EQ(dag->params[3].default_value, json(false));
  EXPECT_EQ(dag->params[4].choices, (std::vector<json>{"fast", "full"}));
  EXPECT_EQ(dag->params[5].default_value, json("12"));   // a string param keeps the text
  EXPECT_EQ(dag->params[6].type, ParamSpec::Type::Int);  // shorthand infers the type
  EXPECT_TRUE(dag->params[7].default_value.is_null());   // required

  // Sorted topologically, ties in file order.
  ASSERT_EQ(dag->tasks.size(), 3u);
  EXPECT_EQ(dag->tasks[0].id, "make_data");
  EXPECT_EQ(dag->tasks[1].id, "train");
  EXPECT_EQ(dag->tasks[2].id, "evaluate");

  const TaskSpec* train = dag->task("train");
  ASSERT_TRUE(train);
  EXPECT_EQ(train->run_argv, (std::vector<std::string>{"python3", "{{ project_dir }}/train.py",
                                                       "--window", "{{ params.window_days }}"}));
  EXPECT_FALSE(train->run_shell);
  EXPECT_EQ(train->queue, "gpu");
  EXPECT_EQ(train->retries, 0);                // overrides defaults
  EXPECT_EQ(train->retry_delay, seconds(10));  // from defaults
  EXPECT_EQ(train->max_retry_delay, minutes(5));
  EXPECT_EQ(train->timeout, hours(2));
  EXPECT_EQ(train->env, (std::map<std::string, std::string>{
                            {"A", "1"}, {"B", "3"}, {"TOKEN", "{{ secrets.hub_token }}"}}));
  EXPECT_EQ(train->resources.gpu, 1);
  EXPECT_EQ(train->resources.cpu, 2);
  EXPECT_EQ(train->resources.memory_bytes, 16LL << 30);
  EXPECT_EQ(train->outputs, (std::vector<std::string>{"model.pkl", "reports/"}));
  EXPECT_EQ(train->needs, (std::vector<std::string>{"make_data"}));

  const TaskSpec* eval = dag->task("evaluate");
  ASSERT_TRUE(eval);
  EXPECT_TRUE(eval->run_shell);
  EXPECT_EQ(eval->trigger_rule, TriggerRule::AllDone);
  EXPECT_EQ(eval->retries, 2);

  const TaskSpec* make = dag->task("make_data");
  ASSERT_TRUE(make);
  EXPECT_EQ(make->type, "mock");
  EXPECT_EQ(make->with,
            json::parse(R"({"sleep_ms": 1, "values": {"day": "{{ run.logical_date }}"}})"));

  EXPECT_EQ(dag->ancestors("evaluate"), (std::vector<std::string>{"make_data", "train"}));
  EXPECT_TRUE(dag->ancestors("make_data").empty());
  EXPECT_EQ(dag->task("nope"), nullptr);
}

TEST_F(DagLoaderTest, MemorySizesUseBinaryUnits) {
  DagPtr dag = load(
      "dag: d\ntasks:\n  a: {run: x, resources: {memory: 512M}}\n"
      "  b: {run: x, resources: {memory: 1024}}\n"
      "  c: {run: x, resources: {memory: 2Gi}}\n");
  ASSERT_TRUE(dag);
  EXPECT_EQ(dag->task("a")->resources.memory_bytes, 512LL << 20);
  EXPECT_EQ(dag->task("b")->resources.memory_bytes, 1024);
  EXPECT_EQ(dag->task("c")->resources.memory_bytes, 2LL << 30);
}

// ---- one test per error kind ------------------------------------------------------------

TEST_F(DagLoaderTest, UnknownTaskKeySuggestsTheClosestKey) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  train:\n    run: x\n    retires: 3\n"),
            Errors{"d.yaml:5:5: unknown key 'retires' in task 'train' (did you mean 'retries'?)"});
}

TEST_F(DagLoaderTest, UnknownTopLevelKeySuggestsTheClosestKey) {
  EXPECT_EQ(errors("dag: d\nshedule: '@daily'\ntasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:2:1: unknown key 'shedule' (did you mean 'schedule'?)"});
}

TEST_F(DagLoaderTest, UnknownKeyFarFromAnyGetsNoSuggestion) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a: {run: x, zzzzzz: 1}\n"),
            Errors{"d.yaml:3:15: unknown key 'zzzzzz' in task 'a'"});
}

TEST_F(DagLoaderTest, UnknownKeysInDefaultsParamsResourcesAndAlerts) {
  EXPECT_EQ(errors("dag: d\n"
                   "params:\n  n: {type: int, defualt: 1}\n"
                   "defaults: {retries: 1, run: x}\n"
                   "alerts: {on_failur: [a]}\n"
                   "tasks:\n  a: {run: x, resources: {gpus: 1}}\n"),
            (Errors{"d.yaml:3:18: unknown key 'defualt' in param 'n' (did you mean 'default'?)",
                    "d.yaml:4:24: unknown key 'run' in defaults",
                    "d.yaml:5:10: unknown key 'on_failur' in alerts (did you mean 'on_failure'?)",
                    "d.yaml:7:27: unknown key 'gpus' in resources of task 'a' (did you mean "
                    "'gpu'?)"}));
}

TEST_F(DagLoaderTest, NeedsOfAnUnknownTaskIsAnError) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  snapshot_events: {run: x}\n"
                   "  train:\n    run: x\n    needs: [snapshot_event]\n"),
            Errors{"d.yaml:6:13: task 'train' needs unknown task 'snapshot_event' (did you mean "
                   "'snapshot_events'?)"});
}

TEST_F(DagLoaderTest, TaskThatNeedsItselfIsAnError) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    run: x\n    needs: [a]\n"),
            Errors{"d.yaml:5:13: task 'a' needs itself"});
}

TEST_F(DagLoaderTest, CycleIsNamedFromItsFirstTask) {
  EXPECT_EQ(errors("dag: d\ntasks:\n"
                   "  a: {run: x, needs: [c]}\n"
                   "  b: {run: x, needs: [a]}\n"
                   "  c: {run: x, needs: [b]}\n"
                   "  d: {run: x, needs: [c]}\n"),
            Errors{"d.yaml:3:23: cycle: a -> c -> b -> a"});
}

TEST_F(DagLoaderTest, TwoSeparateCyclesAreBothNamed) {
  EXPECT_EQ(errors("dag: d\ntasks:\n"
                   "  a: {run: x, needs: [b]}\n"
                   "  b: {run: x, needs: [a]}\n"
                   "  c: {run: x, needs: [d]}\n"
                   "  d: {run: x, needs: [c]}\n"),
            (Errors{"d.yaml:3:23: cycle: a -> b -> a", "d.yaml:5:23: cycle: c -> d -> c"}));
}

TEST_F(DagLoaderTest, BadCronPointsAtTheFieldInsideTheString) {
  // Column 14 is the "25" inside the quoted string.
  EXPECT_EQ(errors("dag: d\nschedule: \"0 25 * * *\"\ntasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:2:14: invalid cron expression '0 25 * * *': hour field (position 3): "
                   "25 is out of range 0-23"});
  EXPECT_EQ(errors("dag: d\nschedule: 0 3 * * MOX\ntasks:\n  a: {run: x}\n").at(0).substr(0, 13),
            "d.yaml:2:19: ");
}

TEST_F(DagLoaderTest, UnknownTimeZoneSuggestsTheClosestZone) {
  EXPECT_EQ(errors("dag: d\ntimezone: Europe/Moskow\ntasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:2:11: unknown time zone 'Europe/Moskow' (did you mean "
                   "'Europe/Moscow'?)"});
}

TEST_F(DagLoaderTest, BadDurationIsAnError) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    run: x\n    timeout: 2x\n"),
            Errors{"d.yaml:5:14: 'timeout' in task 'a': invalid duration '2x' (use a number and "
                   "a unit: ms, s, m, h, d; e.g. 30s, 1h30m)"});
}

TEST_F(DagLoaderTest, ParamDefaultBelowItsMinimumIsAnError) {
  EXPECT_EQ(errors("dag: d\nparams:\n  window_days: {type: int, default: 0, min: 1}\n"
                   "tasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:3:37: default: param 'window_days': 0 is below the minimum 1"});
}

TEST_F(DagLoaderTest, ParamDefaultAboveItsMaximumIsAnError) {
  EXPECT_EQ(errors("dag: d\nparams:\n  n: {type: float, default: 9.5, max: 9}\n"
                   "tasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:3:29: default: param 'n': 9.5 is above the maximum 9"});
}

TEST_F(DagLoaderTest, ParamDefaultOfTheWrongTypeIsAnError) {
  EXPECT_EQ(errors("dag: d\nparams:\n  n: {type: int, default: abc}\n"
                   "tasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:3:27: default: param 'n': expected int, got 'abc'"});
}

TEST_F(DagLoaderTest, ParamDefaultNotMatchingItsPatternIsAnError) {
  EXPECT_EQ(errors("dag: d\nparams:\n  m: {type: string, default: Bad, pattern: \"^[a-z]+$\"}\n"
                   "tasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:3:30: default: param 'm': 'Bad' does not match pattern '^[a-z]+$'"});
}

TEST_F(DagLoaderTest, ParamDefaultOutsideItsEnumIsAnError) {
  EXPECT_EQ(errors("dag: d\nparams:\n  m: {enum: [a, b], default: c}\n"
                   "tasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:3:30: default: param 'm': 'c' is not one of 'a', 'b'"});
}

TEST_F(DagLoaderTest, ParamWithAnUnknownTypeOrBadPatternIsAnError) {
  EXPECT_EQ(errors("dag: d\nparams:\n  m: {type: integer}\n  p: {pattern: \"([a-z\"}\n"
                   "tasks:\n  a: {run: x}\n"),
            (Errors{"d.yaml:3:13: param 'm': unknown type 'integer' (use string, int, float or "
                    "bool)",
                    "d.yaml:4:16: param 'p': invalid pattern '([a-z'"}));
}

TEST_F(DagLoaderTest, TemplateWithAnUnknownNameSuggestsAKnownOne) {
  EXPECT_EQ(errors("dag: d\nparams:\n  window_days: 14\n"
                   "tasks:\n  a:\n    run: echo {{ params.windw_days }}\n"),
            Errors{"d.yaml:6:15: unknown template name 'params.windw_days' in task 'a' (did you "
                   "mean 'params.window_days'?)"});
}

TEST_F(DagLoaderTest, TemplateNamingANonAncestorTaskIsAnError) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a: {run: x}\n  b:\n"
                   "    run: [cat, \"{{ inputs.a.path }}/f\"]\n"),
            Errors{"d.yaml:5:17: '{{ inputs.a.path }}' in task 'b' names task 'a', which is not "
                   "upstream of 'b' (add it to needs)"});
}

TEST_F(DagLoaderTest, TemplateOutputsOfAnUnknownTaskIsAnError) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  train: {run: x}\n  b:\n    needs: [train]\n"
                   "    run: x\n    env: {M: \"{{ outputs.trian.model }}\"}\n"),
            Errors{"d.yaml:7:15: '{{ outputs.trian.model }}' in task 'b' names unknown task "
                   "'trian' (did you mean 'train'?)"});
}

TEST_F(DagLoaderTest, TemplatesInWithAreCheckedRecursively) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    type: mock\n"
                   "    with: {values: {x: [\"{{ run.idd }}\"]}}\n"),
            Errors{"d.yaml:5:26: unknown template name 'run.idd' in task 'a' (did you mean "
                   "'run.id'?)"});
}

TEST_F(DagLoaderTest, UnterminatedTemplateIsAnError) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    run: echo {{ run.id }} {{ run.id\n"),
            Errors{"d.yaml:4:28: unterminated '{{' (no closing '}}') in task 'a'"});
}

TEST_F(DagLoaderTest, TemplatePositionBehindAnAnchorOrTagIsExact) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    run: &r !!str \"echo {{ nope }}\"\n"),
            Errors{"d.yaml:4:25: unknown template name 'nope' in task 'a'"});
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    run: &r |\n      echo {{ nope }}\n"),
            Errors{"d.yaml:5:12: unknown template name 'nope' in task 'a'"});
}

TEST_F(DagLoaderTest, TemplatePositionInsideABlockScalarIsExact) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    run: |\n      echo one\n      echo {{ nope }}\n"),
            Errors{"d.yaml:6:12: unknown template name 'nope' in task 'a'"});
}

TEST_F(DagLoaderTest, DuplicateTaskNameIsAnError) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a: {run: x}\n  b: {run: x}\n  a: {run: y}\n"),
            Errors{"d.yaml:5:3: duplicate task 'a' (first at line 3)"});
}

TEST_F(DagLoaderTest, DuplicateYamlKeyIsAnError) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    run: x\n    retries: 1\n    retries: 2\n"),
            Errors{"d.yaml:6:5: duplicate key 'retries' (first at line 5)"});
}

TEST_F(DagLoaderTest, WrongValueTypesAreErrors) {
  EXPECT_EQ(errors("dag: d\ncatchup: maybe\ntags: tag\ntasks:\n"
                   "  a: {run: x, retries: abc, needs: 5, with: [1], resources: {gpu: 1.5}}\n"),
            (Errors{"d.yaml:2:10: 'catchup' must be true or false, got 'maybe'",
                    "d.yaml:3:7: 'tags' must be a list of strings, got 'tag'",
                    "d.yaml:5:24: 'retries' in task 'a' must be an integer, got 'abc'",
                    "d.yaml:5:36: 'needs' in task 'a' must be a list of task names, got '5'",
                    "d.yaml:5:45: 'with' in task 'a' must be a mapping, got a list",
                    "d.yaml:5:67: 'gpu' in resources of task 'a' must be an integer, got '1.5'"}));
}

TEST_F(DagLoaderTest, RunListItemsMustBeScalars) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    run: [echo, [x]]\n"),
            Errors{"d.yaml:4:17: 'run' in task 'a' must hold strings, got a list"});
}

TEST_F(DagLoaderTest, NegativeRetriesIsAnError) {
  EXPECT_EQ(errors("dag: d\ndefaults: {retries: -1}\ntasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:2:21: 'retries' in defaults must be 0 or more, got -1"});
}

TEST_F(DagLoaderTest, MaxActiveRunsBelowOneIsAnError) {
  EXPECT_EQ(errors("dag: d\nmax_active_runs: 0\ntasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:2:18: 'max_active_runs' must be at least 1, got 0"});
}

TEST_F(DagLoaderTest, DagIdOutsideItsAlphabetIsAnError) {
  EXPECT_EQ(errors("dag: Weekly-Retrain\ntasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:1:6: invalid dag id 'Weekly-Retrain' (use only a-z, 0-9 and _)"});
}

TEST_F(DagLoaderTest, TaskIdOutsideItsAlphabetIsAnError) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  make-data: {run: x}\n"),
            Errors{"d.yaml:3:3: invalid task id 'make-data' (use only A-Z, a-z, 0-9 and _)"});
}

TEST_F(DagLoaderTest, MissingDagIdIsAnError) {
  EXPECT_EQ(errors("tasks:\n  a: {run: x}\n"), Errors{"d.yaml:1:1: missing required key 'dag'"});
}

TEST_F(DagLoaderTest, DagWithNoTasksIsAnError) {
  EXPECT_EQ(errors("dag: d\ntasks: {}\n"), Errors{"d.yaml:2:1: DAG has no tasks"});
  EXPECT_EQ(errors("dag: d\n"), Errors{"d.yaml:1:1: DAG has no tasks"});
}

TEST_F(DagLoaderTest, UnknownTaskTypeSuggestsARegisteredOne) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    type: comand\n    run: x\n"),
            Errors{"d.yaml:4:11: unknown task type 'comand' in task 'a' (did you mean "
                   "'command'?)"});
}

TEST_F(DagLoaderTest, CommandTaskWithoutRunIsAnError) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    retries: 1\n"),
            Errors{"d.yaml:3:3: task 'a' (type 'command') needs 'run'"});
}

TEST_F(DagLoaderTest, RunOnATypeThatRefusesItIsAnError) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    type: mock\n    run: echo\n"),
            Errors{"d.yaml:5:10: task 'a' (type 'mock') does not take 'run'"});
}

TEST_F(DagLoaderTest, TypeValidationErrorsPointAtTheirWithKey) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    type: mock\n    with:\n      sleep_ms: 1\n"
                   "      sleeps: 2\n"),
            Errors{"d.yaml:7:7: task 'a': unknown key 'sleeps' in mock task"});
}

TEST_F(DagLoaderTest, OutputPathsMustStayInsideTheWorkDir) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a: {run: x, outputs: [ok, ../up, /abs]}\n"),
            (Errors{"d.yaml:3:29: output '../up' in task 'a' must be a relative path inside the "
                    "work dir",
                    "d.yaml:3:36: output '/abs' in task 'a' must be a relative path inside the "
                    "work dir"}));
}

TEST_F(DagLoaderTest, BadMemorySizeAndTriggerRuleAreErrors) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    run: x\n    resources: {memory: 16X}\n"
                   "    trigger_rule: all_sucess\n"),
            (Errors{"d.yaml:5:25: 'memory' in resources of task 'a': invalid size '16X' (use a "
                    "number and K, M, G or T, e.g. 16G)",
                    "d.yaml:6:19: unknown trigger_rule 'all_sucess' in task 'a' (did you mean "
                    "'all_success'?); use all_success, all_done, one_failed"}));
}

TEST_F(DagLoaderTest, EveryErrorOfAFileIsReportedInLineOrder) {
  Errors e = errors(
      "dag: Bad\ntimezone: Mars/Base\ntasks:\n"
      "  a: {run: x, retries: -2, needs: [zz]}\n"
      "  b: {run: x, timeout: 1y}\n");
  ASSERT_EQ(e.size(), 5u);
  EXPECT_EQ(e[0].substr(0, 11), "d.yaml:1:6:");
  EXPECT_EQ(e[1].substr(0, 12), "d.yaml:2:11:");
  EXPECT_EQ(e[2].substr(0, 12), "d.yaml:4:24:");
  EXPECT_EQ(e[3].substr(0, 12), "d.yaml:4:36:");
  EXPECT_EQ(e[4].substr(0, 12), "d.yaml:5:24:");
}

TEST_F(DagLoaderTest, YamlSyntaxErrorCarriesItsPosition) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a: {run: x\n"),
            Errors{"d.yaml:4:1: invalid YAML: end of map flow not found"});
}

TEST_F(DagLoaderTest, TopLevelThatIsNotAMappingIsAnError) {
  EXPECT_EQ(errors("- a\n- b\n"),
            Errors{"d.yaml:1:1: a DAG file must be a mapping of keys (dag:, tasks: ...), got a "
                   "list"});
}

TEST_F(DagLoaderTest, SecondYamlDocumentIsAnError) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  a: {run: x}\n---\ndag: e\n"),
            Errors{"d.yaml:4:1: a DAG file holds one YAML document; found another here"});
}

TEST_F(DagLoaderTest, WhatEndsTheFirstDocumentEarlyIsFound) {
  // The documents are counted only when the first might end before the text does: after a
  // document end marker, a directive, or a mapping indented under an anchor in column 0.
  EXPECT_EQ(errors("dag: d\ntasks:\n  a: {run: x}\n...\ndag: e\n"),
            Errors{"d.yaml:5:1: a DAG file holds one YAML document; found another here"});
  EXPECT_EQ(errors("dag: d\n%YAML 1.2\ntasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:3:1: a DAG file holds one YAML document; found another here"});
  EXPECT_EQ(errors("&r\n  dag: d\ntasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:3:1: a DAG file holds one YAML document; found another here"});
  EXPECT_EQ(errors("&r\ndag: d\ntasks:\n  a: {run: x}\n"), Errors{});
  EXPECT_EQ(errors("---\ndag: d\ntasks:\n  a: {run: x}\n"), Errors{});
}

TEST_F(DagLoaderTest, ATemplateInsideTheAuthorsQuotesInAShellStringIsAnError) {
  // Inside "...", 7 of 18 injection payloads ran: the value's quotes are literal there.
  const std::string head = "dag: d\nparams:\n  x: {type: string, default: hi}\ntasks:\n";
  EXPECT_EQ(errors(head + "  a: {run: 'printf %s \"{{ params.x }}\"'}\n"),
            Errors{"d.yaml:5:24: a template inside double quotes in a shell command: drover "
                   "quotes the value itself, and inside \"...\" the shell would still run $(...) "
                   "and `...` in it; drop the quotes around it (\"{{ ... }}\" -> {{ ... }})"});
  EXPECT_EQ(errors(head + "  a: {run: \"echo '{{ params.x }}'\"}\n"),
            Errors{"d.yaml:5:19: a template inside single quotes in a shell command: drover "
                   "quotes the value itself, and the value's own quotes would end yours; drop "
                   "the quotes around it ('{{ ... }}' -> {{ ... }})"});
  // Bare, escaped quotes, quotes that closed before it, an argv list: fine.
  EXPECT_EQ(errors(head + "  a: {run: 'echo \"x\" {{ params.x }} \\\"{{ params.x }}'}\n"),
            Errors{});
  EXPECT_EQ(errors(head + "  a: {run: [printf, '%s', \"{{ params.x }}\"]}\n"), Errors{});
}

TEST_F(DagLoaderTest, StrayTopLevelCommaIsAnErrorNotAHang) {
  // yaml-cpp 0.7's LoadAll loops forever on these (jbeder/yaml-cpp#1040).
  Errors e;
  EXPECT_LT(timed_ms(", x\n", &e), 2000);
  EXPECT_EQ(e, Errors{"d.yaml:1:1: invalid YAML: unexpected ','"});
  e.clear();
  EXPECT_LT(timed_ms("!a,b x\n", &e), 2000);
  EXPECT_EQ(e, Errors{"d.yaml:1:3: invalid YAML: unexpected ','"});
}

// ---- templates and what upstream types publish ------------------------------------------

TEST_F(DagLoaderTest, OutputOfACommandTaskIsALintError) {
  // The issue's case: a command publishes no values, so this could never be rendered.
  EXPECT_EQ(errors("dag: d\ntasks:\n  train: {run: x}\n  eval:\n    needs: [train]\n"
                   "    run: echo {{ outputs.train.auc }}\n"),
            Errors{"d.yaml:6:15: '{{ outputs.train.auc }}' in task 'eval': task 'train' (type "
                   "'command') publishes no value 'auc' (it publishes none; list the keys it "
                   "writes to DROVER_VALUES_FILE under its 'values')"});
}

TEST_F(DagLoaderTest, ATaskPublishesTheValuesItListsAndOnlyThose) {
  const char* head =
      "dag: d\ntasks:\n  eval: {run: x, values: [auc, model.name]}\n  use:\n"
      "    needs: [eval]\n";
  EXPECT_EQ(errors(std::string(head) + "    run: echo {{ outputs.eval.auc }} "
                                       "{{ outputs.eval.model.name }}\n"),
            Errors{});
  EXPECT_EQ(errors(std::string(head) + "    run: echo {{ outputs.eval.acu }}\n"),
            Errors{"d.yaml:6:15: '{{ outputs.eval.acu }}' in task 'use': task 'eval' (type "
                   "'command') publishes no value 'acu' (did you mean 'auc'?)"});
  EXPECT_EQ(errors("dag: d\ntasks:\n  eval: {run: x, values: [auc, 9lives, a b]}\n"),
            (Errors{"d.yaml:3:32: value '9lives' in task 'eval' must be a name of letters, "
                    "digits, '_', '-' and '.', starting with a letter or '_'",
                    "d.yaml:3:40: value 'a b' in task 'eval' must be a name of letters, digits, "
                    "'_', '-' and '.', starting with a letter or '_'"}));
  EXPECT_EQ(errors("dag: d\ntasks:\n  eval: {run: x, values: auc}\n"),
            Errors{"d.yaml:3:26: 'values' in task 'eval' must be a list of strings, got 'auc'"});
}

TEST_F(DagLoaderTest, ATrainTaskNeedsItsModelArtifactsAndMetricsAndPublishesItsMetrics) {
  const char* ok =
      "dag: d\ntasks:\n  train:\n    type: train\n    run: python3 train.py\n"
      "    with: {model: clicks, artifacts: [model.pkl, vocab/], metrics: metrics.json}\n"
      "  use:\n    needs: [train]\n"
      "    run: echo {{ outputs.train.model }} {{ outputs.train.model_version }} "
      "{{ outputs.train.metrics.auc }}\n";
  EXPECT_EQ(errors(ok), Errors{});
  EXPECT_EQ(
      errors("dag: d\ntasks:\n  train:\n    type: train\n    run: x\n"
             "    with: {model: Clicks, artifacts: [/etc/passwd, ../up], metrics: m.json, "
             "keep: 1}\n"),
      (Errors{"d.yaml:6:11: task 'train': invalid model name 'Clicks': use [a-z0-9][a-z0-9_.-]*",
              "d.yaml:6:11: task 'train': artifact '/etc/passwd' must be a relative path "
              "inside the work dir",
              "d.yaml:6:11: task 'train': artifact '../up' must be a relative path inside "
              "the work dir",
              "d.yaml:6:77: task 'train': unknown key 'keep' in train task"}));
  EXPECT_EQ(errors("dag: d\ntasks:\n  train:\n    type: train\n    run: x\n"
                   "    with: {model: clicks}\n"),
            (Errors{"d.yaml:6:11: task 'train': train task needs 'artifacts'",
                    "d.yaml:6:11: task 'train': train task needs 'metrics'"}));
  EXPECT_EQ(errors("dag: d\ntasks:\n  train:\n    type: train\n"
                   "    with: {model: clicks, artifacts: [m], metrics: m.json}\n"),
            Errors{"d.yaml:3:3: task 'train' (type 'train') needs 'run'"});
}

// validate gates the version of the train upstream, promote moves an alias to the version
// of the validate upstream: each finds its one upstream of that type, or the one named.
TEST_F(DagLoaderTest, ValidateAndPromoteFindTheTaskTheyWorkOnUpstream) {
  const std::string train =
      "dag: d\ntasks:\n  train:\n    type: train\n    run: x\n"
      "    with: {model: clicks, artifacts: [m], metrics: m.json}\n";
  const std::string validate =
      "  validate:\n    type: validate\n    needs: [train]\n"
      "    with: {gates: [{metric: auc, min: 0.7}]}\n";
  EXPECT_EQ(errors(train + validate +
                   "  promote:\n    type: promote\n    needs: [validate]\n"
                   "    with: {alias: production}\n"
                   "  use:\n    needs: [promote]\n"
                   "    run: echo {{ outputs.validate.passed }} {{ outputs.promote.alias }} "
                   "{{ outputs.promote.previous_version }}\n"),
            Errors{});
  EXPECT_EQ(errors(train + "  validate:\n    type: validate\n"
                           "    with: {gates: [{metric: auc, min: 0.7}]}\n"),
            Errors{"d.yaml:9:11: task 'validate': no train task upstream of 'validate' (add "
                   "one to needs)"});
  EXPECT_EQ(errors(train +
                   "  other:\n    type: train\n    run: x\n"
                   "    with: {model: b, artifacts: [m], metrics: m.json}\n" +
                   "  validate:\n    type: validate\n    needs: [train, other]\n"
                   "    with: {gates: [{metric: auc, min: 0.7}]}\n"),
            Errors{"d.yaml:14:11: task 'validate': 2 train tasks upstream of 'validate' (train, "
                   "other): name one with 'candidate: TASK'"});
  EXPECT_EQ(errors(train + "  validate:\n    type: validate\n    needs: [train]\n"
                           "    with: {candidate: nope, gates: [{metric: auc, min: 0.7}]}\n"),
            Errors{"d.yaml:10:12: task 'validate': 'candidate' names 'nope', which is not a task "
                   "upstream of 'validate' (add it to needs)"});
  EXPECT_EQ(errors(train + validate +
                   "  promote:\n    type: promote\n    needs: [train]\n"
                   "    with: {alias: Prod!, validation: train}\n"),
            Errors{"d.yaml:14:12: task 'promote': 'alias' must be an alias name ([a-z0-9_-]+)"});
  EXPECT_EQ(errors(train + validate +
                   "  promote:\n    type: promote\n    needs: [train]\n"
                   "    with: {alias: prod, validation: train}\n"),
            Errors{"d.yaml:14:25: task 'promote': 'validation' names 'train', a train task, not a "
                   "validate task"});
  EXPECT_EQ(errors(train + "  validate:\n    type: validate\n    needs: [train]\n"
                           "    with: {gates: [{metric: auc}]}\n"),
            Errors{"d.yaml:10:12: task 'validate': gate 1: needs 'min' or 'max' (or 'vs')"});
}

// `uses: {model: REF}` is fixed text the registry can resolve when a run is created; the
// task reads the version's artifacts as {{ inputs.model.path }}, which no other task may.
TEST_F(DagLoaderTest, UsesNamesAModelByFixedReferenceReadAsInputsModel) {
  EXPECT_EQ(errors("dag: d\ntasks:\n  p:\n    uses: {model: clicks@production}\n"
                   "    run: cat {{ inputs.model.path }}/m.pkl\n"),
            Errors{});
  EXPECT_EQ(errors("dag: d\ntasks:\n  p:\n    uses: {model: clicks/3}\n    run: x\n"), Errors{});
  EXPECT_EQ(errors("dag: d\ntasks:\n  p:\n    run: cat {{ inputs.model.path }}\n"),
            Errors{"d.yaml:4:14: '{{ inputs.model.path }}' in task 'p' names unknown task "
                   "'model'"});
  EXPECT_EQ(
      errors("dag: d\nparams:\n  a: {type: string, default: production}\ntasks:\n  p:\n"
             "    uses: {model: \"clicks@{{ params.a }}\", data: x}\n    run: x\n"),
      (Errors{"d.yaml:6:19: 'uses: model' in task 'p' is fixed text (NAME@ALIAS, NAME/V or "
              "NAME): it is pinned when a run is created, before any template could be "
              "rendered",
              "d.yaml:6:44: unknown key 'data' in 'uses' in task 'p' (it takes model: REF)"}));
  EXPECT_EQ(errors("dag: d\ntasks:\n  p:\n    uses: {model: Clicks@prod}\n    run: x\n"),
            Errors{"d.yaml:4:19: 'uses: model' in task 'p': model 'Clicks@prod': a model name is "
                   "[a-z0-9][a-z0-9_.-]* (NAME, NAME/VERSION or NAME@ALIAS)"});
  EXPECT_EQ(errors("dag: d\ntasks:\n  p:\n    uses: clicks@production\n    run: x\n"),
            Errors{"d.yaml:4:11: 'uses' in task 'p' must be a mapping {model: NAME@ALIAS}, got "
                   "'clicks@production'"});
}

TEST_F(DagLoaderTest, OutputKeysAreCheckedAgainstTheUpstreamTypeWithASuggestion) {
  const char* head =
      "dag: d\ntasks:\n  snap: {type: snapshot, with: {path: data, dataset: ev}}\n"
      "  drift: {type: drift, with: {reference: a.csv, current: b.csv}}\n"
      "  m: {type: mock, with: {values: {auc: 1, day: x}}}\n"
      "  use:\n    needs: [snap, drift, m]\n";
  EXPECT_EQ(errors(std::string(head) + "    run: echo {{ outputs.snap.versoin }}\n"),
            Errors{"d.yaml:8:15: '{{ outputs.snap.versoin }}' in task 'use': task 'snap' (type "
                   "'snapshot') publishes no value 'versoin' (did you mean 'version'?)"});
  EXPECT_EQ(errors(std::string(head) + "    run: echo {{ outputs.drift.score }}\n"),
            Errors{"d.yaml:8:15: '{{ outputs.drift.score }}' in task 'use': task 'drift' (type "
                   "'drift') publishes no value 'score' (it publishes drift, drifted)"});
  EXPECT_EQ(errors(std::string(head) + "    run: [echo, \"{{ outputs.m.acu }}\"]\n"),
            Errors{"d.yaml:8:18: '{{ outputs.m.acu }}' in task 'use': task 'm' (type 'mock') "
                   "publishes no value 'acu' (did you mean 'auc'?)"});
  // What each type publishes is accepted.
  EXPECT_TRUE(load(std::string(head) +
                   "    run: echo {{ outputs.snap.version }} {{ outputs.snap.dataset }} "
                   "{{ outputs.drift.drifted }} {{ outputs.drift.drift }} {{ outputs.m.auc }} "
                   "{{ outputs.m.day }}\n"));
}

TEST_F(DagLoaderTest, PrefixKeysLikeMetricsStarMatchEveryNameUnderThem) {
  const char* head = "dag: d\ntasks:\n  t: {type: train_like}\n  use:\n    needs: [t]\n";
  EXPECT_TRUE(load(std::string(head) +
                   "    run: echo {{ outputs.t.model }} {{ outputs.t.metrics.auc }} "
                   "{{ outputs.t.metrics.val.loss }}\n"));
  EXPECT_EQ(errors(std::string(head) + "    run: echo {{ outputs.t.metrics }}\n"),
            Errors{"d.yaml:6:15: '{{ outputs.t.metrics }}' in task 'use': task 't' (type "
                   "'train_like') publishes no value 'metrics' (did you mean 'metrics.*'?)"});
  EXPECT_EQ(errors(std::string(head) + "    run: echo {{ outputs.t.loss }}\n"),
            Errors{"d.yaml:6:15: '{{ outputs.t.loss }}' in task 'use': task 't' (type "
                   "'train_like') publishes no value 'loss' (it publishes model, model_version, "
                   "metrics.*)"});
  EXPECT_EQ(errors(std::string(head) + "    run: echo {{ outputs.t.modle }}\n"),
            Errors{"d.yaml:6:15: '{{ outputs.t.modle }}' in task 'use': task 't' (type "
                   "'train_like') publishes no value 'modle' (did you mean 'model'?)"});
}

TEST_F(DagLoaderTest, OutputsInDefaultsAreCheckedToo) {
  EXPECT_EQ(errors("dag: d\ndefaults:\n  env: {V: \"{{ outputs.a.x }}\"}\n"
                   "tasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:3:13: '{{ outputs.a.x }}' in defaults: task 'a' (type 'command') "
                   "publishes no value 'x' (it publishes none; list the keys it writes to "
                   "DROVER_VALUES_FILE under its 'values')"});
}

// ---- YAML read as the 1.2 spec says (yaml-cpp 0.7 departs in places) ----------------------

TEST_F(DagLoaderTest, DoubleQuotedEscapesDecodeToUtf8) {
  // yaml-cpp 0.7 makes "\_" and "\N" single Latin-1 bytes (0xa0, 0x85): invalid UTF-8 that
  // later aborted `drover run` in the JSON encoder. They are U+00A0 and U+0085.
  DagPtr dag = load(
      "dag: d\ndescription: \"x\\_y\"\nowner: \"\\N\"\n"
      "tags: [\"\\L\\P\", \"\\x41\\u00e9\\U0001F600\\e\\/\\ \\t|\"]\n"
      "tasks:\n  a: {run: \"echo \\_\"}\n");
  ASSERT_TRUE(dag);
  EXPECT_EQ(dag->description, "x\xc2\xa0y");
  EXPECT_EQ(dag->owner, "\xc2\x85");
  EXPECT_EQ(dag->tags, (std::vector<std::string>{"\xe2\x80\xa8\xe2\x80\xa9",
                                                 "A\xc3\xa9\xf0\x9f\x98\x80\x1b/ \t|"}));
  EXPECT_EQ(dag->tasks[0].run_shell, "echo \xc2\xa0");
  EXPECT_EQ(json(dag->description).dump(), "\"x\xc2\xa0y\"");  // encodable: no abort
}

TEST_F(DagLoaderTest, EscapesAreDecodedInKeysAnchorsAndAliasesToo) {
  DagPtr dag = load(
      "dag: d\ndescription: &a \"x\\_y\"\nowner: *a\ntasks:\n"
      "  a:\n    type: mock\n    with: {values: {\"k\\_\": !!str \"v\\N\"}}\n");
  ASSERT_TRUE(dag);
  EXPECT_EQ(dag->description, "x\xc2\xa0y");
  EXPECT_EQ(dag->owner, "x\xc2\xa0y");
  EXPECT_EQ(dag->tasks[0].with.dump(), "{\"values\":{\"k\xc2\xa0\":\"v\xc2\x85\"}}");
  // An empty tagged value followed by a quoted key: each keeps its own text.
  dag = load("dag: d\ndescription: !!str\n\"owner\": \"o\\_\"\ntasks:\n  a: {run: x}\n");
  ASSERT_TRUE(dag);
  EXPECT_EQ(dag->description, "");
  EXPECT_EQ(dag->owner, "o\xc2\xa0");
}

TEST_F(DagLoaderTest, DoubleQuotedLineFoldingFollowsTheSpec) {
  auto description = [&](std::string_view quoted) {
    DagPtr dag = load("dag: d\ndescription: " + std::string(quoted) + "\ntasks:\n  a: {run: x}\n");
    return dag ? dag->description : std::string("(no dag)");
  };
  EXPECT_EQ(description("\"one\n  two\n\n  three  \n\n\n  four\""), "one two\nthree\n\nfour");
  EXPECT_EQ(description("\"one \\\n  two\""), "one two");  // escaped break: no space
  EXPECT_EQ(description("\"one\\\n\n  two\""), "one\ntwo");
  EXPECT_EQ(description("\"  lead and trail  \""), "  lead and trail  ");
  EXPECT_EQ(description("\"tab\\t\n  next\""), "tab\t next");  // an escaped tab stays
  EXPECT_EQ(description("\"crlf\r\n  next\""), "crlf next");
  // YAML 1.2 example 7.5.
  EXPECT_EQ(
      description("\"folded \nto a space,\t\n \nto a line feed, or \t\\\n \\ \tnon-content\""),
      "folded to a space,\nto a line feed, or \t \tnon-content");
}

// The loader re-reads double-quoted scalars from the source; apart from "\_" and "\N" it
// must read them exactly as yaml-cpp does. Random strings of folds, escaped breaks, tabs
// and escapes; prints its seed (DROVER_TEST_SEED=N replays it).
TEST_F(DagLoaderTest, DoubleQuotedDecodingAgreesWithYamlCppOnRandomStrings) {
  const char* env = std::getenv("DROVER_TEST_SEED");
  const unsigned seed = env ? static_cast<unsigned>(std::stoul(env)) : std::random_device{}();
  SCOPED_TRACE("DROVER_TEST_SEED=" + std::to_string(seed));
  std::mt19937 rng(seed);
  const char* pieces[] = {"a",        "b c",    " ",       "\t",      "\\t",     "\n",
                          "\\n",      "\\\\",   "\\\"",    "\\x41",   "\\u00e9", "\\U0001F600",
                          "\\ ",      "\n  ",   "\n\n  ",  "  \n   ", "\\\n  ",  "\\\n\n ",
                          "\xc3\xa9", "\r\n  ", "\t\n \t", "\\e\\/",  "\\\t"};
  for (int i = 0; i < 300; ++i) {
    std::string body;
    const int n = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < n; ++k) body += pieces[rng() % std::size(pieces)];
    const std::string text = "dag: d\ndescription: \"" + body + "\"\ntasks:\n  a: {run: x}\n";
    std::string want;
    try {
      want = YAML::Load(text)["description"].Scalar();
    } catch (const std::exception&) {
      continue;  // not valid YAML; the loader reports it
    }
    LoadResult r = load_dag_text(text, "d.yaml");
    ASSERT_TRUE(r.dag) << text << (r.diagnostics.empty() ? "" : r.diagnostics[0].str());
    EXPECT_EQ(r.dag->description, want) << text;
  }
}

TEST_F(DagLoaderTest, EscapeOfASurrogateOrBeyondUnicodeIsAnError) {
  // yaml-cpp refuses these itself (at the end of the scalar); the message says why.
  EXPECT_EQ(errors("dag: d\ndescription: \"a\\ud800b\"\ntasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:2:22: invalid YAML: an escape names U+D800, which is not a character "
                   "(a UTF-16 surrogate)"});
  EXPECT_EQ(
      errors("dag: d\ntasks:\n  a:\n    type: mock\n    with: {values: {\"\\U00110000\": 1}}\n"),
      Errors{"d.yaml:5:32: invalid YAML: an escape names U+110000, which is not a character "
             "(above U+10FFFF)"});
}

TEST_F(DagLoaderTest, FoldedBlockWithKeepChompingKeepsEveryTrailingBreak) {
  auto description = [&](std::string_view block) {
    DagPtr dag = load("dag: d\ndescription: " + std::string(block) + "tasks:\n  a: {run: x}\n");
    return dag ? dag->description : std::string("(no dag)");
  };
  EXPECT_EQ(description(">+\n  one\n  two\n\n"), "one two\n\n");
  EXPECT_EQ(description(">+\n  one\n\n  two\n\n\n"), "one\ntwo\n\n\n");
  EXPECT_EQ(description(">+ # comment\n  one\n\n# a comment ends it\n"), "one\n\n");
  EXPECT_EQ(description(">+\n\n  one\n\n"), "\none\n\n");
  EXPECT_EQ(description(">2+\n   one\n  two\n\n"), " one\ntwo\n\n");
  EXPECT_EQ(description(">+\n  one\n  \n   \n"), "one\n\n \n");  // 3 spaces: a text line
  // The rest as before: literal keep, clip and strip.
  EXPECT_EQ(description("|+\n  one\n  two\n\n"), "one\ntwo\n\n");
  EXPECT_EQ(description(">\n  one\n  two\n\n"), "one two\n");
  EXPECT_EQ(description(">-\n  one\n  two\n\n"), "one two");
  EXPECT_EQ(description("\"q\"\n"), "q");
  // In a sequence, and behind an anchor (yaml-cpp 0.7 cannot parse an anchored block scalar
  // in a block sequence at all).
  DagPtr dag = load("dag: d\ntags:\n  - >+\n    one\n\n  - b\ntasks:\n  a: {run: x}\n");
  ASSERT_TRUE(dag);
  EXPECT_EQ(dag->tags, (std::vector<std::string>{"one\n\n", "b"}));
  dag = load("dag: d\ndescription: &t >+\n  one\n\nowner: *t\ntasks:\n  a: {run: x}\n");
  ASSERT_TRUE(dag);
  EXPECT_EQ(dag->description, "one\n\n");
  EXPECT_EQ(dag->owner, "one\n\n");
}

TEST_F(DagLoaderTest, HexAndOctalIntegersOfTheCoreSchema) {
  DagPtr dag = load(
      "dag: d\nparams:\n  a: {type: int, default: 0x1F}\n  b: 0o17\n"
      "  c: {type: string, default: 0x1F}\n  d: {type: int, default: 0xff, max: 0x100}\n"
      "tasks:\n  t: {run: x, retries: 0x10}\n");
  ASSERT_TRUE(dag);
  EXPECT_EQ(dag->param("a")->default_value, json(31));
  EXPECT_EQ(dag->param("b")->default_value, json(15));
  EXPECT_EQ(dag->param("b")->type, ParamSpec::Type::Int);
  EXPECT_EQ(dag->param("c")->default_value, json("0x1F"));  // a string param takes the text
  EXPECT_EQ(dag->param("d")->default_value, json(255));
  EXPECT_EQ(dag->tasks[0].retries, 16);
  // Only the core forms: 0X1F, 0o18 and 0x are strings (so not ints).
  EXPECT_EQ(errors("dag: d\ntasks:\n  t: {run: x, retries: 0X1F}\n"),
            Errors{"d.yaml:3:24: 'retries' in task 't' must be an integer, got '0X1F'"});
  EXPECT_EQ(errors("dag: d\ntasks:\n  t: {run: x, retries: 0o18}\n"),
            Errors{"d.yaml:3:24: 'retries' in task 't' must be an integer, got '0o18'"});
}

TEST_F(DagLoaderTest, HexAndOctalIntegersBeyond64BitsAreErrors) {
  EXPECT_EQ(
      errors(
          "dag: d\nparams:\n  a: {type: int, default: 0x8000000000000000}\n"
          "  b: 0o1000000000000000000000\ntasks:\n  t: {run: x, retries: 0x10000000000000000}\n"),
      (Errors{"d.yaml:3:27: integer '0x8000000000000000' is out of range (the largest is "
              "0x7fffffffffffffff)",
              "d.yaml:4:6: integer '0o1000000000000000000000' is out of range (the largest "
              "is 0o777777777777777777777)",
              "d.yaml:6:24: integer '0x10000000000000000' is out of range (the largest is "
              "0x7fffffffffffffff)"}));
}

TEST_F(DagLoaderTest, MergeKeysAreRefusedClearly) {
  const std::string why =
      "merge keys ('<<') are not supported (a YAML 1.1 feature, not in YAML 1.2): write the "
      "keys out, or put settings every task shares in 'defaults:'";
  EXPECT_EQ(errors("dag: d\ndescription: &base {retries: 2}\ntasks:\n  a:\n    <<: *base\n"
                   "    run: x\n  b:\n    type: mock\n    with: {<<: {sleep_ms: 1}}\n"),
            (Errors{"d.yaml:2:14: 'description' must be a string, got a mapping",
                    "d.yaml:5:5: " + why, "d.yaml:9:12: " + why}));
  // A quoted "<<" is an ordinary key.
  EXPECT_EQ(errors("dag: d\ntasks:\n  a:\n    \"<<\": 1\n    run: x\n"),
            Errors{"d.yaml:4:5: unknown key '<<' in task 'a'"});
}

// ---- hostile input ----------------------------------------------------------------------

TEST_F(DagLoaderTest, EmptyFileIsAnError) {
  EXPECT_EQ(errors(""), Errors{"d.yaml:1:1: empty DAG file"});
  EXPECT_EQ(errors("# only a comment\n\n"), Errors{"d.yaml:1:1: empty DAG file"});
}

TEST_F(DagLoaderTest, NonUtf8BytesAreRejectedWithTheirPosition) {
  EXPECT_EQ(errors("dag: d\ndescription: caf\xe9!\ntasks:\n  a: {run: x}\n"),
            Errors{"d.yaml:2:17: invalid UTF-8 byte 0xe9"});
  EXPECT_EQ(errors("dag: d\xed\xa0\x80\n"), Errors{"d.yaml:1:7: invalid UTF-8 byte 0xed"});
  // Valid multi-byte text is fine.
  EXPECT_TRUE(load("dag: d\ndescription: caf\xc3\xa9 \xe2\x9c\x93\ntasks:\n  a: {run: x}\n"));
}

TEST_F(DagLoaderTest, BinaryFileIsRejected) {
  std::string text = "dag: d\n";
  text += std::string(
      "\x7f"
      "ELF\0\0\0",
      7);
  EXPECT_EQ(errors(text), Errors{"d.yaml:2:1: control character 0x7f is not allowed"});
  EXPECT_EQ(errors(std::string("dag: d\0", 7)),
            Errors{"d.yaml:1:7: NUL byte (is this a binary file?)"});
}

TEST_F(DagLoaderTest, HugeFileIsRefused) {
  std::string text = "dag: d\n#" + std::string(kMaxDagFileBytes, 'x') + "\n";
  EXPECT_EQ(errors(text), Errors{"d.yaml:1:1: file is too large (1048585 bytes; the limit is "
                                 "1048576)"});
}

TEST_F(DagLoaderTest, BillionLaughsAliasBombFailsQuickly) {
  std::string text =
      "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    std::string prev(1, static_cast<char>(c - 1));
    text += std::string(1, c) + ": &" + c + " [*" + prev;
    for (int k = 0; k < 8; ++k) text += ",*" + prev;
    text += "]\n";
  }
  text += "dag: d\ntasks:\n  t:\n    type: mock\n    with: {values: {x: *i}}\n";
  Errors e;
  EXPECT_LT(timed_ms(text, &e), 2000);
  EXPECT_EQ(e, Errors{"d.yaml:1:1: too many YAML nodes (more than 100000 after expanding "
                      "aliases)"});
}

TEST_F(DagLoaderTest, SelfReferencingAliasFailsQuickly) {
  Errors e;
  EXPECT_LT(timed_ms("dag: d\nx: &a [*a]\ntasks:\n  a: {run: x}\n", &e), 2000);
  EXPECT_EQ(e, Errors{"d.yaml:1:1: nesting deeper than 64 levels (after expanding aliases)"});
}

TEST_F(DagLoaderTest, HundredThousandNestedBracketsFailQuickly) {
  Errors e;
  EXPECT_LT(timed_ms(std::string(100000, '['), &e), 2000);
  EXPECT_EQ(e, Errors{"d.yaml:1:64: nesting deeper than 64 levels"});
  e.clear();
  EXPECT_LT(timed_ms("dag: d\nx: " + std::string(100000, '{'), &e), 2000);
  EXPECT_EQ(e, Errors{"d.yaml:2:67: nesting deeper than 64 levels"});
}

TEST_F(DagLoaderTest, DeepBlockNestingFailsQuickly) {
  std::string text = "dag: d\n";
  for (int i = 0; i < 200; ++i) text += std::string(i, ' ') + "k:\n";
  Errors e;
  EXPECT_LT(timed_ms(text, &e), 2000);
  EXPECT_EQ(e, Errors{"d.yaml:66:65: nesting deeper than 64 levels"});
  e.clear();
  std::string dashes = "x:\n";
  for (int i = 0; i < 5000; ++i) dashes += "- ";
  dashes += "a\n";
  EXPECT_LT(timed_ms(dashes, &e), 2000);
  EXPECT_EQ(e, Errors{"d.yaml:2:1: nesting deeper than 64 levels"});
}

TEST_F(DagLoaderTest, BracketsInsideStringsAndBlockScalarsAreNotNesting) {
  std::string many(200, '[');
  DagPtr dag = load("dag: d\ndescription: '" + many + "'\ntasks:\n  a:\n    run: |\n      echo " +
                    many + "\n  b:\n    run: echo " + many + "\n");
  ASSERT_TRUE(dag);
  EXPECT_EQ(dag->task("b")->run_shell, "echo " + many);
}

// ---- limits (DagLimits): the defaults above, raised or lowered by an operator -------------

// An N-task chain t0 -> t1 -> ..., written as bench/gen_dags.py writes it (8 YAML nodes a
// task after the first).
std::string chain_dag(int tasks) {
  std::string text = "dag: chain\ntasks:\n  t0: {run: [true]}\n";
  for (int i = 1; i < tasks; ++i)
    text +=
        "  t" + std::to_string(i) + ": {run: [true], needs: [t" + std::to_string(i - 1) + "]}\n";
  return text;
}

TEST_F(DagLoaderTest, ARaisedFileLimitAcceptsAFileOverTheDefaultAndALoweredOneNamesItself) {
  std::string big = "dag: d\ntasks:\n  a: {run: x}\n#" + std::string(kMaxDagFileBytes, 'x') + "\n";
  EXPECT_EQ(errors(big), Errors{"d.yaml:1:1: file is too large (1048606 bytes; the limit is "
                                "1048576)"});
  LoadResult r = load_dag_text(big, "d.yaml", DagLimits{2 << 20, 100000});
  ASSERT_TRUE(r.dag);
  EXPECT_EQ(r.dag->content.size(), 1048606u);

  std::string small = "dag: d\ntasks:\n  a: {run: x}\n#" + std::string(1000, 'x') + "\n";
  EXPECT_TRUE(load(small));
  EXPECT_EQ(errors(small, DagLimits{1024, 100000}),
            Errors{"d.yaml:1:1: file is too large (1030 bytes; the limit is 1024)"});
}

TEST_F(DagLoaderTest, ALoweredNodeLimitRefusesADagOfMoreNodesNamingTheLimit) {
  const DagLimits low{kMaxDagFileBytes, 1000};
  EXPECT_TRUE(load_dag_text(chain_dag(100), "d.yaml", low).dag);  // 802 nodes
  std::string text = chain_dag(200);                              // 1602 nodes
  EXPECT_TRUE(load(text));
  EXPECT_EQ(errors(text, low),
            Errors{"d.yaml:1:1: too many YAML nodes (more than 1000 after expanding aliases)"});
}

TEST_F(DagLoaderTest, ARaisedNodeLimitLoadsMoreTasksThanTheDefaultAllows) {
  std::string text = chain_dag(15000);  // 120,002 nodes in 593 KB
  EXPECT_EQ(errors(text), Errors{"d.yaml:1:1: too many YAML nodes (more than 100000 after "
                                 "expanding aliases)"});
  LoadResult r = load_dag_text(text, "d.yaml", DagLimits{kMaxDagFileBytes, 200000});
  ASSERT_TRUE(r.dag);
  EXPECT_EQ(r.dag->tasks.size(), 15000u);
}

// ---- files ------------------------------------------------------------------------------

TEST_F(DagLoaderTest, FindDagFilesListsYamlRecursivelySorted) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("drover-dag-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "sub");
  fs::create_directories(dir / ".hidden");
  for (const char* f : {"b.yaml", "a.yml", "sub/c.yaml", "notes.txt", ".hidden/x.yaml"})
    std::ofstream(dir / f) << "dag: x\n";
  auto files = find_dag_files(dir);
  EXPECT_EQ(files, (std::vector<fs::path>{dir / "a.yml", dir / "b.yaml", dir / "sub/c.yaml"}));

  std::ofstream(dir / "ok.yaml") << "dag: ok\ntasks:\n  a: {run: x}\n";
  LoadResult r = load_dag_file(dir / "ok.yaml");
  ASSERT_TRUE(r.dag);
  EXPECT_EQ(r.dag->file, (dir / "ok.yaml").string());
  LoadResult missing = load_dag_file(dir / "missing.yaml");
  ASSERT_EQ(missing.diagnostics.size(), 1u);
  EXPECT_EQ(missing.diagnostics[0].line, 1);
  fs::remove_all(dir);
}

TEST_F(DagLoaderTest, LoadDagFileReadsUpToTheLimitItIsGiven) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("drover-dag-limits-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string text = "dag: d\ntasks:\n  a: {run: x}\n#" + std::string(kMaxDagFileBytes, 'x') + "\n";
  fs::path file = dir / "big.yaml";
  std::ofstream(file, std::ios::binary) << text;
  // Refused from its size, before it is read.
  EXPECT_EQ(
      messages(load_dag_file(file)),
      Errors{file.string() + ":1:1: file is too large (1048606 bytes; the limit is 1048576)"});
  LoadResult raised = load_dag_file(file, DagLimits{2 << 20, 100000});
  ASSERT_TRUE(raised.dag) << (raised.diagnostics.empty() ? "" : raised.diagnostics[0].str());
  EXPECT_EQ(raised.dag->content, text);
  // A limit of exactly the file's size is enough.
  EXPECT_TRUE(load_dag_file(file, DagLimits{text.size(), 100000}).dag);
  EXPECT_EQ(
      messages(load_dag_file(file, DagLimits{text.size() - 1, 100000})),
      Errors{file.string() + ":1:1: file is too large (1048606 bytes; the limit is 1048605)"});
  fs::remove_all(dir);
}

// A file that has grown since its size was taken is read on, but only to one byte past the
// limit. /proc files stat as 0 bytes; this one holds a line per mapping, well over 1 KiB.
TEST_F(DagLoaderTest, AFileLargerThanItsStatSizeIsReadOnlyToOneBytePastTheLimit) {
  EXPECT_EQ(messages(load_dag_file("/proc/self/maps", DagLimits{1024, 100000})),
            Errors{"/proc/self/maps:1:1: file is too large (1025 bytes; the limit is 1024)"});
}

// ---- params -----------------------------------------------------------------------------

class ParamTest : public DagLoaderTest {
 protected:
  void SetUp() override {
    dag_ = load(
        "dag: d\nparams:\n  window_days: {type: int, default: 14, min: 1, max: 90}\n"
        "  rate: {type: float, default: 0.5}\n  dry: {type: bool, default: false}\n"
        "  name: {type: string, pattern: \"^[a-z]+$\"}\ntasks:\n  a: {run: x}\n");
    ASSERT_TRUE(dag_);
  }
  DagPtr dag_;
};

TEST_F(ParamTest, ParseCliConvertsToTheDeclaredType) {
  EXPECT_EQ(*dag_->param("window_days")->parse_cli("7"), json(7));
  EXPECT_EQ(*dag_->param("rate")->parse_cli("2.5"), json(2.5));
  EXPECT_EQ(*dag_->param("dry")->parse_cli("true"), json(true));
  EXPECT_EQ(*dag_->param("name")->parse_cli("abc"), json("abc"));
}

TEST_F(ParamTest, ParseCliRejectsTextOfTheWrongType) {
  auto r = dag_->param("window_days")->parse_cli("7x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "param 'window_days': expected int, got '7x'");
  EXPECT_EQ(r.error().code, Errc::Invalid);
  EXPECT_EQ(dag_->param("dry")->parse_cli("yes").message(),
            "param 'dry': expected bool, got 'yes'");
  EXPECT_EQ(dag_->param("rate")->parse_cli("nan").message(),
            "param 'rate': expected float, got 'nan'");
  EXPECT_EQ(dag_->param("window_days")->parse_cli("91").message(),
            "param 'window_days': 91 is above the maximum 90");
  EXPECT_EQ(dag_->param("name")->parse_cli("$(touch /tmp/pwned); x").message(),
            "param 'name': '$(touch /tmp/pwned); x' does not match pattern '^[a-z]+$'");
}

TEST_F(ParamTest, TextThatIsNotUtf8IsRefusedWithoutBeingQuotedBack) {
  auto r = dag_->param("name")->parse_cli(
      "ab\xa0"
      "c");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "param 'name': value is not valid UTF-8 (byte 0xa0 at offset 2)");
  EXPECT_EQ(r.error().code, Errc::Invalid);
  EXPECT_EQ(dag_->param("window_days")->parse_cli("7\xff").message(),
            "param 'window_days': value is not valid UTF-8 (byte 0xff at offset 1)");
  EXPECT_EQ(dag_->param("name")->check(json("x\xc3")).message(),
            "param 'name': value is not valid UTF-8 (byte 0xc3 at offset 1)");
}

TEST_F(ParamTest, ControlCharactersOtherThanTabAndNewlineAreRefused) {
  // A NUL ended the argv string that ran while the record showed the whole value.
  auto r = dag_->resolve_params(json{{"name", std::string("ab\0rm", 5)}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(),
            "param 'name': value holds the control character U+0000 at offset 2 (only tab and "
            "newline are allowed)");
  EXPECT_EQ(r.error().code, Errc::Invalid);
  EXPECT_EQ(dag_->param("name")->parse_cli("a\x1b[2J").message(),
            "param 'name': value holds the control character U+001B at offset 1 (only tab and "
            "newline are allowed)");
  EXPECT_EQ(dag_->param("name")->check(json("x\x7f")).message(),
            "param 'name': value holds the control character U+007F at offset 1 (only tab and "
            "newline are allowed)");
}

TEST_F(ParamTest, ResolveParamsFillsDefaultsAndChecksGivenValues) {
  auto r = dag_->resolve_params(json{{"name", "abc"}, {"window_days", 30}});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(*r, json::parse(R"({"window_days": 30, "rate": 0.5, "dry": false, "name": "abc"})"));
}

TEST_F(ParamTest, ResolveParamsRejectsUnknownNamesWithASuggestion) {
  auto r = dag_->resolve_params(json{{"windw_days", 3}, {"name", "a"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::Invalid);
  EXPECT_EQ(r.message(), "unknown param 'windw_days' (did you mean 'window_days'?)");
}

TEST_F(ParamTest, ResolveParamsRejectsMissingRequiredAndBadValues) {
  auto missing = dag_->resolve_params(json::object());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::Invalid);
  EXPECT_EQ(missing.message(), "missing required param 'name' (string)");
  auto bad = dag_->resolve_params(json{{"name", "a"}, {"window_days", "7"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), "param 'window_days': expected int, got '7'");
}

}  // namespace
}  // namespace drover
