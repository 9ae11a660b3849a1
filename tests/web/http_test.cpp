// The REST API over real HTTP on 127.0.0.1 port 0: ApiServer in front of a FakeService,
// spoken to with the CLI's own client (web/client.hpp).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "common/fs.hpp"
#include "scheduler/service.hpp"
#include "web/api_server.hpp"
#include "web/auth.hpp"
#include "web/client.hpp"

namespace drover {
namespace {

namespace fs = std::filesystem;

constexpr const char* kToken = "s3cret-token";

// Answers from canned data and records what it was asked. Called on the server's io thread,
// read by the test thread: guarded by a mutex.
class FakeService : public Service {
 public:
  json list_dags() override {
    std::lock_guard lock(mu);
    return {{"dags", json::array({{{"dag", "etl"}, {"schedule", "@daily"}, {"paused", false}}})},
            {"errors", json::array()}};
  }
  Result<json> get_dag(const std::string& dag) override {
    if (dag != "etl") return make_error("unknown DAG '" + dag + "'", Errc::NotFound);
    return json{{"dag", "etl"}, {"file_hash", "abc"}, {"runs", json::array()}};
  }
  Result<std::string> trigger(const std::string& dag, const json& params,
                              const std::string& user) override {
    std::lock_guard lock(mu);
    trigger_dag = dag;
    trigger_params = params;
    trigger_user = user;
    if (dag != "etl") return make_error("unknown DAG '" + dag + "'", Errc::NotFound);
    if (params["params"].contains("n") && !params["params"]["n"].is_number_integer())
      return make_error("param 'n': expected an integer, got \"x\"", Errc::Invalid);
    return std::string("etl-1");
  }
  Result<json> list_runs(const RunFilter& filter) override {
    std::lock_guard lock(mu);
    last_filter = filter;
    return json{{"runs", json::array({{{"id", "etl-1"}, {"state", "running"}}})}};
  }
  Result<json> get_run(const std::string& run_id) override {
    if (run_id != "etl-1") return make_error("no run '" + run_id + "'", Errc::NotFound);
    return json{{"id", "etl-1"}, {"state", "success"}};
  }
  Status cancel(const std::string& run_id, const std::string& user) override {
    std::lock_guard lock(mu);
    cancel_user = user;
    if (run_id == "etl-1") return make_error("run 'etl-1' already finished", Errc::Conflict);
    return {};
  }
  // The try's log is a file under log_dir, read as LocalExecutor reads it.
  Result<LogChunk> read_log(const std::string& run_id, const std::string& task,
                            std::optional<int> try_number, unsigned long long offset,
                            size_t max) override {
    std::lock_guard lock(mu);
    ++log_calls;
    log_try = try_number;
    if (task != "train" && task != "missing")
      return make_error("no task '" + task + "'", Errc::NotFound);
    auto chunk = read_log_file(
        (log_dir / (task == "missing" ? "nothing.log" : "train.log")).string(), offset, max);
    if (!chunk && chunk.error().code == Errc::NotFound)
      return make_error("no log for task '" + task + "' of run '" + run_id + "'", Errc::NotFound);
    return chunk;
  }
  // A registry of one model, clicks, with one version, named by the alias production.
  Result<json> list_models() override {
    std::lock_guard lock(mu);
    ++model_reads;
    return json{{"models", json::array({{{"name", "clicks"}, {"latest", 1}}})}};
  }
  Result<json> get_model(const models::ModelRef& ref) override {
    std::lock_guard lock(mu);
    ++model_reads;
    if (ref.name != "clicks")
      return make_error("no model '" + ref.name + "' in the registry", Errc::NotFound);
    if (ref.version && *ref.version != 1)
      return make_error("no version " + std::to_string(*ref.version) + " of model 'clicks'",
                        Errc::NotFound);
    if (!ref.alias.empty() && ref.alias != "production")
      return make_error("model 'clicks' has no alias '" + ref.alias + "'", Errc::NotFound);
    return json{{"name", "clicks"}, {"version", 1}, {"asked", ref.text()}};
  }
  Result<json> model_history(const std::string& name) override {
    std::lock_guard lock(mu);
    ++model_reads;
    if (name != "clicks")
      return make_error("no model '" + name + "' in the registry", Errc::NotFound);
    return json{{"name", "clicks"}, {"events", json::array()}};
  }
  Result<json> set_model_alias(const AliasMove& m) override {
    std::lock_guard lock(mu);
    moves.push_back(m);
    if (m.name != "clicks")
      return make_error("no model '" + m.name + "' in the registry", Errc::NotFound);
    if (m.version == 3 && !m.force)
      return make_error("clicks/3 was never validated", Errc::Conflict);
    return json{{"alias", m.alias},
                {"to", m.version},
                {"by", m.by},
                {"reason", m.reason},
                {"forced", m.force}};
  }

  Result<json> set_model_tags(const TagChange& c) override {
    std::lock_guard lock(mu);
    tag_changes.push_back(c);
    if (c.ref.name != "clicks")
      return make_error("no model '" + c.ref.name + "' in the registry", Errc::NotFound);
    if (c.tags[0].second && c.tags[0].second->size() > 1024)
      return make_error("tag 'team': value is 2000 bytes, more than 1024", Errc::Invalid);
    return json{{"ref", c.ref.text()}, {"tags", json::object()}, {"events", json::array()}};
  }

  std::mutex mu;
  int model_reads = 0;
  std::vector<AliasMove> moves;
  std::vector<TagChange> tag_changes;
  std::string trigger_dag, trigger_user, cancel_user;
  json trigger_params;
  RunFilter last_filter;
  int log_calls = 0;
  std::optional<int> log_try;
  fs::path log_dir;
};

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("drover-http-" + random_hex(6));
    fs::create_directories(dir_);
    service_.log_dir = dir_;
    ApiOptions options;
    options.token_sha256 = token_hash(kToken);
    if (with_home_) options.home = (dir_ / "home").string();
    server_ = std::make_unique<ApiServer>(io_, service_, options, reads_);
    auto url = server_->listen("127.0.0.1:0");
    ASSERT_TRUE(url.ok()) << url.message();
    url_ = *url;
    thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    boost::asio::post(io_, [this] { server_->stop(); });
    if (thread_.joinable()) thread_.join();
    server_.reset();
    fs::remove_all(dir_);
  }

  HttpResponse get(const std::string& target, const std::string& token = kToken) {
    auto r = request(ClientConfig{url_, token, {}}, "GET", target);
    EXPECT_TRUE(r.ok()) << r.message();
    return r.ok() ? *r : HttpResponse{};
  }
  HttpResponse post(const std::string& target, const std::string& body,
                    const std::string& token = kToken) {
    auto r = request(ClientConfig{url_, token, {}}, "POST", target, body);
    EXPECT_TRUE(r.ok()) << r.message();
    return r.ok() ? *r : HttpResponse{};
  }
  HttpResponse put(const std::string& target, const std::string& body,
                   const std::string& token = kToken) {
    auto r = request(ClientConfig{url_, token, {}}, "PUT", target, body);
    EXPECT_TRUE(r.ok()) << r.message();
    return r.ok() ? *r : HttpResponse{};
  }
  static json error_of(const HttpResponse& r) {
    return json::parse(r.body, nullptr, false).value("error", json());
  }

  bool with_home_ = false;     // serve the blob and dataset-ref routes from dir_/home
  RunReads* reads_ = nullptr;  // the server's reader of runs (none: the service answers)
  boost::asio::io_context io_;
  FakeService service_;
  std::unique_ptr<ApiServer> server_;
  std::string url_;
  std::thread thread_;
  fs::path dir_;
};

TEST_F(HttpTest, ListenReportsTheBoundLoopbackUrl) {
  EXPECT_EQ(url_.rfind("http://127.0.0.1:", 0), 0u) << url_;
  EXPECT_NE(url_, "http://127.0.0.1:0");
}

TEST_F(HttpTest, HealthIsOpenWithoutAToken) {
  auto r = get("/api/v1/health", "");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body), json({{"status", "ok"}}));
}

TEST_F(HttpTest, CallWithoutATokenIsUnauthorized) {
  auto r = get("/api/v1/dags", "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(error_of(r),
            json({{"code", "unauthorized"}, {"message", "missing or invalid bearer token"}}));
  EXPECT_EQ(r.headers["www-authenticate"], "Bearer realm=\"drover\"");
}

TEST_F(HttpTest, CallWithAWrongTokenIsUnauthorized) {
  EXPECT_EQ(get("/api/v1/dags", "s3cret-tokeN").status, 401);
  EXPECT_EQ(get("/api/v1/runs/etl-1", "x").status, 401);
}

TEST_F(HttpTest, UnknownRouteIsNotFoundOnlyAfterAuthentication) {
  EXPECT_EQ(get("/api/v1/nope", "").status, 401);
  auto r = get("/api/v1/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r),
            json({{"code", "not_found"}, {"message", "no route for GET /api/v1/nope"}}));
  EXPECT_EQ(get("/").status, 404);
}

TEST_F(HttpTest, WrongMethodIsNotAllowedAndNamesTheRightOne) {
  auto r = post("/api/v1/dags", "");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"], "GET");
  EXPECT_EQ(error_of(r)["code"], "method_not_allowed");
}

TEST_F(HttpTest, ListDagsReturnsTheServiceJson) {
  auto r = get("/api/v1/dags");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_EQ(json::parse(r.body), service_.list_dags());
}

TEST_F(HttpTest, UnknownDagIsNotFoundWithTheServiceMessage) {
  auto r = get("/api/v1/dags/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r), json({{"code", "not_found"}, {"message", "unknown DAG 'nope'"}}));
}

TEST_F(HttpTest, TriggerCreatesARunAndPassesParamsAsTheApiUser) {
  auto r = post("/api/v1/dags/etl/trigger", R"({"params": {"n": 7}, "cli_params": {"lr": "0.1"}})");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(json::parse(r.body), json({{"run_id", "etl-1"}}));
  EXPECT_EQ(r.headers["location"], "/api/v1/runs/etl-1");
  std::lock_guard lock(service_.mu);
  EXPECT_EQ(service_.trigger_dag, "etl");
  EXPECT_EQ(service_.trigger_user, "api");
  EXPECT_EQ(service_.trigger_params,
            json({{"params", {{"n", 7}}}, {"cli_params", {{"lr", "0.1"}}}}));
}

TEST_F(HttpTest, TriggerWithAnEmptyBodyPassesEmptyParams) {
  EXPECT_EQ(post("/api/v1/dags/etl/trigger", "").status, 201);
  std::lock_guard lock(service_.mu);
  EXPECT_EQ(service_.trigger_params,
            json({{"params", json::object()}, {"cli_params", json::object()}}));
}

TEST_F(HttpTest, InvalidParamsFromTheServiceAreUnprocessable) {
  auto r = post("/api/v1/dags/etl/trigger", R"({"params": {"n": "x"}})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(error_of(r),
            json({{"code", "invalid"}, {"message", "param 'n': expected an integer, got \"x\""}}));
}

TEST_F(HttpTest, MalformedJsonIsABadRequest) {
  auto r = post("/api/v1/dags/etl/trigger", R"({"params": )");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r)["code"], "bad_request");
  std::lock_guard lock(service_.mu);
  EXPECT_EQ(service_.trigger_dag, "");
}

TEST_F(HttpTest, NonUtf8BodyIsABadRequest) {
  auto r = post("/api/v1/dags/etl/trigger", "{\"params\": {\"s\": \"\xff\xfe\"}}");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r),
            json({{"code", "bad_request"}, {"message", "request body is not valid UTF-8"}}));
}

TEST_F(HttpTest, DeeplyNestedBodyIsABadRequest) {
  auto r = post("/api/v1/dags/etl/trigger", std::string(100000, '[') + std::string(100000, ']'));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_of(r)["message"], "request body is nested too deeply");
}

TEST_F(HttpTest, WrongBodyShapesAreUnprocessable) {
  EXPECT_EQ(error_of(post("/api/v1/dags/etl/trigger", "[1]"))["message"],
            "request body must be a JSON object");
  EXPECT_EQ(error_of(post("/api/v1/dags/etl/trigger", R"({"parms": {}})"))["message"],
            "unknown field 'parms' (expected params, cli_params)");
  EXPECT_EQ(error_of(post("/api/v1/dags/etl/trigger", R"({"params": 3})"))["message"],
            "'params' must be an object");
  EXPECT_EQ(error_of(post("/api/v1/dags/etl/trigger", R"({"cli_params": {"n": 3}})"))["message"],
            "'cli_params.n' must be a string");
}

TEST_F(HttpTest, BodyOverTheLimitIsRefusedWith413) {
  auto r = post("/api/v1/dags/etl/trigger", std::string((1 << 20) + 1, ' '));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(error_of(r),
            json({{"code", "too_large"}, {"message", "request body over 1048576 bytes"}}));
  EXPECT_EQ(post("/api/v1/dags/etl/trigger", std::string(1 << 20, ' ')).status, 201);
}

TEST_F(HttpTest, ListRunsPassesTheFilter) {
  auto r = get("/api/v1/runs?dag=etl&state=running&limit=5");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body)["runs"][0]["id"], "etl-1");
  std::lock_guard lock(service_.mu);
  EXPECT_EQ(service_.last_filter.dag, "etl");
  EXPECT_EQ(service_.last_filter.state, RunState::Running);
  EXPECT_EQ(service_.last_filter.limit, 5);
}

TEST_F(HttpTest, ListRunsRefusesABadFilter) {
  EXPECT_EQ(error_of(get("/api/v1/runs?state=done"))["message"],
            "unknown state 'done' (one of queued, running, success, failed, cancelled)");
  EXPECT_EQ(error_of(get("/api/v1/runs?limit=0"))["message"],
            "limit must be an integer from 1 to 1000");
  EXPECT_EQ(get("/api/v1/runs?limit=abc").status, 422);
}

TEST_F(HttpTest, ShowRunAndCancelMapServiceErrors) {
  EXPECT_EQ(json::parse(get("/api/v1/runs/etl-1").body)["state"], "success");
  EXPECT_EQ(get("/api/v1/runs/etl-9").status, 404);
  auto r = post("/api/v1/runs/etl-1/cancel", "");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(error_of(r), json({{"code", "conflict"}, {"message", "run 'etl-1' already finished"}}));
  auto ok = post("/api/v1/runs/etl-2/cancel", "");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(json::parse(ok.body), json({{"run_id", "etl-2"}}));
  std::lock_guard lock(service_.mu);
  EXPECT_EQ(service_.cancel_user, "api");
}

// Each model route asks the registry for the reference its path names: NAME (the latest),
// NAME/V, NAME@ALIAS; its errors are the registry's, mapped as every service error is.
TEST_F(HttpTest, ModelRoutesAskForTheReferenceTheirPathNames) {
  EXPECT_EQ(json::parse(get("/api/v1/models").body)["models"][0]["name"], "clicks");
  EXPECT_EQ(json::parse(get("/api/v1/models/clicks").body)["asked"], "clicks");
  EXPECT_EQ(json::parse(get("/api/v1/models/clicks/versions/1").body)["asked"], "clicks/1");
  EXPECT_EQ(json::parse(get("/api/v1/models/clicks/aliases/production").body)["asked"],
            "clicks@production");
  EXPECT_EQ(json::parse(get("/api/v1/models/clicks/history").body)["events"], json::array());
  auto version = get("/api/v1/models/clicks/versions/7");
  EXPECT_EQ(version.status, 404);
  EXPECT_EQ(error_of(version),
            json({{"code", "not_found"}, {"message", "no version 7 of model 'clicks'"}}));
  EXPECT_EQ(error_of(get("/api/v1/models/clicks/aliases/canary"))["message"],
            "model 'clicks' has no alias 'canary'");
  EXPECT_EQ(error_of(get("/api/v1/models/nope/history"))["message"],
            "no model 'nope' in the registry");
}

TEST_F(HttpTest, ModelRoutesRefuseABadNameVersionOrAliasBeforeAskingTheRegistry) {
  auto name = get("/api/v1/models/Clicks");
  EXPECT_EQ(name.status, 400);
  EXPECT_EQ(error_of(name), json({{"code", "bad_request"},
                                  {"message",
                                   "invalid model name 'Clicks' (allowed: "
                                   "[a-z0-9][a-z0-9_.-]*)"}}));
  EXPECT_EQ(error_of(get("/api/v1/models/clicks/versions/0"))["message"],
            "invalid version '0' (a positive integer)");
  EXPECT_EQ(get("/api/v1/models/clicks/versions/1x").status, 400);
  EXPECT_EQ(get("/api/v1/models/clicks/versions/-1").status, 400);
  EXPECT_EQ(error_of(get("/api/v1/models/clicks/aliases/Prod!"))["message"],
            "invalid alias 'Prod!' (allowed: [a-z0-9_-]+)");
  EXPECT_EQ(get("/api/v1/models/%2E%2E/history").status, 400);
  EXPECT_EQ(put("/api/v1/models/clicks/aliases/a%2Fb", R"({"version": 1})").status, 400);
  std::lock_guard lock(service_.mu);
  EXPECT_EQ(service_.model_reads, 0);
  EXPECT_TRUE(service_.moves.empty());
}

TEST_F(HttpTest, PutAliasHandsTheMoveToTheServiceAsTheApiUser) {
  auto r = put("/api/v1/models/clicks/aliases/staging",
               R"({"version": 3, "reason": "shadow test", "force": true})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json::parse(r.body), json({{"alias", "staging"},
                                       {"to", 3},
                                       {"by", "api"},
                                       {"reason", "shadow test"},
                                       {"forced", true}}));
  auto refused = put("/api/v1/models/clicks/aliases/staging", R"({"version": 3})");
  EXPECT_EQ(refused.status, 409);
  EXPECT_EQ(error_of(refused),
            json({{"code", "conflict"}, {"message", "clicks/3 was never validated"}}));
  EXPECT_EQ(put("/api/v1/models/other/aliases/staging", R"({"version": 1})").status, 404);
  std::lock_guard lock(service_.mu);
  ASSERT_EQ(service_.moves.size(), 3u);
  const AliasMove& m = service_.moves[0];
  EXPECT_EQ(m.name, "clicks");
  EXPECT_EQ(m.alias, "staging");
  EXPECT_EQ(m.version, 3);
  EXPECT_EQ(m.by, "api");
  EXPECT_EQ(m.reason, "shadow test");
  EXPECT_TRUE(m.force);
  EXPECT_FALSE(service_.moves[1].force);
  EXPECT_EQ(service_.moves[1].reason, "");
}

TEST_F(HttpTest, PutAliasRefusesABadBodyAndMovesNothing) {
  const std::string alias = "/api/v1/models/clicks/aliases/production";
  auto malformed = put(alias, "{\"version\": ");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(error_of(malformed)["code"], "bad_request");
  const std::string shape =
      "request body must be {\"version\": N, \"reason\": \"...\", \"force\": false}";
  EXPECT_EQ(error_of(put(alias, ""))["message"], shape);
  EXPECT_EQ(error_of(put(alias, "[1]"))["message"], shape);
  EXPECT_EQ(error_of(put(alias, R"({"version": "2"})"))["message"],
            "'version' must be a positive integer");
  EXPECT_EQ(put(alias, R"({"version": 0})").status, 422);
  EXPECT_EQ(put(alias, R"({"version": 1.5})").status, 422);
  EXPECT_EQ(put(alias, R"({"version": 18446744073709551615})").status, 422);
  EXPECT_EQ(error_of(put(alias, R"({"version": 1, "force": "yes"})"))["message"],
            "'force' must be true or false");
  EXPECT_EQ(error_of(put(alias, R"({"version": 1, "reason": 5})"))["message"],
            "'reason' must be a string");
  auto unknown = put(alias, R"({"version": 1, "by": "someone else"})");
  EXPECT_EQ(unknown.status, 422);
  EXPECT_EQ(error_of(unknown)["message"], "unknown field 'by' (expected version, reason, force)");
  std::lock_guard lock(service_.mu);
  EXPECT_TRUE(service_.moves.empty());
}

// PUT and DELETE on a version's tag hand one change to the Service as the API user: a value
// to set, or none (the removal); a bad key is 400 and a body of the wrong shape 422 before
// the Service is asked; the Service's refusals map as every service error does.
TEST_F(HttpTest, TagRoutesHandOneChangeToTheServiceAsTheApiUser) {
  const std::string tag = "/api/v1/models/clicks/versions/2/tags/team";
  auto set = put(tag, R"({"value": "ads"})");
  EXPECT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(json::parse(set.body)["ref"], "clicks/2");
  auto removed = request(ClientConfig{url_, kToken, {}}, "DELETE", tag);
  ASSERT_TRUE(removed.ok()) << removed.message();
  EXPECT_EQ(removed->status, 200) << removed->body;
  EXPECT_EQ(put("/api/v1/models/other/versions/1/tags/team", R"({"value": "ads"})").status, 404);
  auto big = put(tag, json({{"value", std::string(2000, 'x')}}).dump());
  EXPECT_EQ(big.status, 422);
  EXPECT_EQ(error_of(big)["message"], "tag 'team': value is 2000 bytes, more than 1024");

  const std::string shape = "request body must be {\"value\": \"...\"}";
  EXPECT_EQ(error_of(put(tag, R"({"value": 5})"))["message"], shape);
  EXPECT_EQ(error_of(put(tag, R"({"value": "a", "by": "x"})"))["message"], shape);
  EXPECT_EQ(error_of(put(tag, ""))["message"], shape);
  EXPECT_EQ(put(tag, R"({"value": )").status, 400);
  auto key = put("/api/v1/models/clicks/versions/2/tags/a%20b", R"({"value": "x"})");
  EXPECT_EQ(key.status, 400);
  EXPECT_EQ(error_of(key)["message"], "invalid tag key 'a b' (allowed: 1 to 64 of [A-Za-z0-9_.-])");
  EXPECT_EQ(put("/api/v1/models/clicks/versions/2/tags/" + std::string(65, 'k'), "{}").status, 400);
  EXPECT_EQ(put(tag, R"({"value": "ads"})", "").status, 401);

  std::lock_guard lock(service_.mu);
  ASSERT_EQ(service_.tag_changes.size(), 4u);
  const TagChange& c = service_.tag_changes[0];
  EXPECT_EQ(c.ref.text(), "clicks/2");
  EXPECT_EQ(c.by, "api");
  ASSERT_EQ(c.tags.size(), 1u);
  EXPECT_EQ(c.tags[0].first, "team");
  EXPECT_EQ(c.tags[0].second, "ads");
  EXPECT_EQ(service_.tag_changes[1].tags[0].second, std::nullopt);
}

TEST_F(HttpTest, LogsAreServedFromAnOffsetWithTheFileSize) {
  ASSERT_TRUE(write_file_atomic(dir_ / "train.log", "hello world\n").ok());
  auto all = get("/api/v1/runs/etl-1/tasks/train/logs");
  EXPECT_EQ(all.status, 200);
  EXPECT_EQ(all.body, "hello world\n");
  EXPECT_EQ(all.headers["content-type"], "text/plain");
  auto tail = get("/api/v1/runs/etl-1/tasks/train/logs?try=2&offset=6");
  EXPECT_EQ(tail.body, "world\n");
  EXPECT_EQ(tail.headers["x-drover-log-size"], "12");
  auto past = get("/api/v1/runs/etl-1/tasks/train/logs?offset=99");
  EXPECT_EQ(past.status, 200);
  EXPECT_EQ(past.body, "");
  std::lock_guard lock(service_.mu);
  EXPECT_EQ(service_.log_try, std::nullopt);
}

TEST_F(HttpTest, LogsOfATryWithoutAFileAreNotFound) {
  auto r = get("/api/v1/runs/etl-1/tasks/missing/logs");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r)["message"], "no log for task 'missing' of run 'etl-1'");
  EXPECT_EQ(get("/api/v1/runs/etl-1/tasks/train/logs?try=0").status, 422);
}

TEST_F(HttpTest, LogsRefusePathTraversal) {
  auto dots = get("/api/v1/runs/%2E%2E/tasks/train/logs");
  EXPECT_EQ(dots.status, 400);
  EXPECT_EQ(error_of(dots)["message"],
            "invalid run id '..' (allowed: letters, digits, '_', '.', '-')");
  EXPECT_EQ(get("/api/v1/runs/etl-1/tasks/..%2F..%2Fetc%2Fpasswd/logs").status, 400);
  EXPECT_EQ(get("/api/v1/runs/etl-1/tasks/a%00b/logs").status, 400);
  EXPECT_EQ(get("/api/v1/runs/etl-1/tasks/../../logs").status, 404);
  std::lock_guard lock(service_.mu);
  EXPECT_EQ(service_.log_calls, 0);
}

TEST_F(HttpTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  HttpClient client(ClientConfig{url_, kToken, {}});
  for (int i = 0; i < 5; ++i) {
    auto r = client.call("GET", "/api/v1/runs/etl-1");
    ASSERT_TRUE(r.ok()) << r.message();
  }
  auto trig = client.call("POST", "/api/v1/dags/etl/trigger", "{}");
  ASSERT_TRUE(trig.ok()) << trig.message();
  EXPECT_EQ((*trig)["run_id"], "etl-1");
  EXPECT_EQ(client.connections_opened(), 1);
}

TEST_F(HttpTest, ClientCallTurnsApiErrorsIntoMessages) {
  HttpClient client(ClientConfig{url_, kToken, {}});
  auto r = client.call("GET", "/api/v1/dags/nope");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "unknown DAG 'nope'");
  EXPECT_EQ(r.error().code, Errc::NotFound);
}

TEST_F(HttpTest, ClientReportsAnUnreachableServer) {
  std::promise<void> stopped;
  boost::asio::post(io_, [&] {
    server_->stop();
    stopped.set_value();
  });
  stopped.get_future().wait();
  auto r = request(ClientConfig{url_, kToken, {}}, "GET", "/api/v1/health");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "cannot reach the drover server at " + url_ + ": Connection refused");
}

// --- auth and client discovery, no server needed

// A reader of runs that holds each listing until the test lets it go, and notes the thread
// it ran on.
class HeldReads : public RunReads {
 public:
  Result<json> list_runs(const RunFilter&) override {
    std::unique_lock lock(mu);
    ++entered;
    cv.notify_all();
    cv.wait(lock, [&] { return released; });
    thread = std::this_thread::get_id();
    return json{{"runs", json::array({{{"id", "from-reader"}}})}};
  }
  Result<json> get_run(const std::string& run_id) override {
    std::lock_guard lock(mu);
    thread = std::this_thread::get_id();
    return json{{"id", run_id}, {"read_by", "reader"}};
  }
  Result<json> list_models() override { return read_by_reader(); }
  Result<json> get_model(const models::ModelRef&) override { return read_by_reader(); }
  Result<json> model_history(const std::string&) override { return read_by_reader(); }
  json read_by_reader() {
    std::lock_guard lock(mu);
    thread = std::this_thread::get_id();
    return json{{"read_by", "reader"}};
  }
  bool wait_entered(std::chrono::seconds deadline) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, deadline, [&] { return entered > 0; });
  }
  void release() {
    std::lock_guard lock(mu);
    released = true;
    cv.notify_all();
  }

  std::mutex mu;
  std::condition_variable cv;
  int entered = 0;
  bool released = false;
  std::thread::id thread;
};

class HttpReadThreadTest : public HttpTest {
 protected:
  void SetUp() override {
    reads_ = &held_;
    HttpTest::SetUp();
  }
  void TearDown() override {
    held_.release();
    HttpTest::TearDown();
  }
  HeldReads held_;
};

// A listing is read on the server's read thread: while one is held there, the loop (the
// scheduler's, in the daemon) answers other calls, and neither listings nor run records reach
// the service.
TEST_F(HttpReadThreadTest, AListingInProgressLeavesTheLoopFreeAndRunsOnTheReadThread) {
  auto listing = std::async(std::launch::async, [&] { return get("/api/v1/runs?limit=1"); });
  ASSERT_TRUE(held_.wait_entered(std::chrono::seconds(30)))
      << "the listing never reached the reader";
  auto dags = std::async(std::launch::async, [&] { return get("/api/v1/dags"); });
  ASSERT_EQ(dags.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "the loop did not answer while a listing was held";
  EXPECT_EQ(dags.get().status, 200);
  held_.release();
  auto runs = listing.get();
  EXPECT_EQ(runs.status, 200);
  EXPECT_EQ(json::parse(runs.body)["runs"][0]["id"], "from-reader");
  auto run = get("/api/v1/runs/etl-7");
  EXPECT_EQ(run.status, 200);
  EXPECT_EQ(json::parse(run.body).value("read_by", ""), "reader");
  std::lock_guard lock(held_.mu);
  EXPECT_NE(held_.thread, std::thread::id());
  EXPECT_NE(held_.thread, thread_.get_id());
  std::lock_guard service_lock(service_.mu);
  EXPECT_FALSE(service_.last_filter.limit == 1) << "the service was asked for the listing";
}

// The registry's reads are the read thread's too; an alias move (PUT on the same route as a
// read) is a write, and goes to the service on the loop.
TEST_F(HttpReadThreadTest, ModelReadsRunOnTheReadThreadAndAnAliasMoveOnTheLoop) {
  for (std::string target :
       {"/api/v1/models", "/api/v1/models/clicks", "/api/v1/models/clicks/versions/2",
        "/api/v1/models/clicks/aliases/production", "/api/v1/models/clicks/history"}) {
    auto r = get(target);
    EXPECT_EQ(r.status, 200) << target;
    EXPECT_EQ(json::parse(r.body).value("read_by", ""), "reader") << target;
  }
  auto moved = put("/api/v1/models/clicks/aliases/production", R"({"version": 1})");
  EXPECT_EQ(moved.status, 200) << moved.body;
  {
    std::lock_guard lock(held_.mu);
    EXPECT_NE(held_.thread, thread_.get_id());
  }
  std::lock_guard lock(service_.mu);
  EXPECT_EQ(service_.model_reads, 0) << "the service was asked for a registry read";
  EXPECT_EQ(service_.moves.size(), 1u);
}

class AuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    home_ = fs::temp_directory_path() / ("drover-auth-" + random_hex(6)) / "home";
  }
  void TearDown() override { fs::remove_all(home_.parent_path()); }
  fs::path home_;
};

TEST_F(AuthTest, EnsureTokenCreatesAPrivateTokenOnceAndReturnsItAfterwards) {
  auto first = ensure_token(home_);
  ASSERT_TRUE(first.ok()) << first.message();
  EXPECT_EQ(first->size(), 64u);
  struct stat st {};
  ASSERT_EQ(::stat((home_ / "token").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto second = ensure_token(home_);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, *first);
}

TEST_F(AuthTest, TokenMatchesOnlyTheExactToken) {
  std::string hash = token_hash("abc");
  EXPECT_TRUE(token_matches("abc", hash));
  EXPECT_FALSE(token_matches("abd", hash));
  EXPECT_FALSE(token_matches("", hash));
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer  abc "), "abc");
  EXPECT_EQ(bearer_token("Basic abc"), "");
  EXPECT_EQ(bearer_token("Bearer"), "");
}

TEST_F(AuthTest, ClientFindsServerAndTokenInHome) {
  ::unsetenv("DROVER_SERVER");
  ::unsetenv("DROVER_TOKEN");
  ASSERT_TRUE(make_dirs(home_).ok());
  ASSERT_TRUE(write_file_atomic(home_ / "server.json", R"({"url": "http://127.0.0.1:9/"})").ok());
  ASSERT_TRUE(write_file_atomic(home_ / "token", "tok\n", 0600).ok());
  auto c = resolve_client(home_.string(), std::nullopt);
  ASSERT_TRUE(c.ok()) << c.message();
  EXPECT_EQ(c->url, "http://127.0.0.1:9");
  EXPECT_EQ(c->token, "tok");
  auto flag = resolve_client(home_.string(), std::string("http://localhost:1234"));
  ASSERT_TRUE(flag.ok());
  EXPECT_EQ(flag->url, "http://localhost:1234");
}

TEST_F(AuthTest, ClientWithoutAServerSaysWhereItLooked) {
  ::unsetenv("DROVER_SERVER");
  auto c = resolve_client(home_.string(), std::nullopt);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.message(),
            "cannot find the server: pass --server URL, set DROVER_SERVER, or point --home at "
            "the daemon's folder (" +
                (home_ / "server.json").string() + " does not exist)");
  auto https = resolve_client(home_.string(), std::string("https://x:1"));
  ASSERT_FALSE(https.ok());
  EXPECT_EQ(https.message(), "'https://x:1': https is not supported yet; use http://");
}

// ---- The route table (api_routes()) against the server and against docs/api.md.

class HttpRoutesTest : public HttpTest {
 protected:
  void SetUp() override {
    with_home_ = true;
    HttpTest::SetUp();
  }
  // A path of `pattern` whose named segments hold valid values.
  static std::string concrete(const std::string& pattern) {
    static const std::map<std::string, std::string> kValues = {
        {"{dag}", "etl"},      {"{run}", "etl-1"},  {"{task}", "train"},
        {"{name}", "events"},  {"{tag}", "latest"}, {"{sha256}", std::string(64, 'a')},
        {"{model}", "clicks"}, {"{version}", "1"},  {"{alias}", "production"},
        {"{key}", "team"}};
    std::string out = pattern;
    for (auto& [param, value] : kValues)
      if (auto at = out.find(param); at != std::string::npos) out.replace(at, param.size(), value);
    return out;
  }
  static std::string joined(const std::vector<std::string>& methods) {
    std::string out;
    for (auto& m : methods) out += (out.empty() ? "" : ", ") + m;
    return out;
  }
};

TEST_F(HttpRoutesTest, EveryRouteRefusesAnotherMethodWith405AndAnAllowHeaderNamingItsOwn) {
  auto routes = api_routes();
  ASSERT_FALSE(routes.empty());
  for (auto& route : routes) {
    std::string wrong;
    for (std::string m : {"DELETE", "POST", "PATCH"})
      if (std::find(route.methods.begin(), route.methods.end(), m) == route.methods.end()) {
        wrong = m;
        break;
      }
    std::string target = concrete(route.pattern);
    auto r = request(ClientConfig{url_, kToken, {}}, wrong, target);
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_EQ(r->status, 405) << wrong << " " << target;
    EXPECT_EQ(r->headers["allow"], joined(route.methods)) << target;
    EXPECT_EQ(error_of(*r), json({{"code", "method_not_allowed"},
                                  {"message", "method not allowed; use " + joined(route.methods)}}))
        << target;
    // Without a token: 401 first, except where the route needs none.
    auto anonymous = request(ClientConfig{url_, "", {}}, wrong, target);
    ASSERT_TRUE(anonymous.ok());
    EXPECT_EQ(anonymous->status, route.scope == ApiScope::none ? 405 : 401) << target;
  }
}

TEST_F(HttpRoutesTest, APathThatMatchesNoPatternIsNotFoundWhateverTheMethod) {
  for (std::string target : {"/api/v1/runs/etl-1/tasks", "/api/v1/dags/etl/trigger/now",
                             "/api/v1/datasets/events/refs", "/api/v2/dags"}) {
    auto r = request(ClientConfig{url_, kToken, {}}, "DELETE", target);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status, 404) << target;
    EXPECT_EQ(error_of(*r)["message"], "no route for DELETE " + target);
    EXPECT_EQ(r->headers.count("allow"), 0u);
  }
}

// docs/api.md names routes as `METHOD /api/v1/...` (several methods as `HEAD`, `GET`,
// `PUT /api/v1/...`): each must be in the table, and each route of the table in the docs.
TEST(ApiRoutesDocsTest, TheRoutesInDocsApiMdAreTheRouteTable) {
  std::ifstream in(std::string(DROVER_SOURCE_DIR) + "/docs/api.md");
  ASSERT_TRUE(in) << "docs/api.md";
  const std::string verb = "GET|HEAD|PUT|POST|DELETE|PATCH";
  std::regex mention("((?:`(?:" + verb + ")`,\\s*)*)`(" + verb + ") (/api/v1/[^`?\\s]*)");
  std::regex one(verb);
  std::set<std::string> documented;
  std::string line;
  while (std::getline(in, line))
    for (std::sregex_iterator it(line.begin(), line.end(), mention), end; it != end; ++it) {
      std::string path = (*it)[3].str(), more = (*it)[1].str();
      documented.insert((*it)[2].str() + " " + path);
      for (std::sregex_iterator m(more.begin(), more.end(), one); m != end; ++m)
        documented.insert(m->str() + " " + path);
    }
  std::set<std::string> table;
  for (auto& route : api_routes())
    for (auto& m : route.methods) table.insert(m + " " + route.pattern);
  EXPECT_GE(documented.size(), 10u);
  for (auto& d : documented)
    EXPECT_TRUE(table.count(d)) << "docs/api.md names " << d << ", which the route table lacks";
  for (auto& t : table)
    EXPECT_TRUE(documented.count(t))
        << "the route table has " << t << ", which docs/api.md does not name";
}

}  // namespace
}  // namespace drover
