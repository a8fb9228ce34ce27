// TokenSource: static tokens, rotated token files, exec credential plugins (real scripts).
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "platform/kube/kubeconfig.hpp"
#include "platform/kube/token_source.hpp"
#include "tests/support/process.hpp"

namespace kube = sovdev::kube;
using Catch::Matchers::Contains;
using sovdev::testing::read_text;
using sovdev::testing::TempDir;
using sovdev::testing::write_text;

namespace {

constexpr std::string_view kV1 = "client.authentication.k8s.io/v1";

// A shell script plugin in `dir` that counts its runs in dir/runs, saves KUBERNETES_EXEC_INFO
// to dir/info, and prints an ExecCredential with token "tok-<run>" and `status_extra`.
std::string plugin(const TempDir& dir, const std::string& status_extra,
                   const std::string& api_version = std::string(kV1)) {
  const std::string path = dir / "plugin.sh";
  write_text(path,
             "#!/bin/sh\n"
             "echo run >> '" +
                 dir.path() +
                 "/runs'\n"
                 "printf '%s' \"$KUBERNETES_EXEC_INFO\" > '" +
                 dir.path() +
                 "/info'\n"
                 "n=$(wc -l < '" +
                 dir.path() +
                 "/runs' | tr -d ' ')\n"
                 "printf '{\"apiVersion\":\"" +
                 api_version +
                 "\",\"kind\":\"ExecCredential\","
                 "\"status\":{\"token\":\"tok-%s\"" +
                 status_extra + "}}\\n' \"$n\"\n");
  ::chmod(path.c_str(), 0755);
  return path;
}

kube::Credentials exec_credentials(const std::string& command, std::vector<std::string> args = {}) {
  kube::Credentials c;
  c.server = "https://127.0.0.1:6443";
  c.source = "kubeconfig test context t";
  kube::ExecPlugin p;
  p.command = command;
  p.args = std::move(args);
  p.api_version = std::string(kV1);
  p.interactive_mode = "Never";
  c.exec = p;
  return c;
}

int runs(const TempDir& dir) {
  const std::string text = read_text(dir / "runs");
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

std::string token_of(kube::TokenSource& source) {
  auto t = source.token();
  if (!t) FAIL(t.error().message);
  return *t;
}

std::string error_of(kube::TokenSource& source) {
  auto t = source.token();
  REQUIRE_FALSE(t.has_value());
  return t.error().message;
}

}  // namespace

TEST_CASE("RFC 3339 timestamps as exec plugins write them", "[token]") {
  CHECK(kube::parse_rfc3339("1970-01-01T00:00:00Z") == 0);
  CHECK(kube::parse_rfc3339("2024-05-01T12:00:00Z") == 1714564800);
  CHECK(kube::parse_rfc3339("2024-05-01T14:00:00+02:00") == 1714564800);
  CHECK(kube::parse_rfc3339("2024-05-01T11:30:00.123456789-00:30") == 1714564800);
  CHECK(kube::parse_rfc3339("2000-02-29T00:00:00Z") == 951782400);
  CHECK_FALSE(kube::parse_rfc3339("2024-05-01 12:00:00"));  // no zone
  CHECK_FALSE(kube::parse_rfc3339("2024-13-01T12:00:00Z"));
  CHECK_FALSE(kube::parse_rfc3339("2024-05-01T12:00:00Zjunk"));
  CHECK_FALSE(kube::parse_rfc3339("1714564800"));
  CHECK_FALSE(kube::parse_rfc3339(""));
}

TEST_CASE("token source returns the static token, or none", "[token]") {
  kube::Credentials c;
  c.token = "static";
  kube::TokenSource source(c);
  CHECK(token_of(source) == "static");
  source.invalidate();
  CHECK(token_of(source) == "static");

  kube::TokenSource anonymous(kube::Credentials{});
  CHECK(token_of(anonymous).empty());
}

TEST_CASE("token source re-reads a rotated token file", "[token]") {
  TempDir tmp;
  kube::Credentials c;
  c.token_file = tmp / "token";
  c.source = "in-cluster";
  write_text(tmp / "token", "first-token\n\n");
  kube::TokenSource source(c);
  CHECK(token_of(source) == "first-token");  // trailing whitespace trimmed

  write_text(tmp / "token", "second-token-longer\n");
  CHECK(token_of(source) == "second-token-longer");

  // Same size, swapped in by rename as the kubelet does: a new inode.
  write_text(tmp / "token.new", "third-token-longer!\n");
  REQUIRE(std::rename((tmp / "token.new").c_str(), (tmp / "token").c_str()) == 0);
  CHECK(token_of(source) == "third-token-longer!");

  SECTION("a vanished file keeps the last token read") {
    ::unlink((tmp / "token").c_str());
    CHECK(token_of(source) == "third-token-longer!");
  }
  SECTION("an empty file is an error before any token was read") {
    write_text(tmp / "empty", "\n");
    c.token_file = tmp / "empty";
    kube::TokenSource fresh(c);
    CHECK_THAT(error_of(fresh), Contains("is empty"));
  }
  SECTION("a missing file with no static token is an error naming the file") {
    c.token_file = tmp / "absent";
    kube::TokenSource fresh(c);
    CHECK_THAT(error_of(fresh), Contains(tmp / "absent"));
    CHECK_THAT(error_of(fresh), Contains("in-cluster"));
  }
  SECTION("a missing file falls back to the static token, as client-go does") {
    c.token_file = tmp / "absent";
    c.token = "static";
    kube::TokenSource fresh(c);
    CHECK(token_of(fresh) == "static");
  }
}

TEST_CASE("exec plugin whose credential has expired runs again on every call", "[token]") {
  TempDir tmp;
  kube::TokenSource source(
      exec_credentials(plugin(tmp, ",\"expirationTimestamp\":\"2001-01-01T00:00:00Z\"")));
  CHECK(token_of(source) == "tok-1");
  CHECK(token_of(source) == "tok-2");
  CHECK(token_of(source) == "tok-3");
  CHECK(runs(tmp) == 3);
}

TEST_CASE("exec plugin credential is cached until its expiry minus the margin, or invalidate()",
          "[token]") {
  TempDir tmp;
  const int64_t expiry = *kube::parse_rfc3339("2030-01-01T00:00:00Z");
  int64_t now = expiry - 3600;
  kube::TokenSourceOptions options;
  options.expiry_margin = std::chrono::seconds(60);
  options.now = [&] { return now; };
  kube::TokenSource source(
      exec_credentials(plugin(tmp, ",\"expirationTimestamp\":\"2030-01-01T00:00:00Z\"")), options);
  CHECK(token_of(source) == "tok-1");
  CHECK(token_of(source) == "tok-1");
  now = expiry - 61;
  CHECK(token_of(source) == "tok-1");
  CHECK(runs(tmp) == 1);
  now = expiry - 60;  // inside the margin: refreshed before it can expire in flight
  CHECK(token_of(source) == "tok-2");
  // The fresh one is as close to its expiry: kept until then, not re-run on every request.
  CHECK(token_of(source) == "tok-2");
  now = expiry - 1;
  CHECK(token_of(source) == "tok-2");
  now = expiry;
  CHECK(token_of(source) == "tok-3");
  source.invalidate();  // after a 401
  CHECK(token_of(source) == "tok-4");
  CHECK(runs(tmp) == 4);
}

TEST_CASE("exec plugin credential without expiry is kept until invalidate()", "[token]") {
  TempDir tmp;
  kube::TokenSource source(exec_credentials(plugin(tmp, "")));
  CHECK(token_of(source) == "tok-1");
  CHECK(token_of(source) == "tok-1");
  source.invalidate();
  CHECK(token_of(source) == "tok-2");
}

TEST_CASE("exec plugin gets KUBERNETES_EXEC_INFO, its env entries and its args", "[token]") {
  TempDir tmp;
  const std::string path = tmp / "env.sh";
  write_text(path, "#!/bin/sh\nprintf '%s' \"$KUBERNETES_EXEC_INFO\" > '" + (tmp / "info") +
                       "'\nprintf '{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
                       "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%s-%s-%s\"}}' "
                       "\"$SOVDEV_A\" \"$1\" \"$2\"\n");
  ::chmod(path.c_str(), 0755);
  kube::Credentials c = exec_credentials(path, {"arg one", "two"});
  c.exec->api_version = "client.authentication.k8s.io/v1beta1";
  c.exec->env = {{"SOVDEV_A", "from-env"}, {"PATH", "/usr/bin:/bin"}};
  c.exec->provide_cluster_info = true;
  c.ca_pem = "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n";
  c.tls_server_name = "kubernetes";
  kube::TokenSource source(c);
  CHECK(token_of(source) == "from-env-arg one-two");

  const auto info = nlohmann::json::parse(read_text(tmp / "info"));
  CHECK(info["apiVersion"] == "client.authentication.k8s.io/v1beta1");
  CHECK(info["kind"] == "ExecCredential");
  CHECK(info["spec"]["interactive"] == false);
  CHECK(info["spec"]["cluster"]["server"] == "https://127.0.0.1:6443");
  CHECK(info["spec"]["cluster"]["tls-server-name"] == "kubernetes");
  CHECK(kube::base64_decode(
            info["spec"]["cluster"]["certificate-authority-data"].get<std::string>()) == c.ca_pem);

  SECTION("no cluster without provideClusterInfo") {
    c.exec->provide_cluster_info = false;
    kube::TokenSource plain(c);
    CHECK(token_of(plain) == "from-env-arg one-two");
    const auto bare = nlohmann::json::parse(read_text(tmp / "info"));
    CHECK_FALSE(bare["spec"].contains("cluster"));
  }
}

TEST_CASE("exec plugin that returns a client certificate exposes it", "[token]") {
  TempDir tmp;
  const std::string path = tmp / "cert.sh";
  write_text(path,
             "#!/bin/sh\ncat <<'EOF'\n{\"apiVersion\":\"client.authentication.k8s.io/v1\","
             "\"kind\":\"ExecCredential\",\"status\":{\"clientCertificateData\":"
             "\"-----BEGIN CERTIFICATE-----\\nC\\n-----END CERTIFICATE-----\\n\","
             "\"clientKeyData\":\"-----BEGIN PRIVATE KEY-----\\nK\\n-----END PRIVATE "
             "KEY-----\\n\"}}\nEOF\n");
  ::chmod(path.c_str(), 0755);
  kube::Credentials c = exec_credentials(path);
  c.client_cert_pem = "kubeconfig cert";
  kube::TokenSource source(c);
  CHECK(source.client_cert_pem() == "kubeconfig cert");  // before the plugin ran
  CHECK(token_of(source).empty());
  CHECK(source.client_cert_pem() == "-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----\n");
  CHECK(source.client_key_pem() == "-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n");
}

TEST_CASE(
    "exec plugin failure is an error with the program, its status and its stderr, never its "
    "arguments",
    "[token]") {
  TempDir tmp;
  const std::string path = tmp / "fail.sh";
  write_text(path,
             "#!/bin/sh\necho 'AADSTS7000215: Invalid client secret provided.' >&2\n"
             "exit 1\n");
  ::chmod(path.c_str(), 0755);
  kube::TokenSource source(exec_credentials(path, {"get-token"}));
  const std::string e = error_of(source);
  CHECK_THAT(e, Contains(path));
  CHECK_THAT(e, !Contains("get-token"));  // arguments may carry secrets
  CHECK_THAT(e, Contains("exited with status 1"));
  CHECK_THAT(e, Contains("AADSTS7000215: Invalid client secret provided."));
  CHECK_THAT(e, Contains("kubeconfig test context t"));
}

TEST_CASE("exec plugin that hangs is killed at the timeout", "[token]") {
  TempDir tmp;
  const std::string path = tmp / "hang.sh";
  // Not exec'd: the sleep is a child of the shell and holds stdout open; it must die too.
  write_text(path, "#!/bin/sh\necho 'waiting for device login' >&2\nsleep 30\necho done\n");
  ::chmod(path.c_str(), 0755);
  kube::TokenSourceOptions options;
  options.exec_timeout = std::chrono::milliseconds(300);
  kube::TokenSource source(exec_credentials(path), options);
  const auto start = std::chrono::steady_clock::now();
  const std::string e = error_of(source);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
  CHECK_THAT(e, Contains("did not finish within 300 ms"));
  CHECK_THAT(e, Contains("waiting for device login"));
}

TEST_CASE("exec plugin output that is not a valid ExecCredential is an error", "[token]") {
  TempDir tmp;
  auto check = [&](const std::string& printed, const std::string& expected) {
    const std::string path = tmp / "out.sh";
    write_text(path, "#!/bin/sh\ncat <<'EOF'\n" + printed + "\nEOF\n");
    ::chmod(path.c_str(), 0755);
    kube::TokenSource source(exec_credentials(path));
    CHECK_THAT(error_of(source), Contains(expected));
  };
  check("not json", "no JSON object");
  check(R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"Pod","status":{}})",
        "not an ExecCredential");
  check(R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",)"
        R"("status":{"token":"t"}})",
        "apiVersion 'client.authentication.k8s.io/v1beta1'");
  check(R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",)"
        R"("status":{}})",
        "neither a token nor a client certificate");
  check(R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",)"
        R"("status":{"token":"t","expirationTimestamp":"tomorrow"}})",
        "not RFC 3339");
}

TEST_CASE("exec plugin that is not installed: the error carries the install hint", "[token]") {
  kube::Credentials c = exec_credentials("sovdev-no-such-plugin");
  c.exec->install_hint = "kubelogin is not installed: see https://aka.ms/aks/kubelogin";
  kube::TokenSource source(c);
  const std::string e = error_of(source);
  CHECK_THAT(e, Contains("sovdev-no-such-plugin"));
  CHECK_THAT(e, Contains("could not be started"));
  CHECK_THAT(e, Contains("https://aka.ms/aks/kubelogin"));
}

TEST_CASE("exec plugin from a kubeconfig runs with its relative command", "[token]") {
  TempDir tmp;
  REQUIRE(::mkdir((tmp / "bin").c_str(), 0755) == 0);
  const std::string script = plugin(tmp, "");
  REQUIRE(std::rename(script.c_str(), (tmp / "bin/plugin").c_str()) == 0);
  write_text(tmp / "config",
             "clusters:\n- name: c\n  cluster: {server: 'https://h:6443'}\n"
             "contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n"
             "users:\n- name: u\n  user:\n    exec:\n"
             "      apiVersion: client.authentication.k8s.io/v1\n"
             "      command: bin/plugin\n      interactiveMode: Never\n");
  auto c = kube::load_kubeconfig(tmp / "config");
  REQUIRE(c.has_value());
  kube::TokenSource source(*c);
  CHECK(token_of(source) == "tok-1");
}
