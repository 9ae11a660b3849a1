// Feature drift between a reference table and a current one (DESIGN.md §6, the `drift`
// row; docs/drift.md): per-column profiles, tests chosen by Evidently's default rules or per
// column, the dataset verdict, schema and range checks, and the JSON and HTML reports.
// Implemented in drift.cpp and report_html.cpp; the functions are thread-safe.
#pragma once

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace drover::drift {

using json = nlohmann::json;

struct DriftOptions {
  std::string reference;  // file paths (CSV, TSV or JSON lines)
  std::string current;
  std::vector<std::string> columns;            // empty: every column of the reference
  std::map<std::string, std::string> methods;  // column -> ks|chi2|wasserstein|jensenshannon|psi
  std::map<std::string, double> thresholds;    // column -> threshold of its method
  std::map<std::string, std::string> types;    // column -> numeric|categorical
  double drift_share = 0.5;                    // dataset drift when drifted share >= this
  // How the files are named in the report and in errors (default: the paths).
  std::string reference_name, current_name;
};

// Reads both files and computes the report (schema in docs/drift.md): {"drift", "share",
// "features": {NAME: {"type", "method", "score", "threshold", "drift", "n_reference",
// "n_current", "missing_share", "stats": {...}}}, "schema", ...}. Errors: unreadable or
// malformed files (`FILE:LINE: message`), unknown methods or types, a requested column
// absent from a file, a method that does not fit the column's type.
Result<json> compute_drift(const DriftOptions& options);

// A self-contained HTML page for a report from compute_drift: a summary, a table of the
// features, and reference-vs-current histograms as inline SVG. No external assets.
std::string render_html(const json& report);

// The canonical method name for a name or alias ("js" -> "jensenshannon", "chisquare" ->
// "chi2", "wasserstein_normed" -> "wasserstein"); an error for an unknown name.
Result<std::string> canonical_method(const std::string& name);

// Maps a user's REF (a plain path today; dataset and model refs resolved by the caller's
// resolver later) to a readable file path.
using RefResolver = std::function<Result<std::string>(const std::string& ref)>;
Result<std::string> resolve_plain_path(const std::string& ref);

// Parses "col=value" items (CLI --method/--threshold/--type); the error names the item.
Result<std::pair<std::string, std::string>> split_assignment(const std::string& item);

}  // namespace drover::drift
