// The core's decisions about tries, alerts and time (scheduler/decide.hpp).
#include "scheduler/decide.hpp"

#include <gtest/gtest.h>

namespace drover::core {
namespace {

json good_result() {
  return {
      {"exit_code", 0},
      {"error", ""},
      {"outputs",
       {{{"path", "model.pkl"}, {"sha256", std::string(64, 'a')}, {"size", 3}, {"mode", 0644}}}},
      {"values", {{"auc", 0.91}}},
      {"metrics", {{{"name", "loss"}, {"value", 0.2}, {"step", 3}}}},
      {"alerts", {{{"kind", "drift"}, {"message", "psi 0.4"}, {"details", {{"f", 1}}}}}}};
}

TEST(ParseTryResult, ReadsEveryField) {
  auto r = parse_try_result(good_result());
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->exit_code, 0);
  ASSERT_EQ(r->outputs.size(), 1u);
  EXPECT_EQ(r->outputs[0].path, "model.pkl");
  EXPECT_EQ(r->outputs[0].size, 3u);
  EXPECT_EQ(r->values["auc"], 0.91);
  ASSERT_EQ(r->metrics.size(), 1u);
  EXPECT_EQ(r->metrics[0].step, 3);
  ASSERT_EQ(r->alerts.size(), 1u);
  EXPECT_EQ(r->alerts[0].kind, "drift");
}

// A task can write into its try's folder: a result.json of the wrong shape is an error
// naming the field, never an exception in the daemon.
TEST(ParseTryResult, RefusesEveryWrongShapeWithAMessage) {
  struct Case {
    const char* field;
    json value;
    const char* says;
  };
  std::vector<Case> cases = {
      {"exit_code", "0", "exit_code is not an integer"},
      {"error", 3, "error is not a string"},
      {"outputs", "x", "outputs is not a list"},
      {"outputs", json::array({{{"path", 1}}}), "an output is not"},
      {"outputs", json::array({{{"path", "a"}, {"sha256", "b"}, {"size", -1}}}),
       "an output is not"},
      {"values", json::array({1}), "values is not an object"},
      {"metrics", json::array({{{"name", "a"}, {"value", "high"}}}), "a metric is not"},
      {"metrics", json::array({{{"name", "a"}, {"value", 1}, {"step", 1.5}}}), "step"},
      {"alerts", json::array({7}), "an alert is not"},
      {"alerts", json::array({{{"kind", "drift"}, {"message", 1}}}), "message"},
  };
  for (auto& c : cases) {
    json j = good_result();
    j[c.field] = c.value;
    auto r = parse_try_result(j);
    ASSERT_FALSE(r.ok()) << c.field << " = " << c.value.dump();
    EXPECT_NE(r.message().find(c.says), std::string::npos) << r.message();
    EXPECT_EQ(r.error().code, Errc::Invalid);
  }
  EXPECT_FALSE(parse_try_result(json::array()).ok());
  EXPECT_EQ(parse_try_result(nullptr).message(), "no result");
}

TEST(TryOutcome, CancelAndTimeoutWinOverWhatTheTryReported) {
  TryResult ok;
  ok.exit_code = 0;
  TryExit e;
  e.result = &ok;
  e.exit_code = 0;
  EXPECT_EQ(try_outcome(e).state, TryState::Success);
  e.timed_out_after = std::chrono::hours(2);
  TryOutcome t = try_outcome(e);
  EXPECT_EQ(t.state, TryState::TimedOut);
  EXPECT_EQ(t.error, "timed out after 2h");
  e.cancelled = true;
  EXPECT_EQ(try_outcome(e).state, TryState::Cancelled);
  EXPECT_EQ(try_outcome(e).error, "cancelled");
}

TEST(TryOutcome, WithoutAResultFailedWhenItExitedElseLost) {
  TryExit e;
  e.signal = 9;
  EXPECT_EQ(try_outcome(e).state, TryState::Failed);
  EXPECT_EQ(try_outcome(e).error, "killed by signal 9");
  TryExit lost;
  EXPECT_EQ(try_outcome(lost).state, TryState::Lost);
  EXPECT_EQ(try_outcome(lost).error, "the try ended without a result");
  TryExit malformed;
  malformed.exit_code = 0;
  malformed.result_error = "result.json is malformed: values is not an object";
  EXPECT_EQ(try_outcome(malformed).state, TryState::Failed);
  EXPECT_EQ(try_outcome(malformed).error, malformed.result_error);
}

TEST(TryOutcome, TheResultsExitCodeAndErrorAreRecorded) {
  TryResult r;
  r.exit_code = 3;
  r.error = "declared output 'model.pkl' was not produced";
  TryExit e;
  e.exit_code = 3;
  e.result = &r;
  TryOutcome o = try_outcome(e);
  EXPECT_EQ(o.state, TryState::Failed);
  EXPECT_EQ(o.exit_code, 3);
  EXPECT_EQ(o.error, r.error);
}

TEST(TryEndAlerts, TheFinalFailureAlertsAndATypeCannotRaiseTheEnginesKinds) {
  TaskSpec spec;
  spec.id = "train";
  spec.retries = 2;
  TryRecord rec;
  rec.run_id = "r-1";
  rec.task = "train";
  rec.try_number = 3;
  rec.exit_code = 1;
  rec.error = "boom";
  TaskInstance failed{"r-1", "train", TaskState::Failed, 3, std::nullopt};
  TryResult res;
  res.alerts = {{"drift", "psi 0.4", json::object()},
                {"task_failed", "forged", json::object()},
                {"sla_miss", "forged", json::object()}};
  auto alerts = try_end_alerts(spec, &failed, rec, &res);
  ASSERT_EQ(alerts.size(), 2u);
  EXPECT_EQ(alerts[0].kind, "retries_exhausted");
  EXPECT_EQ(alerts[0].message, "task train failed after 3 tries: boom (exit 1)");
  EXPECT_EQ(alerts[1].kind, "drift");
  // A retry to come is no alert; nor is an end that changed nothing (a cancelled task).
  TaskInstance retry{"r-1", "train", TaskState::UpForRetry, 3, std::nullopt};
  EXPECT_EQ(try_end_alerts(spec, &retry, rec, nullptr).size(), 0u);
  EXPECT_EQ(try_end_alerts(spec, nullptr, rec, nullptr).size(), 0u);
}

TEST(Sla, TheDeadlineIsTheScheduledTimePlusTheSla) {
  DagSpec dag;
  RunRecord run;
  run.id = "r-1";
  run.created_at = TimePoint(std::chrono::hours(10));
  EXPECT_FALSE(sla_deadline(run, dag));
  dag.sla = std::chrono::hours(1);
  EXPECT_EQ(*sla_deadline(run, dag), TimePoint(std::chrono::hours(11)));
  run.interval_end = TimePoint(std::chrono::hours(8));
  EXPECT_EQ(*sla_deadline(run, dag), TimePoint(std::chrono::hours(9)));
  EXPECT_EQ(sla_alert(run, dag).kind, "sla_miss");
}

TEST(Admission, AQueuedRunWaitsForMaxActiveRuns) {
  EXPECT_TRUE(may_start(RunState::Running, 5, 1));
  EXPECT_TRUE(may_start(RunState::Queued, 0, 1));
  EXPECT_FALSE(may_start(RunState::Queued, 1, 1));
}

}  // namespace
}  // namespace drover::core
