// Dataset references for tools that read one file of a snapshot: "REF:PATH", where REF is
// a snapshot ref (NAME@TAG, NAME@latest, a version id or prefix) and PATH a file inside
// that version, e.g. "events@reference:train.csv". Anything without "@" or ":" before a
// path is a plain file path. Thread-safe (no shared state).
#pragma once

#include <filesystem>
#include <string>

#include "common/model_ref.hpp"
#include "common/result.hpp"

namespace drover {

// "model:REF:PATH" (REF as models::parse_model_ref reads it): the file PATH of the dataset
// version that model version was trained on. The daemon resolves it from the registry when
// the try starts (a try cannot read the store) and hands the try "VERSION_ID:PATH".
struct ModelDataRef {
  models::ModelRef model;
  std::string path;
};
bool is_model_data_ref(const std::string& text);  // starts with "model:"
// Errc::Invalid with the reason for a text that starts with "model:" but is not REF:PATH.
Result<ModelDataRef> parse_model_data_ref(const std::string& text);

// True when `text` looks like "REF:PATH" naming a snapshot file (and not a plain path).
bool is_dataset_file_ref(const std::string& text);

// Resolves "REF:PATH" in the registry under `home` and places that file, verified, under
// `dest_dir` with its own name (hard link from the blob store); returns its path. A plain
// path is returned unchanged. Errors name the ref or the missing file (Errc::NotFound).
Result<std::filesystem::path> materialize_dataset_file(const std::filesystem::path& home,
                                                       const std::string& text,
                                                       const std::filesystem::path& dest_dir);

}  // namespace drover
