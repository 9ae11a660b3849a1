// `drover dags ls` and `drover dags show DAG`: the DAGs the daemon has loaded, with their
// schedules, next fire times and last runs, and the load errors of broken files
// (GET /api/v1/dags[/{dag}]).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/usage_formatter.hpp"
#include "web/client.hpp"

namespace drover::cli {
namespace {

using json = nlohmann::json;

std::string schedule_of(const json& d) {
  std::string s = str(d, "schedule");
  std::string tz = str(d, "timezone");
  if (s != "-" && tz != "-" && tz != "UTC") s += " (" + tz + ")";
  return s;
}

std::string last_run(const json& d) {
  if (!d.contains("last_run") || !d["last_run"].is_object()) return "-";
  return str(d["last_run"], "state") + " (" + str(d["last_run"], "id") + ")";
}

std::string error_line(const json& e) {
  if (e.is_string()) return e.get<std::string>();
  return str(e, "file") + ":" + str(e, "line") + ":" + str(e, "col") + ": " + str(e, "message");
}

// A param value or bound as text; an int param's whole numbers without a fraction ("1",
// never "1.0"), strings in JSON quotes.
std::string value_text(const json& v, bool is_int) {
  if (is_int && v.is_number_float()) {
    double d = v.get<double>();
    if (d == static_cast<double>(static_cast<long long>(d)))
      return std::to_string(static_cast<long long>(d));
  }
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// "int, default 14, min 1, max 90" / "string, default \"a\", one of \"a\", \"b\" - who"
std::string param_text(const json& spec) {
  if (!spec.is_object()) return spec.dump();
  std::string type = spec.value("type", "");
  bool is_int = type == "int";
  std::string out = type.empty() ? "-" : type;
  if (!spec.contains("default") || spec["default"].is_null())
    out += ", required";
  else
    out += ", default " + value_text(spec["default"], is_int);
  if (spec.contains("min")) out += ", min " + value_text(spec["min"], is_int);
  if (spec.contains("max")) out += ", max " + value_text(spec["max"], is_int);
  if (spec.contains("pattern")) out += ", pattern " + value_text(spec["pattern"], false);
  if (spec.contains("enum") && spec["enum"].is_array()) {
    std::string choices;
    for (auto& c : spec["enum"]) choices += (choices.empty() ? "" : ", ") + value_text(c, is_int);
    out += ", one of " + choices;
  }
  if (spec.contains("description") && spec["description"].is_string())
    out += " - " + spec["description"].get<std::string>();
  return out;
}

int dags_ls(const ReadOptions& c) {
  auto config = client_config(c.client);
  if (!config) return fail(config.message());
  HttpClient client(*config);
  auto res = client.call("GET", "/api/v1/dags");
  if (!res) return fail(res.message());
  if (c.json) {
    std::printf("%s\n", res->dump(2).c_str());
    return kExitOk;
  }
  json dags = res->value("dags", json::array());
  json errors = res->value("errors", json::array());
  if (dags.empty()) {
    std::printf("No DAGs.\n");
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"DAG", "SCHEDULE", "NEXT FIRE", "PAUSED", "LAST RUN"}};
    for (auto& d : dags)
      rows.push_back({str(d, "dag"), schedule_of(d), when(d, "next_fire"),
                      d.value("paused", false) ? "yes" : "no", last_run(d)});
    std::fputs(format_table(rows).c_str(), stdout);
  }
  if (!errors.empty()) {
    std::printf("\nLoad errors:\n");
    for (auto& e : errors) std::printf("  %s\n", error_line(e).c_str());
  }
  return kExitOk;
}

int dags_show(const ReadOptions& c, const std::string& dag) {
  auto config = client_config(c.client);
  if (!config) return fail(config.message());
  HttpClient client(*config);
  auto res = client.call("GET", "/api/v1/dags/" + url_encode(dag));
  if (!res) return fail(res.message());
  const json& d = *res;
  if (c.json) {
    std::printf("%s\n", d.dump(2).c_str());
    return kExitOk;
  }
  std::printf("DAG          %s\n", str(d, "dag").c_str());
  std::printf("File         %s (sha256 %s)\n", str(d, "file").c_str(),
              str(d, "file_hash").substr(0, 12).c_str());
  std::printf("Description  %s\n", str(d, "description").c_str());
  std::printf("Owner        %s\n", str(d, "owner").c_str());
  std::printf("Tags         %s\n", d.contains("tags") ? d["tags"].dump().c_str() : "[]");
  std::printf("Schedule     %s\n", schedule_of(d).c_str());
  std::printf("Next fire    %s\n", when(d, "next_fire").c_str());
  std::printf("Paused       %s\n", d.value("paused", false) ? "yes" : "no");
  std::string tasks;
  for (auto& t : d.value("tasks", json::array()))
    tasks += (tasks.empty() ? "" : ", ") + (t.is_string() ? t.get<std::string>() : t.dump());
  std::printf("Tasks        %s\n", tasks.empty() ? "-" : tasks.c_str());
  json params = d.value("params", json::object());
  if (!params.empty()) {
    std::printf("\nParams:\n");
    for (auto& [name, spec] : params.items())
      std::printf("  %-20s %s\n", name.c_str(), param_text(spec).c_str());
  }
  json errors = d.value("errors", json::array());
  if (!errors.empty()) {
    std::printf("\nLoad errors (the last good version is in use):\n");
    for (auto& e : errors) std::printf("  %s\n", error_line(e).c_str());
  }
  json runs = d.value("runs", json::array());
  std::printf("\nRecent runs:\n");
  if (runs.empty()) {
    std::printf("  none\n");
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"ID", "STATE", "TRIGGER", "LOGICAL DATE", "STARTED"}};
    for (auto& r : runs)
      rows.push_back({str(r, "id"), str(r, "state"),
                      str(r.value("trigger", json::object()), "kind"), when(r, "logical_date"),
                      when(r, "started_at")});
    std::string table = format_table(rows);
    size_t pos = 0;
    while (pos < table.size()) {
      size_t nl = table.find('\n', pos);
      std::printf("  %s\n", table.substr(pos, nl - pos).c_str());
      pos = nl + 1;
    }
  }
  return kExitOk;
}

int cmd_dags(int argc, char** argv) {
  CLI::App app{"List the DAGs the daemon has loaded, or show one.", "drover dags"};
  use_usage_first(app);
  app.footer(
      "Exit codes:\n"
      "  0  success (load errors of broken files are listed, not failures)\n"
      "  1  the daemon refused (e.g. no such DAG) or could not be reached\n"
      "  2  usage error");
  app.require_subcommand(1);
  ReadOptions c;
  std::string dag;
  CLI::App* ls = app.add_subcommand("ls", "List DAGs: schedule, next fire, paused, last run");
  use_usage_first(*ls);
  add_read_options(ls, c);
  CLI::App* show = app.add_subcommand("show", "Show a DAG: file, params, tasks, recent runs");
  use_usage_first(*show);
  show->add_option("dag", dag, "The DAG id")->required();
  add_read_options(show, c);
  if (int rc = parse_args(app, argc, argv, /*help_on_error=*/true); rc >= 0) return rc;
  if (ls->parsed()) return dags_ls(c);
  return dags_show(c, dag);
}

}  // namespace

DROVER_COMMAND("dags", "List the daemon's DAGs and their schedules", cmd_dags);

}  // namespace drover::cli
