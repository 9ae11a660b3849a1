// LocalExecutor (executor/executor.hpp) with real `drover worker` processes (DROVER_BIN):
// the facts and handle of its Started event, the log read back through the handle (and
// through a handle recorded before handles existed), its capacity refusing a start, and
// adoption of a running try by a second executor given only the handle, and what its tries'
// outputs may be (links recorded as their text; FIFOs, sockets, devices refused; collected only
// within the try's timeout). The kill -9 of a real `drover serve` and its restart are
// tests/integration/isolation_test.cpp's.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <vector>

#include "common/blob_store.hpp"
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

  // Runs `io` until `done` (at most `limit` of real time).
  static bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                        std::chrono::seconds limit = std::chrono::seconds(20)) {
    auto until = std::chrono::steady_clock::now() + limit;
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

// As git records a link: its text is its blob, never what it points to. Each of these once
// handed a file outside the work dir to the blob store (and so to GET /api/v1/blobs), hung
// the try for ever (/dev/zero) or crashed the worker (a loop), or, in a folder (a link to
// one, or "out/" naming a link), walked a folder outside.
TEST_F(LocalExecutorTest, ALinkAmongTheOutputsIsRecordedAsItsTextAndNeverFollowed) {
  fs::path outside = dir_ / "outside";
  fs::create_directories(outside);
  (void)write_file_atomic(outside / "secret", "TOPSECRET-not-an-output\n", 0600, false);
  std::string secret = (outside / "secret").string();
  struct Entry {
    std::string path, bytes;  // a link's bytes are its text
    bool link;
  };
  struct Case {
    std::string task, script, output;
    std::vector<Entry> entries;
  };
  std::vector<Case> cases = {
      {"zero", "ln -s /dev/zero out", "out", {{"out", "/dev/zero", true}}},
      {"secret", "ln -s " + secret + " out", "out", {{"out", secret, true}}},
      {"inside",
       "mkdir out && echo ok > out/a && ln -s " + secret + " out/b",
       "out",
       {{"out/a", "ok\n", false}, {"out/b", secret, true}}},
      {"loop", "mkdir out && ln -s loop out/loop", "out", {{"out/loop", "loop", true}}},
      {"dangling", "ln -s ../nowhere out", "out", {{"out", "../nowhere", true}}},
      {"folder",
       "mkdir out && ln -s " + outside.string() + " out/dir",
       "out",
       {{"out/dir", outside.string(), true}}},
      {"slash", "ln -s " + outside.string() + " out", "out/", {{"out", outside.string(), true}}},
  };
  boost::asio::io_context io;
  auto x = make(io);
  for (auto& c : cases) {
    TrySpec spec = command(c.task, c.script);
    spec.outputs = {c.output};
    ASSERT_TRUE(x->start(spec).ok());
  }
  BlobStore blobs(dir_ / "home" / "blobs");
  for (auto& c : cases) {
    SCOPED_TRACE(c.task);
    std::string key = "r-1/" + c.task + "/1";
    ASSERT_TRUE(run_until(io, [&] { return event(TryEvent::Kind::Finished, key); }));
    const TryEvent* end = event(TryEvent::Kind::Finished, key);
    EXPECT_EQ(end->exit_code, 0) << end->result.dump() << " error: " << end->error;
    const json& outs = end->result["outputs"];
    ASSERT_EQ(outs.size(), c.entries.size()) << outs.dump();
    for (size_t i = 0; i < outs.size(); ++i) {
      const Entry& want = c.entries[i];
      EXPECT_EQ(outs[i]["path"], want.path);
      EXPECT_EQ(outs[i]["size"], want.bytes.size());
      int mode = outs[i]["mode"];
      EXPECT_EQ(mode, want.link ? S_IFLNK | 0777 : mode & 07777) << want.path;
      auto bytes = read_file(blobs.path_of(outs[i]["sha256"].get<std::string>()));
      ASSERT_TRUE(bytes.ok()) << bytes.message();
      EXPECT_EQ(*bytes, want.bytes) << want.path;
    }
  }
  // No blob holds the file the links pointed at.
  std::error_code ec;
  for (auto& e : fs::recursive_directory_iterator(dir_ / "home" / "blobs", ec)) {
    if (!e.is_regular_file()) continue;
    auto text = read_file(e.path());
    EXPECT_TRUE(!text || text->find("TOPSECRET") == std::string::npos) << e.path();
  }
}

// A FIFO, socket or device among the outputs is never opened (reading a FIFO or /dev/zero
// never ends), nor a file reached through a link among an output's folders (lstat follows
// every link but the last).
TEST_F(LocalExecutorTest, AnOutputThatIsAFifoSocketOrDeviceOrBehindALinkFailsTheTry) {
  fs::path outside = dir_ / "outside";
  fs::create_directories(outside);
  (void)write_file_atomic(outside / "secret", "TOPSECRET-not-an-output\n", 0600, false);
  // A socket made here, moved into the work dir by the task.
  int sock = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(sock, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string sock_path = (dir_ / "sock").string();
  ASSERT_LT(sock_path.size(), sizeof addr.sun_path);
  std::memcpy(addr.sun_path, sock_path.c_str(), sock_path.size());
  ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ::close(sock);
  struct Case {
    std::string task, script, output, says;
  };
  std::vector<Case> cases = {
      {"fifo", "mkfifo out", "out", "output 'out' is a FIFO"},
      {"infolder", "mkdir out && mkfifo out/f", "out", "output 'out/f' is a FIFO"},
      {"socket", "mv " + sock_path + " out", "out", "output 'out' is a socket"},
      {"behind", "ln -s " + outside.string() + " d", "d/secret",
       "output 'd/secret' leaves the work dir through the symbolic link 'd'"},
  };
  if (::geteuid() == 0)  // mknod needs CAP_MKNOD
    cases.push_back({"device", "mknod out c 1 3", "out", "output 'out' is a device"});
  boost::asio::io_context io;
  auto x = make(io);
  for (auto& c : cases) {
    TrySpec spec = command(c.task, c.script);
    spec.outputs = {c.output};
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
  std::error_code ec;
  for (auto& e : fs::recursive_directory_iterator(dir_ / "home" / "blobs", ec)) {
    if (!e.is_regular_file()) continue;
    auto text = read_file(e.path());
    EXPECT_TRUE(!text || text->find("TOPSECRET") == std::string::npos) << e.path();
  }
}

// Collection is bounded by the try's timeout: the daemon's kill at the deadline reaches the
// command's group only, and a worker collecting outputs past it would hold the slot. A command
// that ends (0) after its timeout has passed is not collected, and says why; one within it is.
TEST_F(LocalExecutorTest, OutputsAreNotCollectedPastTheTrysTimeout) {
  boost::asio::io_context io;
  auto x = make(io);
  TrySpec late = command("late", "sleep 1.5; echo x > out");
  late.outputs = {"out"};
  late.timeout_ms = 1000;
  TrySpec within = command("within", "echo x > out");
  within.outputs = {"out"};
  within.timeout_ms = 60000;
  ASSERT_TRUE(x->start(late).ok());
  ASSERT_TRUE(x->start(within).ok());
  ASSERT_TRUE(run_until(io, [&] {
    return event(TryEvent::Kind::Finished, "r-1/late/1") &&
           event(TryEvent::Kind::Finished, "r-1/within/1");
  }));
  const TryEvent* end = event(TryEvent::Kind::Finished, "r-1/late/1");
  EXPECT_EQ(end->exit_code, 1);
  EXPECT_NE(end->result.dump().find("collecting outputs ran past the try's timeout (1 s)"),
            std::string::npos)
      << end->result.dump();
  EXPECT_TRUE(end->result["outputs"].empty()) << end->result.dump();
  const TryEvent* ok = event(TryEvent::Kind::Finished, "r-1/within/1");
  EXPECT_EQ(ok->exit_code, 0) << ok->result.dump();
  EXPECT_EQ(ok->result["outputs"].size(), 1u) << ok->result.dump();
}

// Within one file too: a task that leaves a sparse 64 GB file behind (written in no time,
// read at the speed of hashing: most of a minute) is stopped at its timeout while the file is
// hashed and copied, and no part of it is left in the blob store.
TEST_F(LocalExecutorTest, AHugeOutputFileIsNotCollectedPastTheTrysTimeout) {
  constexpr off_t kBig = off_t{64} << 30;
  // The sparse file is made here and hard-linked into the try's outputs by the task.
  fs::path huge = dir_ / "huge";
  {  // a filesystem that refuses a sparse file this large cannot run it
    int fd = ::open(huge.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    int rc = ::ftruncate(fd, kBig);
    int e = errno;
    ::close(fd);
    if (rc != 0) GTEST_SKIP() << "a sparse file of 64 GB is refused here: " << std::strerror(e);
  }
  // Should collection ever stop checking its deadline, the worker (which inherits this
  // limit) writes at most 4 GB into the blob store's temp folder, not 64.
  struct rlimit before;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &before), 0);
  struct rlimit cap = before;
  cap.rlim_cur = rlim_t{4} << 30;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &cap), 0);
  struct Restore {
    rlimit r;
    ~Restore() { ::setrlimit(RLIMIT_FSIZE, &r); }
  } restore{before};
  boost::asio::io_context io;
  auto x = make(io);
  TrySpec big = command("big", "mkdir out && ln '" + huge.string() + "' out/big");
  big.outputs = {"out"};
  big.timeout_ms = 2000;
  auto began = std::chrono::steady_clock::now();
  ASSERT_TRUE(x->start(big).ok());
  ASSERT_TRUE(run_until(
      io, [&] { return event(TryEvent::Kind::Finished, "r-1/big/1"); }, std::chrono::seconds(60)));
  auto took = std::chrono::steady_clock::now() - began;
  std::printf("the try with a 64 GB output ended after %.1f s\n",
              std::chrono::duration<double>(took).count());
  const TryEvent* end = event(TryEvent::Kind::Finished, "r-1/big/1");
  EXPECT_EQ(end->exit_code, 1);
  EXPECT_NE(end->result.dump().find("collecting outputs ran past the try's timeout (2 s)"),
            std::string::npos)
      << end->result.dump();
  EXPECT_TRUE(end->result["outputs"].empty()) << end->result.dump();
  // No blob and no temp file (BlobStore writes under HOME/blobs/tmp, then renames).
  std::error_code ec;
  for (auto& e : fs::recursive_directory_iterator(dir_ / "home" / "blobs", ec))
    EXPECT_FALSE(e.is_regular_file()) << e.path();
}

// Inputs as no run records them (a link `a` and a file `a/x` of one task): a link is never a
// folder that another input is placed through, so nothing is written outside inputs/.
TEST_F(LocalExecutorTest, AnInputLinkIsNeverAFolderThatAnotherInputIsPlacedThrough) {
  fs::path outside = dir_ / "outside";
  fs::create_directories(outside);
  BlobStore blobs(dir_ / "home" / "blobs");
  auto text = blobs.put_bytes(outside.string());
  auto bytes = blobs.put_bytes("forged\n");
  ASSERT_TRUE(text.ok() && bytes.ok());
  TrySpec spec = command("b", "true");
  spec.inputs = {{"a", text->sha256, text->size, S_IFLNK | 0777, "up"},
                 {"a/x", bytes->sha256, bytes->size, 0644, "up"}};
  boost::asio::io_context io;
  auto x = make(io);
  ASSERT_TRUE(x->start(spec).ok());
  ASSERT_TRUE(run_until(io, [&] { return event(TryEvent::Kind::Finished, "r-1/b/1"); }));
  const TryEvent* end = event(TryEvent::Kind::Finished, "r-1/b/1");
  EXPECT_NE(end->exit_code, 0);  // 127 where the worker spawns it: it never started
  std::string error = end->result.value("error", "");
  EXPECT_NE(error.find("materializing inputs: " + (spec.inputs_dir() / "up" / "a").string() +
                       ": File exists"),
            std::string::npos)
      << error;
  EXPECT_FALSE(fs::exists(outside / "x"));
  x->shutdown();
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
