// End to end: the daemon's blob API (web/api_server.cpp) as a snapshot remote
// (data/http_remote.hpp) — push from one home, pull into another through a real
// `drover serve`, byte-equal checkout; refused tokens, hash mismatches and path traversal;
// and `drover snapshot gc` keeping the blobs that recorded runs reference.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>

#include <cstring>

#include "common/blob_store.hpp"
#include "common/sha256.hpp"
#include "tests/integration/harness.hpp"

namespace drover::testing {
namespace {

struct Http {
  long status = 0;
  std::string body;
  std::vector<std::string> headers;
  std::string header(const std::string& name) const {
    for (auto& h : headers)
      if (h.size() > name.size() && strncasecmp(h.c_str(), name.c_str(), name.size()) == 0 &&
          h[name.size()] == ':') {
        std::string v = h.substr(name.size() + 1);
        while (!v.empty() && v.front() == ' ') v.erase(v.begin());
        while (!v.empty() && (v.back() == '\r' || v.back() == '\n')) v.pop_back();
        return v;
      }
    return {};
  }
};

size_t collect(char* p, size_t sz, size_t n, void* user) {
  static_cast<std::string*>(user)->append(p, sz * n);
  return sz * n;
}
size_t collect_header(char* p, size_t sz, size_t n, void* user) {
  static_cast<std::vector<std::string>*>(user)->emplace_back(p, sz * n);
  return sz * n;
}

// One raw request; the target is sent as written (no dot-segment squashing).
Http request(const std::string& url, const std::string& method, const std::string& target,
             const std::string& token, const std::string* body = nullptr,
             const char* expect = "Expect:") {
  Http r;
  CURL* c = curl_easy_init();
  std::string full = url + target;
  curl_slist* h = nullptr;
  std::string auth = "Authorization: Bearer " + token;
  if (!token.empty()) h = curl_slist_append(h, auth.c_str());
  h = curl_slist_append(h, expect);
  curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 50000L);  // rely on the server's 100
  curl_easy_setopt(c, CURLOPT_URL, full.c_str());
  curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
  if (method == "HEAD")
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  else
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r;
}

std::string error_message(const Http& r) {
  json j = json::parse(r.body, nullptr, false);
  if (j.is_discarded() || !j.contains("error")) return "<no error document: " + r.body + ">";
  return j["error"].value("message", "");
}

class BlobApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(tmp / "dags");
    ASSERT_TRUE(daemon.start()) << daemon.log();
    url = daemon.url();
    token = trim(daemon.token());
    ASSERT_FALSE(token.empty());
  }

  ProcResult snap(std::vector<std::string> args, const fs::path& home,
                  std::map<std::string, std::string> env = {}) {
    args.insert(args.begin(), "snapshot");
    args.push_back("--home");
    args.push_back(home.string());
    return drover(args, env);
  }
  Http call(const std::string& method, const std::string& target,
            const std::string* body = nullptr) {
    return request(url, method, target, token, body);
  }

  TempDir tmp;
  Daemon daemon{tmp / "server", tmp / "dags"};
  std::string url, token;
};

TEST_F(BlobApiTest, PushThenPullThroughTheDaemonChecksOutTheSameBytes) {
  fs::path data = tmp / "data";
  write_text(data / "a.csv", "id,x\n1,2\n");
  write_text(data / "nested/deep/b.bin", std::string("\0\1\2\xff binary", 11));
  write_text(data / "name with spaces.txt", std::string(300000, 'z'));
  fs::path alice = tmp / "alice", bob = tmp / "bob", carol = tmp / "carol";
  auto add = snap({"add", data.string(), "--dataset", "events", "--tag", "v1"}, alice);
  ASSERT_EQ(add.code, 0) << add.err;
  std::string version = trim(add.out);

  auto push =
      snap({"push", "events@v1", "--remote", url, "--json"}, alice, {{"DROVER_TOKEN", token}});
  ASSERT_EQ(push.code, 0) << push.err;
  json pushed = json::parse(push.out);
  EXPECT_EQ(pushed["version"], version);
  EXPECT_EQ(pushed["blobs_sent"], 3);
  EXPECT_EQ(trim(read_all(daemon.home() / "datasets/events/tags/v1")), version);
  EXPECT_EQ(trim(read_all(daemon.home() / "datasets/events/latest")), version);

  // Only missing blobs are sent: a second push sends none.
  auto again =
      snap({"push", "events@v1", "--remote", url, "--json"}, alice, {{"DROVER_TOKEN", token}});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(json::parse(again.out)["blobs_sent"], 0);
  EXPECT_EQ(json::parse(again.out)["blobs_skipped"], 3);

  fs::remove_all(alice);

  // The token may come from a file instead of the environment.
  write_text(tmp / "token", token + "\n");
  auto pull = snap({"pull", "events@v1", "--remote", url, "--token-file", (tmp / "token").string()},
                   bob, {{"DROVER_TOKEN", ""}});
  ASSERT_EQ(pull.code, 0) << pull.err;
  auto co = snap({"checkout", "events@v1", (tmp / "out").string()}, bob);
  ASSERT_EQ(co.code, 0) << co.err;
  for (auto* f : {"a.csv", "nested/deep/b.bin", "name with spaces.txt"})
    EXPECT_EQ(read_all(tmp / "out" / f), read_all(data / f)) << f;

  // NAME@latest on the remote, into a third home.
  auto latest = snap({"pull", "events@latest", "--remote", url}, carol, {{"DROVER_TOKEN", token}});
  ASSERT_EQ(latest.code, 0) << latest.err;
  auto resolved = snap({"show", "events@latest", "--json"}, carol);
  EXPECT_EQ(resolved.code, 0) << resolved.err;
}

TEST_F(BlobApiTest, AWrongOrMissingTokenIsRefused) {
  fs::path data = tmp / "data";
  write_text(data / "a.txt", "hello\n");
  fs::path alice = tmp / "alice";
  ASSERT_EQ(snap({"add", data.string(), "--dataset", "d"}, alice).code, 0);
  auto push = snap({"push", "d@latest", "--remote", url}, alice, {{"DROVER_TOKEN", "wrong"}});
  EXPECT_EQ(push.code, 1);
  EXPECT_NE(push.err.find(": HTTP 401: missing or invalid bearer token"), std::string::npos)
      << push.err;
  auto none = snap({"push", "d@latest", "--remote", url}, alice, {{"DROVER_TOKEN", ""}});
  EXPECT_EQ(none.code, 1);
  EXPECT_EQ(none.err, "drover snapshot: no token for remote " + url +
                          ": set DROVER_TOKEN or pass --token-file\n");

  std::string sha = sha256_hex("x");
  std::string body = "x";
  EXPECT_EQ(request(url, "HEAD", "/api/v1/blobs/" + sha, "").status, 401);
  EXPECT_EQ(request(url, "PUT", "/api/v1/blobs/" + sha, "bad", &body).status, 401);
  EXPECT_EQ(request(url, "GET", "/api/v1/datasets/d/refs/latest", "bad").status, 401);
  EXPECT_FALSE(fs::exists(daemon.home() / "blobs" / sha.substr(0, 2) / sha.substr(2)));
}

TEST_F(BlobApiTest, BlobsAreStoredOnceAndServedBack) {
  std::string body = "some bytes\n", sha = sha256_hex(body);
  EXPECT_EQ(call("HEAD", "/api/v1/blobs/" + sha).status, 404);
  EXPECT_EQ(call("GET", "/api/v1/blobs/" + sha).status, 404);
  EXPECT_EQ(error_message(call("GET", "/api/v1/blobs/" + sha)), "no blob " + sha);
  Http put = call("PUT", "/api/v1/blobs/" + sha, &body);
  EXPECT_EQ(put.status, 201) << put.body;
  EXPECT_EQ(call("PUT", "/api/v1/blobs/" + sha, &body).status, 200);
  Http head = call("HEAD", "/api/v1/blobs/" + sha);
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("Content-Length"), std::to_string(body.size()));
  Http get = call("GET", "/api/v1/blobs/" + sha);
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, body);
  EXPECT_EQ(get.header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(read_all(daemon.home() / "blobs" / sha.substr(0, 2) / sha.substr(2)), body);
  EXPECT_EQ(call("POST", "/api/v1/blobs/" + sha, &body).status, 405);

  // Larger than the 1 MiB limit of the other routes.
  std::string big(3u << 20, 'q');
  std::string big_sha = sha256_hex(big);
  EXPECT_EQ(call("PUT", "/api/v1/blobs/" + big_sha, &big).status, 201);
  EXPECT_TRUE(call("GET", "/api/v1/blobs/" + big_sha).body == big);
  // A client that waits for "100 Continue" gets it (this one would otherwise wait 50 s).
  std::string cont(2u << 20, 'c');
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(
      request(url, "PUT", "/api/v1/blobs/" + sha256_hex(cont), token, &cont, "Expect: 100-continue")
          .status,
      201);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(25));
  std::string trigger_body = "{\"params\": {}, \"pad\": \"" + big + "\"}";
  EXPECT_EQ(call("POST", "/api/v1/dags/x/trigger", &trigger_body).status, 413);
}

// Sends `head` (a request's line and headers, no body) on a new connection and returns what
// the server answers within `deadline` (empty when nothing came).
std::string answer_to_headers(int port, const std::string& head, std::chrono::seconds deadline) {
  int fd = connect_loopback(port);
  std::string got;
  if (fd >= 0 &&
      ::send(fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size())) {
    auto until = std::chrono::steady_clock::now() + deadline;
    while (got.find("\r\n\r\n") == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      pollfd p{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) break;
      char buf[4096];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
  }
  if (fd >= 0) ::close(fd);
  return got;
}

TEST_F(BlobApiTest, ATokenlessRequestIsRefusedFromItsHeadersBeforeItsBodyIsRead) {
  // The body is announced and never sent: only a server that answers from the headers
  // answers at all before its 30 s read timeout.
  for (std::string route : {"/api/v1/dags/x/trigger", "/api/v1/runs", "/api/v1/nothing-here"}) {
    SCOPED_TRACE(route);
    std::string got = answer_to_headers(
        daemon.port(), "POST " + route + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
        std::chrono::seconds(10));
    EXPECT_EQ(got.rfind("HTTP/1.1 401", 0), 0u) << got;
  }
  // The open health check takes no body: nobody without the token can make the daemon
  // hold one.
  std::string health = answer_to_headers(
      daemon.port(), "POST /api/v1/health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
      std::chrono::seconds(10));
  EXPECT_EQ(health.rfind("HTTP/1.1 413", 0), 0u) << health;
  // With the token, a body over max_body on any method but a blob PUT is 413 from its
  // Content-Length (a POST to a blob was buffered up to the 64 GiB blob limit, then 405).
  std::string got = answer_to_headers(daemon.port(),
                                      "POST /api/v1/blobs/" + std::string(64, 'a') +
                                          " HTTP/1.1\r\nHost: x\r\nAuthorization: "
                                          "Bearer " +
                                          token + "\r\nContent-Length: 3000000\r\n\r\n",
                                      std::chrono::seconds(10));
  EXPECT_EQ(got.rfind("HTTP/1.1 413", 0), 0u) << got;
}

TEST_F(BlobApiTest, ATriggerWithANulInAParamIsRefusedWith422AndCreatesNoRun) {
  write_text(tmp / "dags/echo.yaml",
             "dag: echo\nparams:\n  msg: {type: string, default: hi}\n"
             "tasks:\n  say: {run: [echo, '{{ params.msg }}']}\n");
  ASSERT_TRUE(wait_until([&] { return call("GET", "/api/v1/dags/echo").status == 200; }));
  std::string body = R"({"params": {"msg": "ok\u0000; rm -rf /"}})";
  Http r = call("POST", "/api/v1/dags/echo/trigger", &body);
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(error_message(r),
            "param 'msg': value holds the control character U+0000 at offset 2 (only tab and "
            "newline are allowed)");
  json runs = json::parse(call("GET", "/api/v1/runs").body, nullptr, false);
  json list = runs.is_array() ? runs : runs["runs"];
  EXPECT_EQ(list.size(), 0u) << runs.dump();
}

TEST_F(BlobApiTest, AHashMismatchIsRefusedAndNothingIsStored) {
  std::string body = "abd", claimed = sha256_hex("abc");
  Http put = call("PUT", "/api/v1/blobs/" + claimed, &body);
  EXPECT_EQ(put.status, 422);
  EXPECT_EQ(error_message(put),
            "body hash " + sha256_hex("abd") + " does not match blob " + claimed);
  EXPECT_EQ(call("HEAD", "/api/v1/blobs/" + claimed).status, 404);
  // The streamed upload's temp file went with the refusal.
  EXPECT_TRUE(fs::is_empty(daemon.home() / "blobs" / "tmp"));
  EXPECT_EQ(call("HEAD", "/api/v1/blobs/" + sha256_hex("abd")).status, 404);
}

// Peak resident memory of a process (VmHWM), in KiB.
long peak_rss_kib(pid_t pid) {
  std::string status = read_all("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("VmHWM:");
  return at == std::string::npos ? -1 : std::atol(status.c_str() + at + 6);
}

TEST_F(BlobApiTest, AnUploadIsStreamedToDiskNotHeldInTheDaemonsMemory) {
  std::string big(256u << 20, '\0');  // 256 MiB that do not compress or repeat
  uint64_t x = 88172645463325252ull;
  for (size_t i = 0; i + 8 <= big.size(); i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::memcpy(&big[i], &x, 8);
  }
  std::string sha = sha256_hex(big);
  long before = peak_rss_kib(daemon.pid());
  ASSERT_GT(before, 0);
  Http put = call("PUT", "/api/v1/blobs/" + sha, &big);
  ASSERT_EQ(put.status, 201) << put.body;
  long after = peak_rss_kib(daemon.pid());
  EXPECT_LT(after - before, 64 * 1024)
      << "peak RSS grew from " << before << " to " << after << " KiB for a 256 MiB upload";
  fs::path blob = daemon.home() / "blobs" / sha.substr(0, 2) / sha.substr(2);
  EXPECT_EQ(fs::file_size(blob), big.size());
  EXPECT_EQ(sha256_file(blob)->sha256, sha);
  EXPECT_EQ(fs::status(blob).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  EXPECT_TRUE(fs::is_empty(daemon.home() / "blobs" / "tmp"));
  // The daemon answers other calls as before.
  EXPECT_EQ(call("GET", "/api/v1/dags").status, 200);
}

TEST_F(BlobApiTest, PathTraversalIsRefused) {
  write_text(daemon.home() / "secret", "do not serve");
  std::string upper(64, 'A');
  Http enc = call("GET", "/api/v1/blobs/..%2F..%2Fsecret");
  EXPECT_EQ(enc.status, 400);
  EXPECT_EQ(error_message(enc),
            "invalid blob hash '../../secret' (expected 64 lowercase hex digits)");
  EXPECT_EQ(call("GET", "/api/v1/blobs/" + upper).status, 400);
  EXPECT_EQ(call("GET", "/api/v1/blobs/../../secret").status, 404);  // not a route at all
  EXPECT_EQ(call("GET", "/api/v1/blobs/..%2F" + std::string(61, 'a')).status, 400);

  Http name = call("GET", "/api/v1/datasets/..%2F..%2Fsecret/refs/latest");
  EXPECT_EQ(name.status, 400);
  EXPECT_EQ(error_message(name), "invalid dataset name '../../secret' (allowed: [a-z0-9_.-]+)");
  std::string ref = "{\"version\": \"" + std::string(64, 'a') + "\"}";
  Http tag = call("PUT", "/api/v1/datasets/d/refs/..%2F..%2F..%2Fsecret", &ref);
  EXPECT_EQ(tag.status, 400);
  EXPECT_EQ(error_message(tag), "invalid tag '../../../secret' (allowed: [A-Za-z0-9_.-]+)");
  EXPECT_EQ(call("PUT", "/api/v1/datasets/..%2Fx/refs/v1", &ref).status, 400);
  EXPECT_EQ(read_all(daemon.home() / "secret"), "do not serve");

  // A ref may only name a version whose manifest the server holds.
  Http missing = call("PUT", "/api/v1/datasets/d/refs/v1", &ref);
  EXPECT_EQ(missing.status, 422);
  EXPECT_EQ(error_message(missing), "version " + std::string(64, 'a') +
                                        " is not on this server: push its blobs and manifest "
                                        "first");
  std::string junk = "{\"version\": 7}";
  EXPECT_EQ(call("PUT", "/api/v1/datasets/d/refs/v1", &junk).status, 422);
  EXPECT_EQ(call("GET", "/api/v1/datasets/d/refs/v1").status, 404);
  EXPECT_FALSE(fs::exists(daemon.home() / "datasets" / "d"));
}

TEST_F(BlobApiTest, ARefNeedsEveryBlobOfItsVersionAndIsRefusedDuringAGc) {
  fs::path data = tmp / "data", alice = tmp / "alice";
  write_text(data / "a.csv", "id\n1\n");
  write_text(data / "b.csv", "x\n");
  auto add = snap({"add", data.string(), "--dataset", "events"}, alice);
  ASSERT_EQ(add.code, 0) << add.err;
  std::string v = trim(add.out);
  auto blob = [&](const std::string& sha) {
    return read_all(alice / "blobs" / sha.substr(0, 2) / sha.substr(2));
  };
  std::string manifest = blob(v);
  ASSERT_EQ(call("PUT", "/api/v1/blobs/" + v, &manifest).status, 201);
  std::string ref = "{\"version\": \"" + v + "\"}";
  // The manifest alone is not enough: its files' blobs must be there too.
  Http incomplete = call("PUT", "/api/v1/datasets/events/refs/v1", &ref);
  EXPECT_EQ(incomplete.status, 422);
  EXPECT_EQ(error_message(incomplete),
            "version " + v + " is incomplete on this server: 2 file(s) missing, first a.csv (" +
                sha256_hex("id\n1\n") + "); push its blobs first");
  for (std::string content : {"id\n1\n", "x\n"}) {
    std::string sha = sha256_hex(content);
    ASSERT_EQ(call("PUT", "/api/v1/blobs/" + sha, &content).status, 201);
  }
  // A gc on the server holds the store: the ref waits for it (503, retry), never half-done.
  int fd = ::open((daemon.home() / "blobs.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX), 0);
  Http busy = call("PUT", "/api/v1/datasets/events/refs/v1", &ref);
  EXPECT_EQ(busy.status, 503);
  EXPECT_EQ(error_message(busy), "a snapshot gc is running on this server; retry when it ends");
  EXPECT_EQ(call("GET", "/api/v1/datasets/events/refs/v1").status, 404);
  ::close(fd);
  Http ok = call("PUT", "/api/v1/datasets/events/refs/v1", &ref);
  EXPECT_EQ(ok.status, 200) << ok.body;
  Http got = call("GET", "/api/v1/datasets/events/refs/v1");
  EXPECT_EQ(json::parse(got.body)["version"], v);
}

class SnapshotGcTest : public ::testing::Test {
 protected:
  TempDir tmp;
  fs::path home() const { return tmp / "home"; }
  fs::path blob(const std::string& sha) const {
    return home() / "blobs" / sha.substr(0, 2) / sha.substr(2);
  }
};

TEST_F(SnapshotGcTest, BlobsThatRunsReferenceSurviveAndOthersAreDeleted) {
  write_text(tmp / "data" / "rows.csv", "a,b\n1,2\n");
  write_text(tmp / "flow.yaml", R"(dag: gc_flow
tasks:
  snap:
    type: snapshot
    with: {path: data, dataset: runsonly}
  make:
    run: "mkdir -p out && echo run-output-7f3a > out/result.txt"
    outputs: [out]
)");
  auto run = drover({"run", (tmp / "flow.yaml").string(), "--home", home().string(),
                     "--project-dir", tmp.path().string(), "--json"});
  ASSERT_EQ(run.code, 0) << run.out << run.err;
  std::string output_sha = sha256_hex("run-output-7f3a\n");
  ASSERT_TRUE(fs::exists(blob(output_sha)));
  json rec = json::parse(run.out);
  std::string version;
  for (auto& t : rec["tasks"])
    if (t["task"] == "snap") version = t["values"].value("version", "");
  ASSERT_TRUE(BlobStore::valid_hash(version)) << run.out;
  // The version is referenced by the run only: forget the dataset's refs.
  fs::remove_all(home() / "datasets");

  BlobStore store(home() / "blobs");
  auto orphan = store.put_bytes("nobody references me");
  ASSERT_TRUE(orphan.ok());

  auto gc = drover({"snapshot", "gc", "--grace", "0", "--home", home().string()});
  ASSERT_EQ(gc.code, 0) << gc.err;
  EXPECT_EQ(gc.out.rfind("deleted 1 blobs", 0), 0u) << gc.out;
  EXPECT_FALSE(fs::exists(blob(orphan->sha256)));
  EXPECT_TRUE(fs::exists(blob(output_sha)));
  EXPECT_TRUE(fs::exists(blob(version)));
  EXPECT_TRUE(fs::exists(blob(sha256_hex("a,b\n1,2\n"))));
}

}  // namespace
}  // namespace drover::testing
