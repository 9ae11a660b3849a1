// `drover logs RUN TASK [--try N] [--follow]`: prints a task try's log, paging by offset;
// --follow keeps polling until the task has finished, moving on to a retry's log when a new
// try starts. From the daemon (GET /api/v1/runs/{run}[/tasks/{task}/logs]) when one is
// configured, else from the store and log files under --home directly (as `runs` does).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/usage_formatter.hpp"
#include "executor/executor.hpp"
#include "scheduler/store.hpp"
#include "scheduler/store_json.hpp"
#include "web/client.hpp"

namespace drover::cli {
namespace {

using json = nlohmann::json;

constexpr auto kPollInterval = std::chrono::milliseconds(200);
constexpr size_t kChunk = 4u << 20;  // bytes per read, as the API pages

bool task_finished(const std::string& state) {
  return state == "success" || state == "failed" || state == "upstream_failed" ||
         state == "cancelled" || state == "timed_out" || state == "skipped";
}

std::string no_run(const std::string& run) { return "run '" + run + "' does not exist"; }

struct Chunk {
  bool found = false;
  std::string bytes;
  unsigned long long size = 0;  // the whole file's
  std::string not_found;        // why, when !found
};

// Where the records and logs come from: the daemon's API or the store under HOME.
class Source {
 public:
  virtual ~Source() = default;
  // The run record; an unknown run is an error with Errc::NotFound.
  virtual Result<json> record(const std::string& run) = 0;
  // A try's log bytes from `offset` (try 0: the latest); a log that does not exist (yet)
  // is a value with found = false.
  virtual Result<Chunk> read(const std::string& run, const std::string& task, int try_number,
                             unsigned long long offset) = 0;
};

class DaemonSource : public Source {
 public:
  explicit DaemonSource(ClientConfig config) : client_(std::move(config)) {}

  Result<json> record(const std::string& run) override {
    auto res = client_.request("GET", "/api/v1/runs/" + url_encode(run));
    if (!res) return res.error();
    if (res->status == 404) return make_error(no_run(run), Errc::NotFound);
    if (res->status != 200) return api_error(*res);
    json j = json::parse(res->body, nullptr, false);
    if (j.is_discarded()) return make_error("the daemon sent a run record that is not JSON");
    return j;
  }

  Result<Chunk> read(const std::string& run, const std::string& task, int try_number,
                     unsigned long long offset) override {
    std::string target = "/api/v1/runs/" + url_encode(run) + "/tasks/" + url_encode(task) +
                         "/logs?offset=" + std::to_string(offset);
    if (try_number > 0) target += "&try=" + std::to_string(try_number);
    auto res = client_.request("GET", target);
    if (!res) return res.error();
    Chunk c;
    if (res->status == 404) {
      c.not_found = api_error(*res).message;
      return c;
    }
    if (res->status != 200) return api_error(*res);
    c.found = true;
    c.bytes = std::move(res->body);
    c.size = std::strtoull(res->headers["x-drover-log-size"].c_str(), nullptr, 10);
    return c;
  }

 private:
  HttpClient client_;
};

// No daemon: the store `drover run` wrote, and the log files its try records name.
class LocalSource : public Source {
 public:
  explicit LocalSource(std::unique_ptr<Store> store) : store_(std::move(store)) {}

  Result<json> record(const std::string& run) override {
    auto rec = run_record_json(*store_, run);
    if (!rec && rec.error().code == Errc::NotFound) return make_error(no_run(run), Errc::NotFound);
    return rec;
  }

  Result<Chunk> read(const std::string& run, const std::string& task, int try_number,
                     unsigned long long offset) override {
    auto rec = record(run);
    if (!rec) return rec.error();
    const json* best = nullptr;
    for (auto& t : (*rec)["tasks"]) {
      if (t.value("task", "") != task) continue;
      int n = t.value("try", 0);
      if (try_number > 0 ? n == try_number : (!best || n > best->value("try", 0))) best = &t;
    }
    Chunk c;
    std::string which = try_number > 0 ? " try " + std::to_string(try_number) : "";
    c.not_found = "no log for task '" + task + "'" + which + " of run '" + run + "'";
    if (!best || !(*best)["log"].is_string() || (*best)["log"].get<std::string>().empty()) return c;
    // The local case of an executor's read_log: the file the try record names.
    auto chunk = read_log_file((*best)["log"].get<std::string>(), offset, kChunk);
    if (!chunk) {
      if (chunk.error().code == Errc::NotFound) return c;
      return chunk.error();
    }
    c.found = true;
    c.size = chunk->size;
    c.bytes = std::move(chunk->bytes);
    return c;
  }

 private:
  std::unique_ptr<Store> store_;
};

struct TaskStatus {
  bool exists = false;
  std::string state;      // the task's state
  int latest_try = 0;     // 0: no try yet
  std::string try_state;  // of the try asked for (or the latest)
  bool run_finished = false;
};

TaskStatus task_status(const json& rec, const std::string& task, int try_number) {
  TaskStatus s;
  std::string run_state = rec.value("state", "");
  s.run_finished = run_state == "success" || run_state == "failed" || run_state == "cancelled";
  json states = rec.value("task_states", json::object());
  if (states.contains(task) && states[task].is_string()) {
    s.exists = true;
    s.state = states[task].get<std::string>();
  }
  for (auto& t : rec.value("tasks", json::array())) {
    if (t.value("task", "") != task) continue;
    s.exists = true;
    int n = t.value("try", 0);
    if (n > s.latest_try) s.latest_try = n;
    if (try_number == 0 ? n == s.latest_try : n == try_number) s.try_state = t.value("state", "");
  }
  return s;
}

void put(const std::string& bytes) {
  std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  std::fflush(stdout);
}

// The run's status for `task`, or the error to print: an unknown run or task.
Result<TaskStatus> status_of(Source& src, const std::string& run, const std::string& task,
                             int try_number) {
  auto rec = src.record(run);
  if (!rec) return rec.error();
  TaskStatus s = task_status(*rec, task, try_number);
  if (!s.exists) return make_error("run '" + run + "' has no task '" + task + "'", Errc::NotFound);
  return s;
}

int print_all(Source& src, const std::string& run, const std::string& task, int try_number) {
  if (auto s = status_of(src, run, task, try_number); !s) return fail(s.message());
  unsigned long long offset = 0;
  while (true) {
    auto c = src.read(run, task, try_number, offset);
    if (!c) return fail(c.message());
    if (!c->found) return fail(c->not_found);
    put(c->bytes);
    offset += c->bytes.size();
    if (c->bytes.empty() || offset >= c->size) return kExitOk;
  }
}

int follow(Source& src, const std::string& run, const std::string& task, int fixed_try) {
  int current = fixed_try;
  unsigned long long offset = 0;
  while (true) {
    auto s = status_of(src, run, task, fixed_try);
    if (!s) return fail(s.message());
    if (fixed_try == 0 && s->latest_try > current) {
      if (current > 0) std::fprintf(stderr, "--- try %d ---\n", s->latest_try);
      current = s->latest_try;
      offset = 0;
    }
    // The state was read before the log: when it says finished, what we read now is all.
    bool finished = s->run_finished || task_finished(s->state) ||
                    (fixed_try > 0 && !s->try_state.empty() && s->try_state != "running");
    size_t got = 0;
    if (current > 0) {
      while (true) {
        auto c = src.read(run, task, current, offset);
        if (!c) return fail(c.message());
        put(c->bytes);
        offset += c->bytes.size();
        got += c->bytes.size();
        if (!c->found || c->bytes.empty() || offset >= c->size) break;
      }
    }
    if (finished) return kExitOk;
    if (got == 0) std::this_thread::sleep_for(kPollInterval);
  }
}

int cmd_logs(int argc, char** argv) {
  CLI::App app{
      "Print the log (stdout and stderr) of a task's try; the latest try unless\n"
      "--try is given. Without a daemon (no --server, $DROVER_SERVER or\n"
      "HOME/server.json) it reads the store under --home directly, as written by\n"
      "`drover run`.",
      "drover logs"};
  use_usage_first(app);
  app.footer(
      "Exit codes:\n"
      "  0  the log was printed (whatever the task's outcome)\n"
      "  1  no such run (\"run 'RUN' does not exist\"), task or log, or the daemon\n"
      "     could not be reached\n"
      "  2  usage error");
  std::string run, task;
  ClientOptions client;
  int try_number = 0;
  bool follow_flag = false;
  app.add_option("run", run, "The run id")->required();
  app.add_option("task", task, "The task id")->required();
  app.add_option("--try", try_number, "The try number (default: the latest)")
      ->check(CLI::PositiveNumber);
  app.add_flag("-f,--follow", follow_flag, "Keep printing new output until the task has finished");
  add_client_options(&app, client);
  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
  auto where = resolve_source(client);
  if (!where) return fail(where.message());
  std::unique_ptr<Source> src;
  if (where->daemon) {
    src = std::make_unique<DaemonSource>(*where->daemon);
  } else {
    auto store = open_sqlite_store(where->store);
    if (!store) return fail(store.message());
    src = std::make_unique<LocalSource>(std::move(*store));
  }
  return follow_flag ? follow(*src, run, task, try_number) : print_all(*src, run, task, try_number);
}

}  // namespace

DROVER_COMMAND("logs", "Print a task's log", cmd_logs);

}  // namespace drover::cli
