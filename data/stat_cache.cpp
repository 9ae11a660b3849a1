#include "data/stat_cache.hpp"

#include <sqlite3.h>

#include "common/fs.hpp"

namespace drover::data {

static Error db_error(sqlite3* db, const std::string& what) {
  return make_error("stat cache: " + what + ": " + sqlite3_errmsg(db));
}

Result<std::unique_ptr<StatCache>> StatCache::open(const std::filesystem::path& path,
                                                   int64_t racy_window_ns) {
  if (auto s = make_dirs(path.parent_path()); !s) return s.error();
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    std::string msg = path.string() + ": " + (db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_close(db);
    return make_error(msg);
  }
  sqlite3_busy_timeout(db, 10000);
  // The cache is a hint: losing its last writes on a crash only costs re-hashing.
  const char* kSchema =
      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
      "CREATE TABLE IF NOT EXISTS stat(path BLOB PRIMARY KEY, size INTEGER NOT NULL,"
      " mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, sha256 TEXT NOT NULL) WITHOUT ROWID;";
  char* err = nullptr;
  if (sqlite3_exec(db, kSchema, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = path.string() + ": " + (err ? err : "schema failed");
    sqlite3_free(err);
    sqlite3_close(db);
    return make_error(msg);
  }
  return std::unique_ptr<StatCache>(new StatCache(db, racy_window_ns));
}

StatCache::~StatCache() { sqlite3_close(db_); }

Status StatCache::load(std::string_view root) {
  std::string lo(root), hi(root);
  if (lo.empty() || lo.back() != '/') {
    lo += '/';
    hi += '0';  // '/' + 1: every "root/..." sorts in [lo, hi)
  } else {
    hi.back() = '0';
  }
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "SELECT path, size, mtime_ns, inode, sha256 FROM stat"
                         " WHERE path >= ?1 AND path < ?2",
                         -1, &st, nullptr) != SQLITE_OK)
    return db_error(db_, "load");
  sqlite3_bind_blob(st, 1, lo.data(), static_cast<int>(lo.size()), SQLITE_TRANSIENT);
  sqlite3_bind_blob(st, 2, hi.data(), static_cast<int>(hi.size()), SQLITE_TRANSIENT);
  int rc;
  entries_.reserve(entries_.size() + 1024);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    auto* p = static_cast<const char*>(sqlite3_column_blob(st, 0));
    std::string path(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, 0)));
    Entry e;
    e.st.size = static_cast<uint64_t>(sqlite3_column_int64(st, 1));
    e.st.mtime_ns = sqlite3_column_int64(st, 2);
    e.st.inode = static_cast<uint64_t>(sqlite3_column_int64(st, 3));
    auto* h = reinterpret_cast<const char*>(sqlite3_column_text(st, 4));
    e.sha256 = h ? h : "";
    entries_[std::move(path)] = std::move(e);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return db_error(db_, "load");
  return {};
}

std::optional<std::string> StatCache::lookup(const std::string& path, const FileStat& st) const {
  auto it = entries_.find(path);
  if (it == entries_.end() || !(it->second.st == st)) return std::nullopt;
  return it->second.sha256;
}

bool StatCache::record(const std::string& path, const FileStat& st, const std::string& sha256,
                       int64_t hashed_at_ns) {
  if (st.mtime_ns > hashed_at_ns - racy_window_ns_) return false;
  std::lock_guard<std::mutex> lock(mu_);
  pending_.emplace_back(path, Entry{st, sha256});
  return true;
}

Status StatCache::flush() {
  std::vector<std::pair<std::string, Entry>> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(pending_);
  }
  if (batch.empty()) return {};
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
    return db_error(db_, "begin");
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_,
                         "INSERT OR REPLACE INTO stat(path, size, mtime_ns, inode, sha256)"
                         " VALUES(?1, ?2, ?3, ?4, ?5)",
                         -1, &st, nullptr) != SQLITE_OK) {
    Error e = db_error(db_, "prepare");
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return e;
  }
  for (auto& [path, e] : batch) {
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, path.data(), static_cast<int>(path.size()), SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, static_cast<sqlite3_int64>(e.st.size));
    sqlite3_bind_int64(st, 3, e.st.mtime_ns);
    sqlite3_bind_int64(st, 4, static_cast<sqlite3_int64>(e.st.inode));
    sqlite3_bind_text(st, 5, e.sha256.data(), static_cast<int>(e.sha256.size()), SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
      Error err = db_error(db_, "insert");
      sqlite3_finalize(st);
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return err;
    }
  }
  sqlite3_finalize(st);
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    Error err = db_error(db_, "commit");
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return err;
  }
  for (auto& [path, e] : batch) entries_[path] = std::move(e);
  return {};
}

Status StatCache::forget(const std::set<std::string>& hashes) {
  if (hashes.empty()) return {};
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
    return db_error(db_, "begin");
  sqlite3_stmt* sel = nullptr;
  sqlite3_stmt* del = nullptr;
  auto fail = [&](const char* what) {
    Error e = db_error(db_, what);
    sqlite3_finalize(sel);
    sqlite3_finalize(del);
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return e;
  };
  if (sqlite3_prepare_v2(db_, "SELECT path, sha256 FROM stat", -1, &sel, nullptr) != SQLITE_OK ||
      sqlite3_prepare_v2(db_, "DELETE FROM stat WHERE path = ?1", -1, &del, nullptr) != SQLITE_OK)
    return fail("prepare");
  std::vector<std::string> doomed;
  int rc;
  while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
    auto* h = reinterpret_cast<const char*>(sqlite3_column_text(sel, 1));
    if (!h || !hashes.count(h)) continue;
    auto* p = static_cast<const char*>(sqlite3_column_blob(sel, 0));
    doomed.emplace_back(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(sel, 0)));
  }
  if (rc != SQLITE_DONE) return fail("scan");
  for (auto& path : doomed) {
    sqlite3_reset(del);
    sqlite3_bind_blob(del, 1, path.data(), static_cast<int>(path.size()), SQLITE_STATIC);
    if (sqlite3_step(del) != SQLITE_DONE) return fail("delete");
    entries_.erase(path);
  }
  sqlite3_finalize(sel);
  sqlite3_finalize(del);
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) return fail("commit");
  return {};
}

}  // namespace drover::data
