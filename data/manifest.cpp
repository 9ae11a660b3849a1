#include "data/manifest.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/blob_store.hpp"

namespace drover::data {

using json = nlohmann::json;

uint64_t Manifest::total_size() const {
  uint64_t n = 0;
  for (auto& e : files) n += e.size;
  return n;
}

size_t Manifest::file_count() const {
  return static_cast<size_t>(std::count_if(
      files.begin(), files.end(), [](auto& e) { return e.kind == ManifestEntry::Kind::File; }));
}

bool is_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    for (size_t k = 1; k <= n; ++k) {
      if (i + k >= s.size()) return false;
      auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += n + 1;
  }
  return true;
}

bool is_safe_relative_path(std::string_view rel) {
  if (rel.empty() || rel.front() == '/' || rel.find('\0') != std::string_view::npos) return false;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t end = rel.find('/', start);
    if (end == std::string_view::npos) end = rel.size();
    std::string_view part = rel.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

static std::string to_hex(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

static bool from_hex(std::string_view h, std::string& out) {
  if (h.size() % 2) return false;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  out.clear();
  for (size_t i = 0; i < h.size(); i += 2) {
    int a = val(h[i]), b = val(h[i + 1]);
    if (a < 0 || b < 0) return false;
    out += static_cast<char>(a * 16 + b);
  }
  return true;
}

static void put_text(json& j, const char* key, const std::string& hex_key,
                     const std::string& value) {
  if (is_utf8(value))
    j[key] = value;
  else
    j[hex_key] = to_hex(value);
}

std::string to_canonical_json(const Manifest& m) {
  json files = json::array();
  for (auto& e : m.files) {
    json j = json::object();
    put_text(j, "path", "path_hex", e.path);
    switch (e.kind) {
      case ManifestEntry::Kind::File:
        j["size"] = e.size;
        j["mode"] = e.mode;
        j["sha256"] = e.sha256;
        break;
      case ManifestEntry::Kind::Symlink:
        put_text(j, "symlink", "symlink_hex", e.target);
        break;
      case ManifestEntry::Kind::Dir:
        j["dir"] = true;
        break;
    }
    files.push_back(std::move(j));
  }
  json root = {{"dataset", m.dataset}, {"files", std::move(files)}};
  return root.dump();
}

static Result<std::string> get_text(const json& j, const char* key, const char* hex_key) {
  if (j.contains(key) && j[key].is_string()) return j[key].get<std::string>();
  if (j.contains(hex_key) && j[hex_key].is_string()) {
    std::string out;
    if (from_hex(j[hex_key].get<std::string>(), out)) return out;
    return make_error(std::string("manifest: bad ") + hex_key);
  }
  return make_error(std::string("manifest: entry without ") + key);
}

Result<Manifest> parse_manifest(std::string_view text) {
  json root;
  try {
    root = json::parse(text);
  } catch (const std::exception& e) {
    return make_error(std::string("manifest: ") + e.what());
  }
  if (!root.is_object() || !root.contains("dataset") || !root["dataset"].is_string() ||
      !root.contains("files") || !root["files"].is_array())
    return make_error("manifest: expected {\"dataset\": ..., \"files\": [...]}");
  Manifest m;
  m.dataset = root["dataset"].get<std::string>();
  for (auto& j : root["files"]) {
    if (!j.is_object()) return make_error("manifest: file entry is not an object");
    ManifestEntry e;
    auto path = get_text(j, "path", "path_hex");
    if (!path) return path.error();
    e.path = std::move(*path);
    if (!is_safe_relative_path(e.path)) return make_error("manifest: unsafe path '" + e.path + "'");
    if (j.contains("sha256")) {
      e.kind = ManifestEntry::Kind::File;
      if (!j["sha256"].is_string() || !BlobStore::valid_hash(j["sha256"].get<std::string>()))
        return make_error("manifest: bad sha256 for '" + e.path + "'");
      e.sha256 = j["sha256"].get<std::string>();
      if (!j.contains("size") || !j["size"].is_number_unsigned())
        return make_error("manifest: bad size for '" + e.path + "'");
      e.size = j["size"].get<uint64_t>();
      if (!j.contains("mode") || !j["mode"].is_number_integer())
        return make_error("manifest: bad mode for '" + e.path + "'");
      e.mode = j["mode"].get<int>() & 07777;
    } else if (j.contains("symlink") || j.contains("symlink_hex")) {
      e.kind = ManifestEntry::Kind::Symlink;
      auto t = get_text(j, "symlink", "symlink_hex");
      if (!t) return t.error();
      e.target = std::move(*t);
    } else if (j.contains("dir")) {
      e.kind = ManifestEntry::Kind::Dir;
    } else {
      return make_error("manifest: entry '" + e.path + "' is neither file, symlink nor dir");
    }
    if (!m.files.empty() && !(m.files.back().path < e.path))
      return make_error("manifest: entries not sorted or duplicated at '" + e.path + "'");
    m.files.push_back(std::move(e));
  }
  return m;
}

}  // namespace drover::data
