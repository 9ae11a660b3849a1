// The three alert channel types behind deliver_alert() (scheduler/alerts.hpp): webhook and
// email through the one libcurl client (common/curl_client.hpp), command through the one
// launcher (common/process.hpp). Each call is one attempt; retries are the dispatcher's
// business. Thread-safe: no shared state beyond curl's global init.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <thread>

#include "common/curl_client.hpp"
#include "common/fs.hpp"
#include "common/json_text.hpp"
#include "common/process.hpp"
#include "common/redact.hpp"
#include "common/time.hpp"
#include "scheduler/alerts.hpp"

namespace drover {
namespace {

using json = nlohmann::json;
using Steady = std::chrono::steady_clock;

// What both curl channels share: the channel's timeout and CA file, a 10 s connect timeout,
// the cancel flag.
CurlRequest channel_request(const AlertChannel& ch, const std::atomic<bool>* cancel) {
  CurlRequest c;
  c.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(ch.timeout);
  c.connect_timeout = std::chrono::milliseconds(10000);
  c.ca_file = ch.ca_file;
  c.cancel = cancel;
  return c;
}

Status deliver_webhook(const AlertChannel& ch, const Alert& alert,
                       const std::atomic<bool>* cancel) {
  std::string body = to_json_text(alert_payload(alert));
  UploadBody upload;
  upload.data = body.data();
  upload.size = body.size();
  CurlRequest c = channel_request(ch, cancel);
  c.method = "POST";
  c.url = ch.url;
  c.headers = {"Content-Type: application/json", "User-Agent: drover-alerts"};
  c.body = &upload;
  c.max_body = 512;  // enough of an error page for the message
  auto r = curl_perform(c);
  if (!r) return make_error("webhook " + masked_url(ch.url) + ": " + r.message());
  if (r->status < 200 || r->status >= 300) {
    std::string snippet = r->body.substr(0, 200);
    for (char& x : snippet)
      if (x == '\n' || x == '\r') x = ' ';
    return make_error("webhook " + masked_url(ch.url) + ": HTTP " + std::to_string(r->status) +
                      (snippet.empty() ? "" : ": " + snippet));
  }
  return Status::Ok();
}

std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\r' || c == '\n') c = ' ';
  return s;
}

std::string rfc5322_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  static const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string crlf(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) out += '\r';
    out += s[i];
  }
  return out;
}

std::string email_subject(const Alert& a) {
  std::string s = "[drover] " + a.kind + ": " + a.dag;
  if (!a.task.empty()) s += "." + a.task;
  if (!a.run_id.empty()) s += " (run " + a.run_id + ")";
  return one_line(s);
}

std::string email_message(const AlertChannel& ch, const Alert& a) {
  std::string to;
  for (const auto& r : ch.to) to += (to.empty() ? "" : ", ") + r;
  std::string domain = ch.from.substr(
      ch.from.find('@') == std::string::npos ? ch.from.size() : ch.from.find('@') + 1);
  if (domain.empty()) domain = "drover";
  std::string m;
  m += "Date: " + rfc5322_date(std::time(nullptr)) + "\n";
  m += "From: " + one_line(ch.from) + "\n";
  m += "To: " + one_line(to) + "\n";
  m += "Message-ID: <" + random_hex(16) + "@" + one_line(domain) + ">\n";
  m += "Subject: " + email_subject(a) + "\n";
  m += "MIME-Version: 1.0\n";
  m += "Content-Type: text/plain; charset=utf-8\n";
  m += "Content-Transfer-Encoding: 8bit\n";
  m += "\n";
  m += a.message + "\n\n";
  if (!a.url.empty()) m += "Run: " + a.url + "\n";
  m += "Kind: " + a.kind + "\n";
  if (!a.dag.empty()) m += "DAG: " + a.dag + "\n";
  if (!a.run_id.empty()) m += "Run id: " + a.run_id + "\n";
  if (!a.task.empty()) m += "Task: " + a.task + "\n";
  if (!a.details.empty()) m += "\nDetails:\n" + to_json_text(a.details, 2) + "\n";
  return crlf(m);
}

Status deliver_email(const AlertChannel& ch, const Alert& alert, const std::atomic<bool>* cancel) {
  std::string user, password;
  if (!ch.username_env.empty()) {
    const char* v = std::getenv(ch.username_env.c_str());
    if (!v) return make_error("email: environment variable " + ch.username_env + " is not set");
    user = v;
  }
  if (!ch.password_env.empty()) {
    const char* v = std::getenv(ch.password_env.c_str());
    if (!v) return make_error("email: environment variable " + ch.password_env + " is not set");
    password = v;
  }
  std::string message = email_message(ch, alert);
  UploadBody upload;
  upload.data = message.data();
  upload.size = message.size();
  CurlRequest c = channel_request(ch, cancel);
  c.url = ch.smtp;
  c.body = &upload;
  c.mail = CurlRequest::Mail{ch.from, ch.to, ch.starttls, std::nullopt, std::nullopt};
  if (!ch.username_env.empty()) c.mail->username = user;
  if (!ch.password_env.empty()) c.mail->password = password;
  auto r = curl_perform(c);
  if (!r) return make_error("email " + ch.smtp + ": " + r.message());
  return Status::Ok();
}

// Runs ch.run with the payload on stdin (a socket, so a child that exits without reading
// cannot raise SIGPIPE here); stdout is discarded, the tail of stderr goes in the error.
Status deliver_command(const AlertChannel& ch, const Alert& alert,
                       const std::atomic<bool>* cancel) {
  if (ch.run.empty()) return make_error("command: empty run");
  int in[2], err[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0)
    return make_error(std::string("command: socketpair: ") + std::strerror(errno));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return make_error(std::string("command: pipe: ") + std::strerror(errno));
  }
  // The command gets the payload and a plain environment: none of the daemon's descriptors
  // (the API's listener, client connections, the store) and none of its secrets.
  SpawnOptions o;
  o.argv = ch.run;
  o.env = plain_environment();
  o.in = ChildFd::from(in[1]);
  o.out = ChildFd::null();
  o.err = ChildFd::from(err[1]);
  auto spawned = spawn_child(o);
  ::close(in[1]);
  ::close(err[1]);
  if (!spawned) {
    ::close(in[0]);
    ::close(err[0]);
    return make_error("command " + ch.run[0] + ": " +
                      spawned.message().substr(spawned.message().rfind(": ") + 2));
  }
  pid_t pid = *spawned;
  std::string payload = to_json_text(alert_payload(alert)) + "\n";
  size_t written = 0;
  int wfd = in[0];
  ::fcntl(wfd, F_SETFL, O_NONBLOCK);
  ::fcntl(err[0], F_SETFL, O_NONBLOCK);
  std::string stderr_tail;
  auto deadline = Steady::now() + ch.timeout;
  int status = 0;
  bool exited = false, timed_out = false, cancelled = false;
  while (!exited) {
    pollfd fds[2];
    int nfds = 0;
    fds[nfds++] = {err[0], POLLIN, 0};
    if (wfd >= 0) fds[nfds++] = {wfd, POLLOUT, 0};
    ::poll(fds, nfds, 10);
    if (wfd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::send(wfd, payload.data() + written, payload.size() - written, MSG_NOSIGNAL);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN && errno != EINTR) written = payload.size();  // reader gone
      if (written == payload.size()) {
        ::close(wfd);
        wfd = -1;
      }
    }
    char buf[1024];
    ssize_t n;
    while ((n = ::read(err[0], buf, sizeof buf)) > 0) {
      stderr_tail.append(buf, static_cast<size_t>(n));
      if (stderr_tail.size() > 1024) stderr_tail.erase(0, stderr_tail.size() - 1024);
    }
    if (reap_child(pid, &status, false) == pid) {
      exited = true;
      break;
    }
    if (cancel && cancel->load()) cancelled = true;
    if (Steady::now() >= deadline) timed_out = true;
    if (timed_out || cancelled) {
      ::kill(-pid, SIGKILL);
      reap_child(pid, &status, true);
      break;
    }
  }
  if (wfd >= 0) ::close(wfd);
  ::close(err[0]);
  while (!stderr_tail.empty() && (stderr_tail.back() == '\n' || stderr_tail.back() == '\r'))
    stderr_tail.pop_back();
  std::string what = "command " + ch.run[0];
  if (timed_out) return make_error(what + ": killed after " + format_duration(ch.timeout));
  if (cancelled) return make_error(what + ": cancelled at shutdown");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::Ok();
  std::string why = WIFEXITED(status) ? "exit code " + std::to_string(WEXITSTATUS(status))
                                      : "signal " + std::to_string(WTERMSIG(status));
  auto nl = stderr_tail.rfind('\n');
  std::string last = nl == std::string::npos ? stderr_tail : stderr_tail.substr(nl + 1);
  return make_error(what + ": " + why + (last.empty() ? "" : ": " + last));
}

}  // namespace

Status deliver_alert(const AlertChannel& channel, const Alert& alert,
                     const std::atomic<bool>* cancel) {
  switch (channel.type) {
    case AlertChannel::Type::Webhook:
      return deliver_webhook(channel, alert, cancel);
    case AlertChannel::Type::Email:
      return deliver_email(channel, alert, cancel);
    case AlertChannel::Type::Command:
      return deliver_command(channel, alert, cancel);
  }
  return make_error("unknown channel type");
}

}  // namespace drover
