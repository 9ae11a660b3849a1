// End to end: how the Engine schedules, with the real binary (`drover serve` on port 0 and
// `drover run`): a run queued behind max_active_runs starts when the active one ends, with
// nothing else happening; a task that cannot be rendered fails its run at once. Waits are
// on the store's records with deadlines, never on sleeps.
#include "common/time.hpp"
#include "tests/integration/harness.hpp"

namespace drover::testing {
namespace {

class EngineE2ETest : public DaemonFixture {};

TimePoint time_of(const json& v) {
  EXPECT_TRUE(v.is_string()) << v.dump();
  auto t = parse_iso(v.is_string() ? v.get<std::string>() : "");
  EXPECT_TRUE(t.ok()) << v.dump();
  return t ? *t : TimePoint{};
}

// Issue 8: the queued run used to wait for an unrelated event (another trigger, a cron
// tick, a cancel) after the active run ended.
TEST_F(EngineE2ETest, ARunQueuedBehindMaxActiveRunsStartsWhenTheActiveRunEnds) {
  dag("one.yaml", R"(dag: one
max_active_runs: 1
tasks:
  work: {run: "sleep 0.4"}
)");
  start();
  std::string first = trigger({"one"});
  std::string second = trigger({"one"});
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  json r1, r2;
  // Nothing else happens meanwhile: no trigger, no schedule, no cancel, no API call that acts.
  ASSERT_TRUE(wait_until(
      [&] {
        r2 = daemon->run_record(second);
        return r2.value("state", "") == "success" || r2.value("state", "") == "failed";
      },
      std::chrono::seconds(30)))
      << "the queued run never finished; it is " << r2.value("state", "?");
  r1 = daemon->run_record(first);
  ASSERT_EQ(r1.value("state", ""), "success") << r1.dump(2);
  ASSERT_EQ(r2.value("state", ""), "success") << r2.dump(2);
  TimePoint first_end = time_of(r1["ended_at"]);
  TimePoint second_start = time_of(r2["started_at"]);
  // It was queued behind the first, not running beside it.
  EXPECT_GE(second_start, first_end);
  auto gap = std::chrono::duration_cast<std::chrono::microseconds>(second_start - first_end);
  std::printf("queued run started %.3f ms after the active run ended\n", gap.count() / 1000.0);
  EXPECT_LT(gap, std::chrono::milliseconds(100));
}

// Issue 8: a task whose templates cannot be rendered at run time (an upstream that did not
// publish the value) used to leave the run `running` for ever and `drover run` hanging.
TEST_F(EngineE2ETest, ATaskThatCannotBeRenderedFailsItsRunAtOnce) {
  fs::path file = tmp / "unrenderable.yaml";
  write_text(file, R"(dag: unrenderable
tasks:
  train: {type: mock, with: {values: {auc: 0.9}, exit_code: 3}}
  report:
    needs: [train]
    trigger_rule: all_done
    run: [echo, "{{ outputs.train.auc }}"]
  after: {run: [true], needs: [report]}
)");
  auto lint = drover({"lint", file.string()});
  ASSERT_EQ(lint.code, 0) << "this DAG must lint clean: " << lint.out << lint.err;
  auto started = std::chrono::steady_clock::now();
  auto r = drover({"run", file.string(), "--home", home().string(), "--project-dir",
                   tmp.path().string(), "--json"},
                  {}, std::chrono::seconds(60));
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(r.err.find("TIMED OUT"), std::string::npos) << "drover run hung: " << r.err;
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_LT(took, std::chrono::seconds(20));
  json rec = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(rec.is_discarded()) << r.out << r.err;
  EXPECT_EQ(rec["state"], "failed");
  std::string run_id = rec.value("id", "");
  ASSERT_FALSE(run_id.empty()) << rec.dump(2);
  auto show = drover({"runs", "show", run_id, "--json", "--home", home().string()});
  ASSERT_EQ(show.code, 0) << show.err;
  json shown = json::parse(show.out, nullptr, false);
  ASSERT_FALSE(shown.is_discarded()) << show.out;
  json report_try;
  for (auto& t : shown["tasks"])
    if (t["task"] == "report") report_try = t;
  ASSERT_TRUE(report_try.is_object()) << shown.dump(2);
  EXPECT_EQ(report_try["state"], "failed");
  ASSERT_TRUE(report_try["error"].is_string()) << report_try.dump(2);
  EXPECT_NE(report_try["error"].get<std::string>().find("outputs.train.auc"), std::string::npos)
      << report_try["error"];
  EXPECT_EQ(shown["task_states"]["after"], "upstream_failed") << shown["task_states"].dump();
  // The text form names the message too.
  auto text = drover({"runs", "show", run_id, "--home", home().string()});
  EXPECT_NE(text.out.find("outputs.train.auc"), std::string::npos) << text.out;
}

// The issue's own case: `{{ outputs.train.auc }}` on a `command` upstream. Lint may refuse
// it (it can know a command publishes nothing); if it lets it through, the run must fail
// at once with the message, never hang.
TEST_F(EngineE2ETest, AnOutputACommandNeverPublishesFailsOrIsRefusedNeverHangs) {
  fs::path file = tmp / "command_output.yaml";
  write_text(file, R"(dag: command_output
tasks:
  train: {run: [true]}
  use: {run: [echo, "{{ outputs.train.auc }}"], needs: [train]}
)");
  auto r = drover({"run", file.string(), "--home", home().string(), "--project-dir",
                   tmp.path().string(), "--json"},
                  {}, std::chrono::seconds(60));
  ASSERT_EQ(r.err.find("TIMED OUT"), std::string::npos) << "drover run hung: " << r.err;
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE((r.out + r.err).find("outputs.train.auc"), std::string::npos) << r.out << r.err;
}

// Try folders and log paths in the records are absolute, also with a relative --home.
TEST_F(EngineE2ETest, TryRecordsHoldAbsolutePathsWithARelativeHome) {
  write_text(tmp / "rel.yaml", "dag: rel\ntasks:\n  a: {run: [true]}\n");
  fs::path cwd = fs::current_path();
  fs::current_path(tmp.path());
  auto r = drover({"run", "rel.yaml", "--home", "relhome", "--json"});
  fs::current_path(cwd);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  json rec = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(rec.is_discarded()) << r.out;
  ASSERT_EQ(rec["tasks"].size(), 1u);
  std::string log = rec["tasks"][0].value("log", "");
  EXPECT_EQ(log, (tmp.path() / "relhome" / "runs" / rec.value("id", "") / "a.1" / "log").string());
  EXPECT_TRUE(fs::path(log).is_absolute()) << log;
  EXPECT_TRUE(fs::exists(log)) << log;
}

}  // namespace
}  // namespace drover::testing
