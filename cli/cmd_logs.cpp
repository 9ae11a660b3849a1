// `drover logs RUN TASK [--try N] [--follow]`: prints a task try's log through
// GET /api/v1/runs/{run}/tasks/{task}/logs, paging by offset; --follow keeps polling until
// the task has finished, moving on to a retry's log when a new try starts.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/usage_formatter.hpp"
#include "web/client.hpp"

namespace drover::cli {
namespace {

using json = nlohmann::json;

constexpr auto kPollInterval = std::chrono::milliseconds(200);


bool task_finished(const std::string& state) {
  return state == "success" || state == "failed" || state == "upstream_failed" ||
         state == "cancelled" || state == "timed_out" || state == "skipped";
}

struct TaskStatus {
  bool exists = false;
  std::string state;    // the task's state
  int latest_try = 0;   // 0: no try yet
  std::string try_state;  // of the try asked for (or the latest)
  bool run_finished = false;
};

Result<TaskStatus> task_status(HttpClient& client, const std::string& run,
                               const std::string& task, int try_number) {
  auto rec = client.call("GET", "/api/v1/runs/" + url_encode(run));
  if (!rec) return rec.error();
  TaskStatus s;
  std::string run_state = rec->value("state", "");
  s.run_finished = run_state == "success" || run_state == "failed" || run_state == "cancelled";
  json states = rec->value("task_states", json::object());
  if (states.contains(task) && states[task].is_string()) {
    s.exists = true;
    s.state = states[task].get<std::string>();
  }
  for (auto& t : rec->value("tasks", json::array())) {
    if (t.value("task", "") != task) continue;
    s.exists = true;
    int n = t.value("try", 0);
    if (n > s.latest_try) s.latest_try = n;
    if (try_number == 0 ? n == s.latest_try : n == try_number) s.try_state = t.value("state", "");
  }
  return s;
}

struct Chunk {
  bool found = false;
  size_t bytes = 0;
  unsigned long long size = 0;  // the whole file's
  std::string not_found;        // the daemon's message when !found
};

// Writes the log bytes from `offset` to stdout; not found is a value, not an error.
Result<Chunk> fetch(HttpClient& client, const std::string& run, const std::string& task,
                    int try_number, unsigned long long offset) {
  std::string target = "/api/v1/runs/" + url_encode(run) + "/tasks/" + url_encode(task) +
                       "/logs?offset=" + std::to_string(offset);
  if (try_number > 0) target += "&try=" + std::to_string(try_number);
  auto res = client.request("GET", target);
  if (!res) return res.error();
  Chunk c;
  if (res->status == 404) {
    c.not_found = api_error(*res).message;
    return c;
  }
  if (res->status != 200) return api_error(*res);
  c.found = true;
  c.bytes = res->body.size();
  c.size = std::strtoull(res->headers["x-drover-log-size"].c_str(), nullptr, 10);
  std::fwrite(res->body.data(), 1, res->body.size(), stdout);
  std::fflush(stdout);
  return c;
}

int print_all(HttpClient& client, const std::string& run, const std::string& task,
              int try_number) {
  unsigned long long offset = 0;
  while (true) {
    auto c = fetch(client, run, task, try_number, offset);
    if (!c) return fail(c.message());
    if (!c->found) return fail(c->not_found);
    offset += c->bytes;
    if (c->bytes == 0 || offset >= c->size) return kExitOk;
  }
}

int follow(HttpClient& client, const std::string& run, const std::string& task,
           int fixed_try) {
  int current = fixed_try;
  unsigned long long offset = 0;
  while (true) {
    auto s = task_status(client, run, task, fixed_try);
    if (!s) return fail(s.message());
    if (!s->exists) return fail("run '" + run + "' has no task '" + task + "'");
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
        auto c = fetch(client, run, task, current, offset);
        if (!c) return fail(c.message());
        offset += c->bytes;
        got += c->bytes;
        if (!c->found || c->bytes == 0 || offset >= c->size) break;
      }
    }
    if (finished) return kExitOk;
    if (got == 0) std::this_thread::sleep_for(kPollInterval);
  }
}

int cmd_logs(int argc, char** argv) {
  CLI::App app{"Print the log (stdout and stderr) of a task's try; the latest try unless\n"
               "--try is given.",
               "drover logs"};
  use_usage_first(app);
  app.footer("Exit codes:\n"
             "  0  the log was printed (whatever the task's outcome)\n"
             "  1  no such run, task or log, or the daemon could not be reached\n"
             "  2  usage error");
  std::string run, task, home, server;
  int try_number = 0;
  bool follow_flag = false;
  app.add_option("run", run, "The run id")->required();
  app.add_option("task", task, "The task id")->required();
  app.add_option("--try", try_number, "The try number (default: the latest)")
      ->check(CLI::PositiveNumber);
  app.add_flag("-f,--follow", follow_flag,
               "Keep printing new output until the task has finished");
  app.add_option("--home", home, "The daemon's state folder (default ./.drover)");
  app.add_option("--server", server, "The daemon's URL (default: $DROVER_SERVER, HOME/server.json)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  auto config = resolve_client(home, server);
  if (!config) return fail(config.message());
  HttpClient client(*config);
  return follow_flag ? follow(client, run, task, try_number)
                     : print_all(client, run, task, try_number);
}

}  // namespace

DROVER_COMMAND("logs", "Print a task's log", cmd_logs);

}  // namespace drover::cli
