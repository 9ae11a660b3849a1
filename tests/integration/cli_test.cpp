// End to end: the CLI's reading commands with the real binary — failures that read well
// (`runs show` and `drover run` print each failed try's error and the end of its log),
// `logs` without a daemon and for unknown runs, `dags show` param declarations, the
// client options shared by the daemon's clients, and the server config's DAG file limits as
// `lint` and `run` apply them.
#include <functional>

#include "scheduler/store.hpp"
#include "tests/integration/harness.hpp"

namespace drover::testing {
namespace {

class CliTest : public LocalFixture {
 protected:
  // `drover run FILE --json`, so stdout is the record and stderr what a person reads.
  ProcResult run(const fs::path& file) {
    return drover({"run", file.string(), "--home", home().string(), "--project-dir",
                   tmp.path().string(), "--json"});
  }
  static json record(const ProcResult& r) {
    json j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json() : j;
  }
  static std::string log_of(const json& rec, const std::string& task, int n) {
    for (auto& t : rec["tasks"])
      if (t["task"] == task && t["try"] == n) return t["log"].get<std::string>();
    return "";
  }
  ProcResult cli(std::vector<std::string> args) {
    args.push_back("--home");
    args.push_back(home().string());
    return drover(args);
  }
};

constexpr const char* kTwelveLines = R"(dag: twelve
tasks:
  bad: {run: 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line$i; done; exit 3'}
  after: {run: [true], needs: [bad]}
)";

std::string twelve_failure(const std::string& log) {
  std::string s =
      "Failed tries:\n  bad (try 1): exit code 3\n    log: " + log + " (last 10 lines)\n";
  for (int i = 3; i <= 12; ++i) s += "    | line" + std::to_string(i) + "\n";
  return s;
}

TEST_F(CliTest, RunsShowPrintsEachFailedTrysErrorAndTheLastTenLinesOfItsLog) {
  auto r = run(dag("twelve.yaml", kTwelveLines));
  ASSERT_EQ(r.code, 1) << r.out << r.err;
  json rec = record(r);
  std::string log = log_of(rec, "bad", 1);
  ASSERT_TRUE(fs::path(log).is_absolute()) << log;
  auto shown = cli({"runs", "show", rec["id"]});
  ASSERT_EQ(shown.code, 0) << shown.err;
  // The failure block ends the text.
  std::string want = "\n" + twelve_failure(log);
  ASSERT_GE(shown.out.size(), want.size()) << shown.out;
  EXPECT_EQ(shown.out.substr(shown.out.size() - want.size()), want) << shown.out;
  EXPECT_EQ(shown.out.find("line2\n"), std::string::npos) << shown.out;
}

TEST_F(CliTest, DroverRunEndsAFailedRunWithTheFailureSummaryOnStderr) {
  auto r = run(dag("twelve.yaml", kTwelveLines));
  ASSERT_EQ(r.code, 1) << r.out << r.err;
  json rec = record(r);
  ASSERT_TRUE(rec.is_object()) << "stdout must stay the JSON record: " << r.out;
  std::string want = "drover run: run twelve-1 failed\n" + twelve_failure(log_of(rec, "bad", 1));
  ASSERT_GE(r.err.size(), want.size()) << r.err;
  EXPECT_EQ(r.err.substr(r.err.size() - want.size()), want) << r.err;
  // Text mode: the record on stdout has no failure block; stderr has it.
  auto text = drover({"run", (tmp / "twelve.yaml").string(), "--home", home().string()});
  EXPECT_EQ(text.code, 1);
  EXPECT_EQ(text.out.find("Failed tries:"), std::string::npos) << text.out;
  EXPECT_NE(text.err.find("drover run: run twelve-2 failed\nFailed tries:\n  bad (try 1): "
                          "exit code 3\n"),
            std::string::npos)
      << text.err;
}

TEST_F(CliTest, ASuccessfulRunPrintsNoFailureSummary) {
  auto r = run(dag("ok.yaml", "dag: ok\ntasks:\n  a: {run: 'echo fine'}\n"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("Failed tries"), std::string::npos) << r.err;
  auto shown = cli({"runs", "show", "ok-1"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  EXPECT_EQ(shown.out.find("Failed tries"), std::string::npos) << shown.out;
}

TEST_F(CliTest, RunsShowListsWhatEachTryPublishedWithControlCharactersEscaped) {
  auto r = run(dag("pub.yaml", R"yaml(dag: pub
tasks:
  eval:
    run: |
      printf '{"step": 1, "name": "loss", "value": 0.9}\n{"step": 2, "name": "loss", "value": 0.41}\n{"name": "auc", "value": 0.91}\n' > "$DROVER_METRICS_FILE"
      printf '{"auc": 0.91, "note": "a\\u001b]0;pwned\\u0007b"}' > "$DROVER_VALUES_FILE"
      printf x > "$(printf 'f\033[2Jg')"
    values: [auc, note]
    outputs: ["."]
)yaml"));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto shown = cli({"runs", "show", "pub-1"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  EXPECT_NE(shown.out.find("\nValues and metrics:\n  eval (try 1)\n"
                           "    value  auc                            0.91\n"
                           "    value  note                           a\\x1b]0;pwned\\x07b\n"
                           "    metric loss                           0.41  (step 2, 2 points)\n"
                           "    metric auc                            0.91\n"),
            std::string::npos)
      << shown.out;
  EXPECT_NE(shown.out.find("f\\x1b[2Jg"), std::string::npos) << shown.out;
  EXPECT_EQ(shown.out.find('\x1b'), std::string::npos) << shown.out;
}

TEST_F(CliTest, RunsShowPrintsTheRunsOwnErrorWhenItHasOne) {
  auto r = run(dag("ok.yaml", "dag: ok\ntasks:\n  a: {run: 'echo fine'}\n"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(record(r)["error"], nullptr);
  auto plain = cli({"runs", "show", "ok-1"});
  EXPECT_EQ(plain.out.find("Error "), std::string::npos) << plain.out;
  {  // what recovery writes when it gives up on a run (scheduler/recovery.cpp)
    auto store = open_store("sqlite:" + (home() / "drover.db").string());
    ASSERT_TRUE(store.ok()) << store.message();
    auto run = (*store)->get_run("ok-1");
    ASSERT_TRUE(run.ok() && *run);
    RunRecord rec = **run;
    rec.state = RunState::Failed;
    rec.error = "recovered 3 times without progress; the runner may crash on it";
    ASSERT_TRUE((*store)->update_run(rec).ok());
  }
  auto shown = cli({"runs", "show", "ok-1"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  EXPECT_NE(shown.out.find("State        failed\n"
                           "Error        recovered 3 times without progress; the runner may "
                           "crash on it\n"),
            std::string::npos)
      << shown.out;
  auto js = cli({"runs", "show", "ok-1", "--json"});
  EXPECT_EQ(record(js)["error"], "recovered 3 times without progress; the runner may crash on it");
}

TEST_F(CliTest, FailureSummaryNamesAMissingDeclaredOutputAndATimeout) {
  auto r = run(dag("errs.yaml", R"(dag: errs
tasks:
  train: {run: 'echo training', outputs: [model.pkl]}
  hang: {run: 'echo waiting; sleep 30', timeout: 1s}
)"));
  ASSERT_EQ(r.code, 1) << r.out << r.err;
  json rec = record(r);
  EXPECT_NE(r.err.find("  train (try 1): declared output 'model.pkl' was not produced\n"
                       "    log: " +
                       log_of(rec, "train", 1) +
                       " (last 2 lines)\n"
                       "    | training\n"
                       "    | drover: declared output 'model.pkl' was not produced\n"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("  hang (try 1): timed out after 1s\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("    | waiting\n"), std::string::npos) << r.err;
}

TEST_F(CliTest, FailureSummarySaysWhenALogIsGone) {
  auto r = run(dag("twelve.yaml", kTwelveLines));
  ASSERT_EQ(r.code, 1);
  std::string log = log_of(record(r), "bad", 1);
  fs::remove(log);
  auto shown = cli({"runs", "show", "twelve-1"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  EXPECT_NE(shown.out.find("  bad (try 1): exit code 3\n    log: " + log +
                           " (cannot read it: " + log + ": No such file or directory)\n"),
            std::string::npos)
      << shown.out;
}

TEST_F(CliTest, LogsReadsTheStoreDirectlyWithoutADaemon) {
  auto r = run(dag("twelve.yaml", kTwelveLines));
  ASSERT_EQ(r.code, 1) << r.err;
  ASSERT_FALSE(fs::exists(home() / "server.json"));
  auto logs = cli({"logs", "twelve-1", "bad"});
  ASSERT_EQ(logs.code, 0) << logs.err;
  std::string all;
  for (int i = 1; i <= 12; ++i) all += "line" + std::to_string(i) + "\n";
  EXPECT_EQ(logs.out, all);
  auto first = cli({"logs", "twelve-1", "bad", "--try", "1", "--follow"});
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(first.out, all);
}

TEST_F(CliTest, LogsFollowsATaskOfADroverRunToItsEnd) {
  fs::path release = tmp / "release";
  auto f = dag("slow.yaml", "dag: slow\ntasks:\n  t:\n    run: 'echo first; while [ ! -e " +
                                release.string() + " ]; do sleep 0.05; done; echo second'\n");
  pid_t run = spawn({DROVER_BIN, "run", f.string(), "--home", home().string(), "-q"},
                    tmp / "run.out", tmp / "run.err");
  ASSERT_GT(run, 0);
  pid_t follow = -1;
  struct Cleanup {  // whatever failed, the task ends and nothing is left running
    std::function<void()> fn;
    ~Cleanup() { fn(); }
  } cleanup{[&] {
    if (!fs::exists(release)) write_text(release, "");
    for (pid_t p : {follow, run})
      if (p > 0 && ::waitpid(p, nullptr, WNOHANG) == 0) {
        ::kill(-p, SIGKILL);
        ::waitpid(p, nullptr, 0);
      }
  }};
  ASSERT_TRUE(wait_until([&] {
    return cli({"runs", "show", "slow-1", "--json"}).code == 0;
  })) << read_all(tmp / "run.err");
  follow = spawn({DROVER_BIN, "logs", "slow-1", "t", "--follow", "--home", home().string()},
                 tmp / "follow.out", tmp / "follow.err");
  ASSERT_GT(follow, 0);
  // It prints what is there while the task still runs, then the rest, and ends with it.
  EXPECT_TRUE(wait_until([&] { return read_all(tmp / "follow.out") == "first\n"; }))
      << read_all(tmp / "follow.out") << read_all(tmp / "follow.err");
  write_text(release, "");
  int status = -1;
  EXPECT_TRUE(wait_until([&] { return ::waitpid(follow, &status, WNOHANG) == follow; }));
  follow = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_all(tmp / "follow.err");
  EXPECT_EQ(read_all(tmp / "follow.out"), "first\nsecond\n");
  int run_status = -1;
  EXPECT_TRUE(wait_until([&] { return ::waitpid(run, &run_status, WNOHANG) == run; }));
  run = -1;
  EXPECT_TRUE(WIFEXITED(run_status) && WEXITSTATUS(run_status) == 0) << read_all(tmp / "run.err");
}

TEST_F(CliTest, LogsOfAnUnknownRunSaysTheRunDoesNotExist) {
  ASSERT_EQ(run(dag("twelve.yaml", kTwelveLines)).code, 1);
  auto r = cli({"logs", "nope-1", "bad"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "drover: run 'nope-1' does not exist\n");
  EXPECT_EQ(r.out, "");
  auto task = cli({"logs", "twelve-1", "nope"});
  EXPECT_EQ(task.code, 1);
  EXPECT_EQ(task.err, "drover: run 'twelve-1' has no task 'nope'\n");
  auto never = cli({"logs", "twelve-1", "after"});  // upstream failed: it never ran
  EXPECT_EQ(never.code, 1);
  EXPECT_EQ(never.err, "drover: no log for task 'after' of run 'twelve-1'\n");
  auto help = drover({"logs", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("1  no such run (\"run 'RUN' does not exist\")"), std::string::npos)
      << help.out;
}

TEST_F(CliTest, ServerOptionGoesToTheDaemonEvenWhenAStoreIsHere) {
  ASSERT_EQ(run(dag("twelve.yaml", kTwelveLines)).code, 1);
  for (auto cmd : {std::vector<std::string>{"runs", "ls"},
                   std::vector<std::string>{"logs", "twelve-1", "bad"}}) {
    cmd.insert(cmd.end(), {"--server", "http://127.0.0.1:1"});
    auto r = drover(cmd, {{"DROVER_TOKEN", "t"}});
    EXPECT_EQ(r.code, 1) << cmd[0];
    EXPECT_NE(r.err.find("drover: cannot reach the drover server at http://127.0.0.1:1"),
              std::string::npos)
        << r.err;
  }
}

// ---- the DAG file limits of the server config (`dags:`) ----------------------------------

// Two tasks and a comment that takes the file just over the 1 MiB default limit.
std::string big_dag() {
  return "dag: big\ntasks:\n  a: {run: [true]}\n  b: {run: [true], needs: [a]}\n#" +
         std::string(1 << 20, 'x') + "\n";
}

class DagLimitsCliTest : public CliTest {
 protected:
  // A server config at `p` (default TMP/config.yaml), mode 0600.
  fs::path config(const std::string& text, fs::path p = {}) {
    if (p.empty()) p = tmp / "config.yaml";
    write_text(p, text);
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);  // no mode warning
    return p;
  }
};

TEST_F(DagLimitsCliTest, ADagJustOverOneMebibyteIsRefusedByDefault) {
  fs::path file = dag("big.yaml", big_dag());
  const std::string refused =
      file.string() + ":1:1: file is too large (1048644 bytes; the limit is 1048576)\n";
  auto lint = drover({"lint", file.string(), "--home", home().string()});
  EXPECT_EQ(lint.code, 1);
  EXPECT_EQ(lint.out, refused);
  EXPECT_EQ(lint.err, "drover lint: 1 error in 1 of 1 file\n");
  auto r = run(file);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, refused);
  EXPECT_FALSE(fs::exists(home()));  // nothing was created
}

TEST_F(DagLimitsCliTest, RaisedLimitsLetLintAndRunAcceptItAndTheRunSucceeds) {
  fs::path file = dag("big.yaml", big_dag());
  fs::path cfg = config("dags:\n  max_file_bytes: 2097152\n");
  auto lint = drover({"lint", "--config", cfg.string(), file.string(), "--home", home().string()});
  EXPECT_EQ(lint.code, 0) << lint.out << lint.err;
  EXPECT_EQ(lint.out, "");
  EXPECT_EQ(lint.err, "drover lint: 1 file, all valid\n");
  auto r = drover({"run", file.string(), "--config", cfg.string(), "--home", home().string(),
                   "--project-dir", tmp.path().string(), "--json"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  json rec = record(r);
  EXPECT_EQ(rec["state"], "success") << r.out;
  EXPECT_EQ(rec["tasks"].size(), 2u) << r.out;
}

TEST_F(DagLimitsCliTest, LintFindsHomeConfigYamlAsRunDoes) {
  fs::path file = dag("big.yaml", big_dag());
  config("dags:\n  max_file_bytes: 2097152\n", home() / "config.yaml");
  auto lint = drover({"lint", file.string(), "--home", home().string()});
  EXPECT_EQ(lint.code, 0) << lint.out << lint.err;
  EXPECT_EQ(lint.err, "drover lint: 1 file, all valid\n");
}

TEST_F(DagLimitsCliTest, ALoweredNodeLimitRefusesABiggerDagNamingTheLimit) {
  std::string text = "dag: wide\ntasks:\n";
  for (int i = 0; i < 200; ++i) text += "  t" + std::to_string(i) + ": {run: [true]}\n";
  fs::path file = dag("wide.yaml", text);  // 1005 YAML nodes
  fs::path cfg = config("dags:\n  max_yaml_nodes: 1000\n");
  EXPECT_EQ(drover({"lint", file.string(), "--home", home().string()}).code, 0);
  auto lint = drover({"lint", "--config", cfg.string(), file.string()});
  EXPECT_EQ(lint.code, 1);
  EXPECT_EQ(lint.out,
            file.string() + ":1:1: too many YAML nodes (more than 1000 after expanding aliases)\n");
  auto r = drover({"run", file.string(), "--config", cfg.string(), "--home", home().string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            file.string() + ":1:1: too many YAML nodes (more than 1000 after expanding aliases)\n");
}

TEST_F(DagLimitsCliTest, AnInvalidLimitIsAConfigErrorWithItsPosition) {
  fs::path file = dag("ok.yaml", "dag: ok\ntasks:\n  a: {run: [true]}\n");
  fs::path cfg = config("dags:\n  max_file_bytes: 512\n");
  const std::string want =
      cfg.string() + ":2:19: dags: max_file_bytes: expected an integer from 1024 to 268435456\n";
  auto lint = drover({"lint", "--config", cfg.string(), file.string()});
  EXPECT_EQ(lint.code, 1);
  EXPECT_EQ(lint.out, "");
  EXPECT_EQ(lint.err, want);
  auto r = drover({"run", file.string(), "--config", cfg.string(), "--home", home().string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, want);
}

class CliDaemonTest : public CliTest {
 protected:
  std::unique_ptr<Daemon> daemon;
  void start(const std::string& name, const std::string& text) {
    fs::create_directories(tmp / "dags");
    write_text(tmp / "dags" / name, text);
    daemon = std::make_unique<Daemon>(
        home(), tmp / "dags", std::vector<std::string>{"--project-dir", tmp.path().string()});
    ASSERT_TRUE(daemon->start()) << "daemon did not start";
  }
  void TearDown() override {
    if (HasFailure() && daemon) std::fprintf(stderr, "daemon log:\n%s\n", daemon->log().c_str());
  }
};

TEST_F(CliDaemonTest, DagsShowPrintsIntBoundsAndEnumChoicesAsWritten) {
  start("params.yaml", R"(dag: params
params:
  window_days: {type: int, default: 14, min: 1, max: 90}
  k: {type: int, default: 2, enum: [1, 2, 3]}
  mode: {type: string, default: fast, enum: [fast, slow], description: how hard to try}
  lr: {type: float, default: 0.1, min: 0.001, max: 1.5}
  who: {type: string}
tasks:
  a: {run: [true]}
)");
  auto r = daemon->cli({"dags", "show", "params"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\nParams:\n"
                       "  k                    int, default 2, one of 1, 2, 3\n"
                       "  lr                   float, default 0.1, min 0.001, max 1.5\n"
                       "  mode                 string, default \"fast\", one of \"fast\", \"slow\""
                       " - how hard to try\n"
                       "  who                  string, required\n"
                       "  window_days          int, default 14, min 1, max 90\n"),
            std::string::npos)
      << r.out;
  auto j = json::parse(daemon->cli({"dags", "show", "params", "--json"}).out, nullptr, false);
  ASSERT_TRUE(j.is_object());
  EXPECT_TRUE(j["params"]["window_days"]["min"].is_number_integer()) << j["params"].dump();
  EXPECT_EQ(j["params"]["mode"]["enum"], (json{"fast", "slow"}));
}

TEST_F(CliDaemonTest, ThroughTheDaemonLogsAndRunsShowSayTheSame) {
  start("twelve.yaml", kTwelveLines);
  auto t = daemon->cli({"trigger", "twelve", "--wait"});
  ASSERT_EQ(t.code, 1) << t.out << t.err;
  auto shown = daemon->cli({"runs", "show", "twelve-1"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  json rec = daemon->run_record("twelve-1");
  EXPECT_NE(shown.out.find(twelve_failure(log_of(rec, "bad", 1))), std::string::npos) << shown.out;
  auto logs = daemon->cli({"logs", "twelve-1", "bad"});
  ASSERT_EQ(logs.code, 0) << logs.err;
  EXPECT_EQ(logs.out.substr(0, 6), "line1\n");
  auto unknown = daemon->cli({"logs", "nope-1", "bad"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_EQ(unknown.err, "drover: run 'nope-1' does not exist\n");
}

}  // namespace
}  // namespace drover::testing
