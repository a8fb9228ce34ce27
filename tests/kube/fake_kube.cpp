#include "tests/kube/fake_kube.hpp"

#include <regex>
#include <stdexcept>

namespace sovdev::testing {

using nlohmann::json;

FakeKube::FakeKube(const std::string& server_cert) {
  const std::string tool = source_dir() + "/tests/fake-kube-apiserver";
  const RunResult certs = run({tool + "/make-certs.sh", dir_.path()});
  if (certs.exit_code != 0) throw std::runtime_error("make-certs.sh failed: " + certs.err);
  const std::string log = dir_ / "server.log";
  server_ = std::make_unique<Child>(
      std::vector<std::string>{"/usr/bin/python3", tool + "/fake_kube_apiserver.py", "--port", "0",
                               "--cert", dir_ / (server_cert + ".crt"), "--key",
                               dir_ / (server_cert + ".key"), "--client-ca", dir_ / "ca.crt",
                               "--token", kToken},
      log);
  const std::regex listening("LISTENING ([0-9]+)");
  const bool up = wait_until(
      [&] {
        std::smatch m;
        const std::string text = read_text(log);
        if (!std::regex_search(text, m, listening)) return false;
        port_ = std::stoi(m[1]);
        return true;
      },
      std::chrono::seconds(20));
  if (!up) throw std::runtime_error("the fake API server did not start: " + read_text(log));
  kube::Credentials admin_credentials = cert_credentials();
  if (server_cert == "named") admin_credentials.tls_server_name = "kube.sovdev.test";
  auto admin = kube::ApiClient::create(admin_credentials);
  if (!admin) throw std::runtime_error(admin.error().message);
  admin_ = std::move(*admin);
}

FakeKube::~FakeKube() = default;

kube::Credentials FakeKube::cert_credentials() const {
  kube::Credentials c;
  c.server = server();
  c.ca_pem = read_text(dir_ / "ca.crt");
  c.client_cert_pem = read_text(dir_ / "client.crt");
  c.client_key_pem = read_text(dir_ / "client.key");
  c.source = "fake-kube-apiserver (client certificate)";
  return c;
}

kube::Credentials FakeKube::token_credentials(const std::string& token) const {
  kube::Credentials c;
  c.server = server();
  c.ca_pem = read_text(dir_ / "ca.crt");
  c.token = token;
  c.source = "fake-kube-apiserver (token)";
  return c;
}

std::string FakeKube::write_kubeconfig() const {
  const std::string path = dir_ / "kubeconfig";
  write_text(path,
             "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
             "clusters:\n- name: fake\n  cluster:\n    server: " +
                 server() + "\n    certificate-authority: " + (dir_ / "ca.crt") +
                 "\nusers:\n- name: agent\n  user:\n    client-certificate: " +
                 (dir_ / "client.crt") + "\n    client-key: " + (dir_ / "client.key") +
                 "\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n"
                 "    user: agent\n");
  return path;
}

json FakeKube::control(const std::string& what, const json& body) {
  const std::string path = "/_fake/" + what;
  auto response = body.is_null() ? admin_->get(path)
                                 : admin_->request("POST", path, body.dump(), "application/json");
  if (!response) throw std::runtime_error(path + ": " + response.error().message);
  if (response->code != 200) {
    throw std::runtime_error(path + ": HTTP " + std::to_string(response->code) + ": " +
                             response->body);
  }
  return json::parse(response->body);
}

json FakeKube::objects() {
  return control("objects");
}

json FakeKube::object(const std::string& kind, const std::string& ns, const std::string& name) {
  const json found = control("objects?kind=" + kind + "&namespace=" + ns + "&name=" + name);
  return found["items"].empty() ? json(nullptr) : found["items"][0];
}

}  // namespace sovdev::testing
