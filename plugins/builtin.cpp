// The one registration point of the built-in task types: one line per type.
#include "plugins/task_type.hpp"

namespace drover {

std::unique_ptr<TaskType> make_command_task_type();
std::unique_ptr<TaskType> make_mock_task_type();
std::unique_ptr<TaskType> make_snapshot_task_type();
std::unique_ptr<TaskType> make_drift_task_type();
std::unique_ptr<TaskType> make_train_task_type();
std::unique_ptr<TaskType> make_validate_task_type();
std::unique_ptr<TaskType> make_promote_task_type();
std::unique_ptr<TaskType> make_upload_task_type();

void register_builtin_task_types() {
  static bool done = false;
  if (done) return;
  done = true;
  auto& r = TaskTypeRegistry::instance();
  r.add(make_command_task_type());
  r.add(make_mock_task_type());
  r.add(make_snapshot_task_type());
  r.add(make_drift_task_type());
  r.add(make_train_task_type());
  r.add(make_validate_task_type());
  r.add(make_promote_task_type());
  r.add(make_upload_task_type());
}

}  // namespace drover
