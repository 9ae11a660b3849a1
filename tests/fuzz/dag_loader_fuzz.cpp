// libFuzzer target for the DAG loader (scheduler/dag_loader.hpp): any bytes must give a
// DagSpec or diagnostics, in bounded time and memory, never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "plugins/task_type.hpp"
#include "scheduler/dag_loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool registered = (drover::register_builtin_task_types(), true);
  (void)registered;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  drover::LoadResult r = drover::load_dag_text(text, "fuzz.yaml");
  // Exactly one of a DAG or diagnostics, and every diagnostic has a position.
  if ((r.dag != nullptr) == !r.diagnostics.empty()) std::abort();
  for (const auto& d : r.diagnostics)
    if (d.line < 1 || d.col < 1 || d.message.empty()) std::abort();
  if (r.dag) {
    for (const auto& t : r.dag->tasks) {
      for (const auto& n : t.needs) {
        // Topological order: every need comes before the task.
        bool before = false;
        for (const auto& u : r.dag->tasks) {
          if (&u == &t) break;
          if (u.id == n) before = true;
        }
        if (!before) std::abort();
      }
    }
  }
  return 0;
}
