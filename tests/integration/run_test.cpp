// End to end: `drover run FILE` with the real binary, real worker processes, real store.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstring>

#include "common/sha256.hpp"
#include "common/time.hpp"
#include "tests/integration/harness.hpp"

namespace drover::testing {
namespace {

class RunTest : public LocalFixture {
 protected:
  static json record(const ProcResult& r) {
    json j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json() : j;
  }
};

TEST_F(RunTest, OutputsFlowDownstreamAndAreRecordedWithHashes) {
  auto f = dag("flow.yaml", R"(dag: flow
params:
  n: {type: int, default: 3}
tasks:
  make:
    run: "mkdir -p out && echo {{ params.n }} > out/n.txt"
    outputs: [out]
  use:
    needs: [make]
    run: [sh, -c, 'cat "$1"/out/n.txt > got.txt', sh, "{{ inputs.make.path }}"]
    outputs: [got.txt]
)");
  auto r = run(f, {"-p", "n=7"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  json rec = record(r);
  EXPECT_EQ(rec["state"], "success");
  EXPECT_EQ(rec["params"]["n"], 7);
  EXPECT_EQ(rec["trigger"]["kind"], "manual");
  EXPECT_EQ(rec["dag_hash"], sha256_hex(read_all(f)));
  json make = try_of(rec, "make", 1);
  ASSERT_EQ(make["outputs"].size(), 1u);
  EXPECT_EQ(make["outputs"][0]["path"], "out/n.txt");
  EXPECT_EQ(make["outputs"][0]["size"], 2);
  EXPECT_EQ(make["outputs"][0]["sha256"], sha256_hex("7\n"));
  json use = try_of(rec, "use", 1);
  ASSERT_EQ(use["inputs"].size(), 1u);
  EXPECT_EQ(use["inputs"][0]["sha256"], sha256_hex("7\n"));
  EXPECT_EQ(use["outputs"][0]["sha256"], sha256_hex("7\n"));
  EXPECT_EQ(use["exit_code"], 0);
  EXPECT_TRUE(use["started_at"].is_string());
  EXPECT_TRUE(fs::exists(use["log"].get<std::string>()));
}

// A command publishes values and metrics through files: the values become
// {{ outputs.TASK.KEY }} downstream and the metrics are recorded with its try, as a type's own.
TEST_F(RunTest, ACommandPublishesValuesAndMetricsThroughItsFiles) {
  auto f = dag("eval.yaml", R"(dag: eval
tasks:
  evaluate:
    run: |
      printf '{"step": 1, "name": "loss", "value": 0.9}\n{"step": 2, "name": "loss", "value": 0.41}\n' >> "$DROVER_METRICS_FILE"
      echo '{"name": "auc", "value": 0.91}' >> "$DROVER_METRICS_FILE"
      echo '{"auc": 0.91, "model.name": "clicks", "ok": true}' > "$DROVER_VALUES_FILE"
    values: [auc, model.name, ok]
  report:
    needs: [evaluate]
    run: echo {{ outputs.evaluate.auc }} {{ outputs.evaluate.model.name }} {{ outputs.evaluate.ok }} > got.txt
    outputs: [got.txt]
)");
  auto r = run(f);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  json rec = record(r);
  json report = try_of(rec, "report", 1);
  ASSERT_EQ(report["outputs"].size(), 1u) << rec.dump(2);
  EXPECT_EQ(report["outputs"][0]["sha256"], sha256_hex("0.91 clicks true\n"));
  json evaluate = try_of(rec, "evaluate", 1);
  EXPECT_EQ(evaluate["values"]["auc"], 0.91) << evaluate.dump(2);
  EXPECT_EQ(evaluate["values"]["model.name"], "clicks");
  json m = evaluate["metrics"];
  ASSERT_EQ(m.size(), 3u) << evaluate.dump(2);
  EXPECT_EQ(m[0]["name"], "loss");
  EXPECT_EQ(m[0]["step"], 1);
  EXPECT_EQ(m[1]["value"], 0.41);
  EXPECT_EQ(m[2]["name"], "auc");
  EXPECT_EQ(m[2]["step"], -1);  // no step: a final value
}

// What a task publishes is read as data and checked: a broken metrics line or values file
// fails a try that exited 0, naming the line; a link in their place is never followed; a
// try that failed keeps the metrics it could write (a training killed mid-line) and
// publishes no values.
TEST_F(RunTest, BrokenValuesOrMetricsFilesFailTheTryWithWhereAndAreNeverFollowed) {
  struct Case {
    std::string name, script, says;
  };
  std::vector<Case> cases = {
      {"line",
       R"(printf '{"name": "a", "value": 1}\n{"name": "b", "value": "x"}\n' > "$DROVER_METRICS_FILE")",
       "metrics.jsonl:2: \"value\" of 'b' must be a number"},
      {"json", R"(echo '{"name": "a", "value": 1' > "$DROVER_METRICS_FILE")",
       "metrics.jsonl:1: not a JSON object"},
      {"values", R"(echo '[1, 2]' > "$DROVER_VALUES_FILE")",
       "DROVER_VALUES_FILE (values.json) is not a JSON object"},
      {"nested", R"(echo '{"a": {"b": 1}}' > "$DROVER_VALUES_FILE")",
       "DROVER_VALUES_FILE: value 'a' must be a string, a number or a boolean"},
      {"link", R"(ln -s /etc/passwd "$DROVER_VALUES_FILE")",
       "DROVER_VALUES_FILE is a symbolic link"},
      {"fifo", R"(mkfifo "$DROVER_METRICS_FILE")", "DROVER_METRICS_FILE is not a regular file"},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto f = dag(c.name + ".yaml", "dag: " + c.name + "\ntasks:\n  t:\n    run: |\n      " +
                                       c.script + "\n    values: [a]\n");
    auto r = run(f);
    EXPECT_NE(r.code, 0) << r.out << r.err;
    json t = try_of(record(r), "t", 1);
    EXPECT_EQ(t["state"], "failed") << t.dump(2);
    EXPECT_NE(t["error"].get<std::string>().find(c.says), std::string::npos) << t.dump(2);
    EXPECT_TRUE(t["values"].empty()) << t.dump(2);
  }
  auto f = dag("killed.yaml", R"(dag: killed
tasks:
  t:
    run: |
      printf '{"step": 1, "name": "loss", "value": 0.5}\n{"step": 2, "na' > "$DROVER_METRICS_FILE"
      echo '{"a": 1}' > "$DROVER_VALUES_FILE"
      exit 3
    values: [a]
)");
  auto r = run(f);
  EXPECT_NE(r.code, 0);
  json t = try_of(record(r), "t", 1);
  EXPECT_EQ(t["exit_code"], 3) << t.dump(2);
  ASSERT_EQ(t["metrics"].size(), 1u) << t.dump(2);
  EXPECT_EQ(t["metrics"][0]["value"], 0.5);
  EXPECT_TRUE(t["values"].empty()) << t.dump(2);
}

// An input is the task's own copy of its blob: a task that makes it writable and appends
// to it (root needs neither) changes its copy, never the store, and a later reader gets
// the bytes the hash names.
TEST_F(RunTest, ATaskThatWritesItsInputChangesItsCopyNeverTheBlob) {
  auto f = dag("forge.yaml", R"(dag: forge
tasks:
  make: {run: "echo genuine > data.txt", outputs: [data.txt]}
  forge:
    needs: [make]
    run: [sh, -c, 'chmod u+w "$1"/data.txt; echo forged >> "$1"/data.txt', sh, "{{ inputs.make.path }}"]
  read:
    needs: [make, forge]
    run: [sh, -c, 'cat "$1"/data.txt > got.txt', sh, "{{ inputs.make.path }}"]
    outputs: [got.txt]
)");
  auto r = run(f);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  json rec = record(r);
  std::string genuine = sha256_hex("genuine\n");
  EXPECT_EQ(try_of(rec, "read", 1)["outputs"][0]["sha256"], genuine);
  fs::path blob = home() / "blobs" / genuine.substr(0, 2) / genuine.substr(2);
  EXPECT_EQ(read_all(blob), "genuine\n");
}

// An input over LocalBlobSource::kLinkAbove (64 MiB) is hard-linked, not copied: readers
// of it pass (two at once as well), and a task that changes it fails, with the forged blob
// taken out of the store so that nothing reads it under its old name.
TEST_F(RunTest, ABigInputThatTheTaskChangesFailsItsTryAndLeavesTheStore) {
  auto f = dag("big.yaml", R"(dag: big
tasks:
  make: {run: "head -c 67108865 /dev/zero > big.bin", outputs: [big.bin]}
  read1: {needs: [make], run: [sh, -c, 'test -s "$1"/big.bin', sh, "{{ inputs.make.path }}"]}
  read2: {needs: [make], run: [sh, -c, 'test -s "$1"/big.bin', sh, "{{ inputs.make.path }}"]}
  forge:
    needs: [make, read1, read2]
    run: [sh, -c, 'chmod u+w "$1"/big.bin; printf x >> "$1"/big.bin', sh, "{{ inputs.make.path }}"]
)");
  auto r = run(f);
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  json rec = record(r);
  EXPECT_EQ(try_of(rec, "read1", 1)["state"], "success") << rec.dump(2);
  EXPECT_EQ(try_of(rec, "read2", 1)["state"], "success") << rec.dump(2);
  json forge = try_of(rec, "forge", 1);
  EXPECT_EQ(forge["state"], "failed");
  std::string sha = try_of(rec, "make", 1)["outputs"][0]["sha256"];
  std::string error = forge["error"];
  EXPECT_NE(error.find("blob " + sha + " was changed in place"), std::string::npos) << error;
  EXPECT_NE(error.find("it is out of the store"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(home() / "blobs" / sha.substr(0, 2) / sha.substr(2)));
}

// A link among a task's outputs is recorded as git records one, its text as its blob, and
// is a link again in a downstream task's inputs: a link to a file outside the work dir never
// brings that file's bytes into the store (nor to GET /api/v1/blobs), and a relative one
// still finds its neighbour in the input folder.
TEST_F(RunTest, ALinkAmongOutputsIsRecordedAsItsTextAndPlacedAsALinkDownstream) {
  fs::path marker = tmp / "outside.txt";
  write_text(marker, "MARKER-outside-the-work-dir\n");
  auto f = dag("links.yaml", R"(dag: links
tasks:
  make:
    run: "mkdir out && echo data > out/data.txt && ln -s data.txt out/alias && ln -s )" +
                                 marker.string() + R"( out/secret"
    outputs: [out]
  use:
    needs: [make]
    run: [sh, -c, 'set -e; in="$1"/out; test -L "$in"/secret; test -L "$in"/alias; test ! -L "$in"/data.txt; readlink "$in"/secret > link.txt; cat "$in"/alias > via.txt', sh, "{{ inputs.make.path }}"]
    outputs: [link.txt, via.txt]
)");
  auto r = run(f);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  std::string id = record(r)["id"];
  auto shown = drover({"runs", "show", id, "--home", home().string(), "--json"});
  ASSERT_EQ(shown.code, 0) << shown.err;
  json rec = json::parse(shown.out, nullptr, false);
  const int link = S_IFLNK | 0777;
  struct Want {
    std::string path, bytes;
    int mode;
  };
  std::vector<Want> want = {{"out/alias", "data.txt", link},
                            {"out/data.txt", "data\n", 0644},
                            {"out/secret", marker.string(), link}};
  json outs = try_of(rec, "make", 1)["outputs"], ins = try_of(rec, "use", 1)["inputs"];
  ASSERT_EQ(outs.size(), want.size()) << rec.dump(2);
  ASSERT_EQ(ins.size(), want.size()) << rec.dump(2);
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].path);
    for (const json& e : {outs[i], ins[i]}) {
      EXPECT_EQ(e["path"], want[i].path);
      EXPECT_EQ(e["sha256"], sha256_hex(want[i].bytes));
      EXPECT_EQ(e["size"], want[i].bytes.size());
      if (want[i].mode == link) {
        EXPECT_EQ(e["mode"], link);
      }
    }
    std::string sha = outs[i]["sha256"];
    EXPECT_EQ(read_all(home() / "blobs" / sha.substr(0, 2) / sha.substr(2)), want[i].bytes);
  }
  json use = try_of(rec, "use", 1)["outputs"];
  ASSERT_EQ(use.size(), 2u) << rec.dump(2);
  EXPECT_EQ(use[0]["sha256"], sha256_hex(marker.string() + "\n"));  // link.txt: the text
  EXPECT_EQ(use[1]["sha256"], sha256_hex("data\n"));                // via.txt: through alias
  for (auto& e : fs::recursive_directory_iterator(home() / "blobs")) {
    if (!e.is_regular_file()) continue;
    EXPECT_EQ(read_all(e.path()).find("MARKER-outside"), std::string::npos) << e.path();
  }
  // The text form says which entries are links.
  auto text = drover({"runs", "show", id, "--home", home().string()});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("out/secret"), std::string::npos) << text.out;
  std::string line = text.out.substr(text.out.find("out/secret"));
  line = line.substr(0, line.find('\n'));
  EXPECT_NE(line.find("(symbolic link)"), std::string::npos) << line;
}

// A task that fills the disk: its result.json and the commits after it fail. The commit is
// retried (nothing is lost, no restart needed); once space is freed the run ends, and the
// try's record says why it failed instead of "lost" or "without a result".
TEST_F(RunTest, ATaskThatFillsTheDiskEndsWithTheCauseInItsRecordOnceThereIsSpace) {
  fs::path small = tmp / "small";
  fs::create_directories(small);
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=4m") != 0)
    GTEST_SKIP() << "cannot mount a small tmpfs here: " << std::strerror(errno);
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{small};
  auto f = dag("full.yaml", R"(dag: full
tasks:
  fill: {run: "head -c 20M /dev/zero > fill; echo {{ secrets.FILL }} filled; exit 0"}
)");
  fs::path home = small / "home";
  pid_t pid = spawn({DROVER_BIN, "run", f.string(), "--home", home.string(), "--json"}, tmp / "out",
                    tmp / "err", {{"DROVER_SECRET_FILL", "fill-secret-value"}});
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(wait_until([&] {
    return read_all(tmp / "err").find("store commit failed") != std::string::npos;
  })) << read_all(tmp / "err");
  std::error_code ec;
  for (auto& e : fs::recursive_directory_iterator(home / "runs", ec))
    if (e.path().filename() == "fill" && e.is_regular_file()) fs::remove(e.path());
  int status = 0;
  ASSERT_TRUE(
      wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, std::chrono::seconds(60)))
      << read_all(tmp / "err");
  EXPECT_EQ(WEXITSTATUS(status), 1);
  json rec = json::parse(read_all(tmp / "out"), nullptr, false);
  json fill = try_of(rec, "fill", 1);
  EXPECT_EQ(fill["state"], "failed") << rec.dump(2);
  std::string error = fill.value("error", "");
  EXPECT_NE(error.find("writing result.json"), std::string::npos) << error;
  EXPECT_NE(error.find("No space left on device"), std::string::npos) << error;
}

TEST_F(RunTest, TaskEnvironmentNamesTheTry) {
  auto f = dag("env.yaml", R"(dag: envs
tasks:
  show:
    run: 'echo "$DROVER_RUN_ID $DROVER_TASK $DROVER_TRY" > env.txt; pwd > pwd.txt'
    outputs: [env.txt, pwd.txt]
)");
  auto r = run(f);
  ASSERT_EQ(r.code, 0) << r.err;
  json rec = record(r);
  std::string run_id = rec["id"];
  fs::path work = home() / "runs" / run_id / "show.1" / "work";
  EXPECT_EQ(read_all(work / "env.txt"), run_id + " show 1\n");
  EXPECT_EQ(trim(read_all(work / "pwd.txt")), fs::canonical(work).string());
}

TEST_F(RunTest, FailureFailsTheRunAndMarksDownstreamUpstreamFailed) {
  auto f = dag("fail.yaml", R"(dag: failing
tasks:
  bad: {run: [sh, -c, "echo boom >&2; exit 3"]}
  after: {run: [true], needs: [bad]}
  cleanup: {run: [true], needs: [bad], trigger_rule: all_done}
)");
  auto r = run(f);
  EXPECT_EQ(r.code, 1);
  json rec = record(r);
  EXPECT_EQ(rec["state"], "failed");
  EXPECT_EQ(try_of(rec, "bad", 1)["exit_code"], 3);
  EXPECT_EQ(rec["task_states"]["after"], "upstream_failed");
  EXPECT_EQ(rec["task_states"]["cleanup"], "success");
  EXPECT_NE(read_all(try_of(rec, "bad", 1)["log"].get<std::string>()).find("boom"),
            std::string::npos);
}

TEST_F(RunTest, RetriesAreNewTriesAfterADoublingDelay) {
  auto f = dag("retry.yaml", R"(dag: retrying
tasks:
  flaky:
    type: mock
    retries: 2
    retry_delay: 1s
    with: {fail_on_try: 2}
)");
  auto r = run(f);
  ASSERT_EQ(r.code, 0) << r.err;
  json rec = record(r);
  json t1 = try_of(rec, "flaky", 1), t2 = try_of(rec, "flaky", 2), t3 = try_of(rec, "flaky", 3);
  EXPECT_EQ(t1["state"], "failed");
  EXPECT_EQ(t2["state"], "failed");
  EXPECT_EQ(t3["state"], "success");
  // The backoff is a lower bound: try 2 waits >= 1 s after try 1, try 3 >= 2 s after try 2.
  auto at = [](const json& t, const char* k) {
    auto tp = parse_iso(t[k].get<std::string>());
    EXPECT_TRUE(tp.ok()) << t[k];
    return std::chrono::duration<double>(tp->time_since_epoch()).count();
  };
  double gap1 = at(t2, "started_at") - at(t1, "ended_at");
  double gap2 = at(t3, "started_at") - at(t2, "ended_at");
  EXPECT_GE(gap1, 1.0);
  EXPECT_GE(gap2, 2.0);
}

TEST_F(RunTest, TimeoutKillsTheWholeProcessGroup) {
  auto f = dag("timeout.yaml", R"(dag: slow
tasks:
  hang:
    timeout: 1s
    run: 'sleep 60 & echo $! > bg.pid; wait'
)");
  auto r = run(f);
  EXPECT_EQ(r.code, 1);
  json rec = record(r);
  EXPECT_EQ(rec["task_states"]["hang"], "timed_out");
  EXPECT_EQ(try_of(rec, "hang", 1)["state"], "timed_out");
  fs::path bg = home() / "runs" / rec["id"].get<std::string>() / "hang.1" / "work" / "bg.pid";
  pid_t pid = std::stoi(read_all(bg));
  EXPECT_TRUE(wait_until([&] { return !pid_alive(pid); }, std::chrono::seconds(10)))
      << "the background child of the timed-out task survived";  // The log says why it ended.
  std::string log = read_all(bg.parent_path().parent_path() / "log");
  EXPECT_NE(log.find("drover: timed out after 1s; killing its process group"), std::string::npos)
      << log;
}

TEST_F(RunTest, ParamValuesNeverReachTheShellUnquoted) {
  fs::path marker = tmp / "pwned";
  auto f = dag("inject.yaml", R"(dag: inject
params:
  msg: {type: string, default: hi}
tasks:
  echo:
    run: "echo {{ params.msg }} > said.txt"
    outputs: [said.txt]
)");
  std::string evil = "$(touch " + marker.string() + "); x `touch " + marker.string() + "` ' \"";
  auto r = run(f, {"-p", "msg=" + evil});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(marker));
  json rec = record(r);
  fs::path said = home() / "runs" / rec["id"].get<std::string>() / "echo.1" / "work" / "said.txt";
  EXPECT_EQ(read_all(said), evil + "\n");
}

TEST_F(RunTest, SecretsReachTheTaskButAreMaskedInLogsAndRecords) {
  // One secret from the server config, one from the environment.
  write_text(tmp / "config.yaml", "secrets:\n  api_key: \"s3cr3t-from-config\"\n");
  ::chmod((tmp / "config.yaml").c_str(), 0600);
  auto f = dag("secret.yaml", R"(dag: secret
tasks:
  use:
    run: 'echo key={{ secrets.api_key }} token=$TOKEN; printf %s {{ secrets.api_key }} | wc -c; printf %s "$TOKEN" | sha256sum'
    env: {TOKEN: "{{ secrets.hub_token }}"}
  argv:
    run: [/bin/sh, -c, 'echo "$0"; echo "$0" >&2', "{{ secrets.api_key }}"]
  plain:
    run: echo no secrets here
)");
  auto r = drover({"run", f.string(), "--home", home().string(), "--project-dir",
                   tmp.path().string(), "--json", "--config", (tmp / "config.yaml").string()},
                  {{"DROVER_SECRET_hub_token", "hub-tok-from-env"}});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  json rec = record(r);
  std::string id = rec["id"];
  std::string log = read_all(home() / "runs" / id / "use.1" / "log");
  // The task saw the real values: an 18-byte key, and the token's hash.
  EXPECT_EQ(log, "key=*** token=***\n18\n" + sha256_hex("hub-tok-from-env") + "  -\n");
  EXPECT_EQ(read_all(home() / "runs" / id / "argv.1" / "log"), "***\n***\n");
  EXPECT_EQ(read_all(home() / "runs" / id / "plain.1" / "log"), "no secrets here\n");
  std::string whole = rec.dump();
  EXPECT_EQ(whole.find("s3cr3t-from-config"), std::string::npos) << whole;
  EXPECT_EQ(whole.find("hub-tok-from-env"), std::string::npos) << whole;
  EXPECT_EQ(try_of(rec, "argv", 1)["command"],
            (json{"/bin/sh", "-c", "echo \"$0\"; echo \"$0\" >&2", "***"}));
  // Nowhere under the home: store, logs, results.
  for (auto& e : fs::recursive_directory_iterator(home())) {
    if (!e.is_regular_file()) continue;
    std::string text = read_all(e.path());
    EXPECT_EQ(text.find("s3cr3t-from-config"), std::string::npos) << e.path();
    EXPECT_EQ(text.find("hub-tok-from-env"), std::string::npos) << e.path();
  }
}

TEST_F(RunTest, WrongParamTypeIsRejectedAndNothingIsCreated) {
  auto f = dag("typed.yaml", R"(dag: typed
params:
  n: {type: int, default: 1, max: 10}
tasks:
  t: {run: [true]}
)");
  auto r = run(f, {"-p", "n=abc"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("param 'n'"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(home() / "runs" / "typed-1"));
  auto r2 = run(f, {"-p", "nn=1"});
  EXPECT_EQ(r2.code, 1);
  EXPECT_NE(r2.err.find("unknown param 'nn'"), std::string::npos) << r2.err;
}

TEST_F(RunTest, InvalidDagFileExitsOneWithFileLineCol) {
  auto f = dag("broken.yaml", "dag: broken\ntasks:\n  a: {run: [true], needs: [zzz]}\n");
  auto r = run(f);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(f.string() + ":3:"), std::string::npos) << r.err;
}

// A DAG's params and first tasks: `make` writes d/data.csv (500 numbers from `start`), `snap`
// makes it a version of the dataset `numbers`.
constexpr const char* kNumbers = R"(params:
  start: {type: int, default: 1}
tasks:
  make:
    run: "mkdir -p d && (echo x; seq 500 | awk -v s={{ params.start }} '{print $1 + s}') > d/data.csv"
    outputs: [d]
  snap:
    type: snapshot
    needs: [make]
    with: {path: "{{ inputs.make.path }}/d", dataset: numbers}
)";

TEST_F(RunTest, SnapshotAndDriftTasksLinkDataVersionsAndFlagDrift) {
  auto f = dag("data.yaml", std::string("dag: data\n") + kNumbers + R"(  check:
    type: drift
    needs: [snap]
    with: {reference: "numbers@reference:data.csv", current: "{{ inputs.snap.path }}/data.csv"}
    outputs: [drift.json]
  tag:
    needs: [check, snap]
    run: '"$DROVER_BIN" snapshot tag {{ outputs.snap.version }} reference --home "$DROVER_HOME"'
)");
  // First run: no reference yet, so the check is skipped; then the tag moves.
  auto r1 = run(f);
  ASSERT_EQ(r1.code, 0) << r1.out << r1.err;
  json rec1 = record(r1);
  json snap = try_of(rec1, "snap", 1);
  std::string version = snap["values"]["version"];
  EXPECT_EQ(version.size(), 64u);
  EXPECT_EQ(snap["values"]["dataset"], "numbers");
  EXPECT_EQ(try_of(rec1, "check", 1)["values"]["drift"], false);
  EXPECT_TRUE(try_of(rec1, "check", 1)["values"].contains("skipped"));
  auto shown =
      drover({"snapshot", "show", "numbers@reference", "--home", home().string(), "--json"});
  EXPECT_EQ(shown.code, 0) << shown.err;
  EXPECT_NE(shown.out.find(version), std::string::npos) << shown.out;
  // Same data again: no drift. Shifted data: drift, recorded as a value and metrics.
  auto r2 = run(f);
  ASSERT_EQ(r2.code, 0) << r2.err;
  EXPECT_EQ(try_of(record(r2), "check", 1)["values"]["drift"], false);
  EXPECT_EQ(try_of(record(r2), "snap", 1)["values"]["version"], version);  // deduplicated
  auto r3 = run(f, {"-p", "start=400"});
  ASSERT_EQ(r3.code, 0) << r3.err;
  json check = try_of(record(r3), "check", 1);
  EXPECT_EQ(check["values"]["drift"], true);
  EXPECT_FALSE(check["metrics"].empty());
}

// A drift reference may be the data a model version was trained on: `model:NAME@ALIAS:PATH`
// resolves, when the try starts, to that file of the snapshot among the version's inputs.
// Before the alias names a version the check is skipped, saying why; after, the check
// compares against the version the alias names, not against the newest data.
TEST_F(RunTest, ADriftReferenceMayBeTheTrainingDataOfTheModelUnderAnAlias) {
  auto f = dag("retrain.yaml", std::string("dag: retrain\n") + kNumbers + R"(  check:
    type: drift
    needs: [snap]
    with: {reference: "model:clicks@production:data.csv", current: "{{ inputs.snap.path }}/data.csv"}
  train:
    type: train
    needs: [snap]
    run: "echo '{\"auc\": 0.9}' > metrics.json && cp {{ inputs.snap.path }}/data.csv model.pkl"
    with: {model: clicks, artifacts: [model.pkl], metrics: metrics.json}
)");
  auto r1 = run(f);
  ASSERT_EQ(r1.code, 0) << r1.out << r1.err;
  json check1 = try_of(record(r1), "check", 1);
  EXPECT_EQ(check1["values"]["drift"], false);
  EXPECT_EQ(check1["values"]["skipped"], "no reference: no model 'clicks' in the registry")
      << check1.dump(2);
  std::string v1 = try_of(record(r1), "snap", 1)["values"]["version"];
  auto moved = drover(
      {"models", "alias", "clicks", "production", "1", "--force", "--home", home().string()});
  ASSERT_EQ(moved.code, 0) << moved.err;

  // Shifted data is compared with clicks/1's data: drift, and the log names the version.
  auto r2 = run(f, {"-p", "start=400"});
  ASSERT_EQ(r2.code, 0) << r2.err;
  json check2 = try_of(record(r2), "check", 1);
  EXPECT_EQ(check2["values"]["drift"], true) << check2.dump(2);
  std::string log = read_all(check2["log"].get<std::string>());
  EXPECT_NE(log.find("is clicks/1's training data, version " + v1), std::string::npos) << log;
  // clicks/2 was trained on the shifted data, but production still names clicks/1: the
  // original data again shows no drift against it.
  auto r3 = run(f);
  ASSERT_EQ(r3.code, 0) << r3.err;
  EXPECT_EQ(try_of(record(r3), "check", 1)["values"]["drift"], false);
}

// With a registry at hand (a store under --home), lint warns of a `uses:` reference it
// cannot resolve, naming the file, line and column of the task, and still exits 0; a
// reference it resolves gives no warning. A malformed model: drift reference is an error.
TEST_F(RunTest, LintWarnsOfAModelReferenceTheRegistryCannotResolve) {
  auto train = dag("train.yaml", R"(dag: train
tasks:
  train:
    type: train
    run: "echo '{\"auc\": 0.9}' > metrics.json && echo m > model.pkl"
    with: {model: clicks, artifacts: [model.pkl], metrics: metrics.json}
)");
  auto uses = [&](const std::string& ref) {
    return dag("predict.yaml", "dag: predict\ntasks:\n  predict:\n    uses: {model: " + ref +
                                   "}\n    run: [cat, \"{{ inputs.model.path }}/model.pkl\"]\n");
  };
  // No store yet: nothing to look up, no warning.
  auto before = drover({"lint", uses("clicks@production").string(), "--home", home().string()});
  EXPECT_EQ(before.code, 0) << before.err;
  EXPECT_EQ(before.err, "drover lint: 1 file, all valid\n");
  ASSERT_EQ(run(train).code, 0);

  fs::path f = uses("clicks@production");
  auto warned = drover({"lint", f.string(), "--home", home().string()});
  EXPECT_EQ(warned.code, 0) << warned.err;
  EXPECT_EQ(warned.err, f.string() +
                            ":3:3: warning: task 'predict' uses model clicks@production: model "
                            "'clicks' has no alias 'production' (in " +
                            (home() / "drover.db").string() +
                            ")\ndrover lint: 1 file, all valid\n");
  auto fine = drover({"lint", uses("clicks/1").string(), "--home", home().string()});
  EXPECT_EQ(fine.code, 0);
  EXPECT_EQ(fine.err, "drover lint: 1 file, all valid\n");

  auto bad = dag("drift.yaml", R"(dag: drift
tasks:
  check:
    type: drift
    with: {reference: "model:clicks@Prod:train.csv", current: cur.csv}
)");
  auto refused = drover({"lint", bad.string(), "--home", home().string()});
  EXPECT_EQ(refused.code, 1);
  EXPECT_EQ(refused.out, bad.string() +
                             ":5:12: task 'check': 'model:clicks@Prod:train.csv': model "
                             "'clicks@Prod': an alias is [a-z0-9_-]+\n")
      << refused.err;
}

}  // namespace
}  // namespace drover::testing
