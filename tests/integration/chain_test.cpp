// Chained starts, end to end with the real binary: a command task whose one unfinished
// upstream is a command that declares no outputs is armed on that upstream's worker, which
// starts it the moment the upstream exits 0 (scheduler/engine_impl.hpp, executor/worker.cpp).
// What must hold: order (nothing starts before what it needs has ended), each body once, no
// start after a failure, a cancel or a retry it should not follow, and no `armed` try left
// in any record, also across a kill -9 of the daemon restarted on the same port.
#include <signal.h>

#include <cstdio>

#include "common/time.hpp"
#include "tests/integration/harness.hpp"

namespace drover::testing {
namespace {

// The tries of `task` in a run record (its `tasks` list holds one entry per try).
std::vector<json> tries_of(const json& rec, const std::string& task) {
  std::vector<json> out;
  for (auto& t : rec["tasks"])
    if (t["task"] == task) out.push_back(t);
  return out;
}

bool any_armed(const json& rec) {
  for (auto& t : rec["tasks"])
    if (t["state"] == "armed") return true;
  return false;
}

// A chain of `n` string commands; each appends "sI" then "eI" to `ledger` around `body`.
std::string chain_dag(const std::string& id, int n, const fs::path& ledger,
                      const std::string& body = "true") {
  std::string text = "dag: " + id + "\ntasks:\n";
  for (int i = 0; i < n; ++i) {
    text += "  t" + std::to_string(i) + ":\n";
    if (i > 0) text += "    needs: [t" + std::to_string(i - 1) + "]\n";
    text += "    run: 'echo s" + std::to_string(i) + " >> " + ledger.string() + "; " + body +
            "; echo e" + std::to_string(i) + " >> " + ledger.string() + "'\n";
  }
  return text;
}

class ChainRunTest : public LocalFixture {
 protected:
  ProcResult run(const fs::path& file, const std::string& slots = "2") {
    return drover({"run", file.string(), "--home", home().string(), "--project-dir",
                   tmp.path().string(), "--json", "--slots", slots});
  }
  static json record(const ProcResult& r) {
    json j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json() : j;
  }
};

TEST_F(ChainRunTest, EachTaskStartsAfterTheOneBeforeEndsAndRunsOnce) {
  fs::path ledger = tmp / "ledger";
  auto f = dag("chain.yaml", chain_dag("chain", 12, ledger));
  auto r = run(f);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  json rec = record(r);
  EXPECT_EQ(rec["state"], "success");
  std::string want;
  for (int i = 0; i < 12; ++i) want += "s" + std::to_string(i) + "\ne" + std::to_string(i) + "\n";
  EXPECT_EQ(read_all(ledger), want);
  std::optional<TimePoint> ended_before;
  for (int i = 0; i < 12; ++i) {
    auto tries = tries_of(rec, "t" + std::to_string(i));
    ASSERT_EQ(tries.size(), 1u) << rec.dump(2);
    EXPECT_EQ(tries[0]["state"], "success");
    EXPECT_EQ(tries[0]["try"], 1);
    EXPECT_TRUE(fs::exists(tries[0]["log"].get<std::string>()));
    // The record agrees with the ledger: each try started after the one before ended.
    auto started = parse_iso(tries[0]["started_at"].get<std::string>());
    auto ended = parse_iso(tries[0]["ended_at"].get<std::string>());
    ASSERT_TRUE(started.ok() && ended.ok()) << tries[0].dump();
    if (ended_before) {
      EXPECT_GE(*started, *ended_before) << "t" << i << "\n" << rec.dump(2);
    }
    EXPECT_GE(*ended, *started);
    ended_before = *ended;
  }
  EXPECT_FALSE(any_armed(rec));
}

TEST_F(ChainRunTest, NothingStartsAfterAFailure) {
  fs::path marker = tmp / "ran";
  auto f = dag("fail.yaml", R"(dag: fail
tasks:
  a: {run: [true]}
  b: {needs: [a], run: 'exit 3'}
  c: {needs: [b], run: 'touch )" +
                                marker.string() +
                                R"('}
  d: {needs: [c], run: 'touch )" +
                                marker.string() +
                                R"('}
)");
  auto r = run(f);
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  json rec = record(r);
  EXPECT_EQ(rec["state"], "failed");
  EXPECT_EQ(rec["task_states"]["b"], "failed");
  EXPECT_EQ(rec["task_states"]["c"], "upstream_failed");
  EXPECT_EQ(rec["task_states"]["d"], "upstream_failed");
  EXPECT_TRUE(tries_of(rec, "c").empty()) << rec.dump(2);  // armed, never started: not kept
  EXPECT_TRUE(tries_of(rec, "d").empty()) << rec.dump(2);
  EXPECT_FALSE(fs::exists(marker));
}

TEST_F(ChainRunTest, ARetriedUpstreamStartsItsSuccessorOnceAfterTheRetry) {
  fs::path ledger = tmp / "ledger";
  fs::path once = tmp / "failed-once";
  auto f = dag("retry.yaml", R"(dag: retry
tasks:
  a: {run: [true]}
  b:
    needs: [a]
    retries: 1
    retry_delay: 0s
    run: 'test -e )" + once.string() +
                                 " || { touch " + once.string() + R"(; exit 1; }'
  c: {needs: [b], run: 'echo c >> )" +
                                 ledger.string() +
                                 R"('}
)");
  auto r = run(f);
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  json rec = record(r);
  auto b = tries_of(rec, "b");
  ASSERT_EQ(b.size(), 2u) << rec.dump(2);
  EXPECT_EQ(b[0]["state"], "failed");
  EXPECT_EQ(b[1]["state"], "success");
  auto c = tries_of(rec, "c");
  ASSERT_EQ(c.size(), 1u) << rec.dump(2);
  EXPECT_EQ(c[0]["try"], 1);
  EXPECT_EQ(read_all(ledger), "c\n");
  EXPECT_FALSE(any_armed(rec));
}

TEST_F(ChainRunTest, AChainDoesNotKeepItsSlotFromATaskThatWaitsForOne) {
  // One slot: `a` runs while `c` (earlier in the run's order than `b`) waits for the slot.
  // Slots go in order, so `b` is not chained on `a`: `c` runs before it.
  fs::path ledger = tmp / "ledger";
  std::string l = ledger.string();
  auto f = dag("slot.yaml", "dag: slot\ntasks:\n  a: {run: 'echo a >> " + l +
                                "; sleep 0.2'}\n  c: {run: 'echo c >> " + l +
                                "'}\n  b: {needs: [a], run: 'echo b >> " + l + "'}\n");
  auto r = run(f, "1");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_EQ(read_all(ledger), "a\nc\nb\n");
}

class ChainDaemonTest : public DaemonFixture {};

TEST_F(ChainDaemonTest, ACancelStartsNothingArmed) {
  fs::path marker = tmp / "ran";
  dag("cancel.yaml", R"(dag: cancel
tasks:
  hang: {run: 'echo $$ > pid; exec sleep 60'}
  next: {needs: [hang], run: 'touch )" +
                         marker.string() + R"('}
  last: {needs: [next], run: 'touch )" +
                         marker.string() + R"('}
)");
  start();
  std::string id = trigger({"cancel"});
  fs::path pidfile = home() / "runs" / id / "hang.1" / "work" / "pid";
  ASSERT_TRUE(wait_until([&] { return fs::exists(pidfile) && !read_all(pidfile).empty(); }));
  // While `hang` runs, `next` and `last` wait armed on its worker.
  ASSERT_TRUE(wait_until([&] { return any_armed(daemon->run_record(id)); }))
      << daemon->run_record(id).dump(2);
  auto r = daemon->cli({"cancel", id});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "cancelled"; }));
  ASSERT_TRUE(wait_until([&] { return !any_armed(daemon->run_record(id)); }))
      << daemon->run_record(id).dump(2);
  json rec = daemon->run_record(id);
  EXPECT_TRUE(tries_of(rec, "next").empty()) << rec.dump(2);
  EXPECT_TRUE(tries_of(rec, "last").empty()) << rec.dump(2);
  EXPECT_EQ(rec["task_states"]["next"], "cancelled");
  EXPECT_FALSE(fs::exists(marker));
}

TEST_F(ChainDaemonTest, AKilledDaemonRestartedOnTheSamePortRunsEachArmedTaskOnce) {
  // kill -9 while `slow` runs with its successors armed on its worker: the restarted daemon
  // disarms them (the worker, whose daemon is gone, starts nothing more), adopts `slow`, and
  // starts the rest the usual way; the ledger shows every body once, in order.
  fs::path ledger = tmp / "ledger";
  dag("crash.yaml", chain_dag("crash", 4, ledger, "test $DROVER_TASK != t1 || sleep 2"));
  start();
  std::string id = trigger({"crash"});
  ASSERT_TRUE(wait_until([&] { return read_all(ledger).find("s1") != std::string::npos; }));
  ASSERT_TRUE(wait_until([&] { return any_armed(daemon->run_record(id)); }))
      << daemon->run_record(id).dump(2);
  daemon->kill9();
  ASSERT_TRUE(daemon->start());  // the same port: nothing of the old daemon holds it
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "success"; }, std::chrono::seconds(30)))
      << daemon->run_record(id).dump(2);
  EXPECT_EQ(read_all(ledger), "s0\ne0\ns1\ne1\ns2\ne2\ns3\ne3\n");
  json rec = daemon->run_record(id);
  for (int i = 0; i < 4; ++i) {
    auto tries = tries_of(rec, "t" + std::to_string(i));
    ASSERT_EQ(tries.size(), 1u) << rec.dump(2);
    EXPECT_EQ(tries[0]["state"], "success");
  }
  EXPECT_FALSE(any_armed(rec));
}

TEST_F(ChainDaemonTest, AKilledWorkerLeavesItsArmedTasksToTheDaemon) {
  // kill -9 of the worker that holds `t1` running and its successors armed: `t1` lives on
  // and is adopted (its end reaped by the daemon), the armed tries are disarmed and started
  // the usual way, each body once.
  fs::path ledger = tmp / "ledger";
  std::string text = chain_dag("wk", 4, ledger, "test $DROVER_TASK != t1 || sleep 2");
  text.insert(text.find('\n') + 1, "defaults: {retries: 1, retry_delay: 0s}\n");
  dag("wk.yaml", text);
  start();
  std::string id = trigger({"wk"});
  ASSERT_TRUE(wait_until([&] { return read_all(ledger).find("s1") != std::string::npos; }));
  ASSERT_TRUE(wait_until([&] { return any_armed(daemon->run_record(id)); }))
      << daemon->run_record(id).dump(2);
  fs::path pidfile;
  for (auto& t : tries_of(daemon->run_record(id), "t1"))
    pidfile = fs::path(t["log"].get<std::string>()).parent_path() / "pid";
  ASSERT_TRUE(wait_until([&] { return read_all(pidfile).find('\n') != std::string::npos; }));
  int pid = 0, writer = 0;
  long long start = 0;
  ASSERT_EQ(std::sscanf(read_all(pidfile).c_str(), "%d %lld %d", &pid, &start, &writer), 3);
  ASSERT_GT(writer, 0);
  ::kill(writer, SIGKILL);
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "success"; }, std::chrono::seconds(30)))
      << daemon->run_record(id).dump(2);
  json rec = daemon->run_record(id);
  // t1's end was the worker's to write: its command, the daemon's orphan once the worker
  // died, is reaped by the daemon, which writes its result; every body ran once, in order.
  EXPECT_EQ(read_all(ledger), "s0\ne0\ns1\ne1\ns2\ne2\ns3\ne3\n");
  auto t1 = tries_of(rec, "t1");
  ASSERT_EQ(t1.size(), 1u) << rec.dump(2);
  EXPECT_EQ(t1[0]["state"], "success");
  for (const char* t : {"t2", "t3"}) {
    auto tries = tries_of(rec, t);
    ASSERT_EQ(tries.size(), 1u) << rec.dump(2);
    EXPECT_EQ(tries[0]["state"], "success");
  }
  EXPECT_FALSE(any_armed(rec));
}

}  // namespace
}  // namespace drover::testing
