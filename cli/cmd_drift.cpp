// `drover drift --reference REF --current REF`: feature drift between two tables, the same
// computation as the `drift` task type (plugins/drift/drift.hpp, docs/drift.md).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/usage_formatter.hpp"
#include "common/fs.hpp"
#include "plugins/dataset_ref.hpp"
#include "plugins/drift/drift.hpp"

namespace drover::cli {
namespace {

constexpr int kExitDrift = 3;

constexpr const char* kFooter =
    "REF is a file path (CSV, TSV or JSON lines, by extension or content).\n"
    "Defaults follow Evidently: numeric columns get KS (p < 0.05) up to 1000 reference\n"
    "values, else normed Wasserstein (>= 0.1); categorical ones chi-square (p < 0.05), else\n"
    "Jensen-Shannon (>= 0.1). Methods: ks, chi2, wasserstein, jensenshannon (js), psi.\n"
    "See docs/drift.md.\n"
    "\nExit codes:\n"
    "  0  no dataset drift\n"
    "  1  error (unreadable or malformed file, bad option value)\n"
    "  2  usage error\n"
    "  3  dataset drift detected\n";

// Maps a REF to a file path. Plain paths only for now; dataset refs (NAME@TAG) and model
// refs (model:NAME@ALIAS) plug in here.
// A REF is a plain file path or a file of a dataset snapshot ("events@reference:train.csv",
// materialized under HOME/cache/refs).
std::string g_home = ".drover";
Result<std::string> resolve_ref(const std::string& ref) {
  if (is_dataset_file_ref(ref)) {
    auto p =
        materialize_dataset_file(g_home, ref, std::filesystem::path(g_home) / "cache" / "refs");
    if (!p) return p.error();
    return p->string();
  }
  return drift::resolve_plain_path(ref);
}

struct Options {
  std::string reference, current, report;
  std::string columns;
  std::vector<std::string> methods, thresholds, types;
  double drift_share = 0.5;
  bool json = false;
};

void print_summary(const drift::json& r) {
  std::printf("%-24s %-11s %-13s %12s %10s  %s\n", "FEATURE", "TYPE", "METHOD", "SCORE",
              "THRESHOLD", "DRIFT");
  for (auto& nm : r["columns"]) {
    const auto& f = r["features"][nm.get<std::string>()];
    std::string score = f["score"].is_number() ? std::to_string(f["score"].get<double>()) : "-";
    if (f["score"].is_number()) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%.6g", f["score"].get<double>());
      score = buf;
    }
    std::printf("%-24s %-11s %-13s %12s %10g  %s\n", nm.get<std::string>().c_str(),
                f["type"].get<std::string>().c_str(), f["method"].get<std::string>().c_str(),
                score.c_str(), f["threshold"].get<double>(),
                f["drift"].get<bool>() ? "yes" : (f.contains("note") ? "untested" : "no"));
  }
  for (const char* key : {"added", "removed"}) {
    for (auto& c : r["schema"][key])
      std::printf("column %s: %s\n", key, c.get<std::string>().c_str());
  }
  for (auto& t : r["schema"]["type_changed"]) {
    std::printf("column type changed: %s (%s -> %s)\n", t["column"].get<std::string>().c_str(),
                t["reference"].get<std::string>().c_str(), t["current"].get<std::string>().c_str());
  }
  std::printf("%s: %d of %d features drifted (share %.4g, threshold %.4g)\n",
              r["drift"].get<bool>() ? "DATASET DRIFT" : "no dataset drift",
              r["n_drifted"].get<int>(), r["n_tested"].get<int>(), r["share"].get<double>(),
              r["drift_share"].get<double>());
}

int run(const Options& o) {
  drift::DriftOptions d;
  auto ref = resolve_ref(o.reference);
  if (!ref.ok()) {
    std::fprintf(stderr, "drover drift: --reference: %s\n", ref.message().c_str());
    return kExitFailure;
  }
  auto cur = resolve_ref(o.current);
  if (!cur.ok()) {
    std::fprintf(stderr, "drover drift: --current: %s\n", cur.message().c_str());
    return kExitFailure;
  }
  d.reference = *ref;
  d.current = *cur;
  d.reference_name = o.reference;
  d.current_name = o.current;
  d.drift_share = o.drift_share;
  if (!o.columns.empty()) {
    size_t start = 0;
    while (start <= o.columns.size()) {
      size_t comma = o.columns.find(',', start);
      if (comma == std::string::npos) comma = o.columns.size();
      std::string c = o.columns.substr(start, comma - start);
      if (!c.empty()) d.columns.push_back(c);
      start = comma + 1;
    }
  }
  for (auto& item : o.methods) {
    auto kv = drift::split_assignment(item);
    if (!kv.ok()) {
      std::fprintf(stderr, "drover drift: --method: %s\n", kv.message().c_str());
      return kExitUsage;
    }
    d.methods[kv->first] = kv->second;
  }
  for (auto& item : o.types) {
    auto kv = drift::split_assignment(item);
    if (!kv.ok()) {
      std::fprintf(stderr, "drover drift: --type: %s\n", kv.message().c_str());
      return kExitUsage;
    }
    d.types[kv->first] = kv->second;
  }
  for (auto& item : o.thresholds) {
    auto kv = drift::split_assignment(item);
    char* end = nullptr;
    double v = kv.ok() ? std::strtod(kv->second.c_str(), &end) : 0;
    if (!kv.ok() || *end != '\0') {
      std::fprintf(stderr, "drover drift: --threshold: expected COLUMN=NUMBER, got \"%s\"\n",
                   item.c_str());
      return kExitUsage;
    }
    d.thresholds[kv->first] = v;
  }
  auto report = drift::compute_drift(d);
  if (!report.ok()) {
    std::fprintf(stderr, "drover drift: %s\n", report.message().c_str());
    return kExitFailure;
  }
  if (!o.report.empty()) {
    Status st = write_file_atomic(o.report, drift::render_html(*report));
    if (!st.ok()) {
      std::fprintf(stderr, "drover drift: --report: %s\n", st.message().c_str());
      return kExitFailure;
    }
  }
  if (o.json) {
    std::printf("%s\n", report->dump(2).c_str());
  } else {
    print_summary(*report);
  }
  return (*report)["drift"].get<bool>() ? kExitDrift : kExitOk;
}

int cmd_drift(int argc, char** argv) {
  CLI::App app(
      "Compare a current dataset with a reference: per-feature statistics and "
      "drift tests.");
  app.name(argv[0]);
  use_usage_first(app);
  app.footer(kFooter);
  Options o;
  app.add_option("--reference", o.reference, "Reference data (REF)")->required();
  app.add_option("--current", o.current, "Current data (REF)")->required();
  app.add_option("--columns", o.columns, "Comma-separated columns to check (default: all)");
  app.add_option("--method", o.methods, "Per-column method, COLUMN=METHOD (repeatable)");
  app.add_option("--threshold", o.thresholds, "Per-column threshold, COLUMN=NUMBER (repeatable)");
  app.add_option("--type", o.types,
                 "Per-column type override, COLUMN=numeric|categorical (repeatable)");
  app.add_option("--drift-share", o.drift_share,
                 "Dataset drift when the share of drifted features reaches this (default 0.5)")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--report", o.report, "Write a self-contained HTML report to this file");
  app.add_flag("--json", o.json, "Print the JSON report");
  app.add_option("--home", g_home, "State folder holding dataset snapshots (default ./.drover)");
  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
  return run(o);
}

}  // namespace

DROVER_COMMAND("drift", "Check feature drift between a reference and a current dataset", cmd_drift);

}  // namespace drover::cli
