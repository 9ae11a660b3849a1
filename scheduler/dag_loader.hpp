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

// Files larger than this are refused with a diagnostic at 1:1.
constexpr size_t kMaxDagFileBytes = 1 << 20;

LoadResult load_dag_text(std::string_view text, const std::string& filename);
LoadResult load_dag_file(const std::filesystem::path& path);
// Every *.yaml / *.yml under `dir` (recursively, sorted by path).
std::vector<std::filesystem::path> find_dag_files(const std::filesystem::path& dir);

}  // namespace drover
