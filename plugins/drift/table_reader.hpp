// TableReader: a streaming reader of tabular files for drift checks — CSV/TSV (RFC 4180:
// quoted fields, doubled quotes, embedded newlines, CRLF) and JSON lines — one record at a
// time, in bounded memory. Malformed input is an error value `FILE:LINE: message`.
// Implemented in table_reader.cpp; one reader per thread (not thread-safe).
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace drover::drift {

enum class TableFormat { Csv, Tsv, Jsonl };

// A field of the current record. `missing` is set for JSON null and keys absent from a JSON
// line; CSV fields are never missing here (the caller decides what text means missing).
struct Field {
  std::string_view text;
  bool missing = false;
};

class TableReader {
 public:
  virtual ~TableReader() = default;
  // Opens `path`; the format comes from the extension (.csv, .tsv/.tab, .jsonl/.ndjson/.json),
  // else from the first byte ('{' means JSON lines, else CSV; tab-separated if the first line
  // has a tab and no comma). Reads the CSV header. `display` names the file in errors
  // (defaults to `path`).
  static Result<std::unique_ptr<TableReader>> open(const std::string& path,
                                                   std::string display = {});
  // A reader over an in-memory text (for tests).
  static Result<std::unique_ptr<TableReader>> from_string(std::string text, TableFormat format,
                                                          std::string display);

  // Column names known so far (CSV: the header; JSON lines: keys in order of first sight,
  // so the list may grow while reading).
  virtual const std::vector<std::string>& columns() const = 0;
  // Reads the next record: `fields` gets one entry per column (views valid until the next
  // call). Returns false at the end of the input; blank lines are skipped.
  virtual Result<bool> next(std::vector<Field>& fields) = 0;
  // The 1-based line where the last record returned began.
  virtual long long line() const = 0;
  virtual TableFormat format() const = 0;
};

}  // namespace drover::drift
