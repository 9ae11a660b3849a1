// Tests for scheduler/alerts.hpp and scheduler/config.hpp: real deliveries to a local webhook
// receiver and a local SMTP server (tests/scheduler/alert_receivers.py, run by
// /usr/bin/python3) and to a command; retries, dedup, shutdown; config errors with positions.
#include "scheduler/alerts.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "common/time.hpp"
#include "scheduler/config.hpp"
#include "scheduler/dag.hpp"
#include "tests/integration/harness.hpp"

namespace drover {
namespace {

using json = nlohmann::json;
using drover::testing::read_all;
using drover::testing::TempDir;
using drover::testing::wait_until;
using drover::testing::write_text;
namespace fs = std::filesystem;

// A receiver process from alert_receivers.py; killed when the object goes away.
class Receiver {
 public:
  Receiver(const TempDir& dir, std::vector<std::string> args) {
    static int n = 0;
    fs::path out = dir / ("receiver" + std::to_string(n++) + ".out");
    std::vector<std::string> argv = {
        "/usr/bin/python3", std::string(DROVER_SOURCE_DIR) + "/tests/scheduler/alert_receivers.py"};
    argv.insert(argv.end(), args.begin(), args.end());
    pid_ = drover::testing::spawn(argv, out, fs::path(out).replace_extension(".err"));
    wait_until([&] {
      std::string text = read_all(out);
      if (text.find('\n') == std::string::npos) return false;
      port_ = std::stoi(text);
      return true;
    });
  }
  ~Receiver() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      int status;
      ::waitpid(pid_, &status, 0);
    }
  }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// Lines of a JSON-lines file (an incomplete last line is ignored).
std::vector<json> json_lines(const fs::path& p) {
  std::vector<json> out;
  std::string text = read_all(p);
  size_t start = 0, nl;
  while ((nl = text.find('\n', start)) != std::string::npos) {
    out.push_back(json::parse(text.substr(start, nl - start)));
    start = nl + 1;
  }
  return out;
}

// A loopback port with nothing listening: bound, then closed.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

AlertChannel webhook(const std::string& name, int port) {
  AlertChannel ch;
  ch.name = name;
  ch.type = AlertChannel::Type::Webhook;
  ch.url = "http://127.0.0.1:" + std::to_string(port) + "/hook";
  ch.timeout = std::chrono::seconds(10);
  return ch;
}

ServerConfig config_with(std::vector<AlertChannel> channels, int retries = 3,
                         Micros delay = std::chrono::milliseconds(10)) {
  ServerConfig cfg;
  cfg.ui_url = "http://127.0.0.1:8080";
  cfg.alerts.retries = retries;
  cfg.alerts.retry_delay = delay;
  for (auto& ch : channels) cfg.alerts.channels[ch.name] = ch;
  return cfg;
}

Alert failed_alert(std::vector<std::string> channels) {
  Alert a;
  a.kind = "task_failed";
  a.dag = "weekly_retrain";
  a.run_id = "r42";
  a.task = "train";
  a.message = "exit code 1 on try 3 of 3";
  a.details = {{"exit_code", 1}};
  a.channels = std::move(channels);
  return a;
}

bool has_deliveries(const AlertDispatcher& d, size_t n) { return d.deliveries().size() >= n; }

// ---- config ----

TEST(ServerConfigTest, ParsesEveryChannelType) {
  auto cfg = parse_server_config(R"(alerts:
  channels:
    ml-oncall: {type: webhook, url: "http://127.0.0.1:9000/hook"}
    recsys-email: {type: email, smtp: "smtp://127.0.0.1:2525", from: "drover@example.com",
                   to: [a@b.c], starttls: false, username_env: SMTP_USER,
                   password_env: SMTP_PASSWORD, ca_file: /etc/ssl/internal-ca.pem}
    page: {type: command, run: [/usr/local/bin/page, --team, ml], timeout: 5s}
  retries: 4
  retry_delay: 3s
ui_url: http://127.0.0.1:8080
)",
                                 "config.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.message();
  EXPECT_EQ(cfg->ui_url, "http://127.0.0.1:8080");
  EXPECT_EQ(cfg->alerts.retries, 4);
  EXPECT_EQ(cfg->alerts.retry_delay, std::chrono::seconds(3));
  ASSERT_EQ(cfg->alerts.channels.size(), 3u);
  const auto& hook = cfg->alerts.channels.at("ml-oncall");
  EXPECT_EQ(hook.type, AlertChannel::Type::Webhook);
  EXPECT_EQ(hook.url, "http://127.0.0.1:9000/hook");
  const auto& mail = cfg->alerts.channels.at("recsys-email");
  EXPECT_EQ(mail.type, AlertChannel::Type::Email);
  EXPECT_EQ(mail.smtp, "smtp://127.0.0.1:2525");
  EXPECT_EQ(mail.to, std::vector<std::string>{"a@b.c"});
  EXPECT_FALSE(mail.starttls);
  EXPECT_EQ(mail.username_env, "SMTP_USER");
  EXPECT_EQ(mail.password_env, "SMTP_PASSWORD");
  EXPECT_EQ(mail.ca_file, "/etc/ssl/internal-ca.pem");
  EXPECT_EQ(hook.ca_file, "");
  const auto& page = cfg->alerts.channels.at("page");
  EXPECT_EQ(page.type, AlertChannel::Type::Command);
  EXPECT_EQ(page.run, (std::vector<std::string>{"/usr/local/bin/page", "--team", "ml"}));
  EXPECT_EQ(page.timeout, std::chrono::seconds(5));
}

TEST(ServerConfigTest, EmptyFileIsAnEmptyConfig) {
  auto cfg = parse_server_config("# nothing yet\n", "config.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.message();
  EXPECT_TRUE(cfg->alerts.channels.empty());
  EXPECT_EQ(cfg->alerts.retries, 3);
}

TEST(ServerConfigTest, UnknownKeysAreReportedWithPositionAndSuggestion) {
  auto cfg = parse_server_config(R"(alerts:
  chanels:
    x: {type: webhook, url: "http://h/"}
  retry_dealy: 2s
ui_ulr: http://x
)",
                                 "config.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.message(),
            "config.yaml:2:3: unknown key 'chanels' in alerts (did you mean 'channels'?)\n"
            "config.yaml:4:3: unknown key 'retry_dealy' in alerts (did you mean 'retry_delay'?)\n"
            "config.yaml:5:1: unknown key 'ui_ulr' (did you mean 'ui_url'?)");
}

TEST(ServerConfigTest, UnknownChannelTypeIsAnError) {
  auto cfg = parse_server_config(R"(alerts:
  channels:
    team: {type: slack, url: "http://h/"}
)",
                                 "c.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.message(),
            "c.yaml:3:18: channel 'team': unknown channel type 'slack' "
            "(expected webhook, email or command)");
}

TEST(ServerConfigTest, BadTypesAndMissingKeysAreAllReported) {
  auto cfg = parse_server_config(R"(alerts:
  retries: three
  retry_delay: soon
  channels:
    mail:
      type: email
      smtp: "http://127.0.0.1:25"
      to: {a: b}
      starttls: maybe
      pasword_env: X
    run: {type: command, run: "/bin/page"}
)",
                                 "c.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.message(),
            "c.yaml:2:12: alerts: retries: expected an integer from 0 to 100\n"
            "c.yaml:3:16: alerts: retry_delay: " +
                parse_duration("soon").message() +
                "\n"
                "c.yaml:5:5: channel 'mail': missing 'from'\n"
                "c.yaml:7:13: channel 'mail': smtp: expected an smtp:// or smtps:// URL\n"
                "c.yaml:8:11: channel 'mail': to: expected a non-empty list of strings\n"
                "c.yaml:9:17: channel 'mail': starttls: expected true or false\n"
                "c.yaml:10:7: unknown key 'pasword_env' in channel 'mail' (did you mean "
                "'password_env'?)\n"
                "c.yaml:11:31: channel 'run': run: expected a non-empty list of strings");
}

TEST(ServerConfigTest, SecretsAreAMapOfNamesToStrings) {
  auto cfg =
      parse_server_config("secrets:\n  hub_token: abc123xyz\n  DB_PASS: \"p4ss word\"\n", "c.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.message();
  EXPECT_EQ(cfg->secrets, (std::map<std::string, std::string>{{"DB_PASS", "p4ss word"},
                                                              {"hub_token", "abc123xyz"}}));
  auto bad =
      parse_server_config("secrets:\n  bad-name: x\n  nested: {a: b}\n  empty: \"\"\n", "c.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(),
            "c.yaml:2:3: secrets: invalid name 'bad-name' (use [A-Za-z0-9_]+)\n"
            "c.yaml:3:11: secrets: nested: expected a string\n"
            "c.yaml:4:10: secrets: empty: must not be empty");
  auto list = parse_server_config("secrets: [a, b]\n", "c.yaml");
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.message(), "c.yaml:1:10: secrets: expected a mapping");
}

TEST(ServerConfigTest, DagsSectionSetsTheDagFileLimits) {
  auto none = parse_server_config("ui_url: http://x\n", "c.yaml");
  ASSERT_TRUE(none.ok()) << none.message();
  EXPECT_EQ(none->dags.max_file_bytes, kMaxDagFileBytes);  // the loader's defaults
  EXPECT_EQ(none->dags.max_yaml_nodes, 100000u);
  auto cfg = parse_server_config("dags:\n  max_file_bytes: 16777216\n  max_yaml_nodes: 2000000\n",
                                 "c.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.message();
  EXPECT_EQ(cfg->dags.max_file_bytes, 16777216u);
  EXPECT_EQ(cfg->dags.max_yaml_nodes, 2000000u);
  auto one = parse_server_config("dags:\n  max_yaml_nodes: 1000\n", "c.yaml");
  ASSERT_TRUE(one.ok()) << one.message();
  EXPECT_EQ(one->dags.max_file_bytes, kMaxDagFileBytes);
  EXPECT_EQ(one->dags.max_yaml_nodes, 1000u);
  auto bounds = parse_server_config("dags: {max_file_bytes: 268435456, max_yaml_nodes: 20000000}\n",
                                    "c.yaml");
  ASSERT_TRUE(bounds.ok()) << bounds.message();
  EXPECT_EQ(bounds->dags.max_file_bytes, size_t{256} << 20);
  EXPECT_EQ(parse_server_config("dags:\n", "c.yaml")->dags.max_file_bytes, kMaxDagFileBytes);
}

TEST(ServerConfigTest, BadDagLimitsAreReportedWithTheirPositionAndBounds) {
  auto errors = [](const std::string& text) {
    auto cfg = parse_server_config(text, "c.yaml");
    EXPECT_FALSE(cfg.ok()) << text;
    return cfg.ok() ? std::string() : cfg.message();
  };
  const std::string bytes = "dags: max_file_bytes: expected an integer from 1024 to 268435456";
  const std::string nodes = "dags: max_yaml_nodes: expected an integer from 1000 to 20000000";
  EXPECT_EQ(errors("dags:\n  max_file_bytes: 1023\n  max_yaml_nodes: 20000001\n"
                   "  max_file_byte: 5\n"),
            "c.yaml:2:19: " + bytes + "\nc.yaml:3:19: " + nodes +
                "\nc.yaml:4:3: unknown key 'max_file_byte' in dags (did you mean "
                "'max_file_bytes'?)");
  EXPECT_EQ(errors("dags:\n  max_file_bytes: 16MiB\n  max_yaml_nodes: [1]\n"),
            "c.yaml:2:19: " + bytes + "\nc.yaml:3:19: " + nodes);
  EXPECT_EQ(errors("dags: {max_file_bytes: -1}\n"), "c.yaml:1:24: " + bytes);
  EXPECT_EQ(errors("dags: [1]\n"), "c.yaml:1:7: dags: expected a mapping");
}

TEST(ServerConfigTest, YamlSyntaxErrorCarriesItsPosition) {
  auto cfg = parse_server_config("alerts:\n  channels: [a, b\n", "c.yaml");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.message().rfind("c.yaml:3:1: ", 0), 0u) << cfg.message();
}

TEST(ServerConfigTest, GroupReadableFileLoadsWithAWarning) {
  TempDir dir;
  fs::path p = dir / "config.yaml";
  write_text(p, "ui_url: http://x\n");
  ::chmod(p.c_str(), 0644);
  auto cfg = load_server_config(p);
  ASSERT_TRUE(cfg.ok()) << cfg.message();
  ASSERT_EQ(cfg->warnings.size(), 1u);
  EXPECT_EQ(cfg->warnings[0], p.string() +
                                  ": mode 0644 lets group/others read it; it may hold "
                                  "secrets (webhook URLs, SMTP settings): chmod 600 " +
                                  p.string());
  ::chmod(p.c_str(), 0600);
  cfg = load_server_config(p);
  ASSERT_TRUE(cfg.ok());
  EXPECT_TRUE(cfg->warnings.empty());
}

TEST(ServerConfigTest, MissingFileIsAnError) {
  TempDir dir;
  EXPECT_FALSE(load_server_config(dir / "nope.yaml").ok());
}

// ---- channels ----

TEST(AlertsTest, WebhookGetsSlackCompatibleJson) {
  TempDir dir;
  Receiver hook(dir, {"webhook", (dir / "hook.jsonl").string()});
  ASSERT_GT(hook.port(), 0);
  AlertDispatcher d(config_with({webhook("ml-oncall", hook.port())}));
  d.send(failed_alert({"ml-oncall"}));
  ASSERT_TRUE(wait_until([&] { return json_lines(dir / "hook.jsonl").size() == 1; }));
  json got = json_lines(dir / "hook.jsonl")[0];
  EXPECT_EQ(got["path"], "/hook");
  EXPECT_EQ(got["content_type"], "application/json");
  EXPECT_EQ(json::parse(got["body"].get<std::string>()),
            (json{{"text",
                   "[drover] task_failed: weekly_retrain.train (run r42): exit code 1 on "
                   "try 3 of 3 <http://127.0.0.1:8080/runs/r42|open run>"},
                  {"kind", "task_failed"},
                  {"dag", "weekly_retrain"},
                  {"run_id", "r42"},
                  {"task", "train"},
                  {"message", "exit code 1 on try 3 of 3"},
                  {"url", "http://127.0.0.1:8080/runs/r42"},
                  {"details", {{"exit_code", 1}}}}));
  ASSERT_TRUE(wait_until([&] { return has_deliveries(d, 1); }));
  json rec = d.deliveries()[0];
  EXPECT_EQ(rec["channel"], "ml-oncall");
  EXPECT_EQ(rec["type"], "webhook");
  EXPECT_EQ(rec["kind"], "task_failed");
  EXPECT_EQ(rec["ok"], true);
  EXPECT_EQ(rec["attempts"], 1);
  EXPECT_EQ(rec["error"], "");
}

TEST(AlertsTest, EmailReachesTheSmtpServerWithSubjectAndBody) {
  TempDir dir;
  Receiver smtp(dir, {"smtp", (dir / "mail").string()});
  ASSERT_GT(smtp.port(), 0);
  AlertChannel ch;
  ch.name = "recsys-email";
  ch.type = AlertChannel::Type::Email;
  ch.smtp = "smtp://127.0.0.1:" + std::to_string(smtp.port());
  ch.from = "drover@example.com";
  ch.to = {"a@b.c", "d@e.f"};
  AlertDispatcher d(config_with({ch}));
  d.send(failed_alert({"recsys-email"}));
  ASSERT_TRUE(wait_until([&] { return fs::exists(dir / "mail" / "1.eml"); }));
  std::string msg = read_all(dir / "mail" / "1.eml");
  json env = json::parse(read_all(dir / "mail" / "1.json"));
  EXPECT_EQ(env["mail_from"], "drover@example.com");
  EXPECT_EQ(env["rcpt_tos"], (json{"a@b.c", "d@e.f"}));
  EXPECT_NE(msg.find("Subject: [drover] task_failed: weekly_retrain.train (run r42)\r\n"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("From: drover@example.com\r\n"), std::string::npos) << msg;
  EXPECT_NE(msg.find("To: a@b.c, d@e.f\r\n"), std::string::npos) << msg;
  EXPECT_EQ(msg.rfind("Date: ", 0), 0u) << msg;
  EXPECT_NE(msg.find("Message-ID: <"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\r\n\r\nexit code 1 on try 3 of 3\r\n"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Run: http://127.0.0.1:8080/runs/r42\r\n"), std::string::npos) << msg;
  ASSERT_TRUE(wait_until([&] { return has_deliveries(d, 1); }));
  EXPECT_EQ(d.deliveries()[0]["ok"], true);
}

// A self-signed certificate for 127.0.0.1 made with the openssl CLI: DIR/cert.pem, key.pem.
bool make_certificate(const fs::path& dir) {
  pid_t pid = drover::testing::spawn(
      {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
       "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout",
       (dir / "key.pem").string(), "-out", (dir / "cert.pem").string()},
      dir / "openssl.out", dir / "openssl.err");
  int status = 0;
  return pid > 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
         WEXITSTATUS(status) == 0;
}

AlertChannel starttls_email(int port, const fs::path& ca_file) {
  AlertChannel ch;
  ch.name = "secure-email";
  ch.type = AlertChannel::Type::Email;
  ch.smtp = "smtp://127.0.0.1:" + std::to_string(port);
  ch.from = "drover@example.com";
  ch.to = {"oncall@example.com"};
  ch.starttls = true;
  ch.ca_file = ca_file.string();
  ch.timeout = std::chrono::seconds(20);
  return ch;
}

TEST(AlertsTest, EmailOverStartTlsIsEncryptedAndTheCertificateChecked) {
  TempDir dir;
  ASSERT_TRUE(make_certificate(dir.path())) << read_all(dir / "openssl.err");
  // The server refuses MAIL before STARTTLS (530), so a delivery proves TLS was used.
  Receiver smtp(dir, {"smtp", (dir / "mail").string(), "--starttls", (dir / "cert.pem").string(),
                      (dir / "key.pem").string()});
  ASSERT_GT(smtp.port(), 0);
  AlertDispatcher d(config_with({starttls_email(smtp.port(), dir / "cert.pem")}));
  d.send(failed_alert({"secure-email"}));
  ASSERT_TRUE(wait_until([&] { return fs::exists(dir / "mail" / "1.json"); }));
  json env = json::parse(read_all(dir / "mail" / "1.json"));
  EXPECT_EQ(env["tls"], true);
  EXPECT_EQ(env["rcpt_tos"], (json{"oncall@example.com"}));
  EXPECT_NE(read_all(dir / "mail" / "1.eml").find("exit code 1 on try 3 of 3"), std::string::npos);
  ASSERT_TRUE(wait_until([&] { return has_deliveries(d, 1); }));
  EXPECT_EQ(d.deliveries()[0]["ok"], true);
}

TEST(AlertsTest, StartTlsWithAnUntrustedCertificateIsNotDelivered) {
  TempDir dir;
  ASSERT_TRUE(make_certificate(dir.path())) << read_all(dir / "openssl.err");
  fs::create_directories(dir / "other");
  ASSERT_TRUE(make_certificate(dir / "other")) << read_all(dir / "other/openssl.err");
  Receiver smtp(dir, {"smtp", (dir / "mail").string(), "--starttls", (dir / "cert.pem").string(),
                      (dir / "key.pem").string()});
  ASSERT_GT(smtp.port(), 0);
  // Trusting another CA: the server's certificate does not verify.
  AlertDispatcher d(config_with({starttls_email(smtp.port(), dir / "other/cert.pem")}, 0));
  d.send(failed_alert({"secure-email"}));
  ASSERT_TRUE(wait_until([&] { return has_deliveries(d, 1); }));
  json rec = d.deliveries()[0];
  EXPECT_EQ(rec["ok"], false);
  EXPECT_NE(rec["error"].get<std::string>().find("certificate"), std::string::npos) << rec.dump();
  EXPECT_FALSE(fs::exists(dir / "mail" / "1.eml"));
}

TEST(AlertsTest, EmailWithUnsetCredentialVariableFailsWithTheName) {
  AlertChannel ch;
  ch.type = AlertChannel::Type::Email;
  ch.smtp = "smtp://127.0.0.1:1";
  ch.from = "a@b.c";
  ch.to = {"c@d.e"};
  ch.username_env = "DROVER_TEST_SURELY_UNSET_USER";
  Status s = deliver_alert(ch, failed_alert({}));
  EXPECT_EQ(s.message(), "email: environment variable DROVER_TEST_SURELY_UNSET_USER is not set");
}

TEST(AlertsTest, CommandGetsThePayloadOnStdin) {
  TempDir dir;
  fs::path out = dir / "payload.json";
  AlertChannel ch;
  ch.name = "page";
  ch.type = AlertChannel::Type::Command;
  ch.run = {
      "/bin/sh", "-c",
      "cat > '" + out.string() + ".tmp' && mv '" + out.string() + ".tmp' '" + out.string() + "'"};
  AlertDispatcher d(config_with({ch}));
  d.send(failed_alert({"page"}));
  ASSERT_TRUE(wait_until([&] { return fs::exists(out); }));
  json got = json::parse(read_all(out));
  EXPECT_EQ(got, alert_payload([] {
              Alert a = failed_alert({});
              a.url = "http://127.0.0.1:8080/runs/r42";
              return a;
            }()));
  ASSERT_TRUE(wait_until([&] { return has_deliveries(d, 1); }));
  EXPECT_EQ(d.deliveries()[0]["ok"], true);
  EXPECT_EQ(d.deliveries()[0]["type"], "command");
}

TEST(AlertsTest, CommandFailureNamesTheExitCodeAndLastStderrLine) {
  AlertChannel ch;
  ch.type = AlertChannel::Type::Command;
  ch.run = {"/bin/sh", "-c", "echo first >&2; echo pager is down >&2; exit 3"};
  EXPECT_EQ(deliver_alert(ch, failed_alert({})).message(),
            "command /bin/sh: exit code 3: pager is down");
}

TEST(AlertsTest, CommandThatDoesNotReadStdinStillSucceeds) {
  AlertChannel ch;
  ch.type = AlertChannel::Type::Command;
  ch.run = {"/bin/true"};
  EXPECT_TRUE(deliver_alert(ch, failed_alert({})).ok());
}

TEST(AlertsTest, CommandIsKilledAfterItsTimeout) {
  AlertChannel ch;
  ch.type = AlertChannel::Type::Command;
  ch.run = {"/bin/sleep", "30"};
  ch.timeout = std::chrono::milliseconds(200);
  EXPECT_EQ(deliver_alert(ch, failed_alert({})).message(),
            "command /bin/sleep: killed after 200ms");
}

TEST(AlertsTest, MissingCommandIsAnError) {
  AlertChannel ch;
  ch.type = AlertChannel::Type::Command;
  ch.run = {"/nonexistent/pager"};
  EXPECT_EQ(deliver_alert(ch, failed_alert({})).message(),
            "command /nonexistent/pager: No such file or directory");
}

// ---- dispatcher ----

TEST(AlertsTest, FailingWebhookIsRetriedUntilItAccepts) {
  TempDir dir;
  Receiver hook(dir, {"webhook", (dir / "hook.jsonl").string(), "--fail-first", "2"});
  AlertDispatcher d(config_with({webhook("hook", hook.port())}, 3));
  d.send(failed_alert({"hook"}));
  ASSERT_TRUE(wait_until([&] { return has_deliveries(d, 1); }));
  json rec = d.deliveries()[0];
  EXPECT_EQ(rec["ok"], true);
  EXPECT_EQ(rec["attempts"], 3);
  auto lines = json_lines(dir / "hook.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["status"], 500);
  EXPECT_EQ(lines[2]["status"], 200);
}

TEST(AlertsTest, DownReceiverGetsRetriesWithoutHoldingUpSendOrOtherAlerts) {
  TempDir dir;
  Receiver good(dir, {"webhook", (dir / "good.jsonl").string()});
  int down = closed_port();
  // 2 retries after 300 ms and 600 ms: the down channel stays queued for at least 900 ms.
  AlertDispatcher d(config_with({webhook("down", down), webhook("good", good.port())}, 2,
                                std::chrono::milliseconds(300)));
  d.send(failed_alert({"down"}));
  EXPECT_EQ(d.pending(), 1u);  // queued, not delivered inside send()
  d.send(failed_alert({"good"}));
  // The good channel is served while the down one waits for its retry.
  ASSERT_TRUE(wait_until([&] { return json_lines(dir / "good.jsonl").size() == 1; }));
  ASSERT_TRUE(wait_until([&] { return has_deliveries(d, 2); }));
  json recs = d.deliveries();
  EXPECT_EQ(recs[0]["channel"], "good");
  EXPECT_EQ(recs[0]["ok"], true);
  EXPECT_EQ(recs[1]["channel"], "down");
  EXPECT_EQ(recs[1]["ok"], false);
  EXPECT_EQ(recs[1]["attempts"], 3);
  // The webhook's URL is its credential: the record names only its host.
  std::string shown = "http://127.0.0.1:" + std::to_string(down) + "/***";
  EXPECT_EQ(recs[1]["error"].get<std::string>().rfind("webhook " + shown + ": ", 0), 0u)
      << recs[1]["error"];
  EXPECT_EQ(recs[1]["error"].get<std::string>().find("/hook"), std::string::npos);
  EXPECT_EQ(d.pending(), 0u);
}

TEST(AlertsTest, SameDedupKeyWithinTenMinutesIsSentOnce) {
  TempDir dir;
  Receiver hook(dir, {"webhook", (dir / "hook.jsonl").string()});
  ManualClock clock(TimePoint(std::chrono::hours(24 * 365 * 50)));
  AlertDispatcher d(config_with({webhook("hook", hook.port())}), &clock);
  Alert a = failed_alert({"hook"});
  a.dedup_key = "weekly_retrain/r42/train";
  d.send(a);
  clock.advance(std::chrono::minutes(9));
  d.send(a);  // dropped: same key, same channel, within 10 minutes
  Alert other = a;
  other.dedup_key = "weekly_retrain/r43/train";
  d.send(other);
  ASSERT_TRUE(wait_until([&] { return has_deliveries(d, 2); }));
  clock.advance(std::chrono::minutes(2));  // 11 minutes after the first
  d.send(a);
  ASSERT_TRUE(wait_until([&] { return has_deliveries(d, 3); }));
  ASSERT_TRUE(wait_until([&] { return json_lines(dir / "hook.jsonl").size() == 3; }));
  d.shutdown();
  EXPECT_EQ(d.deliveries().size(), 3u);
  EXPECT_EQ(json_lines(dir / "hook.jsonl").size(), 3u);
}

TEST(AlertsTest, UnknownChannelIsRecordedAsAFailedDelivery) {
  AlertDispatcher d(config_with({}));
  d.send(failed_alert({"nobody"}));
  json recs = d.deliveries();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["ok"], false);
  EXPECT_EQ(recs[0]["error"], "unknown alert channel 'nobody'");
  EXPECT_EQ(recs[0]["attempts"], 0);
}

TEST(AlertsTest, DagAlertsBlockChoosesTheChannels) {
  TempDir dir;
  Receiver hook(dir, {"webhook", (dir / "hook.jsonl").string()});
  DagSpec dag;
  dag.id = "weekly_retrain";
  dag.alerts["on_failure"] = {"hook"};
  AlertDispatcher d(config_with({webhook("hook", hook.port())}));
  Alert drift;
  drift.kind = "drift";
  d.send(dag, drift);  // no on_drift: nothing to send
  EXPECT_EQ(d.pending(), 0u);
  Alert exhausted;
  exhausted.kind = "retries_exhausted";
  exhausted.run_id = "r1";
  d.send(dag, exhausted);
  ASSERT_TRUE(wait_until([&] { return json_lines(dir / "hook.jsonl").size() == 1; }));
  json body = json::parse(json_lines(dir / "hook.jsonl")[0]["body"].get<std::string>());
  EXPECT_EQ(body["kind"], "retries_exhausted");
  EXPECT_EQ(body["dag"], "weekly_retrain");
  EXPECT_EQ(channels_for(dag, "task_failed"), std::vector<std::string>{"hook"});
  EXPECT_TRUE(channels_for(dag, "sla_miss").empty());
}

TEST(AlertsTest, ShutdownAbandonsRetriesAtItsDeadline) {
  AlertDispatcher d(config_with({webhook("down", closed_port())}, 5, std::chrono::seconds(60)));
  d.send(failed_alert({"down"}));
  d.shutdown(std::chrono::milliseconds(300));
  EXPECT_EQ(d.pending(), 0u);
  json recs = d.deliveries();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["ok"], false);
  EXPECT_EQ(recs[0]["error"].get<std::string>().rfind("not delivered before shutdown", 0), 0u)
      << recs[0]["error"];
  d.send(failed_alert({"down"}));  // after shutdown: dropped
  EXPECT_EQ(d.pending(), 0u);
}

TEST(AlertsTest, DeliveriesKeepTheLastThousand) {
  auto level = spdlog::get_level();
  spdlog::set_level(spdlog::level::off);  // 1005 "unknown channel" errors
  AlertDispatcher d(config_with({}));
  for (int i = 0; i < 1005; ++i) {
    Alert a = failed_alert({"nobody"});
    a.run_id = "r" + std::to_string(i);
    d.send(a);
  }
  json recs = d.deliveries();
  ASSERT_EQ(recs.size(), 1000u);
  EXPECT_EQ(recs[0]["run_id"], "r5");
  spdlog::set_level(level);
}

}  // namespace
}  // namespace drover
