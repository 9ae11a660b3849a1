#include "executor/try_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>

#include "common/fs.hpp"
#include "common/json_text.hpp"
#include "common/process.hpp"
#include "common/redact.hpp"
#include "common/try_layout.hpp"
#include "executor/proc.hpp"

namespace drover {

namespace fs = std::filesystem;

namespace {

// How long a masked try's log is still copied after its task ended, for output that its
// background processes write on their way out.
constexpr std::chrono::seconds kDrainGrace{2};

class CollectingPublisher final : public Publisher {
 public:
  Published got;
  void value(const std::string& key, const json& v) override { got.values[key] = v; }
  void metric(const std::string& name, double v, long long step) override {
    got.metrics.push_back({{"name", name}, {"value", v}, {"step", step}});
  }
  void file(const FileEntry& f) override { got.files.push_back(f); }
  void alert(const std::string& kind, const std::string& message, const json& details) override {
    got.alerts.push_back({{"kind", kind}, {"message", message}, {"details", details}});
  }
  void model(const json& version) override { got.model = version; }
};

// The longest text a symbolic link holds on Linux (PATH_MAX less its NUL).
constexpr size_t kLinkTextMax = 4095;

// An input that is a link: a link with its recorded text, the blob read as bytes (never
// fetched and followed).
Status place_link(BlobSource& blobs, const FileEntry& f, const fs::path& dest) {
  auto text = blobs.read_bytes(f.sha256, kLinkTextMax);
  if (!text) return make_error("input '" + f.path + "': " + text.message());
  if (text->empty() || text->find('\0') != std::string::npos)
    return make_error("input '" + f.path + "': blob " + f.sha256 + " is not a link's text");
  if (::symlink(text->c_str(), dest.c_str()) != 0)
    return make_error(dest.string() + ": " + std::strerror(errno));
  return {};
}

// Each input at inputs/FROM_TASK/PATH: every folder and file first, then the links, so that
// no input is placed through a link (a link whose path is a folder finds it there and fails)
// and none lands outside inputs/.
Status materialize_inputs(const TrySpec& spec, BlobSource& blobs) {
  std::vector<std::pair<fs::path, const FileEntry*>> links;
  for (auto& f : spec.inputs) {
    if (!is_inside_relative(f.path) || !is_inside_relative(f.from_task))
      return make_error("input path '" + f.path + "' leaves its folder");
    fs::path dest = spec.inputs_dir() / f.from_task / f.path;
    if (auto s = make_dirs(dest.parent_path()); !s) return s;
    if (f.is_link())
      links.emplace_back(dest, &f);
    else if (auto s = blobs.fetch(f.sha256, dest); !s)
      return s;
  }
  for (auto& [dest, f] : links)
    if (auto s = place_link(blobs, *f, dest); !s) return s;
  return {};
}

// What a path that is not a regular file, a folder or a link is, for the message that
// refuses it.
std::string kind_of(mode_t m) {
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m) || S_ISBLK(m)) return "a device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

Status refuse(const fs::path& work, const fs::path& p, mode_t m) {
  return make_error("output '" + p.lexically_relative(work).generic_string() + "' is " +
                    kind_of(m) + ": outputs are regular files, folders and symbolic links");
}

Status collect_file(BlobSource& blobs, const fs::path& work, const fs::path& file, mode_t mode,
                    const ReadCheck& check, std::vector<FileEntry>& out) {
  auto ref = blobs.store(file, check);
  if (!ref) return ref.error();
  out.push_back(FileEntry{file.lexically_relative(work).generic_string(), ref->sha256, ref->size,
                          static_cast<int>(mode & 07777), ""});
  return {};
}

// A link, as git records one: its text (what readlink gives) is its blob. What it points to
// is never read: it could be any file the worker may read (/etc/shadow, the API token), which
// the blob API would then serve, or /dev/zero, a FIFO or the link itself.
Status collect_link(BlobSource& blobs, const fs::path& work, const fs::path& link,
                    std::vector<FileEntry>& out) {
  std::string rel = link.lexically_relative(work).generic_string();
  std::string text(kLinkTextMax + 1, '\0');
  ssize_t n = ::readlink(link.c_str(), text.data(), text.size());
  if (n < 0) return make_error("output '" + rel + "': " + std::strerror(errno));
  if (static_cast<size_t>(n) > kLinkTextMax)
    return make_error("output '" + rel + "': a link's text longer than PATH_MAX");
  text.resize(static_cast<size_t>(n));
  auto ref = blobs.store_bytes(text);
  if (!ref) return ref.error();
  out.push_back(FileEntry{rel, ref->sha256, ref->size, FileEntry::kLinkMode, ""});
  return {};
}

Status collect_entry(BlobSource& blobs, const fs::path& work, const fs::path& p, mode_t mode,
                     const ReadCheck& check, std::vector<FileEntry>& out) {
  return S_ISLNK(mode) ? collect_link(blobs, work, p, out)
                       : collect_file(blobs, work, p, mode, check, out);
}

// Whether the folders on the way to output `decl` (normalized) are folders of the work dir:
// a link among them (`d` of `d/passwd`, d -> /etc) would take collection out of it, as
// lstat follows every link but the last.
Status check_folders(const fs::path& work, const std::string& decl) {
  fs::path at = work, so_far;
  for (auto& part : fs::path(decl).parent_path()) {
    at /= part;
    so_far /= part;
    struct stat st;
    if (::lstat(at.c_str(), &st) != 0) return {};  // missing: "was not produced", below
    if (S_ISLNK(st.st_mode))
      return make_error("output '" + decl + "' leaves the work dir through the symbolic link '" +
                        so_far.generic_string() + "'");
    if (!S_ISDIR(st.st_mode)) return {};  // a file: "was not produced" too
  }
  return {};
}

// The declared outputs, as what they are: regular files, symbolic links (their text, never
// followed), and folders walked without following a link (one in them is an entry). A FIFO,
// device or socket fails the try with a message naming it: reading a FIFO or /dev/zero never
// ends.
Status collect_outputs(const TrySpec& spec, BlobSource& blobs, std::vector<FileEntry>& out,
                       const CollectBy& by) {
  fs::path work = spec.work_dir();
  // Checked before each file is stored, every 1,000 entries of a folder's walk and every
  // kReadCheckEvery bytes of a file being stored (one file can be bigger than a timeout's
  // worth of hashing: a sparse file of terabytes).
  auto late = [&] {
    return by && std::chrono::steady_clock::now() >= *by
               ? make_error("collecting outputs ran past the try's timeout (" +
                            std::to_string(spec.timeout_ms / 1000) + " s)")
               : Status{};
  };
  ReadCheck while_stored = by ? ReadCheck(late) : ReadCheck();
  // The task's `outputs:`, then what its type collects besides (a train's artifacts).
  std::vector<std::string> wanted = spec.outputs;
  if (const TaskType* type = TaskTypeRegistry::instance().find(spec.type))
    for (auto& extra : type->collected_outputs(spec.with))
      if (std::find(wanted.begin(), wanted.end(), extra) == wanted.end()) wanted.push_back(extra);
  for (auto& declared : wanted) {
    if (!is_inside_relative(declared))
      return make_error("output '" + declared + "' leaves the work dir");
    // "out/" names what "out" does: with a trailing slash lstat would follow a link `out`.
    std::string decl = fs::path(declared).lexically_normal().generic_string();
    while (decl.size() > 1 && decl.back() == '/') decl.pop_back();
    if (auto s = check_folders(work, decl); !s) return s;
    fs::path p = work / decl;
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0)
      return make_error("declared output '" + declared + "' was not produced");
    if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
      if (auto s = late(); !s) return s;
      if (auto s = collect_entry(blobs, work, p, st.st_mode, while_stored, out); !s) return s;
      continue;
    }
    if (!S_ISDIR(st.st_mode)) return refuse(work, p, st.st_mode);
    std::vector<std::pair<fs::path, mode_t>> entries;
    std::error_code ec;
    size_t walked = 0;
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (++walked % 1000 == 0)
        if (auto s = late(); !s) return s;
      struct stat e;
      if (::lstat(it->path().c_str(), &e) != 0)
        return make_error(it->path().string() + ": " + std::strerror(errno));
      if (S_ISREG(e.st_mode) || S_ISLNK(e.st_mode))
        entries.emplace_back(it->path(), e.st_mode);
      else if (!S_ISDIR(e.st_mode))
        return refuse(work, it->path(), e.st_mode);
    }
    if (ec) return make_error("output '" + declared + "': " + ec.message());
    std::sort(entries.begin(), entries.end());
    for (auto& [e, mode] : entries) {
      if (auto s = late(); !s) return s;
      if (auto s = collect_entry(blobs, work, e, mode, while_stored, out); !s) return s;
    }
  }
  return {};
}

// The most a task may publish through its files (docs/dag-format.md "Values and metrics").
constexpr off_t kValuesFileMax = 1 << 20;
constexpr off_t kMetricsFileMax = 64 << 20;

// DROVER_VALUES_FILE: one JSON object of scalars (string, number, bool), each key a value
// key; they join what the task type published (which wins a clash).
Status read_values_file(const TrySpec& spec, json& values) {
  auto text =
      read_untrusted_file(layout::values(spec.try_dir), kValuesFileMax, "DROVER_VALUES_FILE");
  if (!text) return text.error();
  if (!*text) return {};
  json j = json::parse(**text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return make_error("DROVER_VALUES_FILE (values.json) is not a JSON object");
  for (auto& [key, v] : j.items()) {
    if (!is_value_key(key))
      return make_error("DROVER_VALUES_FILE: '" + key.substr(0, 64) +
                        "' is not a value name (letters, digits, '_', '-', '.')");
    if (!v.is_string() && !v.is_number() && !v.is_boolean())
      return make_error("DROVER_VALUES_FILE: value '" + key +
                        "' must be a string, a number or a boolean");
    if (!values.contains(key)) values[key] = v;
  }
  return {};
}

// DROVER_METRICS_FILE: JSON lines {"name": "loss", "value": 0.41, "step": 3} ("step" may be
// left out: -1, no step), appended to what the task type recorded. A broken line is named by
// number; `lenient` (a try that failed, perhaps killed mid-line) skips broken lines instead.
Status read_metrics_file(const TrySpec& spec, json& metrics, bool lenient) {
  auto text =
      read_untrusted_file(layout::metrics(spec.try_dir), kMetricsFileMax, "DROVER_METRICS_FILE");
  if (!text) return text.error();
  if (!*text) return {};
  json read = json::array();
  std::string_view all(**text);
  size_t line_no = 0;
  for (size_t at = 0; at < all.size();) {
    size_t end = std::min(all.find('\n', at), all.size());
    std::string_view line = all.substr(at, end - at);
    at = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    auto bad = [&](const std::string& why) {
      return make_error("metrics.jsonl:" + std::to_string(line_no) + ": " + why);
    };
    auto check = [&]() -> Status {
      json m = json::parse(line, nullptr, false);
      if (m.is_discarded() || !m.is_object()) return bad("not a JSON object");
      if (!m.contains("name") || !m["name"].is_string() ||
          !is_value_key(m["name"].get<std::string>()))
        return bad("\"name\" must be a metric name (letters, digits, '_', '-', '.')");
      if (!m.contains("value") || !m["value"].is_number())
        return bad("\"value\" of '" + m["name"].get<std::string>() + "' must be a number");
      long long step = -1;
      if (m.contains("step")) {
        if (!m["step"].is_number_integer()) return bad("\"step\" must be an integer");
        step = m["step"].get<long long>();
      }
      read.push_back({{"name", m["name"]}, {"value", m["value"].get<double>()}, {"step", step}});
      return {};
    };
    if (auto s = check(); !s && !lenient) return s;
  }
  for (auto& m : read) metrics.push_back(std::move(m));
  return {};
}

}  // namespace

std::unique_ptr<BlobSource> blob_source_for(const TrySpec& spec) {
  return std::make_unique<LocalBlobSource>(fs::path(spec.home) / "blobs");
}

std::vector<std::string> try_environment(const TrySpec& spec) {
  std::map<std::string, std::string> extra = spec.env;
  extra["DROVER_RUN_ID"] = spec.run_id;
  extra["DROVER_TASK"] = spec.task;
  extra["DROVER_TRY"] = std::to_string(spec.try_number);
  extra["DROVER_WORK_DIR"] = spec.work_dir().string();
  extra["DROVER_HOME"] = spec.home;
  extra["DROVER_BIN"] = self_exe_path();  // so a task can call `"$DROVER_BIN" snapshot ...`
  extra["DROVER_VALUES_FILE"] = layout::values(spec.try_dir).string();
  extra["DROVER_METRICS_FILE"] = layout::metrics(spec.try_dir).string();
  return plain_environment(extra);
}

Status prepare_try(const TrySpec& spec, BlobSource& blobs) {
  // The try's folder, then its work folder in it: two mkdir calls where one folder is new.
  if (auto s = make_dirs(spec.try_dir); !s) return s;
  if (auto s = make_dirs(spec.work_dir()); !s) return s;
  if (!TaskTypeRegistry::instance().find(spec.type))
    return make_error("unknown task type '" + spec.type + "'");
  if (auto s = materialize_inputs(spec, blobs); !s)
    return make_error("materializing inputs: " + s.message());
  return {};
}

TryResult make_try_result(const TrySpec& spec, BlobSource& blobs, int code, std::string error,
                          long long started_us, Published pub, long long ended_us,
                          CollectBy collect_by) {
  // An input the task could reach the store through (a big one, hard-linked) and changed
  // fails the try, whatever it exited with: what it computed read forged bytes.
  if (auto s = blobs.check_fetched(); !s) {
    error = s.message();
    if (code == 0) code = 1;
  }
  // What it published through its files: values only from a try that succeeded (nothing
  // downstream reads another's), metrics from every try (a failed training's loss curve is
  // what explains it); a broken file fails a try that succeeded.
  json& all_values = pub.values;
  json& all_metrics = pub.metrics;
  std::vector<FileEntry>& files = pub.files;
  if (auto s = read_metrics_file(spec, all_metrics, /*lenient=*/code != 0); !s) {
    error = s.message();
    code = 1;
  }
  if (code == 0)
    if (auto s = read_values_file(spec, all_values); !s) {
      error = s.message();
      code = 1;
    }
  if (code == 0) {
    std::vector<FileEntry> outs;
    if (auto s = collect_outputs(spec, blobs, outs, collect_by); !s) {
      error = s.message();
      code = 1;
    }
    for (auto& f : outs) files.push_back(f);
  }
  error = Redactor::redact(error, spec.redact);
  if (!error.empty() && code != 0) {
    // The log gets the reason too, so `drover logs` explains the failure.
    int log = ::open(spec.log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log >= 0) {
      std::string line = "drover: " + error + "\n";
      (void)!::write(log, line.data(), line.size());
      ::close(log);
    }
  }
  json outputs = json::array();
  for (auto& f : files)
    outputs.push_back({{"path", f.path}, {"sha256", f.sha256}, {"size", f.size}, {"mode", f.mode}});
  json result = {{"started_at", started_us}, {"exit_code", code},
                 {"error", error},           {"outputs", outputs},
                 {"values", all_values},     {"metrics", all_metrics},
                 {"alerts", pub.alerts},     {"ended_at", ended_us ? ended_us : now_us()}};
  if (code == 0 && !pub.model.is_null()) result["model"] = pub.model;
  return TryResult{code, std::move(result)};
}

Status write_try_result(const TrySpec& spec, const json& result) {
  // Not fsynced: the daemon commits what it reads from here (synchronously) before acting,
  // and a try whose result a power loss erased is simply lost and retried. Replaced by rename,
  // not written in place: the task has had its turn in the folder, and whatever it left at
  // this name (a symlink included) is replaced, never written through.
  return write_file_atomic(spec.result_path(), to_json_text(result), 0644, /*durable=*/false);
}

int finish_try(const TrySpec& spec, BlobSource& blobs, int code, std::string error,
               long long started_us, Published pub, int result_fd) {
  TryResult r = make_try_result(spec, blobs, code, std::move(error), started_us, std::move(pub));
  if (auto s = write_try_result(spec, r.result); !s) {
    // The try's end is not durable (a full disk, most often): it fails, saying why, and the
    // worker still hears of it through result_fd.
    std::string why = "writing result.json: " + s.message();
    std::fprintf(stderr, "drover: %s\n", why.c_str());
    if (r.code == 0) r.code = 1;
    std::string before = r.result.value("error", std::string());
    r.result["exit_code"] = r.code;
    r.result["error"] = before.empty() ? why : before + "; " + why;
  }
  if (result_fd >= 0) (void)write_all(result_fd, to_json_text(r.result));
  return r.code;
}

int run_try(const TrySpec& spec, BlobSource& blobs, int result_fd) {
  long long started = now_us();
  if (auto s = prepare_try(spec, blobs); !s)
    return finish_try(spec, blobs, 1, s.message(), started, {}, result_fd);

  // Descriptors 0-2 are open before anything else is: run by `drover exec` from a shell or a
  // batch system with one of them closed, the next open() would take its number, and a
  // descriptor dup2'ed onto itself keeps FD_CLOEXEC, then is closed by close() below or by
  // the exec: the task would start with no stdin (or no stdout).
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    int null = ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);  // takes `fd`: lowest free
    if (null >= 0 && null != fd) ::close(null);
  }
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull >= 0) {
    ::dup2(devnull, 0);
    ::close(devnull);
  }
  int log = ::open(spec.log_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  // With secrets to mask, stdout and stderr (this process's and its children's) go through
  // a pipe that a thread copies into the log, masking as it goes.
  std::thread masker;
  int stop[2] = {-1, -1};  // written to when the task has ended
  if (log >= 0 && !spec.redact.empty()) {
    // None of these may be 0-2, which are about to be replaced (a worker may run with
    // stdio closed).
    auto above_stdio = [](int& fd) {
      if (fd < 0 || fd > 2) return;
      int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
      ::close(fd);
      fd = moved;
    };
    above_stdio(log);
    int p[2];
    if (log >= 0 && ::pipe2(p, O_CLOEXEC) == 0) {
      above_stdio(p[0]);
      above_stdio(p[1]);
      ::dup2(p[1], 1);
      ::dup2(p[1], 2);
      ::close(p[1]);
      // The masker copies until the pipe's end, or for at most kDrainGrace once the task has
      // ended: a process the task left in the background may hold the pipe for ever, and the
      // try must end when the task does.
      if (::pipe2(stop, O_CLOEXEC) == 0) {
        above_stdio(stop[0]);
        above_stdio(stop[1]);
      }
      masker = std::thread([in = p[0], log, stop_in = stop[0], redact = spec.redact] {
        Redactor r(redact);
        char buf[16384];
        std::optional<std::chrono::steady_clock::time_point> deadline;
        for (;;) {
          int wait_ms = -1;
          if (deadline) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                *deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
              (void)write_all(log, r.finish());
              (void)write_all(log,
                              "\ndrover: the task ended, but a process it started still holds "
                              "its output; nothing more of it is logged\n");
              break;
            }
            wait_ms = static_cast<int>(left.count());
          }
          pollfd fds[2] = {{in, POLLIN, 0}, {deadline ? -1 : stop_in, POLLIN, 0}};
          int n = ::poll(fds, 2, wait_ms);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) break;
          if (fds[1].revents) deadline = std::chrono::steady_clock::now() + kDrainGrace;
          if (!fds[0].revents) continue;
          ssize_t got = ::read(in, buf, sizeof buf);
          if (got < 0 && errno == EINTR) continue;
          if (got <= 0) {
            (void)write_all(log, r.finish());
            break;
          }
          (void)write_all(log, r.feed(std::string_view(buf, static_cast<size_t>(got))));
        }
        ::close(in);
        ::close(log);
      });
      log = -1;
    }
  }
  if (log >= 0) {
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::close(log);
  }
  // Ends the masking: closes this process's ends of the pipe and waits until every byte
  // (also from children that still hold it) is in the log.
  auto end_masking = [&] {
    if (!masker.joinable()) return;
    std::fflush(stdout);
    std::fflush(stderr);
    // Told while this process still holds the pipe (the masker cannot have ended yet), and
    // both ends closed after it has: no write to a pipe nobody reads.
    if (stop[1] >= 0) (void)write_all(stop[1], "x");
    int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::close(null);
    masker.join();
    for (int fd : stop)
      if (fd >= 0) ::close(fd);
  };
  if (::chdir(spec.work_dir().c_str()) != 0) {
    std::string error = spec.work_dir().string() + ": " + std::strerror(errno);
    end_masking();
    return finish_try(spec, blobs, 1, error, started, {}, result_fd);
  }
  // A command (code we do not trust) inherits this process's environment: it becomes the
  // try's environment alone, not the worker's with the try's on top (no DROVER_TOKEN, no
  // secret the task was not given). Drover's own types keep the worker's (an S3 remote's
  // credentials).
  std::vector<std::string> env = try_environment(spec);
  const TaskType* type = TaskTypeRegistry::instance().find(spec.type);
  if (type->run_field() == TaskType::RunField::Required) ::clearenv();
  for (auto& kv : env) {
    auto eq = kv.find('=');
    ::setenv(kv.substr(0, eq).c_str(), kv.c_str() + eq + 1, 1);
  }
  CollectingPublisher pub;
  std::map<std::string, fs::path> inputs;
  for (auto& f : spec.inputs) inputs[f.from_task] = spec.inputs_dir() / f.from_task;
  TaskContext ctx{spec, blobs.local(), pub, inputs};
  std::fflush(stdout);
  int code = type->run(ctx);
  std::fflush(stdout);
  std::fflush(stderr);
  end_masking();
  return finish_try(spec, blobs, code, "", started, std::move(pub.got), result_fd);
}

json read_try_result(const std::string& try_dir) {
  auto text = read_file(layout::result(try_dir), 64 << 20);
  if (!text) return nullptr;
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return nullptr;
  return j;
}

}  // namespace drover
