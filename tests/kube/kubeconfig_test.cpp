// Kubeconfig and in-cluster credentials: what kubectl reads, and what we refuse.
#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include <catch2/catch.hpp>

#include "platform/kube/kubeconfig.hpp"
#include "tests/support/process.hpp"

namespace kube = sovdev::kube;
using Catch::Matchers::Contains;
using sovdev::testing::TempDir;
using sovdev::testing::write_text;

namespace {

const std::string kCa = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----\n";
const std::string kCert = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";
const std::string kKey = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQ\n-----END EC PRIVATE KEY-----\n";

std::string data_file(const std::string& name) {
  return sovdev::testing::source_dir() + "/tests/kube/data/" + name;
}

// A kubeconfig with one cluster "c" (CA data), contexts "dev" (user "u") and "prod" (user "p",
// namespace "prod-ns"), and `user` as the fields of user "u".
std::string config(const std::string& user, const std::string& current = "dev",
                   const std::string& cluster_extra = "") {
  std::string out =
      "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
      "    server: https://127.0.0.1:6443/\n    certificate-authority-data: " +
      kube::base64_encode(kCa) + "\n" + cluster_extra +
      "- name: other\n  cluster:\n    server: https://10.1.1.1\n"
      "contexts:\n- name: dev\n  context:\n    cluster: c\n    user: u\n"
      "- name: prod\n  context:\n    cluster: other\n    user: p\n    namespace: prod-ns\n"
      "users:\n- name: u\n  user:\n" +
      user + "- name: p\n  user:\n    token: prod-token\n";
  if (!current.empty()) out += "current-context: " + current + "\n";
  return out;
}

std::string error_of(const sovdev::Expected<kube::Credentials>& c) {
  REQUIRE_FALSE(c.has_value());
  return c.error().message;
}

// Restores an environment variable when the test ends, pass or fail.
class EnvVar {
 public:
  EnvVar(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    had_ = std::getenv(name) != nullptr;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~EnvVar() {
    if (had_) {
      ::setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  EnvVar(const EnvVar&) = delete;
  EnvVar& operator=(const EnvVar&) = delete;

 private:
  std::string name_, old_;
  bool had_ = false;
};

}  // namespace

TEST_CASE("base64 decodes what kubeconfig *-data fields hold and refuses garbage", "[kubeconfig]") {
  CHECK(kube::base64_decode("") == std::string());
  CHECK(kube::base64_decode("Zg==") == std::string("f"));
  CHECK(kube::base64_decode("Zm8=") == std::string("fo"));
  CHECK(kube::base64_decode("Zm9v") == std::string("foo"));
  CHECK(kube::base64_decode("Zm9vYg") == std::string("foob"));  // padding optional
  CHECK(kube::base64_decode("Zm9v\nYmFy\r\n") == std::string("foobar"));
  CHECK(kube::base64_decode("+/+/") == std::string("\xfb\xff\xbf"));
  CHECK_FALSE(kube::base64_decode("Zm9v!"));
  CHECK_FALSE(kube::base64_decode("Z"));       // a lone digit makes no byte
  CHECK_FALSE(kube::base64_decode("Zg==Zg"));  // data after padding
  CHECK_FALSE(kube::base64_decode("Zh=="));    // non-zero unused bits
  CHECK_FALSE(kube::base64_decode("Zm9vY==="));
  CHECK_FALSE(kube::base64_decode("Zm9v-_"));  // base64url is not what kubeconfig uses
  for (const std::string s : {"", "a", "ab", "abc", "abcd", "\x00\xff\x10 binary"}) {
    CHECK(kube::base64_decode(kube::base64_encode(s)) == s);
  }
  CHECK(kube::base64_encode("foobar") == "Zm9vYmFy");
  CHECK(kube::base64_encode("fooba") == "Zm9vYmE=");
}

TEST_CASE("kubeconfig with client certificate and key data gives PEM and the CA", "[kubeconfig]") {
  TempDir tmp;
  write_text(tmp / "config", config("    client-certificate-data: " + kube::base64_encode(kCert) +
                                    "\n    client-key-data: " + kube::base64_encode(kKey) + "\n"));
  auto c = kube::load_kubeconfig(tmp / "config");
  REQUIRE(c.has_value());
  CHECK(c->server == "https://127.0.0.1:6443");  // trailing slash dropped
  CHECK(c->ca_pem == kCa);
  CHECK(c->client_cert_pem == kCert);
  CHECK(c->client_key_pem == kKey);
  CHECK(c->token.empty());
  CHECK(c->token_file.empty());
  CHECK_FALSE(c->exec);
  CHECK_FALSE(c->insecure_skip_tls_verify);
  CHECK(c->namespace_.empty());
  CHECK(c->source == "kubeconfig " + (tmp / "config") + " context dev");
}

TEST_CASE("kubeconfig certificate files are read relative to the kubeconfig's folder",
          "[kubeconfig]") {
  TempDir tmp;
  REQUIRE(::mkdir((tmp / "kube").c_str(), 0755) == 0);
  REQUIRE(::mkdir((tmp / "kube/pki").c_str(), 0755) == 0);
  write_text(tmp / "kube/pki/client.crt", kCert);
  write_text(tmp / "kube/pki/client.key", kKey);
  write_text(tmp / "kube/ca.crt", kCa);
  write_text(tmp / "abs.key", kKey);
  const std::string cluster =
      "- name: files\n  cluster:\n    server: https://k:6443\n"
      "    certificate-authority: ca.crt\n    tls-server-name: kubernetes.default\n";
  const std::string text = "clusters:\n" + cluster +
                           "contexts:\n- name: f\n  context: {cluster: files, user: u}\n"
                           "users:\n- name: u\n  user:\n    client-certificate: pki/client.crt\n"
                           "    client-key: " +
                           (tmp / "abs.key") + "\ncurrent-context: f\n";
  write_text(tmp / "kube/config", text);
  auto c = kube::load_kubeconfig(tmp / "kube/config");
  REQUIRE(c.has_value());
  CHECK(c->ca_pem == kCa);
  CHECK(c->client_cert_pem == kCert);
  CHECK(c->client_key_pem == kKey);
  CHECK(c->tls_server_name == "kubernetes.default");

  SECTION("a missing file is an error naming the resolved path") {
    ::unlink((tmp / "kube/pki/client.crt").c_str());
    auto missing = kube::load_kubeconfig(tmp / "kube/config");
    CHECK_THAT(error_of(missing), Contains(tmp / "kube/pki/client.crt"));
    CHECK_THAT(error_of(missing), Contains("user 'u'"));
  }
  SECTION("a file that is not PEM is refused") {
    write_text(tmp / "kube/ca.crt", "\x30\x82\x01\x0a binary DER");
    CHECK_THAT(error_of(kube::load_kubeconfig(tmp / "kube/config")), Contains("PEM"));
  }
}

TEST_CASE("kubeconfig with a static token", "[kubeconfig]") {
  TempDir tmp;
  write_text(tmp / "config", config("    token: abc.def\n"));
  auto c = kube::load_kubeconfig(tmp / "config");
  REQUIRE(c.has_value());
  CHECK(c->token == "abc.def");
  CHECK(c->client_cert_pem.empty());
}

TEST_CASE("kubeconfig tokenFile resolves relative to the kubeconfig", "[kubeconfig]") {
  TempDir tmp;
  write_text(tmp / "config", config("    tokenFile: secrets/token\n"));
  auto c = kube::load_kubeconfig(tmp / "config");
  REQUIRE(c.has_value());
  CHECK(c->token_file == tmp / "secrets/token");
  CHECK(c->token.empty());
}

TEST_CASE("kubeconfig context selection: named, current-context, unknown, missing",
          "[kubeconfig]") {
  TempDir tmp;
  write_text(tmp / "config", config("    token: dev-token\n"));
  auto dev = kube::load_kubeconfig(tmp / "config");
  REQUIRE(dev.has_value());
  CHECK(dev->token == "dev-token");
  CHECK(dev->server == "https://127.0.0.1:6443");

  auto prod = kube::load_kubeconfig(tmp / "config", "prod");
  REQUIRE(prod.has_value());
  CHECK(prod->token == "prod-token");
  CHECK(prod->server == "https://10.1.1.1");
  CHECK(prod->namespace_ == "prod-ns");
  CHECK(prod->ca_pem.empty());
  CHECK(prod->source == "kubeconfig " + (tmp / "config") + " context prod");

  const std::string unknown = error_of(kube::load_kubeconfig(tmp / "config", "staging"));
  CHECK(unknown == "context 'staging' not found in " + (tmp / "config") + "; contexts: dev, prod");

  write_text(tmp / "nocurrent", config("    token: t\n", ""));
  const std::string none = error_of(kube::load_kubeconfig(tmp / "nocurrent"));
  CHECK_THAT(none, Contains("has no current-context"));
  CHECK_THAT(none, Contains("contexts: dev, prod"));
  CHECK(kube::load_kubeconfig(tmp / "nocurrent", "dev").has_value());
}

TEST_CASE("kubeconfig errors name the file and the broken reference", "[kubeconfig]") {
  TempDir tmp;
  SECTION("a context naming a missing cluster") {
    write_text(tmp / "c",
               "clusters: []\ncontexts:\n- name: x\n  context: {cluster: gone}\n"
               "current-context: x\n");
    const std::string e = error_of(kube::load_kubeconfig(tmp / "c"));
    CHECK_THAT(e, Contains("cluster 'gone' (of context 'x') not found in " + (tmp / "c")));
  }
  SECTION("a context naming a missing user") {
    write_text(tmp / "c",
               "clusters:\n- name: c\n  cluster: {server: 'https://x'}\n"
               "contexts:\n- name: y\n  context: {cluster: c, user: nobody}\n"
               "users:\n- name: u\n  user: {token: a}\n- name: p\n  user: {}\n");
    const std::string e = error_of(kube::load_kubeconfig(tmp / "c", "y"));
    CHECK_THAT(e, Contains("user 'nobody' (of context 'y') not found"));
    CHECK_THAT(e, Contains("users: u, p"));
  }
  SECTION("not YAML") {
    write_text(tmp / "c", "clusters: [\n");
    CHECK_THAT(error_of(kube::load_kubeconfig(tmp / "c")), Contains("not valid YAML"));
  }
  SECTION("empty") {
    write_text(tmp / "c", "");
    CHECK_THAT(error_of(kube::load_kubeconfig(tmp / "c")), Contains("empty"));
  }
  SECTION("missing file") {
    CHECK_THAT(error_of(kube::load_kubeconfig(tmp / "absent")), Contains(tmp / "absent"));
  }
  SECTION("bad base64") {
    write_text(tmp / "c", config("    client-certificate-data: '!!!'\n    client-key-data: x\n"));
    CHECK_THAT(error_of(kube::load_kubeconfig(tmp / "c")),
               Contains("client-certificate-data is not valid base64"));
  }
  SECTION("a certificate without its key") {
    write_text(tmp / "c",
               config("    client-certificate-data: " + kube::base64_encode(kCert) + "\n"));
    CHECK_THAT(error_of(kube::load_kubeconfig(tmp / "c")), Contains("no client-key"));
  }
  SECTION("both data and file for the CA") {
    write_text(tmp / "c", config("    token: t\n", "dev", "    certificate-authority: ca.pem\n"));
    CHECK_THAT(error_of(kube::load_kubeconfig(tmp / "c")),
               Contains("certificate-authority and certificate-authority-data are both set"));
  }
  SECTION("a server that is not http(s)") {
    write_text(tmp / "c",
               "clusters:\n- name: c\n  cluster: {server: 'ftp://x'}\ncontexts:\n"
               "- name: x\n  context: {cluster: c}\ncurrent-context: x\n");
    CHECK_THAT(error_of(kube::load_kubeconfig(tmp / "c")), Contains("https://"));
  }
}

TEST_CASE("kubeconfig refuses auth it cannot do instead of ignoring it", "[kubeconfig]") {
  TempDir tmp;
  SECTION("auth-provider") {
    write_text(tmp / "c", config("    auth-provider:\n      name: azure\n      config: {}\n"));
    const std::string e = error_of(kube::load_kubeconfig(tmp / "c"));
    CHECK_THAT(e, Contains("auth-provider is not supported"));
    CHECK_THAT(e, Contains(tmp / "c"));
    CHECK_THAT(e, Contains("user 'u'"));
  }
  SECTION("basic auth") {
    write_text(tmp / "c", config("    username: admin\n    password: secret\n"));
    CHECK_THAT(error_of(kube::load_kubeconfig(tmp / "c")), Contains("basic auth"));
  }
  SECTION("impersonation") {
    write_text(tmp / "c", config("    token: t\n    as: system:admin\n"));
    CHECK_THAT(error_of(kube::load_kubeconfig(tmp / "c")), Contains("impersonation"));
  }
  SECTION("an interactive-only exec plugin") {
    write_text(tmp / "c", config("    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                                 "      command: kubelogin\n      interactiveMode: Always\n"));
    CHECK_THAT(error_of(kube::load_kubeconfig(tmp / "c")), Contains("no terminal"));
  }
  SECTION("an exec plugin of a removed API version") {
    write_text(tmp / "c",
               config("    exec:\n      apiVersion: client.authentication.k8s.io/v1alpha1\n"
                      "      command: aws\n"));
    CHECK_THAT(error_of(kube::load_kubeconfig(tmp / "c")), Contains("v1alpha1' is not supported"));
  }
  SECTION("a token and an exec plugin at once") {
    write_text(tmp / "c", config("    token: t\n    exec:\n      apiVersion: "
                                 "client.authentication.k8s.io/v1\n      command: x\n"));
    CHECK_THAT(error_of(kube::load_kubeconfig(tmp / "c")), Contains("keep one"));
  }
}

TEST_CASE("kubeconfig exec plugin as az aks get-credentials and kubelogin write it",
          "[kubeconfig]") {
  auto c = kube::load_kubeconfig(data_file("aks-kubelogin.yaml"));
  REQUIRE(c.has_value());
  CHECK(c->server == "https://sovdev-prod-dns-1a2b3c4d.hcp.westeurope.azmk8s.io:443");
  CHECK(c->namespace_ == "sovdev");
  CHECK(c->ca_pem.rfind("-----BEGIN CERTIFICATE-----", 0) == 0);
  REQUIRE(c->exec);
  CHECK(c->exec->command == "kubelogin");  // a bare name stays a PATH lookup
  CHECK(c->exec->api_version == "client.authentication.k8s.io/v1beta1");
  REQUIRE(c->exec->args.size() == 11);
  CHECK(c->exec->args[0] == "get-token");
  CHECK(c->exec->args[10] == "spn");
  REQUIRE(c->exec->env.size() == 1);
  CHECK(c->exec->env[0].first == "AAD_SERVICE_PRINCIPAL_CLIENT_SECRET");
  CHECK(c->exec->env[0].second == "not-a-real-secret");
  CHECK(c->exec->interactive_mode == "IfAvailable");
  CHECK_FALSE(c->exec->provide_cluster_info);
  CHECK_THAT(c->exec->install_hint, Contains("https://aka.ms/aks/kubelogin"));
}

TEST_CASE("kubeconfig as microk8s config prints it", "[kubeconfig]") {
  auto c = kube::load_kubeconfig(data_file("microk8s.yaml"));
  REQUIRE(c.has_value());
  CHECK(c->server == "https://10.0.2.15:16443");
  CHECK_THAT(c->client_cert_pem, Contains("MIIBtestCert"));
  CHECK_THAT(c->client_key_pem, Contains("BEGIN RSA PRIVATE KEY"));
  CHECK(c->source == "kubeconfig " + data_file("microk8s.yaml") + " context microk8s");
}

TEST_CASE("kubeconfig exec command with a slash resolves against the kubeconfig's folder",
          "[kubeconfig]") {
  TempDir tmp;
  write_text(tmp / "config",
             config("    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                    "      command: ./bin/plugin\n      args: [--a, b]\n"
                    "      interactiveMode: Never\n      provideClusterInfo: true\n",
                    "dev", "    insecure-skip-tls-verify: false\n"));
  auto c = kube::load_kubeconfig(tmp / "config");
  REQUIRE(c.has_value());
  REQUIRE(c->exec);
  CHECK(c->exec->command == tmp / "./bin/plugin");
  CHECK(c->exec->args == std::vector<std::string>{"--a", "b"});
  CHECK(c->exec->interactive_mode == "Never");
  CHECK(c->exec->provide_cluster_info);
}

TEST_CASE("kubeconfig insecure-skip-tls-verify without a CA", "[kubeconfig]") {
  TempDir tmp;
  write_text(tmp / "c",
             "clusters:\n- name: c\n  cluster:\n    server: https://x:6443\n"
             "    insecure-skip-tls-verify: true\n    proxy-url: http://proxy:3128\n"
             "contexts:\n- name: x\n  context: {cluster: c}\ncurrent-context: x\n");
  auto c = kube::load_kubeconfig(tmp / "c");
  REQUIRE(c.has_value());
  CHECK(c->insecure_skip_tls_verify);
  CHECK(c->proxy_url == "http://proxy:3128");
  CHECK(c->token.empty());  // no user: anonymous
}

TEST_CASE("in-cluster credentials from the service account folder and the environment",
          "[kubeconfig]") {
  TempDir tmp;
  write_text(tmp / "token", "eyJhbGciOi.token\n");
  write_text(tmp / "ca.crt", kCa);
  write_text(tmp / "namespace", "sovdev-system\n");
  const kube::InClusterPaths paths{tmp.path()};
  EnvVar port("KUBERNETES_SERVICE_PORT", "443");
  {
    EnvVar host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
    auto c = kube::load_in_cluster(paths);
    REQUIRE(c.has_value());
    CHECK(c->server == "https://10.96.0.1:443");
    CHECK(c->token_file == tmp / "token");
    CHECK(c->token.empty());  // re-read from the file, never copied
    CHECK(c->ca_pem == kCa);
    CHECK(c->namespace_ == "sovdev-system");
    CHECK(c->source == "in-cluster");
  }
  {
    EnvVar host("KUBERNETES_SERVICE_HOST", "fd00:10:96::1");
    auto c = kube::load_in_cluster(paths);
    REQUIRE(c.has_value());
    CHECK(c->server == "https://[fd00:10:96::1]:443");
  }
  {
    EnvVar host("KUBERNETES_SERVICE_HOST", nullptr);
    CHECK_THAT(error_of(kube::load_in_cluster(paths)), Contains("KUBERNETES_SERVICE_HOST"));
  }
  {
    EnvVar host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
    ::unlink((tmp / "token").c_str());
    CHECK_THAT(error_of(kube::load_in_cluster(paths)), Contains(tmp / "token"));
  }
}
