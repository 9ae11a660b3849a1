// LocalExecutor (executor/executor.hpp) with real `drover worker` processes (DROVER_BIN):
// the facts and handle of its Started event, the log read back through the handle (and
// through a handle recorded before handles existed), its capacity refusing a start, and
// adoption of a running try by a second executor given only the handle. The kill -9 of a
// real `drover serve` and its restart are tests/integration/isolation_test.cpp's.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <vector>

#include "common/fs.hpp"
#include "executor/executor.hpp"

namespace drover {
namespace {

namespace fs = std::filesystem;

std::string this_host() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

class LocalExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "drover-exec-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  std::unique_ptr<Executor> make(boost::asio::io_context& io, int max_workers = 0) {
    LocalExecutorOptions o;
    o.self_exe = DROVER_BIN;
    o.max_workers = max_workers;
    auto x = make_local_executor(io, o);
    x->set_callback([this](const TryEvent& e) { events_.push_back(e); });
    return x;
  }

  TrySpec command(const std::string& task, const std::string& script) {
    TrySpec s;
    s.run_id = "r-1";
    s.dag = "r";
    s.task = task;
    s.type = "command";
    s.argv = {"/bin/sh", "-c", script};
    s.home = (dir_ / "home").string();
    s.try_dir = (dir_ / "home" / "runs" / "r-1" / (task + ".1")).string();
    return s;
  }

  // Runs `io` until `done` (at most 20 s of real time).
  static bool run_until(boost::asio::io_context& io, const std::function<bool()>& done) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done() && std::chrono::steady_clock::now() < until) {
      io.restart();
      io.run_for(std::chrono::milliseconds(10));
    }
    return done();
  }

  const TryEvent* event(TryEvent::Kind kind, const std::string& key) const {
    for (auto& e : events_)
      if (e.kind == kind && e.key == key) return &e;
    return nullptr;
  }

  fs::path dir_;
  std::vector<TryEvent> events_;
};

TEST_F(LocalExecutorTest, StartedCarriesTheFactsAndAHandleThatFindsTheLog) {
  boost::asio::io_context io;
  auto x = make(io);
  TrySpec spec = command("a", "echo hello; echo world");
  ASSERT_TRUE(x->start(spec).ok());
  ASSERT_TRUE(run_until(io, [&] { return event(TryEvent::Kind::Finished, "r-1/a/1"); }));
  const TryEvent* started = event(TryEvent::Kind::Started, "r-1/a/1");
  ASSERT_NE(started, nullptr);
  EXPECT_EQ(started->facts, (json{{"executor", "local"}, {"hostname", this_host()}}));
  EXPECT_GT(started->pid, 0);
  json handle = json::parse(started->handle);
  EXPECT_EQ(handle["try_dir"], spec.try_dir);
  EXPECT_EQ(handle["pid"], started->pid);
  EXPECT_EQ(event(TryEvent::Kind::Finished, "r-1/a/1")->exit_code, 0);

  auto all = x->read_log("r-1/a/1", started->handle, 0, 1 << 20);
  ASSERT_TRUE(all.ok()) << all.message();
  EXPECT_EQ(all->bytes, "hello\nworld\n");
  EXPECT_EQ(all->size, 12u);
  EXPECT_EQ(all->next_offset, 12u);
  auto part = x->read_log("r-1/a/1", started->handle, 6, 3);
  ASSERT_TRUE(part.ok()) << part.message();
  EXPECT_EQ(part->bytes, "wor");
  EXPECT_EQ(part->next_offset, 9u);
  // A try recorded before handles: its folder is enough.
  auto legacy = x->read_log("r-1/a/1", local_try_handle(spec.try_dir), 0, 100);
  ASSERT_TRUE(legacy.ok()) << legacy.message();
  EXPECT_EQ(legacy->bytes, "hello\nworld\n");
  x->shutdown();
}

TEST_F(LocalExecutorTest, ATryRunByDroverExecWithStdioClosedGetsDevNullAndItsLog) {
  // `drover exec SPEC` as a shell or a batch system may start it: descriptors 0-2 closed.
  TrySpec spec = command("a", "ls -l /proc/self/fd; cat; echo cat=$?");
  fs::path file = dir_ / "spec.json";
  ASSERT_TRUE(write_file_atomic(file, spec.to_json().dump(), 0600, false));
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    for (int fd = 0; fd <= 2; ++fd) ::close(fd);
    ::execl(DROVER_BIN, DROVER_BIN, "exec", file.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  auto text = read_file(spec.log_path());
  std::string log = text ? *text : std::string();
  EXPECT_NE(log.find(" 0 -> /dev/null"), std::string::npos) << log;
  EXPECT_NE(log.find(" 1 -> " + spec.log_path().string()), std::string::npos) << log;
  EXPECT_NE(log.find(" 2 -> " + spec.log_path().string()), std::string::npos) << log;
  EXPECT_NE(log.find("cat=0"), std::string::npos) << log;  // stdin readable: empty, not closed
}

TEST_F(LocalExecutorTest, AnOutputThatIsALinkFifoOrDeviceFailsTheTryAndNothingIsRead) {
  // Each of these once hung the try for ever (a FIFO, /dev/zero), handed a file outside the
  // work dir to the blob store (and so to GET /api/v1/blobs), or crashed the worker (a loop).
  (void)write_file_atomic(dir_ / "outside", "TOPSECRET-not-an-output\n", 0600, false);
  struct Case {
    std::string task, script, says;
  };
  std::vector<Case> cases = {
      {"fifo", "mkfifo out", "output 'out' is a FIFO"},
      {"zero", "ln -s /dev/zero out", "output 'out' is a symbolic link (to '/dev/zero')"},
      {"secret", "ln -s " + (dir_ / "outside").string() + " out",
       "output 'out' is a symbolic link (to '" + (dir_ / "outside").string() + "')"},
      {"inside", "mkdir out && echo ok > out/a && ln -s " + (dir_ / "outside").string() + " out/b",
       "output 'out/b' is a symbolic link"},
      {"loop", "mkdir out && ln -s loop out/loop", "output 'out/loop' is a symbolic link"},
  };
  boost::asio::io_context io;
  auto x = make(io);
  for (auto& c : cases) {
    TrySpec spec = command(c.task, c.script);
    spec.outputs = {"out"};
    ASSERT_TRUE(x->start(spec).ok());
  }
  for (auto& c : cases) {
    SCOPED_TRACE(c.task);
    std::string key = "r-1/" + c.task + "/1";
    ASSERT_TRUE(run_until(io, [&] { return event(TryEvent::Kind::Finished, key); }));
    const TryEvent* end = event(TryEvent::Kind::Finished, key);
    EXPECT_EQ(end->exit_code, 1);
    EXPECT_NE(end->result.dump().find(c.says), std::string::npos)
        << end->result.dump() << " error: " << end->error;
  }
  // No blob holds the file the links pointed at.
  std::error_code ec;
  for (auto& e : fs::recursive_directory_iterator(dir_ / "home" / "blobs", ec)) {
    if (!e.is_regular_file()) continue;
    auto text = read_file(e.path());
    EXPECT_TRUE(!text || text->find("TOPSECRET") == std::string::npos) << e.path();
  }
}

TEST_F(LocalExecutorTest, AHandleItCannotReadIsAnErrorNotACrash) {
  boost::asio::io_context io;
  auto x = make(io);
  auto none = x->read_log("r-1/b/1", local_try_handle((dir_ / "nothing").string()), 0, 10);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::NotFound);
  EXPECT_FALSE(x->read_log("r-1/b/1", "not json", 0, 10).ok());
  x->adopt("r-1/b/1", "{}");
  ASSERT_TRUE(run_until(io, [&] { return event(TryEvent::Kind::Finished, "r-1/b/1"); }));
  EXPECT_EQ(event(TryEvent::Kind::Finished, "r-1/b/1")->error,
            "cannot adopt: not a local try handle");
}

TEST_F(LocalExecutorTest, ItsCapacityRefusesAStartBeyondIt) {
  boost::asio::io_context io;
  auto x = make(io, /*max_workers=*/1);
  ASSERT_TRUE(x->capacity().total.has_value());
  EXPECT_EQ(*x->capacity().total, 1);
  ASSERT_TRUE(x->start(command("a", "sleep 0.3")).ok());
  Status second = x->start(command("b", "true"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.message(), "capacity exceeded: this host takes 1 tries at once");
  ASSERT_TRUE(run_until(io, [&] { return event(TryEvent::Kind::Finished, "r-1/a/1"); }));
  EXPECT_EQ(event(TryEvent::Kind::Started, "r-1/b/1"), nullptr);  // refused: no events
  ASSERT_TRUE(x->start(command("b", "true")).ok());               // free again
  ASSERT_TRUE(run_until(io, [&] { return event(TryEvent::Kind::Finished, "r-1/b/1"); }));
  EXPECT_EQ(event(TryEvent::Kind::Finished, "r-1/b/1")->exit_code, 0);
  x->shutdown();
}

// The handle alone lets a second executor (a restarted daemon's) watch the try to its end.
TEST_F(LocalExecutorTest, ASecondExecutorAdoptsARunningTryByItsHandle) {
  boost::asio::io_context io;
  auto first = make(io);
  TrySpec spec = command("a", "sleep 0.5; echo done");
  ASSERT_TRUE(first->start(spec).ok());
  ASSERT_TRUE(run_until(io, [&] { return event(TryEvent::Kind::Started, "r-1/a/1"); }));
  std::string handle = event(TryEvent::Kind::Started, "r-1/a/1")->handle;
  first->shutdown();  // its worker finishes the try, then goes

  boost::asio::io_context io2;
  events_.clear();
  auto second = make(io2);
  second->adopt("r-1/a/1", handle);
  ASSERT_TRUE(run_until(io2, [&] { return event(TryEvent::Kind::Finished, "r-1/a/1"); }));
  const TryEvent* end = event(TryEvent::Kind::Finished, "r-1/a/1");
  EXPECT_EQ(end->error, "");
  EXPECT_EQ(end->exit_code, 0);
  ASSERT_TRUE(end->result.is_object());
  EXPECT_EQ(end->result["exit_code"], 0);
  auto log = second->read_log("r-1/a/1", handle, 0, 100);
  ASSERT_TRUE(log.ok()) << log.message();
  EXPECT_EQ(log->bytes, "done\n");
  // Keep the first executor's io running until its worker's pipe closes (no zombie left).
  io.restart();
  io.run_for(std::chrono::milliseconds(50));
}

}  // namespace
}  // namespace drover
