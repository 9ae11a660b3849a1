// Loads and validates DAG files into DagSpec. Collects every diagnostic of a file (never
// just the first), each with file:line:col. Bounded in time and memory for hostile input
// (alias bombs, deep nesting, huge or binary files). Pure functions; thread-safe.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/dag.hpp"

namespace drover {

struct LoadResult {
  DagPtr dag;                           // null when there are errors
  std::vector<Diagnostic> diagnostics;  // empty when dag is set
};

// The default of DagLimits::max_file_bytes.
constexpr size_t kMaxDagFileBytes = 1 << 20;

// How big a DAG file may be. Past either limit a file is refused with one diagnostic at 1:1
// that names the limit. The defaults bound hand-written DAGs; an operator raises them for big
// generated ones in the server config (`dags:`, docs/alerts.md), which accepts values from
// kMinDagLimits to kMaxDagLimits. The loader itself takes any values.
struct DagLimits {
  size_t max_file_bytes = kMaxDagFileBytes;  // bytes; a larger file is not read
  size_t max_yaml_nodes = 100000;            // YAML nodes visited, aliases counted each time
};
constexpr DagLimits kMinDagLimits{1024, 1000};
constexpr DagLimits kMaxDagLimits{size_t{256} << 20, 20000000};

LoadResult load_dag_text(std::string_view text, const std::string& filename,
                         const DagLimits& limits = {});
LoadResult load_dag_file(const std::filesystem::path& path, const DagLimits& limits = {});
// Every *.yaml / *.yml under `dir` (recursively, sorted by path).
std::vector<std::filesystem::path> find_dag_files(const std::filesystem::path& dir);

}  // namespace drover
