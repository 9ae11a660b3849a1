// `drover snapshot ...`: the dataset registry's CLI (data/registry.hpp) —
// add, status, ls, show, diff, checkout, tag, push, pull, gc. State lives under --home
// (default ./.drover). See docs/data.md.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "cli/cli_util.hpp"
#include "cli/command.hpp"
#include "cli/engine_setup.hpp"
#include "cli/usage_formatter.hpp"
#include "common/blob_store.hpp"
#include "common/fs.hpp"
#include "common/time.hpp"
#include "common/utf8.hpp"
#include "data/http_remote.hpp"
#include "data/progress.hpp"
#include "data/registry.hpp"
#include "scheduler/store.hpp"

namespace drover::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using namespace drover::data;

constexpr const char* kExitCodes =
    "\nExit codes:\n"
    "  0  success\n"
    "  1  failure (unknown REF, I/O error, a file changed while hashed, corrupt blob ...)\n"
    "  2  usage error\n";

constexpr const char* kRefHelp =
    "REF is NAME@TAG, NAME@latest, a version id, or a unique version-id prefix "
    "(at least 8 hex digits).\n";

std::string dump(const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); }

int fail(const std::string& msg) {
  std::fprintf(stderr, "drover snapshot: %s\n", msg.c_str());
  return kExitFailure;
}

std::string mode_string(const ManifestEntry& e) {
  if (e.kind == ManifestEntry::Kind::Symlink) return "lrwxrwxrwx";
  if (e.kind == ManifestEntry::Kind::Dir) return "drwxr-xr-x";
  std::string s = "-";
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) s += (e.mode & (0400 >> i)) ? rwx[i] : '-';
  return s;
}

struct Options {
  std::string home = ".drover";
  std::string path, dataset, tag, message;
  std::string ref, ref2, dest, remote, token_file;
  std::vector<std::string> keep_files;
  std::string grace = "1h";
  bool json = false, link = false, dry_run = false;
};

int do_add(const Options& o) {
  Registry reg(o.home);
  SnapshotOptions so;
  so.progress = Progress::stderr_is_terminal();
  auto r = reg.add(o.path, o.dataset, o.tag, o.message, so);
  if (!r) return fail(r.message());
  const auto& s = r->stats;
  std::fprintf(stderr,
               "%s: %llu files (%s), %llu symlinks, %llu empty folders; hashed %llu (%s read), "
               "%llu unchanged\n",
               o.dataset.c_str(), static_cast<unsigned long long>(s.files),
               human_bytes(s.bytes_total).c_str(), static_cast<unsigned long long>(s.symlinks),
               static_cast<unsigned long long>(s.dirs),
               static_cast<unsigned long long>(s.files_hashed), human_bytes(s.bytes_read).c_str(),
               static_cast<unsigned long long>(s.cache_hits));
  std::printf("%s\n", r->version.c_str());
  return kExitOk;
}

std::vector<std::string> tags_of(const std::map<std::string, std::string>& tags,
                                 const std::string& version) {
  std::vector<std::string> out;
  for (auto& [t, v] : tags)
    if (v == version) out.push_back(t);
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

int do_ls(const Options& o) {
  Registry reg(o.home);
  if (o.dataset.empty()) {
    json list = json::array();
    if (!o.json)
      std::printf("%-24s %8s  %-12s  %-27s  %s\n", "DATASET", "VERSIONS", "LATEST", "UPDATED",
                  "TAGS");
    for (auto& name : reg.datasets()) {
      auto log = reg.log(name);
      if (!log) return fail(log.message());
      auto latest = reg.latest(name).value_or("");
      auto tags = reg.tags(name);
      std::vector<std::string> tag_names;
      for (auto& [t, v] : tags) tag_names.push_back(t);
      std::string updated = log->empty() ? "" : log->back().time;
      if (o.json) {
        list.push_back({{"name", name},
                        {"versions", log->size()},
                        {"latest", latest},
                        {"updated", updated},
                        {"tags", tags}});
      } else {
        std::printf("%-24s %8zu  %-12s  %-27s  %s\n", name.c_str(), log->size(),
                    latest.substr(0, 12).c_str(), updated.c_str(), join(tag_names).c_str());
      }
    }
    if (o.json) std::printf("%s\n", dump(list).c_str());
    return kExitOk;
  }
  if (!reg.has_dataset(o.dataset)) return fail("unknown dataset '" + o.dataset + "'");
  auto log = reg.log(o.dataset);
  if (!log) return fail(log.message());
  auto tags = reg.tags(o.dataset);
  auto latest = reg.latest(o.dataset).value_or("");
  json list = json::array();
  if (!o.json)
    std::printf("%-27s  %-12s  %7s  %10s  %-16s  %s\n", "TIME", "VERSION", "FILES", "SIZE", "TAGS",
                "MESSAGE");
  for (auto it = log->rbegin(); it != log->rend(); ++it) {
    auto m = reg.load(it->version);
    size_t files = m ? m->file_count() : 0;
    uint64_t size = m ? m->total_size() : 0;
    auto t = tags_of(tags, it->version);
    if (it->version == latest && it == log->rbegin()) t.insert(t.begin(), "latest");
    if (o.json) {
      json j = {{"time", it->time}, {"version", it->version}, {"files", files},   {"size", size},
                {"tags", t},        {"message", it->message}, {"present", m.ok()}};
      list.push_back(std::move(j));
    } else {
      std::printf("%-27s  %-12s  %7zu  %10s  %-16s  %s\n", it->time.c_str(),
                  it->version.substr(0, 12).c_str(), files,
                  m ? human_bytes(size).c_str() : "(missing)", join(t).c_str(),
                  printable(it->message).c_str());
    }
  }
  if (o.json) std::printf("%s\n", dump(list).c_str());
  return kExitOk;
}

int do_show(const Options& o) {
  Registry reg(o.home);
  auto v = reg.resolve(o.ref);
  if (!v) return fail(v.message());
  auto m = reg.load(*v);
  if (!m) return fail(m.message());
  if (o.json) {
    json j = json::parse(to_canonical_json(*m));
    j["version"] = *v;
    j["file_count"] = m->file_count();
    j["size"] = m->total_size();
    std::printf("%s\n", dump(j).c_str());
    return kExitOk;
  }
  std::printf("version  %s\ndataset  %s\nfiles    %zu (%s)\n\n", v->c_str(), m->dataset.c_str(),
              m->file_count(), human_bytes(m->total_size()).c_str());
  for (auto& e : m->files) {
    if (e.kind == ManifestEntry::Kind::File)
      std::printf("%s %12llu  %s  %s\n", mode_string(e).c_str(),
                  static_cast<unsigned long long>(e.size), e.sha256.substr(0, 12).c_str(),
                  printable(e.path).c_str());
    else if (e.kind == ManifestEntry::Kind::Symlink)
      std::printf("%s %12s  %-12s  %s -> %s\n", mode_string(e).c_str(), "-", "",
                  printable(e.path).c_str(), printable(e.target).c_str());
    else
      std::printf("%s %12s  %-12s  %s/\n", mode_string(e).c_str(), "-", "",
                  printable(e.path).c_str());
  }
  return kExitOk;
}

// Prints a diff: one line per path then a count, or (json) `head` plus added/removed/changed.
int print_diff(const Diff& d, json j, bool as_json) {
  if (as_json) {
    j["added"] = json::array();
    j["removed"] = json::array();
    j["changed"] = json::array();
    for (auto& e : d.added) j["added"].push_back({{"path", e.path}, {"size", e.new_size}});
    for (auto& e : d.removed) j["removed"].push_back({{"path", e.path}, {"size", e.old_size}});
    for (auto& e : d.changed)
      j["changed"].push_back({{"path", e.path},
                              {"old_size", e.old_size},
                              {"new_size", e.new_size},
                              {"old_sha256", e.old_sha256},
                              {"new_sha256", e.new_sha256}});
    std::printf("%s\n", dump(j).c_str());
    return kExitOk;
  }
  for (auto& e : d.added)
    std::printf("added    %s  (%llu bytes)\n", printable(e.path).c_str(),
                static_cast<unsigned long long>(e.new_size));
  for (auto& e : d.removed)
    std::printf("removed  %s  (%llu bytes)\n", printable(e.path).c_str(),
                static_cast<unsigned long long>(e.old_size));
  for (auto& e : d.changed)
    std::printf("changed  %s  (%llu -> %llu bytes)\n", printable(e.path).c_str(),
                static_cast<unsigned long long>(e.old_size),
                static_cast<unsigned long long>(e.new_size));
  std::printf("%zu added, %zu removed, %zu changed\n", d.added.size(), d.removed.size(),
              d.changed.size());
  return kExitOk;
}

int do_diff(const Options& o) {
  Registry reg(o.home);
  auto a = reg.resolve(o.ref);
  if (!a) return fail(a.message());
  auto b = reg.resolve(o.ref2);
  if (!b) return fail(b.message());
  auto ma = reg.load(*a);
  if (!ma) return fail(ma.message());
  auto mb = reg.load(*b);
  if (!mb) return fail(mb.message());
  return print_diff(diff_manifests(*ma, *mb), json{{"from", *a}, {"to", *b}}, o.json);
}

int do_status(const Options& o) {
  Registry reg(o.home);
  SnapshotOptions so;
  so.progress = Progress::stderr_is_terminal();
  auto r = reg.status(o.path, o.dataset, o.ref, so);
  if (!r) return fail(r.message());
  const Diff& d = r->diff;
  bool clean = d.added.empty() && d.removed.empty() && d.changed.empty();
  if (!o.json) {
    std::printf("%s against %s (%s)%s\n", o.path.c_str(),
                o.ref.empty() ? (o.dataset + "@latest").c_str() : o.ref.c_str(),
                r->against.substr(0, 12).c_str(), clean ? ": unchanged" : "");
    if (clean) return kExitOk;
  }
  return print_diff(d, json{{"against", r->against}, {"unchanged", clean}}, o.json);
}

int do_checkout(const Options& o) {
  Registry reg(o.home);
  CheckoutOptions co;
  co.link_always = o.link;
  co.progress = Progress::stderr_is_terminal();
  auto v = reg.resolve(o.ref);
  if (!v) return fail(v.message());
  if (auto s = reg.checkout(*v, o.dest, co); !s) return fail(s.message());
  std::fprintf(stderr, "checked out %s into %s\n", v->c_str(), o.dest.c_str());
  return kExitOk;
}

int do_tag(const Options& o) {
  Registry reg(o.home);
  if (auto s = reg.set_tag(o.ref, o.tag); !s) return fail(s.message());
  auto v = reg.resolve(o.ref);
  std::fprintf(stderr, "tagged %s as %s\n", v ? v->c_str() : o.ref.c_str(), o.tag.c_str());
  return kExitOk;
}

int do_transfer(const Options& o, bool push) {
  Registry reg(o.home);
  if (!o.token_file.empty() && !HttpRemote::is_http_url(o.remote))
    return fail("--token-file is for http(s):// remotes (a drover daemon)");
  auto remote = [&]() -> Result<std::unique_ptr<Remote>> {
    if (!HttpRemote::is_http_url(o.remote)) return open_remote(o.remote);
    auto h = HttpRemote::open(o.remote, o.token_file);
    if (!h) return h.error();
    return std::unique_ptr<Remote>(std::move(*h));
  }();
  if (!remote) return fail(remote.message());
  bool progress = Progress::stderr_is_terminal();
  auto r = push ? reg.push(o.ref, **remote, progress) : reg.pull(o.ref, **remote, progress);
  if (!r) return fail(r.message());
  if (o.json) {
    json j = {{"version", r->version},
              {"blobs_sent", r->blobs_sent},
              {"bytes_sent", r->bytes_sent},
              {"blobs_skipped", r->blobs_skipped}};
    std::printf("%s\n", dump(j).c_str());
    return kExitOk;
  }
  std::printf("%s %s: %llu blobs %s (%s), %llu already %s\n", push ? "pushed" : "pulled",
              r->version.c_str(), static_cast<unsigned long long>(r->blobs_sent),
              push ? "sent" : "fetched", human_bytes(r->bytes_sent).c_str(),
              static_cast<unsigned long long>(r->blobs_skipped), push ? "there" : "here");
  return kExitOk;
}

int do_gc(const Options& o) {
  Registry reg(o.home);
  GcOptions g;
  auto grace = parse_duration(o.grace);
  if (o.grace == "0" || o.grace == "0s") {
    g.grace_seconds = 0;
  } else if (!grace) {
    return fail("--grace: " + grace.message());
  } else {
    g.grace_seconds = grace->count() / 1'000'000;
  }
  g.dry_run = o.dry_run;
  g.on_wait = [] {
    std::fprintf(stderr, "gc: waiting for a snapshot add or pull in progress to finish\n");
  };
  for (auto& f : o.keep_files) {
    auto text = read_file(f);
    if (!text) return fail(text.message());
    std::istringstream in(*text);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      if (!BlobStore::valid_hash(line))
        return fail(f + ":" + std::to_string(n) + ": not a SHA-256 hash: '" + line + "'");
      g.keep.insert(line);
    }
  }
  // Blobs that recorded runs reference (their files and published snapshot versions).
  if (fs::path db = store_path(o.home); fs::exists(db)) {
    auto store = open_sqlite_store(db);
    if (!store) return fail(db.string() + ": " + store.message());
    auto refs = (*store)->referenced_hashes();
    if (!refs) return fail(db.string() + ": " + refs.message());
    g.keep.insert(refs->begin(), refs->end());
  }
  auto r = reg.gc(g);
  if (!r) return fail(r.message());
  if (o.json) {
    json j = {{"blobs_deleted", r->blobs_deleted},
              {"bytes_freed", r->bytes_freed},
              {"blobs_kept", r->blobs_kept},
              {"dry_run", o.dry_run}};
    std::printf("%s\n", dump(j).c_str());
    return kExitOk;
  }
  std::printf("%s %llu blobs, freed %llu bytes (%s); %llu kept\n",
              o.dry_run ? "would delete" : "deleted",
              static_cast<unsigned long long>(r->blobs_deleted),
              static_cast<unsigned long long>(r->bytes_freed), human_bytes(r->bytes_freed).c_str(),
              static_cast<unsigned long long>(r->blobs_kept));
  return kExitOk;
}

int cmd_snapshot(int argc, char** argv) {
  CLI::App app;
  app.name(argv[0]);
  use_usage_first(app);
  app.description("Dataset snapshots: content-addressed, deduplicated versions of data folders.");
  app.footer(std::string(kRefHelp) +
             "State lives under --home (default ./.drover). See "
             "docs/data.md.\n" +
             kExitCodes);
  app.require_subcommand(1);
  Options o;
  auto sub = [&](const char* name, const char* what, const char* footer) {
    CLI::App* s = app.add_subcommand(name, what);
    s->add_option("--home", o.home, "Drover home (default ./.drover)");
    s->footer(std::string(footer) + kExitCodes);
    return s;
  };

  auto* add = sub("add", "Snapshot PATH as a new version of a dataset; prints the version id",
                  "Example: drover snapshot add data/events --dataset events --tag 2026-w47\n"
                  "Unchanged files (same path, size, mtime, inode) are not read again.\n");
  add->add_option("PATH", o.path, "Folder or file to snapshot")->required();
  add->add_option("--dataset,-d", o.dataset, "Dataset name, [a-z0-9_.-]+")->required();
  add->add_option("--tag,-t", o.tag, "Also tag the version");
  add->add_option("-m,--message", o.message, "A note stored in the dataset's log");

  auto* ls = sub("ls", "List datasets, or the versions of one (newest first)",
                 "Example: drover snapshot ls events --json\n");
  ls->add_option("NAME", o.dataset, "Dataset name");
  ls->add_flag("--json", o.json, "Print JSON");

  auto* show = sub("show", "List the files of a version", kRefHelp);
  show->add_option("REF", o.ref, "Version")->required();
  show->add_flag("--json", o.json, "Print the manifest as JSON");

  auto* diff = sub("diff", "Files added, removed and changed between two versions", kRefHelp);
  diff->add_option("FROM", o.ref, "Older version")->required();
  diff->add_option("TO", o.ref2, "Newer version")->required();
  diff->add_flag("--json", o.json, "Print JSON");

  auto* status = sub("status",
                     "What adding PATH would change against the dataset's latest version (or\n"
                     "--against REF): files added, removed and changed. Nothing is stored.",
                     "Example: drover snapshot status data/events --dataset events\n");
  status->add_option("PATH", o.path, "Folder or file to compare")->required();
  status->add_option("--dataset,-d", o.dataset, "Dataset name")->required();
  status->add_option("--against", o.ref, "Version to compare with (default NAME@latest)");
  status->add_flag("--json", o.json, "Print JSON");

  auto* co = sub("checkout", "Materialize a version into DEST (must not exist or be empty)",
                 "Files are copies (reflinks where the filesystem shares extents), verified\n"
                 "against their hashes, with their recorded mode (only its x bits and 0644).\n"
                 "--link hard-links them from the store instead: no copy, but the files are the\n"
                 "store's own, and a write to one as root corrupts the store.\n");
  co->add_option("REF", o.ref, "Version")->required();
  co->add_option("DEST", o.dest, "Destination folder")->required();
  co->add_flag("--link", o.link,
               "Hard-link every file from the store (read-only; root can still write them)");

  auto* tag = sub("tag", "Point tag T of the version's dataset at REF", kRefHelp);
  tag->add_option("REF", o.ref, "Version")->required();
  tag->add_option("TAG", o.tag, "Tag name, [A-Za-z0-9_.-]+")->required();

  const char* kRemoteHelp =
      "R is a folder, file:///path, s3://bucket/prefix (env: DROVER_S3_ENDPOINT,\n"
      "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION), or http(s)://HOST:PORT, a\n"
      "drover daemon's blob API (token: env DROVER_TOKEN or --token-file). Only missing\n"
      "blobs move.\n";
  auto* push = sub("push", "Send a version to a remote", kRemoteHelp);
  push->add_option("REF", o.ref, "Version")->required();
  push->add_option("--remote,-r", o.remote, "Remote URL")->required();
  push->add_option("--token-file", o.token_file, "Bearer token file for an http(s):// remote");
  push->add_flag("--json", o.json, "Print JSON");
  auto* pull =
      sub("pull", "Fetch a version (NAME@TAG, NAME@latest or full id) from a remote", kRemoteHelp);
  pull->add_option("REF", o.ref, "Version")->required();
  pull->add_option("--remote,-r", o.remote, "Remote URL")->required();
  pull->add_option("--token-file", o.token_file, "Bearer token file for an http(s):// remote");
  pull->add_flag("--json", o.json, "Print JSON");

  auto* gc = sub("gc", "Delete blobs no dataset version (tagged, latest or logged) references",
                 "Also kept: every blob a recorded run references (HOME/drover.db: the files\n"
                 "of every try, and every published snapshot version), and those listed in\n"
                 "--keep-file (one SHA-256 per line), with the files of any version they name.\n"
                 "Blobs younger than --grace are kept (a snapshot may be in progress).\n");
  gc->add_option("--keep-file", o.keep_files, "File of blob hashes to keep (repeatable)");
  gc->add_option("--grace", o.grace, "Keep blobs younger than this (default 1h; 0 = none)");
  gc->add_flag("--dry-run", o.dry_run, "Only report what would be deleted");
  gc->add_flag("--json", o.json, "Print JSON");

  if (int rc = parse_args(app, argc, argv); rc >= 0) return rc;
  if (add->parsed()) return do_add(o);
  if (ls->parsed()) return do_ls(o);
  if (show->parsed()) return do_show(o);
  if (diff->parsed()) return do_diff(o);
  if (co->parsed()) return do_checkout(o);
  if (status->parsed()) return do_status(o);
  if (tag->parsed()) return do_tag(o);
  if (push->parsed()) return do_transfer(o, true);
  if (pull->parsed()) return do_transfer(o, false);
  if (gc->parsed()) return do_gc(o);
  return kExitUsage;
}

}  // namespace

DROVER_COMMAND("snapshot",
               "Dataset snapshots: add, status, ls, show, diff, checkout, push, pull, gc",
               cmd_snapshot);

}  // namespace drover::cli
