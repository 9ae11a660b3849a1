// `drover runs ls` and `drover runs show RUN`: the daemon's runs, newest first, and one
// run's full record (DESIGN.md §5) through GET /api/v1/runs[/{run}], or from the store under
// --home when no daemon is configured. Also the record printer of cli/record_print.hpp.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/engine_setup.hpp"
#include "cli/record_print.hpp"
#include "cli/usage_formatter.hpp"
#include "common/clock.hpp"
#include "common/time.hpp"
#include "common/utf8.hpp"
#include "executor/executor.hpp"
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
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

Result<json> remote_runs(const ClientConfig& config, const std::string& dag,
                         const std::string& state, int limit);

// No daemon: list from the store directly (what `drover run` wrote).
Result<json> local_runs(const std::filesystem::path& db, const std::string& dag,
                        const std::string& state, int limit) {
  auto store = open_sqlite_store(db);
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

int runs_ls(const ReadOptions& c, const std::string& dag, const std::string& state, int limit) {
  auto where = resolve_source(c.client);
  if (!where) return fail(where.message());
  Result<json> res = where->daemon ? remote_runs(*where->daemon, dag, state, limit)
                                   : local_runs(where->store, dag, state, limit);
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
    // A link's blob is its text, not a file's bytes.
    json mode = f.value("mode", json(0644));
    bool link = mode.is_number_integer() && (mode.get<int>() & S_IFMT) == S_IFLNK;
    std::printf("    %-3s %-40s %10s  %s%s%s\n", kind, printable(f.value("path", "")).c_str(),
                human_size(f.value("size", uint64_t{0})).c_str(), hash.substr(0, 12).c_str(),
                link ? "  (symbolic link)" : "", from.c_str());
  }
}

}  // namespace

std::string last_lines(std::string_view text, int lines, bool cut) {
  if (cut) {
    size_t nl = text.find('\n');
    if (nl != std::string_view::npos && nl + 1 < text.size()) text.remove_prefix(nl + 1);
  }
  if (text.empty() || lines <= 0) return "";
  size_t end = text.size();
  if (text[end - 1] == '\n') --end;  // the last line's own newline
  size_t start = end;
  int n = 0;
  while (start > 0 && n < lines) {
    size_t nl = text.rfind('\n', start - 1);
    if (nl == std::string_view::npos) {
      start = 0;
      ++n;
      break;
    }
    ++n;
    if (n == lines) {
      start = nl + 1;
      break;
    }
    start = nl;
  }
  std::string out(text.substr(start, end - start));
  out += '\n';
  return out;
}

Result<std::string> tail_file(const std::string& path, int lines) {
  auto whole = read_log_file(path, 0, 0);  // its size
  if (!whole) return whole.error();
  unsigned long long from = whole->size > kLogTailBytes ? whole->size - kLogTailBytes : 0;
  auto end = read_log_file(path, from, kLogTailBytes);
  if (!end) return end.error();
  return last_lines(end->bytes, lines, from > 0);
}

Result<std::string> local_log_tail(const json& t, int lines) {
  if (!t.contains("log") || !t["log"].is_string() || t["log"].get<std::string>().empty())
    return make_error("the try has no log");
  return tail_file(t["log"].get<std::string>(), lines);
}

std::string try_error(const json& t) {
  if (t.contains("error") && t["error"].is_string() && !t["error"].get<std::string>().empty())
    return t["error"].get<std::string>();
  if (t.contains("signal") && t["signal"].is_number())
    return "killed by signal " + t["signal"].dump();
  if (t.contains("exit_code") && t["exit_code"].is_number() && t["exit_code"] != 0)
    return "exit code " + t["exit_code"].dump();
  return t.value("state", "failed");
}

std::string format_failures(const json& record, const LogTail& tail, int lines) {
  std::string out;
  for (auto& t : record.value("tasks", json::array())) {
    std::string state = t.value("state", "");
    if (state != "failed" && state != "timed_out" && state != "lost") continue;
    if (out.empty()) out = "Failed tries:\n";
    out += "  " + str(t, "task") + " (try " + str(t, "try") + "): " + try_error(t) + "\n";
    std::string path = str(t, "log");
    auto text = tail(t, lines);
    if (!text) {
      out += "    log: " + path + " (cannot read it: " + text.message() + ")\n";
    } else if (text->empty()) {
      out += "    log: " + path + " (empty)\n";
    } else {
      size_t n = static_cast<size_t>(std::count(text->begin(), text->end(), '\n'));
      out += "    log: " + path + " (last " + std::to_string(n) + (n == 1 ? " line" : " lines") +
             ")\n";
      size_t pos = 0;
      while (pos < text->size()) {
        size_t nl = text->find('\n', pos);
        if (nl == std::string::npos) nl = text->size();
        out += "    | " + text->substr(pos, nl - pos) + "\n";
        pos = nl + 1;
      }
    }
  }
  return out;
}

void print_run_record(const json& r, bool with_failures, const LogTail& tail) {
  json trigger = r.value("trigger", json::object());
  json git = r.value("git", json::object());
  std::string by = str(trigger, "user");
  std::printf("Run          %s\n", str(r, "id").c_str());
  std::printf("DAG          %s (file %s)\n", str(r, "dag").c_str(),
              r.value("dag_hash", "").substr(0, 12).c_str());
  std::printf("State        %s\n", str(r, "state").c_str());
  if (r.contains("error") && r["error"].is_string())
    std::printf("Error        %s\n", r["error"].get<std::string>().c_str());
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
      rows.push_back(
          {task, "-", state.is_string() ? state.get<std::string>() : "-", "-", "-", "-"});
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
  // What each try published: its values, then its metrics (a stepped one as its last value,
  // its step and how many points it has).
  bool any_published = false;
  for (auto& t : tasks) {
    json values = t.value("values", json::object()), metrics = t.value("metrics", json::array());
    if (!values.is_object() || !metrics.is_array() || (values.empty() && metrics.empty())) continue;
    if (!any_published) std::printf("\nValues and metrics:\n");
    any_published = true;
    std::printf("  %s (try %s)\n", str(t, "task").c_str(), str(t, "try").c_str());
    for (auto& [k, v] : values.items())
      std::printf("    value  %-30s %s\n", printable(k).c_str(),
                  printable(v.is_string() ? v.get<std::string>() : v.dump()).c_str());
    std::vector<std::string> order;
    std::map<std::string, std::pair<json, int>> last;  // name -> (last metric, points)
    for (auto& m : metrics) {
      std::string name = m.value("name", "");
      auto [it, fresh] = last.try_emplace(name, m, 0);
      if (fresh) order.push_back(name);
      it->second.first = m;
      ++it->second.second;
    }
    for (auto& name : order) {
      auto& [m, points] = last[name];
      long long step = m.value("step", -1LL);
      std::string where = step < 0 && points == 1 ? ""
                                                  : "  (step " + std::to_string(step) + ", " +
                                                        std::to_string(points) + " points)";
      std::printf("    metric %-30s %s%s\n", printable(name).c_str(),
                  m.value("value", json()).dump().c_str(), where.c_str());
    }
  }
  if (with_failures) {
    std::string failures = format_failures(r, tail);
    if (!failures.empty()) std::printf("\n%s", failures.c_str());
  }
}

namespace {

// The end of a try's log from the daemon: its size first (an offset past the end answers
// with the size and no bytes), then the last 64 KiB at most.
Result<std::string> daemon_log_tail(HttpClient& client, const std::string& run_id, const json& t,
                                    int lines) {
  std::string target = "/api/v1/runs/" + url_encode(run_id) + "/tasks/" +
                       url_encode(t.value("task", "")) +
                       "/logs?try=" + std::to_string(t.value("try", 0)) + "&offset=";
  auto head = client.request("GET", target + std::to_string(1ULL << 62));
  if (!head) return head.error();
  if (head->status != 200) return api_error(*head);
  unsigned long long size = std::strtoull(head->headers["x-drover-log-size"].c_str(), nullptr, 10);
  unsigned long long from = size > kLogTailBytes ? size - kLogTailBytes : 0;
  auto body = client.request("GET", target + std::to_string(from));
  if (!body) return body.error();
  if (body->status != 200) return api_error(*body);
  return last_lines(body->body, lines, from > 0);
}

int runs_show(const ReadOptions& c, const std::string& run_id) {
  auto where = resolve_source(c.client);
  if (!where) return fail(where.message());
  Result<json> res = make_error("");
  std::unique_ptr<HttpClient> client;
  if (where->daemon) {
    client = std::make_unique<HttpClient>(*where->daemon);
    res = client->call("GET", "/api/v1/runs/" + url_encode(run_id));
  } else {
    // No daemon: read the store directly (what `drover run` wrote).
    auto store = open_sqlite_store(where->store);
    if (!store) return fail(store.message());
    res = run_record_json(**store, run_id);
  }
  if (!res) return fail(res.message());
  if (c.json) {
    std::printf("%s\n", res->dump(2).c_str());
    return kExitOk;
  }
  // A log is read where it lies when this machine sees it, else through the daemon.
  LogTail tail = [&](const json& t, int lines) -> Result<std::string> {
    auto local = local_log_tail(t, lines);
    if (local || !client) return local;
    return daemon_log_tail(*client, run_id, t, lines);
  };
  print_run_record(*res, /*with_failures=*/true, tail);
  return kExitOk;
}

int cmd_runs(int argc, char** argv) {
  CLI::App app{
      "List the daemon's runs, or show one run's full record. Without a daemon (no\n"
      "--server, $DROVER_SERVER or HOME/server.json) they come from the store under\n"
      "--home directly, as written by `drover run`.",
      "drover runs"};
  use_usage_first(app);
  app.footer(
      "Exit codes:\n"
      "  0  success\n"
      "  1  the daemon refused (e.g. no such run) or could not be reached\n"
      "  2  usage error");
  app.require_subcommand(1);
  ReadOptions c;
  std::string dag, state, run_id;
  int limit = 0;
  CLI::App* ls = app.add_subcommand("ls", "List runs, newest first");
  use_usage_first(*ls);
  ls->add_option("--dag", dag, "Only runs of this DAG");
  ls->add_option("--state", state,
                 "Only runs in this state (queued, running, success, failed, "
                 "cancelled)");
  ls->add_option("--limit", limit, "At most this many runs (1-1000, default 100)")
      ->check(CLI::Range(1, 1000));
  add_read_options(ls, c);
  CLI::App* show = app.add_subcommand(
      "show",
      "Show a run's record: tasks, tries, files, and each failed try's error with the last "
      "10 lines of its log");
  use_usage_first(*show);
  show->add_option("run", run_id, "The run id, e.g. weekly_retrain-12")->required();
  add_read_options(show, c);
  if (int rc = parse_args(app, argc, argv, /*help_on_error=*/true); rc >= 0) return rc;
  if (ls->parsed()) return runs_ls(c, dag, state, limit);
  return runs_show(c, run_id);
}

}  // namespace

DROVER_COMMAND("runs", "List runs and show a run's record", cmd_runs);

}  // namespace drover::cli
