// End to end: `train` tasks under `drover run` (real binary, workers, store, Debian's
// /usr/bin/python3 with the drover helper) and the registry through `drover models` and
// through a real `drover serve`'s /api/v1/models routes.
#include <fstream>

#include "common/process.hpp"
#include "common/sha256.hpp"
#include "tests/integration/harness.hpp"
#include "web/client.hpp"

namespace drover::testing {
namespace {

// A training script: reads the snapshot's CSV, logs a loss curve through the helper, writes
// the model and its final metrics (auc from the command line), and its environment.
constexpr const char* kTrainPy = R"py(import sys
from drover import log_metric, save_metrics, log_environment
data, auc = sys.argv[1], float(sys.argv[2])
rows = open(data + "/events.csv").read().splitlines()[1:]
for step in range(3):
    log_metric("loss", 1.0 / (step + 1), step=step)
with open("model.pkl", "w") as f:
    f.write("model over %d rows\n" % len(rows))
save_metrics({"auc": auc, "rows": len(rows)})
log_environment()
)py";

class ModelsTest : public LocalFixture {
 protected:
  void SetUp() override {
    fs::create_directories(tmp / "data");
    write_text(tmp / "data" / "events.csv", "user,clicked\n1,0\n2,1\n3,1\n");
    write_text(tmp / "train.py", kTrainPy);
  }
  ProcResult models(std::vector<std::string> args) {
    args.insert(args.begin(), "models");
    args.push_back("--home");
    args.push_back(home().string());
    return drover(args);
  }
  json models_json(std::vector<std::string> args) {
    args.push_back("--json");
    auto r = models(args);
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    json j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json() : j;
  }
  void git(std::vector<std::string> args) {
    std::vector<std::string> argv = {
        "git",         "-C", tmp.path().string(),   "-c", "user.email=t@example.com", "-c",
        "user.name=t", "-c", "commit.gpgsign=false"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = capture_child(argv);
    ASSERT_EQ(r.code, 0) << r.out;
  }
  // snapshot -> train of clicks (auc from the param), then `rest` (the tasks after it).
  fs::path retrain_dag(const std::string& file, const std::string& rest) {
    return dag(file, R"(dag: retrain
params:
  auc: {type: float, default: 0.91}
tasks:
  snap:
    type: snapshot
    with: {path: data, dataset: events}
  train:
    type: train
    needs: [snap]
    run: [/usr/bin/python3, "{{ project_dir }}/train.py", "{{ inputs.snap.path }}", "{{ params.auc }}"]
    with: {model: clicks, artifacts: [model.pkl], metrics: metrics.json, description: weekly}
)" + rest);
  }
  fs::path retrain_dag() {
    return retrain_dag("retrain.yaml", R"(  report:
    needs: [train]
    run: echo {{ outputs.train.model }}/{{ outputs.train.model_version }} {{ outputs.train.metrics.auc }} > got.txt
    outputs: [got.txt]
)");
  }
  // retrain, then gates and promotion: validate (auc >= 0.85, and no more than 0.01 below
  // production) and promote to production.
  fs::path gated_dag() {
    return retrain_dag("gated.yaml", R"(  validate:
    type: validate
    needs: [train]
    with:
      gates:
        - {metric: auc, min: 0.85}
        - {metric: auc, vs: production, max_drop: 0.01}
  promote:
    type: promote
    needs: [validate]
    with: {alias: production}
)");
  }
};

// A train registers NAME/N linked to everything that made it: its run and try, the params
// after defaults, the input files with the dataset version they came from, the DAG file's
// hash, the git commit, the artifacts by hash, its final and step metrics, its environment;
// and publishes model, model_version and metrics.NAME downstream. N counts up per name.
TEST_F(ModelsTest, TrainRegistersAVersionLinkedToItsRunDataCodeAndParams) {
  fs::path f = retrain_dag();
  git({"init", "-q"});
  git({"add", "-A"});
  git({"commit", "-q", "-m", "first"});
  std::string head =
      trim(capture_child({"git", "-C", tmp.path().string(), "rev-parse", "HEAD"}).out);

  auto r1 = run(f);
  ASSERT_EQ(r1.code, 0) << r1.out << r1.err;
  json rec = json::parse(r1.out);
  json report = try_of(rec, "report", 1);
  ASSERT_EQ(report["outputs"].size(), 1u) << rec.dump(2);
  EXPECT_EQ(report["outputs"][0]["sha256"], sha256_hex("clicks/1 0.91\n"));
  json train = try_of(rec, "train", 1);
  EXPECT_EQ(train["values"]["model_version"], 1) << train.dump(2);
  std::string snapshot_version = try_of(rec, "snap", 1)["values"]["version"].get<std::string>();

  auto r2 = run(f, {"-p", "auc=0.87"});
  ASSERT_EQ(r2.code, 0) << r2.out << r2.err;

  json v = models_json({"show", "clicks/1"});
  EXPECT_EQ(v["name"], "clicks");
  EXPECT_EQ(v["version"], 1);
  EXPECT_EQ(v["run"], "retrain-1");
  EXPECT_EQ(v["task"], "train");
  EXPECT_EQ(v["try"], 1);
  EXPECT_EQ(v["params"], (json{{"auc", 0.91}}));
  EXPECT_EQ(v["metrics"], (json{{"auc", 0.91}, {"rows", 3}}));
  ASSERT_EQ(v["step_metrics"].size(), 3u) << v.dump(2);
  EXPECT_EQ(v["step_metrics"][2], (json{{"name", "loss"}, {"step", 2}, {"value", 1.0 / 3}}));
  ASSERT_EQ(v["artifacts"].size(), 1u);
  EXPECT_EQ(v["artifacts"][0]["path"], "model.pkl");
  EXPECT_EQ(v["artifacts"][0]["sha256"], sha256_hex("model over 3 rows\n"));
  EXPECT_EQ(v["artifacts"][0]["size"], 18);
  ASSERT_EQ(v["inputs"].size(), 1u);
  EXPECT_EQ(v["inputs"][0]["path"], "events.csv");
  EXPECT_EQ(v["inputs"][0]["sha256"], sha256_hex(read_all(tmp / "data" / "events.csv")));
  EXPECT_EQ(v["inputs"][0]["dataset"], "events");
  EXPECT_EQ(v["inputs"][0]["dataset_version"], snapshot_version);
  EXPECT_EQ(v["dag_hash"], sha256_hex(read_all(f)));
  EXPECT_EQ(v["git"]["commit"], head);
  EXPECT_EQ(v["git"]["dirty"], false);
  EXPECT_EQ(v["description"], "weekly");
  EXPECT_TRUE(v["environment"]["hostname"].is_string()) << v.dump(2);
  auto py = capture_child(
      {"/usr/bin/python3", "-c", "import platform; print(platform.python_version())"});
  EXPECT_EQ(v["environment"]["python"], trim(py.out));
  EXPECT_EQ(v["aliases"], json::array());
  EXPECT_TRUE(v["created_at"].is_string());

  json latest = models_json({"show", "clicks"});  // NAME: its latest version
  EXPECT_EQ(latest["version"], 2);
  EXPECT_EQ(latest["run"], "retrain-2");
  EXPECT_EQ(latest["params"], (json{{"auc", 0.87}}));
  json ls = models_json({"ls"});
  ASSERT_EQ(ls["models"].size(), 1u);
  EXPECT_EQ(ls["models"][0]["versions"], 2);
  EXPECT_EQ(ls["models"][0]["latest"], 2);

  // Downloaded artifacts are the bytes that were registered, checked by hash on the way out.
  auto d = models({"download", "clicks/1", (tmp / "dl").string()});
  ASSERT_EQ(d.code, 0) << d.out << d.err;
  EXPECT_EQ(read_all(tmp / "dl" / "model.pkl"), "model over 3 rows\n");
  auto again = models({"download", "clicks/1", (tmp / "dl").string()});
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.err.find("exists"), std::string::npos) << again.err;
  fs::path blob = home() / "blobs" / sha256_hex("model over 3 rows\n").substr(0, 2) /
                  sha256_hex("model over 3 rows\n").substr(2);
  ASSERT_TRUE(fs::exists(blob)) << blob;
  fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(blob, std::ios::app) << "forged";
  auto forged = models({"download", "clicks/1", (tmp / "dl2").string()});
  EXPECT_NE(forged.code, 0) << forged.out;
  EXPECT_FALSE(fs::exists(tmp / "dl2" / "model.pkl"));
}

// A train whose final metrics or artifacts are not what the protocol asks fails with that
// message and registers nothing; a failed script registers nothing either.
TEST_F(ModelsTest, ATrainWithABrokenMetricsFileOrAMissingArtifactRegistersNothing) {
  struct Case {
    std::string name, script, says;
  };
  std::vector<Case> cases = {
      {"missing", "touch model.pkl", "train: metrics file 'metrics.json' was not written"},
      {"list", "touch model.pkl; echo '[0.9]' > metrics.json",
       "train: metrics file 'metrics.json' is not a JSON object of numbers"},
      {"string", "touch model.pkl; echo '{\"auc\": \"high\"}' > metrics.json",
       "train: metrics file 'metrics.json' is not a JSON object of numbers: 'auc' is string"},
      {"link", "touch model.pkl; ln -s /etc/passwd metrics.json",
       "train: metrics file 'metrics.json' is a symbolic link"},
      {"artifact", "echo '{\"auc\": 0.9}' > metrics.json",
       "train: artifact 'model.pkl' was not written"},
      {"exit", "touch model.pkl; echo '{\"auc\": 0.9}' > metrics.json; exit 3", ""},
  };
  for (auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto f = dag(c.name + ".yaml", "dag: " + c.name +
                                       "\ntasks:\n  train:\n    type: train\n    run: |\n      " +
                                       c.script +
                                       "\n    with: {model: clicks, artifacts: [model.pkl], "
                                       "metrics: metrics.json}\n");
    auto r = run(f);
    EXPECT_NE(r.code, 0) << r.out << r.err;
    json t = try_of(json::parse(r.out, nullptr, false), "train", 1);
    EXPECT_EQ(t["state"], "failed") << t.dump(2);
    if (!c.says.empty()) {
      std::string log = read_all(t["log"].get<std::string>());
      EXPECT_NE(log.find(c.says), std::string::npos) << log;
    }
    EXPECT_TRUE(t["values"].empty()) << t.dump(2);
  }
  json ls = models_json({"ls"});
  EXPECT_EQ(ls["models"], json::array()) << ls.dump(2);
  auto show = models({"show", "clicks"});
  EXPECT_NE(show.code, 0);
  EXPECT_NE(show.err.find("no model 'clicks' in the registry"), std::string::npos) << show.err;
}

// The weekly retrain's end: validate gates the new version (an absolute floor, and no
// worse than production by more than 0.01), promote moves production to it. A version whose
// gate fails is never promoted: the run fails at validate and promote never runs.
TEST_F(ModelsTest, AGateBlocksPromotionAndPromoteMovesTheAliasAsAnEvent) {
  fs::path f = gated_dag();
  auto r1 = run(f);
  ASSERT_EQ(r1.code, 0) << r1.out << r1.err;
  json rec1 = json::parse(r1.out);
  json v1 = try_of(rec1, "validate", 1);
  EXPECT_EQ(v1["values"]["passed"], true) << v1.dump(2);
  EXPECT_EQ(v1["values"]["model_version"], 1);
  const json& gates1 = v1["values"]["report"]["gates"];
  ASSERT_EQ(gates1.size(), 2u) << v1.dump(2);
  EXPECT_EQ(gates1[1]["note"],
            "alias production of model 'clicks' names no version: nothing to compare");
  ASSERT_EQ(v1["outputs"].size(), 1u);
  EXPECT_EQ(v1["outputs"][0]["path"], "validation.json");
  std::string vlog = read_all(v1["log"].get<std::string>());
  EXPECT_NE(vlog.find("auc 0.91 >= 0.85 (min): passed"), std::string::npos) << vlog;
  json p1 = try_of(rec1, "promote", 1);
  EXPECT_EQ(p1["values"]["alias"], "production") << p1.dump(2);
  EXPECT_TRUE(p1["values"]["previous_version"].is_null());
  EXPECT_EQ(models_json({"show", "clicks@production"})["version"], 1);

  ASSERT_EQ(run(f, {"-p", "auc=0.915"}).code, 0);  // within max_drop of 0.91: promoted
  EXPECT_EQ(models_json({"show", "clicks@production"})["version"], 2);

  auto r3 = run(f, {"-p", "auc=0.80"});
  EXPECT_NE(r3.code, 0) << r3.out;
  json rec3 = json::parse(r3.out, nullptr, false);
  json v3 = try_of(rec3, "validate", 1);
  EXPECT_EQ(v3["state"], "failed");
  EXPECT_EQ(v3["error"],
            "validate: clicks/3 failed auc 0.8 >= 0.85 (min): failed; auc vs production "
            "(clicks/2): 0.8 vs 0.915, drop 0.115 > max_drop 0.01: failed")
      << v3.dump(2);
  for (const json& t : rec3["tasks"])
    if (t["task"] == "promote") EXPECT_EQ(t["state"], "upstream_failed") << t.dump(2);
  EXPECT_EQ(models_json({"show", "clicks@production"})["version"], 2);
  json shown = models_json({"show", "clicks/3"});
  ASSERT_EQ(shown["validations"].size(), 1u) << shown.dump(2);
  EXPECT_EQ(shown["validations"][0]["passed"], false);
  EXPECT_EQ(shown["validations"][0]["run"], "retrain-3");

  json h = models_json({"history", "clicks"});
  ASSERT_EQ(h["events"].size(), 2u) << h.dump(2);
  for (int i = 0; i < 2; ++i) {
    const json& e = h["events"][i];
    std::string run_id = "retrain-" + std::to_string(i + 1);
    EXPECT_EQ(e["to"], i + 1);
    EXPECT_EQ(e["by"], "run " + run_id);
    EXPECT_EQ(e["run"], run_id);
    EXPECT_EQ(e["reason"], "promoted by retrain.promote after validate passed");
    EXPECT_EQ(e["forced"], false);
  }
  EXPECT_TRUE(h["events"][0]["from"].is_null());
  EXPECT_EQ(h["events"][1]["from"], 1);
}

// Alias moves by hand are events too: each names the version it replaced, who moved it and
// why; a version whose validation failed moves only with --force, which the event records;
// the rollback is one more move; a move to the version already named or to none records
// nothing.
TEST_F(ModelsTest, AliasMovesAndTheRollbackLeaveTheWholeHistory) {
  fs::path f = gated_dag();
  ASSERT_EQ(run(f).code, 0);
  ASSERT_EQ(run(f, {"-p", "auc=0.95"}).code, 0);
  ASSERT_NE(run(f, {"-p", "auc=0.5"}).code, 0);  // clicks/3 fails its gates
  ASSERT_EQ(run(retrain_dag()).code, 0);         // clicks/4: never validated

  auto failed = models({"alias", "clicks", "staging", "3"});
  EXPECT_NE(failed.code, 0);
  EXPECT_NE(failed.err.find("clicks/3 failed its latest validation (run retrain-3, task "
                            "validate): --force moves it anyway"),
            std::string::npos)
      << failed.err;
  auto never = models({"alias", "clicks", "staging", "4"});
  EXPECT_NE(never.code, 0);
  EXPECT_NE(never.err.find("clicks/4 was never validated"), std::string::npos) << never.err;
  auto forced = models({"alias", "clicks", "staging", "3", "--force", "--reason", "shadow test"});
  ASSERT_EQ(forced.code, 0) << forced.err;
  EXPECT_EQ(trim(forced.out), "clicks@staging -> clicks/3 (was unset)");

  auto back = models({"alias", "clicks", "production", "1", "--reason", "auc fell in A/B"});
  ASSERT_EQ(back.code, 0) << back.err;
  EXPECT_EQ(trim(back.out), "clicks@production -> clicks/1 (was clicks/2)");
  json prod = models_json({"show", "clicks@production"});
  EXPECT_EQ(prod["version"], 1);
  EXPECT_EQ(prod["aliases"], json::array({"production"}));

  auto same = models({"alias", "clicks", "production", "1"});
  EXPECT_NE(same.code, 0);
  EXPECT_NE(same.err.find("names version 1 already"), std::string::npos) << same.err;
  auto none = models({"alias", "clicks", "production", "7"});
  EXPECT_NE(none.code, 0);
  EXPECT_NE(none.err.find("no version 7 of model 'clicks'"), std::string::npos) << none.err;
  auto bad = models({"alias", "clicks", "Prod!", "1"});
  EXPECT_NE(bad.code, 0);
  auto canary = models({"show", "clicks@canary"});
  EXPECT_NE(canary.code, 0);
  EXPECT_NE(canary.err.find("model 'clicks' has no alias 'canary'"), std::string::npos)
      << canary.err;

  // Two promotions by runs, the forced move, the rollback: oldest first.
  json h = models_json({"history", "clicks"});
  ASSERT_EQ(h["events"].size(), 4u) << h.dump(2);
  EXPECT_EQ(h["events"][0]["by"], "run retrain-1");
  EXPECT_EQ(h["events"][1]["by"], "run retrain-2");
  const json& e2 = h["events"][2];
  EXPECT_EQ(e2["alias"], "staging");
  EXPECT_TRUE(e2["from"].is_null());
  EXPECT_EQ(e2["to"], 3);
  EXPECT_EQ(e2["reason"], "shadow test");
  EXPECT_EQ(e2["forced"], true);
  EXPECT_FALSE(e2["by"].get<std::string>().empty());
  EXPECT_TRUE(e2["run"].is_null());
  const json& e3 = h["events"][3];
  EXPECT_EQ(e3["from"], 2);
  EXPECT_EQ(e3["to"], 1);
  EXPECT_EQ(e3["reason"], "auc fell in A/B");
  EXPECT_EQ(e3["forced"], false);
  EXPECT_TRUE(e3["at"].is_string());
  EXPECT_EQ(models_json({"ls"})["models"][0]["aliases"], (json{{"production", 1}, {"staging", 3}}));
}

// `uses: {model: NAME@ALIAS}` pins the version the alias names when the run is created: the
// task reads that version's artifacts, read-only, under {{ inputs.model.path }}, even when
// the alias moves while the run waits; the pin is in the run record and the artifacts are
// inputs of the try. The next run takes the alias as it is then.
TEST_F(ModelsTest, UsesPinsTheVersionAtRunCreationEvenWhenTheAliasMovesMidRun) {
  fs::path f = gated_dag();
  ASSERT_EQ(run(f).code, 0);  // clicks/1 (3 rows) -> production
  write_text(tmp / "data" / "events.csv", "user,clicked\n1,0\n2,1\n3,1\n4,0\n");
  ASSERT_EQ(run(f, {"-p", "auc=0.915"}).code, 0);  // clicks/2 (4 rows) -> production
  fs::path infer = dag("infer.yaml", R"(dag: infer
tasks:
  hold:
    run: touch {{ project_dir }}/held; while [ ! -e {{ project_dir }}/release ]; do sleep 0.05; done; date > held.txt
    outputs: [held.txt]  # so predict's try is made when hold ends, not armed as hold starts
    timeout: 60s
  predict:
    needs: [hold]
    uses: {model: clicks@production}
    run: cat {{ inputs.model.path }}/model.pkl > used.txt; stat -c 'mode %A' {{ inputs.model.path }}/model.pkl
    outputs: [used.txt]
)");
  pid_t pid = spawn({DROVER_BIN, "run", infer.string(), "--home", home().string(), "--project-dir",
                     tmp.path().string(), "--json"},
                    tmp / "out", tmp / "err");
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(wait_until([&] { return fs::exists(tmp / "held"); })) << read_all(tmp / "err");
  auto moved = models({"alias", "clicks", "production", "1", "--reason", "mid-run"});
  ASSERT_EQ(moved.code, 0) << moved.err;
  write_text(tmp / "release", "");
  int status = 0;
  ASSERT_TRUE(
      wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, std::chrono::seconds(60)))
      << read_all(tmp / "err");
  EXPECT_EQ(WEXITSTATUS(status), 0) << read_all(tmp / "err");
  json rec = json::parse(read_all(tmp / "out"), nullptr, false);
  EXPECT_EQ(rec["models"],
            (json{{"predict", {{"ref", "clicks@production"}, {"name", "clicks"}, {"version", 2}}}}))
      << rec.dump(2);
  json predict = try_of(rec, "predict", 1);
  ASSERT_EQ(predict["outputs"].size(), 1u) << predict.dump(2);
  EXPECT_EQ(predict["outputs"][0]["sha256"], sha256_hex("model over 4 rows\n"));
  bool input_seen = false;
  for (const json& in : predict["inputs"])
    input_seen |= in["path"] == "model.pkl" && in["from_task"] == "model" &&
                  in["sha256"] == sha256_hex("model over 4 rows\n");
  EXPECT_TRUE(input_seen) << predict.dump(2);
  std::string log = read_all(predict["log"].get<std::string>());
  EXPECT_NE(log.find("mode -r--r--r--"), std::string::npos) << log;  // a copy, read-only

  auto next = run(infer);  // `release` is there: no hold
  ASSERT_EQ(next.code, 0) << next.err;
  json rec2 = json::parse(next.out);
  EXPECT_EQ(rec2["models"]["predict"]["version"], 1);
  EXPECT_EQ(try_of(rec2, "predict", 1)["outputs"][0]["sha256"], sha256_hex("model over 3 rows\n"));
}

// A `uses:` naming a model, alias or version the registry does not have is refused when the
// run would be created, saying which, and creates nothing (not even a run number).
TEST_F(ModelsTest, AnUnknownModelOrAliasIsRefusedAtTriggerAndCreatesNothing) {
  auto infer = [&](const std::string& ref) {
    return dag("infer.yaml", "dag: infer\ntasks:\n  predict:\n    uses: {model: " + ref +
                                 "}\n    run: cat {{ inputs.model.path }}/model.pkl\n");
  };
  auto none = run(infer("clicks@production"));
  EXPECT_NE(none.code, 0);
  EXPECT_NE(none.err.find("task 'predict' uses model clicks@production: no model 'clicks' in the "
                          "registry"),
            std::string::npos)
      << none.err;
  ASSERT_EQ(run(retrain_dag()).code, 0);  // clicks/1, no alias
  auto alias = run(infer("clicks@canary"));
  EXPECT_NE(alias.code, 0);
  EXPECT_NE(alias.err.find("task 'predict' uses model clicks@canary: model 'clicks' has no alias "
                           "'canary'"),
            std::string::npos)
      << alias.err;
  auto version = run(infer("clicks/9"));
  EXPECT_NE(version.code, 0);
  EXPECT_NE(version.err.find("no version 9 of model 'clicks'"), std::string::npos) << version.err;
  auto ok = run(infer("clicks/1"));
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(json::parse(ok.out)["id"], "infer-1");  // the refused ones drew no number
}

// Tags and descriptions are events on a version: `tag` sets keys (one event per tag that
// changes, by $USER), `untag` removes them, `describe` edits the description the train gave;
// `show` gives the tags and description now and, with --json, every event oldest first;
// `ls --tag` finds the versions tagged so. A bad key or value, a removal of a tag the
// version lacks, or an unknown ref is refused (exit 1) and records nothing.
TEST_F(ModelsTest, TagsAndDescriptionsAreEventsThatShowAndLsRead) {
  fs::path f = retrain_dag();
  ASSERT_EQ(run(f).code, 0);
  ASSERT_EQ(run(f, {"-p", "auc=0.87"}).code, 0);
  auto as_carol = [&](std::vector<std::string> args) {
    args.insert(args.begin(), "models");
    args.insert(args.end(), {"--home", home().string()});
    return drover(args, {{"USER", "carol"}});
  };

  auto tagged = as_carol({"tag", "clicks/1", "team=ads", "stage=canary", "note=a=b c"});
  ASSERT_EQ(tagged.code, 0) << tagged.err;
  EXPECT_EQ(trim(tagged.out), "clicks/1: tagged team=ads, stage=canary, note=a=b c");
  auto latest = as_carol({"tag", "clicks", "team=ads"});  // NAME: the latest, clicks/2
  ASSERT_EQ(latest.code, 0) << latest.err;
  EXPECT_EQ(trim(latest.out), "clicks/2: tagged team=ads");
  auto same = as_carol({"tag", "clicks/1", "team=ads"});
  ASSERT_EQ(same.code, 0) << same.err;
  EXPECT_EQ(trim(same.out), "clicks/1: unchanged");
  auto untagged = as_carol({"untag", "clicks/1", "stage"});
  ASSERT_EQ(untagged.code, 0) << untagged.err;
  EXPECT_EQ(trim(untagged.out), "clicks/1: removed stage");
  auto described = as_carol({"describe", "clicks/1", "baseline: 14 days of events"});
  ASSERT_EQ(described.code, 0) << described.err;
  EXPECT_EQ(trim(described.out), "clicks/1: description set");
  json answer = models_json({"tag", "clicks/1", "stage=full"});
  EXPECT_EQ(answer["ref"], "clicks/1");
  EXPECT_EQ(answer["tags"], (json{{"team", "ads"}, {"note", "a=b c"}, {"stage", "full"}}));
  ASSERT_EQ(answer["events"].size(), 1u) << answer.dump(2);
  EXPECT_EQ(answer["events"][0]["key"], "stage");
  EXPECT_EQ(answer["events"][0]["value"], "full");

  json v = models_json({"show", "clicks/1"});
  EXPECT_EQ(v["tags"], (json{{"team", "ads"}, {"note", "a=b c"}, {"stage", "full"}}));
  EXPECT_EQ(v["description"], "baseline: 14 days of events");
  const json& events = v["tag_events"];
  ASSERT_EQ(events.size(), 5u) << v.dump(2);  // three set, one removed, one set again
  EXPECT_EQ(events[0]["key"], "team");
  EXPECT_EQ(events[0]["value"], "ads");
  EXPECT_EQ(events[0]["by"], "carol");
  EXPECT_TRUE(events[0]["at"].is_string());
  EXPECT_EQ(events[3]["key"], "stage");
  EXPECT_TRUE(events[3]["value"].is_null());
  EXPECT_LT(events[0]["seq"].get<int64_t>(), events[4]["seq"].get<int64_t>());
  ASSERT_EQ(v["description_events"].size(), 1u);
  EXPECT_EQ(v["description_events"][0]["description"], "baseline: 14 days of events");
  EXPECT_EQ(v["description_events"][0]["by"], "carol");
  json two = models_json({"show", "clicks/2"});
  EXPECT_EQ(two["tags"], (json{{"team", "ads"}}));
  EXPECT_EQ(two["description"], "weekly");  // the train's, never edited
  EXPECT_EQ(two["description_events"], json::array());

  auto text = models({"show", "clicks/1"});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("  description: baseline: 14 days of events\n"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("  tags:\n    note = a=b c\n    stage = full\n    team = ads\n"),
            std::string::npos)
      << text.out;

  json both = models_json({"ls", "--tag", "team=ads"});
  ASSERT_EQ(both["models"].size(), 1u) << both.dump(2);
  EXPECT_EQ(both["models"][0]["tagged"], json::array({1, 2}));
  EXPECT_EQ(models_json({"ls", "--tag", "team=ads", "--tag", "stage=full"})["models"][0]["tagged"],
            json::array({1}));
  EXPECT_EQ(models_json({"ls", "--tag", "stage=canary"})["models"], json::array());
  EXPECT_FALSE(models_json({"ls"})["models"][0].contains("tagged"));
  auto none = models({"ls", "--tag", "team=search"});
  ASSERT_EQ(none.code, 0) << none.err;
  EXPECT_EQ(trim(none.out), "no version has those tags");
  auto ls_text = models({"ls", "--tag", "team=ads"});
  EXPECT_NE(ls_text.out.find("(1, 2)"), std::string::npos) << ls_text.out;
  auto ls_bad = models({"ls", "--tag", "team"});
  EXPECT_EQ(ls_bad.code, 1);
  EXPECT_EQ(trim(ls_bad.err), "drover: --tag 'team': a tag is KEY=VALUE");

  for (auto [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"tag", "clicks/1", "bad key=x"},
            "tag key 'bad key': a key is 1 to 64 of [A-Za-z0-9_.-]"},
           {{"tag", "clicks/1", std::string(65, 'k') + "=x"},
            "tag key '" + std::string(65, 'k') + "': a key is 1 to 64 of [A-Za-z0-9_.-]"},
           {{"tag", "clicks/1", "=x"}, "tag key '': a key is 1 to 64 of [A-Za-z0-9_.-]"},
           {{"tag", "clicks/1", "team"}, "'team': a tag is KEY=VALUE"},
           {{"tag", "clicks/1", "team=a\x1b[2Jb"},
            "tag 'team': value holds the control character U+001B at offset 1"},
           {{"tag", "clicks/1", "team=line\nbreak"},
            "tag 'team': value holds the control character U+000A at offset 4"},
           {{"tag", "clicks/1", "team=\xff"},
            "tag 'team': value is not valid UTF-8 (byte 0xff at offset 0)"},
           {{"tag", "clicks/1", "team=" + std::string(1025, 'x')},
            "tag 'team': value is 1025 bytes, more than 1024"},
           {{"tag", "clicks/1", "team=a", "team=b"}, "tag 'team' is given twice"},
           {{"untag", "clicks/1", "owner"}, "clicks/1 has no tag 'owner'"},
           {{"untag", "clicks/1", "team", "owner"}, "clicks/1 has no tag 'owner'"},
           {{"describe", "clicks/1", "bell\a"},
            "description holds the control character U+0007 at offset 4 (only tab and newline "
            "are allowed)"},
           {{"describe", "clicks/1", std::string(4097, 'd')},
            "description is 4097 bytes, more than 4096"},
           {{"tag", "nope", "team=x"}, "no model 'nope' in the registry"},
           {{"tag", "clicks/9", "team=x"}, "no version 9 of model 'clicks'"},
           {{"untag", "clicks@canary", "team"}, "model 'clicks' has no alias 'canary'"},
           {{"describe", "nope/1", "x"}, "no model 'nope' in the registry"},
       }) {
    auto r = models(args);
    EXPECT_EQ(r.code, 1) << args[0] << " " << args[2] << ": " << r.out;
    EXPECT_EQ(trim(r.err), "drover: " + message) << args[0] << " " << args[2];
  }
  // 4096 bytes over several lines and a tab is a description; 1024 bytes of UTF-8 a value.
  std::string euro;
  for (int i = 0; i < 341; ++i) euro += "\xe2\x82\xac";  // 1023 bytes
  ASSERT_EQ(models({"tag", "clicks/2", "price=" + euro + "!"}).code, 0);
  std::string lines = "line one\n\tindented\n" + std::string(4096 - 19, 'x');
  ASSERT_EQ(models({"describe", "clicks/2", lines}).code, 0);
  EXPECT_EQ(models_json({"show", "clicks/2"})["description"], lines);
  // Nothing the refusals were asked to record is there.
  json after = models_json({"show", "clicks/1"});
  EXPECT_EQ(after["tag_events"], v["tag_events"]);
  EXPECT_EQ(after["description_events"], v["description_events"]);
  EXPECT_EQ(models_json({"history", "clicks"})["events"], json::array());  // no alias moved
}

// ---- The registry through the REST API of a real daemon on the same home.

class ModelsApiTest : public ModelsTest {
 protected:
  // clicks/1 passes its gates (production -> 1), clicks/2 fails them (run retrain-2),
  // clicks/3 is never validated; then a daemon on the same home.
  void SetUp() override {
    ModelsTest::SetUp();
    ASSERT_EQ(run(gated_dag()).code, 0);
    ASSERT_NE(run(gated_dag(), {"-p", "auc=0.5"}).code, 0);
    ASSERT_EQ(run(retrain_dag()).code, 0);
    fs::create_directories(tmp / "dags");
    daemon = std::make_unique<Daemon>(home(), tmp / "dags");
    ASSERT_TRUE(daemon->start()) << daemon->log();
    api = ClientConfig{daemon->url(), trim(daemon->token()), {}};
  }
  void TearDown() override {
    if (HasFailure() && daemon) std::fprintf(stderr, "daemon log:\n%s\n", daemon->log().c_str());
  }
  HttpResponse call(const std::string& method, const std::string& target,
                    const std::string& body = {}, std::optional<std::string> token = {}) {
    ClientConfig c = api;
    if (token) c.token = *token;
    auto r = request(c, method, target, body);
    EXPECT_TRUE(r.ok()) << r.message();
    return r.ok() ? *r : HttpResponse{};
  }
  json get_json(const std::string& target) {
    auto r = call("GET", target);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    json j = json::parse(r.body, nullptr, false);
    return j.is_discarded() ? json() : j;
  }
  static json error_of(const HttpResponse& r) {
    return json::parse(r.body, nullptr, false).value("error", json());
  }

  std::unique_ptr<Daemon> daemon;
  ClientConfig api;
};

// Each read route answers what `drover models … --json` prints for the same store, field
// for field; what the registry lacks is 404 naming it.
TEST_F(ModelsApiTest, TheApiServesTheRegistryInTheShapesOfTheClisJson) {
  json listing = get_json("/api/v1/models");
  EXPECT_EQ(listing, models_json({"ls"}));
  ASSERT_EQ(listing["models"].size(), 1u) << listing.dump(2);
  EXPECT_EQ(listing["models"][0]["latest"], 3);
  json latest = get_json("/api/v1/models/clicks");
  EXPECT_EQ(latest, models_json({"show", "clicks"}));
  EXPECT_EQ(latest["ref"], "clicks/3");
  json second = get_json("/api/v1/models/clicks/versions/2");
  EXPECT_EQ(second, models_json({"show", "clicks/2"}));
  ASSERT_EQ(second["validations"].size(), 1u) << second.dump(2);
  EXPECT_EQ(second["validations"][0]["passed"], false);
  ASSERT_FALSE(second["artifacts"].empty());
  json production = get_json("/api/v1/models/clicks/aliases/production");
  EXPECT_EQ(production, models_json({"show", "clicks@production"}));
  EXPECT_EQ(production["version"], 1);
  json history = get_json("/api/v1/models/clicks/history");
  EXPECT_EQ(history, models_json({"history", "clicks"}));
  ASSERT_EQ(history["events"].size(), 1u) << history.dump(2);
  EXPECT_EQ(history["events"][0]["by"], "run retrain-1");

  // An artifact's bytes come from the blob route, by the sha256 the version names.
  const json& artifact = second["artifacts"][0];
  auto blob = call("GET", "/api/v1/blobs/" + artifact["sha256"].get<std::string>());
  EXPECT_EQ(blob.status, 200);
  EXPECT_EQ(blob.body, "model over 3 rows\n");
  EXPECT_EQ(sha256_hex(blob.body), artifact["sha256"]);

  for (auto [target, message] : std::vector<std::pair<std::string, std::string>>{
           {"/api/v1/models/nope", "no model 'nope' in the registry"},
           {"/api/v1/models/nope/history", "no model 'nope' in the registry"},
           {"/api/v1/models/clicks/versions/9", "no version 9 of model 'clicks'"},
           {"/api/v1/models/clicks/aliases/canary", "model 'clicks' has no alias 'canary'"}}) {
    auto r = call("GET", target);
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_EQ(error_of(r), json({{"code", "not_found"}, {"message", message}})) << target;
  }
  EXPECT_EQ(call("GET", "/api/v1/models/clicks/versions/two").status, 400);
  for (std::string target : {"/api/v1/models", "/api/v1/models/clicks/history"}) {
    EXPECT_EQ(call("GET", target, "", "").status, 401) << target;
    EXPECT_EQ(call("GET", target, "", "wrong").status, 401) << target;
  }
}

// PUT on an alias moves it as `drover models alias` does: a version never validated, or
// whose latest validation failed, is refused (409) and records nothing unless forced; the
// move is one event by the API user with its reason and whether it was forced, the same
// event the CLI's history then shows; a move to the version named already, or to none, is
// refused.
TEST_F(ModelsApiTest, AnAliasMoveThroughTheApiIsCheckedAndRecordedAsTheClisIs) {
  const std::string staging = "/api/v1/models/clicks/aliases/staging";
  auto never = call("PUT", staging, R"({"version": 3, "reason": "try it"})");
  EXPECT_EQ(never.status, 409) << never.body;
  EXPECT_EQ(error_of(never)["message"],
            "clicks/3 was never validated: a validate task gates a version before an alias "
            "names it (--force moves it anyway, and the event says so)");
  auto failed = call("PUT", staging, R"({"version": 2})");
  EXPECT_EQ(failed.status, 409);
  EXPECT_EQ(error_of(failed)["message"],
            "clicks/2 failed its latest validation (run retrain-2, task validate): --force "
            "moves it anyway, and the event says so");
  EXPECT_EQ(call("PUT", staging, R"({"version": 3, "force": true})", "").status, 401);
  EXPECT_EQ(models_json({"history", "clicks"})["events"].size(), 1u) << "a refused move recorded";
  EXPECT_EQ(call("GET", staging).status, 404);

  auto forced = call("PUT", staging, R"({"version": 3, "reason": "shadow test", "force": true})");
  ASSERT_EQ(forced.status, 200) << forced.body;
  json event = json::parse(forced.body);
  EXPECT_EQ(event["alias"], "staging");
  EXPECT_TRUE(event["from"].is_null());
  EXPECT_EQ(event["to"], 3);
  EXPECT_EQ(event["by"], "api");
  EXPECT_EQ(event["reason"], "shadow test");
  EXPECT_EQ(event["forced"], true);
  EXPECT_TRUE(event["run"].is_null());
  json history = models_json({"history", "clicks"});
  ASSERT_EQ(history["events"].size(), 2u) << history.dump(2);
  EXPECT_EQ(history["events"][1], event);
  EXPECT_EQ(get_json("/api/v1/models/clicks/history"), history);
  json shown = get_json(staging);
  EXPECT_EQ(shown, models_json({"show", "clicks@staging"}));
  EXPECT_EQ(shown["version"], 3);
  EXPECT_EQ(shown["aliases"], json::array({"staging"}));

  // A validated version moves without force: the rollback of staging to clicks/1.
  auto back = call("PUT", staging, R"({"version": 1, "reason": "rollback"})");
  ASSERT_EQ(back.status, 200) << back.body;
  EXPECT_EQ(json::parse(back.body)["from"], 3);
  EXPECT_EQ(json::parse(back.body)["forced"], false);
  EXPECT_EQ(models_json({"ls"})["models"][0]["aliases"], (json{{"production", 1}, {"staging", 1}}));

  auto same = call("PUT", "/api/v1/models/clicks/aliases/production", R"({"version": 1})");
  EXPECT_EQ(same.status, 409);
  EXPECT_EQ(error_of(same)["message"],
            "alias production of model 'clicks' names version 1 already");
  auto none = call("PUT", staging, R"({"version": 9, "force": true})");
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(error_of(none)["message"], "no version 9 of model 'clicks'");
  auto nomodel = call("PUT", "/api/v1/models/nope/aliases/staging", R"({"version": 1})");
  EXPECT_EQ(nomodel.status, 404);
  EXPECT_EQ(error_of(nomodel)["message"], "no model 'nope' in the registry");
  EXPECT_EQ(call("PUT", staging, R"({"version": )").status, 400);
  EXPECT_EQ(call("PUT", staging, R"({"reason": "no version"})").status, 422);
  EXPECT_EQ(models_json({"history", "clicks"})["events"].size(), 3u);
}

// PUT and DELETE on a version's tag change it as `drover models tag` / `untag` do: one event
// by `api`, the answer the CLI's --json prints, the show JSON of both then the same; a bad
// key is 400, a bad value 422, an unknown version or a removal of a tag it lacks 404.
TEST_F(ModelsApiTest, ATagSetOrRemovedThroughTheApiIsTheClisTagEvent) {
  const std::string team = "/api/v1/models/clicks/versions/2/tags/team";
  auto set = call("PUT", team, R"({"value": "ads"})");
  ASSERT_EQ(set.status, 200) << set.body;
  json answer = json::parse(set.body);
  EXPECT_EQ(answer["ref"], "clicks/2");
  EXPECT_EQ(answer["tags"], (json{{"team", "ads"}}));
  ASSERT_EQ(answer["events"].size(), 1u) << answer.dump(2);
  EXPECT_EQ(answer["events"][0]["by"], "api");
  EXPECT_EQ(answer["events"][0]["value"], "ads");
  json shown = get_json("/api/v1/models/clicks/versions/2");
  EXPECT_EQ(shown, models_json({"show", "clicks/2"}));
  EXPECT_EQ(shown["tags"], (json{{"team", "ads"}}));
  EXPECT_EQ(shown["tag_events"], answer["events"]);
  auto again = call("PUT", team, R"({"value": "ads"})");
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(json::parse(again.body)["events"], json::array());  // unchanged: no event
  EXPECT_EQ(models_json({"ls", "--tag", "team=ads"})["models"][0]["tagged"], json::array({2}));

  auto removed = call("DELETE", team);
  ASSERT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(json::parse(removed.body)["tags"], json::object());
  EXPECT_TRUE(json::parse(removed.body)["events"][0]["value"].is_null());
  auto gone = call("DELETE", team);
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(error_of(gone),
            json({{"code", "not_found"}, {"message", "clicks/2 has no tag 'team'"}}));
  auto control = call("PUT", team, R"({"value": "a\u001bb"})");
  EXPECT_EQ(control.status, 422);
  EXPECT_EQ(error_of(control)["message"],
            "tag 'team': value holds the control character U+001B at offset 1");
  auto missing = call("PUT", "/api/v1/models/clicks/versions/9/tags/team", R"({"value": "x"})");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(error_of(missing)["message"], "no version 9 of model 'clicks'");
  EXPECT_EQ(call("DELETE", "/api/v1/models/nope/versions/1/tags/team").status, 404);
  EXPECT_EQ(call("PUT", "/api/v1/models/clicks/versions/2/tags/a%21", R"({"value": "x"})").status,
            400);
  EXPECT_EQ(call("PUT", team, R"({"value": "x"})", "").status, 401);
  EXPECT_EQ(models_json({"show", "clicks/2"})["tag_events"].size(), 2u);  // the set, the removal
}

}  // namespace
}  // namespace drover::testing
