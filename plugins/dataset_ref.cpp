#include "plugins/dataset_ref.hpp"

#include "common/fs.hpp"
#include "data/registry.hpp"

namespace drover {

namespace fs = std::filesystem;

bool is_model_data_ref(const std::string& text) { return text.rfind("model:", 0) == 0; }

Result<ModelDataRef> parse_model_data_ref(const std::string& text) {
  if (!is_model_data_ref(text))
    return make_error("'" + text + "' is not a model:REF:PATH reference", Errc::Invalid);
  std::string rest = text.substr(6);
  auto colon = rest.find(':');
  if (colon == std::string::npos || colon + 1 >= rest.size())
    return make_error("'" + text + "': a model reference is model:NAME@ALIAS:PATH (or NAME/V)",
                      Errc::Invalid);
  auto ref = models::parse_model_ref(rest.substr(0, colon));
  if (!ref) return make_error("'" + text + "': " + ref.message(), Errc::Invalid);
  return ModelDataRef{std::move(*ref), rest.substr(colon + 1)};
}

bool is_dataset_file_ref(const std::string& text) {
  auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= text.size()) return false;
  std::string ref = text.substr(0, colon);
  if (ref.find('/') != std::string::npos) return false;
  if (ref.find('@') != std::string::npos) return true;
  // A bare version id or prefix: at least 8 hex digits.
  if (ref.size() < 8) return false;
  for (char c : ref)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Result<fs::path> materialize_dataset_file(const fs::path& home, const std::string& text,
                                          const fs::path& dest_dir) {
  if (!is_dataset_file_ref(text)) return fs::path(text);
  auto colon = text.find(':');
  std::string ref = text.substr(0, colon), path = text.substr(colon + 1);
  data::Registry reg(home);
  auto version = reg.resolve(ref);
  if (!version) return version.error();
  auto manifest = reg.load(*version);
  if (!manifest) return manifest.error();
  for (auto& e : manifest->files) {
    if (e.path != path || e.kind != data::ManifestEntry::Kind::File) continue;
    if (auto s = reg.blobs().verify(e.sha256); !s) return s.error();
    fs::path dest = dest_dir / (version->substr(0, 12) + "-" + fs::path(path).filename().string());
    if (auto s = make_dirs(dest_dir); !s) return s.error();
    std::error_code ec;
    if (!fs::exists(dest, ec))
      if (auto s = reg.blobs().materialize(e.sha256, dest); !s) return s.error();
    return dest;
  }
  return make_error(
      "no file '" + path + "' in " + ref + " (version " + version->substr(0, 12) + ")",
      Errc::NotFound);
}

}  // namespace drover
