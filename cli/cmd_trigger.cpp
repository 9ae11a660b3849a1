// `drover trigger DAG [-p NAME=VALUE]... [--wait] [--json]`: asks the daemon for a manual run
// (POST /api/v1/dags/{dag}/trigger) and prints its id; with --wait, follows the run's tasks
// until it ends.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/usage_formatter.hpp"
#include "web/client.hpp"

namespace drover::cli {
namespace {

using json = nlohmann::json;

constexpr auto kPollInterval = std::chrono::milliseconds(200);

bool run_finished(const std::string& state) {
  return state == "success" || state == "failed" || state == "cancelled";
}

// The latest try and state of each task, in the order the run lists them.
std::vector<std::pair<std::string, std::string>> task_progress(const json& run) {
  std::vector<std::string> order;
  std::map<std::string, int> tries;
  for (auto& t : run.value("tasks", json::array())) {
    std::string task = t.value("task", "");
    if (!tries.count(task)) order.push_back(task);
    tries[task] = std::max(tries[task], t.value("try", 0));
  }
  json states = run.value("task_states", json::object());
  for (auto& [task, _] : states.items())
    if (!tries.count(task)) {
      order.push_back(task);
      tries[task] = 0;
    }
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& task : order) {
    std::string state = states.contains(task) && states[task].is_string()
                            ? states[task].get<std::string>()
                            : std::string("pending");
    if (tries[task] > 1) state += " (try " + std::to_string(tries[task]) + ")";
    out.emplace_back(task, state);
  }
  return out;
}

// Polls the run until it ends, printing each task's state changes (unless quiet).
// Returns the final run record.
Result<json> wait_for(HttpClient& client, const std::string& run_id, bool quiet) {
  std::map<std::string, std::string> seen;
  while (true) {
    auto run = client.call("GET", "/api/v1/runs/" + url_encode(run_id));
    if (!run) return run.error();
    if (!quiet) {
      for (auto& [task, state] : task_progress(*run)) {
        if (seen[task] == state) continue;
        seen[task] = state;
        std::printf("  %-24s %s\n", task.c_str(), state.c_str());
      }
      std::fflush(stdout);
    }
    std::string state = run->value("state", "");
    if (run_finished(state)) return run;
    std::this_thread::sleep_for(kPollInterval);
  }
}

int cmd_trigger(int argc, char** argv) {
  CLI::App app{
      "Ask the daemon to run DAG now and print the new run's id. Parameters are\n"
      "sent as text; the daemon converts them to their declared types and refuses\n"
      "the run (creating nothing) when a name or value does not fit.",
      "drover trigger"};
  use_usage_first(app);
  app.footer(
      "Exit codes:\n"
      "  0  the run was created (with --wait: and it succeeded)\n"
      "  1  the daemon refused or could not be reached (with --wait: or the run did not "
      "succeed)\n"
      "  2  usage error");
  std::string dag;
  ClientOptions options;
  std::vector<std::string> params;
  bool wait = false, as_json = false;
  app.add_option("dag", dag, "The DAG to run")->required();
  app.add_option("-p,--param", params, "NAME=VALUE (repeatable)");
  app.add_flag("--wait", wait, "Follow the run's tasks until it ends");
  app.add_flag("--json", as_json,
               "Print {\"run_id\": ...} (with --wait: the final run record) as JSON");
  add_client_options(&app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;
  }

  json cli_params = json::object();
  for (auto& p : params) {
    auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "drover trigger: -p expects NAME=VALUE, got '%s'\n", p.c_str());
      return kExitUsage;
    }
    std::string name = p.substr(0, eq);
    if (cli_params.contains(name)) {
      std::fprintf(stderr, "drover trigger: parameter '%s' given twice\n", name.c_str());
      return kExitUsage;
    }
    cli_params[name] = p.substr(eq + 1);
  }

  auto config = client_config(options);
  if (!config) return fail(config.message());
  HttpClient client(*config);
  json body = {{"cli_params", cli_params}};
  auto created = client.call("POST", "/api/v1/dags/" + url_encode(dag) + "/trigger",
                             body.dump(-1, ' ', false, json::error_handler_t::replace));
  if (!created) return fail(created.message());
  std::string run_id = created->value("run_id", "");
  if (!wait) {
    if (as_json)
      std::printf("%s\n", created->dump(2).c_str());
    else
      std::printf("%s\n", run_id.c_str());
    return kExitOk;
  }
  if (!as_json) {
    std::printf("%s\n", run_id.c_str());
    std::fflush(stdout);
  }
  auto run = wait_for(client, run_id, as_json);
  if (!run) return fail(run.message());
  std::string state = run->value("state", "");
  if (as_json)
    std::printf("%s\n", run->dump(2).c_str());
  else
    std::printf("run %s %s\n", run_id.c_str(), state.c_str());
  return state == "success" ? kExitOk : kExitFailure;
}

}  // namespace

DROVER_COMMAND("trigger", "Start a run of a DAG on the daemon", cmd_trigger);

}  // namespace drover::cli
