// Manifest: the content of one dataset version — every file (path, size, mode, SHA-256),
// symlink and empty folder, sorted by path — and its canonical JSON, whose SHA-256 is the
// version id. Pure value type and functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace drover::data {

struct ManifestEntry {
  enum class Kind { File, Symlink, Dir };
  Kind kind = Kind::File;
  std::string path;    // relative, '/'-separated raw bytes (may be non-UTF-8)
  uint64_t size = 0;   // File only
  int mode = 0644;     // File only: permission bits (07777)
  std::string sha256;  // File only
  std::string target;  // Symlink only: the link text, raw bytes

  bool operator==(const ManifestEntry&) const = default;
};

struct Manifest {
  std::string dataset;
  std::vector<ManifestEntry> files;  // sorted by path (byte order), unique

  uint64_t total_size() const;
  size_t file_count() const;  // regular files only
};

// Canonical JSON: keys sorted, no whitespace, entries sorted by path. A path or link target
// that is not valid UTF-8 is stored hex-encoded as "path_hex" / "symlink_hex".
std::string to_canonical_json(const Manifest& m);
// Parses a manifest and checks it is safe to check out: relative paths without "." / ".."
// components, valid hashes, no duplicates. Errors name the offending field.
Result<Manifest> parse_manifest(std::string_view json_text);
// Whether `s` is valid UTF-8.
bool is_utf8(std::string_view s);
// Whether `rel` is a safe relative path: non-empty, not absolute, no empty / "." / ".."
// components, no NUL.
bool is_safe_relative_path(std::string_view rel);

}  // namespace drover::data
