// The `snapshot` task type (DESIGN.md §6): with: {path: data/events, dataset: events,
// tag: optional, message: optional}. Makes a dataset version of `path` (relative to the
// project dir unless absolute) in the drover home, publishes `version` and `dataset` as
// values and every file of the version as an output, so downstream tasks read them under
// {{ inputs.TASK.path }}. Stateless; thread-safe.
#include <cstdio>
#include <filesystem>

#include "common/redact.hpp"
#include "data/progress.hpp"
#include "data/registry.hpp"
#include "plugins/task_type.hpp"

namespace drover {
namespace {

namespace fs = std::filesystem;

class SnapshotTaskType final : public TaskType {
 public:
  std::string_view name() const override { return "snapshot"; }

  void validate(const json& with, std::vector<ConfigError>& errors) const override {
    if (!with.is_object()) {
      errors.push_back({"", "snapshot task needs 'with: {path: ..., dataset: ...}'"});
      return;
    }
    check_known_keys(with, {"path", "dataset", "tag", "message"}, "snapshot", errors);
    for (const char* key : {"path", "dataset"}) {
      if (!with.contains(key))
        errors.push_back({"", std::string("snapshot task needs '") + key + "'"});
      else if (!with[key].is_string() || with[key].get<std::string>().empty())
        errors.push_back({key, std::string("'") + key + "' must be a non-empty string"});
    }
    if (with.contains("dataset") && with["dataset"].is_string() && !is_template(with["dataset"]) &&
        !with["dataset"].get<std::string>().empty() &&
        !data::valid_dataset_name(with["dataset"].get<std::string>()))
      errors.push_back({"dataset", "invalid dataset name '" + with["dataset"].get<std::string>() +
                                       "': use [a-z0-9_.-]+"});
    if (with.contains("tag")) {
      if (!with["tag"].is_string())
        errors.push_back({"tag", "'tag' must be a string"});
      else if (!is_template(with["tag"]) && !data::valid_tag_name(with["tag"].get<std::string>()))
        errors.push_back({"tag", "invalid tag '" + with["tag"].get<std::string>() +
                                     "': use [A-Za-z0-9_.-]+ (and not 'latest')"});
    }
    if (with.contains("message") && !with["message"].is_string())
      errors.push_back({"message", "'message' must be a string"});
  }

  std::vector<std::string> published_keys(const json&) const override {
    return {"version", "dataset"};
  }

  int run(TaskContext& ctx) const override {
    const json& w = ctx.spec.with;
    std::string path = w.value("path", std::string());
    std::string dataset = w.value("dataset", std::string());
    std::string tag = w.value("tag", std::string());
    // A message rendered from a secret reaches the dataset's log masked, as the task's log does.
    std::string message = Redactor::redact(w.value("message", std::string()), ctx.spec.redact);
    if (message.empty())
      message = "run " + ctx.spec.run_id + " task " + ctx.spec.task + " try " +
                std::to_string(ctx.spec.try_number);
    fs::path src(path);
    if (src.is_relative() && !ctx.spec.project_dir.empty())
      src = fs::path(ctx.spec.project_dir) / src;
    fs::path home =
        ctx.spec.home.empty() ? ctx.blobs.root().parent_path() : fs::path(ctx.spec.home);
    data::Registry reg(home);
    auto res = reg.add(src, dataset, tag, message);
    if (!res) {
      std::fprintf(stderr, "snapshot: %s\n", res.message().c_str());
      return 1;
    }
    ctx.publish.value("version", res->version);
    ctx.publish.value("dataset", dataset);
    for (auto& e : res->manifest.files) {
      if (e.kind != data::ManifestEntry::Kind::File) continue;
      FileEntry f;
      f.path = e.path;
      f.sha256 = e.sha256;
      f.size = e.size;
      f.mode = e.mode;
      ctx.publish.file(f);
    }
    const auto& s = res->stats;
    std::printf("snapshot: %s@%s -> %s\n", dataset.c_str(), tag.empty() ? "latest" : tag.c_str(),
                res->version.c_str());
    std::printf(
        "snapshot: %llu files, %llu symlinks, %llu empty folders, %s; hashed %llu "
        "(%s read), %llu unchanged (stat cache)\n",
        static_cast<unsigned long long>(s.files), static_cast<unsigned long long>(s.symlinks),
        static_cast<unsigned long long>(s.dirs), data::human_bytes(s.bytes_total).c_str(),
        static_cast<unsigned long long>(s.files_hashed), data::human_bytes(s.bytes_read).c_str(),
        static_cast<unsigned long long>(s.cache_hits));
    if (s.symlinks || s.dirs)
      std::printf(
          "snapshot: note: symlinks and empty folders are in the version but not in "
          "the task's outputs (check the version out to get them)\n");
    std::fflush(stdout);
    return 0;
  }
};

}  // namespace

std::unique_ptr<TaskType> make_snapshot_task_type() { return std::make_unique<SnapshotTaskType>(); }

}  // namespace drover
