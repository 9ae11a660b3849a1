// End to end: the real `drover serve` on a loopback port in a temp home, driven by the
// real CLI. Waits are on events with deadlines; nothing depends on wall-clock luck.
#include <poll.h>
#include <sys/socket.h>

#include "tests/integration/harness.hpp"

namespace drover::testing {
namespace {

class DaemonTest : public DaemonFixture {
 protected:
  std::string task_state(const std::string& run, const std::string& task) {
    json rec = daemon->run_record(run);
    if (!rec.contains("task_states")) return "";
    return rec["task_states"].value(task, "");
  }
  // Whether `drover dags ls` lists DAG `id`.
  bool listed(const std::string& id) {
    json j = json::parse(daemon->cli({"dags", "ls", "--json"}).out, nullptr, false);
    if (j.is_discarded()) return false;
    for (auto& d : j.value("dags", json::array()))
      if (d.value("dag", "") == id) return true;
    return false;
  }
  // The inotify watches the daemon holds, from /proc/PID/fdinfo.
  int inotify_watches() {
    fs::path proc = "/proc/" + std::to_string(daemon->pid());
    int n = 0;
    std::error_code ec;
    for (auto& fd : fs::directory_iterator(proc / "fd", ec)) {
      if (fs::read_symlink(fd.path(), ec).string() != "anon_inode:inotify") continue;
      std::istringstream info(read_all(proc / "fdinfo" / fd.path().filename()));
      for (std::string line; std::getline(info, line);) n += line.rfind("inotify wd:", 0) == 0;
    }
    return n;
  }
};

TEST_F(DaemonTest, TriggerWithWaitSucceedsAndRecordsParams) {
  dag("hello.yaml", R"(dag: hello
params:
  n: {type: int, default: 1}
tasks:
  a: {run: "echo {{ params.n }} > n.txt", outputs: [n.txt]}
  b: {run: [true], needs: [a]}
)");
  start();
  auto r = daemon->cli({"trigger", "hello", "-p", "n=5", "--wait"});
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  auto runs = daemon->cli({"runs", "ls", "--dag", "hello", "--json"});
  json j = json::parse(runs.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << runs.out;
  json list = j.is_array() ? j : j["runs"];
  ASSERT_EQ(list.size(), 1u);
  std::string id = list[0]["id"];
  json rec = daemon->run_record(id);
  EXPECT_EQ(rec["state"], "success");
  EXPECT_EQ(rec["params"]["n"], 5);
  EXPECT_EQ(rec["trigger"]["kind"], "manual");
  EXPECT_EQ(rec["tasks"].size(), 2u);
}

// A stop on SIGTERM leaves HOME/serve.stopped, which the next daemon takes away at start:
// its recovery then knows the earlier stop was clean and counts no crash (recovery_test).
TEST_F(DaemonTest, ACleanStopIsMarkedForTheNextDaemon) {
  dag("hello.yaml", "dag: hello\ntasks:\n  a: {run: [true]}\n");
  start();
  EXPECT_FALSE(fs::exists(home() / "serve.stopped"));
  daemon->stop();
  EXPECT_TRUE(fs::exists(home() / "serve.stopped"));
  ASSERT_TRUE(daemon->start());
  EXPECT_FALSE(fs::exists(home() / "serve.stopped"));
}

TEST_F(DaemonTest, ApiRefusesCallsWithoutTheToken) {
  dag("hello.yaml", "dag: hello\ntasks:\n  a: {run: [true]}\n");
  start();
  auto no_token = drover({"dags", "ls", "--server", daemon->url()}, {{"DROVER_TOKEN", "wrong"}});
  EXPECT_EQ(no_token.code, 1);
  EXPECT_NE(no_token.err.find("invalid bearer token"), std::string::npos) << no_token.err;
  auto ok = daemon->cli({"dags", "ls", "--json"});
  EXPECT_EQ(ok.code, 0) << ok.err;
}

TEST_F(DaemonTest, WrongParamTypeIsRejectedAndNoRunIsCreated) {
  dag("typed.yaml",
      "dag: typed\nparams:\n  n: {type: int, default: 1}\ntasks:\n  a: {run: [true]}\n");
  start();
  auto r = daemon->cli({"trigger", "typed", "-p", "n=seven"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("param 'n'"), std::string::npos) << r.err;
  auto runs = daemon->cli({"runs", "ls", "--json"});
  json j = json::parse(runs.out, nullptr, false);
  json list = j.is_array() ? j : j["runs"];
  EXPECT_EQ(list.size(), 0u) << runs.out;
}

TEST_F(DaemonTest, TriggerParamsNeverReachTheShell) {
  fs::path marker = tmp / "pwned";
  dag("inject.yaml", R"(dag: inject
params:
  msg: {type: string, default: hi}
tasks:
  say: {run: "echo {{ params.msg }}"}
)");
  start();
  std::string evil = "$(touch " + marker.string() + "); x";
  auto r = daemon->cli({"trigger", "inject", "-p", "msg=" + evil, "--wait"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(fs::exists(marker));
}

TEST_F(DaemonTest, AFloodOfConnectionsNeverLeavesATryWithoutDescriptors) {
  // 1,100 idle connections to a daemon under systemd's default `ulimit -n 1024` took every
  // descriptor: the next worker could not be started and the run failed (issue 9). The
  // daemon now caps connections below its limit, keeping descriptors for the scheduler.
  dag("fan.yaml", R"(dag: fan
tasks:
  gate: {run: 'while [ ! -e {{ project_dir }}/go ]; do sleep 0.05; done'}
  p1: {run: 'touch {{ project_dir }}/done-1', needs: [gate]}
  p2: {run: 'touch {{ project_dir }}/done-2', needs: [gate]}
  p3: {run: 'touch {{ project_dir }}/done-3', needs: [gate]}
  p4: {run: 'touch {{ project_dir }}/done-4', needs: [gate]}
  p5: {run: 'touch {{ project_dir }}/done-5', needs: [gate]}
  p6: {run: 'touch {{ project_dir }}/done-6', needs: [gate]}
)");
  start({"--slots", "8"}, {"prlimit", "--nofile=1024:1024"});
  std::string id = trigger({"fan"});
  ASSERT_TRUE(wait_until([&] { return fs::exists(home() / "runs" / id / "gate.1"); }));

  std::vector<int> flood;
  for (int i = 0; i < 1100; ++i)
    if (int fd = connect_loopback(daemon->port()); fd >= 0) flood.push_back(fd);
  // The last ones were over the cap: answered 503 and closed.
  pollfd p{flood.back(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  char buf[64] = {};
  ::recv(flood.back(), buf, sizeof buf - 1, 0);
  EXPECT_EQ(std::string(buf).rfind("HTTP/1.1 503", 0), 0u) << buf;

  write_text(tmp / "go", "");  // the six tasks start now, under the flood
  bool all = wait_until([&] {
    for (int n = 1; n <= 6; ++n)
      if (!fs::exists(tmp / ("done-" + std::to_string(n)))) return false;
    return true;
  });
  for (int fd : flood) ::close(fd);
  EXPECT_TRUE(all);
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "success"; })) << state_of(id);
}

TEST_F(DaemonTest, ATaskGetsTheOpenFilesLimitTheDaemonWasStartedWithNotTheRaisedOne) {
  // The daemon raises its soft RLIMIT_NOFILE to the hard limit for its connections; a task
  // inherited the raised one (a program that loops to it closing descriptors, or sizes
  // select() sets by it, then misbehaves). It gets the limit the daemon was started with.
  dag("limits.yaml", R"(dag: limits
tasks:
  soft: {run: 'ulimit -Sn > {{ project_dir }}/soft; ulimit -Hn > {{ project_dir }}/hard'}
)");
  start({}, {"prlimit", "--nofile=1000:4096"});
  std::string limits = read_all(fs::path("/proc") / std::to_string(daemon->pid()) / "limits");
  EXPECT_NE(limits.find("Max open files            4096                 4096"), std::string::npos)
      << limits;  // raised, for the daemon itself
  std::string id = trigger({"limits"});
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "success"; })) << state_of(id);
  EXPECT_EQ(read_all(tmp / "soft"), "1000\n");
  EXPECT_EQ(read_all(tmp / "hard"), "4096\n");
}

TEST_F(DaemonTest, CancelKillsTheRunningTaskAndEndsTheRun) {
  dag("slow.yaml", R"(dag: slow
tasks:
  hang: {run: 'echo $$ > pid; exec sleep 60'}
  after: {run: [true], needs: [hang]}
)");
  start();
  std::string id = trigger({"slow"});
  fs::path pidfile = home() / "runs" / id / "hang.1" / "work" / "pid";
  ASSERT_TRUE(wait_until([&] { return fs::exists(pidfile) && !read_all(pidfile).empty(); }));
  pid_t pid = std::stoi(read_all(pidfile));
  auto r = daemon->cli({"cancel", id});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(wait_until([&] { return !pid_alive(pid); }, std::chrono::seconds(15)));
  EXPECT_TRUE(wait_until([&] { return state_of(id) == "cancelled"; }));
  EXPECT_EQ(task_state(id, "after"), "cancelled");
  auto again = daemon->cli({"cancel", id});
  EXPECT_EQ(again.code, 1);
}

TEST_F(DaemonTest, KilledDaemonRestartsIntoAConsistentRun) {
  // Each task appends one line to a shared ledger: a task that ran twice leaves two.
  fs::path ledger = tmp / "ledger";
  dag("crash.yaml", R"(dag: crash
tasks:
  first: {run: 'echo first >> )" +
                        ledger.string() + R"('}
  middle:
    needs: [first]
    run: 'touch started; sleep 2; echo middle >> )" +
                        ledger.string() + R"('
  last: {needs: [middle], run: 'echo last >> )" +
                        ledger.string() + R"('}
)");
  start();
  std::string id = trigger({"crash"});
  fs::path started = home() / "runs" / id / "middle.1" / "work" / "started";
  ASSERT_TRUE(wait_until([&] { return fs::exists(started); }));
  daemon->kill9();  // mid-run: `middle` is running, `first` is done, `last` waits
  ASSERT_TRUE(daemon->start());
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "success"; }, std::chrono::seconds(30)))
      << daemon->run_record(id).dump(2);
  EXPECT_EQ(read_all(ledger), "first\nmiddle\nlast\n");
  json rec = daemon->run_record(id);
  int tries = 0;
  for (auto& t : rec["tasks"]) {
    ++tries;
    EXPECT_EQ(t["state"], "success") << t.dump();
    EXPECT_TRUE(t["ended_at"].is_string());
  }
  EXPECT_EQ(tries, 3);
}

// The server config's `dags:` limits reach the DAG folder and recovery: a DAG file just over
// the 1 MiB default loads and runs, and its run survives a kill -9 of the daemon (recovery
// loads the run's stored DAG text again, under the same limits).
TEST_F(DaemonTest, RaisedDagLimitsLoadABigDagAndRecoverItsRunAfterAKill) {
  write_text(home() / "config.yaml", "dags:\n  max_file_bytes: 2097152\n");
  fs::permissions(home() / "config.yaml", fs::perms::owner_read | fs::perms::owner_write);
  dag("big.yaml", R"(dag: big
tasks:
  first: {run: [true]}
  middle: {needs: [first], run: 'touch started; sleep 2'}
  last: {needs: [middle], run: [true]}
#)" + std::string(1 << 20, 'x') +
                      "\n");
  start();
  std::string id = trigger({"big"});
  ASSERT_TRUE(wait_until(
      [&] { return fs::exists(home() / "runs" / id / "middle.1" / "work" / "started"); }));
  daemon->kill9();
  ASSERT_TRUE(daemon->start());
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "success"; }, std::chrono::seconds(30)))
      << daemon->run_record(id).dump(2);
  EXPECT_EQ(daemon->log().find("cannot be loaded"), std::string::npos) << daemon->log();
}

// A `drover run` beside the daemon: `middle` waits for a GO file, so the test decides when
// the run may go on. Each task appends to the ledger: a task run twice leaves two lines.
class DroverRunBesideDaemonTest : public DaemonTest {
 protected:
  fs::path ledger = tmp / "ledger", go = tmp / "GO", file = tmp / "local.yaml";
  pid_t run_pid = -1;
  std::string run_id;
  void start_drover_run() {
    write_text(file, R"(dag: local
tasks:
  first: {run: 'echo first >> )" +
                         ledger.string() + R"('}
  middle:
    needs: [first]
    run: 'touch started; while [ ! -e )" +
                         go.string() + R"( ]; do sleep 0.05; done; echo middle >> )" +
                         ledger.string() + R"('
  last: {needs: [middle], run: 'echo last >> )" +
                         ledger.string() + R"('}
)");
    fs::create_directories(dags());
    run_pid = spawn({DROVER_BIN, "run", file.string(), "--home", home().string(), "--project-dir",
                     tmp.path().string()},
                    tmp / "run.out", tmp / "run.err");
    ASSERT_GT(run_pid, 0);
    ASSERT_TRUE(wait_until([&] {
      return read_all(tmp / "run.out").find('\n') != std::string::npos;
    })) << read_all(tmp / "run.err");
    std::string first_line = read_all(tmp / "run.out");
    first_line = first_line.substr(0, first_line.find('\n'));
    ASSERT_EQ(first_line.rfind("run ", 0), 0u) << first_line;
    run_id = first_line.substr(4);
    ASSERT_TRUE(wait_until(
        [&] { return fs::exists(home() / "runs" / run_id / "middle.1" / "work" / "started"); }));
  }
  int wait_run_exit() {
    int status = 0;
    if (!wait_until([&] { return ::waitpid(run_pid, &status, WNOHANG) == run_pid; },
                    std::chrono::seconds(60)))
      return -1;
    run_pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  // kill -9 of `drover run` only: its try of `middle` lives on.
  void kill_drover_run() {
    ::kill(run_pid, SIGKILL);
    ::waitpid(run_pid, nullptr, 0);
    run_pid = -1;
  }
  // The daemon says it took the run over; once GO is there the run succeeds with one try
  // of each task (the ledger has each once).
  void expect_taken_over_and_run_once() {
    ASSERT_TRUE(wait_until([&] {
      return daemon->log().find("run " + run_id + ": its `drover run` is gone; taking it over") !=
             std::string::npos;
    })) << daemon->log();
    write_text(go, "");
    ASSERT_TRUE(wait_until([&] { return state_of(run_id) == "success"; }, std::chrono::seconds(30)))
        << daemon->run_record(run_id).dump(2);
    EXPECT_EQ(read_all(ledger), "first\nmiddle\nlast\n");
    json rec = daemon->run_record(run_id);
    EXPECT_EQ(rec["tasks"].size(), 3u) << rec.dump(2);  // one try each
  }
  void TearDown() override {
    if (run_pid > 0) {
      ::kill(-run_pid, SIGKILL);
      ::waitpid(run_pid, nullptr, 0);
    }
    DaemonTest::TearDown();
  }
};

TEST_F(DroverRunBesideDaemonTest, ADaemonStartedMeanwhileLeavesTheRunToDroverRun) {
  ASSERT_NO_FATAL_FAILURE(start_drover_run());
  start();  // recovery sees the run unfinished in the shared store
  ASSERT_TRUE(wait_until([&] {
    return daemon->log().find("run " + run_id +
                              " belongs to a live `drover run`; leaving it alone") !=
           std::string::npos;
  })) << daemon->log();
  write_text(go, "");
  ASSERT_EQ(wait_run_exit(), 0) << read_all(tmp / "run.out") << read_all(tmp / "run.err");
  EXPECT_EQ(read_all(ledger), "first\nmiddle\nlast\n");
  EXPECT_EQ(state_of(run_id), "success");
  json rec = daemon->run_record(run_id);
  EXPECT_EQ(rec["tasks"].size(), 3u) << rec.dump(2);  // one try each: nobody ran a task twice
}

TEST_F(DroverRunBesideDaemonTest, ADaemonTakesOverTheRunOfAKilledDroverRun) {
  ASSERT_NO_FATAL_FAILURE(start_drover_run());
  kill_drover_run();
  start();
  ASSERT_NO_FATAL_FAILURE(expect_taken_over_and_run_once());
}

// The daemon was there first: it sees the `drover run` die while it runs, and takes its run
// over within seconds, not at its next start. The task running meanwhile is adopted, its
// end recorded, and nothing runs twice.
TEST_F(DroverRunBesideDaemonTest, ARunningDaemonTakesOverTheRunOfADroverRunKilledMeanwhile) {
  fs::create_directories(dags());
  start();
  ASSERT_NO_FATAL_FAILURE(start_drover_run());
  kill_drover_run();
  ASSERT_NO_FATAL_FAILURE(expect_taken_over_and_run_once());
}

// A run of a `drover run` counts toward its DAG's max_active_runs in the daemon: a run
// triggered meanwhile waits queued, and starts once the other has ended.
TEST_F(DroverRunBesideDaemonTest, ADroverRunsRunCountsTowardTheDagsMaxActiveRuns) {
  ASSERT_NO_FATAL_FAILURE(start_drover_run());
  // The daemon knows the DAG (max_active_runs 1 by default) from its own folder.
  dag("local.yaml",
      "dag: local\ntasks:\n  only: {run: 'echo daemon >> " + ledger.string() + "'}\n");
  start();
  std::string id = trigger({"local"});
  EXPECT_EQ(state_of(id), "queued");
  write_text(go, "");
  ASSERT_EQ(wait_run_exit(), 0) << read_all(tmp / "run.out") << read_all(tmp / "run.err");
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "success"; }, std::chrono::seconds(30)))
      << daemon->run_record(id).dump(2);
  EXPECT_EQ(read_all(ledger), "first\nmiddle\nlast\ndaemon\n");
  json other = daemon->run_record(run_id), mine = daemon->run_record(id);
  EXPECT_GE(mine["started_at"].get<std::string>(), other["ended_at"].get<std::string>())
      << mine.dump(2) << other.dump(2);
}

TEST_F(DaemonTest, KilledDaemonRetriesATaskWhoseProcessIsGone) {
  dag("lost.yaml", R"(dag: lost
tasks:
  work:
    retries: 1
    retry_delay: 1s
    run: 'if [ "$DROVER_TRY" = 1 ]; then echo $$ > pid; exec sleep 60; fi; echo done'
)");
  start();
  std::string id = trigger({"lost"});
  fs::path pidfile = home() / "runs" / id / "work.1" / "work" / "pid";
  ASSERT_TRUE(wait_until([&] { return fs::exists(pidfile) && !read_all(pidfile).empty(); }));
  daemon->kill9();
  // The machine "loses" the try while the daemon is down.
  pid_t pid = std::stoi(read_all(pidfile));
  ::kill(-std::stoi(read_all(home() / "runs" / id / "work.1" / "pid")), SIGKILL);
  ASSERT_TRUE(wait_until([&] { return !pid_alive(pid); }));
  ASSERT_TRUE(daemon->start());
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "success"; }, std::chrono::seconds(30)));
  json rec = daemon->run_record(id);
  ASSERT_EQ(rec["tasks"].size(), 2u);
  EXPECT_NE(rec["tasks"][0]["state"], "success");
  EXPECT_EQ(rec["tasks"][1]["state"], "success");
}

// A try left without a result (daemon, worker and the task's shell all killed -9) whose
// child lives on is not lost yet: the restarted daemon retries it only once its process
// group is gone, so two tries of one task never run at once.
TEST_F(DaemonTest, ALostTryIsRetriedOnlyOnceNoProcessOfItsGroupLives) {
  fs::path ledger = tmp / "ledger";
  dag("group.yaml", R"(dag: group
tasks:
  work:
    retries: 1
    retry_delay: 1s
    run: 'if [ "$DROVER_TRY" = 1 ]; then echo start.1 >> )" +
                        ledger.string() + R"(; (sleep 3; echo end.1 >> )" + ledger.string() +
                        R"() & echo $! > child; wait; else echo start.2 >> )" + ledger.string() +
                        R"(; fi'
)");
  start();
  std::string id = trigger({"group"});
  fs::path try_dir = home() / "runs" / id / "work.1";
  ASSERT_TRUE(wait_until([&] {
    return fs::exists(try_dir / "work" / "child") && !read_all(try_dir / "work" / "child").empty();
  }));
  daemon->kill9();
  for (auto& e : fs::directory_iterator(home() / "workers"))  // writers of result.json
    ::kill(std::stoi(read_all(e.path())), SIGKILL);
  pid_t shell = std::stoi(read_all(try_dir / "pid"));
  ::kill(shell, SIGKILL);  // the leader only: its child stays in the group
  ASSERT_TRUE(wait_until([&] { return !pid_alive(shell); }));
  ASSERT_TRUE(daemon->start());
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "success"; }, std::chrono::seconds(30)))
      << daemon->run_record(id).dump(2);
  EXPECT_EQ(read_all(ledger), "start.1\nend.1\nstart.2\n");
  json rec = daemon->run_record(id);
  ASSERT_EQ(rec["tasks"].size(), 2u) << rec.dump(2);
  EXPECT_EQ(rec["tasks"][0]["state"], "lost") << rec.dump(2);
}

// The worker that spawned a command is killed -9 while the command runs. The command becomes
// the daemon's orphan (the daemon is its subreaper): its exit ends the try, its output is
// collected and handed downstream, and its body ran once (the ledger), not "lost" and again.
TEST_F(DaemonTest, AWorkerKilledWhileItsCommandRunsEndsTheTryByTheCommandsExitNotARerun) {
  fs::path ledger = tmp / "ledger", go = tmp / "go";
  dag("orphan.yaml", R"(dag: orphan
tasks:
  work:
    retries: 2
    retry_delay: 1s
    outputs: [out.txt]
    run: 'echo body >> )" +
                         ledger.string() + R"(; while [ ! -e )" + go.string() +
                         R"( ]; do sleep 0.05; done; echo made > out.txt'
  use:
    needs: [work]
    run: [sh, -c, 'cat "$1"/out.txt > got.txt', sh, "{{ inputs.work.path }}"]
)");
  start();
  std::string id = trigger({"orphan"});
  ASSERT_TRUE(wait_until([&] { return read_all(ledger) == "body\n"; }));
  fs::path try_dir = home() / "runs" / id / "work.1";
  pid_t worker = 0;
  ASSERT_TRUE(wait_until([&] {
    for (auto& e : fs::directory_iterator(home() / "workers"))
      if (read_all(e.path()).find(try_dir.string() + "\n") != std::string::npos)
        worker = std::stoi(read_all(e.path()));
    return worker > 0;
  }));
  pid_t command = std::stoi(read_all(try_dir / "pid"));
  ASSERT_NE(command, worker);
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  ASSERT_TRUE(wait_until([&] { return !pid_alive(worker); }));
  std::ofstream(go).put('\n');
  ASSERT_TRUE(wait_until(
      [&] {
        std::string st = state_of(id);
        return st == "success" || st == "failed";
      },
      std::chrono::seconds(30)))
      << daemon->run_record(id).dump(2);
  json rec = daemon->run_record(id);
  EXPECT_EQ(state_of(id), "success") << rec.dump(2);
  EXPECT_EQ(read_all(ledger), "body\n") << "the body of work ran again";
  ASSERT_EQ(rec["tasks"].size(), 2u) << rec.dump(2);
  EXPECT_EQ(rec["tasks"][0]["task"], "work");
  EXPECT_EQ(rec["tasks"][0]["try"], 1);
  EXPECT_EQ(rec["tasks"][0]["state"], "success") << rec.dump(2);
  EXPECT_EQ(read_all(home() / "runs" / id / "use.1" / "work" / "got.txt"), "made\n");
  EXPECT_NE(read_all(try_dir / "log").find("the worker of this try died"), std::string::npos)
      << read_all(try_dir / "log");
}

// A process a task leaves behind outlives the task and becomes the daemon's (its subreaper):
// when it ends, the daemon reaps it; no zombie stays in the daemon's process table.
TEST_F(DaemonTest, AProcessATaskLeavesBehindIsReapedWhenItEndsNoZombieStays) {
  fs::path done = tmp / "done", pidfile = tmp / "left.pid";
  dag("leave.yaml", R"(dag: leave
tasks:
  a:
    run: '(sleep 0.3; touch )" +
                        done.string() + R"() & echo $! > )" + pidfile.string() + R"('
)");
  start();
  std::string id = trigger({"leave"});
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "success"; }));
  ASSERT_TRUE(wait_until([&] { return fs::exists(done); }));
  pid_t left = std::stoi(read_all(pidfile));
  std::string stat = "/proc/" + std::to_string(left) + "/stat";
  // Gone from the process table: reaped (a zombie still has its /proc entry).
  EXPECT_TRUE(wait_until([&] { return !fs::exists(stat); }, std::chrono::seconds(10)))
      << read_all(stat);
}

TEST_F(DaemonTest, HotReloadPicksUpChangesAndKeepsTheLastGoodVersion) {
  dag("live.yaml", "dag: live\ntasks:\n  a: {run: [true]}\n");
  start();
  auto tasks_of = [&]() -> json {
    auto r = daemon->cli({"dags", "show", "live", "--json"});
    json j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json() : j.value("tasks", json());
  };
  ASSERT_EQ(tasks_of().size(), 1u);
  dag("live.yaml", "dag: live\ntasks:\n  a: {run: [true]}\n  b: {run: [true], needs: [a]}\n");
  ASSERT_TRUE(wait_until([&] { return tasks_of().size() == 2u; }));
  dag("live.yaml", "dag: live\ntasks:\n  a: {run: [true]}\n  b: {run: [true], needs: [zzz]}\n");
  auto errors = [&]() -> json {
    auto r = daemon->cli({"dags", "ls", "--json"});
    json j = json::parse(r.out, nullptr, false);
    return j.is_discarded() ? json() : j.value("errors", json());
  };
  ASSERT_TRUE(wait_until([&] { return errors().size() > 0; }))
      << daemon->cli({"dags", "ls", "--json"}).out;
  EXPECT_NE(errors()[0]["message"].get<std::string>().find("zzz"), std::string::npos);
  EXPECT_EQ(errors()[0]["line"], 4);
  EXPECT_EQ(tasks_of().size(), 2u);  // the last good version stays loaded
  auto r = daemon->cli({"trigger", "live", "--wait"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(DaemonTest, ADagFileInASubfolderMadeAfterStartIsLoadedWithoutAnyOtherChange) {
  fs::create_directories(dags());
  start();
  fs::create_directories(dags() / "a" / "b" / "c");
  // Once a file beside it has loaded, the daemon has seen the new folder and scanned since:
  // only a watch on a/b/c can tell it about the next file.
  dag("beside.yaml", "dag: beside\ntasks:\n  a: {run: [true]}\n");
  ASSERT_TRUE(wait_until([&] { return listed("beside"); }));
  dag("a/b/c/deep.yaml", "dag: deep\ntasks:\n  a: {run: [true]}\n");
  EXPECT_TRUE(wait_until([&] { return listed("deep"); }, std::chrono::seconds(10)))
      << daemon->cli({"dags", "ls"}).out;
}

TEST_F(DaemonTest, AFolderMovedInIsLoadedWithItsDagsAndWatched) {
  fs::create_directories(dags());
  start();
  write_text(tmp / "incoming" / "x" / "one.yaml", "dag: one\ntasks:\n  a: {run: [true]}\n");
  fs::create_directories(tmp / "incoming" / "x" / "y");
  fs::rename(tmp / "incoming", dags() / "incoming");
  ASSERT_TRUE(wait_until([&] { return listed("one"); }));
  dag("incoming/x/y/two.yaml", "dag: two\ntasks:\n  a: {run: [true]}\n");
  EXPECT_TRUE(wait_until([&] { return listed("two"); }, std::chrono::seconds(10)))
      << daemon->cli({"dags", "ls"}).out;
}

TEST_F(DaemonTest, FoldersThatGoLeaveNoWatchBehind) {
  write_text(dags() / "old" / "kept.yaml", "dag: kept\ntasks:\n  a: {run: [true]}\n");
  start();
  ASSERT_TRUE(listed("kept"));
  const int at_start = inotify_watches();  // the folder and old/
  ASSERT_GE(at_start, 2);
  fs::rename(dags() / "old", tmp / "moved-out");  // moved out: its watch must go
  ASSERT_TRUE(wait_until([&] { return !listed("kept"); }));
  EXPECT_TRUE(
      wait_until([&] { return inotify_watches() == at_start - 1; }, std::chrono::seconds(10)))
      << inotify_watches();
  fs::create_directories(dags() / "new" / "sub");
  EXPECT_TRUE(
      wait_until([&] { return inotify_watches() == at_start + 1; }, std::chrono::seconds(10)))
      << inotify_watches();
  fs::remove_all(dags() / "new");  // removed: the kernel drops its watches
  EXPECT_TRUE(
      wait_until([&] { return inotify_watches() == at_start - 1; }, std::chrono::seconds(10)))
      << inotify_watches();
}

TEST_F(DaemonTest, ScheduleFiresWithinItsMinute) {
  dag("cron.yaml", "dag: every_minute\nschedule: '* * * * *'\ntasks:\n  a: {run: [true]}\n");
  start();
  auto scheduled = [&]() -> json {
    auto r = daemon->cli({"runs", "ls", "--dag", "every_minute", "--json"});
    json j = json::parse(r.out, nullptr, false);
    if (j.is_discarded()) return json();
    json list = j.is_array() ? j : j["runs"];
    for (auto& run : list)
      if (run.value("state", "") == "success") return run;
    return json();
  };
  ASSERT_TRUE(wait_until([&] { return !scheduled().is_null(); }, std::chrono::seconds(75)));
  json rec = daemon->run_record(scheduled()["id"]);
  EXPECT_EQ(rec["trigger"]["kind"], "schedule");
  // The logical date is the start of the data interval, a whole minute.
  std::string logical = rec["logical_date"];
  EXPECT_EQ(logical.substr(16), ":00Z") << logical;
  EXPECT_TRUE(rec["data_interval"]["end"].is_string());
}

// A webhook receiver (tests/scheduler/alert_receivers.py) on a loopback port.
class Webhook {
 public:
  explicit Webhook(const fs::path& dir) : out_(dir / "hook.jsonl"), port_file_(dir / "hook.port") {
    pid_ = spawn(
        {"/usr/bin/python3", std::string(DROVER_SOURCE_DIR) + "/tests/scheduler/alert_receivers.py",
         "webhook", out_.string()},
        port_file_, dir / "hook.err");
    wait_until([&] { return !trim(read_all(port_file_)).empty(); }, std::chrono::seconds(20));
  }
  ~Webhook() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  std::string url() const { return "http://127.0.0.1:" + trim(read_all(port_file_)) + "/hook"; }
  std::vector<json> bodies() const {
    std::vector<json> out;
    std::istringstream in(read_all(out_));
    std::string line;
    while (std::getline(in, line)) {
      json rec = json::parse(line, nullptr, false);
      if (!rec.is_discarded()) out.push_back(json::parse(rec.value("body", "{}"), nullptr, false));
    }
    return out;
  }

 private:
  fs::path out_, port_file_;
  pid_t pid_ = -1;
};

TEST_F(DaemonTest, FailuresAndDriftAlertTheDagsChannels) {
  Webhook hook(tmp.path());
  ASSERT_FALSE(hook.url().empty());
  write_text(home() / "config.yaml", "alerts:\n  channels:\n    oncall: {type: webhook, url: \"" +
                                         hook.url() +
                                         "\"}\n  retry_delay: 100ms\n"
                                         "ui_url: http://drover.example\n");
  fs::permissions(home() / "config.yaml", fs::perms::owner_read | fs::perms::owner_write);
  write_text(tmp / "ref.csv", "x\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
  write_text(tmp / "cur.csv", "x\n101\n102\n103\n104\n105\n106\n107\n108\n109\n110\n");
  dag("watched.yaml", R"(dag: watched
alerts: {on_failure: [oncall], on_drift: [oncall]}
tasks:
  broken: {run: [sh, -c, "exit 4"]}
  check:
    type: drift
    with: {reference: )" + (tmp / "ref.csv").string() +
                          R"(, current: )" + (tmp / "cur.csv").string() + R"(}
)");
  start();
  std::string id = trigger({"watched"});
  ASSERT_TRUE(wait_until([&] { return hook.bodies().size() >= 2; }, std::chrono::seconds(30)))
      << read_all(tmp / "hook.jsonl");
  std::map<std::string, json> by_kind;
  for (auto& b : hook.bodies()) by_kind[b.value("kind", "")] = b;
  ASSERT_TRUE(by_kind.count("task_failed")) << read_all(tmp / "hook.jsonl");
  EXPECT_EQ(by_kind["task_failed"]["run_id"], id);
  EXPECT_EQ(by_kind["task_failed"]["task"], "broken");
  EXPECT_EQ(by_kind["task_failed"]["url"], "http://drover.example/runs/" + id);
  EXPECT_NE(by_kind["task_failed"]["text"].get<std::string>().find("broken"), std::string::npos);
  ASSERT_TRUE(by_kind.count("drift"));
  EXPECT_EQ(by_kind["drift"]["details"]["drifted"], json::array({"x"}));
  EXPECT_EQ(
      by_kind["drift"]["message"].get<std::string>().rfind("feature drift in 1 feature: x ", 0), 0u)
      << by_kind["drift"].dump();
  EXPECT_TRUE(by_kind["drift"]["details"]["scores"]["x"].is_number()) << by_kind["drift"].dump();
  EXPECT_EQ(by_kind["drift"]["task"], "check");
}

TEST_F(DaemonTest, AnAlertReceiverThatIsDownDoesNotHoldUpTheRun) {
  write_text(home() / "config.yaml",
             "alerts:\n  channels:\n    dead: {type: webhook, url: \"http://127.0.0.1:9/x\"}\n"
             "  retries: 5\n  retry_delay: 1s\n");
  fs::permissions(home() / "config.yaml", fs::perms::owner_read | fs::perms::owner_write);
  dag("down.yaml", R"(dag: down
alerts: {on_failure: [dead]}
tasks:
  broken: {run: [sh, -c, "exit 1"]}
  cleanup: {run: [true], needs: [broken], trigger_rule: all_done}
)");
  start();
  auto r = daemon->cli({"trigger", "down", "--wait"});
  EXPECT_EQ(r.code, 1);  // the run failed, and ended although the alert is still retrying
  EXPECT_NE(r.out.find("failed"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace drover::testing
