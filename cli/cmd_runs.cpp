// `drover runs ls` and `drover runs show RUN`: the daemon's runs, newest first, and one
// run's full record (DESIGN.md §5) through GET /api/v1/runs[/{run}].
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/usage_formatter.hpp"
#include "common/clock.hpp"
#include "common/time.hpp"
#include "cli/engine_setup.hpp"
#include "cli/record_print.hpp"
#include "scheduler/store.hpp"
#include "scheduler/store_json.hpp"
#include "web/client.hpp"

namespace drover::cli {
namespace {

using json = nlohmann::json;




// "1m3s" between two ISO times; to now (with "+") while the end is missing.
std::string duration(const json& j, const char* from, const char* to) {
  if (!j.contains(from) || !j[from].is_string()) return "-";
  auto start = parse_iso(j[from].get<std::string>());
  if (!start) return "-";
  bool running = !j.contains(to) || !j[to].is_string();
  TimePoint end = SystemClock().now();
  if (!running) {
    auto e = parse_iso(j[to].get<std::string>());
    if (!e) return "-";
    end = *e;
  }
  Micros d = end - *start;
  if (d < Micros(0)) d = Micros(0);
  if (d >= std::chrono::seconds(1)) d = std::chrono::duration_cast<std::chrono::seconds>(d);
  return format_duration(d) + (running ? "+" : "");
}

std::string human_size(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  else std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

struct Common {
  std::string home, server;
  bool json = false;
};

void add_common(CLI::App* app, Common& c) {
  app->add_flag("--json", c.json, "Print the daemon's JSON");
  app->add_option("--home", c.home, "The daemon's state folder (default ./.drover)");
  app->add_option("--server", c.server,
                  "The daemon's URL (default: $DROVER_SERVER, HOME/server.json)");
}

Result<json> remote_runs(const ClientConfig& config, const std::string& dag,
                         const std::string& state, int limit);

std::string home_of(const Common& c) { return c.home.empty() ? ".drover" : c.home; }

// No daemon: list from the store directly (what `drover run` wrote).
Result<json> local_runs(const Common& c, const std::string& dag, const std::string& state,
                        int limit) {
  auto store = Store::open_sqlite(store_path(home_of(c)));
  if (!store) return store.error();
  RunFilter f;
  f.dag = dag;
  if (!state.empty()) {
    f.state = run_state_from(state);
    if (!f.state) return make_error("unknown run state '" + state + "'");
  }
  if (limit > 0) f.limit = limit;
  auto runs = (*store)->list_runs(f);
  if (!runs) return runs.error();
  json out = {{"runs", json::array()}};
  for (auto& r : *runs) out["runs"].push_back(run_summary_json(r));
  return out;
}

int runs_ls(const Common& c, const std::string& dag, const std::string& state, int limit) {
  auto config = resolve_client(c.home, c.server);
  Result<json> res = make_error("");
  if (!config && c.server.empty() && std::filesystem::exists(store_path(home_of(c)))) {
    res = local_runs(c, dag, state, limit);
  } else {
    if (!config) return fail(config.message());
    res = remote_runs(*config, dag, state, limit);
  }
  if (!res) return fail(res.message());
  if (c.json) {
    std::printf("%s\n", res->dump(2).c_str());
    return kExitOk;
  }
  json runs = res->value("runs", json::array());
  if (runs.empty()) {
    std::printf("No runs.\n");
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"ID", "DAG", "STATE", "TRIGGER", "LOGICAL DATE", "STARTED", "DURATION"}};
  for (auto& r : runs)
    rows.push_back({str(r, "id"), str(r, "dag"), str(r, "state"),
                    str(r.value("trigger", json::object()), "kind"), when(r, "logical_date"),
                    when(r, "started_at"), duration(r, "started_at", "ended_at")});
  std::fputs(format_table(rows).c_str(), stdout);
  return kExitOk;
}

Result<json> remote_runs(const ClientConfig& config, const std::string& dag,
                         const std::string& state, int limit) {
  std::string query;
  auto add = [&](const char* key, const std::string& value) {
    query += (query.empty() ? "?" : "&") + std::string(key) + "=" + url_encode(value);
  };
  if (!dag.empty()) add("dag", dag);
  if (!state.empty()) add("state", state);
  if (limit > 0) add("limit", std::to_string(limit));
  HttpClient client(config);
  return client.call("GET", "/api/v1/runs" + query);
}

void print_files(const char* kind, const json& files) {
  for (auto& f : files) {
    std::string hash = f.value("sha256", "");
    std::string from = f.contains("from_task") && f["from_task"].is_string()
                           ? "  (from " + f["from_task"].get<std::string>() + ")"
                           : "";
    std::printf("    %-3s %-40s %10s  %s%s\n", kind, f.value("path", "").c_str(),
                human_size(f.value("size", uint64_t{0})).c_str(), hash.substr(0, 12).c_str(),
                from.c_str());
  }
}

}  // namespace

void print_run_record(const json& r) {
  json trigger = r.value("trigger", json::object());
  json git = r.value("git", json::object());
  std::string by = str(trigger, "user");
  std::printf("Run          %s\n", str(r, "id").c_str());
  std::printf("DAG          %s (file %s)\n", str(r, "dag").c_str(),
              r.value("dag_hash", "").substr(0, 12).c_str());
  std::printf("State        %s\n", str(r, "state").c_str());
  std::printf("Trigger      %s%s\n", str(trigger, "kind").c_str(),
              by == "-" ? "" : (" by " + by).c_str());
  std::printf("Params       %s\n", r.value("params", json::object()).dump().c_str());
  std::printf("Logical date %s\n", when(r, "logical_date").c_str());
  std::string commit = str(git, "commit");
  std::printf("Git          %s%s\n", commit == "-" ? "-" : commit.substr(0, 12).c_str(),
              git.value("dirty", false) ? " (dirty)" : "");
  std::printf("Created      %s\n", when(r, "created_at").c_str());
  std::printf("Started      %s\n", when(r, "started_at").c_str());
  std::printf("Ended        %s\n", when(r, "ended_at").c_str());
  std::printf("Duration     %s\n", duration(r, "started_at", "ended_at").c_str());

  json tasks = r.value("tasks", json::array());
  json states = r.value("task_states", json::object());
  std::vector<std::vector<std::string>> rows = {
      {"TASK", "TRY", "STATE", "EXIT", "STARTED", "DURATION"}};
  std::vector<std::string> seen;
  for (auto& t : tasks) {
    std::string exit = str(t, "exit_code");
    if (t.contains("signal") && t["signal"].is_number()) exit = "sig " + str(t, "signal");
    rows.push_back({str(t, "task"), str(t, "try"), str(t, "state"), exit, when(t, "started_at"),
                    duration(t, "started_at", "ended_at")});
    seen.push_back(t.value("task", ""));
  }
  for (auto& [task, state] : states.items())
    if (std::find(seen.begin(), seen.end(), task) == seen.end())
      rows.push_back({task, "-", state.is_string() ? state.get<std::string>() : "-", "-", "-",
                      "-"});
  std::printf("\n");
  std::fputs(format_table(rows).c_str(), stdout);

  bool any_files = false;
  for (auto& t : tasks) {
    json in = t.value("inputs", json::array()), out = t.value("outputs", json::array());
    if (in.empty() && out.empty()) continue;
    if (!any_files) std::printf("\nFiles (path, size, sha256):\n");
    any_files = true;
    std::printf("  %s (try %s)\n", str(t, "task").c_str(), str(t, "try").c_str());
    print_files("in", in);
    print_files("out", out);
  }
}

namespace {

int runs_show(const Common& c, const std::string& run_id) {
  auto config = resolve_client(c.home, c.server);
  Result<json> res = make_error("");
  if (!config && c.server.empty() && std::filesystem::exists(store_path(home_of(c)))) {
    // No daemon: read the store directly (what `drover run` wrote).
    auto store = Store::open_sqlite(store_path(home_of(c)));
    if (!store) return fail(store.message());
    res = run_record_json(**store, run_id);
  } else {
    if (!config) return fail(config.message());
    HttpClient client(*config);
    res = client.call("GET", "/api/v1/runs/" + url_encode(run_id));
  }
  if (!res) return fail(res.message());
  if (c.json) std::printf("%s\n", res->dump(2).c_str());
  else print_run_record(*res);
  return kExitOk;
}

int cmd_runs(int argc, char** argv) {
  CLI::App app{"List the daemon's runs, or show one run's full record.", "drover runs"};
  use_usage_first(app);
  app.footer("Exit codes:\n"
             "  0  success\n"
             "  1  the daemon refused (e.g. no such run) or could not be reached\n"
             "  2  usage error");
  app.require_subcommand(1);
  Common c;
  std::string dag, state, run_id;
  int limit = 0;
  CLI::App* ls = app.add_subcommand("ls", "List runs, newest first");
  use_usage_first(*ls);
  ls->add_option("--dag", dag, "Only runs of this DAG");
  ls->add_option("--state", state, "Only runs in this state (queued, running, success, failed, "
                                    "cancelled)");
  ls->add_option("--limit", limit, "At most this many runs (1-1000, default 100)")
      ->check(CLI::Range(1, 1000));
  add_common(ls, c);
  CLI::App* show = app.add_subcommand("show", "Show a run's record: tasks, tries, files");
  use_usage_first(*show);
  show->add_option("run", run_id, "The run id, e.g. weekly_retrain-12")->required();
  add_common(show, c);
  if (int rc = parse_args(app, argc, argv, /*help_on_error=*/true); rc >= 0) return rc;
  if (ls->parsed()) return runs_ls(c, dag, state, limit);
  return runs_show(c, run_id);
}

}  // namespace

DROVER_COMMAND("runs", "List runs and show a run's record", cmd_runs);

}  // namespace drover::cli
