// End to end: what a task inherits and what it leaves behind. A task process sees exactly
// descriptors 0, 1 and 2 — under `drover run` and `drover serve`, for argv and /bin/sh -c
// commands, on the warm worker's direct spawn and on the forked try path (a try with a
// secret). A daemon killed -9 while its task runs restarts at once on the SAME port (no
// orphan holds the listener), records the orphan's result, and the task runs once. A home
// has one daemon.

#include <regex>
#include <set>

#include "tests/integration/harness.hpp"

namespace drover::testing {
namespace {

// The descriptors listed by `ls -l /proc/X/fd` lines in `text`, leaving out the one that
// is ls's own handle on the folder it lists.
std::set<int> listed_fds(const std::string& text) {
  std::set<int> out;
  std::regex line(R"((\d+) -> (.*))");
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) {
    std::smatch m;
    if (!std::regex_search(l, m, line)) continue;
    if (std::regex_match(m[2].str(), std::regex(R"(/proc/\d+/fd)"))) continue;
    out.insert(std::stoi(m[1].str()));
  }
  return out;
}

const std::set<int> kStdio = {0, 1, 2};

// Three tasks: an argv command, a shell string (the shell's own descriptors and its
// child's), and a shell string that uses a secret (the forked, masked try path).
std::string fd_dag(const std::string& id) {
  return "dag: " + id + R"(
tasks:
  argv: {run: [/bin/ls, -l, /proc/self/fd]}
  shell: {run: "ls -l /proc/$$/fd; echo --; ls -l /proc/self/fd"}
  secret: {run: "ls -l /proc/$$/fd; echo --; ls -l /proc/self/fd; test -n {{ secrets.FD_TOKEN }}"}
)";
}

const std::map<std::string, std::string> kSecretEnv = {
    {"DROVER_SECRET_FD_TOKEN", "s3cr3t-value-for-fd-test"}};

std::string log_of(const fs::path& home, const std::string& run, const std::string& task) {
  return read_all(home / "runs" / run / (task + ".1") / "log");
}

void expect_only_stdio(const fs::path& home, const std::string& run) {
  for (const char* task : {"argv", "shell", "secret"}) {
    std::string log = log_of(home, run, task);
    std::set<int> fds = listed_fds(log);
    EXPECT_EQ(fds, kStdio) << task << " saw:\n" << log;
  }
}

// `drover run` of the DAG `text` with `env` set, home tmp/home; the run's id ("" when it
// did not succeed, with a test failure).
std::string run_ok(const TempDir& tmp, const std::string& text,
                   const std::map<std::string, std::string>& env) {
  write_text(tmp / "dag.yaml", text);
  auto r = drover({"run", (tmp / "dag.yaml").string(), "--home", (tmp / "home").string(),
                   "--project-dir", tmp.path().string()},
                  env);
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  std::string first = r.out.substr(0, r.out.find('\n'));
  EXPECT_EQ(first.rfind("run ", 0), 0u) << r.out;
  return r.code == 0 && first.rfind("run ", 0) == 0 ? first.substr(4) : "";
}

TEST(IsolationTest, ATaskUnderDroverRunSeesOnlyDescriptors0To2) {
  TempDir tmp;
  std::string id = run_ok(tmp, fd_dag("fds"), kSecretEnv);
  ASSERT_FALSE(id.empty());
  expect_only_stdio(tmp / "home", id);
}

// What the daemon's (or `drover run`'s) environment holds that no task may see: the API
// token, the secret store's fallbacks, a cloud key, an SMTP password.
const std::map<std::string, std::string> kPrivateEnv = {
    {"DROVER_TOKEN", "tok-private-0001"},
    {"DROVER_SECRET_USED", "used-secret-0002"},
    {"DROVER_SECRET_UNUSED", "unused-secret-0003"},
    {"AWS_SECRET_ACCESS_KEY", "aws-private-0004"},
    {"SMTP_PASSWORD", "smtp-private-0005"}};

// Tasks that print their environment: on the direct spawn (argv, shell) and on the forked,
// masked path (a task that names a secret), which also sets `env:` from it.
std::string env_dag(const std::string& id) {
  return "dag: " + id + R"(
defaults:
  env: {FROM_DEFAULTS: d1}
tasks:
  argv: {run: [/usr/bin/env], env: {FROM_TASK: t1}}
  shell: {run: "env"}
  masked: {run: "env", env: {GIVEN: "{{ secrets.USED }}"}}
)";
}

void expect_plain_environment(const fs::path& home, const std::string& run) {
  for (const char* task : {"argv", "shell", "masked"}) {
    std::string log = log_of(home, run, task);
    for (auto& [name, value] : kPrivateEnv) {
      EXPECT_EQ(log.find(name + "="), std::string::npos) << task << " saw " << name << ":\n" << log;
      EXPECT_EQ(log.find(value), std::string::npos) << task << " saw " << value << ":\n" << log;
    }
    EXPECT_NE(log.find("\nPATH="), std::string::npos) << task << ":\n" << log;
    EXPECT_NE(log.find("DROVER_RUN_ID=" + run), std::string::npos) << task << ":\n" << log;
    EXPECT_NE(log.find("FROM_DEFAULTS=d1"), std::string::npos) << task << ":\n" << log;
  }
  EXPECT_NE(log_of(home, run, "argv").find("FROM_TASK=t1"), std::string::npos);
  // The secret it names reaches it (masked in its log), and nothing else of the store does.
  EXPECT_NE(log_of(home, run, "masked").find("GIVEN=***"), std::string::npos)
      << log_of(home, run, "masked");
}

TEST(IsolationTest, ATaskUnderDroverRunGetsAPlainEnvironmentAndOnlyTheSecretsItNames) {
  TempDir tmp;
  std::string id = run_ok(tmp, env_dag("envs"), kPrivateEnv);
  ASSERT_FALSE(id.empty());
  expect_plain_environment(tmp / "home", id);
}

// A task that names a secret has its output masked through a pipe: a process it leaves in
// the background holds that pipe, and must not hold the try (or the slot) with it.
TEST(IsolationTest, ABackgroundProcessHoldingAMaskedTrysOutputDoesNotHoldTheTry) {
  TempDir tmp;
  write_text(tmp / "bg.yaml", R"(dag: bg
tasks:
  left: {run: "(sleep 60; echo late) & echo {{ secrets.USED }} started"}
  next: {run: [/bin/true], needs: [left]}
)");
  auto before = std::chrono::steady_clock::now();
  auto r = drover({"run", (tmp / "bg.yaml").string(), "--home", (tmp / "home").string()},
                  kPrivateEnv, std::chrono::seconds(50));
  auto took = std::chrono::steady_clock::now() - before;
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_LT(took, std::chrono::seconds(50));
  std::string first = r.out.substr(0, r.out.find('\n'));
  std::string log = log_of(tmp / "home", first.substr(4), "left");
  EXPECT_NE(log.find("*** started"), std::string::npos) << log;
  EXPECT_NE(log.find("still holds its output"), std::string::npos) << log;
}

class DaemonIsolationTest : public DaemonFixture {};

TEST_F(DaemonIsolationTest, ATaskUnderServeSeesOnlyDescriptors0To2) {
  dag("fds.yaml", fd_dag("fds"));
  // The daemon holds its listener, the store, the inotify watch, worker pipes and, while the
  // trigger is served, a client connection: none of them may reach a task.
  daemon = std::make_unique<Daemon>(home(), dags(),
                                    std::vector<std::string>{"--project-dir", tmp.path().string()});
  {
    // The secret comes from the daemon's environment.
    ::setenv("DROVER_SECRET_FD_TOKEN", kSecretEnv.begin()->second.c_str(), 1);
    bool started = daemon->start();
    ::unsetenv("DROVER_SECRET_FD_TOKEN");
    ASSERT_TRUE(started) << daemon->log();
  }
  std::string id = trigger({"fds"});
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "success"; }, std::chrono::seconds(60)))
      << daemon->run_record(id).dump(2);
  expect_only_stdio(home(), id);
}

TEST_F(DaemonIsolationTest, ATaskUnderServeGetsAPlainEnvironmentAndOnlyTheSecretsItNames) {
  dag("env.yaml", env_dag("envs"));
  std::vector<std::string> under = {"/usr/bin/env"};
  for (auto& [name, value] : kPrivateEnv) under.push_back(name + "=" + value);
  start({}, under);
  std::string id = trigger({"envs"});
  ASSERT_TRUE(wait_until([&] { return state_of(id) == "success"; }, std::chrono::seconds(60)))
      << daemon->run_record(id).dump(2);
  expect_plain_environment(home(), id);
}

TEST_F(DaemonIsolationTest, ASecondDaemonOnAHomeIsRefusedNamingThePidOfTheFirst) {
  dag("a.yaml", "dag: a\ntasks:\n  t: {run: [true]}\n");
  start();
  std::string url_before = daemon->url();
  Daemon second(home(), dags());
  auto r = drover(
      {"serve", "--home", home().string(), "--dags", dags().string(), "--listen", "127.0.0.1:0"},
      {}, std::chrono::seconds(30));
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.err.find("drover serve: home " + home().string() +
                       " is in use by another drover serve (pid " + std::to_string(daemon->pid()) +
                       "); one daemon per home"),
            std::string::npos)
      << r.err;
  // The first daemon is untouched: its server.json is still there and it still answers.
  EXPECT_EQ(daemon->url(), url_before);
  auto runs = daemon->cli({"runs", "ls"});
  EXPECT_EQ(runs.code, 0) << runs.err;
}

// connect() to 127.0.0.1:port: 0 when something accepts, else errno.
int try_connect(int port) {
  int fd = connect_loopback(port);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

// kill -9 of the daemon while a 6-second task runs, at five points of the task's life, then
// a restart on the SAME port: it binds at once, nobody answers on the port meanwhile, the
// orphan's result is recorded and the task ran once.
TEST_F(DaemonIsolationTest, KilledDaemonRestartsOnTheSamePortWhileItsTaskRuns) {
  fs::path ledger = tmp / "ledger";
  dag("long.yaml", R"(dag: long
tasks:
  work:
    run: 'echo start >> )" +
                       ledger.string() +
                       R"(; for i in 1 2 3 4 5 6; do sleep 1; touch tick$i; done; echo end >> )" +
                       ledger.string() + R"('
)");
  start();
  const int port = daemon->port();
  ASSERT_GT(port, 0);
  daemon->listen_on("127.0.0.1:" + std::to_string(port));
  // Kill points while the task runs: as soon as it started (its pid file may not be written
  // yet); after 1, 3 and 5 seconds; once it wrote its last line (its result is being
  // written or read). (A kill before the try reached its worker is issue 9's: a try that
  // never started should not count as a try.)
  const std::vector<std::string> points = {"started", "tick1", "tick3", "tick5", "end"};
  for (size_t i = 0; i < points.size(); ++i) {
    SCOPED_TRACE("kill point " + std::to_string(i) + " (" + points[i] + ")");
    fs::remove(ledger);
    std::string id = trigger({"long"});
    fs::path work = home() / "runs" / id / "work.1" / "work";
    if (points[i] == "started")
      ASSERT_TRUE(wait_until([&] { return read_all(ledger) == "start\n"; }));
    else if (points[i] == "end")
      ASSERT_TRUE(
          wait_until([&] { return read_all(ledger) == "start\nend\n"; }, std::chrono::seconds(30)));
    else
      ASSERT_TRUE(wait_until([&] { return fs::exists(work / points[i]); }));
    daemon->kill9();
    // Nobody answers on the port while the daemon is down, although its task runs on.
    EXPECT_EQ(try_connect(port), ECONNREFUSED);
    ASSERT_TRUE(daemon->start()) << "restart " << i << " on port " << port;
    EXPECT_EQ(daemon->port(), port);
    ASSERT_TRUE(wait_until([&] { return state_of(id) == "success"; }, std::chrono::seconds(60)))
        << daemon->run_record(id).dump(2);
    EXPECT_EQ(read_all(ledger), "start\nend\n");  // ran once
    json rec = daemon->run_record(id);
    ASSERT_EQ(rec["tasks"].size(), 1u) << rec.dump(2);
    EXPECT_EQ(rec["tasks"][0]["state"], "success");
    EXPECT_EQ(rec["tasks"][0]["exit_code"], 0);
  }
  EXPECT_EQ(daemon->log().find("Address already in use"), std::string::npos) << daemon->log();
}

}  // namespace
}  // namespace drover::testing
