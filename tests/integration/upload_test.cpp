// End to end: `upload` tasks under `drover run` (the real binary) into a real redis-server
// this test starts on a free loopback port, into a folder (file://) and into an HTTP
// endpoint (tests/integration/upload_receiver.py, a real process that can fail on purpose);
// the sets read back by an independent hiredis reader; `drover predictions ls` and `rollback`.
#include <hiredis/hiredis.h>
#include <sys/wait.h>

#include <atomic>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "common/sha256.hpp"
#include "tests/integration/harness.hpp"

namespace drover::testing {
namespace {

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

// A bad input file and the message its upload must fail with (after FILE).
struct BadInput {
  std::string file, content, message;
};

// Which duplicate is named when there are several: the one on the earliest line, whether its
// first occurrence is in an earlier batch or in its own (a batch is 1000 rows).
std::vector<BadInput> duplicate_order_cases() {
  auto rows = [](int from, int to) {
    std::string out;
    for (int i = from; i < to; ++i) out += "{\"id\": \"k" + std::to_string(i) + "\"}\n";
    return out;
  };
  std::string both = rows(0, 1000) + "{\"id\": \"k5\"}\n{\"id\": \"a\"}\n{\"id\": \"a\"}\n";
  std::string later = rows(0, 1000) + rows(1000, 1499) + "{\"id\": \"k7\"}\n" + rows(1500, 2000) +
                      "{\"id\": \"z\"}\n{\"id\": \"z\"}\n";
  return {{"dupboth.jsonl", both, ":1001: duplicate key 'k5'"},
          {"duplater.jsonl", later, ":1500: duplicate key 'k7'"}};
}

// A free TCP port on loopback (bound, read back, closed).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// One hiredis connection (the test's reader). Not thread-safe: one per thread.
class Redis {
 public:
  Redis(int port, const std::string& password = "") {
    timeval tv{2, 0};
    c_ = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (c_ && !c_->err && !password.empty()) (void)cmd({"AUTH", password});
  }
  ~Redis() {
    if (c_) redisFree(c_);
  }
  bool ok() const { return c_ && !c_->err; }
  Reply cmd(std::initializer_list<std::string> args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return Reply(static_cast<redisReply*>(
        redisCommandArgv(c_, static_cast<int>(argv.size()), argv.data(), lens.data())));
  }
  // GET: the value, or "(nil)" when absent.
  std::string get(const std::string& key) {
    Reply r = cmd({"GET", key});
    if (!r) return "(error)";
    if (r->type == REDIS_REPLY_NIL) return "(nil)";
    return std::string(r->str, r->len);
  }
  long long integer(std::initializer_list<std::string> args) {
    Reply r = cmd(args);
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  }
  std::vector<std::string> strings(std::initializer_list<std::string> args) {
    Reply r = cmd(args);
    std::vector<std::string> out;
    if (r && r->type == REDIS_REPLY_ARRAY)
      for (size_t i = 0; i < r->elements; ++i)
        out.emplace_back(r->element[i]->str, r->element[i]->len);
    return out;
  }
  // Every key matching `pattern` (SCAN).
  std::set<std::string> scan(const std::string& pattern = "*") {
    std::set<std::string> out;
    std::string cursor = "0";
    do {
      Reply r = cmd({"SCAN", cursor, "MATCH", pattern, "COUNT", "10000"});
      if (!r || r->type != REDIS_REPLY_ARRAY) break;
      cursor.assign(r->element[0]->str, r->element[0]->len);
      for (size_t i = 0; i < r->element[1]->elements; ++i)
        out.emplace(r->element[1]->element[i]->str, r->element[1]->element[i]->len);
    } while (cursor != "0");
    return out;
  }

 private:
  redisContext* c_ = nullptr;
};

// A real redis-server on a free loopback port with its files in `dir`.
class RedisServer {
 public:
  RedisServer(fs::path dir, std::vector<std::string> extra = {})
      : dir_(std::move(dir)), extra_(std::move(extra)), port_(free_port()) {}
  ~RedisServer() { kill9(); }
  bool start() {
    fs::create_directories(dir_);
    std::vector<std::string> argv = {"/usr/bin/redis-server",
                                     "--port",
                                     std::to_string(port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--dir",
                                     dir_.string()};
    bool aof = false;
    for (auto& e : extra_) aof |= e == "--appendonly";
    if (!aof) argv.insert(argv.end(), {"--appendonly", "no"});
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    pid_ = spawn(argv, dir_ / "redis.out", dir_ / "redis.err");
    if (pid_ < 0) return false;
    // Ready when PING answers PONG (not LOADING, not a refused connection).
    return wait_until(
        [&] {
          Redis r(port_, password_);
          if (!r.ok()) return false;
          Reply p = r.cmd({"PING"});
          return p && p->type == REDIS_REPLY_STATUS && std::string(p->str) == "PONG";
        },
        std::chrono::seconds(20));
  }
  void kill9() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  void set_password(std::string p) { password_ = std::move(p); }
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }

 private:
  fs::path dir_;
  std::vector<std::string> extra_;
  int port_;
  pid_t pid_ = -1;
  std::string password_;
};

// The HTTP receiver (tests/integration/upload_receiver.py) with its files in `dir`; killed
// when the object goes away.
class Receiver {
 public:
  Receiver(fs::path dir, const std::vector<std::string>& args = {}) : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    std::vector<std::string> argv = {
        "/usr/bin/python3",
        std::string(DROVER_SOURCE_DIR) + "/tests/integration/upload_receiver.py", dir_.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = spawn(argv, dir_ / "receiver.out", dir_ / "receiver.err");
    wait_until([&] {
      std::string text = read_all(dir_ / "receiver.out");
      if (text.find('\n') == std::string::npos) return false;
      port_ = std::stoi(text);
      return true;
    });
  }
  ~Receiver() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool ok() const { return port_ > 0; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/ingest"; }
  // The requests it got, in order.
  std::vector<json> requests() const {
    std::vector<json> out;
    std::ifstream in(dir_ / "requests.jsonl");
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }
  // {"current", "versions", "sets"} of `prefix`, or null when nothing was committed.
  json store(const std::string& prefix = "preds") const {
    fs::path p = dir_ / "store" / (prefix + ".json");
    return fs::exists(p) ? json::parse(read_all(p)) : json();
  }
  std::string errors() const { return read_all(dir_ / "receiver.err"); }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

class UploadTest : public LocalFixture {
 protected:
  std::unique_ptr<RedisServer> server;

  void start_redis(std::vector<std::string> extra = {}, std::string password = "") {
    server = std::make_unique<RedisServer>(tmp / "redis", std::move(extra));
    server->set_password(password);
    ASSERT_TRUE(server->start()) << read_all(tmp / "redis" / "redis.err")
                                 << read_all(tmp / "redis" / "redis.out");
  }
  // An upload DAG of one task `up`, `with:` as given (YAML flow text).
  fs::path upload_dag(const std::string& with, const std::string& name = "up.yaml") {
    return dag(name, "dag: up\ntasks:\n  up:\n    type: upload\n    with: " + with + "\n");
  }
  fs::path redis_dag(const std::string& file, const std::string& more = "") {
    return upload_dag("{target: \"" + server->url() + "\", prefix: preds, file: \"" +
                      (tmp / file).string() + "\", key: id" + more + "}");
  }
  // Runs the DAG; its upload try.
  json upload(const fs::path& f, bool expect_ok = true,
              const std::map<std::string, std::string>& env = {}) {
    std::vector<std::string> args = {"run",           f.string(),      "--home",
                                     home().string(), "--project-dir", tmp.path().string(),
                                     "--json"};
    auto r = drover(args, env);
    last_err = r.err;
    if (expect_ok) {
      EXPECT_EQ(r.code, 0) << r.out << r.err;
    } else {
      EXPECT_NE(r.code, 0) << r.out << r.err;
    }
    json rec = json::parse(r.out, nullptr, false);
    if (rec.is_discarded()) {
      ADD_FAILURE() << "no run record: " << r.out << r.err;
      return json();
    }
    last_record = rec;
    return try_of(rec, "up", 1);
  }
  std::string log_of(const json& t) { return read_all(t["log"].get<std::string>()); }
  // Rows {"id": "k<i>", "gen": gen, "score": i} as JSON lines.
  void write_rows(const std::string& file, int n, int gen) {
    std::ofstream out(tmp / file);
    for (int i = 0; i < n; ++i)
      out << "{\"id\": \"k" << i << "\", \"gen\": " << gen << ", \"score\": " << i << "}\n";
  }
  fs::path http_dag(const Receiver& rx, const std::string& file, const std::string& more = "") {
    return upload_dag("{target: \"" + rx.url() + "\", prefix: preds, file: \"" +
                      (tmp / file).string() + "\", key: id" + more + "}");
  }
  ProcResult predictions(std::vector<std::string> args,
                         const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), "predictions");
    return drover(args, env);
  }
  json last_record;
  std::string last_err;
};

// A JSONL upload: each line re-serialized compactly (members in their order) under
// PREFIX:VERSION:KEY, PREFIX:current names the version; the try publishes what it did.
TEST_F(UploadTest, JsonlUploadIsReadByKeyUnderTheCurrentVersion) {
  start_redis();
  write_text(tmp / "p.jsonl",
             "{\"id\": \"a\", \"score\": 0.25, \"tags\": [\"x\", \"y\"]}\n"
             "\n"
             "{\"score\": 1e3, \"id\": 7, \"nested\": {\"k\": null}}\r\n"
             "{\"id\": \"caf\\u00e9:1\", \"s\": \"line\\nbreak\"}\n");
  json t = upload(redis_dag("p.jsonl"));
  ASSERT_TRUE(t.is_object());
  std::string v = t["values"]["version"];
  EXPECT_EQ(v.size(), 23u) << v;  // 20261207T182830Z-3fa9c1
  EXPECT_EQ(v.find(':'), std::string::npos);
  EXPECT_EQ(t["values"]["rows"], 3);
  EXPECT_EQ(t["values"]["previous_version"], "");
  EXPECT_EQ(t["values"]["target"], server->url());
  std::set<std::string> metrics;
  for (auto& m : t["metrics"]) metrics.insert(m["name"].get<std::string>());
  EXPECT_EQ(metrics, (std::set<std::string>{"rows", "bytes", "flip_ms", "duration_ms"}));

  Redis r(server->port());
  ASSERT_EQ(r.get("preds:current"), v);
  EXPECT_EQ(r.get("preds:" + v + ":a"), R"({"id":"a","score":0.25,"tags":["x","y"]})");
  EXPECT_EQ(r.get("preds:" + v + ":7"), R"({"score":1e3,"id":7,"nested":{"k":null}})");
  EXPECT_EQ(r.get("preds:" + v + ":caf\xc3\xa9:1"), R"({"id":"caf\u00e9:1","s":"line\nbreak"})");
  int64_t bytes = 0;
  for (auto& k : {"a", "7", "caf\xc3\xa9:1"}) bytes += r.get("preds:" + v + ":" + k).size();
  EXPECT_EQ(t["values"]["bytes"], bytes);
  EXPECT_EQ(r.strings({"ZRANGE", "preds:versions", "0", "-1"}), std::vector<std::string>{v});
  json meta = json::parse(r.strings({"HMGET", "preds:meta", v})[0]);
  EXPECT_EQ(meta["rows"], 3);
  auto events = r.strings({"LRANGE", "preds:events", "0", "-1"});
  ASSERT_EQ(events.size(), 1u);
  json e = json::parse(events[0]);
  EXPECT_TRUE(e["from"].is_null());
  EXPECT_EQ(e["to"], v);
  EXPECT_EQ(e["by"], "run " + last_record["id"].get<std::string>());
  // Nothing else: 3 rows and the 4 bookkeeping keys (no `writing` left).
  EXPECT_EQ(r.scan().size(), 7u);
}

// A CSV upload: header -> cell; a cell that is a JSON number becomes a number, anything
// else (007, 1.5.2, quoted text with commas and line breaks) a string.
TEST_F(UploadTest, CsvUploadTurnsNumericCellsIntoNumbersAndKeepsTheRestAsText) {
  start_redis();
  write_text(tmp / "p.csv",
             "id,score,zip,note\n"
             "u1,0.5,007,plain\n"
             "u2,-3,1.5.2,\"with, comma and \"\"quotes\"\"\"\n"
             "\"u3\",1E2,,\"two\nlines\"\n");
  json t = upload(redis_dag("p.csv"));
  ASSERT_TRUE(t.is_object());
  std::string v = t["values"]["version"];
  EXPECT_EQ(t["values"]["rows"], 3);
  Redis r(server->port());
  ASSERT_EQ(r.get("preds:current"), v);
  EXPECT_EQ(r.get("preds:" + v + ":u1"), R"({"id":"u1","score":0.5,"zip":"007","note":"plain"})");
  EXPECT_EQ(r.get("preds:" + v + ":u2"),
            R"({"id":"u2","score":-3,"zip":"1.5.2","note":"with, comma and \"quotes\""})");
  EXPECT_EQ(r.get("preds:" + v + ":u3"), R"({"id":"u3","score":1E2,"zip":"","note":"two\nlines"})");
}

// A second upload flips to its set (previous_version names the first); beyond `keep` the
// oldest complete sets go, every key of theirs and their metadata.
TEST_F(UploadTest, LaterUploadsFlipAndSetsBeyondKeepAreRemoved) {
  start_redis();
  std::vector<std::string> versions;
  for (int gen = 1; gen <= 3; ++gen) {
    write_rows("p.jsonl", 2500, gen);
    json t = upload(redis_dag("p.jsonl", ", keep: 2"));
    ASSERT_TRUE(t.is_object());
    EXPECT_EQ(t["values"]["previous_version"], versions.empty() ? "" : versions.back());
    versions.push_back(t["values"]["version"]);
  }
  Redis r(server->port());
  EXPECT_EQ(r.get("preds:current"), versions[2]);
  EXPECT_EQ(json::parse(r.get("preds:" + versions[2] + ":k42"))["gen"], 3);
  EXPECT_EQ(r.strings({"ZREVRANGE", "preds:versions", "0", "-1"}),
            (std::vector<std::string>{versions[2], versions[1]}));
  EXPECT_EQ(r.scan("preds:" + versions[0] + ":*").size(), 0u);
  EXPECT_EQ(r.scan("preds:" + versions[1] + ":*").size(), 2500u);
  EXPECT_EQ(r.integer({"HEXISTS", "preds:meta", versions[0]}), 0);
  EXPECT_EQ(r.integer({"HEXISTS", "preds:meta", versions[1]}), 1);
  EXPECT_EQ(r.integer({"LLEN", "preds:events"}), 3);
  EXPECT_EQ(r.scan().size(), 2u * 2500 + 4);
}

// A reader in another thread GETs PREFIX:current, then a sample of keys under it, over and
// over while 20 uploads flip: every value it reads belongs to the set `current` named (each
// set's values carry their generation), never a missing key, never a mix.
TEST_F(UploadTest, ReadersSeeTheOldSetOrTheNewSetNeverAMixAcrossTwentyFlips) {
  start_redis();
  constexpr int kRows = 3000;
  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  std::mutex mu;
  std::map<std::string, int> gen_of;  // version -> the generation the reader saw in it
  std::vector<std::string> problems;
  std::thread reader([&] {
    Redis r(server->port());
    std::mt19937 rng(42);
    while (!stop) {
      std::string v = r.get("preds:current");
      if (v == "(nil)") continue;
      int gen = -1;
      for (int i = 0; i < 20; ++i) {
        std::string k = "k" + std::to_string(rng() % kRows);
        std::string val = r.get("preds:" + v + ":" + k);
        json j = json::parse(val, nullptr, false);
        std::lock_guard<std::mutex> l(mu);
        if (!j.is_object()) {
          problems.push_back("current " + v + ": " + k + " = " + val);
          break;
        }
        int g = j["gen"];
        if (gen == -1) gen = g;
        if (g != gen) problems.push_back("current " + v + ": mixed generations");
        auto [it, fresh] = gen_of.emplace(v, g);
        if (it->second != g) problems.push_back(v + " held two generations");
      }
      ++reads;
    }
  });
  std::map<std::string, int> uploaded;
  for (int gen = 1; gen <= 20; ++gen) {
    write_rows("p.jsonl", kRows, gen);
    json t = upload(redis_dag("p.jsonl", ", keep: 25"));
    if (!t.is_object()) break;
    uploaded[t["values"]["version"]] = gen;
  }
  stop = true;
  reader.join();
  std::lock_guard<std::mutex> l(mu);
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems[0];
  EXPECT_GT(reads.load(), 100);
  EXPECT_GE(gen_of.size(), 10u) << "the reader saw too few of the sets to tell";
  for (auto& [v, g] : gen_of) EXPECT_EQ(uploaded[v], g) << v;
}

// The peak RSS of the try process, polled from /proc while `pid` (a `drover run`) lives:
// every process whose working folder is inside `runs`.
long long poll_try_peak_kb(pid_t pid, const fs::path& runs, int& status) {
  long long peak = 0;
  for (;;) {
    for (auto& e : fs::directory_iterator("/proc")) {
      std::string name = e.path().filename().string();
      if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
      std::error_code ec;
      fs::path cwd = fs::read_symlink(e.path() / "cwd", ec);
      if (ec || cwd.string().rfind(runs.string(), 0) != 0) continue;
      std::ifstream st(e.path() / "status");
      std::string line;
      while (std::getline(st, line))
        if (line.rfind("VmHWM:", 0) == 0) peak = std::max(peak, std::atoll(line.c_str() + 6));
    }
    if (::waitpid(pid, &status, WNOHANG) == pid) return peak;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

// A million keys (a ~100 MB file): all there, values spot-checked, and the try's peak RSS
// far below the file's size (it streams).
TEST_F(UploadTest, AMillionKeysUploadWithMemoryThatDoesNotGrowWithTheFile) {
  start_redis();
  constexpr int kRows = 1000000;
  {
    std::ofstream out(tmp / "big.jsonl");
    std::string pad(60, 'x');
    for (int i = 0; i < kRows; ++i)
      out << "{\"id\":\"k" << i << "\",\"score\":" << i << ".5,\"pad\":\"" << pad << "\"}\n";
  }
  ASSERT_GT(fs::file_size(tmp / "big.jsonl"), 90u << 20);
  fs::path f = redis_dag("big.jsonl");
  pid_t pid = spawn({DROVER_BIN, "run", f.string(), "--home", home().string(), "--project-dir",
                     tmp.path().string(), "--json"},
                    tmp / "big.out", tmp / "big.err");
  ASSERT_GT(pid, 0);
  int status = 0;
  long long peak_kb = poll_try_peak_kb(pid, home() / "runs", status);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_all(tmp / "big.err");
  json t = try_of(json::parse(read_all(tmp / "big.out")), "up", 1);
  EXPECT_EQ(t["values"]["rows"], kRows);
  EXPECT_GT(peak_kb, 0) << "never saw the try process";
  EXPECT_LT(peak_kb, 48 * 1024) << "the try's peak RSS grows with the file";
  std::printf("peak RSS of the try: %lld KiB\n", peak_kb);
  Redis r(server->port());
  std::string v = r.get("preds:current");
  EXPECT_EQ(v, t["values"]["version"]);
  EXPECT_EQ(r.integer({"DBSIZE"}), kRows + 4);
  for (int i : {0, 123456, kRows - 1})
    EXPECT_EQ(r.get("preds:" + v + ":k" + std::to_string(i)),
              "{\"id\":\"k" + std::to_string(i) + "\",\"score\":" + std::to_string(i) +
                  ".5,\"pad\":\"" + std::string(60, 'x') + "\"}");
}

// A redis-server killed (SIGKILL) mid-upload: the task fails, PREFIX:current still names the
// old set once the server is back (from its append-only file), and the next upload removes
// the half-written set.
TEST_F(UploadTest, ARedisKilledMidUploadFailsTheTaskAndTheNextUploadCleansUp) {
  start_redis({"--appendonly", "yes", "--appendfsync", "everysec"});
  write_rows("small.jsonl", 10, 1);
  json t1 = upload(redis_dag("small.jsonl"));
  ASSERT_TRUE(t1.is_object());
  std::string v1 = t1["values"]["version"];
  write_rows("big.jsonl", 1000000, 2);
  fs::path f = redis_dag("big.jsonl", "");
  pid_t pid = spawn({DROVER_BIN, "run", f.string(), "--home", home().string(), "--project-dir",
                     tmp.path().string(), "--json"},
                    tmp / "big.out", tmp / "big.err");
  ASSERT_GT(pid, 0);
  {
    Redis r(server->port());
    ASSERT_TRUE(wait_until([&] { return r.integer({"DBSIZE"}) > 20000; }))
        << "never saw the upload";
  }
  server->kill9();
  int status = 0;
  ASSERT_TRUE(wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; },
                         std::chrono::seconds(120)));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << read_all(tmp / "big.err");
  json failed = try_of(json::parse(read_all(tmp / "big.out")), "up", 1);
  EXPECT_EQ(failed["state"], "failed") << failed.dump(2);
  EXPECT_NE(log_of(failed).find("upload: redis://127.0.0.1:"), std::string::npos) << log_of(failed);

  ASSERT_TRUE(server->start()) << read_all(tmp / "redis" / "redis.err");
  Redis r(server->port());
  EXPECT_EQ(r.get("preds:current"), v1);
  auto writing = r.strings({"SMEMBERS", "preds:writing"});
  ASSERT_EQ(writing.size(), 1u);
  std::string v2 = writing[0];
  EXPECT_GT(r.scan("preds:" + v2 + ":*").size(), 1000u);

  json t3 = upload(redis_dag("small.jsonl"));
  ASSERT_TRUE(t3.is_object());
  EXPECT_NE(log_of(t3).find("removed the half-written set " + v2), std::string::npos) << log_of(t3);
  EXPECT_EQ(r.scan("preds:" + v2 + ":*").size(), 0u);
  EXPECT_EQ(r.integer({"EXISTS", "preds:writing"}), 0);
  EXPECT_EQ(r.get("preds:current"), t3["values"]["version"]);
  EXPECT_EQ(r.integer({"DBSIZE"}), 2 * 10 + 4);
}

// Bad input uploads nothing and flips nothing: the try fails with FILE:LINE: MESSAGE, and
// the store holds exactly the keys it held before (the partly written set removed).
TEST_F(UploadTest, BadInputFailsNamingTheLineAndUploadsNothing) {
  start_redis();
  write_rows("good.jsonl", 5, 1);
  json t1 = upload(redis_dag("good.jsonl"));
  ASSERT_TRUE(t1.is_object());
  Redis r(server->port());
  std::string current = r.get("preds:current");
  std::string many;  // 1500 good rows (more than one pipelined batch), then a duplicate
  for (int i = 0; i < 1500; ++i) many += "{\"id\": \"k" + std::to_string(i) + "\"}\n";
  std::vector<BadInput> cases = duplicate_order_cases();
  cases.insert(
      cases.end(),
      {
          {"broken.jsonl", "{\"id\": \"a\"}\n{\"id\": \"b\",}\n",
           ":2: not valid JSON: column 12: expected a member name"},
          {"cut.jsonl", "{\"id\": \"a\"}\n{\"id\": \"b\"\n",
           ":2: not valid JSON: column 11: "
           "unexpected end of the line"},
          {"array.jsonl", "[1, 2]\n", ":1: not a JSON object"},
          {"nokey.jsonl", "{\"id\": 1}\n{\"id\": 2}\n{\"name\": 3}\n",
           ":3: no key column 'id' in this row"},
          {"nullkey.jsonl", "{\"id\": null}\n",
           ":1: key column 'id' must be a string or a number, "
           "not null"},
          {"emptykey.jsonl", "{\"id\": \"\"}\n", ":1: empty key"},
          {"dup.jsonl", many + "{\"id\": \"k5\"}\n", ":1501: duplicate key 'k5'"},
          {"dupnum.jsonl", "{\"id\": 1}\n{\"id\": \"1\"}\n", ":2: duplicate key '1'"},
          {"empty.jsonl", "", ":1: empty file: no rows to upload"},
          {"nokey.csv", "a,b\n1,2\n", ":1: no key column 'id' in the header (columns: a, b)"},
          {"cells.csv", "id,b\nx,1\ny,2,3\n", ":3: 3 cells, the header has 2"},
          {"header.csv", "id,b\n", ":1: a header but no rows to upload"},
          {"dup.csv", "id,b\nx,1\ny,2\nx,3\n", ":4: duplicate key 'x'"},
          {"quote.csv", "id,b\nx,\"open\n",
           ":2: a quoted cell is not closed by the end of the file"},
      });
  std::set<std::string> before = r.scan();
  for (const BadInput& c : cases) {
    SCOPED_TRACE(c.file);
    write_text(tmp / c.file, c.content);
    json t = upload(redis_dag(c.file, ""), /*expect_ok=*/false);
    ASSERT_TRUE(t.is_object());
    EXPECT_EQ(t["state"], "failed");
    std::string log = log_of(t);
    EXPECT_NE(log.find("upload: " + (tmp / c.file).string() + c.message + "\n"), std::string::npos)
        << log;
    EXPECT_EQ(r.get("preds:current"), current);
    EXPECT_EQ(r.scan(), before) << "keys left behind";
  }
  // A missing file, and an unknown format: nothing written either.
  json t = upload(redis_dag("missing.jsonl"), false);
  EXPECT_NE(log_of(t).find((tmp / "missing.jsonl").string() + ": No such file or directory"),
            std::string::npos);
  EXPECT_EQ(r.scan(), before);
}

// Lint checks `with:` before anything runs.
TEST_F(UploadTest, LintRefusesABadWithBlock) {
  fs::path f =
      upload_dag("{target: \"ftp://x\", prefix: \"a:b\", file: p.txt, key: id, keep: 0, extra: 1}");
  auto r = drover({"lint", f.string(), "--home", home().string()});
  EXPECT_EQ(r.code, 1);
  for (const char* m :
       {"unknown key 'extra' in upload task",
        "target must be redis://[:PASSWORD@]HOST:PORT/DB, file://DIR or "
        "http(s)://HOST[:PORT]/PATH",
        "'prefix' must be 1..128 of [A-Za-z0-9_.-]",
        "'keep' must be a whole number of sets, 1..1000", "cannot tell the format of 'p.txt'"})
    EXPECT_NE(r.out.find(m), std::string::npos) << m << "\n" << r.out;
}

// A password-protected Redis, the password from a secret in the URL: the upload works, and
// the password is never in the try's log (not even masked), the run record, or the values.
TEST_F(UploadTest, APasswordFromASecretAuthenticatesAndIsNeverShown) {
  const std::string pw = "pw-Secret-7@/x";  // '@' and '/' too: the URL is split at the last '@'
  start_redis({"--requirepass", pw}, pw);
  write_rows("p.jsonl", 3, 1);
  fs::path f = upload_dag(
      "{target: \"redis://:{{ secrets.REDIS_PW }}@127.0.0.1:" + std::to_string(server->port()) +
      "/0\", prefix: preds, file: \"" + (tmp / "p.jsonl").string() + "\", key: id}");
  json t = upload(f, true, {{"DROVER_SECRET_REDIS_PW", pw}});
  ASSERT_TRUE(t.is_object());
  EXPECT_EQ(t["values"]["target"], server->url());
  std::string log = log_of(t);
  EXPECT_EQ(log.find(pw), std::string::npos) << log;
  EXPECT_EQ(log.find("***"), std::string::npos) << "the log held the password, masked: " << log;
  EXPECT_EQ(last_record.dump().find(pw), std::string::npos);
  EXPECT_EQ(last_err.find(pw), std::string::npos);
  Redis r(server->port(), pw);
  EXPECT_EQ(r.get("preds:current"), t["values"]["version"]);

  // A wrong password fails, saying so, without showing either.
  json bad = upload(f, false, {{"DROVER_SECRET_REDIS_PW", "wrong-password"}});
  ASSERT_TRUE(bad.is_object());
  std::string blog = log_of(bad);
  EXPECT_NE(blog.find("AUTH"), std::string::npos) << blog;
  EXPECT_EQ(blog.find("wrong-password"), std::string::npos) << blog;
  EXPECT_EQ(blog.find("***"), std::string::npos) << blog;

  // The CLI: the password from $DROVER_TARGET_PASSWORD, or in the URL; never printed.
  auto ls = predictions({"ls", server->url(), "--prefix", "preds", "--json"},
                        {{"DROVER_TARGET_PASSWORD", pw}});
  ASSERT_EQ(ls.code, 0) << ls.err;
  EXPECT_EQ(json::parse(ls.out)["current"], t["values"]["version"]);
  auto ls2 =
      predictions({"ls", "redis://:" + pw + "@127.0.0.1:" + std::to_string(server->port()) + "/0",
                   "--prefix", "preds"});
  ASSERT_EQ(ls2.code, 0) << ls2.err;
  EXPECT_EQ(ls2.out.find(pw), std::string::npos);
  auto noauth = predictions({"ls", server->url(), "--prefix", "preds"});
  EXPECT_EQ(noauth.code, 1);
  EXPECT_NE(noauth.err.find("NOAUTH"), std::string::npos) << noauth.err;
}

// `drover predictions ls` lists complete sets newest first with the current one marked;
// `rollback` flips to the one before current, or --to a named one, each as an event by
// $USER; a set that does not exist is refused.
TEST_F(UploadTest, PredictionsLsAndRollbackFlipBackAsEvents) {
  start_redis();
  std::vector<std::string> v;
  for (int gen = 1; gen <= 3; ++gen) {
    write_rows("p.jsonl", 10 * gen, gen);
    json t = upload(redis_dag("p.jsonl"));
    ASSERT_TRUE(t.is_object());
    v.push_back(t["values"]["version"]);
  }
  auto ls = predictions({"ls", server->url(), "--prefix", "preds", "--json"});
  ASSERT_EQ(ls.code, 0) << ls.err;
  json j = json::parse(ls.out);
  EXPECT_EQ(j["current"], v[2]);
  ASSERT_EQ(j["versions"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(j["versions"][i]["version"], v[2 - i]);
    EXPECT_EQ(j["versions"][i]["rows"], 10 * (3 - i));
    EXPECT_EQ(j["versions"][i]["current"], i == 0);
    EXPECT_TRUE(j["versions"][i]["created_at"].is_string());
  }
  std::map<std::string, std::string> env = {{"USER", "tester"}};
  auto rb = predictions({"rollback", server->url(), "--prefix", "preds"}, env);
  ASSERT_EQ(rb.code, 0) << rb.err;
  Redis r(server->port());
  EXPECT_EQ(r.get("preds:current"), v[1]);
  json e = json::parse(r.strings({"LRANGE", "preds:events", "-1", "-1"})[0]);
  EXPECT_EQ(e["from"], v[2]);
  EXPECT_EQ(e["to"], v[1]);
  EXPECT_EQ(e["by"], "tester");
  auto text = predictions({"ls", server->url(), "--prefix", "preds"});
  EXPECT_NE(text.out.find("* " + v[1]), std::string::npos) << text.out;

  rb = predictions({"rollback", server->url(), "--prefix", "preds", "--to", v[2]}, env);
  ASSERT_EQ(rb.code, 0) << rb.err;
  EXPECT_EQ(r.get("preds:current"), v[2]);
  auto none = predictions({"rollback", server->url(), "--prefix", "preds", "--to", "nope"});
  EXPECT_EQ(none.code, 1);
  EXPECT_NE(none.err.find("no complete set 'nope' under prefix 'preds'"), std::string::npos)
      << none.err;
  EXPECT_EQ(r.get("preds:current"), v[2]);
  EXPECT_EQ(r.integer({"LLEN", "preds:events"}), 5);
  // The oldest has nothing before it.
  ASSERT_EQ(predictions({"rollback", server->url(), "--prefix", "preds", "--to", v[0]}).code, 0);
  auto oldest = predictions({"rollback", server->url(), "--prefix", "preds"});
  EXPECT_EQ(oldest.code, 1);
  auto help = predictions({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_EQ(help.out.rfind("Usage:", 0), 0u) << help.out;
}

// file://DIR: each set a file DIR/PREFIX/VERSION.jsonl, DIR/PREFIX/current a link flipped by
// rename(2), `keep` likewise, metadata and events in DIR/PREFIX/meta.json; rollback flips
// the link back; bad input leaves no file and the link where it was.
TEST_F(UploadTest, FileTargetFlipsALinkKeepsNSetsAndRollsBack) {
  fs::path dir = tmp / "serve";
  std::string url = "file://" + dir.string();
  auto file_dag = [&](const std::string& file) {
    return upload_dag("{target: \"" + url + "\", prefix: preds, file: \"" + (tmp / file).string() +
                      "\", key: id, keep: 2}");
  };
  std::vector<std::string> v;
  for (int gen = 1; gen <= 3; ++gen) {
    write_rows("p.jsonl", 3, gen);
    json t = upload(file_dag("p.jsonl"));
    ASSERT_TRUE(t.is_object());
    v.push_back(t["values"]["version"]);
    EXPECT_EQ(t["values"]["target"], url);
  }
  fs::path root = dir / "preds";
  EXPECT_EQ(fs::read_symlink(root / "current"), fs::path(v[2] + ".jsonl"));
  EXPECT_EQ(read_all(root / "current"),
            "{\"id\":\"k0\",\"gen\":3,\"score\":0}\n{\"id\":\"k1\",\"gen\":3,\"score\":1}\n"
            "{\"id\":\"k2\",\"gen\":3,\"score\":2}\n");
  EXPECT_FALSE(fs::exists(root / (v[0] + ".jsonl")));
  EXPECT_TRUE(fs::exists(root / (v[1] + ".jsonl")));
  json meta = json::parse(read_all(root / "meta.json"));
  EXPECT_EQ(meta["versions"].size(), 2u);
  EXPECT_EQ(meta["events"].size(), 3u);

  // Bad input (a duplicate): no file left, the link unchanged.
  write_text(tmp / "dup.jsonl", "{\"id\": \"a\"}\n{\"id\": \"b\"}\n{\"id\": \"a\"}\n");
  json bad = upload(file_dag("dup.jsonl"), false);
  ASSERT_TRUE(bad.is_object());
  EXPECT_NE(log_of(bad).find((tmp / "dup.jsonl").string() + ":3: duplicate key 'a'"),
            std::string::npos)
      << log_of(bad);
  size_t files = 0;
  for (auto& e : fs::directory_iterator(root)) files += e.path().filename() != ".lock";
  EXPECT_EQ(files, 4u) << "two sets, current, meta.json";
  EXPECT_EQ(fs::read_symlink(root / "current"), fs::path(v[2] + ".jsonl"));

  auto rb = predictions({"rollback", url, "--prefix", "preds"}, {{"USER", "tester"}});
  ASSERT_EQ(rb.code, 0) << rb.err;
  EXPECT_EQ(fs::read_symlink(root / "current"), fs::path(v[1] + ".jsonl"));
  meta = json::parse(read_all(root / "meta.json"));
  EXPECT_EQ(meta["events"].back()["by"], "tester");
  EXPECT_EQ(meta["events"].back()["from"], v[2]);
  auto ls = predictions({"ls", url, "--prefix", "preds", "--json"});
  ASSERT_EQ(ls.code, 0) << ls.err;
  json j = json::parse(ls.out);
  EXPECT_EQ(j["current"], v[1]);
  ASSERT_EQ(j["versions"].size(), 2u);
  EXPECT_EQ(j["versions"][0]["version"], v[2]);
}

// ---------------------------------------------------------------------------------------
// http(s):// targets (docs/models.md, "HTTP protocol")

// The rows of every batch request among `reqs`, in order.
std::vector<json> batch_rows(const std::vector<json>& reqs) {
  std::vector<json> out;
  for (const json& r : reqs)
    if (r["body"].is_object() && r["body"].contains("batch") && r["status"] == 200 &&
        !r["replayed"].get<bool>())
      for (const json& row : r["body"]["rows"]) out.push_back(row);
  return out;
}

// Each batch of up to batch_size rows is one POST with its own Idempotency-Key (sha256 of
// PREFIX/VERSION/N) and X-Drover-* headers; every row arrives exactly once, as {key, value};
// the commit (rows, batches, keep) comes last and flips the store. A second upload's
// previous_version is the first's, and the sets the store dropped beyond keep are logged.
TEST_F(UploadTest, HttpTargetPostsEveryRowOnceInBatchesAndTheCommitLast) {
  Receiver rx(tmp / "rx");
  ASSERT_TRUE(rx.ok()) << rx.errors();
  write_rows("p.jsonl", 2500, 1);
  json t = upload(http_dag(rx, "p.jsonl", ", batch_size: 1000"));
  ASSERT_TRUE(t.is_object());
  std::string v = t["values"]["version"];
  EXPECT_EQ(t["values"]["rows"], 2500);
  EXPECT_EQ(t["values"]["target"], rx.url());
  EXPECT_EQ(t["values"]["previous_version"], "");

  auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 4u) << rx.errors();
  for (size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const json& h = reqs[i]["headers"];
    std::string n = std::to_string(i + 1);
    EXPECT_EQ(reqs[i]["path"], "/ingest");
    EXPECT_EQ(h["content-type"], "application/json");
    EXPECT_EQ(h["idempotency-key"], sha256_hex("preds/" + v + "/" + n));
    EXPECT_EQ(h["x-drover-request"], "batch");
    EXPECT_EQ(h["x-drover-batch"], n + "/3");
    EXPECT_EQ(h["x-drover-prefix"], "preds");
    EXPECT_EQ(h["x-drover-version"], v);
    EXPECT_FALSE(h.contains("authorization"));
    EXPECT_EQ(reqs[i]["body"]["prefix"], "preds");
    EXPECT_EQ(reqs[i]["body"]["version"], v);
    EXPECT_EQ(reqs[i]["body"]["batch"], i + 1);
    EXPECT_EQ(reqs[i]["body"]["batches"], 3);
    EXPECT_EQ(reqs[i]["body"]["rows"].size(), i < 2 ? 1000u : 500u);
    EXPECT_EQ(reqs[i]["status"], 200);
  }
  std::set<std::string> keys;
  for (const json& row : batch_rows(reqs)) keys.insert(row["key"].get<std::string>());
  EXPECT_EQ(keys.size(), 2500u) << "a row was sent twice or not at all";
  EXPECT_EQ(reqs[0]["body"]["rows"][42],
            json::parse(R"({"key":"k42","value":{"id":"k42","gen":1,"score":42}})"));
  const json& c = reqs[3];
  EXPECT_EQ(c["headers"]["x-drover-request"], "commit");
  EXPECT_EQ(c["headers"]["idempotency-key"], sha256_hex("preds/" + v + "/commit"));
  EXPECT_EQ(c["body"]["commit"], true);
  EXPECT_EQ(c["body"]["rows"], 2500);
  EXPECT_EQ(c["body"]["batches"], 3);
  EXPECT_EQ(c["body"]["keep"], 3);
  EXPECT_EQ(c["body"]["bytes"], t["values"]["bytes"]);
  EXPECT_EQ(c["body"]["by"], "run " + last_record["id"].get<std::string>());
  EXPECT_EQ(c["status"], 200) << c.dump();  // the receiver checked the count and the sha256

  json store = rx.store();
  ASSERT_TRUE(store.is_object());
  EXPECT_EQ(store["current"], v);
  EXPECT_EQ(store["sets"][v].size(), 2500u);
  EXPECT_EQ(store["sets"][v]["k7"], json::parse(R"({"id":"k7","gen":1,"score":7})"));

  write_rows("p.jsonl", 10, 2);
  json t2 = upload(http_dag(rx, "p.jsonl", ", keep: 1"));
  ASSERT_TRUE(t2.is_object());
  EXPECT_EQ(t2["values"]["previous_version"], v);
  EXPECT_NE(log_of(t2).find("upload: removed old set " + v + " (keep 1)"), std::string::npos)
      << log_of(t2);
  EXPECT_EQ(rx.store()["current"], t2["values"]["version"]);
  EXPECT_EQ(rx.requests().size(), 6u);
}

// 503s and a connection dropped after the store kept the batch are retried with backoff,
// under the same Idempotency-Key, so the store keeps that batch once; a 429's Retry-After
// is waited out; a store that never answers fails the task once the retries run out.
TEST_F(UploadTest, HttpTargetRetriesTransientFailuresUnderTheSameIdempotencyKey) {
  Receiver rx(tmp / "rx", {"--fail-first", "2", "--drop-first", "1"});
  ASSERT_TRUE(rx.ok()) << rx.errors();
  write_rows("p.jsonl", 1500, 1);
  json t = upload(http_dag(rx, "p.jsonl"));
  ASSERT_TRUE(t.is_object());
  std::string v = t["values"]["version"];
  auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 6u) << rx.errors();
  // Batch 1: 503, 503, kept but unanswered, answered again from its key; batch 2; the commit.
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(reqs[i]["headers"]["idempotency-key"], sha256_hex("preds/" + v + "/1"));
    EXPECT_EQ(reqs[i]["headers"]["x-drover-batch"], "1/2");
  }
  EXPECT_EQ(reqs[0]["status"], 503);
  EXPECT_EQ(reqs[1]["status"], 503);
  EXPECT_TRUE(reqs[2]["dropped"].get<bool>());
  EXPECT_TRUE(reqs[3]["replayed"].get<bool>());
  EXPECT_EQ(reqs[4]["headers"]["x-drover-batch"], "2/2");
  EXPECT_EQ(reqs[4]["headers"]["idempotency-key"], sha256_hex("preds/" + v + "/2"));
  EXPECT_EQ(reqs[5]["headers"]["x-drover-request"], "commit");
  EXPECT_EQ(reqs[5]["status"], 200);
  EXPECT_EQ(rx.store()["current"], v);
  EXPECT_EQ(rx.store()["sets"][v].size(), 1500u);
  EXPECT_EQ(batch_rows(reqs).size(), 1500u);
  std::string log = log_of(t);
  EXPECT_NE(
      log.find("upload: " + rx.url() + ": batch 1/2: HTTP 503: failing on purpose; try 2 of 6 in "),
      std::string::npos)
      << log;
  EXPECT_NE(log.find("; try 3 of 6 in "), std::string::npos) << log;
  EXPECT_NE(log.find("Empty reply from server; try 4 of 6 in "), std::string::npos) << log;

  Receiver slow(tmp / "slow", {"--fail-first", "1", "--fail-status", "429", "--retry-after", "1"});
  ASSERT_TRUE(slow.ok()) << slow.errors();
  write_rows("small.jsonl", 3, 1);
  json t2 = upload(http_dag(slow, "small.jsonl"));
  ASSERT_TRUE(t2.is_object());
  auto sreqs = slow.requests();
  ASSERT_EQ(sreqs.size(), 3u);
  EXPECT_EQ(sreqs[0]["status"], 429);
  EXPECT_GE(sreqs[1]["t"].get<double>() - sreqs[0]["t"].get<double>(), 0.95);
  EXPECT_NE(log_of(t2).find("HTTP 429: failing on purpose; try 2 of 6 in 1.0 s"), std::string::npos)
      << log_of(t2);

  Receiver down(tmp / "down", {"--fail-first", "100"});
  ASSERT_TRUE(down.ok()) << down.errors();
  json t3 = upload(http_dag(down, "small.jsonl", ", retries: 2"), /*expect_ok=*/false);
  ASSERT_TRUE(t3.is_object());
  EXPECT_NE(log_of(t3).find("upload: " + down.url() +
                            ": batch 1/1: HTTP 503: failing on purpose (after 3 tries)\n"),
            std::string::npos)
      << log_of(t3);
  auto dreqs = down.requests();
  ASSERT_EQ(dreqs.size(), 4u);  // three tries, then the abort
  EXPECT_EQ(dreqs[3]["headers"]["x-drover-request"], "abort");
  EXPECT_TRUE(down.store().is_null());
}

// Any other 4xx is the store refusing the request: the task fails at once, naming the
// status and the first line of the answer, no retry, no commit (an abort instead); the
// store's current set stays what it was.
TEST_F(UploadTest, HttpTargetFailsOnA400WithoutRetryAndSendsNoCommit) {
  Receiver rx(tmp / "rx", {"--reject-batch", "2"});
  ASSERT_TRUE(rx.ok()) << rx.errors();
  write_rows("small.jsonl", 3, 1);
  json t1 = upload(http_dag(rx, "small.jsonl"));
  ASSERT_TRUE(t1.is_object());
  std::string v1 = t1["values"]["version"];
  size_t before = rx.requests().size();

  write_rows("p.jsonl", 2500, 2);
  json t = upload(http_dag(rx, "p.jsonl"), /*expect_ok=*/false);
  ASSERT_TRUE(t.is_object());
  EXPECT_EQ(t["state"], "failed");
  std::string log = log_of(t);
  EXPECT_NE(
      log.find("upload: " + rx.url() + ": batch 2/3: HTTP 400: row 3: score must be a number\n"),
      std::string::npos)
      << log;
  EXPECT_EQ(log.find("second line"), std::string::npos) << log;
  EXPECT_EQ(log.find("try 2 of"), std::string::npos) << log;
  auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), before + 3) << "batch 1, batch 2 once, the abort";
  EXPECT_EQ(reqs[before]["headers"]["x-drover-batch"], "1/3");
  EXPECT_EQ(reqs[before + 1]["headers"]["x-drover-batch"], "2/3");
  EXPECT_EQ(reqs[before + 1]["status"], 400);
  EXPECT_EQ(reqs[before + 2]["headers"]["x-drover-request"], "abort");
  for (size_t i = before; i < reqs.size(); ++i)
    EXPECT_NE(reqs[i]["headers"]["x-drover-request"], "commit") << reqs[i].dump();
  EXPECT_EQ(rx.store()["current"], v1);
}

// Bad input sends nothing at all: every row is checked (and spooled) before the first
// request, so a broken line, a duplicate key past the first batch or an empty file fail the
// try with FILE:LINE: MESSAGE and the store never hears of it.
TEST_F(UploadTest, HttpTargetSendsNothingForBadInput) {
  Receiver rx(tmp / "rx");
  ASSERT_TRUE(rx.ok()) << rx.errors();
  std::string many;
  for (int i = 0; i < 2500; ++i) many += "{\"id\": \"k" + std::to_string(i) + "\"}\n";
  std::vector<BadInput> cases = duplicate_order_cases();
  cases.insert(cases.end(),
               {
                   {"broken.jsonl", many + "{\"id\": \"b\",}\n",
                    ":2501: not valid JSON: column 12: expected a member name"},
                   {"dup.jsonl", many + "{\"id\": \"k5\"}\n", ":2501: duplicate key 'k5'"},
                   {"empty.jsonl", "", ":1: empty file: no rows to upload"},
                   {"dup.csv", "id,b\nx,1\ny,2\nx,3\n", ":4: duplicate key 'x'"},
               });
  for (const BadInput& c : cases) {
    SCOPED_TRACE(c.file);
    write_text(tmp / c.file, c.content);
    json t = upload(http_dag(rx, c.file, ", batch_size: 1000"), /*expect_ok=*/false);
    ASSERT_TRUE(t.is_object());
    EXPECT_EQ(t["state"], "failed");
    EXPECT_NE(log_of(t).find("upload: " + (tmp / c.file).string() + c.message + "\n"),
              std::string::npos)
        << log_of(t);
    EXPECT_EQ(rx.requests().size(), 0u) << "a request was sent";
  }
  EXPECT_TRUE(rx.store().is_null());
}

// The token (from a secret) goes as "Authorization: Bearer TOKEN" on every request and is
// never shown: not in the log, the run record or stderr; a store that echoes a wrong token
// in its 401 has it masked, and a 401 is not retried.
TEST_F(UploadTest, HttpTargetSendsTheTokenAndNeverShowsIt) {
  const std::string token = "tok-Secret-42";
  Receiver rx(tmp / "rx", {"--token", token});
  ASSERT_TRUE(rx.ok()) << rx.errors();
  write_rows("p.jsonl", 5, 1);
  fs::path f = http_dag(rx, "p.jsonl", ", token: \"{{ secrets.UPLOAD_TOKEN }}\", batch_size: 2");
  json t = upload(f, true, {{"DROVER_SECRET_UPLOAD_TOKEN", token}});
  ASSERT_TRUE(t.is_object());
  auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 4u);
  for (const json& r : reqs) EXPECT_EQ(r["headers"]["authorization"], "Bearer " + token);
  std::string log = log_of(t);
  EXPECT_EQ(log.find(token), std::string::npos) << log;
  EXPECT_EQ(log.find("warning"), std::string::npos) << log;
  EXPECT_EQ(last_record.dump().find(token), std::string::npos);
  EXPECT_EQ(last_err.find(token), std::string::npos);
  EXPECT_EQ(rx.store()["current"], t["values"]["version"]);

  const std::string wrong = "wrong-token-99";
  json bad = upload(f, false, {{"DROVER_SECRET_UPLOAD_TOKEN", wrong}});
  ASSERT_TRUE(bad.is_object());
  std::string blog = log_of(bad);
  EXPECT_NE(blog.find("batch 1/3: HTTP 401: unauthorized: got 'Bearer ***'\n"), std::string::npos)
      << blog;
  EXPECT_EQ(blog.find(wrong), std::string::npos) << blog;
  EXPECT_EQ(last_record.dump().find(wrong), std::string::npos);
  EXPECT_EQ(rx.requests().size(), 4u + 2) << "one batch request, then the abort";

  // A literal token works, with a warning that logs cannot mask it.
  fs::path lit = http_dag(rx, "p.jsonl", ", token: \"" + token + "\"");
  json t3 = upload(lit);
  ASSERT_TRUE(t3.is_object());
  EXPECT_NE(log_of(t3).find("upload: warning: 'token' does not come from {{ secrets.NAME }}"),
            std::string::npos)
      << log_of(t3);
}

// Lint takes http(s) targets and their keys, refuses those keys for other targets, and a
// URL with user information; `drover predictions` says http targets are not for it.
TEST_F(UploadTest, LintTakesHttpTargetsAndPredictionsRefusesThem) {
  fs::path ok = upload_dag(
      "{target: \"https://store.example.com/v1/ingest?tenant=a\", prefix: p, file: p.jsonl, "
      "key: id, token: \"{{ secrets.T }}\", batch_size: 500, retries: 0, ca_file: /etc/ca.pem}",
      "ok.yaml");
  auto r = drover({"lint", ok.string(), "--home", home().string()});
  EXPECT_EQ(r.code, 0) << r.out << r.err;

  fs::path bad = upload_dag(
      "{target: \"redis://127.0.0.1:1/0\", prefix: p, file: p.jsonl, key: id, token: x, "
      "batch_size: 0, retries: -1}",
      "bad.yaml");
  r = drover({"lint", bad.string(), "--home", home().string()});
  EXPECT_EQ(r.code, 1);
  for (const char* m : {"'token' is only for http(s):// targets",
                        "'batch_size' must be a whole number of rows, 1..100000",
                        "'retries' must be a whole number, 0..100"})
    EXPECT_NE(r.out.find(m), std::string::npos) << m << "\n" << r.out;

  fs::path user = upload_dag(
      "{target: \"http://me:pw@127.0.0.1:9/x\", prefix: p, file: p.jsonl, key: id}", "user.yaml");
  r = drover({"lint", user.string(), "--home", home().string()});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("http:// target: no user information in the URL"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("pw@"), std::string::npos) << r.out;

  auto ls = predictions({"ls", "http://127.0.0.1:9/x", "--prefix", "p"});
  EXPECT_EQ(ls.code, 1);
  EXPECT_NE(ls.err.find("listing sets is not supported for http targets"), std::string::npos)
      << ls.err;
  auto rb = predictions({"rollback", "http://127.0.0.1:9/x", "--prefix", "p"});
  EXPECT_EQ(rb.code, 1);
  EXPECT_NE(rb.err.find("rollback is not supported for http targets"), std::string::npos) << rb.err;
}

}  // namespace
}  // namespace drover::testing
